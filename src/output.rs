//! How commands report, the same way everywhere: a table for people (`-o wide` adds
//! the columns that do not fit in 80), and `--json` (`-o json`) for scripts, where every
//! document starts with `"schema": "instancectl.KIND/vN"` naming what it is and the
//! version of its fields. The version changes only when a field changes meaning or
//! disappears; new fields may appear without it.
//!
//! Results people read go through here too ([`line`], [`entry`]): without `--json`
//! they are lines on standard output; with it, standard output holds only the one
//! document of the run and those lines go to standard error. Commands that act on
//! instances (start, stop, config set, exec, ...) do not print their document
//! themselves: they add entries to it as they go, and [`finish`] prints it at the end
//! of the run, with `"ok"` and, when the run failed, the error — so a failure halfway
//! still answers with a document that says what was done and what failed.

use std::fmt::Display;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// How a command prints what it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table that fits 80 columns.
    Table,
    /// The table with every column.
    Wide,
    /// A JSON document with a "schema" field.
    Json,
}

/// The width tables keep to without `-o wide`.
const TABLE_WIDTH: u16 = 80;

/// An aligned table without borders; unless `wide`, long cells wrap inside their
/// column so that the table fits [`TABLE_WIDTH`] columns. Cells made with [`cell`]
/// wrap after a word or a punctuation mark; print the table with [`render`].
pub fn table(wide: bool) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    if !wide {
        t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
        t.set_width(TABLE_WIDTH);
    }
    t
}

/// Where a cell may wrap. comfy-table wraps at one delimiter character and drops it
/// where it wraps; names such as `com.apple.postfix.master` or `postfix-outbound-eu`
/// have no space, so it would cut them anywhere (`com.ap` / `ple...`). A zero-width
/// space after each space and punctuation mark is the delimiter instead: it takes no
/// column, so the table's widths are those of the text, and [`render`] takes it out.
const BREAK: char = '\u{200B}';

/// Marks that a line may wrap after them.
const BREAK_AFTER: &[char] = &[' ', '.', '-', '_', '/', ',', ':', ';', '@', '=', ')'];

/// A table cell whose text wraps after a word or a punctuation mark.
pub fn cell(text: impl AsRef<str>) -> comfy_table::Cell {
    let text = text.as_ref();
    let mut marked = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        marked.push(c);
        if BREAK_AFTER.contains(&c) {
            marked.push(BREAK);
        }
    }
    comfy_table::Cell::new(marked).set_delimiter(BREAK)
}

/// The table as text, without trailing blanks.
pub fn render(table: &comfy_table::Table) -> String {
    table.trim_fmt().replace(BREAK, "")
}

/// The kind and version of a JSON document, e.g. `instancectl.status/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema(pub &'static str);

impl Schema {
    pub const STATUS: Schema = Schema("instancectl.status/v2");
    pub const LIST: Schema = Schema("instancectl.list/v1");
    pub const RELAY: Schema = Schema("instancectl.relay/v1");
    pub const INIT: Schema = Schema("instancectl.init/v1");
    pub const CREATE: Schema = Schema("instancectl.create/v1");
    /// What destroy did to each instance (v1 was one document per instance).
    pub const DESTROY: Schema = Schema("instancectl.destroy/v2");
    pub const PLIST_CHECK: Schema = Schema("instancectl.plist-check/v1");
    /// The messages in the queues (`queue list`).
    pub const QUEUE: Schema = Schema("instancectl.queue/v1");
    /// What a queue command did to each instance's messages.
    pub const QUEUE_CHANGE: Schema = Schema("instancectl.queue-change/v1");
    /// What start, stop, restart, reload, enable and disable did to each instance.
    pub const LIFECYCLE: Schema = Schema("instancectl.lifecycle/v1");
    /// The drift reconcile found and what it did about each.
    pub const RECONCILE: Schema = Schema("instancectl.reconcile/v1");
    /// The changes apply planned and made.
    pub const APPLY: Schema = Schema("instancectl.apply/v1");
    /// An instance's main.cf settings (`config show`).
    pub const CONFIG: Schema = Schema("instancectl.config/v1");
    /// The settings `config set` and `config unset` changed.
    pub const CONFIG_CHANGE: Schema = Schema("instancectl.config-change/v1");
    /// What `relay set` changed (never the password).
    pub const RELAY_CHANGE: Schema = Schema("instancectl.relay-change/v1");
    /// What became of the message `test-mail` sent.
    pub const TEST_MAIL: Schema = Schema("instancectl.test-mail/v1");
    /// A command run in instances' environments: exit status and output of each.
    pub const EXEC: Schema = Schema("instancectl.exec/v1");
    /// A command whose own document was not printed because the run failed first.
    pub const ERROR: Schema = Schema("instancectl.error/v1");
}

