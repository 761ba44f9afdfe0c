//! The native manager: `instancectl supervise` runs the masters as its own children;
//! other commands record what they want (postmulti's enable flag, a stop mark) and
//! ask the running supervisor, over its control socket, to act on it.

pub mod supervise;

use std::path::Path;

use super::{Drift, Repair};
use super::{ManagerKind, ManagerView, ServiceManager, SupervisorPace};
use crate::error::Result;
use crate::host::Host;
use crate::instance::Instance;
use crate::manager::ManagerError;
use supervise::control::{self, ChildReport, Request, Response};

pub struct Native;

fn ask(host: &Host, request: &Request) -> Result<Response> {
    if host.runner.dry_run() {
        crate::output::line(format_args!(
            "would ask the supervisor: {}",
            serde_json::to_string(request).unwrap_or_default()
        ));
        return Ok(Response {
            ok: true,
            ..Response::default()
        });
    }
    let response = control::ask(host.state.dir(), request)?;
    if response.ok {
        Ok(response)
    } else {
        Err(ManagerError::SupervisorRefused {
            message: response.message,
        }
        .into())
    }
}

/// The command that starts the supervisor on this host: its systemd unit when
/// installed (scripts/install.sh puts it there), else the supervisor itself.
fn supervisor_start_command() -> String {
    let unit_installed = [
        "/etc/systemd/system",
        "/lib/systemd/system",
        "/usr/lib/systemd/system",
    ]
    .iter()
    .any(|dir| Path::new(dir).join("instancectl.service").exists());
    if unit_installed && Path::new(super::systemd::BOOTED_MARK).is_dir() {
        "systemctl enable --now instancectl".into()
    } else {
        "setsid instancectl supervise >>/var/log/instancectl-supervise.log 2>&1 &".into()
    }
}

fn report_of<'r>(response: &'r Response, instance: &Instance) -> Option<&'r ChildReport> {
    response.instances.iter().find(|r| r.name == instance.name)
}

/// Why the supervisor could not get an instance running, in Postfix's words.
fn not_running(report: &ChildReport) -> String {
    let mut text = String::new();
    if let Some(problem) = &report.problem {
        text.push_str(&format!(": {problem}"));
    } else if let Some(exit) = &report.last_exit {
        text.push_str(&format!(": its master exited ({exit})"));
    }
    if !report.last_output.is_empty() {
        text.push_str(":\n    ");
        text.push_str(&report.last_output.join("\n    "));
    }
    text
}

impl ServiceManager for Native {
    fn kind(&self) -> ManagerKind {
        ManagerKind::Native
    }

    fn run_supervisor(&self, host: &Host, pace: SupervisorPace) -> Option<Result<()>> {
        Some(supervise::run(
            host,
            supervise::Options {
                interval: pace.interval,
                hung_after: pace.hung_after,
                smtp_probe_every: pace.smtp_probe_every,
                backoff: supervise::Backoff::default(),
            },
        ))
    }

    fn install(&self, _host: &Host, _instance: &Instance) -> Result<()> {
        // The supervisor learns of the instance at the next start or sync.
        Ok(())
    }

    fn uninstall(&self, host: &Host, _instance: &Instance) -> Result<()> {
        // Best effort: the supervisor also forgets it at its next sync.
        let _ = ask(host, &Request::Sync);
        Ok(())
    }

    fn set_enabled(&self, _host: &Host, _instance: &Instance, _enabled: bool) -> Result<()> {
        // The supervisor reads postmulti's enable flag at its next sync.
        Ok(())
    }

    fn start(&self, host: &Host, instance: &Instance) -> Result<()> {
        self.start_set(host, std::slice::from_ref(instance))
    }

    /// The supervisor starts whatever is wanted and not running on one sync, in
    /// start order, so a set costs one request (and one read of the instance list).
    fn starts_sets(&self) -> bool {
        true
    }

