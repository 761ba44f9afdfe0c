//! End-to-end: how instancectl reports. JSON documents with their schema, tables that
//! fit 80 columns (`-o wide` for the rest), progress lines, the fix line of a down
//! instance, shell completions and the manual, and scripts/install.sh.

use std::path::Path;
use std::process::Command;

use crate::common::{Run, Sandbox, instancectl};
use serde_json::Value;

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("no JSON ({e}):\n{run:#?}"))
}

/// The table: the lines before the first empty one.
fn table_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().take_while(|l| !l.is_empty()).collect()
}

#[test]
fn every_json_document_names_its_schema() {
    let sb = Sandbox::scripted();
    // A dry run answers with its document too, saying what it would do.
    let main_cf = sb.sh("cat /etc/postfix/main.cf").ok().stdout;
    let doc = json(&sb.ctl("init --null-client --json --dry-run").ok());
    assert_eq!(doc["schema"], "instancectl.init/v1");
    assert_eq!(doc["dry_run"], true, "{doc:#}");
    assert_eq!(doc["multi_instance_turned_on"], true, "{doc:#}");
    assert_eq!(sb.sh("cat /etc/postfix/main.cf").ok().stdout, main_cf);
    let init = sb.ctl("init --null-client --json").ok();
    let doc = json(&init);
    assert_eq!(doc["schema"], "instancectl.init/v1");
    assert_eq!(doc["dry_run"], false, "{doc:#}");
    assert_eq!(doc["multi_instance_turned_on"], true, "{doc:#}");
    assert_eq!(doc["null_client_set"], true, "{doc:#}");

    let create = sb
        .ctl("create postfix-a --group mta --role output --listen 127.0.0.1:2525 --json")
        .ok();
    let doc = json(&create);
    assert_eq!(doc["schema"], "instancectl.create/v1");
    assert_eq!(doc["name"], "postfix-a");
    assert_eq!(doc["group"], "mta");
    assert_eq!(doc["role"], "output");
    assert_eq!(doc["listen"], serde_json::json!(["127.0.0.1:2525"]));
    assert_eq!(doc["started"], true);
    let pid = doc["master_pid"].as_i64().expect("a master pid");
    let on_disk = sb.sh("cat /var/spool/postfix-a/pid/master.pid").ok();
    assert_eq!(on_disk.stdout.trim().parse::<i64>().unwrap(), pid);

    for args in ["list --json", "list -o json"] {
        let doc = json(&sb.ctl(args).ok());
        assert_eq!(doc["schema"], "instancectl.list/v1", "{args}");
        let names: Vec<&str> = doc["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["-", "postfix-a"], "{args}");
    }
    for args in ["status --json", "status -o json", "status --format json"] {
        let doc = json(&sb.ctl(args));
        assert_eq!(doc["schema"], "instancectl.status/v2", "{args}");
    }
    let doc = json(&sb.ctl("relay show postfix-a --json").ok());
    assert_eq!(doc["schema"], "instancectl.relay/v1");
    assert_eq!(doc["name"], "postfix-a");

    let doc = json(&sb.ctl("destroy postfix-a --json").ok());
    assert_eq!(doc["schema"], "instancectl.destroy/v2");
    assert_eq!(doc["ok"], true, "{doc:#}");
    assert_eq!(results(&doc), [("postfix-a", "", "destroyed")]);
    assert_eq!(doc["instances"][0]["discarded_messages"], 0);
}

/// The (name, action, result) of each entry of a document's `instances`.
fn results(doc: &Value) -> Vec<(&str, &str, &str)> {
    fn text(v: &Value) -> &str {
        v.as_str().unwrap_or_default()
    }
    doc["instances"]
        .as_array()
        .unwrap_or_else(|| panic!("no instances: {doc:#}"))
        .iter()
        .map(|i| (text(&i["name"]), text(&i["action"]), text(&i["result"])))
        .collect()
}

/// The document of a run that succeeded, with `"ok": true` and no error.
#[track_caller]
fn ok_json(run: Run, schema: &str) -> Value {
    let run = run.ok();
    let doc = json(&run);
    assert_eq!(doc["schema"], schema, "{run:#?}");
    assert_eq!(doc["ok"], true, "{run:#?}");
    assert!(doc["error"].is_null(), "{run:#?}");
    doc
}

#[test]
fn lifecycle_commands_answer_with_one_json_document() {
    const LIFECYCLE: &str = "instancectl.lifecycle/v1";
    let sb = Sandbox::scripted().null_client();
    sb.ctl("create postfix-a --group mta --role output --listen 127.0.0.1:2525")
        .ok();
    sb.ctl("create postfix-b --group mta --role input --listen 127.0.0.1:2526")
        .ok();

    let stop = sb.ctl("stop -g mta --json");
    assert!(
        stop.stderr.contains("postfix-b: stopping ..."),
        "progress stays on stderr: {stop:#?}"
    );
    let doc = ok_json(stop, LIFECYCLE);
    assert_eq!(doc["action"], "stop");
    assert_eq!(doc["dry_run"], false);
    assert_eq!(
        results(&doc),
        [
            ("postfix-b", "stop", "stopped"),
            ("postfix-a", "stop", "stopped")
        ]
    );
    let doc = ok_json(sb.ctl("stop postfix-a --json"), LIFECYCLE);
    assert_eq!(results(&doc)[0].2, "already stopped");

    // --dry-run: what it would run goes to stderr, stdout keeps the document.
    let dry = sb.ctl("--dry-run start -g mta --json");
    assert!(dry.stderr.contains("would run: "), "{dry:#?}");
    let doc = ok_json(dry, LIFECYCLE);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(sb.banner("127.0.0.1", 2525), "", "a dry run started it");

    let doc = ok_json(sb.ctl("start -g mta --json"), LIFECYCLE);
    assert_eq!(doc["action"], "start");
    let started: Vec<(&str, &str)> = results(&doc)
        .into_iter()
        .map(|(name, _, result)| (name, result))
        .collect();
    assert_eq!(
        started,
        [("postfix-a", "started"), ("postfix-b", "started")]
    );
    for entry in doc["instances"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let on_disk = sb.pid_file_pid(name).expect("a pid file");
        assert_eq!(entry["master_pid"], on_disk, "{doc:#}");
    }
    let doc = ok_json(sb.ctl("start postfix-a --json"), LIFECYCLE);
    assert_eq!(results(&doc)[0].2, "already running");

    let doc = ok_json(sb.ctl("restart postfix-a --json"), LIFECYCLE);
    let steps: Vec<(&str, &str)> = results(&doc)
        .into_iter()
        .map(|(_, action, result)| (action, result))
        .collect();
    assert_eq!(steps, [("stop", "stopped"), ("start", "started")]);
    let doc = ok_json(sb.ctl("reload postfix-b --json"), LIFECYCLE);
    assert_eq!(results(&doc)[0].2, "reloaded");

    let doc = ok_json(sb.ctl("disable postfix-b --json"), LIFECYCLE);
    assert_eq!(
        results(&doc),
        [
            ("postfix-b", "stop", "stopped"),
            ("postfix-b", "disable", "disabled")
        ]
    );
    let doc = ok_json(sb.ctl("start -g mta --json"), LIFECYCLE);
    let skipped = &doc["instances"][0];
    assert_eq!(
        (&skipped["name"], &skipped["result"], &skipped["reason"]),
        (
            &Value::from("postfix-b"),
            &Value::from("skipped"),
            &Value::from("disabled")
        ),
        "{doc:#}"
    );
    assert_eq!(results(&doc)[1].2, "already running");
    let doc = ok_json(sb.ctl("enable postfix-b --json"), LIFECYCLE);
    assert_eq!(
        results(&doc),
        [
            ("postfix-b", "enable", "enabled"),
            ("postfix-b", "start", "started")
        ]
    );

    // A start that fails: exit 1, and the document says which instance and why.
    sb.ctl("stop postfix-b").ok();
    sb.sh("echo 'bogus line' >> /etc/postfix-b/main.cf").ok();
    let failed = sb.ctl("start postfix-b --json");
    assert_eq!(failed.code, 1, "{failed:#?}");
    let doc = json(&failed);
    assert_eq!(doc["schema"], LIFECYCLE);
    assert_eq!(doc["ok"], false, "{doc:#}");
    assert_eq!(doc["error"]["exit_status"], 1, "{doc:#}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("missing '=' after attribute name"),
        "{doc:#}"
    );
    assert_eq!(results(&doc), [("postfix-b", "start", "failed")]);
    assert_eq!(doc["instances"][0]["reason"], message, "{doc:#}");
    assert!(failed.stderr.contains("instancectl: "), "{failed:#?}");

    // Bad input: exit 2 as without --json, and still a document.
    let bad = sb.ctl("stop postfix-nosuch --json");
    assert_eq!(bad.code, 2, "{bad:#?}");
    let doc = json(&bad);
    assert_eq!(doc["schema"], LIFECYCLE);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["exit_status"], 2);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("postfix-nosuch"),
        "{doc:#}"
    );
    // A command whose own document never came: an error document.
    let bad = sb.ctl("list postfix-nosuch --json");
    assert_eq!(bad.code, 2, "{bad:#?}");
    let doc = json(&bad);
    assert_eq!(doc["schema"], "instancectl.error/v1");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["exit_status"], 2);
}

