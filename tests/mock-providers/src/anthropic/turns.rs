//! The conversation rules of a Messages request (role order, tool_use / tool_result pairing,
//! non-empty turns, prefill) and the summary of what the last user turn said.

use super::fields::V;
use crate::json::Json;

/// Facts about one message the conversation rules need.
pub(crate) struct MessageFacts<'a> {
    pub(crate) role: &'a str,
    pub(crate) empty: bool,
    pub(crate) tool_uses: Vec<&'a str>,
    /// (block index, tool_use_id)
    pub(crate) tool_results: Vec<(usize, &'a str)>,
    /// Index of a `tool_result` block that follows some other block.
    pub(crate) late_tool_result: Option<usize>,
    /// The content's text ends with whitespace.
    pub(crate) trailing_space: bool,
}

/// The conversation rules, checked after every message parsed.
pub(crate) fn conversation_rules(facts: &[MessageFacts<'_>], strict_turns: bool) -> V<()> {
    if strict_turns {
        // https://docs.anthropic.com/en/api/messages#body-messages: alternating user/assistant
        // turns starting with user (the current API combines consecutive turns instead).
        if facts[0].role != "user" {
            return Err("messages: first message must use the \"user\" role".into());
        }
        for w in facts.windows(2) {
            if w[0].role == w[1].role {
                return Err(format!(
                    "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{}\" roles in a row",
                    w[1].role
                ));
            }
        }
    }
    let last = facts.len() - 1;
    for (i, f) in facts.iter().enumerate() {
        if f.empty && !(i == last && f.role == "assistant") {
            return Err(format!(
                "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
            ));
        }
    }
    // Tool use pairing, per turn (a turn is a run of same-role messages, combined):
    // https://docs.anthropic.com/en/docs/build-with-claude/tool-use#handling-tool-use-and-tool-result-content-blocks
    let turns = group_turns(facts);
    for (t, turn) in turns.iter().enumerate() {
        let prev_uses: Vec<&str> = match t.checked_sub(1).map(|p| &turns[p]) {
            Some(prev) if facts[prev[0]].role == "assistant" => {
                prev.iter().flat_map(|&m| facts[m].tool_uses.iter().copied()).collect()
            }
            _ => Vec::new(),
        };
        for &m in turn {
            for &(k, id) in &facts[m].tool_results {
                if !prev_uses.contains(&id) {
                    return Err(format!(
                        "messages.{m}.content.{k}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                    ));
                }
            }
            // "tool_result blocks must come FIRST in the content array" (tool-use guide).
            if let Some(k) = facts[m].late_tool_result {
                return Err(format!(
                    "messages.{m}.content.{k}: `tool_result` blocks must come first in the user message content, before any other content blocks"
                ));
            }
        }
        let uses: Vec<&str> = turn.iter().flat_map(|&m| facts[m].tool_uses.iter().copied()).collect();
        if !uses.is_empty() {
            let answered: Vec<&str> = turns
                .get(t + 1)
                .map(|next| {
                    next.iter().flat_map(|&m| facts[m].tool_results.iter().map(|&(_, id)| id)).collect()
                })
                .unwrap_or_default();
            let missing: Vec<&str> = uses.iter().copied().filter(|id| !answered.contains(id)).collect();
            if !missing.is_empty() {
                let at = turn[turn.len() - 1];
                return Err(format!(
                    "messages.{at}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                    missing.join(", ")
                ));
            }
        }
    }
    // https://docs.anthropic.com/en/api/messages#body-messages: a prefilled final assistant turn.
    if facts[last].role == "assistant" && facts[last].trailing_space {
        return Err("messages: final assistant content cannot end with trailing whitespace".into());
    }
    Ok(())
}

/// Indices of `facts` grouped into runs of the same role.
fn group_turns(facts: &[MessageFacts<'_>]) -> Vec<Vec<usize>> {
    let mut turns: Vec<Vec<usize>> = Vec::new();
    for (i, f) in facts.iter().enumerate() {
        match turns.last_mut() {
            Some(turn) if facts[turn[0]].role == f.role => turn.push(i),
            _ => turns.push(vec![i]),
        }
    }
    turns
}

/// A summary of the last user turn: its text, `[image <media type or url>]`,
/// `[document]`, `[tool_result <id>: <text>]` (`tool_error` when `is_error`), joined by spaces.
pub(crate) fn heard(messages: &[Json], strict_turns: bool) -> String {
    let Some(last_user) = messages.iter().rposition(|m| m.get("role").and_then(Json::as_str) == Some("user"))
    else {
        return String::new();
    };
    let mut first = last_user;
    if !strict_turns {
        while first > 0 && messages[first - 1].get("role").and_then(Json::as_str) == Some("user") {
            first -= 1;
        }
    }
    let mut parts = Vec::new();
    for m in &messages[first..=last_user] {
        match m.get("content") {
            Some(Json::Str(s)) => parts.push(s.clone()),
            Some(Json::Arr(blocks)) => {
                for b in blocks {
                    describe_block(b, &mut parts);
                }
            }
            _ => {}
        }
    }
    parts.join(" ")
}

fn describe_block(b: &Json, parts: &mut Vec<String>) {
    match b.get("type").and_then(Json::as_str).unwrap_or_default() {
        "text" => parts.push(b.get("text").and_then(Json::as_str).unwrap_or_default().to_owned()),
        "image" => {
            let src = b.get("source");
            let what = src
                .and_then(|s| s.get("media_type").or_else(|| s.get("url")).or_else(|| s.get("file_id")))
                .and_then(Json::as_str)
                .unwrap_or_default();
            parts.push(format!("[image {what}]"));
        }
        "tool_result" => {
            let id = b.get("tool_use_id").and_then(Json::as_str).unwrap_or_default();
            let word = if b.get("is_error").and_then(Json::as_bool) == Some(true) {
                "tool_error"
            } else {
                "tool_result"
            };
            let mut inner = Vec::new();
            match b.get("content") {
                Some(Json::Str(s)) => inner.push(s.clone()),
                Some(Json::Arr(items)) => items.iter().for_each(|i| describe_block(i, &mut inner)),
                _ => {}
            }
            parts.push(format!("[{word} {id}: {}]", inner.join(" ")));
        }
        other => parts.push(format!("[{other}]")),
    }
}
