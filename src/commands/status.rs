//! `instancectl status`: gather every selected instance's health in parallel, write
//! the report (table, wide table, JSON or Prometheus; the Prometheus textfile with
//! --textfile), and exit 0 unless an instance is degraded or down (or stopped, with
//! --strict). `--watch` repeats it, redrawing in place.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::check::{self, CheckPolicy};
use crate::cli::{StatusArgs, StatusFormat};
use crate::error::InputError;
use crate::error::{Error, Result};
use crate::health::{self, Options, Report};
use crate::host::{self, Host, Selection};
use crate::instance;
use crate::manager::ServiceManager;
use crate::output::{self, Schema};
use crate::status;

fn seconds(what: &str, value: f64, min: f64) -> Result<Duration> {
    if !value.is_finite() || value < min || value > 86400.0 {
        return Err(InputError::Seconds {
            option: what.into(),
            value,
            min,
        }
        .into());
    }
    Ok(Duration::from_secs_f64(value))
}

pub fn run(
    host: &Host,
    manager: &dyn ServiceManager,
    args: &StatusArgs,
    verbose: bool,
) -> Result<i32> {
    let probe_timeout = seconds("--timeout", args.timeout, 0.05)?;
    let interval = args.watch.map(|w| seconds("--watch", w, 0.1)).transpose()?;
    let selection = args.instances.selection_or_all();
    let asked = match (args.json, args.output) {
        (true, _) => Some(StatusFormat::Json),
        (_, format) => format,
    };
    // With --textfile the metrics file is the output; stdout only when asked for.
    let format = match (asked, &args.textfile) {
        (None, Some(_)) => None,
        (asked, _) => Some(asked.unwrap_or(StatusFormat::Table)),
    };
    // Resolved once, against the directory status was started in.
    let textfile = args
        .textfile
        .as_deref()
        .map(|p| std::path::absolute(p).map_err(|e| Error::io(p, e)))
        .transpose()?;
    let stdout_tty = std::io::stdout().is_terminal();
    let colour = stdout_tty
        && matches!(format, Some(StatusFormat::Table | StatusFormat::Wide))
        && output::colour_allowed();

    let is_root = nix::unistd::geteuid().is_root();
    let cannot_run = if host.runner.dry_run() {
        Some("not run with --dry-run (postfix check creates missing queue directories)".into())
    } else if !is_root {
        Some("not run: postfix check needs root".into())
    } else {
        None
    };
    let mut opts = Options {
        probe_timeout,
        check: CheckPolicy {
            enabled: !args.no_check,
            recheck: args.recheck,
            at_least_quick: false,
            max_age: check::MAX_AGE,
            timeout: check::TIMEOUT,
            cannot_run,
            cache_dir: Some(check::remembered_in(host.state.dir())),
        },
        strict: args.strict,
    };
    // Writes the metrics file, if asked for, and returns what goes to stdout.
    let round = |report: &Report, stream: bool| -> Result<Option<String>> {
        if let Some(path) = &textfile {
            host.runner
                .write_file(path, status::prometheus(report).as_bytes(), 0o644)?;
        }
        Ok(format.map(|f| render(report, f, verbose, colour, stream)))
    };

    let Some(interval) = interval else {
        let report = gather(host, manager, &selection, &opts)?;
        if let Some(text) = round(&report, false)? {
            emit(&text);
        }
        return Ok(report.summary.exit_status);
    };
    let mut last_exit = 0;

    let redraw = stdout_tty && format.is_some();
    let what = match &selection {
        Selection::One(name) => format!(" {name}"),
        Selection::Group(group) => format!(" -g {group}"),
        Selection::All => String::new(),
    };
    let mut first = true;
    loop {
        let text = match gather(host, manager, &selection, &opts) {
            Ok(report) => {
                last_exit = report.summary.exit_status;
                round(&report, !redraw)?
            }
            // The next round may do better (an instance being created, say).
            Err(e) if redraw => Some(format!("instancectl: {e}\n")),
            Err(e) => return Err(e),
        };
        match text {
            Some(text) if redraw => {
                let header = format!(
                    "Every {}s: instancectl status{what}    {}\n\n",
                    interval.as_secs_f64(),
                    crate::output::rfc3339(crate::output::unix_now())
                );
                // Home, then each line cleared to its end, then the rest of the screen:
                // no flicker and no leftovers from a longer previous frame. A frame
                // taller than the screen would scroll and break the next redraw, so it
                // is cut.
                let mut frame = String::from(if first { "\x1b[H\x1b[2J" } else { "\x1b[H" });
                first = false;
                let lines: Vec<&str> = header.lines().chain(text.lines()).collect();
                for line in fit_to_screen(&lines, terminal_size()) {
                    frame.push_str(&line);
                    frame.push_str("\x1b[K\n");
                }
                frame.push_str("\x1b[J");
                if !emit(&frame) {
                    return Ok(last_exit);
                }
            }
            // Whoever read the stream has gone (`status --watch --json | head`).
            Some(text) if !emit(&text) => return Ok(last_exit),
            _ => {}
        }
        // Remembered results are fine after the first round.
        opts.check.recheck = false;
        std::thread::sleep(interval);
    }
}

