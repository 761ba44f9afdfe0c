//! The status report written out: an aligned table for people, JSON for scripts, and
//! the Prometheus text exposition format for node_exporter's textfile collector.

use std::fmt::Write as _;

use comfy_table::Color;

use crate::check::CheckStatus;
use crate::health::verdict::short_duration;
use crate::health::{InstanceStatus, Report, Verdict};
use crate::output::cell;

fn verdict_color(v: Verdict) -> Color {
    match v {
        Verdict::Healthy => Color::Green,
        Verdict::OnDemand => Color::Cyan,
        Verdict::Disabled => Color::DarkGrey,
        Verdict::Stopped => Color::DarkGrey,
        Verdict::Degraded => Color::Yellow,
        Verdict::Down | Verdict::Broken => Color::Red,
    }
}

fn paint(text: &str, v: Verdict, colour: bool) -> String {
    if !colour {
        return text.to_string();
    }
    let code = match v {
        Verdict::Healthy => "32",
        Verdict::OnDemand => "36",
        Verdict::Disabled | Verdict::Stopped => "90",
        Verdict::Degraded => "33",
        Verdict::Down | Verdict::Broken => "1;31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// 1536 -> "1.5K": sizes for people, in powers of 1024.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else if value < 10.0 {
        format!("{value:.1}{}", UNITS[unit])
    } else {
        format!("{value:.0}{}", UNITS[unit])
    }
}

fn check_word(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Ok => "ok",
        CheckStatus::Warnings => "warnings",
        CheckStatus::Failed => "FAILED",
        CheckStatus::Timeout => "timeout",
        CheckStatus::NotRun => "-",
    }
}

fn smtp_cell(i: &InstanceStatus) -> String {
    if i.listeners.is_empty() {
        return "-".into();
    }
    let ok: Vec<f64> = i.listeners.iter().filter_map(|l| l.latency_ms).collect();
    let answered = i.listeners.iter().filter(|l| l.ok).count();
    let slowest = ok
        .iter()
        .cloned()
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    match slowest {
        Some(ms) => format!("{answered}/{} {ms:.1}ms", i.listeners.len()),
        None => format!("{answered}/{}", i.listeners.len()),
    }
}

/// The number of queued messages; `wide` adds how many in each queue.
fn queue_cell(i: &InstanceStatus, wide: bool) -> String {
    let Some(q) = &i.queues else {
        return "?".into();
    };
    if !wide {
        return q.total.to_string();
    }
    let parts: Vec<String> = q
        .counts
        .by_name()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    if parts.is_empty() {
        "0".into()
    } else {
        format!("{} ({})", q.total, parts.join(", "))
    }
}

fn master_cell(i: &InstanceStatus) -> String {
    let m = &i.master.state;
    match (m.running, m.pid, m.pid_file_pid) {
        (true, Some(pid), _) => pid.to_string(),
        (false, _, Some(pid)) if m.alive == Some(true) => format!("- ({pid} stale)"),
        _ => "-".into(),
    }
}

