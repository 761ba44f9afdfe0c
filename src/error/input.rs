//! What the user asked that cannot be done as asked: a bad name, address, setting,
//! selection, manifest or relay option. Each variant holds the offending value and its
//! message says what was wrong and how to write it instead; nothing was changed on the
//! host, and the process exits with status 2.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

const LISTEN_HINT: &str =
    "write --listen ADDR[:PORT], for example 127.0.1.1 or 192.0.2.10:25 or [2001:db8::1]:2525";
const RELAY_HOST_HINT: &str = "write --relay-host HOST:PORT, for example smtp.example.com:587, \
                               [192.0.2.25]:587 or [2001:db8::25]:587";
const REWRITE_HINT: &str = "write --rewrite-from LOCAL=ADDRESS, for example \
                            --rewrite-from root=you@gmail.com or --rewrite-from @host.example=you@gmail.com";

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    // Names and groups.
    #[error(
        "instance name {name:?} must start with \"postfix-\" (postmulti requires it), \
         for example postfix-{suggestion}"
    )]
    NameWithoutPrefix { name: String, suggestion: String },

    #[error("instance name {name:?} is {length} characters long; use at most {max}")]
    NameTooLong {
        name: String,
        length: usize,
        max: usize,
    },

    #[error(
        "instance name {name:?} may only use lower-case letters, digits and '-' after \
         \"postfix-\", starting and ending with a letter or digit, for example \
         postfix-{suggestion}"
    )]
    NameCharacters { name: String, suggestion: String },

    #[error(
        "group {group:?} must be 1 to 32 lower-case letters, digits or '-', starting \
         with a letter or digit (for example mta)"
    )]
    GroupName { group: String },

    // Listen addresses.
    #[error("--listen {text:?}: {problem}; {LISTEN_HINT}")]
    Listen {
        text: String,
        problem: AddressProblem,
    },

    #[error(
        "--listen {listen}: {ip} is not an address of this host, so Postfix could not bind \
         it; add it to an interface first (Linux: `ip addr add {ip} dev lo`; macOS: \
         `ifconfig lo0 alias {ip}`), or listen on an address this host has"
    )]
    ListenNotHere { listen: SocketAddr, ip: IpAddr },

    #[error(
        "--listen {listen}: this host cannot bind {ip} ({error}), so Postfix could not \
         either; {hint}"
    )]
    ListenUnbindable {
        listen: SocketAddr,
        ip: IpAddr,
        error: String,
        hint: &'static str,
    },

    #[error("--listen {listen} is given twice")]
    ListenTwice { listen: SocketAddr },

    #[error(
        "--listen {listen} is an IPv6 address, but --set inet_protocols={protocols} leaves \
         IPv6 out; drop that --set, or add ipv6 to it"
    )]
    Ipv6LeftOut {
        listen: SocketAddr,
        protocols: String,
    },

    #[error(
        "--listen asks for SMTP on {}, but --set master_service_disable={disabled} turns \
         {word} off; drop one of the two", .services.join(", ")
    )]
    ListenersDisabled {
        services: Vec<String>,
        disabled: String,
        word: String,
    },

    #[error(
        "{name} would listen on {mine}, but {other} already serves {theirs} ({service}){} \
         another --listen address or port)",
        if *.other_is_primary {
            " (make the primary a null client with `instancectl init --null-client`, or"
        } else {
            " (choose"
        }
    )]
    ListenerTaken {
        name: String,
        mine: String,
        other: String,
        other_is_primary: bool,
        theirs: String,
        service: String,
    },

    // Settings.
    #[error("--set {text:?}: expected PARAM=VALUE, for example --set message_size_limit=20480000")]
    SetWithoutValue { text: String },

    #[error(
        "--set {name}: the value contains a line break or NUL character; main.cf values \
         are one line (separate list items with commas or spaces)"
    )]
    SetMultiline { name: String },

    #[error("{name}: this parameter cannot be set this way: {why}")]
    ReservedParameter { name: String, why: &'static str },

    #[error("{name:?} is not a Postfix parameter name (lower-case letters, digits and '_')")]
    ParameterSpelling { name: String },

    #[error(
        "{name}: this Postfix does not know a parameter named {name:?} \
         (see `postconf -d` for the list; check the spelling)"
    )]
    UnknownParameter { name: String },

    #[error(
        "{name:?}: this Postfix knows no such parameter and main.cf does not \
         define it (see `postconf -d`; check the spelling)"
    )]
    UndefinedParameter { name: String },

    // Which instances.
    #[error("say which instances: a NAME (or -i NAME), -g GROUP, or -a for all of them")]
    NoSelection,

    #[error("no instance named {name:?}; {} (`-` is the primary)", known_instances(.known))]
    NoSuchInstance { name: String, known: Vec<String> },

    #[error("no instance is in group {group:?}; `instancectl list` shows the groups")]
    NoSuchGroup { group: String },

    #[error("no secondary instance is selected; `instancectl list` shows them")]
    NoSecondarySelected,

    #[error("the primary instance cannot be {done}: postmulti needs it to manage the others")]
    PrimaryRefused { done: String },

    #[error("{command} shows one instance at a time; name it (NAME or -i NAME)")]
    OneInstanceOnly { command: &'static str },

    #[error("name an instance, or use --check FILE")]
    PlistNeedsInstance,

    #[error("{name} is disabled; `instancectl enable {name}` enables and starts it")]
    Disabled { name: String },

    #[error(
        "{instance} is not running, so nothing would pick the message up; start it first \
         (`instancectl start {name}`)"
    )]
    NotRunningForTestMail { instance: String, name: String },

    #[error(
        "the primary instance runs under the distribution's {unit}; instancectl writes \
         no unit for it"
    )]
    PrimaryHasNoUnit { unit: String },

    #[error(
        "the primary instance runs on demand under Apple's own launchd job ({}); \
         instancectl never writes a LaunchDaemon for it", .jobs.join(" or ")
    )]
    PrimaryHasNoPlist { jobs: Vec<&'static str> },

    // Creating and destroying.
    #[error("multi-instance management is off; run `instancectl init` first")]
    MultiInstanceOff,

    #[error(
        "instance {name} already exists; pick another name, or `instancectl destroy {name}` first"
    )]
    InstanceExists { name: String },

    #[error(
        "{} already exists but belongs to no instance postmulti knows; move it away or \
         pick another name", .dir.display()
    )]
    DirectoryTaken { dir: PathBuf },

    #[error(
        "{name} has {total} queued message(s) ({}); let them be delivered (`postqueue -c {} -f`), \
         or pass --force-discard-queue to delete them with the instance",
        .by_queue.join(", "), .config_directory.display()
    )]
    QueueNotEmpty {
        name: String,
        total: u64,
        by_queue: Vec<String>,
        config_directory: PathBuf,
    },

    #[error(
        "{question}: this cannot be undone, and there is no terminal to ask; pass --yes \
         to go ahead (nothing was changed)"
    )]
    NoTerminalToConfirm { question: String },

    #[error("not confirmed; nothing was changed")]
    NotConfirmed,

    // Manifests.
    #[error("cannot read the manifest {}: {source}; check the path given to -f", .path.display())]
    ManifestUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{message}")]
    ManifestSyntax { message: String },

    #[error("instance {name} appears twice; each name once")]
    ManifestNameTwice { name: String },

    #[error("{name} and {other} both listen on {listen}; give each its own address or port")]
    ManifestListenTwice {
        name: String,
        other: String,
        listen: SocketAddr,
    },

    #[error("{}: {source}", .path.display())]
    InManifest {
        path: PathBuf,
        source: Box<InputError>,
    },

    #[error(
        "{name}: the manifest moves it from {} to {}; apply does not move a running \
         instance's listeners: `instancectl destroy {name}` and apply again",
        .recorded.join(", "), .wanted.join(", ")
    )]
    ManifestMovesListeners {
        name: String,
        recorded: Vec<String>,
        wanted: Vec<String>,
    },

    // Queues.
    #[error("flush retries the deferred queue; --queue does not apply to it")]
    FlushTakesNoQueue,

    #[error("release takes messages out of the hold queue; --queue does not apply to it")]
    ReleaseTakesNoQueue,

    #[error(
        "postsuper does not work on the corrupt queue; look at those files by hand \
         (postcat) and remove them with rm"
    )]
    CorruptQueue,

    #[error(
        "{id:?} is not a queue ID; queue IDs are letters and digits, as `instancectl \
         queue NAME` lists them (e.g. E370454E0F2)"
    )]
    QueueId { id: String },

    #[error(
        "{name} is an instance: name it before the action, as in `instancectl queue {name} \
         {action} {rest}`"
    )]
    InstanceAfterAction {
        name: String,
        action: &'static str,
        /// What else followed the action (the IDs, `--all`), or `ID...`.
        rest: String,
    },

    #[error(
        "no selected instance has queued message(s) {}{}; `instancectl queue` lists them \
         (nothing was changed)",
        .ids.join(", "),
        .queue.map(|q| format!(" in the {q} queue")).unwrap_or_default()
    )]
    MessagesNotFound {
        ids: Vec<String>,
        queue: Option<&'static str>,
    },

    // Other options.
    #[error("{option} must be a number of seconds from {min} to 86400, not {value}")]
    Seconds {
        option: String,
        value: f64,
        min: f64,
    },

    #[error("--timeout must be at least 1 second")]
    TimeoutTooShort,

    #[error("{option} {address:?} is not an email address; write it as user@example.com")]
    EmailAddress {
        option: &'static str,
        address: String,
    },

    #[error("--since {text:?} is too long ago; give a shorter duration, such as 2days")]
    SinceTooLongAgo { text: String },

    #[error(
        "--since {text:?}: give a duration ago (10m, 2h, 1day) or a local date and time \
         (2026-11-29 14:00 or 2026-11-29 14:00:05)"
    )]
    Since { text: String },

    #[error("cannot read {}; check the files given to --check", .unreadable.join("; "))]
    PlistsUnreadable { unreadable: Vec<String> },

    #[error(
        "cannot read the LaunchDaemons directory {}: {source} (--launchd-dir)",
        .dir.display()
    )]
    LaunchDaemonsUnreadable {
        dir: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "--label-prefix {prefix:?} must be a reverse-DNS prefix of letters, digits, '.', \
         '-' and '_', such as org.postfix. or com.example.mail."
    )]
    LabelPrefix { prefix: String },

    #[error("--log-dir {} must be an absolute path (launchd opens it from /)", .dir.display())]
    LogDirRelative { dir: PathBuf },

    #[error("the LaunchDaemons directory {} does not exist (--launchd-dir)", .dir.display())]
    NoLaunchDaemonsDir { dir: PathBuf },

    #[error("supervise has no dry run; `instancectl reconcile --dry-run` shows what would change")]
    SuperviseDryRun,

    // Relay options.
    #[error("--relay-host {text:?}: {problem}; {RELAY_HOST_HINT}")]
    RelayHost {
        text: String,
        problem: AddressProblem,
    },

    #[error(
        "--provider ses needs the SES region, whose SMTP endpoint and credentials \
         differ per region: for example --provider ses:us-east-1"
    )]
    SesWithoutRegion,

    #[error(
        "--provider {text:?} is not a provider instancectl knows; use one of \
         {known} (custom takes --relay-host HOST:PORT)"
    )]
    UnknownProvider { text: String, known: &'static str },

    #[error(
        "--provider ses:{region}: {region:?} is not an AWS region name; write it as SES \
         lists it, for example ses:us-east-1 or ses:eu-west-1"
    )]
    SesRegion { region: String },

    #[error(
        "--provider custom needs --relay-host HOST:PORT, for example --relay-host smtp.example.com:587"
    )]
    CustomWithoutHost,

    #[error(
        "{instance} {now}: give --provider ({known}), --sasl-user and \
         --sasl-password-file or --sasl-password-stdin"
    )]
    NoRelayHost {
        instance: String,
        now: String,
        known: &'static str,
    },

    #[error(
        "--provider {provider} authenticates with the user name {fixed:?} and the API \
         key as the password; leave out --sasl-user or write --sasl-user {fixed}"
    )]
    ProviderFixesUser {
        provider: String,
        fixed: &'static str,
    },

    #[error("give the SASL user name at {provider} with --sasl-user USER")]
    NoSaslUser { provider: String },

    #[error(
        "--sasl-user {user:?}: a SASL user name cannot be empty or contain ':' or white \
         space (the password map holds USER:PASSWORD)"
    )]
    SaslUser { user: String },

    #[error(
        "{why}: pass --sasl-password-file FILE or --sasl-password-stdin (never on the \
         command line, where other users could read it)"
    )]
    NoPassword { why: String },

    #[error("{from}: {problem}")]
    Password {
        from: String,
        problem: PasswordProblem,
    },

    #[error("{from}: {doing}: {error}")]
    PasswordUnreadable {
        from: String,
        doing: &'static str,
        error: std::io::Error,
    },

    #[error("--rewrite-from {text:?}: {REWRITE_HINT}")]
    RewriteWithoutAddress { text: String },

    #[error("--rewrite-from {text:?}: {value:?} is not {expected}; {REWRITE_HINT}")]
    Rewrite {
        text: String,
        value: String,
        expected: &'static str,
    },

    #[error("--rewrite-from {local} is given twice")]
    RewriteTwice { local: String },

    #[error(
        "no CA certificate bundle found on this host (looked for {}); install the \
         CA certificates (Debian: apt-get install ca-certificates) or pass \
         --tls-ca-file FILE", .searched.join(", ")
    )]
    NoCaBundle { searched: Vec<&'static str> },

    #[error("--tls-ca-file {}: {problem}", .path.display())]
    CaFile { path: PathBuf, problem: String },

    #[error(
        "the relay host {ip} is an IP address, and Postfix verifies a certificate \
         against a host name: give --relay-host by name, or pass \
         --tls-security-level encrypt to encrypt without verifying the server (then \
         anyone who can intercept the connection can read the password)"
    )]
    RelayHostIsIp { ip: IpAddr },

    #[error(
        "{} exists and was not written by instancectl; move it aside (instancectl \
         would replace it), then try again", .path.display()
    )]
    MapNotOurs { path: PathBuf },

    #[error(
        "--provider, --sasl-user and the other relay options need --role relay; to make \
         an existing instance relay, use `instancectl relay set {name}`"
    )]
    RelayOptionsNeedRelayRole { name: String },

    #[error(
        "nothing to change: give --provider, --relay-host, --sasl-user, \
         --sasl-password-file/--sasl-password-stdin, --rewrite-from, --no-rewrite-from, \
         --tls-ca-file or --tls-security-level"
    )]
    NothingToChange,
}

