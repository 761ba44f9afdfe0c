//! End-to-end: relay instances against a real relay on loopback. The relay is a second
//! Postfix instance set up as a submission server that requires STARTTLS (with a
//! certificate made by the test's own CA) and SASL AUTH (Cyrus sasldb), and delivers
//! what it accepts to a maildir. Every test also hunts for the password in every
//! output, every file the sandbox wrote and every process's arguments and environment.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::{Run, Sandbox};

const USER: &str = "relayuser@relay.test";
/// The server's own credential store holds the password in clear; it is the only file
/// besides the relay's password map (and its index) that may.
const SERVER_SASLDB: &str = "/etc/postfix-sub/sasl/sasldb2";
const CA: &str = "/etc/relay-test/ca.crt";
const WAIT: Duration = Duration::from_secs(60);

/// A password with the characters a map could trip over: ':' (user:password), '#'
/// (comments), a space; unique per test so parallel tests cannot see each other's.
fn password(test: &str) -> String {
    format!("Rel4y:{test}#s3cret pw")
}

/// Sets up the submission server at relay.test:2587 (127.0.0.1) that accepts `USER`
/// with `password` after STARTTLS only, and delivers mail for dest.example to
/// /var/mail/vhosts/inbox.
fn start_relay_server(sb: &Sandbox, password: &str) {
    start_server(sb, password, false)
}

/// With `implicit_tls`, the server also serves port 465 with TLS from the first byte.
/// instancectl's start check and the supervisor's probes expect a plain SMTP greeting
/// on every listener, which such a service does not give, so that server runs in a
/// sandbox without a supervisor, started by Postfix itself.
fn start_server(sb: &Sandbox, password: &str, implicit_tls: bool) {
    let (extra_service, start) = if implicit_tls {
        (
            "postconf -c $D -M '127.0.0.1:465/inet = 127.0.0.1:465 inet n - n - - smtpd \
             -o smtpd_tls_wrappermode=yes'\n",
            "postfix -c $D start",
        )
    } else {
        ("", "instancectl start postfix-sub")
    };
    let script = format!(
        r#"set -e
mkdir -p /etc/relay-test && cd /etc/relay-test
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout ca.key -out ca.crt -subj '/CN=instancectl test CA' 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout server.key -out server.csr -subj '/CN=relay.test' 2>/dev/null
printf 'subjectAltName=DNS:relay.test\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
  -out server.crt -extfile ext 2>/dev/null
echo '127.0.0.1 relay.test' >> /etc/hosts
postmulti -I postfix-sub -e create
D=/etc/postfix-sub
# Debian's Postfix reads Cyrus SASL's smtpd.conf from $config_directory/sasl.
mkdir -p $D/sasl
printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {SERVER_SASLDB}\n' > $D/sasl/smtpd.conf
saslpasswd2 -p -c -f {SERVER_SASLDB} -u relay.test relayuser
chown root:postfix {SERVER_SASLDB}; chmod 640 {SERVER_SASLDB}
postconf -c $D -e 'master_service_disable =' 'authorized_submit_users = root' \
  'myhostname = sub.relay.test' 'inet_interfaces = 127.0.0.1' \
  'smtpd_tls_cert_file = /etc/relay-test/server.crt' 'smtpd_tls_key_file = /etc/relay-test/server.key' \
  'smtpd_tls_security_level = encrypt' 'smtpd_tls_auth_only = yes' \
  'smtpd_sasl_auth_enable = yes' 'smtpd_sasl_local_domain = relay.test' \
  'smtpd_sasl_authenticated_header = yes' \
  'smtpd_relay_restrictions = permit_sasl_authenticated, reject' \
  'smtpd_recipient_restrictions = permit_sasl_authenticated, reject' \
  'maillog_file = /var/log/postfix-sub.log' 'mydestination =' \
  'virtual_mailbox_domains = dest.example' 'virtual_mailbox_base = /var/mail/vhosts' \
  'virtual_mailbox_maps = static:inbox/' 'virtual_uid_maps = static:5000' 'virtual_gid_maps = static:5000'
postconf -c $D -F 'smtp/inet/chroot = n' 'smtp/inet/service = 127.0.0.1:2587'
{extra_service}mkdir -p /var/mail/vhosts && chown 5000:5000 /var/mail/vhosts
postmulti -i postfix-sub -e enable
{start}
"#
    );
    let run = sb.sh_input(&script, &format!("{password}\n"));
    assert_eq!(run.code, 0, "relay server setup failed:\n{run:#?}");
    assert!(
        sb.wait_for("exec 3<>/dev/tcp/127.0.0.1/2587", WAIT),
        "the relay server does not answer on 127.0.0.1:2587"
    );
}