/// The table (80 columns; `wide` adds the master, processes, memory, the queues one by
/// one and postfix check), then for every instance that is not healthy a line with its
/// verdict and the command that fixes it, its problems, and every warning. `verbose`
/// adds a block of details per instance.
pub fn table(report: &Report, verbose: bool, colour: bool, wide: bool) -> String {
    let mut t = crate::output::table(wide);
    if colour {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    let header: &[&str] = if wide {
        &[
            "NAME", "GROUP", "ROLE", "STATUS", "MASTER", "UPTIME", "PROCS", "RSS", "SMTP", "QUEUE",
            "CHECK",
        ]
    } else {
        &["NAME", "GROUP", "ROLE", "STATUS", "UPTIME", "SMTP", "QUEUE"]
    };
    t.set_header(header.to_vec());
    for i in &report.instances {
        let mut verdict = cell(i.verdict.as_str());
        if colour {
            verdict = verdict.fg(verdict_color(i.verdict));
        }
        let uptime = cell(i.master.uptime_seconds.map_or("-".into(), short_duration));
        let mut row = vec![
            cell(&i.name),
            cell(i.group.as_deref().unwrap_or("-")),
            cell(i.role.as_deref().unwrap_or("-")),
            verdict,
        ];
        if wide {
            row.extend([
                cell(master_cell(i)),
                uptime,
                cell(
                    i.processes
                        .as_ref()
                        .map_or("-".into(), |p| p.count.to_string()),
                ),
                cell(
                    i.processes
                        .as_ref()
                        .map_or("-".into(), |p| human_bytes(p.rss_bytes)),
                ),
                cell(smtp_cell(i)),
                cell(queue_cell(i, true)),
                cell(check_word(i.check.status)),
            ]);
        } else {
            row.extend([uptime, cell(smtp_cell(i)), cell(queue_cell(i, false))]);
        }
        t.add_row(row);
    }
    let mut out = crate::output::render(&t);
    out.push('\n');
    let mut notes = String::new();
    for i in &report.instances {
        if verbose {
            details(&mut notes, i, colour);
            continue;
        }
        if i.fix.is_none() && i.reasons.is_empty() && i.warnings.is_empty() {
            continue;
        }
        let verdict = paint(i.verdict.as_str(), i.verdict, colour);
        match &i.fix {
            Some(fix) => {
                let _ = writeln!(notes, "{}: {verdict} \u{2014} {fix}", i.name);
            }
            None => {
                let _ = writeln!(notes, "{}: {verdict}", i.name);
            }
        }
        for r in &i.reasons {
            let _ = writeln!(notes, "  - {r}");
        }
        for w in &i.warnings {
            let _ = writeln!(notes, "  ! {w}");
        }
    }
    if !notes.is_empty() {
        if !verbose {
            out.push('\n');
        }
        out.push_str(&notes);
    }
    out
}

fn details(out: &mut String, i: &InstanceStatus, colour: bool) {
    let _ = writeln!(
        out,
        "\n{} (group {}, role {}): {}",
        i.name,
        i.group.as_deref().unwrap_or("-"),
        i.role.as_deref().unwrap_or("-"),
        paint(i.verdict.as_str(), i.verdict, colour)
    );
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "  {key:<10} {value}");
    };
    for r in &i.reasons {
        line("problem", r.clone());
    }
    if let Some(fix) = &i.fix {
        line("fix", fix.to_string());
    }
    for w in &i.warnings {
        line("warning", w.clone());
    }
    line(
        "enabled",
        format!(
            "{} (postmulti multi_instance_enable)",
            if i.enabled { "yes" } else { "no" }
        ),
    );
    line("config", i.config_directory.display().to_string());
    line(
        "queue dir",
        i.queue_directory
            .as_ref()
            .map_or("not known".into(), |d| d.display().to_string()),
    );
    line("myhostname", i.myhostname.clone());
    if let Some(relay) = &i.relay {
        line(
            "relay",
            format!(
                "{} ({}), credentials {}",
                relay.relay_host.as_deref().unwrap_or("-"),
                relay.tls.as_deref().unwrap_or("TLS unknown"),
                if relay.credentials_present {
                    "present"
                } else {
                    "missing"
                }
            ),
        );
    }

    let v = &i.manager;
    let mut said = vec![v.kind.to_string()];
    if let Some(label) = &v.label {
        said.push(format!("label {label}"));
    }
    if let Some(loaded) = v.loaded {
        said.push(format!("loaded {}", if loaded { "yes" } else { "no" }));
    }
    if let Some(o) = &v.disabled_override {
        said.push(format!("override {o}"));
    }
    if let Some(state) = &v.state {
        said.push(format!("state {state}"));
    }
    if let Some(pid) = v.pid {
        said.push(format!("pid {pid}"));
    }
    if let Some(runs) = v.runs {
        said.push(format!("runs {runs}"));
    }
    if let Some(code) = &v.last_exit_code {
        said.push(format!("last exit code {code}"));
    }
    if v.on_demand {
        said.push("on demand".into());
    }
    if let Some(unit) = &v.master_unit {
        said.push(format!("master in {unit}"));
    }
    line("manager", said.join(", "));
    for n in &v.notes {
        line("", n.clone());
    }

    let m = &i.master.state;
    let lock = match m.lock {
        crate::postfix::pid_file::LockState::Held => "locked",
        crate::postfix::pid_file::LockState::Free => "not locked",
        crate::postfix::pid_file::LockState::Unknown => "lock unknown",
        crate::postfix::pid_file::LockState::NoFile => "absent",
    };
    let file_pid = m
        .pid_file_pid
        .map_or(String::new(), |p| format!(", names pid {p}"));
    line(
        "pid file",
        format!("{} ({lock}{file_pid})", m.pid_file.display()),
    );
    if let Some(e) = &m.error {
        line("", e.clone());
    }
    if let (true, Some(pid)) = (m.running, m.pid) {
        line(
            "master",
            format!(
                "pid {pid}, started {}, up {}",
                i.master.started_at.as_deref().unwrap_or("?"),
                i.master.uptime_seconds.map_or("?".into(), short_duration)
            ),
        );
    }
    if let Some(p) = &i.processes {
        let list: Vec<String> = p
            .list
            .iter()
            .map(|p| format!("{} {} {}", p.pid, p.name, human_bytes(p.rss_bytes)))
            .collect();
        line(
            "processes",
            format!(
                "{} using {}: {}",
                p.count,
                human_bytes(p.rss_bytes),
                list.join(", ")
            ),
        );
    }
    for l in &i.listeners {
        let result = match (&l.banner, l.latency_ms, &l.error) {
            (Some(b), Some(ms), _) => format!("{b} ({ms:.1} ms)"),
            (None, Some(ms), _) => format!("connected ({ms:.1} ms, {:?} probe)", l.probe),
            (_, _, Some(e)) => format!("FAILED: {e}"),
            _ => "?".into(),
        };
        // The service name is worth showing when it is not just the address.
        let service = if l.service.starts_with(&l.address) {
            String::new()
        } else {
            format!(" [{}]", l.service)
        };
        line(
            "listener",
            format!("{} {}{service}: {result}", l.address, l.command),
        );
    }
    match (&i.queues, &i.queues_error) {
        (Some(q), _) => line(
            "queues",
            q.counts
                .by_name()
                .iter()
                .map(|(n, c)| format!("{n} {c}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (None, Some(e)) => line("queues", e.clone()),
        _ => {}
    }
    let c = &i.check;
    let mut how = vec![check_word(c.status).to_string()];
    if let Some(at) = &c.checked_at {
        how.push(format!("ran {at}"));
    }
    if let Some(ms) = c.duration_ms {
        how.push(format!("took {ms} ms"));
    }
    if c.cached {
        how.push("remembered".into());
    }
    if let Some(r) = &c.reason {
        how.push(r.clone());
    }
    line("check", how.join(", "));
    for l in c.output.lines() {
        line("", l.to_string());
    }
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<(String, f64)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            kind,
            help,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: &[(&str, &str)], value: f64) {
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect::<Vec<_>>()
            .join(",");
        self.samples.push((labels, value));
    }

    fn write(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, value) in &self.samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{} {value}", self.name);
            } else {
                let _ = writeln!(out, "{}{{{labels}}} {value}", self.name);
            }
        }
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The report in the Prometheus text exposition format (version 0.0.4). Each series
/// is labelled `postfix_instance` (`-` for the primary); `instance` is left to
/// Prometheus.
pub fn prometheus(report: &Report) -> String {
    let mut info = Family::new(
        "instancectl_instance_info",
        "gauge",
        "Static facts about a Postfix instance; always 1.",
    );
    let mut enabled = Family::new(
        "instancectl_enabled",
        "gauge",
        "Whether the instance is enabled in postmulti (multi_instance_enable).",
    );
    let mut up = Family::new(
        "instancectl_up",
        "gauge",
        "Whether the instance's master runs (a live process holds its pid file lock).",
    );
    let mut healthy = Family::new(
        "instancectl_healthy",
        "gauge",
        "1 when the verdict lets status exit 0 (healthy, on-demand, disabled, and stopped \
         unless --strict), else 0.",
    );
    let mut verdict = Family::new(
        "instancectl_verdict",
        "gauge",
        "The instance's verdict: 1 for the current one, 0 for the others.",
    );
    let mut start = Family::new(
        "instancectl_master_start_time_seconds",
        "gauge",
        "When the running master started, in seconds since the epoch.",
    );
    let mut procs = Family::new(
        "instancectl_processes",
        "gauge",
        "Processes of the instance: the master and everything below it.",
    );
    let mut rss = Family::new(
        "instancectl_resident_memory_bytes",
        "gauge",
        "Sum of the resident set sizes of the instance's processes.",
    );
    let mut smtp_up = Family::new(
        "instancectl_listener_up",
        "gauge",
        "Whether the listener answered the probe (an SMTP 220 greeting, or a connection).",
    );
    let mut latency = Family::new(
        "instancectl_listener_latency_seconds",
        "gauge",
        "Time from connect to the greeting (to the connection for non-SMTP probes).",
    );
    let mut queue = Family::new(
        "instancectl_queue_messages",
        "gauge",
        "Messages in each of the instance's queues.",
    );
    let mut restarts = Family::new(
        "instancectl_restarts_total",
        "counter",
        "Restarts of the instance's job by its service manager (runs - 1); absent when \
         the manager does not count them.",
    );
    let mut check_ok = Family::new(
        "instancectl_postfix_check_ok",
        "gauge",
        "Whether postfix check passed (warnings included); absent when not run.",
    );
    let mut check_time = Family::new(
        "instancectl_postfix_check_timestamp_seconds",
        "gauge",
        "When postfix check last ran, in seconds since the epoch.",
    );
    for i in &report.instances {
        let name = i.name.as_str();
        let who = [("postfix_instance", name)];
        info.add(
            &[
                ("postfix_instance", name),
                ("group", i.group.as_deref().unwrap_or("")),
                ("role", i.role.as_deref().unwrap_or("")),
                ("config_directory", &i.config_directory.to_string_lossy()),
                ("myhostname", &i.myhostname),
            ],
            1.0,
        );
        enabled.add(&who, flag(i.enabled));
        up.add(&who, flag(i.master.state.running));
        healthy.add(&who, flag(i.verdict.is_ok(report.summary.strict)));
        for v in Verdict::ALL {
            verdict.add(
                &[("postfix_instance", name), ("verdict", v.as_str())],
                flag(v == i.verdict),
            );
        }
        if let (Some(started), true) = (i.master.start_time, i.master.state.running) {
            start.add(&who, started as f64);
        }
        if let Some(p) = &i.processes {
            procs.add(&who, p.count as f64);
            rss.add(&who, p.rss_bytes as f64);
        }
        for l in &i.listeners {
            let labels = [
                ("postfix_instance", name),
                ("listener", l.address.as_str()),
                ("service", l.service.as_str()),
            ];
            smtp_up.add(&labels, flag(l.ok));
            if let (true, Some(ms)) = (l.ok, l.latency_ms) {
                latency.add(&labels, ms / 1000.0);
            }
        }
        if let Some(q) = &i.queues {
            for (qname, n) in q.counts.by_name() {
                queue.add(&[("postfix_instance", name), ("queue", qname)], n as f64);
            }
        }
        if let Some(r) = i.manager.restarts() {
            restarts.add(&who, r as f64);
        }
        match i.check.status {
            CheckStatus::Ok | CheckStatus::Warnings => check_ok.add(&who, 1.0),
            CheckStatus::Failed | CheckStatus::Timeout => check_ok.add(&who, 0.0),
            CheckStatus::NotRun => {}
        }
        if let Some(at) = i.check.checked_at_unix {
            check_time.add(&who, at as f64);
        }
    }
    let mut duration = Family::new(
        "instancectl_status_duration_seconds",
        "gauge",
        "How long gathering the status took.",
    );
    duration.add(&[], report.duration_ms / 1000.0);
    let mut stamp = Family::new(
        "instancectl_status_timestamp_seconds",
        "gauge",
        "When the status was gathered, in seconds since the epoch.",
    );
    stamp.add(&[], report.generated_at_unix as f64);

    let mut out = String::new();
    for f in [
        info, enabled, up, healthy, verdict, start, procs, rss, smtp_up, latency, queue, restarts,
        check_ok, check_time, duration, stamp,
    ] {
        f.write(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_for_people() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(20 * 1024 * 1024), "20M");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut f = Family::new("x", "gauge", "h");
        f.add(&[("a", "q\"b\\s\nn")], 1.0);
        let mut out = String::new();
        f.write(&mut out);
        assert_eq!(
            out,
            "# HELP x h\n# TYPE x gauge\nx{a=\"q\\\"b\\\\s\\nn\"} 1\n"
        );
    }
}
