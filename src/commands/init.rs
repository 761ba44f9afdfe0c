//! `instancectl init`: multi-instance management on, optionally with the primary made
//! a send-only null client.

use serde::Serialize;

use crate::cli::InitArgs;
use crate::error::Result;
use crate::host::Host;
use crate::manager::ServiceManager;
use crate::output::{self, Schema};
use crate::postfix::main_cf::MainCf;

/// What init changed (with --dry-run: would change), for `--json`.
#[derive(Debug, Default, Serialize)]
struct Outcome {
    dry_run: bool,
    /// postmulti -e init ran (false: multi-instance management was already on).
    multi_instance_turned_on: bool,
    /// null when --null-client was not given; false when the primary already was one.
    null_client_set: Option<bool>,
    primary_restarted: bool,
}

/// The primary's settings as a null client: it submits and sends, but listens on no
/// network address, leaving port 25 to the secondary instances.
const NULL_CLIENT_PRIMARY: [(&str, &str); 2] = [
    ("master_service_disable", "inet"),
    ("inet_interfaces", "loopback-only"),
];

pub fn run(host: &Host, manager: &dyn ServiceManager, args: &InitArgs) -> Result<()> {
    let mut outcome = Outcome {
        dry_run: host.runner.dry_run(),
        ..Outcome::default()
    };
    let say = |text: &str| output::line(text);
    let dir = &host.postfix.config_directory;
    let primary = MainCf::read(dir).unwrap_or_default();
    let wrapper_set = !primary
        .get("multi_instance_wrapper")
        .unwrap_or("")
        .is_empty();
    if wrapper_set && primary.get("multi_instance_enable") == Some("yes") {
        say("multi-instance management is already on; nothing changed");
    } else {
        host.postfix.postmulti().init()?;
        outcome.multi_instance_turned_on = true;
        say(&format!(
            "multi-instance management is on ({}/main.cf)",
            dir.display()
        ));
    }
    if args.null_client {
        let missing: Vec<(String, String)> = NULL_CLIENT_PRIMARY
            .iter()
            .filter(|(k, v)| primary.get(k) != Some(v))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        outcome.null_client_set = Some(!missing.is_empty());
        if missing.is_empty() {
            say("the primary instance is already a send-only null client; nothing changed");
        } else {
            host.postfix.set(dir, &missing)?;
            say("the primary instance is now a send-only null client (no network listener)");
            let primary = host.instance("-")?;
            if primary.running_master().is_some() {
                // inet_interfaces only takes effect on a full restart.
                manager.release_and_restart(host, &primary)?;
                outcome.primary_restarted = true;
                say("restarted the primary instance so that it lets go of its listeners");
            }
        }
    }
    if args.json {
        output::print_json(Schema::INIT, &outcome)?;
    }
    Ok(())
}
