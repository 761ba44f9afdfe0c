//! One module per command: each takes the parsed arguments and the host, and returns
//! the exit status.

mod apply;
pub mod config;
mod confirm;
mod create;
mod destroy;
pub mod exec;
mod init;
mod lifecycle;
mod list;
pub mod logs;
mod manual;
mod plist;
pub mod queue;
mod relay;
mod resume;
mod status;
mod test_mail;
mod unit;

use crate::cli::{Cli, Command};
use crate::error::Result;
use crate::host::Host;
use crate::manager::{ManagerKind, SupervisorPace};
use resume::resume_interrupted;

pub fn dispatch(cli: &Cli) -> Result<i32> {
    // These work without Postfix on the host, so they come before Host::open.
    match &cli.command {
        Command::Plist(args) => return plist::run(&cli.global, args),
        Command::Completions(args) => return manual::completions(args.shell).map(|()| 0),
        Command::Man => return manual::man().map(|()| 0),
        _ => {}
    }
    let host = Host::open(cli.global.dry_run)?;
    // `supervise` with no manager named is instancectl's own supervisor, also where
    // systemd would be the default (contrib/instancectl.service runs it so); on macOS
    // its plist names launchd.
    let kind = match (&cli.command, cli.global.manager) {
        (_, Some(named)) => named,
        (Command::Supervise(_), None) if !cfg!(target_os = "macos") => ManagerKind::Native,
        (_, None) => ManagerKind::host_default(host.state.dir()),
    };
    let manager = kind.build_with(&cli.global.launchd.config());
    let manager = manager.as_ref();
    // One changing command at a time: postmulti edits the primary main.cf in place.
    // Root is required here, once, before anything is read or asked (a password).
    let _lock = if changes_host(&cli.command) {
        host.require_root()?;
        let lock = host.lock()?;
        resume_interrupted(&host, manager);
        lock
    } else {
        None
    };
    match &cli.command {
        Command::Init(args) => init::run(&host, manager, args),
        Command::Create(args) => create::run(&host, manager, args),
        Command::Start(t) => lifecycle::start(&host, manager, &t.instances.selection()?),
        Command::Stop(t) => lifecycle::stop(&host, manager, &t.instances.selection()?),
        Command::Restart(t) => lifecycle::restart(&host, manager, &t.instances.selection()?),
        Command::Reload(t) => lifecycle::reload(&host, manager, &t.instances.selection()?),
        Command::Enable(t) => lifecycle::enable(&host, manager, &t.instances.selection()?),
        Command::Disable(t) => lifecycle::disable(&host, manager, &t.instances.selection()?),
        Command::Destroy(args) => destroy::run(&host, manager, args),
        Command::List(args) => list::run(&host, manager, args),
        Command::Relay(cmd) => relay::run(&host, manager, cmd),
        Command::TestMail(args) => return test_mail::run(&host, args),
        Command::Apply(args) => apply::run(&host, manager, args),
        Command::Reconcile(args) => crate::reconcile::run(
            &host,
            manager,
            crate::reconcile::Options { grace: args.grace },
        ),
        Command::Supervise(args) => {
            let pace = SupervisorPace {
                interval: args.interval,
                hung_after: args.hung_after,
                smtp_probe_every: args.smtp_probe_every,
            };
            manager.run_supervisor(&host, pace).unwrap_or_else(|| {
                crate::reconcile::watch(
                    &host,
                    manager,
                    crate::reconcile::Options {
                        grace: args.interval * args.hung_after,
                    },
                    args.interval,
                    &|h| resume_interrupted(h, manager),
                )
            })
        }
        Command::Unit(args) => unit::run(&host, args),
        Command::Plist(_) | Command::Completions(_) | Command::Man => {
            unreachable!("handled above")
        }
        Command::Status(args) => return status::run(&host, manager, args, cli.global.verbose > 0),
        Command::Queue(args) => return queue::run(&host, args),
        Command::Config(args) => config::run(&host, manager, args),
        Command::Exec(args) => return exec::run(&host, args),
        Command::Logs(args) => logs::run(&host, args),
    }?;
    Ok(0)
}

/// Starts the run's output: under `--json` (or `-o json`) the JSON document the
/// command answers with (see [`crate::output`]).
pub fn begin_output(cli: &Cli) {
    let command = &cli.command;
    use crate::cli::StatusFormat;
    use crate::cli::relay::RelayCommand;
    use crate::output::{Format, Schema};
    let lifecycle = |t: &crate::cli::LifecycleArgs, action: &str| {
        t.json
            .then(|| (Schema::LIFECYCLE, Some(action.to_string())))
    };
    let document = match command {
        Command::Init(a) => a.json.then_some((Schema::INIT, None)),
        Command::Create(a) => a.json.then_some((Schema::CREATE, None)),
        Command::Start(t) => lifecycle(t, "start"),
        Command::Stop(t) => lifecycle(t, "stop"),
        Command::Restart(t) => lifecycle(t, "restart"),
        Command::Reload(t) => lifecycle(t, "reload"),
        Command::Enable(t) => lifecycle(t, "enable"),
        Command::Disable(t) => lifecycle(t, "disable"),
        Command::Destroy(a) => a.json.then_some((Schema::DESTROY, None)),
        Command::List(a) => (a.output.format() == Format::Json).then_some((Schema::LIST, None)),
        Command::Relay(RelayCommand::Show(a)) => a.json.then_some((Schema::RELAY, None)),
        Command::Relay(RelayCommand::Set(a)) => a.json.then_some((Schema::RELAY_CHANGE, None)),
        Command::TestMail(a) => a.json.then_some((Schema::TEST_MAIL, None)),
        Command::Reconcile(a) => a.json.then_some((Schema::RECONCILE, None)),
        Command::Apply(a) => a.json.then_some((Schema::APPLY, None)),
        Command::Plist(a) => a.json.then_some((Schema::PLIST_CHECK, None)),
        Command::Status(a) => {
            (a.json || a.output == Some(StatusFormat::Json)).then_some((Schema::STATUS, None))
        }
        Command::Queue(a) => (a.output.format() == Format::Json).then(|| (queue::schema(a), None)),
        Command::Config(a) if a.json && a.only_reads() => Some((Schema::CONFIG, None)),
        Command::Config(a) => a.json.then_some((Schema::CONFIG_CHANGE, None)),
        Command::Exec(a) => a.json.then_some((Schema::EXEC, None)),
        _ => None,
    };
    if let Some((schema, action)) = document {
        crate::output::begin_json(schema);
        // With --dry-run nothing was done: the entries say what was decided.
        crate::output::field(schema, "dry_run", cli.global.dry_run);
        if let Some(action) = action {
            crate::output::field(schema, "action", action);
        }
    }
}

/// Commands that change the host and so hold the host lock for their whole run.
/// `supervise` runs for ever and takes the lock only around each change it makes.
/// `relay show` only reads; `test-mail` changes no configuration and may follow a
/// message for a minute, so it must not keep other changes waiting. `queue` touches
/// mail, not configuration (postsuper locks the queue itself); `exec` and `logs` may
/// run for as long as the user likes; `config show` only reads.
fn changes_host(command: &Command) -> bool {
    !matches!(
        command,
        Command::List(_)
            | Command::Status(_)
            | Command::Supervise(_)
            | Command::Plist(_)
            | Command::Unit(_)
            | Command::Relay(crate::cli::relay::RelayCommand::Show(_))
            | Command::TestMail(_)
            | Command::Queue(_)
            | Command::Exec(_)
            | Command::Logs(_)
    ) && !matches!(command, Command::Config(c) if c.only_reads())
}
