//! When and how the mock calls a tool: deterministic calls, so a client's tool loop can be
//! exercised without a model.
//!
//! - The mock calls a tool when the request offers tools, allows calls (`tool_choice` is not
//!   `none`) and the conversation's last turn is not a tool result; after a tool result it
//!   answers text (derived from that result), so a tool loop ends after one round.
//! - The tool is the one `tool_choice` forces, else the first offered. Only ever one call per
//!   answer, even when parallel calls are allowed and several tools are offered: simple to
//!   predict, and every client handles a single call.
//! - The arguments are built from the tool's JSON Schema ([`arguments_for`]): each required
//!   property gets a value of its type.
//! - Streamed, the arguments arrive in pieces ([`next_piece`]), and the answer's output tokens
//!   are the number of those pieces, streamed or not.

use serde_json::{Map, Value};
use switchboard_llm::hub::{ChatRequest, Role, ToolCall, ToolChoice};
use switchboard_llm::openai::RequestError;

/// The call the mock makes for `request`, if it makes one; `number` is the answer's (from the
/// response counter), so the call's id is `call_mock_<number>`.
pub(super) fn planned(request: &ChatRequest, number: u64) -> Result<Option<ToolCall>, RequestError> {
    let answers_a_tool_result = request.messages.last().is_some_and(|message| message.role == Role::Tool);
    if request.tools.is_empty() || request.tool_choice == Some(ToolChoice::None) || answers_a_tool_result {
        return Ok(None);
    }
    let tool = match &request.tool_choice {
        Some(ToolChoice::Function(name)) => {
            request.tools.iter().find(|tool| tool.name == *name).ok_or_else(|| {
                RequestError::new(
                    format!("tool_choice names the function '{name}', which is not in 'tools'"),
                    Some("tool_choice"),
                )
            })?
        }
        _ => &request.tools[0],
    };
    Ok(Some(ToolCall {
        id: format!("call_mock_{number}"),
        name: tool.name.clone(),
        arguments: arguments_for(&tool.parameters).to_string(),
    }))
}

/// Arguments that satisfy the shape of the `parameters` schema: an object with every `required`
/// property (none without a `required` list), each valued by [`value_for`]. Constraints other
/// than type, `enum` and `const` (lengths, patterns, ranges) are not honoured.
pub(super) fn arguments_for(parameters: &Value) -> Value {
    match parameters {
        Value::Object(schema) => object_for(schema),
        _ => Value::Object(Map::new()),
    }
}

/// A value for one property's schema: its `const`, else its first `enum` value, else the first
/// alternative of `anyOf`/`oneOf`, else by `type` (the first non-null of a type list): string
/// "mock", number or integer 0, boolean false, array `[]`, object its required properties
/// recursively, null null. A schema that allows anything (no type) gets null.
///
/// The recursion follows the schema's nesting, which the parsed request already bounds (serde_json
/// reads at most 128 levels, and the gateway refuses deeper bodies at the edge).
fn value_for(schema: &Value) -> Value {
    let Value::Object(schema) = schema else { return Value::Null };
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|values| values.first()) {
        return first.clone();
    }
    let alternative = ["anyOf", "oneOf"]
        .iter()
        .find_map(|key| schema.get(*key).and_then(Value::as_array).and_then(|schemas| schemas.first()));
    if let Some(alternative) = alternative {
        return value_for(alternative);
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => Some(kind.as_str()),
        Some(Value::Array(kinds)) => {
            let mut kinds = kinds.iter().filter_map(Value::as_str);
            kinds.clone().find(|kind| *kind != "null").or_else(|| kinds.next())
        }
        _ => None,
    };
    match kind {
        Some("string") => Value::from("mock"),
        Some("number" | "integer") => Value::from(0),
        Some("boolean") => Value::Bool(false),
        Some("array") => Value::Array(Vec::new()),
        Some("object") => object_for(schema),
        None if schema.contains_key("properties") => object_for(schema),
        _ => Value::Null,
    }
}

/// An object with each of the schema's `required` properties; a required name without a schema
/// under `properties` allows anything, and gets null.
fn object_for(schema: &Map<String, Value>) -> Value {
    let properties = schema.get("properties").and_then(Value::as_object);
    let required = schema.get("required").and_then(Value::as_array).into_iter().flatten();
    let object = required
        .filter_map(Value::as_str)
        .map(|name| {
            let value = properties.and_then(|properties| properties.get(name)).map_or(Value::Null, value_for);
            (name.to_owned(), value)
        })
        .collect();
    Value::Object(object)
}

