//! A Dockerfile read into its build stages, for the image policy test (tests/images.rs), which
//! checks what hadolint cannot know: that the final stages match the chart.
//!
//! Follows the Dockerfile reference (https://docs.docker.com/reference/dockerfile/#format): one
//! instruction per logical line, `\` at the end of a line continues it, lines starting with `#`
//! are comments (also inside a continued instruction), and `FROM [--platform=P] IMAGE [AS NAME]`
//! opens a stage. Heredocs are not supported: the repository's Dockerfile has none.

/// One instruction: its keyword in capitals, the rest of its logical line, its first line (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    pub keyword: String,
    pub args: String,
    pub line: usize,
}

impl Instruction {
    /// The exec (JSON array) form's arguments, or None for the shell form.
    pub fn exec_form(&self) -> Option<Vec<String>> {
        serde_json::from_str(&self.args).ok()
    }
}

/// A build stage: `FROM image AS name` and the instructions up to the next `FROM`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub image: String,
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The instructions with this keyword (capitals), in order.
    pub fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a Instruction> + 'a {
        self.instructions.iter().filter(move |i| i.keyword == keyword)
    }

    /// The last instruction with this keyword: the one in force for USER, ENTRYPOINT, CMD.
    pub fn last(&self, keyword: &str) -> Option<&Instruction> {
        self.instructions.iter().rfind(|i| i.keyword == keyword)
    }
}

/// Every instruction of the file, continuations joined and comments dropped.
pub fn instructions(text: &str) -> Vec<Instruction> {
    let mut found = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_none()) {
            continue;
        }
        let (continues, content) = match trimmed.strip_suffix('\\') {
            Some(head) => (true, head.trim_end()),
            None => (false, trimmed),
        };
        let (line, mut logical) = pending.take().unwrap_or((index + 1, String::new()));
        if !logical.is_empty() && !content.is_empty() {
            logical.push(' ');
        }
        logical.push_str(content);
        if continues {
            pending = Some((line, logical));
            continue;
        }
        let (keyword, args) = logical.split_once(char::is_whitespace).unwrap_or((&logical, ""));
        found.push(Instruction { keyword: keyword.to_ascii_uppercase(), args: args.trim().to_owned(), line });
    }
    found
}

/// The stages of a Dockerfile, in order. Instructions before the first `FROM` (only `ARG` is
/// allowed there) are not part of any stage and are dropped.
pub fn stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions(text) {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> =
                instruction.args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            let image = words.first().copied().unwrap_or_default().to_owned();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                _ => None,
            };
            stages.push(Stage { image, name, instructions: Vec::new() });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(instruction);
        }
    }
    stages
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# syntax=docker/dockerfile:1\nARG BASE=x\nFROM --platform=$BUILDPLATFORM rust:1 AS build\nRUN --mount=type=cache,target=/a \\\n    # a comment inside the continuation\n    make \\\n    all\n\nfrom scratch\nUSER 1:1\nENTRYPOINT [\"/bin/app\", \"serve\"]\nCMD serve\n";

    #[test]
    fn stages_are_split_at_from_with_their_names() {
        let stages = stages(SAMPLE);
        assert_eq!(stages.len(), 2);
        assert_eq!((stages[0].image.as_str(), stages[0].name.as_deref()), ("rust:1", Some("build")));
        assert_eq!((stages[1].image.as_str(), stages[1].name.as_deref()), ("scratch", None));
    }

    #[test]
    fn continuations_are_joined_without_their_comments() {
        let stages = stages(SAMPLE);
        let run = stages[0].last("RUN").unwrap();
        assert_eq!(run.args, "--mount=type=cache,target=/a make all");
        assert_eq!(run.line, 4);
    }

    #[test]
    fn exec_and_shell_forms_are_told_apart() {
        let stages = stages(SAMPLE);
        let entrypoint = stages[1].last("ENTRYPOINT").unwrap().exec_form();
        assert_eq!(entrypoint, Some(vec!["/bin/app".to_owned(), "serve".to_owned()]));
        assert_eq!(stages[1].last("CMD").unwrap().exec_form(), None);
        assert_eq!(stages[1].last("USER").unwrap().args, "1:1");
    }
}
