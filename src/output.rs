//! How commands report, the same way everywhere: a table for people (`-o wide` adds
//! the columns that do not fit in 80), and `--json` (`-o json`) for scripts, where every
//! document starts with `"schema": "instancectl.KIND/vN"` naming what it is and the
//! version of its fields. The version changes only when a field changes meaning or
//! disappears; new fields may appear without it.

use serde::Serialize;

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
pub const TABLE_WIDTH: u16 = 80;

/// An aligned table without borders; unless `wide`, long cells wrap inside their
/// column so that the table fits [`TABLE_WIDTH`] columns.
pub fn table(wide: bool) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    if !wide {
        t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
        t.set_width(TABLE_WIDTH);
    }
    t
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
    pub const DESTROY: Schema = Schema("instancectl.destroy/v1");
    pub const PLIST_CHECK: Schema = Schema("instancectl.plist-check/v1");
    /// The messages in the queues (`queue list`).
    pub const QUEUE: Schema = Schema("instancectl.queue/v1");
    /// What a queue command did to each instance's messages.
    pub const QUEUE_CHANGE: Schema = Schema("instancectl.queue-change/v1");
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
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(json(schema, body, false).as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::system("cannot write to standard output", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Body {
        name: &'static str,
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
