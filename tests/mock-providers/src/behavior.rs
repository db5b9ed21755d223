//! Decoding a model id into what the mock should do. Both mocks share the vocabulary; each
//! ignores the keywords its provider has no equivalent for (documented per provider).
//!
//! `error-<status>` names an HTTP error. Otherwise the id is read from the end, one keyword
//! suffix at a time, so they combine in any order: `claude-tool-cache-disconnect`.

/// What a model id asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Error(u16),
    Reply(Behavior),
}

/// The keywords of a model id, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Behavior {
    pub(crate) content: Content,
    pub(crate) stop: Stop,
    /// `-cache`: report cached prompt tokens.
    pub(crate) cache: bool,
    /// `-thinking`: report reasoning tokens (Gemini).
    pub(crate) thinking: bool,
    pub(crate) safety: Safety,
    pub(crate) failure: Failure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Content {
    #[default]
    Text,
    /// `-tool`
    Tool,
    /// `-parallel-tools`
    ParallelTools,
    /// `-text-tool`: some text, then one tool call.
    TextThenTool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Stop {
    #[default]
    Natural,
    /// `-max-tokens`
    MaxTokens,
    /// `-stop-sequence` (Anthropic)
    Sequence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Safety {
    #[default]
    None,
    /// `-safety`: the candidate is blocked (Gemini).
    Response,
    /// `-prompt-blocked`: the prompt is blocked, no candidate (Gemini).
    Prompt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Failure {
    #[default]
    None,
    /// `-malformed`
    Malformed,
    /// `-midstream-error`
    Midstream,
    /// `-disconnect`
    Disconnect,
}

/// Longest first, so `-parallel-tools` and `-text-tool` win over `-tool`.
const SUFFIXES: &[&str] = &[
    "-parallel-tools",
    "-text-tool",
    "-tool",
    "-max-tokens",
    "-stop-sequence",
    "-cache",
    "-thinking",
    "-safety",
    "-prompt-blocked",
    "-malformed",
    "-midstream-error",
    "-disconnect",
];

impl Mode {
    pub(crate) fn from_model(model: &str) -> Mode {
        if let Some(code) = model.strip_prefix("error-").and_then(|s| s.get(..3)).and_then(|s| s.parse().ok())
            && (400..=599).contains(&code)
        {
            return Mode::Error(code);
        }
        let mut b = Behavior::default();
        let mut rest = model;
        while let Some((suffix, r)) = SUFFIXES.iter().find_map(|s| rest.strip_suffix(s).map(|r| (*s, r))) {
            match suffix {
                "-parallel-tools" => b.content = Content::ParallelTools,
                "-text-tool" => b.content = Content::TextThenTool,
                "-tool" => b.content = Content::Tool,
                "-max-tokens" => b.stop = Stop::MaxTokens,
                "-stop-sequence" => b.stop = Stop::Sequence,
                "-cache" => b.cache = true,
                "-thinking" => b.thinking = true,
                "-safety" => b.safety = Safety::Response,
                "-prompt-blocked" => b.safety = Safety::Prompt,
                "-malformed" => b.failure = Failure::Malformed,
                "-midstream-error" => b.failure = Failure::Midstream,
                _ => b.failure = Failure::Disconnect,
            }
            rest = r;
        }
        Mode::Reply(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_suffixes_combine() {
        assert_eq!(Mode::from_model("error-529"), Mode::Error(529));
        assert_eq!(Mode::from_model("error-200"), Mode::Reply(Behavior::default()));
        assert_eq!(Mode::from_model("claude-sonnet-4-5"), Mode::Reply(Behavior::default()));
        assert_eq!(
            Mode::from_model("claude-parallel-tools-cache-disconnect"),
            Mode::Reply(Behavior {
                content: Content::ParallelTools,
                cache: true,
                failure: Failure::Disconnect,
                ..Default::default()
            })
        );
        assert_eq!(
            Mode::from_model("m-text-tool-midstream-error"),
            Mode::Reply(Behavior {
                content: Content::TextThenTool,
                failure: Failure::Midstream,
                ..Default::default()
            })
        );
        assert_eq!(
            Mode::from_model("gemini-2.5-flash-thinking-tool-stop-sequence-malformed"),
            Mode::Reply(Behavior {
                content: Content::Tool,
                stop: Stop::Sequence,
                thinking: true,
                failure: Failure::Malformed,
                ..Default::default()
            })
        );
        assert_eq!(
            Mode::from_model("g-prompt-blocked"),
            Mode::Reply(Behavior { safety: Safety::Prompt, ..Default::default() })
        );
        // A keyword must be a suffix after a dash.
        assert_eq!(Mode::from_model("tool"), Mode::Reply(Behavior::default()));
    }
}