/// What is wrong with an address typed as `ADDR[:PORT]` or `HOST[:PORT]`.
#[derive(Debug, thiserror::Error)]
pub enum AddressProblem {
    #[error("missing ']'")]
    MissingBracket,
    #[error("expected ':PORT' after ']'")]
    NoPortAfterBracket,
    #[error("an IPv6 address needs brackets when a port follows")]
    Ipv6WithoutBrackets,
    #[error("port {0:?} must be a number from 1 to 65535")]
    Port(String),
    #[error(
        "{0:?} is not an IP address (host names are not accepted, since Postfix binds addresses)"
    )]
    NotAnIp(String),
    #[error("{0} cannot be listened on; name one address of this host")]
    NotListenable(IpAddr),
    #[error("{0} is not the address of a server")]
    NotAServer(IpAddr),
    #[error("{0:?} is not a host name or IP address")]
    NotAHostName(String),
}

/// Why a SASL password cannot go into the password map.
#[derive(Debug, thiserror::Error)]
pub enum PasswordProblem {
    #[error("the password is empty")]
    Empty,
    #[error(
        "the password contains a line break or another control character, \
         which a Postfix lookup table cannot hold (is there more than one line?)"
    )]
    ControlCharacter,
    #[error(
        "the password begins or ends with white space, which postmap would \
         strip; the relay would then reject it"
    )]
    SurroundingSpace,
    #[error("the password is not UTF-8 text")]
    NotUtf8,
    #[error(
        "more than {0} bytes, which is no password; give the file or \
         input that holds only the password"
    )]
    TooLong(usize),
    #[error(
        "not a regular file (a FIFO, device or directory); write the \
         password to a file, or pipe it to --sasl-password-stdin"
    )]
    NotARegularFile,
}

fn known_instances(known: &[String]) -> String {
    if known.is_empty() {
        "there are no secondary instances yet".to_string()
    } else {
        format!("the instances are: {}", known.join(", "))
    }
}