#[test]
fn a_set_start_under_the_supervisor_says_which_instance_failed() {
    let sb = Sandbox::new().null_client();
    sb.ctl("create postfix-a --listen 127.0.0.1:2525").ok();
    sb.ctl("create postfix-b --listen 127.0.0.1:2526").ok();
    let doc = ok_json(sb.ctl("stop --all --json"), "instancectl.lifecycle/v1");
    let stopped: Vec<&str> = results(&doc).into_iter().map(|r| r.0).collect();
    assert!(
        stopped.contains(&"postfix-a") && stopped.contains(&"postfix-b"),
        "{doc:#}"
    );

    sb.sh("echo 'bogus line' >> /etc/postfix-b/main.cf").ok();
    let failed = sb.ctl("start --all --json");
    assert_eq!(failed.code, 1, "{failed:#?}");
    let doc = json(&failed);
    assert_eq!(doc["ok"], false, "{doc:#}");
    let entry = |name: &str| {
        doc["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("no entry for {name}: {doc:#}"))
            .clone()
    };
    assert_eq!(entry("postfix-a")["result"], "started", "{doc:#}");
    assert_eq!(
        entry("postfix-a")["master_pid"],
        sb.pid_file_pid("postfix-a").expect("postfix-a runs")
    );
    assert_eq!(entry("postfix-b")["result"], "failed", "{doc:#}");
    assert!(
        entry("postfix-b")["reason"]
            .as_str()
            .unwrap()
            .contains("postfix-b"),
        "{doc:#}"
    );
    assert!(sb.banner("127.0.0.1", 2525).starts_with("220 "));
}

#[test]
fn changing_commands_answer_with_one_json_document() {
    let sb = Sandbox::scripted().null_client();

    // A create that fails halfway is undone, and its document says so.
    let failed =
        sb.ctl("create postfix-c --listen 127.0.0.1:2527 --set message_size_limit=lots --json");
    assert_eq!(failed.code, 1, "{failed:#?}");
    let doc = json(&failed);
    assert_eq!(doc["schema"], "instancectl.create/v1");
    assert_eq!(doc["name"], "postfix-c");
    assert_eq!(doc["ok"], false, "{doc:#}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("postfix check failed, so everything this change did was undone"),
        "{doc:#}"
    );
    let doc = ok_json(
        sb.ctl("create postfix-a --listen 127.0.0.1:2525 --json"),
        "instancectl.create/v1",
    );
    assert_eq!(doc["started"], true);

    // config show: the settings as an object.
    let doc = ok_json(sb.ctl("config postfix-a --json"), "instancectl.config/v1");
    let shown = &doc["instances"][0];
    assert_eq!(shown["name"], "postfix-a");
    assert_eq!(shown["config_directory"], "/etc/postfix-a");
    assert_eq!(shown["settings"]["inet_interfaces"], "127.0.0.1", "{doc:#}");
    assert_eq!(shown["settings"]["multi_instance_name"], "postfix-a");
    let doc = ok_json(
        sb.ctl("config postfix-a show delay_warning_time --json"),
        "instancectl.config/v1",
    );
    assert_eq!(
        doc["instances"][0]["settings"],
        serde_json::json!({"delay_warning_time": "0h"})
    );

    // config set and unset: each changed setting, old and new.
    const CHANGE: &str = "instancectl.config-change/v1";
    let set = sb.ctl("config postfix-a set delay_warning_time=4h --json");
    assert!(
        set.stderr.contains("+delay_warning_time = 4h"),
        "the diff is for people, on stderr: {set:#?}"
    );
    let doc = ok_json(set, CHANGE);
    let changed = &doc["instances"][0];
    assert_eq!(changed["result"], "reloaded", "{doc:#}");
    assert_eq!(
        changed["changes"],
        serde_json::json!([{"parameter": "delay_warning_time", "old": null, "new": "4h"}])
    );
    let doc = ok_json(
        sb.ctl("config postfix-a set delay_warning_time=4h --json"),
        CHANGE,
    );
    assert_eq!(doc["instances"][0]["result"], "unchanged");
    assert_eq!(doc["instances"][0]["changes"], serde_json::json!([]));
    let doc = ok_json(
        sb.ctl("config postfix-a unset delay_warning_time --json"),
        CHANGE,
    );
    assert_eq!(
        doc["instances"][0]["changes"],
        serde_json::json!([{"parameter": "delay_warning_time", "old": "4h", "new": null}])
    );
    let refused = sb.ctl("config postfix-a set message_size_limit=lots --json");
    assert_eq!(refused.code, 1, "{refused:#?}");
    let doc = json(&refused);
    assert_eq!(doc["schema"], CHANGE);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["instances"][0]["result"], "undone", "{doc:#}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("message_size_limit"),
        "{doc:#}"
    );

    // exec: the exit status and output of each run.
    let doc = ok_json(
        sb.ctl("exec postfix-a --json -- postconf -h inet_interfaces"),
        "instancectl.exec/v1",
    );
    assert_eq!(
        doc["command"],
        serde_json::json!(["postconf", "-h", "inet_interfaces"])
    );
    let ran = &doc["instances"][0];
    assert_eq!(ran["name"], "postfix-a");
    assert_eq!(ran["exit_status"], 0);
    assert_eq!(ran["stdout"], "127.0.0.1\n");
    let failed = sb.ctl("exec postfix-a --json -- sh -c 'echo out; echo err >&2; exit 3'");
    assert_eq!(failed.code, 3, "{failed:#?}");
    let doc = json(&failed);
    assert_eq!(doc["ok"], false, "{doc:#}");
    assert!(doc["error"].is_null(), "{doc:#}");
    let ran = &doc["instances"][0];
    assert_eq!(ran["exit_status"], 3);
    assert_eq!(ran["stdout"], "out\n");
    assert!(ran["stderr"].as_str().unwrap().contains("err"), "{doc:#}");

    // reconcile: the drift found and the repair made.
    sb.sh("postfix -c /etc/postfix-a stop").ok();
    let doc = ok_json(sb.ctl("reconcile --json"), "instancectl.reconcile/v1");
    // (The sandbox's primary, never started, is found and started too.)
    let drifts = doc["drifts"].as_array().unwrap();
    let drift = drifts
        .iter()
        .find(|d| d["name"] == "postfix-a")
        .unwrap_or_else(|| panic!("no drift of postfix-a: {doc:#}"));
    assert_eq!(drift["repair"], "start it");
    assert!(drift["problem"].as_str().unwrap().contains("not running"));
    assert!(drifts.iter().all(|d| d["result"] == "repaired"), "{doc:#}");
    assert_eq!(doc["found"], drifts.len());
    assert_eq!(doc["repaired"], drifts.len());
    assert!(sb.banner("127.0.0.1", 2525).starts_with("220 "));
    let doc = ok_json(sb.ctl("reconcile --json"), "instancectl.reconcile/v1");
    assert_eq!(doc["drifts"], serde_json::json!([]));

    // apply: each change planned and made.
    sb.sh(
        "printf '[[instance]]\\nname = \"postfix-d\"\\nlisten = [\"127.0.0.1:2528\"]\\n' \
         > /tmp/instances.toml",
    )
    .ok();
    let doc = ok_json(
        sb.ctl("apply -f /tmp/instances.toml --json"),
        "instancectl.apply/v1",
    );
    let made: Vec<(&str, &str, &str)> = doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["change"].as_str().unwrap(),
                c["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        made,
        [
            ("postfix-a", "destroy", "done"),
            ("postfix-d", "create", "done")
        ]
    );
    let doc = ok_json(
        sb.ctl("apply -f /tmp/instances.toml --json"),
        "instancectl.apply/v1",
    );
    assert_eq!(doc["changes"], serde_json::json!([]));
}

#[test]
fn tables_fit_80_columns_and_wide_shows_the_rest() {
    let sb = Sandbox::scripted();
    sb.ctl("init --null-client").ok();
    sb.ctl(
        "create postfix-outbound-relay-eu-west --group outbound-mail --role output \
         --listen 127.0.0.1:2525",
    )
    .ok();
    sb.ctl(
        "create postfix-inbound-submission-eu --group outbound-mail --role input \
         --listen 127.0.0.1:2526 --listen 127.0.0.1:2527",
    )
    .ok();
    sb.sh("postmulti -i - -p start").ok();

    // Names this long wrap inside their column rather than widen the table.
    let narrow = sb.ctl("status").ok();
    let lines = table_lines(&narrow.stdout);
    assert_eq!(
        lines.iter().filter(|l| l.contains(" healthy ")).count(),
        3,
        "{narrow:#?}"
    );
    for line in &lines {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line:?}\n{}",
            line.chars().count(),
            narrow.stdout
        );
    }
    assert!(
        lines[0].contains("STATUS") && !lines[0].contains("RSS"),
        "{narrow:#?}"
    );
    // A name wraps after a dash, never inside a word.
    let names = [
        "postfix-outbound-relay-eu-west",
        "postfix-inbound-submission-eu",
        "outbound-mail",
    ];
    let mut pieces: Vec<String> = Vec::new();
    for name in names {
        let parts: Vec<&str> = name.split_inclusive('-').collect();
        for a in 0..parts.len() {
            for b in a + 1..=parts.len() {
                pieces.push(parts[a..b].concat());
            }
        }
    }
    for line in &lines[1..] {
        for word in line.split_whitespace() {
            if word.contains("-out") || word.contains("-in") || word.starts_with("bound") {
                assert!(
                    pieces.contains(&word.to_string()),
                    "{word:?} is cut inside a word:\n{}",
                    narrow.stdout
                );
            }
        }
    }
    assert!(narrow.stdout.contains("healthy"), "{narrow:#?}");

    let wide = sb.ctl("status -o wide").ok();
    let header = table_lines(&wide.stdout)[0];
    for column in ["MASTER", "PROCS", "RSS", "CHECK"] {
        assert!(header.contains(column), "{column} missing: {wide:#?}");
    }
    let pid = sb
        .sh("cat /var/spool/postfix-outbound-relay-eu-west/pid/master.pid")
        .ok()
        .stdout
        .trim()
        .to_string();
    let row = wide
        .stdout
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("postfix-outbound-relay-eu-west ")
        })
        .unwrap_or_else(|| panic!("a row of its own in the wide table: {wide:#?}"));
    assert!(row.split_whitespace().any(|cell| cell == pid), "{row}");

    let list = sb.ctl("list").ok();
    assert!(!list.stdout.contains("/etc/postfix-inbound"), "{list:#?}");
    assert!(
        list.stdout.lines().all(|l| l.chars().count() <= 80),
        "{list:#?}"
    );
    assert!(list.stdout.contains("127.0.0.1:2526"), "{list:#?}");
    let list = sb.ctl("list -o wide").ok();
    assert!(
        list.stdout.contains("/etc/postfix-inbound-submission-eu"),
        "{list:#?}"
    );
    assert!(
        list.stdout
            .contains("/var/spool/postfix-inbound-submission-eu")
    );
}

