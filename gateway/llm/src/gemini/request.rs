//! Hub request → Gemini `generateContent` / `streamGenerateContent` body (the model, the
//! streaming choice and the key travel in the URL and headers, not here).
//!
//! What differs from OpenAI and how it is bridged:
//! - roles are `user` and `model`; system instructions are `systemInstruction`;
//! - a tool result is a `functionResponse` part of a user turn, named by the function (Gemini
//!   calls have no ids): the name is looked up from the earlier call with the result's id;
//!   consecutive turns of one role are merged (Gemini wants all responses to one model turn's
//!   calls in the next turn);
//! - a `functionResponse.response` is a JSON object: a result that is one is sent as it is,
//!   any other text as `{"output": text}` (the key the function-calling docs name);
//! - images are inline only (`inlineData`): `fileData` takes files uploaded to Google first, so
//!   image URLs are refused;
//! - tool parameters and response schemas are converted to Gemini's Schema subset (see
//!   [`super::schema`]);
//! - at most 5 stop sequences; function names of at most 64 characters; no
//!   `parallel_tool_calls` or `user` equivalent (ignored).

use super::schema::convert_root;
use crate::hub::{ChatRequest, ImageSource, Message, Part, ResponseFormat, Role, ToolChoice};
use crate::openai::RequestError;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;

/// Inline image types Gemini reads (<https://ai.google.dev/gemini-api/docs/image-understanding>).
const IMAGE_TYPES: [&str; 5] = ["image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"];

/// Gemini's limit on `stopSequences`.
const MAX_STOP_SEQUENCES: usize = 5;

/// The longest function name Gemini (and OpenAI) accept
/// (<https://ai.google.dev/api/caching#FunctionDeclaration>).
const MAX_FUNCTION_NAME: usize = 64;

/// Per-backend settings of the translation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `maxOutputTokens` when the client sent none (`None`: the model's own limit).
    pub default_max_tokens: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolGroup<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig<'a>>,
}

#[derive(Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: Vec<WirePart<'a>>,
}

#[derive(Serialize)]
struct SystemInstruction<'a> {
    parts: Vec<WirePart<'a>>,
}

/// A `Part`: exactly one of its data fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum WirePart<'a> {
    Text(&'a str),
    InlineData(Blob<'a>),
    FunctionCall(FunctionCall<'a>),
    FunctionResponse(FunctionResponse<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Blob<'a> {
    mime_type: &'a str,
    data: &'a str,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: Box<RawValue>,
}

#[derive(Serialize)]
struct FunctionResponse<'a> {
    name: &'a str,
    response: Box<RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolGroup<'a> {
    function_declarations: Vec<FunctionDeclaration<'a>>,
}

#[derive(Serialize)]
struct FunctionDeclaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_function_names: Vec<&'a str>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_schema: Option<Value>,
}

impl GenerationConfig<'_> {
    fn is_empty(&self) -> bool {
        self.max_output_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
            && self.response_mime_type.is_none()
    }
}

/// The `generateContent` body for `request`.
pub fn build_request(request: &ChatRequest, options: Options) -> Result<Vec<u8>, RequestError> {
    if request.stop.len() > MAX_STOP_SEQUENCES {
        return Err(RequestError::new(
            format!("this backend accepts at most {MAX_STOP_SEQUENCES} stop sequences"),
            Some("stop"),
        ));
    }
    let mut declarations = Vec::with_capacity(request.tools.len());
    for (index, tool) in request.tools.iter().enumerate() {
        let path = format!("tools[{index}].function.parameters");
        let parameters =
            convert_root(&tool.parameters, &path).map_err(|err| RequestError::new(err, Some("tools")))?;
        declarations.push(FunctionDeclaration {
            name: &tool.name,
            description: tool.description.as_deref().filter(|d| !d.is_empty()),
            parameters,
        });
    }
    let tool_config = match &request.tool_choice {
        Some(choice) if !declarations.is_empty() => {
            let (mode, allowed_function_names) = match choice {
                ToolChoice::Auto => ("AUTO", Vec::new()),
                ToolChoice::None => ("NONE", Vec::new()),
                ToolChoice::Required => ("ANY", Vec::new()),
                ToolChoice::Function(name) => ("ANY", vec![name.as_str()]),
            };
            Some(ToolConfig {
                function_calling_config: FunctionCallingConfig { mode, allowed_function_names },
            })
        }
        _ => None,
    };
    let (response_mime_type, response_schema) = match &request.response_format {
        ResponseFormat::Text => (None, None),
        ResponseFormat::JsonObject => (Some("application/json"), None),
        ResponseFormat::JsonSchema { schema, .. } => {
            let schema = convert_root(schema, "response_format.json_schema.schema")
                .map_err(|err| RequestError::new(err, Some("response_format")))?;
            (Some("application/json"), schema)
        }
    };
    let generation_config = GenerationConfig {
        max_output_tokens: request.max_tokens.or(options.default_max_tokens),
        temperature: request.temperature,
        top_p: request.top_p,
        stop_sequences: &request.stop,
        response_mime_type,
        response_schema,
    };
    let system: Vec<WirePart<'_>> =
        request.system.iter().filter(|t| !t.text.is_empty()).map(|t| WirePart::Text(&t.text)).collect();
    let body = Body {
        contents: contents(&request.messages)?,
        system_instruction: (!system.is_empty()).then_some(SystemInstruction { parts: system }),
        tools: if declarations.is_empty() {
            Vec::new()
        } else {
            vec![ToolGroup { function_declarations: declarations }]
        },
        tool_config,
        generation_config: (!generation_config.is_empty()).then_some(generation_config),
    };
    serde_json::to_vec(&body).map_err(|err| RequestError::new(err.to_string(), None))
}

