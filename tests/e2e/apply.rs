//! End-to-end: `instancectl apply` converges the host on a manifest, and a second
//! apply changes nothing.

use crate::common::Sandbox;

fn write_manifest(sb: &Sandbox, text: &str) {
    std::fs::write(sb.root().join("instances.toml"), text).unwrap();
}

fn apply(sb: &Sandbox) -> crate::common::Run {
    sb.ctl(&format!(
        "apply -f {}",
        sb.root().join("instances.toml").display()
    ))
}

const MTA: &str = r#"
[[instance]]
name = "postfix-out"
group = "mta"
role = "output"

[[instance]]
name = "postfix-in"
group = "mta"
role = "input"
listen = ["127.0.0.1:2525"]
[instance.set]
default_transport = "smtp:[127.0.0.1]:10026"
"#;

#[test]
fn apply_creates_changes_and_removes() {
    let sb = Sandbox::new();
    sb.ctl("init --null-client").ok();
    write_manifest(&sb, MTA);
    let first = apply(&sb).ok();
    assert!(
        first.stdout.contains("postfix-out: missing -> create"),
        "{first:?}"
    );
    assert!(
        first.stdout.contains("[2/2] postfix-in: missing -> create"),
        "{first:?}"
    );
    // Progress: each step of each create, as it begins.
    for step in ["postmulti create", "postfix check", "starting the instance"] {
        assert!(
            first.stderr.contains(&format!("postfix-in: {step} ...\n")),
            "{step}: {first:?}"
        );
    }
    assert!(sb.banner("127.0.0.1", 2525).starts_with("220 in."));
    assert!(sb.banner("127.0.0.1", 10026).starts_with("220 out."));
    let order = sb.sh("postmulti -l | awk '{print $1}'").ok().stdout;
    assert_eq!(order, "-\npostfix-out\npostfix-in\n");

    let before = sb.config_snapshot();
    let second = apply(&sb).ok();
    assert!(second.stdout.contains("nothing to change"), "{second:?}");
    assert_eq!(before, sb.config_snapshot());

    // Change a setting, drop another, disable one instance.
    write_manifest(
        &sb,
        r#"
[[instance]]
name = "postfix-out"
group = "mta"
role = "output"
[instance.set]
message_size_limit = "20480000"

[[instance]]
name = "postfix-in"
group = "mta"
role = "input"
listen = ["127.0.0.1:2525"]
enabled = false
"#,
    );
    let third = apply(&sb).ok();
    assert!(
        third
            .stdout
            .contains("postfix-out: main.cf differs (message_size_limit) -> set"),
        "{third:?}"
    );
    assert!(
        third.stdout.contains("postfix-in: enabled -> disable"),
        "{third:?}"
    );
    assert_eq!(
        sb.sh("postconf -c /etc/postfix-out -h message_size_limit")
            .ok()
            .stdout,
        "20480000\n"
    );
    // The dropped override falls back to the role's preset.
    assert_eq!(
        sb.sh("postconf -c /etc/postfix-in -h default_transport")
            .ok()
            .stdout,
        "smtp:[127.0.0.1]:10025\n"
    );
    assert_eq!(sb.banner("127.0.0.1", 2525), "");
    assert!(apply(&sb).ok().stdout.contains("nothing to change"));

    // Drop the input instance from the manifest: it is destroyed.
    write_manifest(
        &sb,
        "[[instance]]\nname = \"postfix-out\"\ngroup = \"mta\"\nrole = \"output\"\n[instance.set]\nmessage_size_limit = \"20480000\"\n",
    );
    let fourth = apply(&sb).ok();
    assert!(
        fourth
            .stdout
            .contains("postfix-in: not in the manifest -> destroy"),
        "{fourth:?}"
    );
    assert_eq!(
        sb.sh("postmulti -l | awk '{print $1}'").ok().stdout,
        "-\npostfix-out\n"
    );
}

#[test]
fn a_bad_manifest_changes_nothing() {
    let sb = Sandbox::new();
    sb.ctl("init --null-client").ok();
    write_manifest(&sb, MTA);
    apply(&sb).ok();
    let before = sb.config_snapshot();
    for (text, expected) in [
        (
            "[[instance]]\nname = \"in\"\n",
            "must start with \"postfix-\"",
        ),
        (
            "[[instance]]\nname = \"postfix-x\"\nrole = \"boss\"\n",
            "unknown variant",
        ),
        (
            "[[instance]]\nname = \"postfix-x\"\n[instance.set]\nqueue_directory = \"/tmp\"\n",
            "cannot be set this way",
        ),
        (
            "[[instance]]\nname = \"postfix-in\"\nrole = \"input\"\nlisten = [\"127.0.0.1:2600\"]\n",
            "does not move",
        ),
        ("[instance\n", "TOML"),
        // postfix-in would be destroyed first: the new one's address (TEST-NET-1, on
        // no interface) is found wrong before that.
        (
            "[[instance]]\nname = \"postfix-out\"\ngroup = \"mta\"\nrole = \"output\"\n\
             [[instance]]\nname = \"postfix-x\"\nrole = \"input\"\nlisten = [\"192.0.2.7:2600\"]\n",
            "192.0.2.7 is not an address of this host",
        ),
    ] {
        write_manifest(&sb, text);
        let run = apply(&sb);
        assert_eq!(run.code, 2, "{text}: {run:?}");
        assert!(
            run.stderr.contains(expected)
                || run.stderr.to_lowercase().contains(&expected.to_lowercase()),
            "{text}: expected {expected:?} in {run:?}"
        );
        assert_eq!(before, sb.config_snapshot(), "{text} changed the disk");
    }
}

