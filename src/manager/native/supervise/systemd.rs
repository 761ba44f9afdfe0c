//! What the supervisor does when systemd runs it (contrib/instancectl.service):
//! tells systemd when it is ready (`Type=notify`: one datagram on NOTIFY_SOCKET), tells
//! a restart of its unit from a stop, and says loudly when Debian's postfix.service,
//! which starts the same masters with `postmulti -p start`, is enabled beside it.
//!
//! A restart must not be a mail outage, so the unit has `KillMode=process` and, on
//! SIGTERM, the supervisor asks systemd which job is pending for its unit: during
//! `systemctl restart` (or try-restart, reload-or-restart) that job is a `restart` job
//! until the stop half is done, and the supervisor then exits leaving every master
//! running for the next supervisor to adopt. Any other SIGTERM (`systemctl stop`,
//! shutdown, or when systemd cannot be asked) stops the instances in reverse start
//! order, as outside systemd.

use std::os::unix::net::UnixDatagram;

use crate::host::Host;
use crate::runner::Command;

/// Whether systemd started this very process as a service: it sets INVOCATION_ID
/// for every service, and SYSTEMD_EXEC_PID (systemd 248+) to the pid it executed. A
/// process that merely inherited them (run from a shell of a service) does not count.
fn is_service() -> bool {
    std::env::var_os("INVOCATION_ID").is_some()
        && std::env::var("SYSTEMD_EXEC_PID").is_ok_and(|pid| pid == std::process::id().to_string())
}

/// Sends `state` (e.g. `READY=1\nSTATUS=...`) to the service manager, when it asked
/// for notifications. Errors are logged: a lost READY=1 shows as a start timeout.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|datagram| {
        let bytes = socket.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            // An abstract socket: '@' stands for the leading NUL byte.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                datagram.send_to_addr(state.as_bytes(), &addr)
            }
            None => datagram.send_to(state.as_bytes(), &socket),
        }
    });
    if let Err(e) = sent {
        tracing::warn!(socket = ?socket, error = %e, "cannot notify the service manager");
    }
}

/// The type of the job systemd has pending for `unit`, from `systemctl list-jobs
/// --no-legend` (columns JOB UNIT TYPE STATE).
fn job_type_of(list_jobs: &str, unit: &str) -> Option<String> {
    list_jobs.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, name, kind, _] if *name == unit => Some(kind.to_string()),
            _ => None,
        }
    })
}

/// Whether systemd is restarting this service right now (see the module doc).
pub fn restarting(host: &Host) -> bool {
    if !is_service() {
        return false;
    }
    // This process's unit, from its cgroup (`0::/system.slice/instancectl.service`).
    let Some(unit) = crate::manager::systemd::unit_of_pid(std::process::id() as i32) else {
        return false;
    };
    let list = Command::new("systemctl").args(["list-jobs", "--no-legend", "--no-pager"]);
    match host.runner.probe(&list) {
        Ok(outcome) if outcome.success() => {
            job_type_of(&outcome.stdout, &unit).is_some_and(|kind| kind == "restart")
        }
        Ok(outcome) => {
            tracing::warn!(%outcome, "cannot ask systemd whether this is a restart");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot ask systemd whether this is a restart");
            false
        }
    }
}

/// What is wrong when Debian's postfix.service is enabled or active beside this
/// supervisor: that unit's generator starts every instance postmulti lists
/// (`postfix@NAME`) at boot with `postmulti -p start`, daemonized, where no supervisor
/// can watch it; this one adopts those masters, but two managers then act on them.
pub fn debian_postfix_conflict(host: &Host) -> Option<String> {
    if !is_service() {
        return None;
    }
    let ask = |verb: &str| {
        host.runner
            .probe(&Command::new("systemctl").args([verb, "postfix.service"]))
            .ok()
            .map(|o| o.stdout.trim().to_string())
    };
    let enabled = ask("is-enabled");
    let active = ask("is-active");
    let enabled = enabled.as_deref() == Some("enabled");
    let active = active.as_deref() == Some("active");
    (enabled || active).then(|| {
        format!(
            "Debian's postfix.service is {}: its postfix@ units also start every Postfix \
             instance, with `postmulti -p start`, at boot and whenever it starts; this \
             supervisor adopts the masters they start, but systemd stops them with that \
             unit and nothing restarts them until this supervisor notices. The supervisor \
             runs the primary instance too. Fix: `systemctl disable --now postfix.service`",
            match (enabled, active) {
                (true, true) => "enabled and active",
                (true, false) => "enabled",
                _ => "active",
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of `systemctl list-jobs` as sosreport/sos#1427 recorded them (the
    /// header and "4 jobs listed." are what --no-legend leaves out).
    #[test]
    fn the_job_type_comes_from_list_jobs() {
        let recorded = "112 multi-user.target                    start waiting\n\
                        226 systemd-update-utmp-runlevel.service start waiting\n\
                        258 foobar.service                       start running\n\
                        236 systemd-readahead-done.timer         start waiting\n";
        assert_eq!(
            job_type_of(recorded, "foobar.service").as_deref(),
            Some("start")
        );
        assert_eq!(job_type_of(recorded, "instancectl.service"), None);
        assert_eq!(job_type_of("", "instancectl.service"), None);
    }
}
