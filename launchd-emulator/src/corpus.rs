//! The recorded real launchctl output in `tests/data/launchctl/`, read for tests.
//!
//! The launchd side of instancectl cannot be tried on a Mac here, so its parsers and this
//! emulator are both held to output that real Macs printed (pasted in public issues and
//! test fixtures). This module reads those samples and reduces output to its *shape*, so
//! instancectl's parser tests and the emulator's own tests compare against the same
//! recordings and cannot drift apart from them, or from each other.
//!
//! A sample file is a header of `key: value` lines (`source`, `release`, `command`,
//! `exit`, `stream`, `note`, and `expect` lines saying what a parser must find), then a
//! line `--- output ---`, then the output exactly as recorded.

use std::path::{Path, PathBuf};

const SEPARATOR: &str = "--- output ---\n";

/// One recorded invocation of launchctl.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The file name.
    pub name: String,
    /// Where it was recorded: repository, issue or file.
    pub source: String,
    /// The macOS release, when known.
    pub release: String,
    /// The command line, e.g. `launchctl print system/LABEL`.
    pub command: String,
    /// launchctl's exit status.
    pub exit: i32,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// `expect:` lines, split at their first ` = `.
    pub expect: Vec<(String, String)>,
    /// The output, byte for byte.
    pub output: String,
}

impl Sample {
    /// The launchctl subcommand (`print`, `print-disabled`, `bootout`, ...), whether the
    /// command names `launchctl` or `/bin/launchctl`.
    pub fn subcommand(&self) -> &str {
        let mut words = self.command.split_whitespace();
        words
            .by_ref()
            .find(|w| *w == "launchctl" || w.ends_with("/launchctl"))
            .and_then(|_| words.next())
            .unwrap_or("")
    }

    /// The command's last word: a domain (`system`, `gui/501`) or a service target
    /// (`system/LABEL`, `gui/501/LABEL`), or a file for commands that take one.
    pub fn target(&self) -> &str {
        self.command.split_whitespace().last().unwrap_or("")
    }

    /// Whether the command names one service (`system/LABEL`, `gui/UID/LABEL`), not a
    /// whole domain (`launchctl print system`).
    pub fn is_service_target(&self) -> bool {
        let target = self.target();
        let domain_parts = if target.starts_with("system/") { 1 } else { 2 };
        target.split('/').count() > domain_parts
    }

    /// The major macOS release the `release` line names first (`macOS 26.5.2` is 26,
    /// `unknown (..., so macOS 26 or later)` 26, `OS X 10.10` 10); `None` when it names
    /// none.
    pub fn macos_major(&self) -> Option<u32> {
        let (_, rest) = self
            .release
            .split_once("macOS ")
            .or_else(|| self.release.split_once("OS X "))?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }

    /// The value of the `expect: KEY = VALUE` line, if there is one.
    pub fn expected(&self, key: &str) -> Option<&str> {
        self.expect
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Where the corpus lives (the instancectl repository's tests/data/launchctl).
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/launchctl")
}

/// Every sample, sorted by file name. Panics on a malformed file: the corpus is test
/// data and must be fixed, not skipped.
pub fn load() -> Vec<Sample> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("tests/data/launchctl")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sample"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("readable sample");
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            parse(&name, &text)
        })
        .collect()
}

/// Reads one sample file.
pub fn parse(name: &str, text: &str) -> Sample {
    let (header, output) = text
        .split_once(SEPARATOR)
        .unwrap_or_else(|| panic!("{name}: no `--- output ---` line"));
    let mut sample = Sample {
        name: name.to_string(),
        source: String::new(),
        release: String::new(),
        command: String::new(),
        exit: 0,
        stream: String::new(),
        expect: Vec::new(),
        output: output.to_string(),
    };
    for line in header.lines() {
        let (key, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("{name}: header line {line:?}"));
        match key {
            "source" => sample.source = value.into(),
            "release" => sample.release = value.into(),
            "command" => sample.command = value.into(),
            "exit" => sample.exit = value.parse().expect("numeric exit"),
            "stream" => sample.stream = value.into(),
            "note" => {}
            "expect" => {
                let (k, v) = value
                    .split_once(" = ")
                    .unwrap_or_else(|| panic!("{name}: expect {value:?}"));
                sample.expect.push((k.into(), v.into()));
            }
            other => panic!("{name}: unknown header key {other}"),
        }
    }
    assert!(
        !sample.source.is_empty(),
        "{name}: every sample names its source"
    );
    sample
}

/// The layout of `print-disabled` output, one token per line: `blank`, a block header
/// or `}` with its indentation, and for entries the indentation and the dialect of the
/// word (`new` disabled/enabled, `old` true/false, `other`). Runs of equal entry tokens
/// count once, so outputs with different overrides compare by layout alone.
pub fn disabled_shape(text: &str) -> Vec<String> {
    let mut shape: Vec<String> = Vec::new();
    for line in text.lines() {
        let content = line.trim();
        let indent = indentation(line);
        let token = if content.is_empty() {
            "blank".to_string()
        } else if let Some((_, word)) = content.split_once("=>") {
            let dialect = match word.trim() {
                "disabled" | "enabled" => "new",
                "true" | "false" => "old",
                _ => "other",
            };
            format!("{indent}entry {dialect}")
        } else {
            format!("{indent}{content}")
        };
        if shape.last() != Some(&token) {
            shape.push(token);
        }
    }
    shape
}

/// The indentation of a line in a form that shows tabs (`\t`) and spaces (`.`).
pub fn indentation(line: &str) -> String {
    line.chars()
        .take_while(|c| c.is_whitespace())
        .map(|c| if c == '\t' { "\\t" } else { "." })
        .collect()
}

/// The job-level property names of `launchctl print` output (lines one level into the
/// `TARGET = {` block), in order.
pub fn print_property_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for line in text.lines() {
        let content = line.trim();
        if content == "}" {
            depth = depth.saturating_sub(1);
            continue;
        }
        if depth == 1
            && let Some((name, _)) = content
                .split_once(" = ")
                .or_else(|| content.strip_suffix(" =").map(|n| (n, "")))
        {
            names.push(name.to_string());
        }
        if content.ends_with('{') {
            depth += 1;
        }
    }
    names
}

/// The indentation unit of a `print` block: what its first job-level line starts with.
pub fn print_indent_unit(text: &str) -> String {
    text.lines().nth(1).map(indentation).unwrap_or_default()
}
