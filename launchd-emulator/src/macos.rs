//! Which macOS release the emulator answers as.
//!
//! launchctl's words and launchd's timing changed between releases, and a driver written
//! for one generation fails on another (the unindented `print-disabled` of macOS 12 and
//! older is not what macOS 13 and later print; 13 to 15 refuse a bootstrap during a
//! bootout with 37, 26 with 5 and for seconds after it). So the emulator is told which
//! release to be (`--macos 12`, `--macos 13`, `--macos 26`, `--macos 10.11`, ...), and
//! every difference it knows of is decided here, each from recorded output
//! (tests/data/launchctl):
//!
//! - `print-disabled`: unindented with `=> true/false` up to macOS 12 (the system
//!   domain prints no `login item associations` block after it, recorded on 12.6.5);
//!   from 13 a blank first line, the block indented by a tab,
//!   entries by two, `=> disabled/enabled`.
//! - `print` of a job: from 13 `type = LaunchDaemon` and `job state` lines (neither is
//!   recorded on 10.10, 10.14/15, 11 or 12).
//! - `print` of an unknown service: from 13 `Bad request.` comes first.
//! - `bootout`: from 13 it returns 0 at once while the job shows `SIGTERMed` (with its
//!   old pid: print-filtered-sigtermed-pid-bilbo, 26), and a bootstrap of the label in
//!   that window fails with 37 on 13 to 15 (error-bootstrap-37-homebrew-core-132781,
//!   13.4) but with 5 from 26 on (error-bootstrap-5-sigtermed-window-codex-remote-914
//!   and print-filtered-sigtermed-after-bootout-codex-remote-916, 26.5.2); older
//!   releases return when the job is gone (a bootstrap meanwhile fails with 5).
//! - after a bootout: from 26 launchd goes on refusing a bootstrap of the label with 5
//!   for seconds after `print` no longer finds it (about 5 s:
//!   error-bootstrap-5-settle-window-headroom-1289, 26.5.1, ten refusals and then the
//!   job loaded; cc-connect #35 on 26.3, where the second try succeeded). How long is
//!   the emulator's `--bootout-settle` (see [`crate::supervisor::BOOTOUT_SETTLE`]); no
//!   earlier release is recorded doing it.
//! - Apple's Postfix job: `org.postfix.master` up to 10.11, `com.apple.postfix.master`
//!   since 10.12.

use crate::errors::{EALREADY, EIO};
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

    /// macOS 26 (Tahoe; the release after 15) or later.
    fn is_26_or_later(self) -> bool {
        self.major >= 26
    }

    /// The error a bootstrap gets while a bootout of its label is still stopping the
    /// job: 37 (`Operation already in progress`) on 13 to 15, 5 (`Input/output error`)
    /// from 26 on and up to 12 (where only another client can meet the window, since
    /// bootout returns once the job is gone).
    pub fn bootstrap_during_bootout(self) -> i32 {
        if self.is_13_or_later() && !self.is_26_or_later() {
            EALREADY
        } else {
            EIO
        }
    }

    /// Whether launchd goes on refusing a bootstrap of a label (with 5) for a while
    /// after its bootout has finished and `print` no longer finds it: from 26 on.
    pub fn settles_after_bootout(self) -> bool {
        self.is_26_or_later()
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
        // The bootout window and what follows it: three generations.
        let sequoia = Macos::parse("15.7").unwrap();
        let tahoe = Macos::parse("26.5").unwrap();
        assert_eq!(monterey.bootstrap_during_bootout(), EIO);
        assert_eq!(ventura.bootstrap_during_bootout(), EALREADY);
        assert_eq!(sequoia.bootstrap_during_bootout(), EALREADY);
        assert_eq!(tahoe.bootstrap_during_bootout(), EIO);
        assert!(tahoe.settles_after_bootout());
        assert!(!sequoia.settles_after_bootout() && !monterey.settles_after_bootout());
        assert!(Macos::parse("thirteen").is_err());
        assert!(Macos::parse("9").is_err());
    }
}