/// Watches every process's arguments and environment for `secret` until dropped.
struct ArgvWatch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl ArgvWatch {
    fn start(secret: &str) -> ArgvWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let needle = secret.as_bytes().to_vec();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let Ok(entries) = std::fs::read_dir("/proc") else {
                    break;
                };
                for entry in entries.flatten() {
                    for what in ["cmdline", "environ"] {
                        if let Ok(bytes) = std::fs::read(entry.path().join(what))
                            && contains(&bytes, &needle)
                        {
                            seen.push(format!("{}/{what}", entry.path().display()));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        });
        ArgvWatch {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file the sandbox wrote under /etc and /var that holds `secret`, as the
/// sandbox sees its path.
fn files_containing(sb: &Sandbox, secret: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for top in ["etc", "var"] {
        let upper = sb.root().join(top).join("upper");
        walk(&upper, &mut |path| {
            if let Ok(bytes) = std::fs::read(path)
                && contains(&bytes, secret.as_bytes())
            {
                let inside = path.strip_prefix(&upper).unwrap();
                found.insert(format!("/{top}/{}", inside.display()));
            }
        });
    }
    found
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&entry.path(), f);
        } else if kind.is_file() {
            f(&entry.path());
        }
    }
}

/// The secret is nowhere but in the relay's password map and its index (both 0600,
/// owned by root) and the server's own store; no temporary file was left behind.
#[track_caller]
fn assert_secret_kept(sb: &Sandbox, secret: &str, map_dir: &str, runs: &[&Run]) {
    for run in runs {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "the password appears in output:\n{run:#?}"
        );
    }
    assert!(
        !sb.supervisor_log().contains(secret),
        "the password appears in the supervisor's log"
    );
    let mut expected: BTreeSet<String> = [
        format!("{map_dir}/sasl_passwd"),
        format!("{map_dir}/sasl_passwd.db"),
    ]
    .into();
    if sb.path_in_upper(SERVER_SASLDB).exists() {
        expected.insert(SERVER_SASLDB.to_string());
    }
    assert_eq!(files_containing(sb, secret), expected);
    for file in ["sasl_passwd", "sasl_passwd.db"] {
        let path = sb.path_in_upper(&format!("{map_dir}/{file}"));
        let meta = std::fs::metadata(&path).unwrap();
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "{file}");
        assert_eq!(meta.uid(), 0, "{file}");
    }
    let mut leftovers = Vec::new();
    for top in ["etc", "var"] {
        walk(&sb.root().join(top).join("upper"), &mut |p| {
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".instancectl-")
            {
                leftovers.push(p.display().to_string());
            }
        });
    }
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

fn initialized_with_server(secret: &str) -> Sandbox {
    let sb = Sandbox::new().null_client();
    start_relay_server(&sb, secret);
    sb
}

fn create_relay(sb: &Sandbox, extra: &str, password: &str) -> Run {
    sb.sh_input(
        &format!(
            "instancectl -v create postfix-relay --role relay --provider custom \
             --relay-host relay.test:2587 --sasl-user {USER} --sasl-password-stdin \
             --tls-ca-file {CA} --set smtp_host_lookup=native {extra}"
        ),
        &format!("{password}\n"),
    )
}

