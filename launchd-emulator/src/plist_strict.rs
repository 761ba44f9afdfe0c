//! The structural rules of XML property lists that the `plist` crate does not enforce.
//!
//! The crate reads `<key>` and `<string>` alike, so `<key>RunAtLoad</key><key>KeepAlive</key>`
//! (the seed plist's mistake) would load as RunAtLoad = "KeepAlive". launchd, like Python's
//! plistlib ("unexpected key"), refuses such a file, so it is checked here first: inside a
//! `<dict>`, keys and values must alternate, starting with a key and ending with a value.
//! The crate also silently drops an unknown `&...;` reference (a shell `&` written without
//! `&amp;` loses text up to the next `;`), where CFPropertyList refuses the file.

use quick_xml::Reader;
use quick_xml::events::Event;

#[derive(Debug)]
enum Frame {
    Plist,
    Dict {
        /// The key waiting for its value, if any.
        pending: Option<String>,
    },
    Array,
    Leaf,
}

const VALUES: &[&str] = &[
    "dict", "array", "string", "integer", "real", "date", "data", "true", "false",
];

/// Checks the element structure of an XML plist; binary plists pass untouched.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(b"bplist") {
        return Ok(());
    }
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Frame> = Vec::new();
    let mut last_key_text = String::new();
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("XML error at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.name().0 == "plist" => {
                if !stack.is_empty() {
                    return Err("nested <plist>".into());
                }
                // An empty <plist/> is left to the plist parser to refuse.
                stack.push(Frame::Plist);
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.name().0.to_string();
                let is_empty = matches!(event, Event::Empty(_));
                match stack.last_mut() {
                    None => return Err(format!("<{name}> outside <plist>")),
                    Some(Frame::Leaf) => return Err(format!("<{name}> inside a scalar value")),
                    Some(Frame::Dict { pending }) => match (pending.take(), name.as_str()) {
                        (None, "key") => *pending = Some(String::new()),
                        (None, other) => {
                            return Err(format!("<{other}> where a <key> was expected in <dict>"));
                        }
                        (Some(key), "key") => {
                            let key = if key.is_empty() {
                                last_key_text.clone()
                            } else {
                                key
                            };
                            return Err(format!("unexpected key: <key>{key}</key> has no value"));
                        }
                        (Some(_), v) if VALUES.contains(&v) => {}
                        (Some(_), other) => return Err(format!("unknown element <{other}>")),
                    },
                    Some(Frame::Array) | Some(Frame::Plist) => {
                        if !VALUES.contains(&name.as_str()) {
                            return Err(format!("unexpected <{name}> where a value was expected"));
                        }
                    }
                }
                if !is_empty {
                    stack.push(match name.as_str() {
                        "dict" => Frame::Dict { pending: None },
                        "array" => Frame::Array,
                        _ => Frame::Leaf,
                    });
                    if name == "key" {
                        last_key_text.clear();
                    }
                }
            }
            Event::End(_) => match stack.pop() {
                Some(Frame::Dict { pending: Some(_) }) => {
                    return Err(format!(
                        "unexpected end of <dict>: <key>{last_key_text}</key> has no value"
                    ));
                }
                Some(_) => {}
                None => return Err("unbalanced closing tag".into()),
            },
            Event::Text(t) => {
                let text: &str = &t;
                if let Some(Frame::Leaf) = stack.last() {
                    last_key_text.push_str(text);
                } else if !text.trim().is_empty() {
                    return Err("text outside a value".into());
                }
            }
            Event::GeneralRef(r) => {
                let name: &str = &r;
                let known = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
                    || (r.is_char_ref() && r.resolve_char_ref().is_ok_and(|c| c.is_some()));
                if !known {
                    return Err(format!("unknown entity or bare '&': &{name};"));
                }
                if let Some(Frame::Leaf) = stack.last() {
                    last_key_text.push('&');
                }
            }
            Event::Eof => {
                return if stack.is_empty() {
                    Ok(())
                } else {
                    Err("unexpected end of document".into())
                };
            }
            _ => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    fn doc(body: &str) -> String {
        format!("<?xml version=\"1.0\"?>\n<plist version=\"1.0\">\n{body}\n</plist>")
    }

    #[test]
    fn well_formed_plists_pass() {
        check(doc("<dict><key>A</key><true/><key>B</key><array><string>x</string></array><key>C</key><dict/></dict>").as_bytes()).unwrap();
    }

    #[test]
    fn key_without_value_is_refused() {
        let e = check(doc("<dict><key>RunAtLoad</key>\n<key>KeepAlive</key>\n</dict>").as_bytes())
            .unwrap_err();
        assert!(e.contains("RunAtLoad"), "{e}");
        assert!(check(doc("<dict><key>A</key></dict>").as_bytes()).is_err());
        assert!(check(doc("<dict><string>A</string><true/></dict>").as_bytes()).is_err());
        assert!(check(doc("<dict><key>A</key><bogus/></dict>").as_bytes()).is_err());
    }

    #[test]
    fn bare_ampersands_and_unknown_entities_are_refused() {
        let s = |t: &str| doc(&format!("<dict><key>A</key><string>{t}</string></dict>"));
        check(s("a &amp; b &lt;&#38;&#x26;").as_bytes()).unwrap();
        assert!(check(s("sleep & echo $! > pidfile; exit 0").as_bytes()).is_err());
        assert!(check(s("a & b").as_bytes()).is_err());
        assert!(check(s("&nbsp;").as_bytes()).is_err());
    }
}
