//! The declarative manifest for `instancectl apply -f instances.toml`: every
//! secondary instance the host should have, in start order.
//!
//! ```toml
//! [[instance]]
//! name = "postfix-out"
//! group = "mta"
//! role = "output"                 # input, output, null-client, plain (default)
//! listen = ["127.0.0.1:10026"]    # default: the role's
//! enabled = true                  # default
//! [instance.set]                  # main.cf parameters on top of the role's preset
//! relayhost = "[127.0.0.1]:2500"
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::error::InputError;
use crate::error::{Error, Result};
use crate::roles::Role;
use crate::validate::{self, ListenSpec};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    instance: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    group: Option<String>,
    #[serde(default = "plain")]
    role: Role,
    #[serde(default)]
    listen: Vec<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    set: BTreeMap<String, String>,
}

fn plain() -> Role {
    Role::Plain
}

fn yes() -> bool {
    true
}

/// One instance as the manifest wants it, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub group: Option<String>,
    pub role: Role,
    pub listen: Vec<ListenSpec>,
    pub enabled: bool,
    pub set: Vec<(String, String)>,
}

impl Wanted {
    /// The `--listen` words as typed, for create.
    pub fn listen_words(&self) -> Vec<String> {
        self.listen.iter().map(|l| l.to_string()).collect()
    }

    /// The `--set` words, for create.
    pub fn set_words(&self) -> Vec<String> {
        self.set.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// Reads and checks a manifest; `defaults` is `postconf -d`, to check `set`.
pub fn load(path: &Path, defaults: &BTreeMap<String, String>) -> Result<Vec<Wanted>> {
    let text = std::fs::read_to_string(path).map_err(|source| InputError::ManifestUnreadable {
        path: path.into(),
        source,
    })?;
    parse(&text, defaults).map_err(|e| match e {
        Error::Input(source) => InputError::InManifest {
            path: path.into(),
            source,
        }
        .into(),
        other => other,
    })
}

pub fn parse(text: &str, defaults: &BTreeMap<String, String>) -> Result<Vec<Wanted>> {
    let file: File = toml::from_str(text).map_err(|e| InputError::ManifestSyntax {
        message: e.to_string(),
    })?;
    let mut names = BTreeSet::new();
    let mut taken: Vec<(ListenSpec, String)> = Vec::new();
    let mut wanted = Vec::new();
    for entry in file.instance {
        validate::instance_name(&entry.name)?;
        if !names.insert(entry.name.clone()) {
            return Err(InputError::ManifestNameTwice { name: entry.name }.into());
        }
        if let Some(group) = &entry.group {
            validate::group_name(group)?;
        }
        let listen = validate::listen_list(&entry.listen, entry.role)?;
        for spec in &listen {
            if let Some((_, other)) = taken.iter().find(|(l, _)| l == spec) {
                return Err(InputError::ManifestListenTwice {
                    name: entry.name,
                    other: other.clone(),
                    listen: (*spec).into(),
                }
                .into());
            }
            taken.push((*spec, entry.name.clone()));
        }
        let set = entry
            .set
            .iter()
            .map(|(k, v)| validate::setting(&format!("{k}={v}"), defaults))
            .collect::<Result<Vec<_>>>()?;
        wanted.push(Wanted {
            name: entry.name,
            group: entry.group,
            role: entry.role,
            listen,
            enabled: entry.enabled,
            set,
        });
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> BTreeMap<String, String> {
        [("relayhost".to_string(), String::new())].into()
    }

    #[test]
    fn full_entry() {
        let text = r#"
[[instance]]
name = "postfix-out"
group = "mta"
role = "output"
[instance.set]
relayhost = "[127.0.0.1]:2500"

[[instance]]
name = "postfix-in"
group = "mta"
role = "input"
listen = ["127.0.1.1"]
enabled = false
"#;
        let wanted = parse(text, &defaults()).unwrap();
        assert_eq!(wanted.len(), 2);
        assert_eq!(wanted[0].listen_words(), ["127.0.0.1:10026"]);
        assert_eq!(wanted[0].set_words(), ["relayhost=[127.0.0.1]:2500"]);
        assert!(!wanted[1].enabled);
        assert_eq!(wanted[1].role, Role::Input);
    }

    #[test]
    fn mistakes_are_bad_input() {
        for text in [
            "[[instance]]\nname = \"in\"\n",
            "[[instance]]\nname = \"postfix-a\"\nrole = \"boss\"\n",
            "[[instance]]\nname = \"postfix-a\"\ncolour = \"red\"\n",
            "[[instance]]\nname = \"postfix-a\"\n[[instance]]\nname = \"postfix-a\"\n",
            "[[instance]]\nname = \"postfix-a\"\n[instance.set]\nnot_a_param = \"1\"\n",
            "[[instance]]\nname = \"postfix-a\"\nlisten = [\"127.0.0.1:2525\"]\n[[instance]]\nname = \"postfix-b\"\nlisten = [\"127.0.0.1:2525\"]\n",
            "this is not toml",
        ] {
            let err = parse(text, &defaults()).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{text}: {err}");
        }
    }

    #[test]
    fn mistakes_name_the_instance_and_the_file() {
        let input = |text: &str| parse(text, &defaults()).unwrap_err().into_input();
        assert!(matches!(
            input("[[instance]]\nname = \"postfix-a\"\n[[instance]]\nname = \"postfix-a\"\n"),
            InputError::ManifestNameTwice { name } if name == "postfix-a"
        ));
        assert!(matches!(
            input(
                "[[instance]]\nname = \"postfix-a\"\nlisten = [\"127.0.0.1:2525\"]\n\
                 [[instance]]\nname = \"postfix-b\"\nlisten = [\"127.0.0.1:2525\"]\n"
            ),
            InputError::ManifestListenTwice { name, other, .. }
                if name == "postfix-b" && other == "postfix-a"
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("instances.toml");
        std::fs::write(&path, "[[instance]]\nname = \"in\"\n").unwrap();
        let err = load(&path, &defaults()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(matches!(
            err.into_input(),
            InputError::InManifest { path: p, source }
                if p == path && matches!(*source, InputError::NameWithoutPrefix { .. })
        ));
        assert!(matches!(
            load(&dir.path().join("missing.toml"), &defaults())
                .unwrap_err()
                .into_input(),
            InputError::ManifestUnreadable { .. }
        ));
    }
}
