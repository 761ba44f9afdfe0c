//! A strict reader of XML property lists that recovers from mistakes.
//!
//! The `plist` crate reads `<key>` and `<string>` alike, so the seed's
//! `<key>RunAtLoad</key><key>KeepAlive</key></dict>` loads there as RunAtLoad = "KeepAlive"
//! without complaint. launchd (like Python's plistlib: "unexpected key") refuses such a
//! file. This reader enforces the grammar of Apple's DTD (inside a `<dict>`, a `<key>`
//! followed by exactly one value; only the known value elements; well-formed XML with
//! matching tags and valid entities), reports every violation with its line, and still
//! builds the best value it can (a key without a value is dropped), so that the lint can
//! go on to report what the file *means* as well.
//!
//! The XML itself is split into tags and text by quick-xml (the parser the `plist` crate
//! uses, so both read the same characters the same way); the plist grammar, the error
//! recovery and the line of each mistake are this module's.

use std::collections::BTreeMap;

use ::plist::Value;

/// One violation of the plist grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line number in the file.
    pub line: usize,
    pub message: String,
    /// How to write it instead.
    pub fix: String,
}

/// What a strict read produced.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The recovered value; `None` when the XML itself is too broken to read.
    pub value: Option<Value>,
    pub errors: Vec<SyntaxError>,
    /// Line of each key of the top-level dictionary, for pointing at problems.
    pub key_lines: BTreeMap<String, usize>,
    /// Keys of the top-level dictionary that had no value.
    pub keys_without_value: Vec<String>,
    /// Keys written twice in one dictionary. CoreFoundation's reader (plutil's) keeps
    /// the last value without a word, so this is not a syntax error here; the value
    /// built keeps the last one too.
    pub duplicates: Vec<Duplicate>,
    /// The line of the first thing written after `</plist>`. CoreFoundation's reader
    /// (CFPropertyList.c, parseXMLPropertyList) stops at the end of the first element
    /// and ignores the rest, so this is not a syntax error either: Apple's own
    /// com.apple.mail_migration.plist (dovecot-239, dovecot-279) ends with an editor's
    /// `~` lines.
    pub after_end: Option<usize>,
}

/// A key written a second time in the same dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub key: String,
    /// Where it was written first.
    pub first: usize,
    /// Where it was written again.
    pub line: usize,
}

impl Parsed {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty() && self.value.is_some()
    }

    pub fn dict(&self) -> Option<&::plist::Dictionary> {
        self.value.as_ref().and_then(Value::as_dictionary)
    }
}

/// Reads a property list strictly. Binary plists are read by the `plist` crate, whose
/// binary reader is strict already.
pub fn parse(bytes: &[u8]) -> Parsed {
    if bytes.starts_with(b"bplist") {
        return match Value::from_reader(std::io::Cursor::new(bytes)) {
            Ok(value) => Parsed {
                value: Some(value),
                ..Parsed::default()
            },
            Err(e) => Parsed {
                errors: vec![SyntaxError {
                    line: 1,
                    message: format!("invalid binary property list: {e}"),
                    fix: "convert it to XML (`plutil -convert xml1 FILE`) and correct it".into(),
                }],
                ..Parsed::default()
            },
        };
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return fatal(
                line_of(bytes, e.valid_up_to()),
                "the file is not UTF-8 text".into(),
                "save it as UTF-8",
            );
        }
    };
    let start = text.trim_start_matches('\u{feff}').trim_start();
    if start.starts_with('{') || start.starts_with('(') {
        // plutil reads JSON and OpenStep plists; launchctl answers "Invalid property
        // list" (rdar://23486380).
        return fatal(
            1,
            "a JSON or old-style (OpenStep) property list: launchd reads only XML and \
             binary ones and refuses it"
                .into(),
            "convert it with `plutil -convert xml1 FILE`",
        );
    }
    let tokens = match tokenize(text) {
        Ok(t) => t,
        Err((line, message)) => {
            return fatal(line, message, "write well-formed XML");
        }
    };
    let mut builder = Builder {
        tokens: &tokens,
        pos: 0,
        parsed: Parsed::default(),
    };
    builder.document();
    builder.parsed
}

fn fatal(line: usize, message: String, fix: &str) -> Parsed {
    Parsed {
        errors: vec![SyntaxError {
            line,
            message: format!("not a property list: {message}"),
            fix: fix.into(),
        }],
        ..Parsed::default()
    }
}