#[test]
fn mail_arrives_authenticated_and_the_password_stays_secret() {
    let secret = password("arrives");
    let sb = initialized_with_server(&secret);

    let dry = sb.sh_input(
        &format!(
            "instancectl create postfix-relay --role relay --provider custom \
             --relay-host relay.test:2587 --sasl-user {USER} --sasl-password-stdin \
             --tls-ca-file {CA} --dry-run"
        ),
        &secret,
    );
    assert_eq!(dry.code, 0, "{dry:#?}");
    assert!(
        dry.stdout.contains(
            "would write: /etc/postfix-relay/sasl_passwd (mode 0600, owner root; contents not shown"
        ),
        "{dry:#?}"
    );
    assert!(
        dry.stdout
            .contains("would run: /usr/sbin/postmap hash:/etc/postfix-relay/sasl_passwd"),
        "{dry:#?}"
    );
    assert_ne!(sb.sh("test -e /etc/postfix-relay").code, 0);

    // The watch itself sees a password on a command line.
    let probe = ArgvWatch::start(&secret);
    sb.sh(&format!("sleep 0.3; true '{secret}'; sleep 0.3"))
        .ok();
    assert!(!probe.finish().is_empty(), "the process watch sees nothing");

    let watch = ArgvWatch::start(&secret);
    let created = create_relay(&sb, "--rewrite-from root=sender@relay.test", &secret);
    assert_eq!(created.code, 0, "{created:#?}");
    assert!(
        created
            .stdout
            .contains("relay [relay.test]:2587 (custom), STARTTLS with the certificate verified"),
        "{created:#?}"
    );
    let settings = sb
        .sh(
            "postconf -c /etc/postfix-relay -h relayhost smtp_tls_security_level \
             smtp_sasl_password_maps smtp_generic_maps smtp_sasl_security_options \
             smtp_tls_CAfile maillog_file",
        )
        .ok();
    assert_eq!(
        settings.stdout,
        format!(
            "[relay.test]:2587\nsecure\nhash:/etc/postfix-relay/sasl_passwd\n\
             hash:/etc/postfix-relay/generic\nnoanonymous\n{CA}\n/var/log/postfix-relay.log\n"
        )
    );

    let sent = sb.ctl("test-mail postfix-relay --to rcpt@dest.example");
    let show = sb.ctl("relay show postfix-relay --json").ok();
    let leaked_to_processes = watch.finish();
    assert!(
        leaked_to_processes.is_empty(),
        "the password was in {leaked_to_processes:?}"
    );
    assert_eq!(sent.code, 0, "{sent:#?}");
    assert!(sent.stdout.contains("queued as "), "{sent:#?}");
    assert!(
        sent.stdout
            .contains("TLS: Verified TLS connection established to relay.test[127.0.0.1]:2587"),
        "{sent:#?}"
    );
    assert!(
        sent.stdout
            .contains("DELIVERED: to <rcpt@dest.example> via relay.test[127.0.0.1]:2587"),
        "{sent:#?}"
    );
    assert!(
        sent.stdout
            .contains("server replied: 250 2.0.0 Ok: queued as "),
        "{sent:#?}"
    );

    // The server saw the right user, and the message arrived with the sender rewritten.
    let server_log = sb.sh("cat /var/log/postfix-sub.log").ok().stdout;
    assert!(
        server_log.contains(&format!("sasl_method=PLAIN, sasl_username={USER}")),
        "{server_log}"
    );
    assert!(
        sb.wait_for(
            "grep -rl 'instancectl-test' /var/mail/vhosts/inbox/new",
            WAIT
        ),
        "nothing arrived"
    );
    let arrived = sb.sh("cat /var/mail/vhosts/inbox/new/*").ok().stdout;
    assert!(
        arrived.contains(&format!("(Authenticated sender: {USER})")),
        "{arrived}"
    );
    assert!(
        arrived.contains("Return-Path: <sender@relay.test>"),
        "{arrived}"
    );
    assert!(
        arrived.contains("From: root <sender@relay.test>"),
        "{arrived}"
    );

    let summary: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(summary["relay_host"], "[relay.test]:2587");
    assert_eq!(summary["credentials_present"], true);
    assert_eq!(summary["sasl_user"], USER);
    assert_eq!(summary["sender_rewrites"], 1);

    let list = sb.ctl("list --json").ok();
    assert!(list.stdout.contains("\"role\": \"relay\""), "{list:#?}");
    let status = sb.ctl("status postfix-relay --json");
    let report: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let relay = &report["instances"][0]["relay"];
    assert_eq!(relay["relay_host"], "[relay.test]:2587", "{status:#?}");
    assert_eq!(relay["credentials_present"], true, "{status:#?}");
    let verbose = sb.ctl("status postfix-relay -v");
    assert!(
        verbose.stdout.contains("credentials present"),
        "{verbose:#?}"
    );
    assert_secret_kept(
        &sb,
        &secret,
        "/etc/postfix-relay",
        &[
            &dry, &created, &settings, &sent, &show, &list, &status, &verbose,
        ],
    );
}

