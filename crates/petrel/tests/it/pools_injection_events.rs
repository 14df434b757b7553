//! Injection events and pools (issue 11, item 2): a message sent to a pool is given one of
//! the pool's members when it is received, so its injection event already names the member
//! (`binding`), the pool (`binding_group`) and the member's `sending_ip`, and the member's own
//! `enable-signals` decides every event of the message, the injection included. Checked over
//! real SMTP on loopback for pools chosen by `default-virtual-mta`, a `<pattern-list>` and
//! `X-Virtual-MTA`, with `queue-to` and backoff retries: every recipient with an outcome event
//! has exactly one injection event that agrees with it. A message spooled by an older petrel
//! (no member stored) still loads and is sent by one member.

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{python, text, Petrel, Sink};
use petrel_spool::{Envelope, MessageFacts, Recipient, Spool, SpoolOptions};
use serde_json::Value;

/// The article's use cases 3 and 4: Signals off globally, on (with a subaccount each) for
/// the vmtas that are a pool's members, and off for one member.
const CONFIG: &str = r#"
<source 0/0>
  always-allow-relaying yes
  process-x-job yes
  process-x-virtual-mta yes
  pattern-list route
  default-virtual-mta pool1
</source>
<pattern-list route>
  mail-from /@brand2\.example$/ virtual-mta=pool2
</pattern-list>
<virtual-mta mta1>
  smtp-source-host 127.0.0.2 mta1.petrel.test
  enable-signals true,subaccount=11
</virtual-mta>
<virtual-mta mta2>
  smtp-source-host 127.0.0.3 mta2.petrel.test
  enable-signals true,subaccount=12
</virtual-mta>
<virtual-mta mta3>
  smtp-source-host 127.0.0.4 mta3.petrel.test
  enable-signals true,subaccount=13
</virtual-mta>
<virtual-mta quiet>
  smtp-source-host 127.0.0.5 quiet.petrel.test
  enable-signals false
</virtual-mta>
<virtual-mta-pool pool1>
  virtual-mta mta1
  virtual-mta mta2
</virtual-mta-pool>
<virtual-mta-pool pool2>
  virtual-mta mta3
  virtual-mta quiet
  virtual-mta mta2
</virtual-mta-pool>
<smtp-pattern-list throttles>
  reply /\[TS01\]/ mode=backoff
</smtp-pattern-list>
<domain sink.example>
  smtp-hosts [127.0.0.1]:{SINK}
  use-starttls no
  smtp-pattern-list throttles
  retry-after 1h
  backoff-retry-after 1s
  backoff-to-normal-after-delivery yes
</domain>
<domain hotmail.example>
  queue-to sink.example
</domain>
<signals>
  api-key 0123456789abcdef0123456789abcdef01234567
  upload false
  event-dir {DIR}/events
</signals>
enable-signals false
"#;

/// Sends every message of a JSON list `[[from, [rcpts…], headers], …]` over one connection.
const SEND: &str = r#"
import json, smtplib, sys
port, messages = int(sys.argv[1]), json.loads(sys.argv[2])
with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
    for sender, rcpts, headers in messages:
        msg = headers + "Subject: pools\r\nFrom: <" + sender + ">\r\nTo: <" + rcpts[0] + ">\r\n\r\nHello.\r\n"
        s.sendmail(sender, rcpts, msg)
"#;

fn start(body: &str) -> (Sink, Petrel) {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&body.replace("{SINK}", &sink.port.to_string()));
    (sink, p)
}

/// Every event line in the event directory (open files included), as the message event.
fn events(dir: &Path) -> Vec<Value> {
    common::event_files(&dir.join("events"), false)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .map(|v| v["msys"]["message_event"].clone())
        .collect()
}