/// A document: its schema first, then the body's own fields.
#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    schema: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

/// The document as JSON text with a final newline; `compact` puts it on one line (a
/// stream of documents, one per line).
pub fn json<T: Serialize>(schema: Schema, body: &T, compact: bool) -> String {
    // The run's document is out; [`finish`] adds no other.
    if let Some(run) = RUN.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        run.printed = true;
    }
    let doc = Document {
        schema: schema.0,
        body,
    };
    let text = if compact {
        serde_json::to_string(&doc)
    } else {
        serde_json::to_string_pretty(&doc)
    };
    // Reports are plain data (maps with string keys); encoding them cannot fail.
    text.expect("a report encodes as JSON") + "\n"
}

/// Prints the document on standard output.
pub fn print_json<T: Serialize>(schema: Schema, body: &T) -> Result<()> {
    write_stdout(&json(schema, body, false))
}

fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::system("cannot write to standard output", e))
}

/// The JSON document of this run, when `--json` asked for one.
struct Run {
    schema: Schema,
    /// The fields commands added (printed in the order of their names, after
    /// `schema`).
    fields: Map<String, Value>,
    /// The command printed a document of its own ([`print_json`]).
    printed: bool,
}

static RUN: Mutex<Option<Run>> = Mutex::new(None);

fn with_run<T>(f: impl FnOnce(&mut Option<Run>) -> T) -> T {
    f(&mut RUN.lock().unwrap_or_else(|e| e.into_inner()))
}

/// This run answers with a JSON document of `schema` (`--json` or `-o json` was
/// given); called once, before the command runs.
pub fn begin_json(schema: Schema) {
    with_run(|run| {
        *run = Some(Run {
            schema,
            fields: Map::new(),
            printed: false,
        })
    });
}

/// Whether this run answers with a JSON document.
pub fn json_requested() -> bool {
    with_run(|run| run.is_some())
}