#[test]
fn a_wrong_password_is_an_authentication_failure_until_it_is_fixed() {
    let secret = password("wrong");
    let sb = initialized_with_server(&secret);
    let wrong = format!("{secret}-not");
    create_relay(&sb, "", &wrong).ok();

    let sent = sb.ctl("test-mail postfix-relay --to rcpt@dest.example");
    assert_eq!(sent.code, 1, "{sent:#?}");
    assert!(
        sent.stdout.contains("DEFERRED: to <rcpt@dest.example>"),
        "{sent:#?}"
    );
    assert!(
        sent.stdout.contains("reason: SASL authentication failed"),
        "{sent:#?}"
    );
    assert!(
        sent.stdout
            .contains("server replied: 535 5.7.8 Error: authentication failed"),
        "{sent:#?}"
    );
    assert!(
        sent.stdout.contains("an authentication failure"),
        "{sent:#?}"
    );
    assert!(sent.stdout.contains("stays in the queue"), "{sent:#?}");
    // The same deferral as a document: the people's lines go to stderr.
    let sent_json = sb.ctl("test-mail postfix-relay --to rcpt@dest.example --json");
    assert_eq!(sent_json.code, 1, "{sent_json:#?}");
    let doc: serde_json::Value = serde_json::from_str(&sent_json.stdout).unwrap();
    assert_eq!(doc["schema"], "instancectl.test-mail/v1", "{doc}");
    assert_eq!(doc["name"], "postfix-relay", "{doc}");
    assert_eq!(doc["to"], "rcpt@dest.example", "{doc}");
    assert_eq!(doc["outcome"], "deferred", "{doc}");
    assert_eq!(doc["ok"], false, "{doc}");
    assert_eq!(doc["error"], serde_json::Value::Null, "{doc}");
    let deferred_qid = doc["queue_id"].as_str().unwrap();
    assert!(
        sent_json
            .stderr
            .contains(&format!("queued as {deferred_qid}")),
        "{sent_json:#?}"
    );
    assert!(
        doc["reason"]
            .as_str()
            .unwrap()
            .starts_with("SASL authentication failed"),
        "{doc}"
    );
    assert!(
        doc["reply"]
            .as_str()
            .unwrap()
            .starts_with("535 5.7.8 Error: authentication failed"),
        "{doc}"
    );
    assert!(
        sent_json.stderr.contains("an authentication failure"),
        "{sent_json:#?}"
    );

    let show = sb.ctl("relay show postfix-relay").ok();
    assert!(
        show.stdout
            .contains(&format!("credentials: present (user {USER})")),
        "{show:#?}"
    );
    assert!(
        show.stdout.contains(
            "2 message(s) deferred): 4.7.8 SASL authentication failed; \
                              server relay.test[127.0.0.1] said: 535 5.7.8"
        ),
        "{show:#?}"
    );

    // The right password, given again, and the deferred message goes out.
    let watch = ArgvWatch::start(&secret);
    let fixed = sb.sh_input(
        "instancectl -v relay set postfix-relay --sasl-password-stdin --json",
        &format!("{secret}\n"),
    );
    let leaked = watch.finish();
    assert!(leaked.is_empty(), "the password was in {leaked:?}");
    assert_eq!(fixed.code, 0, "{fixed:#?}");
    assert!(
        fixed.stderr.contains("2 deferred message(s) wait"),
        "{fixed:#?}"
    );
    let doc: serde_json::Value = serde_json::from_str(&fixed.stdout).unwrap();
    assert_eq!(doc["schema"], "instancectl.relay-change/v1", "{doc}");
    assert_eq!(doc["name"], "postfix-relay", "{doc}");
    assert_eq!(doc["relay_host"], "[relay.test]:2587", "{doc}");
    assert_eq!(doc["tls_security_level"], "secure", "{doc}");
    assert_eq!(doc["sasl_user"], USER, "{doc}");
    assert_eq!(doc["credentials_written"], true, "{doc}");
    // Only the password changed.
    assert_eq!(doc["changed"], serde_json::json!([]), "{doc}");
    assert_eq!(doc["result"], "reloaded", "{doc}");
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["error"], serde_json::Value::Null, "{doc}");
    sb.sh("postqueue -c /etc/postfix-relay -f").ok();
    assert!(
        sb.wait_for(
            &format!("grep -q 'sasl_username={USER}' /var/log/postfix-sub.log"),
            WAIT
        ),
        "the deferred message never authenticated"
    );
    assert!(
        sb.wait_for("test -z \"$(postqueue -c /etc/postfix-relay -j)\"", WAIT),
        "the queue did not empty"
    );
    let again = sb.ctl("test-mail postfix-relay --to rcpt@dest.example --json");
    assert_eq!(again.code, 0, "{again:#?}");
    let doc: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(doc["outcome"], "delivered", "{doc}");
    assert_eq!(doc["relay"], "relay.test[127.0.0.1]:2587", "{doc}");
    assert!(
        doc["reply"]
            .as_str()
            .unwrap()
            .starts_with("250 2.0.0 Ok: queued as "),
        "{doc}"
    );
    assert_eq!(doc["reason"], serde_json::Value::Null, "{doc}");
    assert_eq!(doc["ok"], true, "{doc}");
    let show_after = sb.ctl("relay show postfix-relay").ok();
    assert!(
        !show_after.stdout.contains("last delivery problem"),
        "{show_after:#?}"
    );
    assert_secret_kept(
        &sb,
        &secret,
        "/etc/postfix-relay",
        &[&sent, &sent_json, &show, &fixed, &again, &show_after],
    );
    assert!(files_containing(&sb, &wrong).is_empty());
}

