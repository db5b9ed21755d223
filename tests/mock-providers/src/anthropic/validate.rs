//! Validation of a Messages (or count_tokens) request body, as strictly as the real API, with its
//! pydantic-style messages: `<field path>: <problem>` where a path names union members by their
//! tag (`messages.1.content.0.image.source.base64.media_type`, `tools.0.custom.name`). The first
//! problem found is reported, structural problems before conversation rules.
//!
//! It also computes what the reply needs: the prompt token count (the counting rule is in the
//! module docs of `anthropic`), the text the last user turn said, the tools, the tool choice and
//! the requested JSON output schema.

use super::fields::{
    boolean, field, fields, integer, is_server_tool_type, join, json_schema_shape, kind, list, literal,
    number, obj, output_format, string, valid_tool_name,
};
use super::turns::{conversation_rules, heard};
use crate::json::{Json, count_words};

mod blocks;

/// Which endpoint the body was sent to; they accept different top-level fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Messages,
    CountTokens,
}

/// A custom (client) tool the model may call.
#[derive(Debug)]
pub(crate) struct Tool<'a> {
    pub(crate) name: &'a str,
    pub(crate) schema: &'a Json,
}

/// `tool_choice.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice<'a> {
    Auto,
    Any,
    Tool(&'a str),
    None,
}

/// What a valid request asks for.
#[derive(Debug)]
pub(crate) struct Checked<'a> {
    pub(crate) model: &'a str,
    /// 0 for count_tokens.
    pub(crate) max_tokens: u64,
    pub(crate) stream: bool,
    pub(crate) stop_sequences: Vec<&'a str>,
    pub(crate) tools: Vec<Tool<'a>>,
    pub(crate) choice: Choice<'a>,
    pub(crate) disable_parallel: bool,
    /// `output_config.format.schema` (or the beta `output_format.schema`).
    pub(crate) json_schema: Option<&'a Json>,
    pub(crate) input_tokens: u64,
    /// What the last user turn said, summarised (see `heard` in the module docs).
    pub(crate) heard: String,
    /// Number of entries in `messages`.
    pub(crate) turns: usize,
}

use super::fields::V;

/// Top-level fields of `POST /v1/messages` (SDK `MessageCreateParams`, plus the beta
/// `mcp_servers`, `context_management` and `output_format`).
const MESSAGES_FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "cache_control",
    "container",
    "context_management",
    "inference_geo",
    "mcp_servers",
    "metadata",
    "output_config",
    "output_format",
    "service_tier",
    "stop_sequences",
    "stream",
    "system",
    "temperature",
    "thinking",
    "tool_choice",
    "tools",
    "top_k",
    "top_p",
];

/// Top-level fields of `POST /v1/messages/count_tokens` (SDK `MessageCountTokensParams`).
const COUNT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "cache_control",
    "context_management",
    "mcp_servers",
    "output_config",
    "output_format",
    "system",
    "thinking",
    "tool_choice",
    "tools",
];

/// Validates `body` (already parsed) for `endpoint`. `strict_turns`: reject consecutive
/// same-role messages and an assistant first message instead of combining turns.
pub(crate) fn check(body: &Json, endpoint: Endpoint, strict_turns: bool) -> V<Checked<'_>> {
    let mut c = Checker { tokens: 0, cache_controls: 0 };
    c.request(body, endpoint, strict_turns)
}

struct Checker {
    tokens: u64,
    cache_controls: usize,
}

