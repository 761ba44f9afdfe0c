//! Debian's own Postfix units, which instancectl has to live with on a Debian host:
//!
//! - `postfix.service` does nothing itself (`ExecStart=/bin/true`); instances hang off it;
//! - `postfix@.service` runs one instance with `postmulti -i %i -p start` (a daemonized
//!   master, `Type=forking`, `GuessMainPID=no`, no `Restart=`);
//! - `postfix-instance-generator`, at every boot and every `systemctl daemon-reload`,
//!   links `postfix@-.service` and one `postfix@NAME.service` per directory in
//!   `multi_instance_directories` into `postfix.service.wants/` under /run.
//!
//! Left alone, the generator's link makes systemd start every instance through
//! Debian's unit too: two managers for one master. instancectl masks
//! `postfix@NAME.service` for every instance it runs (a link to /dev/null in
//! /etc/systemd/system, which beats the generator's link in /run), so at boot, after a
//! daemon-reload and on `systemctl start postfix` only instancectl's unit runs it. The
//! primary stays with Debian's `postfix@-.service`.

use std::path::Path;

use super::unit::UNIT_DIR;

/// Where Debian's package puts its units and its generator (/lib is /usr/lib on a
/// merged-/usr system; both are looked at).
const UNIT_DIRS: [&str; 2] = ["/lib/systemd/system", "/usr/lib/systemd/system"];
const GENERATOR_DIRS: [&str; 2] = [
    "/lib/systemd/system-generators",
    "/usr/lib/systemd/system-generators",
];
pub const GENERATOR: &str = "postfix-instance-generator";
const TEMPLATE: &str = "postfix@.service";
const POSTFIX_SERVICE: &str = "postfix.service";

/// What of Debian's Postfix units this host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DebianUnits {
    pub postfix_service: bool,
    pub template: bool,
    pub generator: bool,
}

impl DebianUnits {
    pub fn detect() -> DebianUnits {
        let unit = |name: &str| UNIT_DIRS.iter().any(|d| Path::new(d).join(name).is_file());
        DebianUnits {
            postfix_service: unit(POSTFIX_SERVICE),
            template: unit(TEMPLATE),
            generator: GENERATOR_DIRS
                .iter()
                .any(|d| Path::new(d).join(GENERATOR).is_file()),
        }
    }

    /// The unit that runs the primary instance: Debian's `postfix@-.service`, or
    /// the distribution's `postfix.service` elsewhere.
    pub fn primary_unit(&self) -> String {
        if self.template {
            instance_unit("-")
        } else {
            POSTFIX_SERVICE.into()
        }
    }

    /// In words, for status notes and errors.
    pub fn describe(&self) -> String {
        let mut have = Vec::new();
        if self.postfix_service {
            have.push(POSTFIX_SERVICE);
        }
        if self.template {
            have.push(TEMPLATE);
        }
        if self.generator {
            have.push(GENERATOR);
        }
        if have.is_empty() {
            "no Debian Postfix units".into()
        } else {
            format!("Debian's {}", have.join(", "))
        }
    }
}

/// Debian's unit for an instance (`-`: the primary).
pub fn instance_unit(name: &str) -> String {
    format!("postfix@{name}.service")
}

/// Where the mask of Debian's unit for an instance lives.
fn mask_path(name: &str) -> std::path::PathBuf {
    Path::new(UNIT_DIR).join(instance_unit(name))
}

/// Whether the mask instancectl sets is in place on disk (a link to /dev/null).
pub fn is_masked_on_disk(name: &str) -> bool {
    std::fs::read_link(mask_path(name)).is_ok_and(|target| target == Path::new("/dev/null"))
}