#[test]
fn a_relay_without_starttls_leaves_the_mail_deferred() {
    let secret = password("nostarttls");
    let sb = Sandbox::new();
    sb.ctl("init --null-client").ok();
    // smtp-sink (shipped with Postfix) speaks SMTP but offers no STARTTLS.
    sb.sh("setsid smtp-sink -u postfix 127.0.0.1:2590 10 </dev/null >/dev/null 2>&1 &")
        .ok();
    assert!(sb.wait_for("exec 3<>/dev/tcp/127.0.0.1/2590", WAIT));
    let pw_file = sb.root().join("password");
    std::fs::write(&pw_file, format!("{secret}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let base = format!(
        "create postfix-relay --role relay --provider custom --relay-host '[127.0.0.1]:2590' \
         --sasl-user {USER} --sasl-password-file {}",
        pw_file.display()
    );

    // An address cannot be verified against a certificate: refused unless asked for.
    let before = sb.config_snapshot();
    let refused = sb.ctl(&base);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(
        refused.stderr.contains("--tls-security-level encrypt"),
        "{refused:#?}"
    );
    assert_eq!(before, sb.config_snapshot());

    let created = sb.ctl(&format!("{base} --tls-security-level encrypt")).ok();
    assert!(
        created.stdout.contains("the certificate NOT verified"),
        "{created:#?}"
    );
    // The password file is readable by everyone.
    assert!(
        created
            .stderr
            .contains("is readable by other users (mode 0644)"),
        "{created:#?}"
    );
    let sent = sb.ctl("test-mail postfix-relay --to rcpt@dest.example");
    assert_eq!(sent.code, 1, "{sent:#?}");
    assert!(
        sent.stdout
            .contains("reason: TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]"),
        "{sent:#?}"
    );
    assert!(sent.stdout.contains("offers no STARTTLS"), "{sent:#?}");
    let queue = sb.sh("postqueue -c /etc/postfix-relay -j").ok();
    assert!(
        queue.stdout.contains("\"queue_name\": \"deferred\""),
        "{queue:#?}"
    );
    let show = sb.ctl("relay show postfix-relay").ok();
    assert!(
        show.stdout.contains("TLS is required, but was not offered"),
        "{show:#?}"
    );
    assert_secret_kept(
        &sb,
        &secret,
        "/etc/postfix-relay",
        &[&refused, &created, &sent, &show],
    );

    // The deferred mail is discarded with the stopped instance: postsuper then runs
    // without postlogd and cannot open the relay's own maillog_file (it dies after
    // deleting); the destroy goes on, since the queue is empty.
    sb.ctl("stop postfix-relay").ok();
    let destroyed = sb.ctl("destroy postfix-relay --force-discard-queue");
    assert_eq!(destroyed.code, 0, "{destroyed:#?}");
    assert!(
        destroyed.stdout.contains("postfix-relay: destroyed"),
        "{destroyed:#?}"
    );
    assert_ne!(sb.sh("test -e /etc/postfix-relay").code, 0);
    assert_ne!(sb.sh("test -e /var/spool/postfix-relay").code, 0);
}

#[test]
fn the_primary_relays_as_seed_000_sets_it_up_and_test_mail_follows_the_queue() {
    let secret = password("primary");
    let sb = initialized_with_server(&secret);
    let pw_file = sb.root().join("password");
    std::fs::write(&pw_file, &secret).unwrap();

    // Seed 000 on the primary: Gmail with the host's CA bundle and a sender rewrite.
    let gmail = sb
        .ctl(&format!(
            "relay set - --provider gmail --sasl-user me@gmail.com --sasl-password-file {} \
             --rewrite-from root=me@gmail.com",
            pw_file.display()
        ))
        .ok();
    assert!(
        gmail
            .stdout
            .contains("credentials: present (user me@gmail.com)"),
        "{gmail:#?}"
    );
    let settings = sb
        .sh(
            "postconf -h relayhost smtp_sasl_auth_enable smtp_sasl_password_maps \
             smtp_tls_security_level smtp_tls_wrappermode smtp_tls_CAfile \
             smtp_destination_rate_delay smtp_destination_recipient_limit smtp_generic_maps \
             smtp_sasl_mechanism_filter",
        )
        .ok();
    assert_eq!(
        settings.stdout,
        "[smtp.gmail.com]:587\nyes\nhash:/etc/postfix/sasl_passwd\nsecure\nno\n\
         /etc/ssl/certs/ca-certificates.crt\n2s\n10\nhash:/etc/postfix/generic\nplain, login\n"
    );
    let map_line = sb.sh("grep -v '^#' /etc/postfix/sasl_passwd").ok();
    assert_eq!(
        map_line.stdout,
        format!("[smtp.gmail.com]:587 me@gmail.com:{secret}\n")
    );
    let generic = sb
        .sh(
            "o=$(postconf -xh myorigin); case $o in /*) o=$(head -1 $o);; esac; \
             postmap -q root@$o hash:/etc/postfix/generic",
        )
        .ok();
    assert_eq!(generic.stdout, "me@gmail.com\n");

    // A map changed after postmap is not what Postfix reads: shown, and indexed again
    // by the next relay set.
    sb.sh("sleep 1.1; touch /etc/postfix/sasl_passwd").ok();
    let stale = sb.ctl("relay show -").ok();
    assert!(stale.stdout.contains("credentials: MISSING"), "{stale:#?}");
    assert!(
        stale.stdout.contains("changed after it was indexed"),
        "{stale:#?}"
    );
    let reindexed = sb.ctl("relay set - --rewrite-from root=me@gmail.com").ok();
    assert!(
        reindexed
            .stdout
            .contains("credentials: present (user me@gmail.com)"),
        "{reindexed:#?}"
    );

    // Another provider needs the password again; refused without a change.
    let before = sb.config_snapshot();
    let refused = sb.ctl("relay set - --provider fastmail --sasl-user me@fastmail.com");
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(
        refused.stderr.contains("password must be given again"),
        "{refused:#?}"
    );
    assert_eq!(before, sb.config_snapshot());

    // Now the test's own relay, by address, without rate limits or rewriting; the
    // primary has neither maillog_file nor a syslog file here, so test-mail follows
    // the queue.
    let local = sb
        .ctl(&format!(
            "relay set - --provider custom --relay-host '[127.0.0.1]:2587' --sasl-user {USER} \
             --sasl-password-file {} --tls-security-level encrypt --tls-ca-file {CA} \
             --no-rewrite-from",
            pw_file.display()
        ))
        .ok();
    let postconf_n = sb.sh("postconf -n").ok().stdout;
    for gone in [
        "smtp_generic_maps",
        "smtp_sasl_mechanism_filter",
        "smtp_destination_rate_delay",
        "smtp_destination_recipient_limit",
    ] {
        assert!(!postconf_n.contains(gone), "{gone} left in:\n{postconf_n}");
    }
    assert_eq!(
        sb.sh("ls /etc/postfix/generic /etc/postfix/generic.db 2>/dev/null")
            .stdout,
        ""
    );
    sb.ctl("start -").ok();
    let sent = sb.ctl("test-mail - --to rcpt@dest.example");
    assert_eq!(sent.code, 0, "{sent:#?}");
    assert!(sent.stdout.contains("following the queue"), "{sent:#?}");
    assert!(sent.stdout.contains("LEFT THE QUEUE"), "{sent:#?}");
    assert!(
        sb.wait_for(
            &format!("grep -q 'sasl_username={USER}' /var/log/postfix-sub.log"),
            WAIT
        ),
        "the relay server never saw the user"
    );
    assert!(sb.wait_for(
        "grep -rlq 'instancectl-test' /var/mail/vhosts/inbox/new",
        WAIT
    ));
    assert_secret_kept(
        &sb,
        &secret,
        "/etc/postfix",
        &[
            &gmail, &settings, &generic, &stale, &reindexed, &refused, &local, &sent,
        ],
    );
}

#[test]
fn bad_relay_input_is_refused_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.ctl("init --null-client").ok();
    let pw = sb.root().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let two_lines = sb.root().join("two");
    std::fs::write(&two_lines, "secret\nmore\n").unwrap();
    let empty = sb.root().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let not_pem = sb.root().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    sb.ctl("create postfix-one --listen 127.0.0.1:2525").ok();
    // A hand-made password map on the primary is the user's; instancectl keeps off it.
    sb.sh(
        "printf '[x]:587 a:b\\n' > /etc/postfix/sasl_passwd && chmod 600 /etc/postfix/sasl_passwd",
    )
    .ok();
    let before = sb.config_snapshot();
    let pw = pw.display();
    let relay =
        |rest: &str| format!("create postfix-r --role relay --sasl-password-file {pw} {rest}");
    let cases = [
        (relay("--sasl-user u"), "has no relay host yet"),
        (relay("--provider ses --sasl-user u"), "ses:us-east-1"),
        (
            relay("--provider ses:mars --sasl-user u"),
            "not an AWS region",
        ),
        (
            relay("--provider yahoo --sasl-user u"),
            "not a provider instancectl knows",
        ),
        (
            relay("--provider custom --sasl-user u"),
            "needs --relay-host",
        ),
        (
            relay("--provider custom --relay-host mx..example --sasl-user u"),
            "not a host name",
        ),
        (
            relay("--provider custom --relay-host smtp.example.com:0 --sasl-user u"),
            "port",
        ),
        (relay("--provider sendgrid --sasl-user me"), "\"apikey\""),
        (relay("--provider gmail"), "--sasl-user"),
        (
            relay("--provider gmail --sasl-user 'a:b'"),
            "cannot be empty or contain ':'",
        ),
        (
            relay("--provider gmail --sasl-user u --rewrite-from root"),
            "LOCAL=ADDRESS",
        ),
        (
            relay("--provider gmail --sasl-user u --rewrite-from root=nobody"),
            "is not an address",
        ),
        (
            relay("--provider gmail --sasl-user u --rewrite-from root=a@b --rewrite-from root=c@d"),
            "given twice",
        ),
        (
            relay(&format!(
                "--provider gmail --sasl-user u --tls-ca-file {}",
                not_pem.display()
            )),
            "holds no PEM certificate",
        ),
        (
            relay("--provider gmail --sasl-user u --tls-ca-file /nonexistent.pem"),
            "cannot read it",
        ),
        (
            relay("--provider custom --relay-host '[192.0.2.1]:587' --sasl-user u"),
            "is an IP address",
        ),
        (
            "create postfix-r --role relay --provider gmail --sasl-user u".to_string(),
            "needs the SASL password",
        ),
        (
            format!(
                "create postfix-r --role relay --provider gmail --sasl-user u \
                 --sasl-password-file {}",
                two_lines.display()
            ),
            "more than one line",
        ),
        (
            format!(
                "create postfix-r --role relay --provider gmail --sasl-user u \
                 --sasl-password-file {}",
                empty.display()
            ),
            "the password is empty",
        ),
        (
            "create postfix-r --role relay --provider gmail --sasl-user u \
             --sasl-password-file /nonexistent"
                .to_string(),
            "cannot read it",
        ),
        (
            format!("create postfix-r --provider gmail --sasl-user u --sasl-password-file {pw}"),
            "need --role relay",
        ),
        (
            format!(
                "create postfix-r --role relay --provider gmail --sasl-user u \
                 --sasl-password-file {pw} --sasl-password-stdin"
            ),
            "cannot be used with",
        ),
        ("relay set postfix-one".to_string(), "nothing to change"),
        (
            "relay set postfix-one --sasl-user u".to_string(),
            "has no relay host yet",
        ),
        (
            "relay set postfix-nope --provider gmail".to_string(),
            "no instance named",
        ),
        (
            format!("relay set - --provider gmail --sasl-user u --sasl-password-file {pw}"),
            "was not written by instancectl",
        ),
        (
            "test-mail postfix-one --to nobody".to_string(),
            "not an email address",
        ),
        (
            "test-mail postfix-nope --to a@b.example".to_string(),
            "no instance named",
        ),
    ];
    for (args, expected) in &cases {
        let run = sb.ctl(args);
        assert_eq!(run.code, 2, "{args}: {run:#?}");
        assert!(
            run.stderr.contains(expected),
            "{args}: expected {expected:?} in {run:#?}"
        );
        assert!(
            !run.stdout.contains("secret") && !run.stderr.contains("secret"),
            "{run:#?}"
        );
        assert_eq!(before, sb.config_snapshot(), "{args} changed the disk");
    }
    sb.ctl("stop postfix-one").ok();
    let stopped = sb.ctl("test-mail postfix-one --to a@b.example");
    assert_eq!(stopped.code, 2, "{stopped:#?}");
    assert!(stopped.stderr.contains("is not running"), "{stopped:#?}");
}