/// The conversation as `contents`, consecutive turns of one role merged.
fn contents(messages: &[Message]) -> Result<Vec<Content<'_>>, RequestError> {
    let mut contents: Vec<Content<'_>> = Vec::with_capacity(messages.len());
    // Tool-call id → function name, from the assistant turns seen so far.
    let mut names: HashMap<&str, &str> = HashMap::new();
    for (index, message) in messages.iter().enumerate() {
        let (role, parts) = match message.role {
            Role::User => ("user", content_parts(&message.content, index)?),
            Role::Assistant => {
                let mut parts = content_parts(&message.content, index)?;
                for (call_index, call) in message.tool_calls.iter().enumerate() {
                    // Every tool result repeats its call's name, so an unbounded name would
                    // make the body quadratic in the client's (16 MiB in, gigabytes out).
                    if call.name.chars().count() > MAX_FUNCTION_NAME {
                        return Err(RequestError::new(
                            format!(
                                "messages[{index}].tool_calls[{call_index}].function.name: longer than {MAX_FUNCTION_NAME} characters"
                            ),
                            Some("messages"),
                        ));
                    }
                    let args = json_object(&call.arguments).ok_or_else(|| {
                        RequestError::new(
                            format!("messages[{index}].tool_calls[{call_index}].function.arguments: not a JSON object"),
                            Some("messages"),
                        )
                    })?;
                    names.insert(&call.id, &call.name);
                    parts.push(WirePart::FunctionCall(FunctionCall { name: &call.name, args }));
                }
                ("model", parts)
            }
            Role::Tool => {
                ("user", vec![WirePart::FunctionResponse(function_response(message, index, &names)?)])
            }
        };
        if parts.is_empty() {
            // A turn with neither text nor calls (OpenAI allows `content: ""`).
            continue;
        }
        match contents.last_mut() {
            Some(last) if last.role == role => last.parts.extend(parts),
            _ => contents.push(Content { role, parts }),
        }
    }
    if contents.is_empty() {
        return Err(RequestError::new("at least one user message is required", Some("messages")));
    }
    Ok(contents)
}

/// A tool result as a `functionResponse` for the function whose call it answers.
fn function_response<'a>(
    message: &'a Message,
    index: usize,
    names: &HashMap<&str, &'a str>,
) -> Result<FunctionResponse<'a>, RequestError> {
    let id = message.tool_call_id.as_deref().unwrap_or_default();
    let Some(name) = names.get(id).copied() else {
        return Err(RequestError::new(
            format!(
                "messages[{index}].tool_call_id: no earlier assistant message has a tool call with id {id:?}"
            ),
            Some("messages"),
        ));
    };
    if let Some(part_index) = message.content.iter().position(|part| matches!(part, Part::Image(_))) {
        return Err(RequestError::new(
            format!(
                "messages[{index}].content[{part_index}]: images in tool results are not supported by this backend"
            ),
            Some("messages"),
        ));
    }
    let text = message.text();
    let response = match json_object(&text) {
        Some(object) if !text.trim().is_empty() => object,
        _ => {
            let wrapped = serde_json::json!({ "output": text }).to_string();
            RawValue::from_string(wrapped).map_err(|err| RequestError::new(err.to_string(), None))?
        }
    };
    Ok(FunctionResponse { name, response })
}