    fn start_set(&self, host: &Host, instances: &[Instance]) -> Result<()> {
        let response = ask(host, &Request::Sync)?;
        for instance in instances {
            match report_of(&response, instance) {
                Some(report) if report.state != "running" && !host.runner.dry_run() => {
                    return Err(ManagerError::NotStarted {
                        instance: instance.display_name().to_string(),
                        account: not_running(report),
                    }
                    .into());
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn stop_set(&self, host: &Host, instances: &[Instance]) -> Result<()> {
        match ask(host, &Request::Sync) {
            Ok(_) => Ok(()),
            // Nothing runs them when no supervisor runs, unless started elsewhere.
            Err(_) if instances.iter().all(|i| i.running_master().is_none()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The supervisor stops what is not wanted: disabled, or marked stopped by the
    /// command that calls this.
    fn stop(&self, host: &Host, instance: &Instance) -> Result<()> {
        self.stop_set(host, std::slice::from_ref(instance))
    }

    fn restart(&self, host: &Host, instance: &Instance) -> Result<()> {
        ask(host, &Request::Sync)?;
        ask(
            host,
            &Request::Restart {
                name: instance.name.clone(),
            },
        )
        .map(drop)
    }

    fn reload(&self, host: &Host, instance: &Instance) -> Result<()> {
        if instance.running_master().is_none() {
            return Err(ManagerError::NothingToReload {
                instance: instance.display_name().to_string(),
                under: String::new(),
            }
            .into());
        }
        host.postfix
            .control(&instance.config_directory, "reload")
            .map(drop)
            .map_err(|e| e.context(format!("reloading {}", instance.display_name())))
    }

    /// Under the native manager only the supervisor runs masters: without one, the new
    /// instance could be neither started nor kept running.
    fn preflight_create(&self, host: &Host, name: &str, _config_directory: &Path) -> Result<()> {
        if host.runner.dry_run() || control::ask(host.state.dir(), &Request::Status).is_ok() {
            return Ok(());
        }
        Err(ManagerError::NoSupervisorForCreate {
            name: name.into(),
            start_command: supervisor_start_command(),
        }
        .into())
    }

    fn drift(&self, host: &Host, instance: &Instance) -> Result<Vec<Drift>> {
        let response = match control::ask(host.state.dir(), &Request::Status) {
            Ok(response) => response,
            Err(e) => {
                return Ok(vec![Drift::new(e.to_string(), Repair::Report)]);
            }
        };
        let (Some(report), Some(pid)) = (report_of(&response, instance), instance.running_master())
        else {
            return Ok(Vec::new());
        };
        if report.pid.is_some_and(|supervised| supervised != pid) {
            return Ok(vec![Drift::new(
                format!(
                    "its master (pid {pid}) runs outside the supervisor, which runs pid {}",
                    report.pid.unwrap_or_default()
                ),
                Repair::Report,
            )]);
        }
        Ok(Vec::new())
    }

    fn view(&self, host: &Host, instance: &Instance) -> ManagerView {
        self.views(host, std::slice::from_ref(instance))
            .pop()
            .unwrap_or_else(|| ManagerView::empty(ManagerKind::Native))
    }

    /// One question to the supervisor for every instance.
    fn views(&self, host: &Host, instances: &[Instance]) -> Vec<ManagerView> {
        let answer = control::ask(host.state.dir(), &Request::Status);
        instances
            .iter()
            .map(|instance| {
                let mut view = ManagerView::empty(ManagerKind::Native);
                view.restarts_on_exit = true;
                let response = match &answer {
                    Ok(response) => response,
                    Err(e) => {
                        view.restarts_on_exit = false;
                        view.problem = Some(format!(
                            "nothing restarts this instance if its master dies: {e}"
                        ));
                        view.start_command = Some(supervisor_start_command());
                        return view;
                    }
                };
                let Some(report) = report_of(response, instance) else {
                    view.loaded = Some(false);
                    view.problem = Some(
                        "the supervisor does not know this instance (`instancectl start` \
                         makes it look again)"
                            .into(),
                    );
                    return view;
                };
                view.loaded = Some(true);
                view.state = Some(report.state.clone());
                view.pid = report.pid;
                view.runs = Some(report.runs.into());
                view.last_exit_code = report.last_exit.clone();
                if report.adopted {
                    view.notes.push(
                        "adopted: the master was already running when the supervisor found it"
                            .into(),
                    );
                }
                if report.failed_probes > 0 {
                    view.notes
                        .push(format!("{} probe(s) in a row failed", report.failed_probes));
                }
                view.problem = report.problem.clone();
                view
            })
            .collect()
    }
}
