//! Postfix's mail log: finding where an instance logs, following it as it grows, and
//! reading the lines that tell a message's fate (`message-id=`, `to=... status=`).
//! The same line format comes from postlogd (maillog_file, Postfix 3.4 and later), from
//! syslog and from `journalctl -o short-iso`: `DATE HOST SYSLOG_NAME/PROGRAM[PID]: TEXT`.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where syslog daemons put mail logs: Debian and Ubuntu, RHEL, SUSE.
pub const SYSLOG_FILES: [&str; 3] = ["/var/log/mail.log", "/var/log/maillog", "/var/log/mail"];

/// journald's socket: present while systemd's journal runs.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Where an instance's log lines are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// A file: the instance's maillog_file, or the syslog daemon's mail log.
    File(PathBuf),
    /// systemd's journal (`journalctl`).
    Journal,
    /// macOS's unified log (`log show`, `log stream`).
    UnifiedLog,
}

/// The instance's own maillog_file, when it names a file (not /dev/stdout).
fn own_file(maillog_file: &str) -> Option<PathBuf> {
    let own = maillog_file.trim();
    (own.starts_with('/') && !own.starts_with("/dev/")).then(|| PathBuf::from(own))
}

fn syslog_file() -> Option<PathBuf> {
    SYSLOG_FILES.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// The file an instance logs to: its maillog_file, else the first syslog mail log
/// that exists, else none (macOS: the unified log; hosts without a syslog daemon).
pub fn locate(maillog_file: &str) -> Option<PathBuf> {
    own_file(maillog_file).or_else(syslog_file)
}

/// Where to read an instance's lines: its maillog_file; on macOS the unified log;
/// the journal while journald runs; else the syslog daemon's mail log.
pub fn source(maillog_file: &str) -> Option<LogSource> {
    if let Some(file) = own_file(maillog_file) {
        return Some(LogSource::File(file));
    }
    if cfg!(target_os = "macos") {
        return Some(LogSource::UnifiedLog);
    }
    if Path::new(JOURNAL_SOCKET).exists() {
        return Some(LogSource::Journal);
    }
    syslog_file().map(LogSource::File)
}

/// When a log line was written, from its leading timestamp: RFC 3339 (rsyslog's and
/// journalctl's `short-iso`), macOS's unified log (`2018-10-24 17:23:33.842651+0200`,
/// `log show --style syslog`) or RFC 3164 (`Nov 29 14:40:12`, postlogd and classic
/// syslog; local time, in the year that puts it closest before `now`).
pub fn line_time(line: &str, now: SystemTime) -> Option<SystemTime> {
    let first = line.split_whitespace().next()?;
    if first.len() >= 19 && first.as_bytes()[4] == b'-' {
        return rfc3339(first);
    }
    if first.len() == 10 && first.as_bytes()[4] == b'-' {
        let clock = line.split_whitespace().nth(1)?;
        return rfc3339(&format!("{first}T{clock}"));
    }
    let mut words = line.split_whitespace();
    let month_name = words.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as i32;
    let day: i32 = words.next()?.parse().ok()?;
    let clock = words.next()?;
    let mut hms = clock
        .split('.')
        .next()?
        .split(':')
        .map(|p| p.parse::<i32>());
    let (h, m, s) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let year = local_year(now);
    let this_year = local_time(year, month, day, h, m, s)?;
    // A line from late December read in January belongs to last year.
    if this_year > now + Duration::from_secs(86400) {
        local_time(year - 1, month, day, h, m, s)
    } else {
        Some(this_year)
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `2026-11-22T15:52:18.123+00:00`, `...Z`, or without a zone (then UTC).
fn rfc3339(text: &str) -> Option<SystemTime> {
    let base = humantime::parse_rfc3339_weak(text.get(..19)?).ok()?;
    let zone = text[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match zone.as_bytes().first() {
        Some(sign @ (b'+' | b'-')) => {
            let digits: String = zone[1..].chars().filter(char::is_ascii_digit).collect();
            let hours: u64 = digits.get(..2)?.parse().ok()?;
            let minutes: u64 = digits.get(2..4).unwrap_or("0").parse().ok()?;
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'+' {
                -(seconds as i64)
            } else {
                seconds as i64
            }
        }
        _ => 0,
    };
    if offset >= 0 {
        base.checked_add(Duration::from_secs(offset as u64))
    } else {
        base.checked_sub(Duration::from_secs(offset.unsigned_abs()))
    }
}

/// The local calendar year at `now`.
fn local_year(now: SystemTime) -> i32 {
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as libc::time_t;
    // SAFETY: localtime_r only writes the tm it is given.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&secs, &mut tm) };
    tm.tm_year + 1900
}

/// A local date and time (month from 0), as the host's time zone reads it.
pub fn local_time(year: i32, month: i32, day: i32, h: i32, m: i32, s: i32) -> Option<SystemTime> {
    // SAFETY: mktime reads and normalizes the tm it is given.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = year - 1900;
    tm.tm_mon = month;
    tm.tm_mday = day;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = s;
    tm.tm_isdst = -1;
    let secs = unsafe { libc::mktime(&mut tm) };
    (secs >= 0).then(|| UNIX_EPOCH + Duration::from_secs(secs as u64))
}

/// One log line of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// The daemon, e.g. `smtp`, `cleanup`, `qmgr`.
    pub program: &'a str,
    pub pid: Option<u32>,
    /// What follows `]: `.
    pub text: &'a str,
}

/// Splits a log line of the instance whose syslog_name is `syslog_name`; lines of
/// other instances and programs give `None`.
pub fn parse_line<'a>(line: &'a str, syslog_name: &str) -> Option<Line<'a>> {
    let mut search = 0;
    while let Some(found) = line[search..].find(syslog_name) {
        let start = search + found;
        search = start + syslog_name.len();
        let at_word_start = start == 0 || line[..start].ends_with(' ');
        let Some(rest) = line[search..].strip_prefix('/') else {
            continue;
        };
        if !at_word_start {
            continue;
        }
        let (tag, text) = rest.split_once(": ")?;
        let (program, pid) = match tag.split_once('[') {
            Some((p, pid)) => (p, pid.strip_suffix(']').and_then(|n| n.parse().ok())),
            None => (tag, None),
        };
        if program.is_empty() || program.contains(' ') {
            return None;
        }
        return Some(Line { program, pid, text });
    }
    None
}

/// `QUEUEID: message-id=<...>` (cleanup): the queue ID a Message-ID was given.
pub fn message_id(text: &str) -> Option<(&str, &str)> {
    let (queue_id, rest) = text.split_once(": ")?;
    let id = rest.strip_prefix("message-id=")?;
    Some((queue_id, id.trim()))
}

/// A delivery attempt: `QUEUEID: to=<ADDR>, relay=..., ..., dsn=X.Y.Z, status=WORD (DETAIL)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub queue_id: String,
    pub to: String,
    pub relay: String,
    pub dsn: String,
    /// sent, deferred, bounced, expired, undeliverable, ...
    pub status: String,
    /// The text in parentheses: the server's reply, or why not.
    pub detail: String,
}