#[test]
fn progress_lines_for_each_step() {
    let sb = Sandbox::scripted();
    sb.ctl("init --null-client").ok();
    // Not a terminal: one plain line on stderr as each step begins.
    let create = sb
        .ctl("create postfix-a --group mta --role output --listen 127.0.0.1:2525")
        .ok();
    let steps: Vec<&str> = create.stderr.lines().collect();
    for step in [
        "postfix-a: postmulti create ...",
        "postfix-a: applying the role settings ...",
        "postfix-a: postfix check ...",
        "postfix-a: postmulti enable ...",
        "postfix-a: starting the instance ...",
        "postfix-a: waiting for SMTP to answer ...",
    ] {
        assert!(steps.contains(&step), "{step} missing: {create:#?}");
    }
    assert!(
        create.stdout.starts_with("created postfix-a"),
        "results stay on stdout: {create:#?}"
    );
    sb.ctl("create postfix-b --group mta --role input --listen 127.0.0.1:2526")
        .ok();

    let stop = sb.ctl("stop -g mta").ok();
    assert_eq!(
        stop.stderr, "postfix-b: stopping ...\npostfix-a: stopping ...\n",
        "{stop:#?}"
    );
    assert_eq!(stop.stdout, "postfix-b: stopped\npostfix-a: stopped\n");
    let start = sb.ctl("start -g mta").ok();
    assert_eq!(
        start.stderr, "postfix-a: starting ...\npostfix-b: starting ...\n",
        "{start:#?}"
    );
    assert!(start.stdout.starts_with("postfix-a: started (master pid "));

    // A terminal: a spinner per step that ends as a line with a check mark.
    let tty = sb
        .sh("script -qec 'instancectl create postfix-c --listen 127.0.0.1:2527' /dev/null")
        .ok();
    for step in [
        "\u{2713} postfix-c: postmulti create (",
        "\u{2713} postfix-c: postfix check (",
    ] {
        assert!(tty.stdout.contains(step), "{step} missing: {tty:#?}");
    }

    // apply shows the steps of what it does.
    sb.sh(
        "printf '[[instance]]\\nname = \"postfix-d\"\\nlisten = [\"127.0.0.1:2528\"]\\n' \
         > /tmp/instances.toml",
    )
    .ok();
    let apply = sb.ctl("apply -f /tmp/instances.toml").ok();
    assert!(
        apply.stderr.contains("postfix-d: postmulti create ...\n"),
        "{apply:#?}"
    );
}