#[test]
fn a_relay_change_that_fails_is_undone() {
    let sb = Sandbox::new();
    sb.ctl("init --null-client").ok();
    let pw = sb.root().join("pw");
    // A relay instance whose start fails (127.0.1.9 is on no interface) is removed
    // whole, its password map with it.
    std::fs::write(&pw, "doomed-secret\n").unwrap();
    let before = sb.config_snapshot();
    let failed = sb.ctl(&format!(
        "create postfix-r --role relay --provider gmail --sasl-user me@gmail.com \
         --sasl-password-file {} --listen 127.0.1.9:2525",
        pw.display()
    ));
    assert_eq!(failed.code, 1, "{failed:#?}");
    assert!(failed.stderr.contains("undone"), "{failed:#?}");
    assert_eq!(before, sb.config_snapshot());
    assert!(files_containing(&sb, "doomed-secret").is_empty());

    std::fs::write(&pw, "first-secret\n").unwrap();
    sb.ctl(&format!(
        "create postfix-r --role relay --provider gmail --sasl-user me@gmail.com \
         --sasl-password-file {} --listen 127.0.0.1:2525",
        pw.display()
    ))
    .ok();
    sb.ctl("stop postfix-r").ok();
    // An unknown mail_owner makes `postfix check` fail after the maps and main.cf
    // have been written.
    sb.sh("postconf -c /etc/postfix-r -e mail_owner=nosuchuser")
        .ok();
    let before = sb.config_snapshot();
    std::fs::write(&pw, "second-secret\n").unwrap();
    let run = sb.ctl(&format!(
        "relay set postfix-r --provider office365 --sasl-user me@example.com \
         --sasl-password-file {} --rewrite-from root=me@example.com",
        pw.display()
    ));
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("postfix check failed"), "{run:#?}");
    assert!(run.stderr.contains("undone"), "{run:#?}");
    assert!(run.stderr.contains("nosuchuser"), "{run:#?}");
    assert_eq!(before, sb.config_snapshot());
    assert!(files_containing(&sb, "second-secret").is_empty());
    let map = sb.sh("grep -v '^#' /etc/postfix-r/sasl_passwd").ok();
    assert_eq!(
        map.stdout,
        "[smtp.gmail.com]:587 me@gmail.com:first-secret\n"
    );
}

