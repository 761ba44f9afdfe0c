//! `instancectl create`: postmulti create in the right place of the start order, the
//! role's settings, the listeners, `postfix check`, enable, start and wait until SMTP
//! answers. Everything is validated before the host is touched, and a failure in any
//! step undoes the whole run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::CreateArgs;
use crate::error::InputError;
use crate::error::PostfixError;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::instance::{self, Instance};
use crate::manager::ServiceManager;
use crate::postfix::main_cf::MainCf;
use crate::postfix::master_cf::{self, BindAddr, Listener};
use crate::postfix::postmulti::{Listed, Placement};
use crate::relay::{self, RelayPlan};
use crate::roles::Role;
use crate::state::{InstanceRecord, Intent, IntentAction};
use crate::transaction::Transaction;
use crate::validate::{self, ListenSpec};

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A create request that passed every check.
struct Plan {
    name: String,
    group: Option<String>,
    role: Role,
    listen: Vec<ListenSpec>,
    settings: Vec<(String, String)>,
    overrides: Vec<(String, String)>,
    placement: Placement,
    config_directory: PathBuf,
    new_directories: Vec<PathBuf>,
    relay: Option<RelayPlan>,
}

pub fn run(host: &Host, manager: &dyn ServiceManager, args: &CreateArgs) -> Result<()> {
    // A failed run's document still names the instance.
    crate::output::field(crate::output::Schema::CREATE, "name", &args.name);
    let plan = plan(host, manager, args)?;
    apply(host, manager, &plan, !args.no_start, args.json)
}

/// What `create --json` prints.
#[derive(serde::Serialize)]
struct Created<'a> {
    name: &'a str,
    group: Option<&'a str>,
    role: Role,
    config_directory: &'a Path,
    listen: Vec<String>,
    started: bool,
    master_pid: Option<i32>,
    /// The relay host and whether credentials are present (never the secret).
    relay: Option<crate::relay::RelaySummary>,
}

fn plan(host: &Host, manager: &dyn ServiceManager, args: &CreateArgs) -> Result<Plan> {
    validate::instance_name(&args.name)?;
    if let Some(group) = &args.group {
        validate::group_name(group)?;
    }
    let listen = validate::listen_list(&args.listen, args.role)?;
    refuse_addresses_not_here(&listen)?;
    let defaults = host.postfix.defaults()?;
    let overrides = args
        .set
        .iter()
        .map(|s| validate::setting(s, &defaults))
        .collect::<Result<Vec<_>>>()?;

    let primary_dir = &host.postfix.config_directory;
    let primary =
        MainCf::read(primary_dir).map_err(|e| Error::io(primary_dir.join("main.cf"), e))?;
    if primary.get("multi_instance_enable") != Some("yes") {
        return Err(InputError::MultiInstanceOff.into());
    }
    let instances = host.instances()?;
    let new_directories = host.postfix.new_instance_directories(&args.name).to_vec();
    if instances.iter().any(|i| i.name == args.name) {
        return Err(InputError::InstanceExists {
            name: args.name.clone(),
        }
        .into());
    }
    if let Some(dir) = new_directories.iter().find(|d| d.exists()) {
        return Err(InputError::DirectoryTaken { dir: dir.clone() }.into());
    }

    let relay = relay_plan(host, args, &new_directories[0])?;
    // The relay's settings go in before --set, so that --set still wins.
    let mut before_overrides: Vec<(String, String)> =
        relay.as_ref().map(RelayPlan::settings).unwrap_or_default();
    before_overrides.extend(overrides.clone());
    let settings = desired_settings(host, &args.name, args.role, &listen, before_overrides)?;

    refuse_disabled_listeners(&args.listen, &listen, &settings)?;
    let planned = planned_listeners(&listen, &settings);
    check_collisions(&instances, &args.name, &planned)?;
    manager.preflight_create(host, &args.name, &new_directories[0])?;

    let placement = match (args.role, &args.group) {
        // In a group, output (sink) instances start before input (source) instances.
        (Role::Output, Some(group)) => instances
            .iter()
            .find(|i| i.group.as_ref() == Some(group) && i.role() == Some(Role::Input))
            .map(|i| Placement::Before(i.name.clone()))
            .unwrap_or(Placement::Append),
        _ => Placement::Append,
    };

    Ok(Plan {
        name: args.name.clone(),
        group: args.group.clone(),
        role: args.role,
        listen,
        settings,
        overrides,
        placement,
        config_directory: new_directories[0].clone(),
        new_directories,
        relay,
    })
}