#[test]
fn native_create_needs_a_running_supervisor() {
    let sb = Sandbox::bare();
    sb.ctl("--manager postfix init --null-client").ok();
    let before = sb.config_snapshot();
    let create = sb.ctl("create postfix-a --listen 127.0.0.1:2525");
    assert_eq!(create.code, 2, "{create:#?}");
    assert!(
        create
            .stderr
            .contains("no instancectl supervisor is running"),
        "{create:#?}"
    );
    assert!(
        create.stderr.contains("instancectl supervise"),
        "the command that starts it: {create:#?}"
    );
    assert_eq!(sb.config_snapshot(), before, "nothing changed");
    assert!(
        create.stderr.lines().all(|l| !l.ends_with(" ...")),
        "no step ran: {create:#?}"
    );

    // Made and then stopped behind instancectl's back: without a supervisor the fix is
    // to start one.
    sb.ctl("--manager postfix create postfix-a --listen 127.0.0.1:2525")
        .ok();
    sb.sh("postfix -c /etc/postfix-a stop").ok();
    let status = sb.ctl("status postfix-a");
    assert_eq!(status.code, 1, "{status:#?}");
    assert!(
        status.stdout.contains(
            "postfix-a: down \u{2014} run: setsid instancectl supervise \
             >>/var/log/instancectl-supervise.log 2>&1 &\n"
        ),
        "{status:#?}"
    );
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("spawn");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn shell(program: &str, script: &str) -> Run {
    run(Command::new(program)
        .args(["-c", script])
        .env("INSTANCECTL", instancectl()))
}

#[test]
fn completions_load_in_each_shell() {
    // bash: ask the completion function for the commands that begin with "sta".
    let bash = shell(
        "bash",
        "source <(\"$INSTANCECTL\" completions bash) && \
         COMP_WORDS=(instancectl sta) COMP_CWORD=1 COMP_LINE='instancectl sta' && \
         _instancectl instancectl sta instancectl && printf '%s\\n' \"${COMPREPLY[@]}\"",
    )
    .ok();
    let words: Vec<&str> = bash.stdout.lines().collect();
    assert!(
        words.contains(&"start") && words.contains(&"status"),
        "{bash:#?}"
    );

    // zsh: the script is a completion function that compinit registers.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("_instancectl");
    let zsh_script = run(Command::new(instancectl()).args(["completions", "zsh"])).ok();
    std::fs::write(&file, &zsh_script.stdout).unwrap();
    let zsh = shell(
        "zsh",
        &format!(
            "zsh -n {f} && fpath=({d} $fpath) && autoload -U compinit && compinit -u -D && \
             print -r -- $_comps[instancectl]",
            f = file.display(),
            d = dir.path().display()
        ),
    )
    .ok();
    assert_eq!(zsh.stdout.trim(), "_instancectl", "{zsh:#?}");

    // fish: complete the same way fish does at a prompt.
    let fish = shell(
        "fish",
        "\"$INSTANCECTL\" completions fish | source; and complete -C 'instancectl status --o'",
    )
    .ok();
    assert!(fish.stdout.contains("--output"), "{fish:#?}");
    let fish = shell(
        "fish",
        "\"$INSTANCECTL\" completions fish | source; and complete -C 'instancectl status -o '",
    )
    .ok();
    for format in ["table", "wide", "json", "prometheus"] {
        assert!(
            fish.stdout.lines().any(|l| l.starts_with(format)),
            "{format}: {fish:#?}"
        );
    }

    let bad = run(Command::new(instancectl()).args(["completions", "tcsh"]));
    assert_eq!(bad.code, 2, "{bad:#?}");
}

#[test]
fn plist_lint_as_json() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed-002-launchdaemon.plist");
    let lint = run(Command::new(instancectl()).args([
        "plist",
        "--check",
        &seed.display().to_string(),
        "--json",
    ]));
    assert_eq!(lint.code, 1, "problems found: {lint:#?}");
    let doc = json(&lint);
    assert_eq!(doc["schema"], "instancectl.plist-check/v1");
    let kinds: Vec<&str> = doc["files"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "program-mismatch",
        "unknown-instance",
        "daemonizes",
        "syntax",
    ] {
        assert!(kinds.contains(&kind), "{kind}: {doc:#}");
    }
    assert_eq!(doc["problems"], kinds.len());
}