fn line_of(bytes: &[u8], offset: usize) -> usize {
    1 + bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open { name: String, empty: bool },
    Close { name: String },
    Text { text: String },
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Splits the document into tags and text with quick-xml; skips the declaration,
/// processing instructions, the doctype and comments; resolves entities and CDATA.
/// quick-xml is told not to match end tags itself, so that the builder can report a
/// mismatched tag with both lines and go on; XML it cannot read at all (a bare `&`, an
/// unknown entity, an unterminated tag) ends the read with the line where it happened.
fn tokenize(text: &str) -> Result<Vec<Token>, (usize, String)> {
    use quick_xml::events::Event;

    let bytes = text.as_bytes();
    let line_at = |offset: u64| line_of(bytes, usize::try_from(offset).unwrap_or(usize::MAX));
    let mut reader = quick_xml::Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    config.expand_empty_elements = false;
    let mut tokens = Vec::new();
    loop {
        let start = reader.buffer_position();
        let event = reader.read_event().map_err(|e| {
            let line = line_at(reader.error_position());
            (line, describe_xml_error(&e, text, reader.error_position()))
        })?;
        let line = line_at(start);
        match event {
            Event::Start(tag) => tokens.push(Token {
                tok: Tok::Open {
                    name: open_tag(&tag, line)?,
                    empty: false,
                },
                line,
            }),
            Event::Empty(tag) => tokens.push(Token {
                tok: Tok::Open {
                    name: open_tag(&tag, line)?,
                    empty: true,
                },
                line,
            }),
            Event::Decl(decl) => {
                if let Err(e) = decl.version() {
                    return Err((line, unquoted("<?xml ...?>", &e.to_string())));
                }
            }
            Event::End(tag) => tokens.push(Token {
                tok: Tok::Close {
                    name: tag_name("</", tag.name().as_ref(), line)?,
                },
                line,
            }),
            Event::Text(t) => push_text(&mut tokens, t.xml10_content().into_owned(), line),
            Event::CData(t) => push_text(&mut tokens, t.into_inner().into_owned(), line),
            Event::GeneralRef(r) => {
                let entity = r.xml10_content();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    Ok(None) => {
                        quick_xml::escape::resolve_predefined_entity(&entity).map(str::to_string)
                    }
                    Err(_) => None,
                };
                match resolved {
                    Some(t) => push_text(&mut tokens, t, line),
                    None => return Err((line, format!("unknown entity &{entity};"))),
                }
            }
            Event::PI(_) | Event::DocType(_) | Event::Comment(_) => {}
            Event::Eof => return Ok(tokens),
        }
    }
}

/// An opening tag's name, once its attributes are well-formed XML.
fn open_tag(tag: &quick_xml::events::BytesStart, line: usize) -> Result<String, (usize, String)> {
    let name = tag_name("<", tag.name().as_ref(), line)?;
    if let Some(Err(e)) = tag.attributes().find(Result::is_err) {
        return Err((line, unquoted(&format!("<{name} ...>"), &e.to_string())));
    }
    Ok(name)
}

/// An attribute that is not well-formed, as `<plist version=1.0>`: what a plist
/// written with `echo "..."` in a shell looks like once the shell has eaten its
/// quotes. launchd does not load it (kc9wwh/macOSUpgrade#10: the LaunchDaemon such a
/// script wrote never ran, and loaded once its quotes were kept).
fn unquoted(tag: &str, error: &str) -> String {
    format!(
        "an attribute of {tag} is not well-formed ({error}): write its value in quotes, as in \
         <plist version=\"1.0\"> (a shell's `echo \"...\"` removes them)"
    )
}

/// A tag's name. quick-xml reads up to the next `>`, so a tag left open (`</string` and
/// then `</plist>`) arrives as one tag with a strange name: that is a tag never closed.
fn tag_name(opening: &str, raw: &str, line: usize) -> Result<String, (usize, String)> {
    if raw.is_empty() {
        return Err((line, "a tag without a name".into()));
    }
    if raw
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        Ok(raw.to_string())
    } else {
        let shown: String = raw.chars().take_while(|c| !c.is_whitespace()).collect();
        Err((line, format!("unterminated tag {opening}{shown}")))
    }
}