fn gather(
    host: &Host,
    manager: &dyn ServiceManager,
    selection: &Selection,
    opts: &Options,
) -> Result<Report> {
    let all = instance::load_all(&host.postfix, &host.state)?;
    let selected = host::select_in(all.clone(), selection)?;
    Ok(health::gather(host, manager, &all, &selected, opts))
}

fn render(
    report: &Report,
    format: StatusFormat,
    verbose: bool,
    colour: bool,
    stream: bool,
) -> String {
    match format {
        StatusFormat::Table => status::table(report, verbose, colour, false),
        StatusFormat::Wide => status::table(report, verbose, colour, true),
        // One document per line when a watch streams into a pipe.
        StatusFormat::Json => output::json(Schema::STATUS, report, stream),
        StatusFormat::Prometheus => status::prometheus(report),
    }
}

/// Writes to standard output; false when it has been closed, which is not an error
/// worth a message (`status | head`).
fn emit(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

/// The terminal's rows and columns, when standard output is one.
fn terminal_size() -> Option<(usize, usize)> {
    let mut size = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize it is given and nothing else.
    let ok = unsafe { nix::libc::ioctl(1, nix::libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_row > 0 && size.ws_col > 0).then(|| (size.ws_row.into(), size.ws_col.into()))
}

/// The characters a line shows, colour codes left out.
fn visible_width(line: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in line.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, c) if c.is_ascii_alphabetic() => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

/// The lines that fit on a screen of `size` (rows, columns), long lines taking the
/// rows they wrap to; the last row says what was left out.
fn fit_to_screen(lines: &[&str], size: Option<(usize, usize)>) -> Vec<String> {
    let all = || lines.iter().map(|l| l.to_string()).collect();
    let Some((rows, cols)) = size else {
        return all();
    };
    let needs = |line: &str| visible_width(line).div_ceil(cols).max(1);
    // Keep the last row free: printing on it would scroll the screen.
    let budget = rows.saturating_sub(1);
    if lines.iter().map(|l| needs(l)).sum::<usize>() <= budget {
        return all();
    }
    let mut out = Vec::new();
    let mut used = 0;
    for line in lines {
        // One row stays for the note of what was left out.
        if used + needs(line) > budget.saturating_sub(1) {
            break;
        }
        used += needs(line);
        out.push(line.to_string());
    }
    let left = lines.len() - out.len();
    out.push(format!(
        "... {left} more line(s): enlarge the window, or select fewer instances"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_fit_the_screen() {
        let lines = ["header", "", "a", "\x1b[32mb\x1b[0m", "c", "d"];
        assert_eq!(fit_to_screen(&lines, None).len(), 6);
        assert_eq!(fit_to_screen(&lines, Some((10, 80))).len(), 6);
        let cut = fit_to_screen(&lines, Some((5, 80)));
        assert_eq!(cut.len(), 4, "{cut:?}");
        assert!(cut[3].starts_with("... 3 more line(s)"), "{cut:?}");
        // A 100-character line takes two rows of 80.
        let long = "x".repeat(100);
        let cut = fit_to_screen(&[long.as_str(), "y", "z"], Some((4, 80)));
        assert_eq!(cut.len(), 2, "{cut:?}");
        assert_eq!(visible_width("\x1b[1;31mdown\x1b[0m"), 4);
    }
}
