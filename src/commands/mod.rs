//! One module per command: each takes the parsed arguments and the host, and returns
//! the exit status.

mod create;
mod destroy;
mod init;
mod lifecycle;
mod list;
mod status;

use crate::cli::{Cli, Command};
use crate::error::Result;
use crate::host::Host;

pub fn dispatch(cli: &Cli) -> Result<i32> {
    let host = Host::open(cli.global.dry_run, cli.global.manager)?;
    match &cli.command {
        Command::Init(args) => init::run(&host, args),
        Command::Create(args) => create::run(&host, args),
        Command::Start(t) => lifecycle::start(&host, &t.selection()),
        Command::Stop(t) => lifecycle::stop(&host, &t.selection()),
        Command::Restart(t) => lifecycle::restart(&host, &t.selection()),
        Command::Reload(t) => lifecycle::reload(&host, &t.selection()),
        Command::Enable(a) => lifecycle::enable(&host, &a.name),
        Command::Disable(a) => lifecycle::disable(&host, &a.name),
        Command::Destroy(args) => destroy::run(&host, args),
        Command::List(args) => list::run(&host, args),
        Command::Status(args) => return status::run(&host, args, cli.global.verbose > 0),
    }?;
    Ok(0)
}
