//! `instancectl logs`: one instance's log lines and nothing else, wherever the host
//! keeps them. Every Postfix program tags its lines `SYSLOG_NAME/PROGRAM[PID]:`, and
//! each instance has its own syslog_name (postmulti instances default to their
//! name, `postfix-in/smtpd[123]:`), so the lines are those carrying the instance's
//! tag, read from its maillog_file, the journal, the syslog daemon's mail log or
//! macOS's unified log (see `maillog::source`).

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cli::logs::LogsArgs;
use crate::error::InputError;
use crate::error::PostfixError;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::postfix::maillog::{self, Follower, LogSource};
use crate::runner::Command;

/// Lines shown when neither -n nor --since says otherwise (as tail shows).
const DEFAULT_LINES: usize = 10;
const POLL: Duration = Duration::from_millis(250);

pub fn run(host: &Host, args: &LogsArgs) -> Result<()> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let selected = host.select(&args.instance.selection())?;
    let [instance] = selected.as_slice() else {
        return Err(InputError::OneInstanceOnly { command: "logs" }.into());
    };
    let values = host
        .postfix
        .expanded(&instance.config_directory, &["syslog_name", "maillog_file"])?;
    let syslog_name = values.get("syslog_name").cloned().unwrap_or_default();
    let maillog_file = values.get("maillog_file").cloned().unwrap_or_default();
    let source = maillog::source(&maillog_file).ok_or_else(|| PostfixError::NoLog {
        instance: instance.display_name().to_string(),
        name: instance.name.clone(),
        syslog_files: maillog::SYSLOG_FILES.to_vec(),
        log: if instance.is_primary() {
            "postfix".into()
        } else {
            instance.name.clone()
        },
    })?;
    let limit = args.lines.unwrap_or(if since.is_some() {
        usize::MAX
    } else {
        DEFAULT_LINES
    });
    let filter = Filter {
        syslog_name: &syslog_name,
        since,
        unified: source == LogSource::UnifiedLog,
    };
    tracing::info!(?source, syslog_name, "reading");
    match &source {
        LogSource::File(path) => from_file(path, &filter, limit, args.follow),
        LogSource::Journal => {
            let tags = journal_tags(host, &syslog_name)?;
            if tags.is_empty() && !args.follow {
                // The journal holds no line of this instance.
                return Ok(());
            }
            let history = journal(since, &tags, limit);
            from_command(host, &history, &filter, limit, args.follow)
        }
        LogSource::UnifiedLog => {
            let history = unified_log(
                &host.postfix.daemon_directory,
                &host.postfix.command_directory,
                since,
            );
            from_command(host, &history, &filter, limit, args.follow)
        }
    }
}

/// `10m` ago, or a local `YYYY-MM-DD HH:MM[:SS]` (or with a `T`).
fn parse_since(text: &str) -> Result<SystemTime> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return SystemTime::now()
            .checked_sub(ago)
            .ok_or_else(|| InputError::SinceTooLongAgo { text: text.into() }.into());
    }
    let parsed = (|| {
        let (date, clock) = text.trim().split_once([' ', 'T'])?;
        let mut d = date.split('-').map(|p| p.parse::<i32>().ok());
        let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
        let mut c = clock.split(':').map(|p| p.parse::<i32>().ok());
        let (h, mi) = (c.next()??, c.next()??);
        let s = c.next().flatten().unwrap_or(0);
        let valid = (1..=12).contains(&mo)
            && (1..=31).contains(&day)
            && (0..24).contains(&h)
            && (0..60).contains(&mi)
            && (0..=60).contains(&s);
        valid.then(|| maillog::local_time(y, mo - 1, day, h, mi, s))?
    })();
    parsed.ok_or_else(|| InputError::Since { text: text.into() }.into())
}

/// Which lines to show.
struct Filter<'a> {
    syslog_name: &'a str,
    since: Option<SystemTime>,
    /// Reading macOS's unified log, already narrowed to Postfix's programs by the
    /// predicate.
    unified: bool,
}

impl Filter<'_> {
    fn keeps(&self, line: &str) -> bool {
        let ours = maillog::parse_line(line, self.syslog_name).is_some() || self.untagged(line);
        ours && self.since.is_none_or(|since| {
            // A line whose time cannot be read is shown rather than lost.
            maillog::line_time(line, SystemTime::now()).is_none_or(|t| t >= since)
        })
    }

    /// A unified-log line that names only the program (`smtpd[812]:`), not a syslog
    /// tag (`postfix-in/smtpd[812]:`): recorded `--style syslog` output names the
    /// process, and whether Postfix's syslog_name survives in it is not recorded, so
    /// such a line is shown, since the predicate let only Postfix's programs through.
    fn untagged(&self, line: &str) -> bool {
        self.unified && names_only_a_program(line)
    }
}

