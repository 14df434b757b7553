//! The whole loop, counted twice: 2,000 messages of two campaigns from two pools (two
//! source IPs) go through `petrel serve` to `petrel sink` with a fixed mix and seed. The sink
//! refuses, defers, drops, answers slowly, accepts; later it bounces out of band and
//! complains (by SMTP back to petrel's bounce and feedback-loop processors, through signed
//! VERP return paths), opens, clicks (through petrel's tracking host) and unsubscribes. Then
//! petrel's accounting files and its Signals events search must agree exactly with the
//! sink's own counts, behaviour by behaviour, per campaign and per source IP.
//!
//! The counts are compared as typed tallies ([`Outcomes`], [`Reading`]) built from each
//! source, so another source (the Metrics API) is one more `from_…` function.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::sink::{PetrelSink, Web};
use common::{acct_rows, free_port, python, signals_get, signals_to_self, test_cert, text, Petrel};
use petrel_sink::{Counts, Snapshot};
use serde_json::Value;

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";
const MESSAGES: usize = 2000;
const MIX: &str = "delivered=62,hard=6,block=3,soft=5,defer=3,drop=3,slow=2,tls-required=8,oob=5,fbl=3,open=40,click=12,unsub=3";

const CONFIG: &str = r#"
smtp-listener 127.0.0.1:{RETURNS}
<source 127.0.0.1>
  always-allow-relaying yes
  process-x-job yes
  retain-x-job yes
  process-x-virtual-mta yes
</source>
<virtual-mta mta1>
  smtp-source-host 127.0.0.2 mta1.petrel.test
</virtual-mta>
<virtual-mta mta2>
  smtp-source-host 127.0.0.3 mta2.petrel.test
</virtual-mta>
<virtual-mta-pool clean>
  virtual-mta mta1
</virtual-mta-pool>
<virtual-mta-pool dirty>
  virtual-mta mta2
</virtual-mta-pool>
<bounce-processor>
  <address-list>
    domain bounces.brand.example
  </address-list>
</bounce-processor>
<feedback-loop-processor>
  <address-list>
    domain fbl.brand.example
  </address-list>
</feedback-loop-processor>
<domain *>
  smtp-hosts [127.0.0.1]:{SINK}
  use-starttls no
  retry-after 1s
  max-smtp-out 10
</domain>
<domain gmail.example>
  use-starttls yes
</domain>
<acct-file {DIR}/acct.csv>
  records d,b,t,rb,f
</acct-file>
"#;

/// Injects the campaigns over four connections: message i goes to one recipient at one of
/// four providers; even messages are "spring" (news@, pool clean), odd ones "winback"
/// (deals@, pool dirty); each has an HTML part with a landing link and an unsubscribe link
/// on the test's web server.
const INJECT: &str = r#"
import smtplib, sys, threading
port, web, total = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
domains = ["gmail.example", "outlook.example", "yahoo.example", "brand-customers.example"]
def message(i):
    job, sender, pool = ("spring", "news", "clean") if i % 2 == 0 else ("winback", "deals", "dirty")
    html = (f'<html><body><h1>{job}</h1><p>Dear reader {i},</p>'
            f'<a href="http://127.0.0.1:{web}/landing/{job}?r={i}">See the offer</a>'
            f'<p><a href="http://127.0.0.1:{web}/unsubscribe?r={i}" data-msys-unsubscribe="1">Unsubscribe</a></p>'
            f'</body></html>')
    rcpt = f"r{i}@{domains[i % 4]}"
    body = (f"From: Brand <{sender}@brand.example>\r\nTo: <{rcpt}>\r\nSubject: {job} {i // 100}\r\n"
            f"X-Job: {job}\r\nX-Virtual-MTA: {pool}\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
            f"--alt\r\nContent-Type: text/plain\r\n\r\nDear reader {i}\r\n"
            f"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--alt--\r\n")
    return f"{sender}@bounces.brand.example", rcpt, body
def worker(k):
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        for i in range(k, total, 4):
            # NOTIFY=NEVER: the sender learns of bounces from the events, so petrel sends
            # no DSN of its own (which would be one more message to the sink).
            sender, rcpt, body = message(i)
            s.sendmail(sender, [rcpt], body, rcpt_options=["NOTIFY=NEVER"])
threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
"#;

/// What happened to recipients in the SMTP sessions and afterwards by SMTP.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Outcomes {
    delivered: u64,
    bounced_unknown_user: u64,
    bounced_blocklist: u64,
    bounced_no_tls: u64,
    delayed: u64,
    out_of_band: u64,
    complaints: u64,
}

/// Opens, clicks and unsubscribes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Reading {
    opens: u64,
    clicks: u64,
    unsubscribes: u64,
}