/// The next piece of the arguments text from `offset`, as a model's tokens split JSON: a run of
/// word characters (letters, digits, `_`), or a run of other characters, with `{` and `[` each a
/// piece of their own. So `{"city":"mock"}` streams as `{`, `"`, `city`, `":"`, `mock`, `"}`,
/// and any arguments (at least `{}`) in two pieces or more. The pieces concatenate to the
/// arguments exactly.
pub(super) fn next_piece<'a>(text: &'a str, offset: &mut usize) -> Option<&'a str> {
    let rest = &text[*offset..];
    let mut chars = rest.char_indices();
    let (_, first) = chars.next()?;
    let opens = |c: char| matches!(c, '{' | '[');
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let end = if opens(first) {
        first.len_utf8()
    } else {
        chars.find(|&(_, c)| is_word(c) != is_word(first) || opens(c)).map_or(rest.len(), |(at, _)| at)
    };
    *offset += end;
    Some(&rest[..end])
}

/// How many pieces [`next_piece`] cuts `text` into: the tool call's output tokens.
pub(super) fn piece_count(text: &str) -> u64 {
    let mut offset = 0;
    std::iter::from_fn(|| next_piece(text, &mut offset)).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_llm::hub::{Message, Part, Text, Tool};

    fn tool(name: &str, parameters: Value) -> Tool {
        Tool { name: name.into(), description: None, parameters, strict: None, cache: None }
    }

    fn message(role: Role, text: &str) -> Message {
        Message {
            role,
            content: vec![Part::Text(Text::plain(text))],
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    #[test]
    fn required_properties_get_a_value_of_their_type() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["C", "F"]},
                "days": {"type": "integer"},
                "ratio": {"type": "number", "enum": [0.5, 1]},
                "exact": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "where": {
                    "type": "object",
                    "properties": {"lat": {"type": "number"}, "name": {"type": "string"}},
                    "required": ["lat"],
                },
                "note": {"type": ["null", "string"]},
                "kind": {"const": "weather"},
                "either": {"anyOf": [{"type": "boolean"}, {"type": "string"}]},
                "anything": {"description": "no type"},
                "optional": {"type": "string"},
            },
            "required": ["city", "unit", "days", "ratio", "exact", "tags", "where", "note", "kind", "either",
                "anything", "undeclared"],
        });
        assert_eq!(
            arguments_for(&schema),
            json!({
                "city": "mock", "unit": "C", "days": 0, "ratio": 0.5, "exact": false, "tags": [],
                "where": {"lat": 0}, "note": "mock", "kind": "weather", "either": false,
                "anything": null, "undeclared": null,
            })
        );
    }

    #[test]
    fn without_a_required_list_the_arguments_are_empty() {
        assert_eq!(
            arguments_for(&json!({"type": "object", "properties": {"a": {"type": "string"}}})),
            json!({})
        );
        assert_eq!(arguments_for(&json!({})), json!({}));
        assert_eq!(arguments_for(&Value::Null), json!({}));
    }

    #[test]
    fn the_forced_tool_is_called_else_the_first_and_never_after_a_tool_result() {
        let mut request = ChatRequest {
            messages: vec![message(Role::User, "hi")],
            tools: vec![
                tool(
                    "first",
                    json!({"type": "object", "required": ["q"], "properties": {"q": {"type": "string"}}}),
                ),
                tool("second", json!({"type": "object"})),
            ],
            ..ChatRequest::default()
        };
        let call = planned(&request, 9).unwrap().unwrap();
        assert_eq!(
            (call.id.as_str(), call.name.as_str(), call.arguments.as_str()),
            ("call_mock_9", "first", r#"{"q":"mock"}"#)
        );

        request.tool_choice = Some(ToolChoice::Function("second".into()));
        assert_eq!(planned(&request, 1).unwrap().unwrap().name, "second");
        request.tool_choice = Some(ToolChoice::Function("third".into()));
        assert_eq!(planned(&request, 1).unwrap_err().param.as_deref(), Some("tool_choice"));

        request.tool_choice = Some(ToolChoice::None);
        assert_eq!(planned(&request, 1).unwrap(), None);
        request.tool_choice = Some(ToolChoice::Required);
        request.messages.push(message(Role::Tool, "22 degrees"));
        assert_eq!(planned(&request, 1).unwrap(), None, "a tool result is answered in text");
        request.tools.clear();
        request.messages.truncate(1);
        assert_eq!(planned(&request, 1).unwrap(), None);
    }

    fn split(text: &str) -> Vec<&str> {
        let mut offset = 0;
        std::iter::from_fn(|| next_piece(text, &mut offset)).collect()
    }

    #[test]
    fn pieces_concatenate_to_the_arguments() {
        assert_eq!(split("{}"), ["{", "}"]);
        assert_eq!(split(r#"{"a":[]}"#), ["{", "\"", "a", "\":", "[", "]}"]);
        let text = r#"{"city":"Zürich","unit_name":"C","n":[0,{"x":1}]}"#;
        let pieces = split(text);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.contains(&"Zürich") && pieces.contains(&"unit_name"), "{pieces:?}");
        assert_eq!(piece_count(text), pieces.len() as u64);
        assert_eq!(piece_count(""), 0);
    }
}