#[test]
fn a_setting_postfix_refuses_is_undone_and_the_instance_keeps_serving() {
    let sb = Sandbox::new();
    sb.ctl("init --null-client").ok();
    let manifest = |set: &str| {
        format!(
            "[[instance]]\nname = \"postfix-a\"\nlisten = [\"127.0.0.1:2541\"]\n\
             [instance.set]\nsmtpd_banner = \"$myhostname ESMTP applied\"\n{set}"
        )
    };
    write_manifest(&sb, &manifest(""));
    apply(&sb).ok();
    let banner = sb.banner("127.0.0.1", 2541);
    assert!(
        banner.starts_with("220 ") && banner.contains("applied"),
        "{banner}"
    );
    // main.cf and master.cf, and the record of what the manifest asked for.
    let files = "/etc/postfix-a/main.cf /etc/postfix-a/master.cf \
                 /var/lib/instancectl/instances/postfix-a.toml";
    let pristine = sb.sh(&format!("sha256sum {files}")).ok().stdout;

    // A dry run shows the diff and the write, and changes nothing.
    write_manifest(&sb, &manifest("message_size_limit = \"lots\""));
    let dry = sb
        .ctl(&format!(
            "--dry-run apply -f {}",
            sb.root().join("instances.toml").display()
        ))
        .ok();
    assert!(
        dry.stdout.contains("+message_size_limit = lots"),
        "{dry:#?}"
    );
    assert!(
        dry.stdout.contains("would write: /etc/postfix-a/main.cf"),
        "{dry:#?}"
    );
    assert_eq!(sb.sh(&format!("sha256sum {files}")).ok().stdout, pristine);

    for (bad, refused_by) in [
        // postconf writes it; `postfix check` refuses it.
        (
            "message_size_limit = \"lots\"",
            "Postfix refuses the new settings",
        ),
        // Passes `postfix check`; every new smtpd dies on it, so the reload leaves
        // nobody to greet: the wait for the greeting fails.
        ("smtpd_timeout = \"never\"", "answering after the reload"),
    ] {
        write_manifest(&sb, &manifest(bad));
        let run = apply(&sb);
        assert_eq!(run.code, 1, "{bad}: {run:#?}\n{}", sb.supervisor_log());
        assert!(
            run.stdout.contains("postfix-a: main.cf differs"),
            "{run:#?}"
        );
        assert!(run.stderr.contains(refused_by), "{bad}: {run:#?}");
        assert!(
            run.stderr.contains("undone"),
            "{bad}: {run:#?}\n{}",
            sb.supervisor_log()
        );
        assert_eq!(
            sb.sh(&format!("sha256sum {files}")).ok().stdout,
            pristine,
            "{bad}: the files are not as they were"
        );
        assert!(
            sb.wait_for(
                "exec 3<>/dev/tcp/127.0.0.1/2541 && timeout 5 head -1 <&3 | grep -q applied",
                std::time::Duration::from_secs(20)
            ),
            "{bad}: postfix-a does not answer after the undo"
        );
    }
    // The manifest as it was: nothing to change.
    write_manifest(&sb, &manifest(""));
    assert!(apply(&sb).ok().stdout.contains("nothing to change"));

    // A failure in the second change undoes that change only; the message says the
    // first stays made, and a second apply finishes once the cause is gone.
    let two = |b_set: &str| {
        format!(
            "{}message_size_limit = \"20480000\"\n\
             [[instance]]\nname = \"postfix-b\"\nlisten = [\"127.0.0.1:2542\"]\n\
             [instance.set]\n{b_set}",
            manifest("")
        )
    };
    write_manifest(&sb, &two("message_size_limit = \"lots\""));
    let run = apply(&sb);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains(
            "apply stopped at change 2 of 2 (create postfix-b); the 1 before it stay as made \
             (update postfix-a)"
        ),
        "{run:#?}"
    );
    assert_eq!(
        sb.sh("postconf -c /etc/postfix-a -h message_size_limit")
            .ok()
            .stdout,
        "20480000\n"
    );
    assert!(
        sb.sh("test -e /etc/postfix-b").code != 0,
        "postfix-b undone"
    );
    write_manifest(&sb, &two(""));
    let finished = apply(&sb).ok();
    assert!(
        finished.stdout.contains("postfix-b: missing -> create"),
        "{finished:#?}"
    );
}