impl Checker {
    fn request<'a>(&mut self, body: &'a Json, endpoint: Endpoint, strict_turns: bool) -> V<Checked<'a>> {
        let top = body.as_obj().ok_or("body: Input should be a valid dictionary")?;
        let (allowed, required): (&[&str], &[&str]) = match endpoint {
            Endpoint::Messages => (MESSAGES_FIELDS, &["model", "messages", "max_tokens"]),
            Endpoint::CountTokens => (COUNT_FIELDS, &["model", "messages"]),
        };
        fields(top, "", required, allowed)?;
        let get = |k: &str| field(top, k);

        // https://docs.anthropic.com/en/api/messages#body-model
        let model = string(get("model").unwrap_or(&Json::Null), "model")?;
        if model.is_empty() {
            return Err("model: String should have at least 1 character".into());
        }
        // https://docs.anthropic.com/en/api/messages#body-max-tokens: 0 only pre-warms the cache.
        let max_tokens = match get("max_tokens") {
            Some(v) => {
                let n = integer(v, "max_tokens")?;
                u64::try_from(n).map_err(|_| "max_tokens: Input should be greater than or equal to 0")?
            }
            None => 0,
        };
        let stream = match get("stream") {
            Some(v) => boolean(v, "stream")?,
            None => false,
        };

        // https://docs.anthropic.com/en/api/messages#body-system: a string or text blocks.
        if let Some(system) = get("system") {
            match system {
                Json::Str(s) => self.tokens += count_words(s),
                Json::Arr(blocks) => {
                    for (i, b) in blocks.iter().enumerate() {
                        let path = format!("system.{i}");
                        let o = obj(b, &path)?;
                        fields(o, &path, &["type", "text"], &["type", "text", "cache_control", "citations"])?;
                        literal(field(o, "type").unwrap_or(&Json::Null), &join(&path, "type"), &["text"])?;
                        self.text_block(o, &path)?;
                        if let Some(cc) = field(o, "cache_control") {
                            self.cache_control(cc, &join(&path, "cache_control"))?;
                        }
                    }
                }
                _ => return Err("system: Input should be a valid string".into()),
            }
        }

        let messages = list(get("messages").unwrap_or(&Json::Null), "messages")?;
        if messages.is_empty() {
            return Err("messages: at least one message is required".into());
        }
        let mut facts = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            facts.push(self.message(m, i)?);
        }

        let mut tools = Vec::new();
        let mut tool_count = 0;
        if let Some(t) = get("tools") {
            for (i, tool) in list(t, "tools")?.iter().enumerate() {
                if let Some(custom) = self.tool(tool, i)? {
                    tools.push(custom);
                }
                tool_count += 1;
            }
            let names: Vec<&str> =
                list(t, "tools")?.iter().filter_map(|t| t.get("name").and_then(Json::as_str)).collect();
            if names.iter().enumerate().any(|(i, n)| names[..i].contains(n)) {
                return Err("tools: Tool names must be unique.".into());
            }
        }

        // https://docs.anthropic.com/en/docs/build-with-claude/tool-use#forcing-tool-use
        let mut choice = Choice::Auto;
        let mut disable_parallel = false;
        if let Some(tc) = get("tool_choice") {
            let o = obj(tc, "tool_choice")?;
            let ty = literal(
                field(o, "type").ok_or("tool_choice.type: Field required")?,
                "tool_choice.type",
                &["auto", "any", "tool", "none"],
            )?;
            let path = format!("tool_choice.{ty}");
            match ty {
                "tool" => {
                    fields(o, &path, &["type", "name"], &["type", "name", "disable_parallel_tool_use"])?
                }
                "none" => fields(o, &path, &["type"], &["type"])?,
                _ => fields(o, &path, &["type"], &["type", "disable_parallel_tool_use"])?,
            }
            if let Some(d) = field(o, "disable_parallel_tool_use") {
                disable_parallel = boolean(d, &join(&path, "disable_parallel_tool_use"))?;
            }
            choice = match ty {
                "any" => Choice::Any,
                "none" => Choice::None,
                "tool" => {
                    Choice::Tool(string(field(o, "name").unwrap_or(&Json::Null), &join(&path, "name"))?)
                }
                _ => Choice::Auto,
            };
            if tool_count == 0 && choice != Choice::None {
                return Err("tool_choice: tool_choice may only be specified while providing tools.".into());
            }
            if let Choice::Tool(name) = choice
                && !tools.iter().any(|t| t.name == name)
            {
                return Err(format!("tool_choice.tool.name: Tool '{name}' not found in tools"));
            }
        }

        let mut stop_sequences = Vec::new();
        if let Some(s) = get("stop_sequences") {
            for (i, seq) in list(s, "stop_sequences")?.iter().enumerate() {
                let seq = string(seq, &format!("stop_sequences.{i}"))?;
                // https://docs.anthropic.com/en/api/messages#body-stop-sequences
                if seq.trim().is_empty() {
                    return Err("stop_sequences: each stop sequence must contain non-whitespace".into());
                }
                stop_sequences.push(seq);
            }
        }

        // https://docs.anthropic.com/en/api/messages#body-temperature: "Ranges from 0.0 to 1.0".
        let temperature = match get("temperature") {
            Some(t) => {
                let t = number(t, "temperature")?;
                if !(0.0..=1.0).contains(&t) {
                    return Err("temperature: range: 0..1".into());
                }
                Some(t)
            }
            None => None,
        };
        if let Some(p) = get("top_p") {
            let p = number(p, "top_p")?;
            if !(0.0..=1.0).contains(&p) {
                return Err("top_p: range: 0..1".into());
            }
        }
        if let Some(k) = get("top_k")
            && integer(k, "top_k")? < 0
        {
            return Err("top_k: Input should be greater than or equal to 0".into());
        }
        if let Some(m) = get("metadata") {
            let o = obj(m, "metadata")?;
            fields(o, "metadata", &[], &["user_id"])?;
            if let Some(u) = field(o, "user_id").filter(|u| !u.is_null()) {
                string(u, "metadata.user_id")?;
            }
        }
        if let Some(t) = get("service_tier") {
            literal(t, "service_tier", &["auto", "standard_only"])?;
        }
        if let Some(cc) = get("cache_control") {
            self.cache_control(cc, "cache_control")?;
        }
        if let Some(g) = get("inference_geo").filter(|g| !g.is_null()) {
            string(g, "inference_geo")?;
        }
        if let Some(c) = get("container").filter(|c| !c.is_null())
            && !matches!(c, Json::Str(_) | Json::Obj(_))
        {
            return Err("container: Input should be a valid string".into());
        }
        if let Some(m) = get("mcp_servers") {
            for (i, s) in list(m, "mcp_servers")?.iter().enumerate() {
                obj(s, &format!("mcp_servers.{i}"))?;
            }
        }
        if let Some(cm) = get("context_management") {
            obj(cm, "context_management")?;
        }
        let mut json_schema = None;
        if let Some(oc) = get("output_config") {
            let o = obj(oc, "output_config")?;
            fields(o, "output_config", &[], &["effort", "format"])?;
            if let Some(e) = field(o, "effort").filter(|e| !e.is_null()) {
                literal(e, "output_config.effort", &["low", "medium", "high", "xhigh", "max"])?;
            }
            if let Some(f) = field(o, "format").filter(|f| !f.is_null()) {
                json_schema = Some(output_format(f, "output_config.format")?);
            }
        }
        if let Some(f) = get("output_format").filter(|f| !f.is_null()) {
            json_schema = Some(output_format(f, "output_format")?);
        }

        // https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
        if let Some(th) = get("thinking") {
            let o = obj(th, "thinking")?;
            let ty = literal(
                field(o, "type").ok_or("thinking.type: Field required")?,
                "thinking.type",
                &["enabled", "disabled", "adaptive"],
            )?;
            let path = format!("thinking.{ty}");
            match ty {
                "enabled" => {
                    fields(o, &path, &["type", "budget_tokens"], &["type", "budget_tokens", "display"])?;
                    let budget = integer(
                        field(o, "budget_tokens").unwrap_or(&Json::Null),
                        &join(&path, "budget_tokens"),
                    )?;
                    if budget < 1024 {
                        return Err(format!(
                            "{path}.budget_tokens: Input should be greater than or equal to 1024"
                        ));
                    }
                    if endpoint == Endpoint::Messages && u64::try_from(budget).is_ok_and(|b| b >= max_tokens)
                    {
                        return Err("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size".into());
                    }
                }
                "adaptive" => fields(o, &path, &["type"], &["type", "display"])?,
                _ => fields(o, &path, &["type"], &["type"])?,
            }
            if let Some(d) = field(o, "display").filter(|d| !d.is_null()) {
                literal(d, &join(&path, "display"), &["summarized", "omitted"])?;
            }
            if ty != "disabled" {
                if temperature.is_some_and(|t| t != 1.0) {
                    return Err("`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#feature-compatibility".into());
                }
                if matches!(choice, Choice::Any | Choice::Tool(_)) {
                    return Err("Thinking may not be enabled when tool_choice forces tool use.".into());
                }
            }
        }

        // https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching: at most 4 breakpoints.
        if self.cache_controls > 4 {
            return Err(format!(
                "A maximum of 4 blocks with cache_control may be provided. Found {}.",
                self.cache_controls
            ));
        }

        conversation_rules(&facts, strict_turns)?;

        self.tokens += tool_count;
        Ok(Checked {
            model,
            max_tokens,
            stream,
            stop_sequences,
            tools,
            choice,
            disable_parallel,
            json_schema,
            input_tokens: self.tokens,
            heard: heard(messages, strict_turns),
            turns: messages.len(),
        })
    }

    /// https://docs.anthropic.com/en/docs/build-with-claude/tool-use#specifying-client-tools
    fn tool<'a>(&mut self, t: &'a Json, i: usize) -> V<Option<Tool<'a>>> {
        let path = format!("tools.{i}");
        let o = obj(t, &path)?;
        let ty = match field(o, "type") {
            None | Some(Json::Null) => "custom",
            Some(Json::Str(s)) => s.as_str(),
            Some(other) => {
                return Err(format!("{path}.type: Input should be a valid string, got {}", kind(other)));
            }
        };
        if ty != "custom" {
            if !is_server_tool_type(ty) {
                return Err(format!(
                    "{path}: Input tag '{ty}' found using 'type' does not match any of the expected tags: 'custom', or a versioned server tool type such as 'web_search_20250305'"
                ));
            }
            let tpath = join(&path, ty);
            string(field(o, "name").ok_or(format!("{tpath}.name: Field required"))?, &join(&tpath, "name"))?;
            if let Some(cc) = field(o, "cache_control") {
                self.cache_control(cc, &join(&tpath, "cache_control"))?;
            }
            return Ok(None);
        }
        let tpath = join(&path, "custom");
        fields(
            o,
            &tpath,
            &["name", "input_schema"],
            &[
                "name",
                "description",
                "input_schema",
                "cache_control",
                "type",
                "strict",
                "input_examples",
                "defer_loading",
                "allowed_callers",
                "eager_input_streaming",
            ],
        )?;
        let name = string(field(o, "name").unwrap_or(&Json::Null), &join(&tpath, "name"))?;
        if !valid_tool_name(name) {
            return Err(format!("{tpath}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"));
        }
        if let Some(d) = field(o, "description") {
            string(d, &join(&tpath, "description"))?;
        }
        if let Some(s) = field(o, "strict") {
            boolean(s, &join(&tpath, "strict"))?;
        }
        if let Some(cc) = field(o, "cache_control") {
            self.cache_control(cc, &join(&tpath, "cache_control"))?;
        }
        let spath = join(&tpath, "input_schema");
        let schema = field(o, "input_schema").unwrap_or(&Json::Null);
        let so = obj(schema, &spath)?;
        literal(
            field(so, "type").ok_or(format!("{spath}.type: Field required"))?,
            &join(&spath, "type"),
            &["object"],
        )?;
        json_schema_shape(schema, &spath)?;
        Ok(Some(Tool { name, schema }))
    }
}
