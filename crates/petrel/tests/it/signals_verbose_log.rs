//! `log-verbose true`: the uploader writes the lines the article shows PowerMTA writing —
//! `Signals: Discovered 0 files` when idle, then `Signals: Discovered sp1-….json`,
//! `Signals: Transferred sp1-….json successfully.` and `Signals: Discovered 1 file,
//! transferred 1 file successfully` — with event files named `sp1-` + 16 upper-case hex
//! digits + `.json`. A file an earlier petrel named in lower-case hex, left in the event
//! directory across an upgrade, is still found and uploaded.

use crate::common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{free_port, relay_to_sink, send_mail, signals_to_self, wait_for_events, Petrel, Sink};

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

/// Waits until the log has a line containing `needle`; returns that line.
fn log_line(p: &Petrel, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(l) = p.log().lines().find(|l| l.contains(needle)) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with `{needle}`:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The file name after `Signals: Discovered ` when it is one (not a count).
fn discovered_file(line: &str) -> Option<&str> {
    let rest = line.split("Signals: Discovered ").nth(1)?;
    let name = rest.split_whitespace().next()?;
    name.starts_with("sp1-").then_some(name)
}

fn is_article_name(name: &str) -> bool {
    name.len() == "sp1-0000000000003FBD.json".len()
        && name.starts_with("sp1-")
        && name.ends_with(".json")
        && name[4..20]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

#[test]
fn the_articles_log_lines_and_file_names() {
    let sink = Sink::start("127.0.0.1");
    let sig = free_port();
    let mut p = Petrel::start(&format!(
        "{}{}",
        relay_to_sink(sink.port),
        signals_to_self(sig, KEY, "  log-verbose true\n")
    ));

    // Idle: said at once after the start (then once a minute).
    log_line(&p, "Signals: Discovered 0 files");

    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["ana@sink.example"],
        "X-Job: verbose\r\n",
    );
    let discovered = log_line(&p, "Signals: Discovered sp1-");
    let name = discovered_file(&discovered).unwrap().to_string();
    assert!(is_article_name(&name), "{discovered}");
    let transferred = log_line(&p, &format!("Signals: Transferred {name} successfully."));
    assert!(
        transferred.contains("batch_id="),
        "petrel's detail follows: {transferred}"
    );
    log_line(
        &p,
        "Signals: Discovered 1 file, transferred 1 file successfully",
    );
    wait_for_events(sig, KEY, "campaigns=verbose&events=injection", 30, |r| {
        r.len() == 1
    });

    // An event file from an earlier version (lower-case hex name) waits in the directory
    // while petrel is stopped; the next start finds it and sends it.
    p.kill9();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let old_name = "sp1-17ffffffffffffab.json";
    let line = format!(
        r#"{{"msys":{{"message_event":{{"type":"reception","event_id":"7700000000000000001","message_id":"0000aabbccddeeff0011","timestamp":"{}","recv_method":"esmtp","rcpt_to":"old@sink.example","routing_domain":"sink.example","msg_from":"news@brand.example","campaign_id":"before-upgrade","subaccount_id":0}}}}}}"#,
        now.as_secs()
    );
    let events_dir = p.dir.path().join("events");
    std::fs::write(events_dir.join(old_name), format!("{line}\n")).unwrap();
    p.spawn();
    log_line(&p, &format!("Signals: Discovered {old_name}"));
    log_line(
        &p,
        &format!("Signals: Transferred {old_name} successfully."),
    );
    let events = wait_for_events(
        sig,
        KEY,
        "campaigns=before-upgrade&events=injection",
        30,
        |r| r.len() == 1,
    );
    assert_eq!(events[0]["rcpt_to"], "old@sink.example");
    assert!(!events_dir.join(old_name).exists(), "deleted after upload");
}
