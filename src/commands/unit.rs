//! `instancectl unit NAME` prints the systemd unit the systemd manager writes for an
//! instance on this host (`units/` holds the walk-through's, as Debian gets them).

use crate::cli::UnitArgs;
use crate::error::InputError;
use crate::error::Result;
use crate::host::Host;
use crate::manager::Systemd;
use crate::validate;

pub fn run(host: &Host, args: &UnitArgs) -> Result<()> {
    let systemd = Systemd::new();
    if args.name == "-" {
        return Err(InputError::PrimaryHasNoUnit {
            unit: systemd.debian.primary_unit().to_string(),
        }
        .into());
    }
    validate::instance_name(&args.name)?;
    let all = host.instances()?;
    let (config_directory, group) = match all.iter().find(|i| i.name == args.name) {
        Some(instance) => (instance.config_directory.clone(), instance.group.clone()),
        None => {
            eprintln!(
                "{} does not exist yet; this is the unit `instancectl create {}` would write \
                 for it (without a group)",
                args.name, args.name
            );
            let [config_directory, ..] = host.postfix.new_instance_directories(&args.name);
            (config_directory, None)
        }
    };
    let unit = systemd.unit_for(
        host,
        &args.name,
        &config_directory,
        group.as_deref(),
        &all,
        None,
    );
    crate::output::text(unit.to_text());
    Ok(())
}
