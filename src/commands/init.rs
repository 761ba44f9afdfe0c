//! `instancectl init`: multi-instance management on, optionally with the primary made
//! a send-only null client.

use crate::cli::InitArgs;
use crate::error::Result;
use crate::host::Host;
use crate::manager::ServiceManager;
use crate::postfix::main_cf::MainCf;

/// The primary's settings as a null client: it submits and sends, but listens on no
/// network address, leaving port 25 to the secondary instances.
const NULL_CLIENT_PRIMARY: [(&str, &str); 2] = [
    ("master_service_disable", "inet"),
    ("inet_interfaces", "loopback-only"),
];

pub fn run(host: &Host, manager: &dyn ServiceManager, args: &InitArgs) -> Result<()> {
    host.require_root()?;
    let dir = &host.postfix.config_directory;
    let primary = MainCf::read(dir).unwrap_or_default();
    let wrapper_set = !primary
        .get("multi_instance_wrapper")
        .unwrap_or("")
        .is_empty();
    if wrapper_set && primary.get("multi_instance_enable") == Some("yes") {
        println!("multi-instance management is already on; nothing changed");
    } else {
        host.postfix.postmulti().init()?;
        println!(
            "multi-instance management is on ({}/main.cf)",
            dir.display()
        );
    }
    if args.null_client {
        let missing: Vec<(String, String)> = NULL_CLIENT_PRIMARY
            .iter()
            .filter(|(k, v)| primary.get(k) != Some(v))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if missing.is_empty() {
            println!("the primary instance is already a send-only null client; nothing changed");
        } else {
            host.postfix.set(dir, &missing)?;
            println!("the primary instance is now a send-only null client (no network listener)");
            let primary = host.instance("-")?;
            if primary.running_master().is_some() {
                // inet_interfaces only takes effect on a full restart.
                manager.release_and_restart(host, &primary)?;
                println!("restarted the primary instance so that it lets go of its listeners");
            }
        }
    }
    Ok(())
}