/// `DATE TIME  HOST PROCESS[PID]: TEXT` (macOS `--style syslog`) whose PROCESS has no
/// `NAME/` tag. The header lines (`Filtering the log data using ...`, `Timestamp
/// (process)[PID]`) are not such lines.
fn names_only_a_program(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let (Some(date), Some(_clock), Some(_host), Some(process)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    date.len() == 10
        && date.as_bytes()[4] == b'-'
        && process.ends_with("]:")
        && process
            .split_once('[')
            .is_some_and(|(name, _)| !name.is_empty() && !name.contains('/'))
}

/// Said once on stderr when untagged unified-log lines are shown.
const UNTAGGED_NOTE: &str = "note: these unified-log lines name only the Postfix program, not \
     the instance's syslog_name, so they may come from any instance";

/// Prints a line; false when standard output has gone (`| head`), to stop quietly.
fn emit(line: &str) -> bool {
    writeln!(std::io::stdout(), "{line}").is_ok()
}

/// The last `limit` lines of `lines` that the filter keeps.
fn last_kept(
    lines: impl Iterator<Item = String>,
    filter: &Filter,
    limit: usize,
) -> VecDeque<String> {
    let mut kept = VecDeque::new();
    for line in lines.filter(|l| filter.keeps(l)) {
        if kept.len() == limit {
            kept.pop_front();
        }
        if limit > 0 {
            kept.push_back(line);
        }
    }
    kept
}

fn from_file(path: &Path, filter: &Filter, limit: usize, follow: bool) -> Result<()> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        // Postfix creates its maillog_file with the first line it logs.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && follow => {
            return follow_file(Follower::at(path, 0), filter);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Nothing logged there yet: no lines, not a failure.
            eprintln!(
                "instancectl: {} does not exist yet: Postfix creates it with the first line \
                 it logs there",
                path.display()
            );
            return Ok(());
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut reader = std::io::BufReader::new(file);
    let mut offset = 0u64;
    let lines = std::iter::from_fn(|| {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            // A last line without its newline is still being written: follow picks it up.
            Ok(n) if n > 0 && line.ends_with(b"\n") => {
                offset += n as u64;
                Some(String::from_utf8_lossy(&line[..n - 1]).into_owned())
            }
            _ => None,
        }
    });
    let history = last_kept(lines, filter, limit);
    for line in &history {
        if !emit(line) {
            return Ok(());
        }
    }
    if !follow {
        return Ok(());
    }
    follow_file(Follower::at(path, offset), filter)
}

fn follow_file(mut follower: Follower, filter: &Filter) -> Result<()> {
    loop {
        for line in follower.poll() {
            if filter.keeps(&line) && !emit(&line) {
                return Ok(());
            }
        }
        let _ = std::io::stdout().flush();
        std::thread::sleep(POLL);
    }
}

/// The instance's syslog tags the journal has seen (`postfix-out/smtp`,
/// `postfix-out/qmgr`, ...), from its index of SYSLOG_IDENTIFIER values
/// (`journalctl -F`), which costs little however long the journal is.
fn journal_tags(host: &Host, syslog_name: &str) -> Result<Vec<String>> {
    let values = host.runner.query(&Command::new("journalctl").args([
        "--no-pager",
        "--quiet",
        "--field=SYSLOG_IDENTIFIER",
    ]))?;
    Ok(instance_tags(&values.stdout, syslog_name))
}