#[test]
fn launchd_options_only_in_launchd_help() {
    let help = run(Command::new(instancectl()).arg("--help")).ok();
    assert!(!help.stdout.contains("--launchd-dir"), "{help:#?}");
    assert!(!help.stdout.contains("--label-prefix"), "{help:#?}");
    let help = run(Command::new(instancectl())
        .arg("--help")
        .env("INSTANCECTL_MANAGER", "launchd"))
    .ok();
    assert!(help.stdout.contains("--launchd-dir"), "{help:#?}");
    // Hidden, still accepted.
    run(Command::new(instancectl()).args([
        "--label-prefix",
        "com.example.",
        "completions",
        "bash",
    ]))
    .ok();
}

fn install_script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/install.sh")
        .display()
        .to_string()
}

/// man's bold and underline, "X\bX" and "_\bX", as plain text.
fn without_overstrike(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn install_script_stages_under_destdir() {
    let dest = tempfile::tempdir().unwrap();
    let staged = run(Command::new("bash")
        .args([&install_script(), "--binary", instancectl()])
        .env("DESTDIR", dest.path())
        .env("PREFIX", "/opt/instancectl")
        .env("SYSTEMD", "yes"))
    .ok();
    let root = dest.path();
    for (file, mode) in [
        ("opt/instancectl/sbin/instancectl", 0o755),
        ("opt/instancectl/share/man/man8/instancectl.8", 0o644),
        (
            "opt/instancectl/share/bash-completion/completions/instancectl",
            0o644,
        ),
        (
            "opt/instancectl/share/zsh/site-functions/_instancectl",
            0o644,
        ),
        (
            "opt/instancectl/share/fish/vendor_completions.d/instancectl.fish",
            0o644,
        ),
        ("etc/systemd/system/instancectl.service", 0o644),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(root.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}\n{staged:#?}"));
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
    }
    let unit =
        std::fs::read_to_string(root.join("etc/systemd/system/instancectl.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/opt/instancectl/sbin/instancectl supervise"),
        "{unit}"
    );
    let page = run(Command::new("man")
        .args([
            "-l",
            &root
                .join("opt/instancectl/share/man/man8/instancectl.8")
                .display()
                .to_string(),
        ])
        .env("MANWIDTH", "80"))
    .ok();
    let page = without_overstrike(&page.stdout);
    assert!(page.contains("instancectl(8)"), "{page}");
    assert!(page.contains("INSTANCECTL STATUS"), "{page}");
    assert!(page.contains("--textfile"), "{page}");
    // Nothing but the staged tree: no unit without SYSTEMD=yes on a host without systemd.
    let dest = tempfile::tempdir().unwrap();
    run(Command::new("bash")
        .args([&install_script(), "--binary", instancectl()])
        .env("DESTDIR", dest.path())
        .env("SYSTEMD", "no"))
    .ok();
    assert!(dest.path().join("usr/local/sbin/instancectl").exists());
    assert!(!dest.path().join("etc").exists());

    let bad = run(Command::new("bash")
        .args([&install_script(), "--binary", instancectl()])
        .env("DESTDIR", dest.path())
        .env("PREFIX", "relative"));
    assert_eq!(bad.code, 2, "{bad:#?}");
}

#[test]
fn install_script_installs_on_a_host() {
    let sb = Sandbox::bare();
    // /etc and /var are the sandbox's overlays; /usr/local gets a tmpfs of its own.
    sb.sh("mount -t tmpfs tmpfs /usr/local").ok();
    // The script and the unit it installs, where the sandbox sees them (a checkout
    // under /tmp is hidden by the sandbox's own /tmp; the target directory is not).
    let checkout = sb.root().join("checkout");
    for file in ["scripts/install.sh", "contrib/instancectl.service"] {
        let to = checkout.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join(file), to).unwrap();
    }
    let installed = sb
        .sh(&format!(
            "SYSTEMD=yes bash {}/scripts/install.sh --binary {}",
            checkout.display(),
            instancectl()
        ))
        .ok();
    assert!(
        installed
            .stdout
            .contains("installed /etc/systemd/system/instancectl.service"),
        "{installed:#?}"
    );
    assert!(
        sb.path_in_upper("/etc/systemd/system/instancectl.service")
            .exists()
    );
    // Found where people look: PATH, man, bash-completion's directory.
    let found = sb
        .sh(
            "PATH=/usr/local/sbin:/usr/bin:/bin && command -v instancectl && \
             instancectl --version && man -w instancectl && \
             source /usr/local/share/bash-completion/completions/instancectl && \
             complete -p instancectl",
        )
        .ok();
    let lines: Vec<&str> = found.stdout.lines().collect();
    assert_eq!(lines[0], "/usr/local/sbin/instancectl", "{found:#?}");
    assert!(lines[1].starts_with("instancectl "), "{found:#?}");
    assert_eq!(
        lines[2], "/usr/local/share/man/man8/instancectl.8",
        "{found:#?}"
    );
    assert!(
        lines[3].contains("_instancectl") && lines[3].ends_with("instancectl"),
        "{found:#?}"
    );
}