/// The relay settings of a `--role relay` instance, checked like everything else
/// before anything changes (the password is read here).
fn relay_plan(host: &Host, args: &CreateArgs, config_dir: &Path) -> Result<Option<RelayPlan>> {
    if args.role != Role::Relay {
        if args.relay.any() {
            return Err(InputError::RelayOptionsNeedRelayRole {
                name: args.name.clone(),
            }
            .into());
        }
        return Ok(None);
    }
    let primary = host.postfix.expanded(
        &host.postfix.config_directory,
        &["myorigin", "default_database_type", "maillog_file"],
    )?;
    let get = |k: &str| primary.get(k).cloned().unwrap_or_default();
    let myorigin = get("myorigin");
    let origin_domain = relay::resolve_myorigin(&myorigin);
    let db_type = get("default_database_type");
    let target = relay::Target {
        label: &args.name,
        config_dir,
        db_type: &db_type,
        myorigin: &origin_domain,
        current: relay::Current::default(),
    };
    let mut plan = relay::plan(&args.relay, false, target, true)?;
    // Mail leaves with the host's own domain, as the primary's does, not the
    // instance's derived host name.
    plan.extra.push(("myorigin".into(), myorigin));
    if let Some(log) = maillog_file(host, &get("maillog_file"), &args.name) {
        plan.extra.push(("maillog_file".into(), log));
    }
    Ok(Some(plan))
}

/// A log file of the instance's own (Postfix 3.4 and later, with the postlog service
/// in master.cf), so that `test-mail` can follow a message on hosts without a syslog
/// daemon: beside the primary's maillog_file, else in /var/log.
fn maillog_file(host: &Host, primary_log: &str, name: &str) -> Option<String> {
    if host.postfix.version < crate::postfix::MAILLOG_FILE_SINCE {
        return None;
    }
    let entries = master_cf::read(&host.postfix.config_directory).unwrap_or_default();
    if !entries.iter().any(|e| e.command == "postlogd") {
        return None;
    }
    let dir = Path::new(primary_log)
        .parent()
        .filter(|_| primary_log.starts_with('/') && !primary_log.starts_with("/dev/"))
        .unwrap_or(Path::new("/var/log"));
    Some(dir.join(format!("{name}.log")).display().to_string())
}

/// The main.cf settings an instance gets: the role's preset, the listen addresses,
/// a distinct myhostname, then the user's overrides, last one winning.
pub fn desired_settings(
    host: &Host,
    name: &str,
    role: Role,
    listen: &[ListenSpec],
    overrides: Vec<(String, String)>,
) -> Result<Vec<(String, String)>> {
    let mut settings: Vec<(String, String)> = role
        .preset()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !listen.is_empty() {
        let addrs: Vec<String> = listen.iter().map(|l| l.ip.to_string()).collect();
        settings.push(("inet_interfaces".into(), addrs.join(", ")));
    }
    let ipv6 = listen.iter().find(|l| l.ip.is_ipv6());
    if ipv6.is_some() {
        // Postfix binds an IPv6 address only when inet_protocols includes IPv6, and
        // the main.cf that postmulti gives a new instance may say ipv4 (Debian's does).
        settings.push(("inet_protocols".into(), "all".into()));
    }
    if !overrides.iter().any(|(k, _)| k == "myhostname") {
        settings.push(("myhostname".into(), derived_hostname(host, name)?));
    }
    settings.extend(overrides);
    let settings = last_wins(settings);
    if let Some(v6) = ipv6
        && let Some((_, protocols)) = settings.iter().find(|(k, _)| k == "inet_protocols")
        && !protocols.contains("all")
        && !protocols.contains("ipv6")
    {
        return Err(InputError::Ipv6LeftOut {
            listen: (*v6).into(),
            protocols: protocols.clone(),
        }
        .into());
    }
    Ok(settings)
}