/// Polls the event directory until `done` holds, or panics with what was there.
fn wait_for_events(dir: &Path, secs: u64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = events(dir);
        if done(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "events never satisfied the test: {got:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

/// Who a recipient's message was sent by, as every one of its events must name it.
const SHARED: [&str; 6] = [
    "rcpt_to",
    "campaign_id",
    "binding_group",
    "binding",
    "sending_ip",
    "subaccount_id",
];

#[test]
fn every_outcome_has_one_injection_from_the_same_pool_member() {
    let (sink, p) = start(CONFIG);
    // Pools chosen three ways, and a plain vmta; recipients that are delivered, bounced,
    // delayed for good (retry-after 1h), throttled into backoff and then delivered, and in
    // a `queue-to` domain.
    let routes = [
        ("news@brand1.example", ""),
        ("news@brand1.example", "X-Virtual-MTA: pool2\r\n"),
        ("news@brand2.example", ""),
        ("news@brand1.example", "X-Virtual-MTA: mta1\r\n"),
    ];
    let mut messages = Vec::new();
    for i in 0..16 {
        let (from, headers) = routes[i % routes.len()];
        let mut rcpts = vec![
            format!("ok-{i}@sink.example"),
            format!("hot-{i}@hotmail.example"),
        ];
        match i % 3 {
            0 => rcpts.push(format!("reject-{i}@sink.example")),
            1 => rcpts.push(format!("tempfail-9-m{i}@sink.example")),
            _ => rcpts.push(format!("throttle-1-m{i}@sink.example")),
        }
        messages.push(serde_json::json!([
            from,
            rcpts,
            format!("{headers}X-Job: camp-{i}\r\n")
        ]));
    }
    let out = python(
        SEND,
        &[&p.smtp_port.to_string(), &Value::from(messages).to_string()],
    );
    assert!(out.status.success(), "{}", text(&out));

    // Every `ok-`, `hot-` and (after its backoff retry) `throttle-` recipient reaches the sink.
    let delivered = 16 * 2 + 5;
    let deadline = Instant::now() + Duration::from_secs(60);
    let by_rcpt: HashMap<String, String> = loop {
        let got: HashMap<String, String> = sink
            .records()
            .iter()
            .flat_map(|m| {
                let peer = m["peer"].as_str().unwrap().to_string();
                m["rcpts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |r| (r.as_str().unwrap().to_lowercase(), peer.clone()))
            })
            .collect();
        if got.len() >= delivered {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {delivered} recipients delivered: {got:?}\n{}",
            got.len(),
            p.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // All recipients of a message leave from one member, whatever their queue.
    for i in 0..16 {
        assert_eq!(
            by_rcpt[&format!("ok-{i}@sink.example")],
            by_rcpt[&format!("hot-{i}@hotmail.example")],
            "message {i}"
        );
    }
    // The messages `quiet` sent: none of their recipients has any event.
    let quiet: Vec<usize> = (0..16)
        .filter(|i| by_rcpt[&format!("ok-{i}@sink.example")] == "127.0.0.5")
        .collect();
    assert!(!quiet.is_empty(), "pool2 gives some messages to `quiet`");
    let signalled = 3 * (16 - quiet.len());

    // Wait until each recipient a member with Signals sent has its outcome (delivery,
    // bounce or delay) and every delivery is in.
    let outcome =
        |e: &Value| ["delivery", "inband", "tempfail"].contains(&e["type"].as_str().unwrap());
    let quiet_deliveries = quiet
        .iter()
        .map(|i| 2 + usize::from(i % 3 == 2))
        .sum::<usize>();
    wait_for_events(p.dir.path(), 30, |ev| {
        let rcpts: std::collections::HashSet<&str> = ev
            .iter()
            .filter(|e| outcome(e))
            .map(|e| e["rcpt_to"].as_str().unwrap())
            .collect();
        rcpts.len() >= signalled && count(ev, "delivery") >= delivered - quiet_deliveries
    });
    // Let anything late (a second injection, a stray event of `quiet`'s) arrive too.
    std::thread::sleep(Duration::from_secs(1));
    let events = events(p.dir.path());
    for e in &events {
        let silent = quiet
            .iter()
            .any(|i| e["campaign_id"] == format!("camp-{i}"));
        assert!(!silent, "quiet has enable-signals false: {e}");
    }

    let mut injections: HashMap<&str, Vec<&Value>> = HashMap::new();
    for e in events.iter().filter(|e| e["type"] == "reception") {
        injections
            .entry(e["message_id"].as_str().unwrap())
            .or_default()
            .push(e);
    }
    assert_eq!(count(&events, "reception"), signalled, "{events:#?}");
    assert!(count(&events, "inband") > 0 && count(&events, "tempfail") > 0);
    let mut pools = std::collections::HashSet::new();
    for e in events.iter().filter(|e| outcome(e)) {
        let id = e["message_id"].as_str().unwrap();
        let inj = injections.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(inj.len(), 1, "one injection for {e}: {inj:#?}");
        for field in SHARED {
            assert_eq!(inj[0][field], e[field], "{field}: {e} vs {}", inj[0]);
        }
        assert!(inj[0]["sending_ip"].is_string(), "{}", inj[0]);
        assert!(inj[0]["binding"].is_string(), "{}", inj[0]);
        // The member's subaccount: 11, 12 or 13 for mta1, mta2, mta3.
        let member = inj[0]["binding"].as_str().unwrap();
        let want = format!("1{}", &member[3..]);
        assert_eq!(inj[0]["subaccount_id"].to_string(), want, "{}", inj[0]);
        pools.insert(e["binding_group"].as_str().unwrap_or("-").to_string());
    }
    let mut pools: Vec<String> = pools.into_iter().collect();
    pools.sort();
    assert_eq!(pools, ["-", "pool1", "pool2"], "every route was exercised");
    // Backoff: a throttled recipient was delayed, then delivered from the same member.
    let i = (0..16).find(|i| i % 3 == 2 && !quiet.contains(i)).unwrap();
    let throttled: Vec<&Value> = events
        .iter()
        .filter(|e| e["rcpt_to"] == format!("throttle-1-m{i}@sink.example"))
        .collect();
    assert!(
        ["reception", "tempfail", "delivery"]
            .iter()
            .all(|t| throttled.iter().any(|e| e["type"] == *t)),
        "{throttled:#?}"
    );
}

/// The article's measurement (issue 11): 30 messages through a pool whose members alone set
/// `enable-signals` gave 30 deliveries and no injection; now each delivery has its injection.
#[test]
fn enable_signals_on_pool_members_only_yields_injection_events() {
    let (sink, p) = start(CONFIG);
    let messages: Vec<Value> = (0..30)
        .map(|i| serde_json::json!(["news@brand1.example", [format!("r{i}@sink.example")], ""]))
        .collect();
    let out = python(
        SEND,
        &[&p.smtp_port.to_string(), &Value::from(messages).to_string()],
    );
    assert!(out.status.success(), "{}", text(&out));
    sink.wait_for(30, 60);
    let events = wait_for_events(p.dir.path(), 30, |ev| {
        count(ev, "delivery") == 30 && count(ev, "reception") >= 30
    });
    assert_eq!(count(&events, "reception"), 30, "{events:#?}");
    let members: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "reception")
        .map(|e| e["binding"].as_str().unwrap())
        .collect();
    // The pool's members in turn, one message each.
    assert_eq!(members.iter().filter(|m| **m == "mta1").count(), 15);
    assert_eq!(members.iter().filter(|m| **m == "mta2").count(), 15);
}

/// A message spooled by a petrel that chose pool members at delivery (its record has the
/// pool and no member) loads, and all of its recipients are sent by the one member the pool
/// gives that message.
#[test]
fn an_older_spool_record_without_a_member_is_sent_by_one_member() {
    let spool_dir = tempfile::tempdir().unwrap();
    let id = {
        let (spool, _) = Spool::open(spool_dir.path(), SpoolOptions::default()).unwrap();
        let env = Envelope {
            mail_from: "news@brand1.example".into(),
            recipients: vec![
                Recipient::new("old-a@sink.example"),
                Recipient::new("old-b@hotmail.example"),
            ],
            vmta: "pool1".into(),
            pool_member: None,
            job_id: Some("old".into()),
            env_id: None,
            ret: None,
            smtputf8: false,
            body_8bit: false,
            auth_user: None,
            client_ip: None,
            client_helo: None,
            received_at_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
            facts: MessageFacts::default(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let body = b"From: <news@brand1.example>\r\nSubject: old\r\n\r\nHello.\r\n".to_vec();
        let id = rt.block_on(spool.commit(env, body)).unwrap();
        drop(spool);
        id
    };
    let record = std::fs::read_dir(spool_dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read(e.path()).unwrap_or_default())
        .find(|b| b.windows(12).any(|w| w == b"\"vmta\":\"pool"))
        .expect("a segment holds the record");
    assert!(
        !record.windows(11).any(|w| w == b"pool_member"),
        "written as an older petrel wrote it"
    );

    let (sink, p) = start(&format!(
        "<spool {}>\n</spool>\n{CONFIG}",
        spool_dir.path().display()
    ));
    // One transaction: `queue-to` puts both recipients in sink.example's queue.
    let got = sink.wait_for(1, 60);
    let rcpts: Vec<&Value> = got
        .iter()
        .flat_map(|m| m["rcpts"].as_array().unwrap())
        .collect();
    assert_eq!(rcpts.len(), 2, "{got:?}");
    // The pool's choice for this message (by its spool id).
    let want = ["127.0.0.2", "127.0.0.3"][(id.0 % 2) as usize];
    for m in &got {
        assert_eq!(m["peer"], want, "{m}");
    }
    let events = wait_for_events(p.dir.path(), 30, |ev| count(ev, "delivery") == 2);
    let member = ["mta1", "mta2"][(id.0 % 2) as usize];
    for e in events.iter().filter(|e| e["type"] == "delivery") {
        assert_eq!(
            (e["binding"].as_str(), e["binding_group"].as_str()),
            (Some(member), Some("pool1")),
            "{e}"
        );
    }
}

/// The member chosen at reception keeps the message while it is paused, even past its
/// retry time and after a reload removed it; once its queue runs again, the mail moves to
/// the member the pool now gives it.
#[test]
fn a_member_paused_keeps_its_mail_and_one_removed_by_a_reload_hands_it_on() {
    // The first message of pool1 goes to mta1.
    let (sink, p) = start(&CONFIG.replace("retry-after 1h", "retry-after 3s"));
    common::send_mail(
        p.smtp_port,
        "news@brand.example",
        &["tempfail-1-a@sink.example"],
        "X-Job: moved\r\n",
    );
    let events = wait_for_events(p.dir.path(), 30, |ev| count(ev, "tempfail") == 1);
    let delay = events.iter().find(|e| e["type"] == "tempfail").unwrap();
    assert_eq!(
        (delay["binding"].as_str(), delay["sending_ip"].as_str()),
        (Some("mta1"), Some("127.0.0.2")),
        "{delay}"
    );

    // Paused past its retry time (3 s): the recipient stays with mta1.
    let out = p.cli(&["pause", "queue", "sink.example/mta1"]);
    assert!(out.status.success(), "{}", text(&out));
    std::thread::sleep(Duration::from_secs(5));
    assert!(sink.records().is_empty(), "{:?}", sink.records());

    let original = std::fs::read_to_string(&p.config).unwrap();
    let without_mta1 = original
        .replace(
            "<virtual-mta mta1>\n  smtp-source-host 127.0.0.2 mta1.petrel.test\n  \
             enable-signals true,subaccount=11\n</virtual-mta>\n",
            "",
        )
        .replace("  virtual-mta mta1\n", "");
    assert_ne!(without_mta1, original);
    std::fs::write(&p.config, without_mta1).unwrap();
    let out = p.cli(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        sink.records().is_empty(),
        "still paused: {:?}",
        sink.records()
    );
    let out = p.cli(&["resume", "queue", "sink.example/mta1"]);
    assert!(out.status.success(), "{}", text(&out));

    // The retry goes out from mta2, the pool's remaining member.
    let deadline = Instant::now() + Duration::from_secs(30);
    let moved = loop {
        let got = sink.records();
        if let Some(m) = got
            .iter()
            .find(|m| m["rcpts"][0] == "tempfail-1-a@sink.example")
        {
            break m.clone();
        }
        assert!(
            Instant::now() < deadline,
            "never retried: {got:?}\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(moved["peer"], "127.0.0.3", "{moved}");
    let events = wait_for_events(p.dir.path(), 30, |ev| {
        ev.iter()
            .any(|e| e["type"] == "delivery" && e["campaign_id"] == "moved")
    });
    let delivery = events
        .iter()
        .find(|e| e["type"] == "delivery" && e["campaign_id"] == "moved")
        .unwrap();
    assert_eq!(
        (
            delivery["binding"].as_str(),
            delivery["binding_group"].as_str()
        ),
        (Some("mta2"), Some("pool1")),
        "{delivery}"
    );
    assert!(
        p.log()
            .contains("virtual MTA mta1 of pool pool1 no longer exists; mta2 sends it instead"),
        "{}",
        p.log()
    );
}
