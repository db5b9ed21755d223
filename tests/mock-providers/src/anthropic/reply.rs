//! What a valid request gets back: the behaviour its model id names, the planned content (text
//! and tool calls), the `Message` JSON and the SSE event sequence of
//! https://docs.anthropic.com/en/api/messages-streaming.

use bytes::Bytes;

use super::validate::{Checked, Choice};
use crate::behavior::{Behavior, Content, Stop};
use crate::json::{Json, example_from_schema, json_pieces, word_pieces};

/// `cache_creation_input_tokens` of a `*-cache` model (all of it 5-minute cache).
pub const CACHE_CREATION_TOKENS: u64 = 128;
/// `cache_read_input_tokens` of a `*-cache` model.
pub const CACHE_READ_TOKENS: u64 = 2048;

#[derive(Debug)]
enum Block {
    Text(String),
    ToolUse { id: String, name: String, input: Json },
}

/// The reply, decided once and rendered either as a `Message` or as stream events.
#[derive(Debug)]
pub(crate) struct Plan {
    id: String,
    model: String,
    blocks: Vec<Block>,
    stop_reason: &'static str,
    stop_sequence: Option<String>,
    input_tokens: u64,
    cache_creation: u64,
    cache_read: u64,
    output_tokens: u64,
}

impl Plan {
    pub(crate) fn new(req: &Checked<'_>, b: Behavior, number: u64) -> Plan {
        let mut blocks = Vec::new();
        let mut stop_reason = "end_turn";
        let mut stop_sequence = None;

        // Forced tool use (`any`/`tool`) always calls a tool; `none` never does.
        let wants_tools = match req.choice {
            Choice::None => false,
            Choice::Any | Choice::Tool(_) => true,
            Choice::Auto => b.content != Content::Text,
        } && !req.tools.is_empty();

        if wants_tools {
            let first = match req.choice {
                Choice::Tool(name) => req.tools.iter().position(|t| t.name == name).unwrap_or(0),
                _ => 0,
            };
            let mut picks = vec![first];
            if b.content == Content::ParallelTools && !req.disable_parallel {
                picks.push(if req.tools.len() > 1 && matches!(req.choice, Choice::Any | Choice::Auto) {
                    (first + 1) % req.tools.len()
                } else {
                    first
                });
            }
            if b.content == Content::TextThenTool {
                blocks.push(Block::Text(format!("Let me call {}.", req.tools[first].name)));
            }
            for (i, &t) in picks.iter().enumerate() {
                let tool = &req.tools[t];
                blocks.push(Block::ToolUse {
                    id: format!("toolu_mock_{}_{}", req.turns, i + 1),
                    name: tool.name.to_owned(),
                    input: example_from_schema(tool.schema, tool.name, 0),
                });
            }
            stop_reason = "tool_use";
        } else {
            let text = match req.json_schema {
                Some(schema) => example_from_schema(schema, "value", 0).to_text(),
                None if req.heard.is_empty() => "You said nothing.".to_owned(),
                None => format!("You said: {}", req.heard),
            };
            let pieces = word_pieces(&text);
            // `max_tokens` caps the output; a `*-max-tokens` model stops after 3 pieces.
            let mut keep = pieces.len().min(usize::try_from(req.max_tokens).unwrap_or(usize::MAX));
            if b.stop == Stop::MaxTokens {
                keep = keep.min(3);
            }
            if keep < pieces.len() || b.stop == Stop::MaxTokens {
                stop_reason = "max_tokens";
            } else if b.stop == Stop::Sequence
                && let Some(seq) = req.stop_sequences.first()
            {
                stop_reason = "stop_sequence";
                stop_sequence = Some((*seq).to_owned());
            }
            if keep > 0 {
                blocks.push(Block::Text(pieces[..keep].concat()));
            }
        }
        if b.stop == Stop::MaxTokens {
            stop_reason = "max_tokens";
        }

        let deltas: usize = blocks
            .iter()
            .map(|blk| match blk {
                Block::Text(t) => word_pieces(t).len(),
                Block::ToolUse { input, .. } => 1 + json_pieces(&input.to_text()).len(),
            })
            .sum();
        let (cache_creation, cache_read) =
            if b.cache { (CACHE_CREATION_TOKENS, CACHE_READ_TOKENS) } else { (0, 0) };
        Plan {
            id: format!("msg_mock_{number}"),
            model: req.model.to_owned(),
            blocks,
            stop_reason,
            stop_sequence,
            input_tokens: req.input_tokens,
            cache_creation,
            cache_read,
            output_tokens: (deltas as u64).max(1),
        }
    }

    fn usage(&self, output_tokens: u64) -> Json {
        Json::obj([
            ("input_tokens", Json::int(self.input_tokens)),
            ("cache_creation_input_tokens", Json::int(self.cache_creation)),
            ("cache_read_input_tokens", Json::int(self.cache_read)),
            (
                "cache_creation",
                Json::obj([
                    ("ephemeral_5m_input_tokens", Json::int(self.cache_creation)),
                    ("ephemeral_1h_input_tokens", Json::int(0)),
                ]),
            ),
            ("output_tokens", Json::int(output_tokens)),
            ("service_tier", Json::str("standard")),
        ])
    }

