//! Messages and their content blocks: roles, the block union by its `type` tag, text blocks and
//! `cache_control`.

use super::Checker;
use crate::anthropic::fields::{
    V, boolean, document_source, field, fields, image_source, join, kind, list, literal, obj, string, tag,
    tool_id,
};
use crate::anthropic::turns::MessageFacts;
use crate::json::{Json, count_words};

const BLOCK_TAGS: &[&str] = &[
    "text",
    "image",
    "document",
    "search_result",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "container_upload",
    "mcp_tool_use",
    "mcp_tool_result",
];

impl Checker {
    /// One entry of `messages`: https://docs.anthropic.com/en/api/messages#body-messages
    pub(super) fn message<'a>(&mut self, m: &'a Json, i: usize) -> V<MessageFacts<'a>> {
        let path = format!("messages.{i}");
        let o = obj(m, &path)?;
        fields(o, &path, &["role", "content"], &["role", "content"])?;
        // There is no "system" role in Messages: the system prompt is the top-level `system`.
        let role =
            literal(field(o, "role").unwrap_or(&Json::Null), &join(&path, "role"), &["user", "assistant"])?;
        let mut facts = MessageFacts {
            role,
            empty: false,
            tool_uses: Vec::new(),
            tool_results: Vec::new(),
            late_tool_result: None,
            trailing_space: false,
        };
        let content_path = join(&path, "content");
        match field(o, "content").unwrap_or(&Json::Null) {
            Json::Str(s) => {
                self.tokens += count_words(s);
                facts.empty = s.is_empty();
                facts.trailing_space = s.ends_with(char::is_whitespace);
            }
            Json::Arr(blocks) => {
                facts.empty = blocks.is_empty();
                for (j, b) in blocks.iter().enumerate() {
                    let bpath = format!("{content_path}.{j}");
                    let ty = self.block(b, &bpath, role)?;
                    match ty {
                        "tool_use" => {
                            facts.tool_uses.push(b.get("id").and_then(Json::as_str).unwrap_or_default());
                        }
                        "tool_result" => {
                            facts
                                .tool_results
                                .push((j, b.get("tool_use_id").and_then(Json::as_str).unwrap_or_default()));
                            if j > facts.tool_results.len() - 1 && facts.late_tool_result.is_none() {
                                facts.late_tool_result = Some(j);
                            }
                        }
                        _ => {}
                    }
                    if j + 1 == blocks.len() {
                        facts.trailing_space = ty == "text"
                            && b.get("text")
                                .and_then(Json::as_str)
                                .is_some_and(|t| t.ends_with(char::is_whitespace));
                    }
                }
            }
            other => {
                return Err(format!("{content_path}: Input should be a valid string, got {}", kind(other)));
            }
        }
        Ok(facts)
    }

    /// One content block; returns its type.
    pub(super) fn block<'a>(&mut self, b: &'a Json, path: &str, role: &str) -> V<&'a str> {
        let o = obj(b, path)?;
        let ty = tag(o, path, BLOCK_TAGS)?;
        let tpath = join(path, ty);
        match ty {
            "text" => {
                fields(o, &tpath, &["type", "text"], &["type", "text", "cache_control", "citations"])?;
                self.text_block(o, &tpath)?;
            }
            "image" => {
                fields(o, &tpath, &["type", "source"], &["type", "source", "cache_control"])?;
                self.tokens += 1;
                image_source(field(o, "source").unwrap_or(&Json::Null), &join(&tpath, "source"))?;
            }
            "document" => {
                fields(
                    o,
                    &tpath,
                    &["type", "source"],
                    &["type", "source", "title", "context", "citations", "cache_control"],
                )?;
                self.tokens += 1;
                document_source(field(o, "source").unwrap_or(&Json::Null), &join(&tpath, "source"))?;
            }
            "tool_use" => {
                // https://docs.anthropic.com/en/docs/build-with-claude/tool-use: the model's calls.
                if role != "assistant" {
                    return Err(format!("{path}: `tool_use` blocks can only appear in `assistant` messages"));
                }
                fields(
                    o,
                    &tpath,
                    &["type", "id", "name", "input"],
                    &["type", "id", "name", "input", "cache_control", "caller"],
                )?;
                tool_id(field(o, "id").unwrap_or(&Json::Null), &join(&tpath, "id"))?;
                string(field(o, "name").unwrap_or(&Json::Null), &join(&tpath, "name"))?;
                obj(field(o, "input").unwrap_or(&Json::Null), &join(&tpath, "input"))?;
                self.tokens += 1;
            }
            "tool_result" => {
                if role != "user" {
                    return Err(format!("{path}: `tool_result` blocks can only appear in `user` messages"));
                }
                fields(
                    o,
                    &tpath,
                    &["type", "tool_use_id"],
                    &["type", "tool_use_id", "content", "is_error", "cache_control"],
                )?;
                tool_id(field(o, "tool_use_id").unwrap_or(&Json::Null), &join(&tpath, "tool_use_id"))?;
                if let Some(e) = field(o, "is_error") {
                    boolean(e, &join(&tpath, "is_error"))?;
                }
                self.tokens += 1;
                let cpath = join(&tpath, "content");
                match field(o, "content") {
                    None => {}
                    Some(Json::Str(s)) => self.tokens += count_words(s),
                    Some(Json::Arr(items)) => {
                        for (k, item) in items.iter().enumerate() {
                            let ipath = format!("{cpath}.{k}");
                            let io = obj(item, &ipath)?;
                            let ity = tag(
                                io,
                                &ipath,
                                &["text", "image", "search_result", "document", "tool_reference"],
                            )?;
                            if ity == "text" || ity == "image" || ity == "document" {
                                self.block(item, &ipath, role)?;
                            } else {
                                self.tokens += 1;
                            }
                        }
                    }
                    Some(other) => {
                        return Err(format!("{cpath}: Input should be a valid string, got {}", kind(other)));
                    }
                }
            }
            "thinking" => {
                fields(o, &tpath, &["type", "thinking", "signature"], &["type", "thinking", "signature"])?;
                string(field(o, "thinking").unwrap_or(&Json::Null), &join(&tpath, "thinking"))?;
                string(field(o, "signature").unwrap_or(&Json::Null), &join(&tpath, "signature"))?;
            }
            "redacted_thinking" => {
                fields(o, &tpath, &["type", "data"], &["type", "data"])?;
                string(field(o, "data").unwrap_or(&Json::Null), &join(&tpath, "data"))?;
            }
            // Server-tool and search-result blocks: accepted as the API returns them; not inspected.
            _ => self.tokens += 1,
        }
        if let Some(cc) = field(o, "cache_control") {
            self.cache_control(cc, &join(&tpath, "cache_control"))?;
        }
        Ok(ty)
    }

    /// The text of a text block (the caller checked its type and fields and counts its
    /// `cache_control`).
    pub(super) fn text_block(&mut self, o: &[(String, Json)], path: &str) -> V<()> {
        let text = string(field(o, "text").unwrap_or(&Json::Null), &join(path, "text"))?;
        // https://docs.anthropic.com/en/api/messages#body-messages-content: text blocks must be non-empty.
        if text.is_empty() {
            return Err("messages: text content blocks must be non-empty".into());
        }
        if text.trim().is_empty() {
            return Err("messages: text content blocks must contain non-whitespace text".into());
        }
        self.tokens += count_words(text);
        if let Some(c) = field(o, "citations").filter(|c| !c.is_null()) {
            list(c, &join(path, "citations"))?;
        }
        Ok(())
    }

    /// https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching: `{"type":"ephemeral"}`
    /// with an optional `ttl` of 5m or 1h; `null` means none.
    pub(super) fn cache_control(&mut self, cc: &Json, path: &str) -> V<()> {
        if cc.is_null() {
            return Ok(());
        }
        let o = obj(cc, path)?;
        fields(o, path, &["type"], &["type", "ttl"])?;
        literal(field(o, "type").unwrap_or(&Json::Null), &join(path, "type"), &["ephemeral"])?;
        if let Some(ttl) = field(o, "ttl") {
            literal(ttl, &join(path, "ttl"), &["5m", "1h"])?;
        }
        self.cache_controls += 1;
        Ok(())
    }
}