pub fn delivery(text: &str) -> Option<Delivery> {
    let (queue_id, rest) = text.split_once(": ")?;
    let rest = rest.strip_prefix("to=<")?;
    let (to, rest) = rest.split_once('>')?;
    let field = |name: &str| -> String {
        rest.split(", ")
            .find_map(|f| f.strip_prefix(name))
            .map(|v| {
                v.split(' ')
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(',')
                    .to_string()
            })
            .unwrap_or_default()
    };
    let status_at = rest.find(" status=")?;
    let after = &rest[status_at + " status=".len()..];
    let (status, detail) = match after.split_once(' ') {
        Some((s, d)) => (s, d.trim()),
        None => (after, ""),
    };
    let detail = detail
        .strip_prefix('(')
        .and_then(|d| d.strip_suffix(')'))
        .unwrap_or(detail);
    Some(Delivery {
        queue_id: queue_id.to_string(),
        to: to.to_string(),
        relay: field("relay="),
        dsn: field("dsn="),
        status: status.trim_end_matches(',').to_string(),
        detail: detail.to_string(),
    })
}

/// The remote server's own words in a delivery detail: the text after "said: "
/// (without Postfix's "(in reply to ... command)"), or a whole reply that starts
/// with an SMTP code ("250 2.0.0 Ok: queued as ...").
pub fn server_reply(detail: &str) -> Option<String> {
    if let Some((_, said)) = detail.split_once(" said: ") {
        let said = said
            .rsplit_once(" (in reply to ")
            .map(|(s, _)| s)
            .unwrap_or(said);
        return Some(said.trim().to_string());
    }
    let code = detail.get(..3)?;
    (code.chars().all(|c| c.is_ascii_digit()) && detail[3..].starts_with([' ', '-']))
        .then(|| detail.trim().to_string())
}