/// A line for people: on standard output, or on standard error when standard output
/// holds a JSON document.
pub fn line(text: impl Display) {
    if json_requested() {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

/// The same for text that brings its own line ends (a diff, `postconf` output).
pub fn text(text: impl Display) {
    if json_requested() {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

/// A result: the line for people, and `value` appended to the list `list` of the
/// document when the run's document is `schema` (a command another one runs, such
/// as the disable `apply` does, adds nothing to `apply`'s document).
pub fn entry(schema: Schema, list: &str, line_text: impl Display, value: impl Serialize) {
    line(line_text);
    record(schema, list, value);
}

/// Appends `value` to the list `list` of the document when the run's document is
/// `schema`, and says nothing to people (a failure: the error is said at the end).
pub fn record(schema: Schema, list: &str, value: impl Serialize) {
    with_run(|run| {
        if let Some(run) = run.as_mut().filter(|r| r.schema == schema) {
            let list = run
                .fields
                .entry(list)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = list {
                items.push(to_value(value));
            }
        }
    });
}

/// Sets a field of the document when the run's document is `schema`.
pub fn field(schema: Schema, name: &str, value: impl Serialize) {
    with_run(|run| {
        if let Some(run) = run.as_mut().filter(|r| r.schema == schema) {
            run.fields.insert(name.to_string(), to_value(value));
        }
    });
}

/// Sets every field of `body` (a struct) when the run's document is `schema`.
pub fn fields(schema: Schema, body: impl Serialize) {
    if let Value::Object(map) = to_value(body) {
        for (name, value) in map {
            field(schema, &name, value);
        }
    }
}

fn to_value(value: impl Serialize) -> Value {
    // Results are plain data (maps with string keys); encoding them cannot fail.
    serde_json::to_value(value).expect("a result encodes as JSON")
}

/// What went wrong, in a document.
#[derive(Serialize)]
struct Failure {
    message: String,
    exit_status: i32,
}

/// Ends the run: prints its document (unless the command printed its own) with `ok`
/// and, when `outcome` is an error, what failed. A command that prints a document of
/// its own and failed before it did gets an `instancectl.error/v1` document.
pub fn finish(outcome: &std::result::Result<i32, Error>) {
    let Some(run) = with_run(Option::take) else {
        return;
    };
    let error = outcome.as_ref().err().map(|e| Failure {
        message: e.to_string(),
        exit_status: e.exit_code(),
    });
    let (schema, mut fields) = match (run.printed, collects(run.schema), &error) {
        (true, ..) | (false, false, None) => return,
        (false, true, _) => (run.schema, run.fields),
        (false, false, Some(_)) => (Schema::ERROR, Map::new()),
    };
    // A command run by exec that failed is not an error of instancectl's, but the
    // run did not go well either.
    fields.insert("ok".into(), Value::Bool(matches!(outcome, Ok(0))));
    fields.insert("error".into(), to_value(error));
    // Nothing is left to report a failure to write to; the exit status says it.
    let _ = write_stdout(&json(schema, &fields, false));
}

/// Documents that [`finish`] prints from the entries commands added.
fn collects(schema: Schema) -> bool {
    [
        Schema::LIFECYCLE,
        Schema::RECONCILE,
        Schema::APPLY,
        Schema::CONFIG,
        Schema::CONFIG_CHANGE,
        Schema::EXEC,
        Schema::CREATE,
        Schema::DESTROY,
        Schema::RELAY_CHANGE,
        Schema::TEST_MAIL,
    ]
    .contains(&schema)
}

/// Whether colour may be used on a terminal: not when NO_COLOR is set to anything
/// but the empty string (no-color.org).
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Seconds since the epoch now, as reports and records keep time (0 on a clock set
/// before 1970, which no report is worth failing for).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// RFC 3339 in UTC for seconds since the epoch.
pub fn rfc3339(secs: u64) -> String {
    let at = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Body {
        name: &'static str,
    }

    /// A table as `list` makes it, with names that have no space in them.
    fn narrow_table() -> String {
        let mut t = table(false);
        t.set_header(["NAME", "GROUP", "ROLE", "LISTEN", "JOB"]);
        t.add_row(
            [
                "postfix-outbound-relay-eu-west",
                "outbound-mail",
                "output",
                "127.0.0.1:2525,[::1]:2525",
                "com.apple.postfix.master-outbound-relay loaded, running (pid 4242)",
            ]
            .iter()
            .map(cell),
        );
        render(&t)
    }

    #[test]
    fn narrow_cells_wrap_after_punctuation_not_inside_words() {
        let text = narrow_table();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 2, "nothing wrapped:\n{text}");
        for line in &lines {
            assert!(line.chars().count() <= 80, "wider than 80: {line:?}");
            assert!(!line.contains(BREAK), "a break mark is left: {line:?}");
        }
        // Each wrapped piece of the job cell ends at a word's or a name part's end.
        let words = [
            "com.",
            "apple.",
            "postfix.",
            "master-",
            "outbound-",
            "relay",
            "loaded,",
            "running",
            "(pid",
            "4242)",
        ];
        let job_column = lines[0].find("JOB").expect("a JOB header");
        for line in &lines[1..] {
            let piece = line.get(job_column..).unwrap_or("").trim();
            if piece.is_empty() {
                continue;
            }
            let mut rest = piece;
            while !rest.is_empty() {
                let word = words
                    .iter()
                    .find(|w| rest.starts_with(*w))
                    .unwrap_or_else(|| panic!("{rest:?} is cut inside a word:\n{text}"));
                rest = rest[word.len()..].trim_start();
            }
        }
    }

    #[test]
    fn wide_tables_do_not_wrap() {
        let mut t = table(true);
        t.add_row(
            ["com.apple.postfix.master-outbound-relay-eu-west-1".repeat(3)]
                .iter()
                .map(cell),
        );
        let text = render(&t);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(
            text.trim(),
            "com.apple.postfix.master-outbound-relay-eu-west-1".repeat(3)
        );
    }

    #[test]
    fn schema_comes_first() {
        let text = json(Schema::LIST, &Body { name: "postfix-in" }, true);
        assert_eq!(
            text,
            "{\"schema\":\"instancectl.list/v1\",\"name\":\"postfix-in\"}\n"
        );
    }
}
