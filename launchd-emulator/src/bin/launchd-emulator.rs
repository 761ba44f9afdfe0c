//! `launchd-emulator --state-dir DIR --daemons-dir DIR`: the emulated launchd, in the
//! foreground. It listens on `DIR/launchd.sock` in the state directory, is the parent of
//! every job, and on SIGTERM stops them all and exits. Run as `launchd-emulator
//! --xpcproxy-exec ...` it is instead the trampoline of a held spawn (`--xpcproxy-hold`).

use launchd_emulator::{procs, server};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // A held spawn's trampoline (see procs::xpcproxy_exec), not a daemon.
    if args.first().map(String::as_str) == Some(procs::XPCPROXY_ARG) {
        std::process::exit(procs::xpcproxy_exec(&args[1..]));
    }
    let opts = match server::parse_args(&args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("launchd-emulator: {e}\n{}", server::USAGE);
            std::process::exit(64);
        }
    };
    if let Err(e) = server::run(opts) {
        eprintln!("launchd-emulator: {e}");
        std::process::exit(1);
    }
}