    fn message(&self, content: Json, stop_reason: Json, stop_sequence: Json, output_tokens: u64) -> Json {
        Json::obj([
            ("id", Json::str(&self.id)),
            ("type", Json::str("message")),
            ("role", Json::str("assistant")),
            ("model", Json::str(&self.model)),
            ("content", content),
            ("stop_reason", stop_reason),
            ("stop_sequence", stop_sequence),
            ("usage", self.usage(output_tokens)),
        ])
    }

    /// The non-streaming `Message` body.
    pub(crate) fn message_json(&self) -> String {
        let content = self
            .blocks
            .iter()
            .map(|b| match b {
                Block::Text(t) => Json::obj([("type", Json::str("text")), ("text", Json::str(t))]),
                Block::ToolUse { id, name, input } => Json::obj([
                    ("type", Json::str("tool_use")),
                    ("id", Json::str(id)),
                    ("name", Json::str(name)),
                    ("input", input.clone()),
                ]),
            })
            .collect();
        let seq = self.stop_sequence.as_ref().map_or(Json::Null, Json::str);
        self.message(Json::Arr(content), Json::str(self.stop_reason), seq, self.output_tokens).to_text()
    }

    /// The SSE events, in the documented order: `message_start`, per block
    /// `content_block_start` / `content_block_delta`… / `content_block_stop` (a `ping` after the
    /// first block starts), `message_delta` (cumulative usage), `message_stop`.
    pub(crate) fn events(&self) -> Vec<Bytes> {
        let mut out = Vec::new();
        // The API reports output_tokens 1 in message_start, the final count in message_delta.
        let start = self.message(Json::Arr(Vec::new()), Json::Null, Json::Null, 1);
        out.push(event(
            "message_start",
            &Json::obj([("type", Json::str("message_start")), ("message", start)]),
        ));
        if self.blocks.is_empty() {
            out.push(ping());
        }
        for (i, block) in self.blocks.iter().enumerate() {
            let index = Json::int(i as u64);
            let (first, deltas) = match block {
                Block::Text(t) => (
                    Json::obj([("type", Json::str("text")), ("text", Json::str(""))]),
                    word_pieces(t)
                        .into_iter()
                        .map(|p| Json::obj([("type", Json::str("text_delta")), ("text", Json::str(p))]))
                        .collect::<Vec<_>>(),
                ),
                Block::ToolUse { id, name, input } => {
                    let json = input.to_text();
                    // The API opens every tool input with an empty piece.
                    let pieces = std::iter::once("").chain(json_pieces(&json));
                    (
                        Json::obj([
                            ("type", Json::str("tool_use")),
                            ("id", Json::str(id)),
                            ("name", Json::str(name)),
                            ("input", Json::obj::<&str>([])),
                        ]),
                        pieces
                            .map(|p| {
                                Json::obj([
                                    ("type", Json::str("input_json_delta")),
                                    ("partial_json", Json::str(p)),
                                ])
                            })
                            .collect(),
                    )
                }
            };
            out.push(event(
                "content_block_start",
                &Json::obj([
                    ("type", Json::str("content_block_start")),
                    ("index", index.clone()),
                    ("content_block", first),
                ]),
            ));
            if i == 0 {
                out.push(ping());
            }
            for delta in deltas {
                out.push(event(
                    "content_block_delta",
                    &Json::obj([
                        ("type", Json::str("content_block_delta")),
                        ("index", index.clone()),
                        ("delta", delta),
                    ]),
                ));
            }
            out.push(event(
                "content_block_stop",
                &Json::obj([("type", Json::str("content_block_stop")), ("index", index)]),
            ));
        }
        let seq = self.stop_sequence.as_ref().map_or(Json::Null, Json::str);
        out.push(event(
            "message_delta",
            &Json::obj([
                ("type", Json::str("message_delta")),
                ("delta", Json::obj([("stop_reason", Json::str(self.stop_reason)), ("stop_sequence", seq)])),
                (
                    "usage",
                    Json::obj([
                        ("input_tokens", Json::int(self.input_tokens)),
                        ("cache_creation_input_tokens", Json::int(self.cache_creation)),
                        ("cache_read_input_tokens", Json::int(self.cache_read)),
                        ("output_tokens", Json::int(self.output_tokens)),
                    ]),
                ),
            ]),
        ));
        out.push(event("message_stop", &Json::obj([("type", Json::str("message_stop"))])));
        out
    }
}

/// How many leading events a failing stream sends before it fails: message_start,
/// content_block_start, ping and two deltas, never reaching message_delta.
pub(crate) fn failure_point(events: &[Bytes]) -> usize {
    5.min(events.len().saturating_sub(2))
}

/// `event: <name>\ndata: <json>\n\n`
pub(crate) fn event(name: &str, data: &Json) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {}\n\n", data.to_text()))
}

fn ping() -> Bytes {
    event("ping", &Json::obj([("type", Json::str("ping"))]))
}
