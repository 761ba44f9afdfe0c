//! Reads a main.cf file directly, without spawning postconf, for the hot paths
//! (listing and status) where one process per instance would cost too much.

use std::collections::BTreeMap;
use std::path::Path;

/// The parameters a main.cf file sets explicitly, last assignment winning, as Postfix
/// reads it: `#` comments, and lines that start with white space continue the
/// previous one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MainCf {
    pub params: BTreeMap<String, String>,
}

impl MainCf {
    pub fn parse(text: &str) -> MainCf {
        let mut params = BTreeMap::new();
        let mut current: Option<(String, String)> = None;
        for line in text.lines() {
            if line.trim_start().starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = current.as_mut() {
                    if !value.is_empty() {
                        value.push(' ');
                    }
                    value.push_str(line.trim());
                }
                continue;
            }
            if let Some((k, v)) = current.take() {
                params.insert(k, v);
            }
            if let Some((name, value)) = line.split_once('=') {
                current = Some((name.trim().to_string(), value.trim().to_string()));
            }
        }
        if let Some((k, v)) = current {
            params.insert(k, v);
        }
        MainCf { params }
    }

    pub fn read(config_dir: &Path) -> std::io::Result<MainCf> {
        Ok(MainCf::parse(&std::fs::read_to_string(
            config_dir.join("main.cf"),
        )?))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A parameter's value with `$name` and `${name}` references expanded from this
    /// file, falling back to `defaults` (postconf -d) for what it does not set.
    pub fn expanded(
        &self,
        name: &str,
        defaults: &dyn Fn(&str) -> Option<String>,
    ) -> Option<String> {
        let raw = self
            .get(name)
            .map(str::to_string)
            .or_else(|| defaults(name))?;
        Some(self.expand(&raw, defaults, 0))
    }

    fn expand(&self, value: &str, defaults: &dyn Fn(&str) -> Option<String>, depth: u8) -> String {
        if depth > 10 || !value.contains('$') {
            return value.to_string();
        }
        let mut out = String::new();
        let mut rest = value;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
                match inner.find('}') {
                    Some(end) => (&inner[..end], end + 2),
                    None => (inner, inner.len() + 1),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            let resolved = self
                .get(name)
                .map(str::to_string)
                .or_else(|| defaults(name))
                .unwrap_or_default();
            out.push_str(&self.expand(&resolved, defaults, depth + 1));
            rest = &after[consumed..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# comment
myhostname = in.example.com
mydestination = $myhostname,
    localhost
inet_interfaces = 127.0.1.1
inet_interfaces = 127.0.1.2
empty =
queue_directory = ${spool}/postfix-in
";

    #[test]
    fn continuation_and_last_wins() {
        let cf = MainCf::parse(TEXT);
        assert_eq!(cf.get("mydestination"), Some("$myhostname, localhost"));
        assert_eq!(cf.get("inet_interfaces"), Some("127.0.1.2"));
        assert_eq!(cf.get("empty"), Some(""));
        assert_eq!(cf.get("comment"), None);
    }

    #[test]
    fn expansion_uses_file_then_defaults() {
        let cf = MainCf::parse(TEXT);
        let defaults = |n: &str| (n == "spool").then(|| "/var/spool".to_string());
        assert_eq!(
            cf.expanded("mydestination", &defaults).unwrap(),
            "in.example.com, localhost"
        );
        assert_eq!(
            cf.expanded("queue_directory", &defaults).unwrap(),
            "/var/spool/postfix-in"
        );
        assert_eq!(cf.expanded("unknown", &defaults), None);
    }
}
