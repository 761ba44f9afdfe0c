//! `launchd-emulator --state-dir DIR --daemons-dir DIR`: the emulated launchd, in the
//! foreground. It listens on `DIR/launchd.sock` in the state directory, is the parent of
//! every job, and on SIGTERM stops them all and exits.

use launchd_emulator::server;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