/// quick-xml's error in the words of this reader: what to write instead.
fn describe_xml_error(error: &quick_xml::Error, text: &str, at: u64) -> String {
    use quick_xml::errors::{IllFormedError, SyntaxError};

    match error {
        quick_xml::Error::IllFormed(IllFormedError::UnclosedReference) => {
            let at = usize::try_from(at).unwrap_or(0).min(text.len());
            let context: String = text[at..].chars().take(20).collect();
            format!(
                "a bare '&' in {:?}: write it as &amp;",
                context.split('<').next().unwrap_or_default().trim()
            )
        }
        quick_xml::Error::Syntax(SyntaxError::UnclosedTag) => "unterminated tag".into(),
        quick_xml::Error::Syntax(SyntaxError::UnclosedComment) => "unterminated comment".into(),
        quick_xml::Error::Syntax(SyntaxError::UnclosedCData) => "unterminated CDATA section".into(),
        quick_xml::Error::Syntax(SyntaxError::UnclosedDoctype) => {
            // nano marks a line too long for the screen with a `$` at its edge; a
            // DOCTYPE copied from there is cut short (legacy-homebrew#40541: launchctl
            // answered "Invalid property list").
            let cut = text
                .lines()
                .find(|l| l.trim_start().starts_with("<!DOCTYPE"))
                .is_some_and(|l| l.trim_end().ends_with('$'));
            format!(
                "unterminated <!DOCTYPE>{}: write the whole line, <!DOCTYPE plist PUBLIC \
                 \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">",
                if cut {
                    " (its line ends in `$`: it was copied from an editor's screen, where `$` \
                     marks a line cut at the edge)"
                } else {
                    ""
                }
            )
        }
        quick_xml::Error::Syntax(SyntaxError::UnclosedPI | SyntaxError::UnclosedXmlDecl) => {
            "unterminated <?...?>".into()
        }
        other => other.to_string(),
    }
}

fn push_text(tokens: &mut Vec<Token>, text: String, line: usize) {
    if let Some(Token {
        tok: Tok::Text { text: prev },
        ..
    }) = tokens.last_mut()
    {
        prev.push_str(&text);
    } else {
        tokens.push(Token {
            tok: Tok::Text { text },
            line,
        });
    }
}

const SCALARS: [&str; 6] = ["string", "integer", "real", "date", "data", "key"];

struct Builder<'t> {
    tokens: &'t [Token],
    pos: usize,
    parsed: Parsed,
}

/// Stops building: the rest of the document cannot be interpreted.
struct Abort;