impl Outcomes {
    fn from_sink(c: &Counts) -> Outcomes {
        Outcomes {
            delivered: c.delivered,
            bounced_unknown_user: c.hard,
            bounced_blocklist: c.block,
            bounced_no_tls: c.tls_required,
            delayed: c.soft + c.defer + c.drop,
            out_of_band: c.oob,
            complaints: c.fbl,
        }
    }

    /// Only what a message's campaign can be known for (RCPT refusals come before it).
    fn message_part(mut self) -> Outcomes {
        self.bounced_unknown_user = 0;
        self.bounced_blocklist = 0;
        self.bounced_no_tls = 0;
        self.delayed = 0;
        self
    }

    /// Sorts a bounce by the enhanced status in its status or reason text.
    fn add_bounce(&mut self, text: &str) {
        if text.contains("5.1.1") {
            self.bounced_unknown_user += 1;
        } else if text.contains("5.7.1") {
            self.bounced_blocklist += 1;
        } else if text.contains("5.7.0") {
            self.bounced_no_tls += 1;
        } else {
            panic!("a bounce the sink never gives: {text}");
        }
    }

    fn from_accounting(rows: &[HashMap<String, String>]) -> Outcomes {
        let mut o = Outcomes::default();
        for r in rows {
            match r["type"].as_str() {
                "d" => o.delivered += 1,
                "b" => o.add_bounce(&r["dsnStatus"]),
                "t" => o.delayed += 1,
                "rb" => o.out_of_band += 1,
                "f" => o.complaints += 1,
                other => panic!("unexpected row {other}: {r:?}"),
            }
        }
        o
    }

    fn from_events(events: &[&Value]) -> Outcomes {
        let mut o = Outcomes::default();
        for e in events {
            match e["type"].as_str().unwrap() {
                "delivery" => o.delivered += 1,
                "bounce" => o.add_bounce(e["raw_reason"].as_str().unwrap_or("")),
                "delay" => o.delayed += 1,
                "out_of_band" => o.out_of_band += 1,
                "spam_complaint" => o.complaints += 1,
                _ => {}
            }
        }
        o
    }
}

impl Reading {
    /// The unsubscribe link is wrapped like every link, so following it is a `click` as well
    /// as a `link_unsubscribe` (SparkPost's pair).
    fn from_sink(c: &Counts) -> Reading {
        Reading {
            opens: c.open,
            clicks: c.click + c.unsub,
            unsubscribes: c.unsub,
        }
    }

    /// Each open fetched both pixels: `initial_open` and `open` must both match.
    fn from_events(events: &[&Value]) -> (Reading, u64) {
        let n = |t: &str| events.iter().filter(|e| e["type"] == t).count() as u64;
        (
            Reading {
                opens: n("open"),
                clicks: n("click"),
                unsubscribes: n("link_unsubscribe"),
            },
            n("initial_open"),
        )
    }
}

/// Every event of the search, following `links.next`.
fn all_events(port: u16) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = "/api/v1/events/message?per_page=10000".to_string();
    loop {
        let (status, body) = signals_get(port, KEY, &path);
        assert_eq!(status, 200, "{body}");
        out.extend(body["results"].as_array().cloned().unwrap_or_default());
        match body["links"]["next"].as_str() {
            Some(next) => path = next.to_string(),
            None => return out,
        }
    }
}

fn group<'a>(events: &'a [Value], key: &str) -> BTreeMap<String, Vec<&'a Value>> {
    let mut m: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in events {
        if let Some(k) = e[key].as_str() {
            m.entry(k.to_string()).or_default().push(e);
        }
    }
    m
}

