//! Which macOS release the emulator answers as.
//!
//! launchctl's words and launchd's timing changed between releases, and a driver written
//! for one generation fails on the other (the unindented `print-disabled` of macOS 12 and
//! older is not what macOS 13 and later print). So the emulator is told which release to
//! be (`--macos 12`, `--macos 13`, `--macos 10.11`, ...), and every difference it knows of
//! is decided here, each from recorded output (tests/data/launchctl):
//!
//! - `print-disabled`: unindented with `=> true/false` up to macOS 12 (the system
//!   domain prints no `login item associations` block after it, recorded on 12.6.5);
//!   from 13 a blank first line, the block indented by a tab,
//!   entries by two, `=> disabled/enabled`.
//! - `print` of a job: from 13 `type = LaunchDaemon` and `job state` lines (neither is
//!   recorded on 10.10, 10.14/15, 11 or 12).
//! - `print` of an unknown service: from 13 `Bad request.` comes first.
//! - `bootout`: from 13 it returns 0 at once while the job shows `SIGTERMed`, and a
//!   bootstrap of the label in that window fails with 37; older releases return when the
//!   job is gone (a bootstrap meanwhile fails with 5).
//! - Apple's Postfix job: `org.postfix.master` up to 10.11, `com.apple.postfix.master`
//!   since 10.12.

use std::fmt;

/// A macOS release, as `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Macos {
    pub major: u32,
    pub minor: u32,
}

impl Macos {
    /// What the emulator answers as when no release is named: a current one.
    pub const DEFAULT: Macos = Macos {
        major: 15,
        minor: 0,
    };

    /// Reads `13`, `12.7` or `10.11`.
    pub fn parse(text: &str) -> Result<Macos, String> {
        let bad = || format!("--macos {text:?}: expected a release such as 12, 13 or 10.11");
        let (major, minor) = text.split_once('.').unwrap_or((text, "0"));
        let major: u32 = major.parse().map_err(|_| bad())?;
        let minor: u32 = minor.parse().map_err(|_| bad())?;
        if major < 10 {
            return Err(bad());
        }
        Ok(Macos { major, minor })
    }

    /// macOS 13 (Ventura) or later: the newer layouts and the asynchronous bootout.
    pub fn is_13_or_later(self) -> bool {
        self.major >= 13
    }

    /// The label of Apple's own on-demand Postfix job on this release.
    pub fn apple_postfix_label(self) -> &'static str {
        if self
            < (Macos {
                major: 10,
                minor: 12,
            })
        {
            "org.postfix.master"
        } else {
            "com.apple.postfix.master"
        }
    }
}

impl fmt::Display for Macos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_and_their_differences() {
        let ventura = Macos::parse("13").unwrap();
        let monterey = Macos::parse("12.7").unwrap();
        let el_capitan = Macos::parse("10.11").unwrap();
        assert!(ventura.is_13_or_later() && !monterey.is_13_or_later());
        assert_eq!(monterey.apple_postfix_label(), "com.apple.postfix.master");
        assert_eq!(
            Macos::parse("10.12").unwrap().apple_postfix_label(),
            "com.apple.postfix.master"
        );
        assert_eq!(el_capitan.apple_postfix_label(), "org.postfix.master");
        assert!(Macos::parse("thirteen").is_err());
        assert!(Macos::parse("9").is_err());
    }
}