#[test]
fn an_unverifiable_certificate_keeps_the_password_home() {
    let secret = password("untrusted");
    let sb = initialized_with_server(&secret);
    // The host's CA bundle does not know the test's CA: the certificate of relay.test
    // cannot be verified, so Postfix must not authenticate at all.
    let created = sb.sh_input(
        &format!(
            "instancectl create postfix-relay --role relay --provider custom \
             --relay-host relay.test:2587 --sasl-user {USER} --sasl-password-stdin \
             --set smtp_host_lookup=native"
        ),
        &secret,
    );
    assert_eq!(created.code, 0, "{created:#?}");
    let sent = sb.ctl("test-mail postfix-relay --to rcpt@dest.example --timeout 120");
    assert_eq!(sent.code, 1, "{sent:#?}");
    assert!(sent.stdout.contains("DEFERRED"), "{sent:#?}");
    assert!(
        sent.stdout
            .contains("reason: Server certificate not verified"),
        "{sent:#?}"
    );
    assert!(
        sent.stdout.contains("Postfix did not send the password"),
        "{sent:#?}"
    );
    let server_log = sb.sh("cat /var/log/postfix-sub.log").ok().stdout;
    assert!(server_log.contains("starttls=1"), "{server_log}");
    assert!(!server_log.contains("auth="), "{server_log}");
    assert!(!server_log.contains("sasl_username"), "{server_log}");
    assert_secret_kept(&sb, &secret, "/etc/postfix-relay", &[&created, &sent]);
}

