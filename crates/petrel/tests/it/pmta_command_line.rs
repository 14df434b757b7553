//! Scripts call `pmta`: through a symlink named `pmta`, petrel's binary answers PowerMTA's
//! verbs with the same results as petrel's own (`show queues`, `show status`, `pause` /
//! `resume queue`, `reload`…), finds the daemon through `$PETREL_CONFIG` when
//! `/etc/pmta/config` is absent, and refuses what it cannot do with exit code 1.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{petrel_bin, python, text, Petrel};

/// Mail for two domains, routed to a closed loopback port: each queue goes into retry mode
/// (retry-after 10m) and then holds still while the two tools are compared.
const CONFIG: &str = "<source 0/0>\n  always-allow-relaying yes\n  process-x-job yes\n</source>\n";

const INJECT: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
def send(rcpts, job):
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.sendmail("news@sender.example", rcpts, "X-Job: %s\r\nSubject: q\r\n\r\nbody\r\n" % job)
send(["one@a.example"], "spring")
send(["one@b.example", "two@b.example"], "summer")
print("ok")
"#;

/// A directory with `pmta` → the petrel binary, as the documented install step makes.
struct PmtaLink {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl PmtaLink {
    fn new() -> PmtaLink {
        assert!(
            !Path::new("/etc/pmta/config").exists(),
            "/etc/pmta/config exists on this machine: pmta would use it instead of $PETREL_CONFIG"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pmta");
        std::os::unix::fs::symlink(petrel_bin(), &path).unwrap();
        PmtaLink { _dir: dir, path }
    }

    /// `pmta ARGS…` for the daemon `p`, found through `$PETREL_CONFIG`.
    fn run(&self, p: &Petrel, args: &[&str]) -> Output {
        Command::new(&self.path)
            .args(args)
            .env("PETREL_CONFIG", &p.config)
            .current_dir(p.dir.path())
            .output()
            .unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Both tools succeeded with the same output.
fn same(pmta: &Output, petrel: &Output) -> String {
    assert!(pmta.status.success(), "pmta: {}", text(pmta));
    assert!(petrel.status.success(), "petrel: {}", text(petrel));
    assert_eq!(stdout(pmta), stdout(petrel), "pmta and petrel differ");
    stdout(pmta)
}

fn queues(p: &Petrel) -> serde_json::Value {
    let out = p.cli(&["show", "queues", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Injects the mail and waits until both queues are in retry mode.
fn queued_petrel() -> Petrel {
    let p = Petrel::start(CONFIG);
    let out = python(INJECT, &[&p.smtp_port.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = queues(&p);
        let rows = v["data"]["queues"].as_array().unwrap();
        if rows.len() == 2 && rows.iter().all(|q| q["retry"] == true) {
            return p;
        }
        assert!(Instant::now() < deadline, "queues never settled: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The status table without the uptime, which ticks between two calls.
fn without_uptime(status: &str) -> String {
    status
        .lines()
        .map(|l| l.split(", up ").next().unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

fn row<'a>(table: &'a str, queue: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(queue))
        .unwrap_or_else(|| panic!("no {queue} in\n{table}"))
}

#[test]
fn pmta_verbs_through_the_symlink_give_petrels_results() {
    let pmta = PmtaLink::new();
    let p = queued_petrel();

    let table = same(
        &pmta.run(&p, &["show", "queues"]),
        &p.cli(&["show", "queues"]),
    );
    assert!(table.contains("a.example/{default}") && table.contains("b.example/{default}"));
    assert!(table.contains("2 of 2 queues."), "{table}");
    same(
        &pmta.run(&p, &["--json", "show", "queues"]),
        &p.cli(&["show", "queues", "--json"]),
    );

    let (a, b) = (
        pmta.run(&p, &["show", "status"]),
        p.cli(&["show", "status"]),
    );
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        text(&a),
        text(&b)
    );
    assert_eq!(without_uptime(&stdout(&a)), without_uptime(&stdout(&b)));
    assert!(stdout(&a).contains("running"), "{}", text(&a));

    // pause / resume: pmta on one queue, petrel on the other; the same answers and states.
    let paused = same(
        &pmta.run(&p, &["pause", "queue", "a.example/*"]),
        &p.cli(&["pause", "queue", "b.example/*"]),
    );
    assert_eq!(paused, "1 queue(s) paused.\n");
    let table = stdout(&p.cli(&["show", "queues"]));
    for q in ["a.example/", "b.example/"] {
        assert!(row(&table, q).ends_with("PR"), "{table}");
    }
    let resumed = same(
        &pmta.run(&p, &["resume", "queue", "a.example/*"]),
        &p.cli(&["resume", "queue", "b.example/*"]),
    );
    assert_eq!(resumed, "1 queue(s) resumed.\n");
    let table = stdout(&pmta.run(&p, &["show", "queues"]));
    for q in ["a.example/", "b.example/"] {
        assert!(!row(&table, q).contains('P'), "{table}");
    }

    // reload: the same answer; a broken file fails the same way, and the daemon keeps going.
    let reloaded = same(&pmta.run(&p, &["reload"]), &p.cli(&["reload"]));
    assert_eq!(reloaded, "Configuration reloaded.\n");
    let original = std::fs::read_to_string(&p.config).unwrap();
    std::fs::write(&p.config, format!("{original}\nsmtp-servce true\n")).unwrap();
    let (a, b) = (pmta.run(&p, &["reload"]), p.cli(&["reload"]));
    assert_eq!(a.status.code(), Some(1), "{}", text(&a));
    assert_eq!(b.status.code(), Some(1), "{}", text(&b));
    let a_err = String::from_utf8_lossy(&a.stderr);
    let b_err = String::from_utf8_lossy(&b.stderr);
    assert!(a_err.contains("smtp-servce"), "{}", text(&a));
    assert_eq!(a_err.strip_prefix("pmta: "), b_err.strip_prefix("petrel: "));
    std::fs::write(&p.config, original).unwrap();
    same(
        &pmta.run(&p, &["show", "queues"]),
        &p.cli(&["show", "queues"]),
    );
}

#[test]
fn unsupported_powermta_verbs_exit_1_and_change_nothing() {
    let pmta = PmtaLink::new();
    let p = queued_petrel();
    let before = stdout(&p.cli(&["show", "queues"]));
    for args in [
        &["show", "settings", "a.example"][..],
        &["rotate", "acct"],
        &["frobnicate"],
        &["--xml", "show", "status"],
        // A delete with a filter petrel cannot apply is refused, never run without it.
        &["delete", "--queue=a.example/*", "--rcpt=one@a.example"],
    ] {
        let out = pmta.run(&p, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("pmta: ") && err.contains("not supported by petrel"),
            "{args:?}: {}",
            text(&out)
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
    }
    assert_eq!(stdout(&p.cli(&["show", "queues"])), before);
}

#[test]
fn powermta_list_options_and_queue_actions() {
    let pmta = PmtaLink::new();
    let p = queued_petrel();

    // topqueues: most recipients first; filters and --maxitems, with the matching total.
    let top = stdout(&pmta.run(&p, &["show", "topqueues"]));
    let order: Vec<&str> = top.lines().skip(1).take(2).collect();
    assert!(
        order[0].starts_with("b.example/") && order[1].starts_with("a.example/"),
        "{top}"
    );
    let one = stdout(&pmta.run(&p, &["show", "queues", "--sort=rcpt", "--maxitems=1"]));
    assert!(
        one.contains("b.example/") && !one.contains("a.example/"),
        "{one}"
    );
    assert!(one.contains("1 of 2 queues."), "{one}");
    let only_a = stdout(&pmta.run(&p, &["show", "queues", "a.example"]));
    assert!(
        only_a.contains("a.example/") && !only_a.contains("b.example/"),
        "{only_a}"
    );

    same(&pmta.run(&p, &["show", "jobs"]), &p.cli(&["show", "jobs"]));

    let out = pmta.run(&p, &["set", "queue", "--mode=backoff", "a.example/*"]);
    assert_eq!(
        stdout(&out),
        "1 queue(s) set to backoff mode.\n",
        "{}",
        text(&out)
    );
    let backoff = stdout(&pmta.run(&p, &["show", "queues", "--mode=backoff"]));
    assert!(
        backoff.contains("a.example/") && !backoff.contains("b.example/"),
        "{backoff}"
    );

    let out = pmta.run(&p, &["pause", "job", "summer"]);
    assert_eq!(stdout(&out), "paused job.\n", "{}", text(&out));
    let jobs = stdout(&pmta.run(&p, &["show", "jobs"]));
    let summer = row(&jobs, "summer");
    assert!(summer.ends_with("yes"), "{jobs}");
    let out = pmta.run(&p, &["resume", "job", "summer"]);
    assert_eq!(stdout(&out), "resumed job.\n", "{}", text(&out));

    let out = pmta.run(&p, &["schedule", "--retry-recipients", "b.example/*"]);
    assert_eq!(
        stdout(&out),
        "1 matching queue(s) scheduled.\n",
        "{}",
        text(&out)
    );

    let out = pmta.run(&p, &["delete", "--queue=a.example/*"]);
    assert_eq!(stdout(&out), "1 recipient(s) deleted.\n", "{}", text(&out));
    // The emptied queue stays listed only because it is in backoff mode.
    let table = stdout(&pmta.run(&p, &["show", "queues"]));
    let a = row(&table, "a.example/");
    assert_eq!(a.split_whitespace().nth(1), Some("0"), "{table}");

    let out = pmta.run(&p, &["test", "config"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("configuration OK"), "{}", text(&out));

    let out = pmta.run(&p, &["show", "version"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).starts_with("petrel "), "{}", text(&out));
}
