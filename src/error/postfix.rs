//! What can go wrong with Postfix itself: not installed, a configuration postconf does
//! not report, an instance that is broken or does not serve, a queue that cannot be
//! read or changed. Each message says what to look at or run next.

#[derive(Debug, thiserror::Error)]
pub enum PostfixError {
    #[error(
        "Postfix is not installed (no postconf in {searched}). Install it first, \
         for example `apt-get install postfix` on Debian, then try again."
    )]
    Missing { searched: String },

    #[error(
        "postconf did not report {parameter}; this Postfix installation looks incomplete \
         (`postconf {parameter}` should print it; reinstall Postfix if it does not)"
    )]
    NotReported { parameter: String },

    #[error(
        "cannot understand mail_version {text:?} (from postconf); instancectl needs \
         Postfix's own postconf, version MAJOR.MINOR.PATCH"
    )]
    Version { text: String },

    #[error("{instance} is broken, so instancectl leaves it alone: {why}")]
    InstanceBroken { instance: String, why: String },

    #[error(
        "postmulti does not list {name} after creating it; `postmulti -l` shows the \
         instances it knows"
    )]
    NotListedAfterCreate { name: String },

    #[error(
        "cannot list the queue of {instance}, so the IDs cannot be looked up there; name \
         the instance that holds them: {cause}"
    )]
    QueueUnlisted { instance: String, cause: String },

    #[error(
        "{problem}; `postqueue -c {} -j` shows what it wrote", .config_dir.display()
    )]
    QueueListing {
        problem: String,
        config_dir: std::path::PathBuf,
    },

    #[error(
        "`{command}` did not say how many messages it touched; `instancectl queue` shows \
         what is queued now"
    )]
    PostsuperSilent { command: String },

    #[error(
        "{instance} logs nowhere instancectl can read: no maillog_file, no systemd journal, \
         and no {}; set one with `instancectl config {name} set maillog_file=/var/log/{log}.log`",
        .syslog_files.join(" or ")
    )]
    NoLog {
        instance: String,
        name: String,
        syslog_files: Vec<&'static str>,
        log: String,
    },

    #[error(
        "{instance} serves, but another program listens where it does: {}; the kernel \
         hands that program some of the connections (SO_REUSEPORT): stop it, or \
         give the instance another address or port", .others.join("; ")
    )]
    ForeignListener {
        instance: String,
        others: Vec<String>,
    },

    #[error(
        "{instance} did not come up within {seconds} s: {}; `instancectl logs {name}` \
         shows what Postfix said, `instancectl status {name}` what is missing",
        .reasons.join("; ")
    )]
    NotServing {
        instance: String,
        /// As commands take it (`-` for the primary).
        name: String,
        seconds: u64,
        reasons: Vec<String>,
    },
}
