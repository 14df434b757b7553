//! Backoff mode driven by what the receiver answers (`<smtp-pattern-list>`): a throttling
//! reply puts the queue into backoff, the recipient is retried on `backoff-retry-after`
//! (not the hour of `retry-after`), the delivery returns the queue to normal
//! (`backoff-to-normal-after-delivery`), a `bounce-rcpt` reply bounces at once, a
//! `defer-queue` reply at RCPT puts the queue into retry mode, and the operator can switch
//! modes with `petrel set queue --mode`.

use crate::common;

use std::time::{Duration, Instant};

use common::{http, relay_to_sink_with, send_mail, text, wait_for_acct, Petrel, Sink};
use serde_json::Value;

const QUEUE: &str = "sink.example/{default}";

fn queue(p: &Petrel) -> Option<Value> {
    let out = p.cli(&["show", "queues", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["data"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == QUEUE)
        .cloned()
}

fn mode(p: &Petrel) -> String {
    queue(p).map_or("normal".into(), |q| q["mode"].as_str().unwrap().to_string())
}

fn wait_for_mode(p: &Petrel, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while mode(p) != want {
        assert!(
            Instant::now() < deadline,
            "queue never reached {want}: {:?}",
            queue(p)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn throttling_replies_drive_backoff_mode() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&format!(
        r#"
<smtp-pattern-list throttles>
  reply /\[TS01\]/ mode=backoff
  reply /over quota/ bounce-rcpt
  reply /\[TS02\]/ defer-queue
</smtp-pattern-list>
{relay}<acct-file {{DIR}}/acct.csv>
  records d,b,t
</acct-file>
"#,
        relay = relay_to_sink_with(
            sink.port,
            "  smtp-pattern-list throttles\n  retry-after 1h\n  backoff-retry-after 2s\n  backoff-to-normal-after-delivery yes\n",
        )
    ));

    // First attempt: 421 [TS01] → deferred, and the queue is in backoff.
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["throttle-1@sink.example"],
        "",
    );
    wait_for_acct(p.dir.path(), 30, |r| {
        r["type"] == "t" && r["rcpt"] == "throttle-1@sink.example"
    });
    wait_for_mode(&p, "backoff");
    let shown = text(&p.cli(&["show", "queues"]));
    let row = shown
        .lines()
        .find(|l| l.starts_with(QUEUE))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        row.trim_end().ends_with('B'),
        "st column shows backoff: {shown}"
    );
    assert!(
        p.log().contains("[TS01]") && p.log().contains("queue now in backoff mode"),
        "{}",
        p.log()
    );

    // The retry comes after backoff-retry-after (2 s); with retry-after 1h it never would.
    let got = sink.wait_for(1, 30);
    assert_eq!(got[0]["rcpts"][0], "throttle-1@sink.example");
    // The delivery ends backoff.
    wait_for_mode(&p, "normal");

    // bounce-rcpt: a 452 "over quota" bounces now instead of waiting an hour.
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["quota-1@sink.example"],
        "",
    );
    let rows = wait_for_acct(p.dir.path(), 30, |r| {
        r["type"] == "b" && r["rcpt"] == "quota-1@sink.example"
    });
    let b = rows
        .iter()
        .find(|r| r["type"] == "b" && r["rcpt"] == "quota-1@sink.example")
        .unwrap();
    assert!(b["dsnDiag"].contains("over quota"), "{b:?}");
    assert!(
        !rows
            .iter()
            .any(|r| r["type"] == "t" && r["rcpt"] == "quota-1@sink.example"),
        "not deferred first: {rows:?}"
    );
    assert_eq!(mode(&p), "normal", "bounce-rcpt does not switch modes");

    // defer-queue at RCPT (the 421 also ends the connection): the queue is in retry mode
    // for the hour of retry-after, until the operator schedules it.
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["defer-1@sink.example"],
        "",
    );
    wait_for_acct(p.dir.path(), 30, |r| {
        r["type"] == "t" && r["rcpt"] == "defer-1@sink.example"
    });
    let q = queue(&p).expect("the queue waits");
    assert_eq!(q["retry"], true, "{q}");
    assert_eq!(q["mode"], "normal", "{q}");
    let out = p.cli(&["schedule", QUEUE]);
    assert!(out.status.success(), "{}", text(&out));
    let got = sink.wait_for(2, 30);
    assert!(
        got.iter().any(|m| m["rcpts"][0] == "defer-1@sink.example"),
        "{got:?}"
    );

    // The operator's switch.
    let out = p.cli(&["set", "queue", "--mode=backoff", QUEUE]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("1 queue(s) set to backoff mode."),
        "{}",
        text(&out)
    );
    assert_eq!(mode(&p), "backoff");
    let out = p.cli(&["set", "queue", "--mode=normal", "sink.*"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&p), "normal");
    let out = p.cli(&["set", "queue", "--mode=fast", QUEUE]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses the mode: {}",
        text(&out)
    );
    let (status, body) = http(
        p.mgmt_port,
        "POST",
        "/setQueueMode?queue=sink.example&mode=fast",
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("`mode` must be `backoff` or `normal`"),
        "{body}"
    );
}