/// A message's parts; empty text is left out.
fn content_parts(parts: &[Part], index: usize) -> Result<Vec<WirePart<'_>>, RequestError> {
    let mut out = Vec::with_capacity(parts.len());
    for (part_index, part) in parts.iter().enumerate() {
        match part {
            Part::Text(text) if text.text.is_empty() => {}
            Part::Text(text) => out.push(WirePart::Text(&text.text)),
            Part::Image(image) => match &image.source {
                ImageSource::Url(_) => {
                    return Err(RequestError::new(
                        format!(
                            "messages[{index}].content[{part_index}]: image URLs are not supported by this backend; send the image inline as a data: URL"
                        ),
                        Some("messages"),
                    ));
                }
                ImageSource::Base64 { media_type, data } => {
                    if !IMAGE_TYPES.contains(&media_type.as_str()) {
                        return Err(RequestError::new(
                            format!(
                                "messages[{index}].content[{part_index}]: image type {media_type} is not supported by this backend (png, jpeg, webp, heic, heif)"
                            ),
                            Some("messages"),
                        ));
                    }
                    out.push(WirePart::InlineData(Blob { mime_type: media_type, data }));
                }
            },
        }
    }
    Ok(out)
}

/// JSON text that is an object, as raw JSON; empty text is `{}`.
fn json_object(text: &str) -> Option<Box<RawValue>> {
    let text = text.trim();
    if text.is_empty() {
        return RawValue::from_string("{}".to_owned()).ok();
    }
    let raw: Box<RawValue> = serde_json::from_str(text).ok()?;
    raw.get().starts_with('{').then_some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::ModelRequest;
    use serde_json::json;

    fn build(body: &str) -> Result<Value, RequestError> {
        let request = ModelRequest::parse(body.as_bytes()).unwrap().to_hub("gemini-2.5-flash").unwrap();
        build_request(&request, Options::default()).map(|b| serde_json::from_slice(&b).unwrap())
    }

    const USER: &str = r#"{"role":"user","content":"hi"}"#;

    #[test]
    fn a_plain_request_has_contents_only() {
        let body =
            build(&format!(r#"{{"model":"m","messages":[{USER}],"stream":true,"user":"u1"}}"#)).unwrap();
        assert_eq!(body, json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}));
    }

    #[test]
    fn system_roles_and_generation_settings() {
        let body = build(
            r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":"Use French."},
            {"role":"user","content":"hi"},{"role":"assistant","content":"salut"},{"role":"assistant","content":""},
            {"role":"user","content":"again"}],
            "max_completion_tokens":100,"temperature":1.5,"top_p":0.9,"stop":["END","STOP"]}"#,
        )
        .unwrap();
        assert_eq!(
            body["systemInstruction"],
            json!({"parts": [{"text": "Be brief."}, {"text": "Use French."}]})
        );
        assert_eq!(
            body["contents"],
            json!([
                {"role": "user", "parts": [{"text": "hi"}]},
                {"role": "model", "parts": [{"text": "salut"}]},
                {"role": "user", "parts": [{"text": "again"}]}
            ])
        );
        assert_eq!(
            body["generationConfig"],
            json!({"maxOutputTokens": 100, "temperature": 1.5, "topP": 0.9, "stopSequences": ["END", "STOP"]})
        );
        let request = ModelRequest::parse(format!(r#"{{"model":"m","messages":[{USER}]}}"#).as_bytes())
            .unwrap()
            .to_hub("g")
            .unwrap();
        let body: Value = serde_json::from_slice(
            &build_request(&request, Options { default_max_tokens: Some(64) }).unwrap(),
        )
        .unwrap();
        assert_eq!(
            body["generationConfig"],
            json!({"maxOutputTokens": 64}),
            "the default when the client sent none"
        );
    }

    #[test]
    fn tool_calls_and_results_are_named_function_parts() {
        let body = build(
            r#"{"model":"m","messages":[{"role":"user","content":"weather?"},
            {"role":"assistant","content":"Looking.","tool_calls":[
              {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}},
              {"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}}]},
            {"role":"tool","tool_call_id":"call_b","content":"12:00"},
            {"role":"tool","tool_call_id":"call_a","content":"{\"temp\": 21, \"unit\": \"C\"}"},
            {"role":"user","content":"thanks"}]}"#,
        )
        .unwrap();
        assert_eq!(
            body["contents"],
            json!([
                {"role": "user", "parts": [{"text": "weather?"}]},
                {"role": "model", "parts": [
                    {"text": "Looking."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_time", "args": {}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_time", "response": {"output": "12:00"}}},
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21, "unit": "C"}}},
                    {"text": "thanks"}
                ]}
            ])
        );
    }

    #[test]
    fn tools_and_tool_choice() {
        let tools = r#"[{"type":"function","function":{"name":"f","description":"does f",
            "parameters":{"type":"object","properties":{"x":{"type":"string"}},"required":["x"],"additionalProperties":false}}},
            {"type":"function","function":{"name":"g"}}]"#;
        let body = build(&format!(r#"{{"model":"m","messages":[{USER}],"tools":{tools}}}"#)).unwrap();
        assert_eq!(
            body["tools"],
            json!([{"functionDeclarations": [
                {"name": "f", "description": "does f",
                 "parameters": {"type": "OBJECT", "properties": {"x": {"type": "STRING"}}, "required": ["x"]}},
                {"name": "g"}
            ]}])
        );
        assert!(body.get("toolConfig").is_none());
        for (choice, config) in [
            (r#""auto""#, json!({"mode": "AUTO"})),
            (r#""none""#, json!({"mode": "NONE"})),
            (r#""required""#, json!({"mode": "ANY"})),
            (
                r#"{"type":"function","function":{"name":"g"}}"#,
                json!({"mode": "ANY", "allowedFunctionNames": ["g"]}),
            ),
        ] {
            let body = build(&format!(
                r#"{{"model":"m","messages":[{USER}],"tools":{tools},"tool_choice":{choice}}}"#
            ))
            .unwrap();
            assert_eq!(body["toolConfig"], json!({"functionCallingConfig": config}), "{choice}");
        }
    }

    #[test]
    fn images_inline_and_json_modes() {
        let body = build(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is it?"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]}],
            "response_format":{"type":"json_object"}}"#,
        )
        .unwrap();
        assert_eq!(
            body["contents"][0]["parts"][1],
            json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
        );
        assert_eq!(body["generationConfig"], json!({"responseMimeType": "application/json"}));
        let body = build(&format!(
            r#"{{"model":"m","messages":[{USER}],"response_format":{{"type":"json_schema","json_schema":{{"name":"a",
            "schema":{{"type":"object","properties":{{"n":{{"type":"integer"}}}},"additionalProperties":false}},"strict":true}}}}}}"#
        ))
        .unwrap();
        assert_eq!(
            body["generationConfig"],
            json!({"responseMimeType": "application/json",
                   "responseSchema": {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}}})
        );
    }

    #[test]
    fn an_image_in_a_tool_result_is_refused() {
        use crate::hub::{Image, Text, ToolCall};
        let request = ChatRequest {
            model: "g".into(),
            messages: vec![
                Message {
                    role: Role::Assistant,
                    content: Vec::new(),
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "shot".into(),
                        arguments: "{}".into(),
                    }],
                    tool_call_id: None,
                },
                Message {
                    role: Role::Tool,
                    content: vec![
                        Part::Text(Text::plain("here")),
                        Part::Image(Image {
                            source: ImageSource::Base64 {
                                media_type: "image/png".into(),
                                data: "AA==".into(),
                            },
                            detail: None,
                        }),
                    ],
                    tool_calls: Vec::new(),
                    tool_call_id: Some("c1".into()),
                },
            ],
            ..ChatRequest::default()
        };
        let err = build_request(&request, Options::default()).unwrap_err();
        assert_eq!(
            err.message,
            "messages[1].content[1]: images in tool results are not supported by this backend"
        );
    }

    #[test]
    fn what_gemini_would_refuse_is_refused_here_with_the_reason() {
        for (body, param, words) in [
            (
                format!(r#"{{"model":"m","messages":[{USER}],"stop":["a","b","c","d","e","f"]}}"#),
                "stop",
                "at most 5 stop sequences",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}"#.to_owned(),
                "messages",
                "messages[0].content[1]: image URLs are not supported",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/gif;base64,R0lGOD=="}}]}]}"#.to_owned(),
                "messages",
                "messages[0].content[0]: image type image/gif",
            ),
            (
                r#"{"model":"m","messages":[{"role":"system","content":"only"}]}"#.to_owned(),
                "messages",
                "at least one user message",
            ),
            (
                format!(r#"{{"model":"m","messages":[{USER},{{"role":"tool","tool_call_id":"nope","content":"x"}}]}}"#),
                "messages",
                "messages[1].tool_call_id: no earlier assistant message has a tool call with id \"nope\"",
            ),
            (
                format!(r#"{{"model":"m","messages":[{USER},{{"role":"assistant","tool_calls":[{{"id":"c","type":"function","function":{{"name":"f","arguments":"[1]"}}}}]}}]}}"#),
                "messages",
                "messages[1].tool_calls[0].function.arguments: not a JSON object",
            ),
            (
                format!(r#"{{"model":"m","messages":[{USER}],"tools":[{{"type":"function","function":{{"name":"f","parameters":{{"type":"object","properties":{{"v":{{}}}}}}}}}}]}}"#),
                "tools",
                "tools[0].function.parameters.properties.v: a schema without a type",
            ),
            (
                format!(r#"{{"model":"m","messages":[{USER}],"response_format":{{"type":"json_schema","json_schema":{{"name":"a","schema":{{"type":"array"}}}}}}}}"#),
                "response_format",
                "response_format.json_schema.schema: an array without items",
            ),
        ] {
            let err = build(&body).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
            assert!(err.message.contains(words), "{body}: {}", err.message);
        }
    }
}