/// Polls until `f` returns `Ok`, or panics with its last `Err` after `secs`.
fn eventually<T>(secs: u64, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

#[test]
fn petrel_accounting_and_signals_agree_with_the_sink() {
    let web = Web::start();
    let returns = free_port();
    let sig = free_port();
    let track = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sink_conf = dir.path().join("sink.conf");
    std::fs::write(
        &sink_conf,
        format!("tls-certificate {}\n", test_cert().display()),
    )
    .unwrap();
    let sink = PetrelSink::start(&[
        "--mix",
        MIX,
        "--seed",
        "2026",
        "--return-to",
        &format!("127.0.0.1:{returns}"),
        "--feedback-to",
        "fbl@fbl.brand.example",
        "--delay",
        "oob=1s,fbl=1s,open=1s,click=2s,unsub=1s,slow=1s",
        "--config",
        sink_conf.to_str().unwrap(),
    ]);
    let signals = signals_to_self(
        sig,
        KEY,
        &format!("  engagement-tracking sparkpost\n  tracking-listener 127.0.0.1:{track}\n"),
    );
    let p = Petrel::start(&format!(
        "{}{signals}",
        CONFIG
            .replace("{RETURNS}", &returns.to_string())
            .replace("{SINK}", &sink.port.to_string())
    ));
    let out = python(
        INJECT,
        &[
            &p.smtp_port.to_string(),
            &web.port.to_string(),
            &MESSAGES.to_string(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));

    // Every recipient ends delivered or bounced; then the sink finishes what it scheduled.
    eventually(150, || {
        let rows = acct_rows(p.dir.path());
        let done = rows
            .iter()
            .filter(|r| r["type"] == "d" || r["type"] == "b")
            .count();
        (done == MESSAGES)
            .then_some(())
            .ok_or(format!("{done} of {MESSAGES} recipients final"))
    });
    let s: Snapshot = sink.wait_for(60, |s| s.pending == 0);
    let t = &s.totals;
    eprintln!("{}", s.summary());

    // The mix and seed exercised every behaviour, and nothing was skipped or failed.
    for (name, n) in [
        ("delivered", t.delivered),
        ("hard", t.hard),
        ("block", t.block),
        ("soft", t.soft),
        ("defer", t.defer),
        ("drop", t.drop),
        ("slow", t.slow),
        ("tls_required", t.tls_required),
        ("oob", t.oob),
        ("fbl", t.fbl),
        ("open", t.open),
        ("click", t.click),
        ("unsub", t.unsub),
    ] {
        assert!(n > 0, "no {name} at all: {s:#?}");
    }
    assert_eq!((t.skipped, t.failed), (0, 0), "{s:#?}\n{}", sink.log());
    assert_eq!(
        t.delivered + t.hard + t.block + t.tls_required,
        MESSAGES as u64,
        "every message was accepted or refused for good once: {s:#?}"
    );
    // tls-required recipients at gmail.example got STARTTLS (petrel's use-starttls yes) and
    // were accepted; elsewhere they were refused.
    assert!(t.tls_required < (MESSAGES as u64) * 8 / 100, "{s:#?}");

    let sink_outcomes = Outcomes::from_sink(t);
    let sink_reading = Reading::from_sink(t);

    // Accounting: d, b, t, rb and f rows.
    let acct = eventually(60, || {
        let o = Outcomes::from_accounting(&acct_rows(p.dir.path()));
        (o == sink_outcomes)
            .then_some(o.clone())
            .ok_or(format!("accounting {o:#?}\nsink {sink_outcomes:#?}"))
    });
    assert_eq!(acct, sink_outcomes);

    // Signals: the events search, in total, per campaign and per sending IP.
    let events = eventually(90, || {
        let all = all_events(sig);
        let refs: Vec<&Value> = all.iter().collect();
        let o = Outcomes::from_events(&refs);
        let (r, initial) = Reading::from_events(&refs);
        if o == sink_outcomes && r == sink_reading && initial == sink_reading.opens {
            Ok(all)
        } else {
            Err(format!(
                "events {o:#?} {r:#?} initial_open {initial}\nsink {sink_outcomes:#?} {sink_reading:#?}"
            ))
        }
    });
    let by_campaign = group(&events, "campaign_id");
    assert_eq!(
        by_campaign.keys().collect::<Vec<_>>(),
        ["spring", "winback"],
        "every event found its campaign"
    );
    assert_eq!(
        s.campaigns.keys().collect::<Vec<_>>(),
        ["spring", "winback"]
    );
    for (name, c) in &s.campaigns {
        let ev = &by_campaign[name];
        assert_eq!(
            Outcomes::from_events(ev).message_part(),
            Outcomes::from_sink(c).message_part(),
            "campaign {name}"
        );
        assert_eq!(
            Reading::from_events(ev).0,
            Reading::from_sink(c),
            "campaign {name}"
        );
    }
    let by_ip = group(&events, "sending_ip");
    assert_eq!(
        s.source_ips.keys().collect::<Vec<_>>(),
        ["127.0.0.2", "127.0.0.3"],
        "petrel's two vmtas"
    );
    for ip in ["127.0.0.2", "127.0.0.3"] {
        let c = &s.source_ips[ip];
        assert_eq!(
            Outcomes::from_events(&by_ip[ip]),
            Outcomes::from_sink(c),
            "sending IP {ip}"
        );
        assert_eq!(
            Reading::from_events(&by_ip[ip]).0,
            Reading::from_sink(c),
            "sending IP {ip}"
        );
    }

    // Unsubscribes and followed clicks reached the web server, once each.
    assert_eq!(web.hits_on("/unsubscribe").len() as u64, t.unsub);
    assert_eq!(web.hits_on("/landing/").len() as u64, t.click);
}