fn instance_tags(identifiers: &str, syslog_name: &str) -> Vec<String> {
    let prefix = format!("{syslog_name}/");
    let mut tags: Vec<String> = identifiers
        .lines()
        .map(str::trim)
        .filter(|t| t.strip_prefix(&prefix).is_some_and(|p| !p.is_empty()))
        .map(String::from)
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// The journal's mail facility (2), as syslog-style lines with ISO times: only the
/// entries with the instance's tags (several matches of one field are or-ed), so
/// journalctl itself finds the last `limit` lines instead of instancectl reading
/// every mail line the journal holds. The lines are still filtered as a file's are.
fn journal(since: Option<SystemTime>, tags: &[String], limit: usize) -> Command {
    let mut cmd = Command::new("journalctl").args(["--no-pager", "--quiet", "--output=short-iso"]);
    if let Some(since) = since {
        cmd = cmd.arg(format!("--since=@{}", epoch(since)));
    }
    if limit != usize::MAX {
        cmd = cmd.arg(format!("--lines={limit}"));
    }
    cmd.arg("SYSLOG_FACILITY=2")
        .args(tags.iter().map(|t| format!("SYSLOG_IDENTIFIER={t}")))
}

/// macOS: the entries of the processes whose executables are Postfix's, in
/// daemon_directory and command_directory (`processImagePath`, the process that
/// logged; `senderImagePath` can be a library inside it), with Info messages
/// (`--info`: Postfix logs deliveries and connections at LOG_INFO, which `log` skips
/// by default), printed syslog-style.
fn unified_log(
    daemon_directory: &Path,
    command_directory: &Path,
    since: Option<SystemTime>,
) -> Command {
    let predicate = format!(
        "processImagePath BEGINSWITH \"{}/\" OR processImagePath BEGINSWITH \"{}/post\"",
        daemon_directory.display(),
        command_directory.display()
    );
    let cmd = Command::new("log").args([
        "show",
        "--style",
        "syslog",
        "--info",
        "--predicate",
        &predicate,
    ]);
    // `log show --last` counts minutes, hours or days back from now.
    let minutes = since
        .map(|s| {
            SystemTime::now()
                .duration_since(s)
                .unwrap_or_default()
                .as_secs()
                .div_ceil(60)
        })
        .unwrap_or(24 * 60);
    cmd.args(["--last", &format!("{}m", minutes.max(1))])
}

fn epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The follow form of a history command: `journalctl -f -n 0`, `log stream`.
fn following(history: &Command) -> Command {
    let argv = history.argv();
    if argv[0] == "log" {
        let predicate = &argv[argv.iter().position(|a| a == "--predicate").unwrap_or(0) + 1];
        return Command::new("log").args([
            "stream",
            "--style",
            "syslog",
            "--info",
            "--predicate",
            predicate,
        ]);
    }
    Command::new("journalctl").args([
        "--no-pager",
        "--quiet",
        "--output=short-iso",
        "--follow",
        "--lines=0",
        "SYSLOG_FACILITY=2",
    ])
}

fn from_command(
    host: &Host,
    history: &Command,
    filter: &Filter,
    limit: usize,
    follow: bool,
) -> Result<()> {
    // Started first, so no line falls between the history and the following.
    let mut live = follow
        .then(|| host.runner.stream(&following(history)))
        .transpose()?;
    let reader = host.runner.stream(history)?;
    let lines = reader.lines().map_while(|l| l.ok());
    let mut noted = false;
    let mut note_once = |line: &str| {
        if !noted && filter.untagged(line) {
            noted = true;
            eprintln!("{UNTAGGED_NOTE}");
        }
    };
    for line in &last_kept(lines, filter, limit) {
        note_once(line);
        if !emit(line) {
            return Ok(());
        }
    }
    if let Some(live) = live.as_mut() {
        for line in live.lines().map_while(|l| l.ok()) {
            if filter.keeps(&line) {
                note_once(&line);
                if !emit(&line) {
                    return Ok(());
                }
            }
            let _ = std::io::stdout().flush();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = include_str!("../../tests/data/maillog-two-instances.log");

    #[test]
    fn one_instance_of_a_shared_log() {
        let filter = Filter {
            syslog_name: "postfix-q",
            since: None,
            unified: false,
        };
        let all = last_kept(TWO.lines().map(String::from), &filter, usize::MAX);
        assert_eq!(all.len(), 13);
        assert!(all.iter().all(|l| l.contains(" postfix-q/")), "{all:#?}");
        let last = last_kept(TWO.lines().map(String::from), &filter, 2);
        assert_eq!(last.len(), 2);
        assert!(last[1].contains("stopping the Postfix mail system"));
        let none = last_kept(TWO.lines().map(String::from), &filter, 0);
        assert!(none.is_empty());
    }

    /// Recorded `log stream --style syslog` output (macOS 10.14): the header lines are
    /// dropped, the line naming a program is kept (the predicate let only Postfix's
    /// programs through) and its time is read; lines tagged with another instance's
    /// syslog_name are not, ours are; outside the unified log an untagged line is
    /// nobody's.
    #[test]
    fn the_unified_log_in_syslog_style() {
        let recorded =
            include_str!("../../tests/data/unified-log/stream-syslog-style-ernw-10.14.log");
        let unified = |since| Filter {
            syslog_name: "postfix-q",
            since,
            unified: true,
        };
        let kept = last_kept(
            recorded.lines().map(String::from),
            &unified(None),
            usize::MAX,
        );
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(kept[0].contains("localhost sudo[2002]:"));
        assert!(unified(None).untagged(&kept[0]));
        let written = maillog::line_time(&kept[0], SystemTime::now()).unwrap();
        assert_eq!(
            written.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_540_394_613 // 2018-10-24T15:23:33Z
        );
        let later = written + Duration::from_secs(1);
        assert!(last_kept(recorded.lines().map(String::from), &unified(Some(later)), 9).is_empty());
        // Tagged lines are told apart by instance, in the unified log as anywhere.
        let two = TWO.lines().map(String::from);
        let tagged = last_kept(two, &unified(None), usize::MAX);
        assert_eq!(tagged.len(), 13);
        assert!(tagged.iter().all(|l| l.contains(" postfix-q/")));
        let elsewhere = Filter {
            unified: false,
            ..unified(None)
        };
        assert!(last_kept(recorded.lines().map(String::from), &elsewhere, 9).is_empty());
    }

    /// `log show`/`log stream` as log(1) documents them: `--style syslog`, `--info`
    /// (Postfix logs at LOG_INFO, which `log` skips by default), a predicate on
    /// processImagePath with BEGINSWITH, `--last Nm`.
    #[test]
    fn unified_log_commands() {
        let since = SystemTime::now() - Duration::from_secs(90 * 60);
        let show = unified_log(
            Path::new("/usr/libexec/postfix"),
            Path::new("/usr/sbin"),
            Some(since),
        );
        let predicate = "processImagePath BEGINSWITH \"/usr/libexec/postfix/\" OR \
                         processImagePath BEGINSWITH \"/usr/sbin/post\"";
        assert_eq!(
            show.argv(),
            [
                "log",
                "show",
                "--style",
                "syslog",
                "--info",
                "--predicate",
                predicate,
                "--last",
                "90m"
            ]
        );
        assert_eq!(
            following(&show).argv(),
            [
                "log",
                "stream",
                "--style",
                "syslog",
                "--info",
                "--predicate",
                predicate
            ]
        );
    }

    #[test]
    fn one_instance_of_rsyslogs_mail_log() {
        let log = include_str!("../../tests/data/mail-log-rsyslog.log");
        let filter = Filter {
            syslog_name: "postfix-nc",
            since: None,
            unified: false,
        };
        let mine = last_kept(log.lines().map(String::from), &filter, usize::MAX);
        assert_eq!(mine.len(), 8);
        assert!(mine.iter().all(|l| l.contains(" postfix-nc/")), "{mine:#?}");
        // rsyslog's RFC 3339 times with microseconds: --since reads them.
        let after = Filter {
            syslog_name: "postfix-nc",
            since: Some(humantime::parse_rfc3339("2026-11-29T17:48:55Z").unwrap()),
            unified: false,
        };
        let later = last_kept(log.lines().map(String::from), &after, usize::MAX);
        assert_eq!(later.len(), 4, "{later:#?}");
        assert!(later[0].contains("AA092598087: message-id="));
    }

    #[test]
    fn a_maillog_file_not_written_yet_has_no_lines() {
        let dir = tempfile::tempdir().unwrap();
        let filter = Filter {
            syslog_name: "postfix-new",
            since: None,
            unified: false,
        };
        assert!(from_file(&dir.path().join("postfix-new.log"), &filter, 10, false).is_ok());
    }

    #[test]
    fn since_forms() {
        let now = SystemTime::now();
        let ago = parse_since("10m").unwrap();
        let diff = now.duration_since(ago).unwrap().as_secs();
        assert!((599..=601).contains(&diff), "{diff}");
        assert_eq!(
            parse_since("2026-11-29 14:00").unwrap(),
            maillog::local_time(2026, 10, 29, 14, 0, 0).unwrap()
        );
        assert_eq!(
            parse_since("2026-11-29T14:00:05").unwrap(),
            maillog::local_time(2026, 10, 29, 14, 0, 5).unwrap()
        );
        for bad in ["yesterday-ish", "2026-13-01 00:00", "2026-11-29", "14:00"] {
            assert_eq!(parse_since(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn commands_per_source() {
        let since = UNIX_EPOCH + Duration::from_secs(1_795_963_000);
        let tags = [
            "postfix-out/qmgr".to_string(),
            "postfix-out/smtp".to_string(),
        ];
        assert_eq!(
            journal(Some(since), &tags, 5).argv(),
            [
                "journalctl",
                "--no-pager",
                "--quiet",
                "--output=short-iso",
                "--since=@1795963000",
                "--lines=5",
                "SYSLOG_FACILITY=2",
                "SYSLOG_IDENTIFIER=postfix-out/qmgr",
                "SYSLOG_IDENTIFIER=postfix-out/smtp"
            ]
        );
        assert_eq!(following(&journal(None, &tags, 5)).argv()[4], "--follow");
        // `journalctl -F SYSLOG_IDENTIFIER` lists each value once, in no order.
        let seen = "postfix-out/smtp\nsystemd\npostfix-out2/smtp\npostfix/qmgr\n\
                    postfix-out/qmgr\npostfix-out/\nkernel\n";
        assert_eq!(instance_tags(seen, "postfix-out"), tags);
        assert_eq!(instance_tags(seen, "postfix"), ["postfix/qmgr"]);
    }
}