/// Reads a growing log file from where it ended when following began.
pub struct Follower {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Follower {
    /// Starts at the current end of `path` (or at its start once it appears).
    pub fn from_end(path: &Path) -> Follower {
        Follower::at(path, std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
    }

    /// Starts `offset` bytes into `path` (where reading what was there ended).
    pub fn at(path: &Path, offset: u64) -> Follower {
        Follower {
            path: path.to_path_buf(),
            offset,
            partial: String::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The complete lines added since the last call.
    pub fn poll(&mut self) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Rotated or truncated: the new file starts afresh.
            self.offset = 0;
            self.partial.clear();
        }
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let mut lines: Vec<String> = self.partial.split('\n').map(str::to_string).collect();
        self.partial = lines.pop().unwrap_or_default();
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENT: &str = "Nov 22 15:52:12 relay postfix-relay/smtp[793]: 167E298C496: \
        to=<rcpt@dest.example>, relay=relay.test[127.0.0.1]:2587, delay=38, \
        delays=38/0.07/0.01/0.02, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as B734498C2B3)";
    const DEFERRED: &str = "2026-11-22T15:52:18.123+00:00 host postfix-relay/smtp[816]: \
        6BAEC98C553: to=<rcpt@dest.example>, relay=relay.test[127.0.0.1]:2587, delay=0.05, \
        delays=0.01/0.03/0.01/0, dsn=4.7.8, status=deferred (SASL authentication failed; \
        server relay.test[127.0.0.1] said: 535 5.7.8 Error: authentication failed: \
        authentication failure)";

    #[test]
    fn lines_of_one_instance() {
        let line = parse_line(SENT, "postfix-relay").unwrap();
        assert_eq!((line.program, line.pid), ("smtp", Some(793)));
        assert!(line.text.starts_with("167E298C496: to=<"));
        assert_eq!(parse_line(SENT, "postfix"), None);
        assert_eq!(parse_line(SENT, "postfix-rel"), None);
        let primary = "Nov 22 15:52:12 host postfix/cleanup[1]: ABC: message-id=<x@y>";
        let line = parse_line(primary, "postfix").unwrap();
        assert_eq!(message_id(line.text), Some(("ABC", "<x@y>")));
        assert_eq!(parse_line(primary, "postfix-relay"), None);
    }

    #[test]
    fn deliveries() {
        let sent = delivery(parse_line(SENT, "postfix-relay").unwrap().text).unwrap();
        assert_eq!(sent.queue_id, "167E298C496");
        assert_eq!(sent.to, "rcpt@dest.example");
        assert_eq!(sent.relay, "relay.test[127.0.0.1]:2587");
        assert_eq!(sent.dsn, "2.0.0");
        assert_eq!(sent.status, "sent");
        assert_eq!(sent.detail, "250 2.0.0 Ok: queued as B734498C2B3");
        assert_eq!(
            server_reply(&sent.detail).as_deref(),
            Some("250 2.0.0 Ok: queued as B734498C2B3")
        );
        let deferred = delivery(parse_line(DEFERRED, "postfix-relay").unwrap().text).unwrap();
        assert_eq!(deferred.status, "deferred");
        assert_eq!(deferred.dsn, "4.7.8");
        assert_eq!(
            server_reply(&deferred.detail).as_deref(),
            Some("535 5.7.8 Error: authentication failed: authentication failure")
        );
        let bounced = "host relay.test[127.0.0.1] said: 554 5.7.1 <a@b>: Recipient address \
                       rejected: Access denied (in reply to RCPT TO command)";
        assert_eq!(
            server_reply(bounced).as_deref(),
            Some("554 5.7.1 <a@b>: Recipient address rejected: Access denied")
        );
        assert_eq!(
            server_reply("TLS is required, but was not offered by host x[1.2.3.4]"),
            None
        );
        assert_eq!(delivery("ABC: removed"), None);
    }

    #[test]
    fn follows_appended_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "old line\n").unwrap();
        let mut f = Follower::from_end(&path);
        assert!(f.poll().is_empty());
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"one\ntw").unwrap();
        assert_eq!(f.poll(), ["one"]);
        file.write_all(b"o\n").unwrap();
        assert_eq!(f.poll(), ["two"]);
        std::fs::write(&path, "new\n").unwrap();
        assert_eq!(f.poll(), ["new"]);
    }

    #[test]
    fn timestamps() {
        let now = humantime::parse_rfc3339("2026-11-29T15:00:00Z").unwrap();
        let iso = line_time(DEFERRED, now).unwrap();
        assert_eq!(
            iso,
            humantime::parse_rfc3339("2026-11-22T15:52:18Z").unwrap()
        );
        let shifted = line_time("2026-11-22T16:52:18+01:00 host x/y[1]: z", now).unwrap();
        assert_eq!(shifted, iso);
        // RFC 3164 is local time: compare with the same local clock reading.
        let classic = line_time(SENT, now).unwrap();
        assert_eq!(classic, local_time(2026, 10, 22, 15, 52, 12).unwrap());
        // In January, a December line is last year's.
        let january = humantime::parse_rfc3339("2027-01-02T00:00:00Z").unwrap();
        let december = line_time("Dec 31 23:00:00 h postfix/qmgr[1]: x", january).unwrap();
        assert_eq!(december, local_time(2026, 11, 31, 23, 0, 0).unwrap());
        assert_eq!(line_time("garbage", now), None);
    }

    #[test]
    fn log_location() {
        assert_eq!(
            locate("/var/log/postfix-relay.log"),
            Some(PathBuf::from("/var/log/postfix-relay.log"))
        );
        assert_ne!(locate("/dev/stdout"), Some(PathBuf::from("/dev/stdout")));
    }
}