#[test]
fn implicit_tls_on_port_465() {
    let secret = password("implicit");
    let sb = Sandbox::bare();
    sb.ctl("--manager postfix init --null-client").ok();
    start_server(&sb, &secret, true);
    assert!(sb.wait_for("exec 3<>/dev/tcp/127.0.0.1/465", WAIT));
    let created = sb.sh_input(
        &format!(
            "instancectl --manager postfix create postfix-relay --role relay --provider custom \
             --relay-host relay.test:465 --sasl-user {USER} --sasl-password-stdin \
             --tls-ca-file {CA} --set smtp_host_lookup=native"
        ),
        &secret,
    );
    assert_eq!(created.code, 0, "{created:#?}");
    assert!(
        created
            .stdout
            .contains("TLS from the first byte with the certificate verified"),
        "{created:#?}"
    );
    let wrapper = sb
        .sh("postconf -c /etc/postfix-relay -h relayhost smtp_tls_wrappermode")
        .ok();
    assert_eq!(wrapper.stdout, "[relay.test]:465\nyes\n");
    let sent = sb.ctl("test-mail postfix-relay --to rcpt@dest.example");
    assert_eq!(sent.code, 0, "{sent:#?}");
    assert!(
        sent.stdout
            .contains("DELIVERED: to <rcpt@dest.example> via relay.test[127.0.0.1]:465"),
        "{sent:#?}"
    );
    assert!(
        sent.stdout
            .contains("TLS: Verified TLS connection established to relay.test[127.0.0.1]:465"),
        "{sent:#?}"
    );
    let server_log = sb.sh("cat /var/log/postfix-sub.log").ok().stdout;
    assert!(
        server_log.contains(&format!("sasl_method=PLAIN, sasl_username={USER}")),
        "{server_log}"
    );
    assert_secret_kept(
        &sb,
        &secret,
        "/etc/postfix-relay",
        &[&created, &wrapper, &sent],
    );
}

#[test]
fn a_postmap_that_fails_on_a_full_disk_leaves_no_temporary_file() {
    let sb = Sandbox::scripted();
    sb.ctl("init --null-client").ok();
    sb.sh("printf 'secret\\n' > /tmp/pw && chmod 600 /tmp/pw")
        .ok();
    // /etc/postfix on a small tmpfs, full but for two pages: enough for the password
    // map, not for its Berkeley DB index.
    sb.sh("mkdir /tmp/pf && cp -a /etc/postfix/. /tmp/pf/ && \
         mount -t tmpfs -o size=1m tmpfs /etc/postfix && cp -a /tmp/pf/. /etc/postfix/ && \
         { dd if=/dev/zero of=/etc/postfix/zz-fill bs=4k 2>/dev/null || true; } && \
         truncate -s -8192 /etc/postfix/zz-fill")
        .ok();
    let run = sb.ctl(
        "relay set - --provider custom --relay-host smtp.example.com --sasl-user u \
         --sasl-password-file /tmp/pw",
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("No space left on device"), "{run:?}");
    let left = sb.sh("ls -a /etc/postfix").ok().stdout;
    assert!(
        !left.contains("__db."),
        "postmap's temporary file stayed:\n{left}"
    );
    assert!(!left.contains("sasl_passwd"), "{left}");
}