impl Builder<'_> {
    fn error(&mut self, line: usize, message: String, fix: impl Into<String>) {
        self.parsed.errors.push(SyntaxError {
            line,
            message,
            fix: fix.into(),
        });
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn last_line(&self) -> usize {
        self.tokens.last().map_or(1, |t| t.line)
    }

    /// Skips white space between elements; other text there is an error.
    fn skip_space(&mut self) {
        while let Some(Token {
            tok: Tok::Text { text },
            line,
        }) = self.peek().cloned()
        {
            if !text.trim().is_empty() {
                self.error(
                    line,
                    format!("text {:?} outside any value element", text.trim()),
                    "put text inside <string>...</string>, or remove it",
                );
            }
            self.pos += 1;
        }
    }

    fn document(&mut self) {
        self.skip_space();
        let Some(first) = self.peek().cloned() else {
            self.error(1, "the file is empty".into(), "write a <plist> document");
            return;
        };
        let is_plist = matches!(&first.tok, Tok::Open { name, .. } if name == "plist");
        if !is_plist {
            self.error(
                first.line,
                "the document does not start with <plist version=\"1.0\">".into(),
                "wrap the top-level <dict> in <plist version=\"1.0\">...</plist>",
            );
            if let Ok(v) = self.value(true) {
                self.parsed.value = v;
            }
            return;
        }
        self.pos += 1;
        if matches!(first.tok, Tok::Open { empty: true, .. }) {
            self.error(
                first.line,
                "<plist/> is empty".into(),
                "put the job's <dict> inside <plist>",
            );
            return;
        }
        self.skip_space();
        match self.value(true) {
            Ok(v) => self.parsed.value = v,
            Err(Abort) => return,
        }
        self.skip_space();
        match self.peek().cloned() {
            Some(Token {
                tok: Tok::Close { name },
                ..
            }) if name == "plist" => self.pos += 1,
            Some(t) => {
                self.error(
                    t.line,
                    format!(
                        "{} after the top-level value: a plist holds exactly one",
                        describe(&t.tok)
                    ),
                    "keep one top-level <dict> and put every key inside it",
                );
                return;
            }
            None => {
                self.error(
                    self.last_line(),
                    "the document ends before </plist>".into(),
                    "close it with </plist>",
                );
                return;
            }
        }
        self.parsed.after_end = self.tokens[self.pos..]
            .iter()
            .find(|t| !matches!(&t.tok, Tok::Text { text } if text.trim().is_empty()))
            .map(|t| match &t.tok {
                // The line of its first visible character, not of the line break before.
                Tok::Text { text } => {
                    let blank = &text[..text.len() - text.trim_start().len()];
                    t.line + blank.matches('\n').count()
                }
                _ => t.line,
            });
    }

    /// Reads one value element. Returns `Ok(None)` for an element that was reported
    /// and skipped.
    fn value(&mut self, top: bool) -> Result<Option<Value>, Abort> {
        let Some(tok) = self.peek().cloned() else {
            self.error(
                self.last_line(),
                "the document ends where a value was expected".into(),
                "complete the document",
            );
            return Err(Abort);
        };
        let Tok::Open { name, empty } = tok.tok.clone() else {
            self.error(
                tok.line,
                format!("{} where a value was expected", describe(&tok.tok)),
                "put a value element here",
            );
            return Err(Abort);
        };
        self.pos += 1;
        let line = tok.line;
        match name.as_str() {
            "dict" if empty => Ok(Some(Value::Dictionary(Default::default()))),
            "array" if empty => Ok(Some(Value::Array(Vec::new()))),
            "dict" => self.dict(line, top).map(Some),
            "array" => self.array(line).map(Some),
            "true" | "false" => {
                if !empty {
                    self.expect_close(&name, line)?;
                    // plutil accepts it, launchd does not (rdar://47256054, macOS 10.14).
                    self.error(
                        line,
                        format!(
                            "<{name}></{name}>: launchd refuses the whole file (\"Invalid \
                             property list\") although plutil -lint accepts it"
                        ),
                        format!("write <{name}/>"),
                    );
                }
                Ok(Some(Value::Boolean(name == "true")))
            }
            "key" => {
                let text = if empty {
                    String::new()
                } else {
                    self.scalar_text(&name, line)?
                };
                self.error(
                    line,
                    // plutil reads it as a string; launchctl answers "Invalid property
                    // list" (a KeepAlive key left inside ProgramArguments, Ask Different).
                    format!(
                        "<key>{text}</key> outside a <dict>: launchd refuses the whole file \
                         (\"Invalid property list\") even where plutil -lint says OK"
                    ),
                    "keys belong inside <dict>; use <string> for a value",
                );
                Ok(None)
            }
            s if SCALARS.contains(&s) => {
                let text = if empty {
                    String::new()
                } else {
                    self.scalar_text(&name, line)?
                };
                Ok(self.scalar(&name, text, line))
            }
            other => {
                self.error(
                    line,
                    format!("<{other}> is not a property list element"),
                    "use one of dict, array, string, integer, real, true, false, date, data",
                );
                if !empty {
                    self.skip_element(other, line)?;
                }
                Ok(None)
            }
        }
    }

    fn scalar(&mut self, kind: &str, text: String, line: usize) -> Option<Value> {
        match kind {
            "string" => Some(Value::String(text)),
            "integer" => match cf_integer(&text) {
                Some(n) => Some(Value::Integer(n)),
                None => {
                    self.error(
                        line,
                        format!(
                            "<integer>{text}</integer> is not an integer, so launchd refuses \
                             the whole file"
                        ),
                        "write a whole number in decimal, e.g. <integer>10</integer>",
                    );
                    None
                }
            },
            "real" => match text.trim().parse::<f64>() {
                Ok(f) => Some(Value::Real(f)),
                Err(_) => {
                    self.error(
                        line,
                        format!("<real>{text}</real> is not a number"),
                        "write a decimal number",
                    );
                    None
                }
            },
            // The plist crate knows the date and base64 formats exactly.
            "date" | "data" => {
                let doc = format!(
                    "<plist version=\"1.0\"><{kind}>{}</{kind}></plist>",
                    escape(&text)
                );
                match Value::from_reader_xml(doc.as_bytes()) {
                    Ok(v) => Some(v),
                    Err(_) => {
                        self.error(
                            line,
                            format!("<{kind}>{text}</{kind}> is not a valid {kind}"),
                            if kind == "date" {
                                "write dates as 2024-01-31T12:00:00Z"
                            } else {
                                "write data as base64"
                            },
                        );
                        None
                    }
                }
            }
            _ => None,
        }
    }

    /// The text content of a scalar element up to its closing tag.
    fn scalar_text(&mut self, name: &str, line: usize) -> Result<String, Abort> {
        let mut text = String::new();
        if let Some(Token {
            tok: Tok::Text { text: t },
            ..
        }) = self.peek().cloned()
        {
            text = t;
            self.pos += 1;
        }
        match self.peek().cloned() {
            Some(Token {
                tok: Tok::Close { name: close },
                ..
            }) if close == name => {
                self.pos += 1;
                Ok(text)
            }
            Some(t) => {
                self.error(
                    t.line,
                    format!("{} inside <{name}> (line {line})", describe(&t.tok)),
                    format!("<{name}> holds text only; close it with </{name}>"),
                );
                Err(Abort)
            }
            None => {
                self.error(
                    line,
                    format!("<{name}> is never closed"),
                    format!("close it with </{name}>"),
                );
                Err(Abort)
            }
        }
    }

    fn expect_close(&mut self, name: &str, line: usize) -> Result<(), Abort> {
        self.skip_space();
        match self.peek().cloned() {
            Some(Token {
                tok: Tok::Close { name: close },
                ..
            }) if close == name => {
                self.pos += 1;
                Ok(())
            }
            _ => {
                self.error(
                    line,
                    format!("<{name}> must be empty, as <{name}/>"),
                    format!("write <{name}/>"),
                );
                Err(Abort)
            }
        }
    }

    /// Skips an unknown element with everything in it.
    fn skip_element(&mut self, name: &str, line: usize) -> Result<(), Abort> {
        let mut depth = 1;
        while let Some(t) = self.peek().cloned() {
            self.pos += 1;
            match t.tok {
                Tok::Open { empty: false, .. } => depth += 1,
                Tok::Close { .. } => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        self.error(
            line,
            format!("<{name}> is never closed"),
            format!("close it with </{name}>"),
        );
        Err(Abort)
    }

    fn array(&mut self, line: usize) -> Result<Value, Abort> {
        let mut items = Vec::new();
        loop {
            self.skip_space();
            match self.peek().cloned() {
                Some(Token {
                    tok: Tok::Close { name },
                    line: l,
                }) => {
                    self.pos += 1;
                    if name != "array" {
                        self.error(
                            l,
                            format!("</{name}> closes <array> (line {line})"),
                            "close <array> with </array>",
                        );
                        return Err(Abort);
                    }
                    return Ok(Value::Array(items));
                }
                None => {
                    self.error(
                        line,
                        "<array> is never closed".into(),
                        "close it with </array>",
                    );
                    return Err(Abort);
                }
                Some(_) => {
                    if let Some(v) = self.value(false)? {
                        items.push(v);
                    }
                }
            }
        }
    }

    fn dict(&mut self, line: usize, top: bool) -> Result<Value, Abort> {
        let mut dict = ::plist::Dictionary::new();
        let mut seen_lines: BTreeMap<String, usize> = BTreeMap::new();
        loop {
            self.skip_space();
            let Some(tok) = self.peek().cloned() else {
                self.error(
                    line,
                    "<dict> is never closed".into(),
                    "close it with </dict>",
                );
                return Err(Abort);
            };
            match tok.tok {
                Tok::Close { name } => {
                    self.pos += 1;
                    if name != "dict" {
                        self.error(
                            tok.line,
                            format!("</{name}> closes <dict> (line {line})"),
                            "close <dict> with </dict>",
                        );
                        return Err(Abort);
                    }
                    return Ok(Value::Dictionary(dict));
                }
                Tok::Open { ref name, empty } if name == "key" => {
                    self.pos += 1;
                    let key = if empty {
                        String::new()
                    } else {
                        self.scalar_text("key", tok.line)?
                    };
                    self.skip_space();
                    let next = self.peek().cloned();
                    let missing = match next.as_ref().map(|t| &t.tok) {
                        Some(Tok::Open { name, .. }) if name == "key" => Some(format!(
                            "<key>{key}</key> has no value: the next element is another <key>"
                        )),
                        Some(Tok::Close { name }) if name == "dict" => Some(format!(
                            "<key>{key}</key> has no value: the <dict> ends right after it"
                        )),
                        _ => None,
                    };
                    if let Some(message) = missing {
                        self.error(
                            tok.line,
                            format!("{message}, so launchd refuses the whole file"),
                            format!("give it exactly one value, e.g. <key>{key}</key> <true/>"),
                        );
                        if top {
                            self.parsed.keys_without_value.push(key.clone());
                            self.parsed.key_lines.entry(key).or_insert(tok.line);
                        }
                        continue;
                    }
                    let value = self.value(false)?;
                    if let Some(first) = seen_lines.get(&key) {
                        self.parsed.duplicates.push(Duplicate {
                            key: key.clone(),
                            first: *first,
                            line: tok.line,
                        });
                    }
                    seen_lines.insert(key.clone(), tok.line);
                    if top {
                        self.parsed.key_lines.insert(key.clone(), tok.line);
                    }
                    if let Some(v) = value {
                        dict.insert(key, v);
                    }
                }
                ref other => {
                    self.error(
                        tok.line,
                        format!("{} in a <dict> where a <key> was expected", describe(other)),
                        "inside <dict>, every value follows its own <key>NAME</key>",
                    );
                    if matches!(other, Tok::Open { .. }) {
                        self.value(false)?;
                    } else {
                        self.pos += 1;
                    }
                }
            }
        }
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Open { name, empty: true } => format!("<{name}/>"),
        Tok::Open { name, .. } => format!("<{name}>"),
        Tok::Close { name } => format!("</{name}>"),
        Tok::Text { text } => format!("text {:?}", text.trim()),
    }
}

/// An `<integer>` as CoreFoundation reads one (CFPropertyList.c, parseIntegerTag):
/// white space, an optional sign, more white space, then decimal digits or `0x` and hex
/// digits. Anything else makes the whole property list unreadable.
fn cf_integer(text: &str) -> Option<::plist::Integer> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, text.strip_prefix('+').unwrap_or(text).trim_start()),
    };
    let (radix, digits) = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => (16, hex),
        None => (10, digits),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let value = i64::try_from(magnitude).ok()?;
        Some((-value).into())
    } else {
        Some(magnitude.into())
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \
             \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
             <plist version=\"1.0\">\n{body}\n</plist>\n"
        )
    }

    #[test]
    fn the_plist_crate_is_lenient_about_a_key_without_a_value() {
        // The reason this module exists: keep it honest should the crate become strict.
        let text = doc("<dict><key>RunAtLoad</key><key>KeepAlive</key></dict>");
        let lenient = Value::from_reader_xml(text.as_bytes()).unwrap();
        assert_eq!(
            lenient.as_dictionary().unwrap().get("RunAtLoad"),
            Some(&Value::String("KeepAlive".into()))
        );
        let strict = parse(text.as_bytes());
        assert!(!strict.is_valid());
        assert_eq!(strict.keys_without_value, ["RunAtLoad", "KeepAlive"]);
    }

    #[test]
    fn a_valid_plist_reads_like_the_plist_crate_reads_it() {
        let text = doc(
            "<dict>\n<key>Label</key>\n<string>a &amp; b &#x41;&#66;</string>\n\
             <key>N</key><integer>-3</integer><key>R</key><real>1.5</real>\
             <key>T</key><true/><key>F</key><false/>\
             <key>A</key><array><string>x</string><dict/></array>\
             <key>D</key><data>aGk=</data><key>W</key><date>2024-01-31T12:00:00Z</date>\
             <!-- a comment -->\n</dict>",
        );
        let strict = parse(text.as_bytes());
        assert!(strict.is_valid(), "{:?}", strict.errors);
        let crate_value = Value::from_reader_xml(text.as_bytes()).unwrap();
        assert_eq!(strict.value.unwrap(), crate_value);
        assert_eq!(strict.key_lines["Label"], 5);
    }

    /// CoreFoundation reads hex and signed integers with white space inside; launchd
    /// takes such files, so the reader must too. A `*` (as in a hand-edited locate
    /// job) is not an integer.
    #[test]
    fn integers_are_read_as_corefoundation_reads_them() {
        for (text, value) in [
            ("438", 438),
            (" 0x1B6 ", 0x1b6),
            ("0X1f", 0x1f),
            ("- 5", -5),
            ("+7", 7),
            ("0644", 644),
        ] {
            let parsed = parse(
                doc(&format!(
                    "<dict><key>N</key><integer>{text}</integer></dict>"
                ))
                .as_bytes(),
            );
            assert!(parsed.is_valid(), "{text}: {:?}", parsed.errors);
            assert_eq!(
                parsed.dict().unwrap().get("N"),
                Some(&Value::Integer(::plist::Integer::from(value))),
                "{text}"
            );
        }
        for bad in ["*", "", "0x", "1.5", "12abc", "--1"] {
            let parsed = parse(
                doc(&format!(
                    "<dict><key>N</key><integer>{bad}</integer></dict>"
                ))
                .as_bytes(),
            );
            assert!(!parsed.is_valid(), "{bad:?}");
        }
    }

    #[test]
    fn cdata_is_text() {
        // (The plist crate reads a CDATA section as an empty string.)
        let text = doc("<dict><key>C</key><string><![CDATA[<raw> & more]]></string></dict>");
        let parsed = parse(text.as_bytes());
        assert_eq!(
            parsed.dict().unwrap().get("C"),
            Some(&Value::String("<raw> & more".into()))
        );
    }

    #[test]
    fn every_mistake_is_reported_with_its_line() {
        let cases = [
            (
                "<dict><key>A</key></dict>",
                "the <dict> ends right after it",
            ),
            (
                "<dict><string>x</string></dict>",
                "where a <key> was expected",
            ),
            (
                "<dict><key>A</key><bogus/></dict>",
                "not a property list element",
            ),
            (
                "<dict><key>A</key><integer>1x</integer></dict>",
                "not an integer",
            ),
            (
                "<dict><key>A</key><string>a & b</string></dict>",
                "bare '&'",
            ),
            ("<dict><key>A</key><string>x</dict>", "inside <string>"),
            ("<dict></array>", "closes <dict>"),
            ("<dict/><dict/>", "exactly one"),
            ("<dict><key>A</key><true/>", "</plist> closes <dict>"),
            ("hello<dict/>", "outside any value"),
            (
                "<dict><key>A</key><false></false></dict>",
                "<false></false>: launchd refuses",
            ),
            (
                "<dict><key>A</key><string>&bogus;</string></dict>",
                "unknown entity &bogus;",
            ),
            ("<dict><key>A</key><string>x</string", "unterminated tag"),
            ("<dict><key>A</key><!-- x </dict>", "unterminated comment"),
        ];
        for (body, expected) in cases {
            let parsed = parse(doc(body).as_bytes());
            assert!(
                parsed.errors.iter().any(|e| e.message.contains(expected)),
                "{body}: expected {expected:?} in {:?}",
                parsed.errors
            );
            assert!(parsed.errors.iter().all(|e| e.line >= 3), "{body}");
        }
        for other_format in [
            "{\"Label\": \"x\", \"Program\": \"/bin/x\"}",
            "\u{feff}{ Label = x; Program = \"/bin/x\"; }",
        ] {
            let parsed = parse(other_format.as_bytes());
            assert_eq!(parsed.errors.len(), 1, "{other_format}");
            assert!(parsed.errors[0].message.contains("JSON or old-style"));
            assert!(parsed.errors[0].fix.contains("plutil -convert xml1"));
        }
        assert!(!parse(b"").is_valid());
        assert!(!parse(b"<dict/>").is_valid());
        assert!(!parse(b"<plist><dict>").is_valid());
    }

    /// CoreFoundation keeps the last of two values of a key (CFPropertyList.c,
    /// parseDictTag: CFDictionarySetValue), so a repeated key is recorded, not refused.
    #[test]
    fn a_repeated_key_keeps_its_last_value() {
        let text = doc("<dict>\n<key>A</key><true/>\n<key>A</key><false/>\n</dict>");
        let parsed = parse(text.as_bytes());
        assert!(parsed.is_valid(), "{:?}", parsed.errors);
        assert_eq!(
            parsed.dict().unwrap().get("A"),
            Some(&Value::Boolean(false))
        );
        assert_eq!(
            parsed.duplicates,
            [Duplicate {
                key: "A".into(),
                first: 5,
                line: 6
            }]
        );
    }

    #[test]
    fn recovery_keeps_the_rest_of_the_dictionary() {
        let text = doc(
            "<dict>\n<key>Label</key><string>x</string>\n<key>RunAtLoad</key>\n\
             <key>KeepAlive</key>\n<key>Program</key><string>/bin/true</string>\n</dict>",
        );
        let parsed = parse(text.as_bytes());
        let dict = parsed.dict().unwrap();
        assert_eq!(dict.get("Label").and_then(Value::as_string), Some("x"));
        assert_eq!(
            dict.get("Program").and_then(Value::as_string),
            Some("/bin/true")
        );
        assert!(dict.get("RunAtLoad").is_none());
        assert_eq!(parsed.keys_without_value, ["RunAtLoad", "KeepAlive"]);
        assert_eq!(parsed.errors.len(), 2);
        assert_eq!(parsed.errors[0].line, 6);
        assert_eq!(parsed.errors[1].line, 7);
    }

    #[test]
    fn binary_plists_are_read_too() {
        let mut dict = ::plist::Dictionary::new();
        dict.insert("Label".into(), Value::String("x".into()));
        let mut bytes = Vec::new();
        Value::Dictionary(dict.clone())
            .to_writer_binary(&mut bytes)
            .unwrap();
        let parsed = parse(&bytes);
        assert!(parsed.is_valid());
        assert_eq!(parsed.value, Some(Value::Dictionary(dict)));
        assert!(!parse(b"bplist00garbage").is_valid());
    }

    /// CoreFoundation stops reading at the end of the first element, so an editor's
    /// `~` lines after `</plist>` (Apple's com.apple.mail_migration.plist) do not make
    /// the file invalid; where they start is kept for a warning. Inside `<plist>`, a
    /// second value is still an error.
    #[test]
    fn what_follows_the_plist_element_is_ignored_but_noted() {
        let text = format!(
            "{}~\n~ \n",
            doc("<dict><key>Label</key><string>x</string></dict>")
        );
        let parsed = parse(text.as_bytes());
        assert!(parsed.is_valid(), "{:?}", parsed.errors);
        assert_eq!(parsed.after_end, Some(6));
        let clean = parse(doc("<dict/>").as_bytes());
        assert!(clean.is_valid());
        assert_eq!(clean.after_end, None);
        let two = parse(doc("<dict/>\n<dict/>").as_bytes());
        assert!(!two.is_valid());
        assert!(two.errors[0].message.contains("after the top-level value"));
    }

    /// A plist written with `echo "..."` has lost the quotes around its attribute
    /// values: that is not XML, in the declaration or in `<plist>`.
    #[test]
    fn attribute_values_without_quotes_are_reported() {
        let body = "<plist version=1.0>\n<dict/>\n</plist>\n";
        for (text, line) in [
            (format!("<?xml version=1.0 encoding=UTF-8?>\n{body}"), 1),
            (
                format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"),
                2,
            ),
        ] {
            let parsed = parse(text.as_bytes());
            assert!(!parsed.is_valid(), "{text}");
            assert_eq!(parsed.errors[0].line, line, "{:?}", parsed.errors);
            assert!(
                parsed.errors[0]
                    .message
                    .contains("write its value in quotes"),
                "{:?}",
                parsed.errors
            );
        }
        assert!(parse(doc("<dict/>").as_bytes()).is_valid());
    }

    /// A DOCTYPE copied from nano's screen ends in `$` where the line was cut.
    #[test]
    fn a_doctype_cut_at_the_screen_edge_says_so() {
        let text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \
                    \"-//Apple Computer//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/Prop$\n\
                    <plist version=\"1.0\">\n<dict/>\n</plist>\n";
        let parsed = parse(text.as_bytes());
        assert!(!parsed.is_valid());
        let message = &parsed.errors[0].message;
        assert!(
            message.contains("unterminated <!DOCTYPE> (its line ends in `$`"),
            "{message}"
        );
        assert!(message.contains("PropertyList-1.0.dtd\">"), "{message}");
    }
}