/// A distinct myhostname per instance, so instances can talk SMTP to each other
/// without "mail loops back to myself".
fn derived_hostname(host: &Host, name: &str) -> Result<String> {
    let primary = host
        .postfix
        .expanded(&host.postfix.config_directory, &["myhostname"])?;
    let base = primary.get("myhostname").cloned().unwrap_or_default();
    let label = name.trim_start_matches("postfix-");
    Ok(if base.is_empty() {
        format!("{label}.localdomain")
    } else {
        format!("{label}.{base}")
    })
}

fn last_wins(settings: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in settings {
        out.retain(|(existing, _)| *existing != k);
        out.push((k, v));
    }
    out
}

/// `--listen` asks for SMTP listeners; a `--set master_service_disable` that turns
/// the inet services (or the smtp one) off would leave none of them.
fn refuse_disabled_listeners(
    asked: &[String],
    listen: &[ListenSpec],
    settings: &[(String, String)],
) -> Result<()> {
    let Some((_, disabled)) = settings.iter().find(|(k, _)| k == "master_service_disable") else {
        return Ok(());
    };
    let services: Vec<String> = listen.iter().map(|l| l.service_name()).collect();
    let off = disabled.split([',', ' ', '\t']).find(|word| {
        *word == "inet"
            || *word == "smtp/inet"
            || services.iter().any(|s| *word == format!("{s}/inet"))
    });
    match off {
        Some(word) if !asked.is_empty() => Err(InputError::ListenersDisabled {
            services,
            disabled: disabled.clone(),
            word: word.into(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// The listeners the new instance will have.
fn planned_listeners(listen: &[ListenSpec], settings: &[(String, String)]) -> Vec<Listener> {
    if listen.is_empty() {
        let get = |k: &str| {
            settings
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let interfaces = match get("inet_interfaces") {
            i if i.is_empty() => "all".to_string(),
            i => i,
        };
        master_cf::listeners(
            &master_cf::parse("smtp inet n - y - - smtpd\n"),
            &master_cf::ListenSettings {
                inet_interfaces: interfaces,
                inet_protocols: "all".into(),
                master_service_disable: get("master_service_disable"),
            },
        )
    } else {
        listen
            .iter()
            .map(|l| Listener {
                addr: BindAddr::Ip(l.ip),
                port: l.port,
                service: "smtp/inet".into(),
                command: "smtpd".into(),
            })
            .collect()
    }
}

/// Each listen address must be one this host can bind: else the new master fails to
/// bind it, and the create is only undone after `postfix check` or the start. The
/// kernel answers the question as it would answer the master (a bind to a free port):
/// an address the host does not have, and a link-local IPv6 address, which cannot be
/// bound without naming an interface (a scope --listen does not take).
pub(super) fn refuse_addresses_not_here(listen: &[ListenSpec]) -> Result<()> {
    for spec in listen {
        let Err(e) = std::net::TcpListener::bind((spec.ip, 0)) else {
            continue;
        };
        let error = if e.kind() == std::io::ErrorKind::AddrNotAvailable {
            InputError::ListenNotHere {
                listen: (*spec).into(),
                ip: spec.ip,
            }
        } else {
            let link_local =
                matches!(spec.ip, std::net::IpAddr::V6(v6) if v6.is_unicast_link_local());
            InputError::ListenUnbindable {
                listen: (*spec).into(),
                ip: spec.ip,
                error: e.to_string(),
                hint: if link_local {
                    "a link-local address (fe80::/10) needs its interface named, which \
                     --listen does not take: listen on a global or unique-local address"
                } else {
                    "listen on an address this host can bind"
                },
            }
        };
        return Err(error.into());
    }
    Ok(())
}

/// The new instance's listeners, checked against every other instance.
fn check_collisions(instances: &[Instance], name: &str, planned: &[Listener]) -> Result<()> {
    for other in instances {
        for theirs in &other.listeners {
            if let Some(mine) = planned.iter().find(|l| l.collides_with(theirs)) {
                return Err(InputError::ListenerTaken {
                    name: name.into(),
                    mine: mine.to_string(),
                    other: other.display_name().to_string(),
                    other_is_primary: other.is_primary(),
                    theirs: theirs.to_string(),
                    service: theirs.service.clone(),
                }
                .into());
            }
        }
    }
    Ok(())
}

fn apply(
    host: &Host,
    manager: &dyn ServiceManager,
    plan: &Plan,
    start: bool,
    json: bool,
) -> Result<()> {
    let name = plan.name.as_str();
    // Recorded before the first change: a run killed halfway is undone by the next.
    let intent = Intent::new(IntentAction::Create, name, plan.new_directories.clone());
    host.state.begin(&host.runner, &intent)?;
    let created = build(host, manager, plan, start);
    // Done, or undone; a failed undo keeps the record, for the next run to try again.
    if !matches!(created, Err(Error::RollbackFailed { .. })) {
        host.state.end(&host.runner, name)?;
    }
    let created = created?;
    report(host, plan, name, created, json)
}

/// The create steps, undone as a whole when one fails: the new instance and its master
/// pid when started.
fn build(
    host: &Host,
    manager: &dyn ServiceManager,
    plan: &Plan,
    start: bool,
) -> Result<Option<(Instance, i32)>> {
    let name = plan.name.as_str();
    let dir = plan.config_directory.clone();
    Transaction::run(host, |tx| {
        tx.label_steps(name);
        // postmulti create edits the primary's main.cf (multi_instance_directories).
        tx.guard_file(&host.postfix.config_directory.join("main.cf"))?;
        let leftovers = plan.new_directories.clone();
        tx.on_undo("remove the instance", move |h| {
            remove_instance(h, name, &leftovers)
        });
        tx.step("postmulti create", |h| {
            h.postfix
                .postmulti()
                .create(name, plan.group.as_deref(), &plan.placement)
        })?;
        if let Some(relay) = &plan.relay {
            tx.step("writing the relay's password and sender maps", |h| {
                relay::write_maps(h, relay)
            })?;
        }
        tx.step("applying the role settings", |h| {
            h.postfix.set(&dir, &plan.settings)
        })?;
        tx.step("configuring the SMTP listeners in master.cf", |h| {
            configure_ports(h, &dir, &plan.listen)
        })?;
        if plan.relay.is_some() {
            tx.step("running the relay's smtp client outside the chroot", |h| {
                relay::unchroot_smtp(h, &dir)
            })?;
        }
        tx.on_undo("remove the instance record", move |h| {
            h.state.remove(&h.runner, name)
        });
        tx.step("recording the role", |h| {
            let record = InstanceRecord {
                role: plan.role,
                listen: plan.listen.iter().map(|l| l.to_string()).collect(),
                settings: plan.overrides.iter().cloned().collect(),
            };
            h.state.save(&h.runner, name, &record)
        })?;
        tx.step("postfix check", |h| h.postfix.require_check(&dir))?;
        tx.step("postmulti enable", |h| h.postfix.postmulti().enable(name))?;
        if host.runner.dry_run() {
            // Show what the service manager would do for the instance as planned.
            let planned = planned_instance(plan);
            tx.step("registering with the service manager", |h| {
                manager.install(h, &planned)
            })?;
            if start {
                tx.step("starting the instance", |h| {
                    manager.release_and_start(h, &planned)
                })?;
            }
            return Ok(None);
        }
        let instance = tx.step("reading the new instance", |h| reload_instance(h, name))?;
        tx.step("registering with the service manager", |h| {
            manager.install(h, &instance)
        })?;
        let uninstall_target = instance.clone();
        tx.on_undo("unregister from the service manager", move |h| {
            manager.hold_down_and_stop(h, &uninstall_target)?;
            manager.forget(h, &uninstall_target)
        });
        if !start {
            return Ok(None);
        }
        tx.step("starting the instance", |h| {
            manager.release_and_start(h, &instance)
        })?;
        let pid = tx.step("waiting for SMTP to answer", |_| {
            crate::probe::wait_until_serving(&instance, START_TIMEOUT)
        })?;
        Ok(Some((instance, pid)))
    })
}

/// Says what was created: a line for people, or the `--json` document.
fn report(
    host: &Host,
    plan: &Plan,
    name: &str,
    created: Option<(Instance, i32)>,
    json: bool,
) -> Result<()> {
    if json && !host.runner.dry_run() {
        let instance = reload_instance(host, name)?;
        crate::output::fields(
            crate::output::Schema::CREATE,
            Created {
                name,
                group: plan.group.as_deref(),
                role: plan.role,
                config_directory: &plan.config_directory,
                listen: instance.listeners.iter().map(|l| l.to_string()).collect(),
                started: created.is_some(),
                master_pid: created.as_ref().map(|(_, pid)| *pid),
                relay: plan.relay.as_ref().map(|_| relay::summary(&instance)),
            },
        );
        return Ok(());
    }
    match created {
        Some((instance, pid)) => {
            let addrs: Vec<String> = instance.listeners.iter().map(|l| l.to_string()).collect();
            let serving = if addrs.is_empty() {
                "no inet listener (master_service_disable turns them off)".to_string()
            } else {
                format!("SMTP answering on {}", addrs.join(", "))
            };
            crate::output::line(format_args!(
                "created {name} ({} role), master pid {pid}, {serving}",
                plan.role
            ));
        }
        None if host.runner.dry_run() => {}
        None => crate::output::line(format_args!(
            "created {name} ({} role), enabled, not started",
            plan.role
        )),
    }
    if let Some(relay) = &plan.relay
        && !host.runner.dry_run()
    {
        crate::output::line(relay.describe());
        crate::output::line(format_args!(
            "try it: instancectl test-mail {name} --to YOU@EXAMPLE.COM"
        ));
    }
    Ok(())
}

/// Undoes a create that was killed halfway: stops what it started, unregisters it,
/// and takes back postmulti's create and the directories, as a failed step would have.
/// `listed`: postmulti lists the instance (its create ran).
pub(crate) fn undo_interrupted(
    host: &Host,
    manager: &dyn ServiceManager,
    intent: &Intent,
    instance: &Instance,
    listed: bool,
) -> Result<()> {
    if listed {
        manager.hold_down_and_stop(host, instance)?;
    }
    manager.forget(host, instance)?;
    remove_instance(host, &intent.name, &intent.directories)?;
    host.state.remove(&host.runner, &intent.name)
}

/// The instance a dry run would have created (nothing on disk describes it yet).
fn planned_instance(plan: &Plan) -> Instance {
    Instance {
        name: plan.name.clone(),
        group: plan.group.clone(),
        enabled: true,
        config_directory: plan.config_directory.clone(),
        queue_directory: Some(plan.new_directories[1].clone()),
        data_directory: Some(plan.new_directories[2].clone()),
        myhostname: None,
        listeners: Vec::new(),
        record: None,
        broken: None,
    }
}

fn reload_instance(host: &Host, name: &str) -> Result<Instance> {
    let listed: Vec<Listed> = host.postfix.postmulti().list()?;
    let entry = listed
        .iter()
        .find(|l| l.name == name)
        .ok_or_else(|| PostfixError::NotListedAfterCreate { name: name.into() })?;
    Ok(instance::load(&host.postfix, &host.state, entry))
}

/// Ports other than 25 are set on the smtp inet service in master.cf, by postconf's
/// own master.cf editing: one `ADDR:PORT` service per listen address.
fn configure_ports(host: &Host, dir: &Path, listen: &[ListenSpec]) -> Result<()> {
    if listen.iter().all(|l| l.port == 25) {
        return Ok(());
    }
    let mut specs = listen.iter();
    if let Some(first) = specs.next() {
        host.postfix.set_master_field(
            dir,
            &format!("smtp/inet/service = {}", first.service_name()),
        )?;
    }
    for spec in specs {
        let service = spec.service_name();
        host.postfix.set_master_entry(
            dir,
            &format!("{service}/inet = {service} inet n - y - - smtpd"),
        )?;
    }
    Ok(())
}

/// Takes back a partly created instance: postmulti's own destroy first, then whatever
/// it left of the directories this run created.
fn remove_instance(host: &Host, name: &str, directories: &[PathBuf]) -> Result<()> {
    let listed = host.postfix.postmulti().list()?;
    if listed.iter().any(|l| l.name == name) {
        let postmulti = host.postfix.postmulti();
        postmulti.disable(name)?;
        postmulti.destroy(name)?;
    }
    for dir in directories.iter().filter(|d| d.exists()) {
        host.runner.remove_tree(dir)?;
    }
    Ok(())
}
