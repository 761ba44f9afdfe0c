//! Problems between instances, which no instance shows on its own: two configured on
//! the same address and port, several sharing a myhostname (each would take the
//! other's mail for a loop back to itself), and a listener answered with the greeting
//! of another instance.

use std::collections::BTreeMap;

use serde::Serialize;

use super::verdict::ListenerClash;
use crate::instance::Instance;
use crate::postfix::main_cf::MainCf;
use crate::probe::ListenerStatus;

/// A problem between instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Conflict {
    /// Two instances are configured on the same address and port (or one on every
    /// address of that port); `addresses[i]` belongs to `instances[i]`.
    Listener {
        instances: [String; 2],
        addresses: [String; 2],
    },
    /// Several instances share a myhostname.
    Myhostname {
        myhostname: String,
        instances: Vec<String>,
    },
}

/// The conflicts among every instance of the host, with what each instance's own
/// report needs of them.
pub struct Conflicts<'a> {
    all: &'a [Instance],
    /// The myhostname each of `all` uses, in the same order.
    myhostnames: Vec<String>,
    list: Vec<Conflict>,
}

impl<'a> Conflicts<'a> {
    /// Finds the conflicts among `all`, the host's instances.
    pub fn find(all: &'a [Instance], hostname: &str) -> Conflicts<'a> {
        let myhostnames: Vec<String> = all
            .iter()
            .map(|i| effective_myhostname(i, hostname))
            .collect();
        let mut list = listener_conflicts(all);
        list.extend(myhostname_conflicts(all, &myhostnames));
        Conflicts {
            all,
            myhostnames,
            list,
        }
    }

    /// The myhostname `instance` uses.
    pub fn myhostname(&self, instance: &Instance, hostname: &str) -> String {
        self.all
            .iter()
            .position(|i| i.name == instance.name)
            .map(|p| self.myhostnames[p].clone())
            .unwrap_or_else(|| effective_myhostname(instance, hostname))
    }

    /// The listeners of instance `name` that clash with another's, and the other
    /// instances that share its myhostname (as people name them).
    pub fn of(&self, name: &str) -> (Vec<ListenerClash>, Vec<String>) {
        let mut clashes = Vec::new();
        let mut same = Vec::new();
        for c in &self.list {
            match c {
                Conflict::Listener {
                    instances,
                    addresses,
                } => {
                    for k in 0..2 {
                        if instances[k] == name {
                            let other = &instances[1 - k];
                            clashes.push(ListenerClash {
                                ours: addresses[k].clone(),
                                other: display(other),
                                other_name: other.clone(),
                                theirs: addresses[1 - k].clone(),
                                other_enabled: self
                                    .all
                                    .iter()
                                    .any(|i| i.name == *other && i.enabled),
                            });
                        }
                    }
                }
                Conflict::Myhostname { instances, .. } => {
                    if instances.iter().any(|i| i == name) {
                        same.extend(instances.iter().filter(|i| *i != name).map(|i| display(i)));
                    }
                }
            }
        }
        (clashes, same)
    }

    /// A warning for each of instance `name`'s listeners that greets with another
    /// instance's myhostname: that instance answers there, not this one.
    pub fn answered_by_another(
        &self,
        name: &str,
        myhostname: &str,
        listeners: &[ListenerStatus],
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        for l in listeners.iter().filter(|l| l.ok) {
            let Some(host) = l.banner.as_deref().and_then(banner_host) else {
                continue;
            };
            if host.eq_ignore_ascii_case(myhostname) {
                continue;
            }
            let owners: Vec<String> = self
                .all
                .iter()
                .zip(&self.myhostnames)
                .filter(|(i, m)| i.name != name && m.eq_ignore_ascii_case(host))
                .map(|(i, _)| display(&i.name))
                .collect();
            if !owners.is_empty() {
                warnings.push(format!(
                    "{} is answered by {} (its greeting names {host}, not {myhostname})",
                    l.address,
                    owners.join(" or ")
                ));
            }
        }
        warnings
    }

    /// The conflicts that involve any of `names` (the instances a report is about).
    pub fn involving(self, names: &[&str]) -> Vec<Conflict> {
        let involved = |instances: &[String]| instances.iter().any(|i| names.contains(&i.as_str()));
        self.list
            .into_iter()
            .filter(|c| match c {
                Conflict::Listener { instances, .. } => involved(instances),
                Conflict::Myhostname { instances, .. } => involved(instances),
            })
            .collect()
    }
}

/// The myhostname an instance uses: main.cf's, else Postfix's default, which is the
/// host name when it has a dot, else the host name plus `.$mydomain` (or
/// `.localdomain`), as mail_params.c computes it.
fn effective_myhostname(instance: &Instance, hostname: &str) -> String {
    if let Some(name) = instance.myhostname.as_deref().filter(|n| !n.is_empty()) {
        return name.to_string();
    }
    if hostname.contains('.') {
        return hostname.to_string();
    }
    let main_cf = MainCf::read(&instance.config_directory).unwrap_or_default();
    let domain = main_cf
        .expanded("mydomain", &|_| None)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "localdomain".into());
    format!("{hostname}.{domain}")
}

/// The host's name as Postfix reads it.
pub fn host_name() -> String {
    // uname's nodename, which is what Postfix's get_hostname() reads.
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every pair of instances configured on the same address and port.
fn listener_conflicts(all: &[Instance]) -> Vec<Conflict> {
    let mut out = Vec::new();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            for la in &a.listeners {
                for lb in b.listeners.iter().filter(|lb| la.collides_with(lb)) {
                    out.push(Conflict::Listener {
                        instances: [a.name.clone(), b.name.clone()],
                        addresses: [la.to_string(), lb.to_string()],
                    });
                }
            }
        }
    }
    out
}

/// Groups of instances that share a myhostname (compared without case).
fn myhostname_conflicts(all: &[Instance], names: &[String]) -> Vec<Conflict> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (instance, myhostname) in all.iter().zip(names) {
        by_name
            .entry(myhostname.to_ascii_lowercase())
            .or_default()
            .push(instance.name.clone());
    }
    by_name
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(myhostname, instances)| Conflict::Myhostname {
            myhostname,
            instances,
        })
        .collect()
}

/// The host name a greeting announces: `220 mx.example.org ESMTP ...`.
fn banner_host(banner: &str) -> Option<&str> {
    banner.get(4..)?.split_whitespace().next()
}

/// The name to show for an instance name (`-` is the primary).
fn display(name: &str) -> String {
    if name == "-" {
        "the primary instance".into()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_host() {
        assert_eq!(
            banner_host("220 in.example.org ESMTP Postfix"),
            Some("in.example.org")
        );
        assert_eq!(banner_host("220-mx.example.org"), Some("mx.example.org"));
        assert_eq!(banner_host("220"), None);
    }
}
