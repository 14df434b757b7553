//! Known events for the Signals pages' tests: ten days of two campaigns (with bounces,
//! blocks, a deferral, opens, clicks, complaints, a policy rejection and a typo-domain
//! trap hit), one message whose campaign and subject are HTML, and one malformed batch.
//! The test keeps the events, so every number a page shows can be checked against a
//! count made here, independently of the service.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

/// A campaign's name that is markup: pages must show it as text.
pub const XSS_CAMPAIGN: &str = "<script>window.__xss=1</script>";
/// A subject that is markup.
pub const XSS_SUBJECT: &str = "<script>window.__xss=2</script>Hello <b>there</b>";

/// One seeded event (the ingest form's fields the tests count by).
#[derive(Debug, Clone)]
pub struct Ev {
    /// Public type name (`injection`, `delivery`, `bounce`, …).
    pub kind: &'static str,
    pub ts: i64,
    pub campaign: String,
    pub ip: &'static str,
    pub pool: &'static str,
    pub subaccount: i64,
    pub rcpt: String,
    pub bounce_class: Option<&'static str>,
    pub json: Value,
}

/// The events, oldest day first, and the batches they are posted in.
pub struct Seed {
    pub events: Vec<Ev>,
    /// NDJSON bodies (not yet compressed); the last one holds a malformed line.
    pub batches: Vec<String>,
}

fn ingest_name(kind: &str) -> &'static str {
    match kind {
        "injection" => "reception",
        "delivery" => "delivery",
        "bounce" => "inband",
        "delay" => "tempfail",
        "spam_complaint" => "feedback",
        "policy_rejection" => "rejection",
        "open" => "open",
        "click" => "click",
        other => panic!("no ingest name for {other}"),
    }
}

fn grouping(kind: &str) -> &'static str {
    match kind {
        "open" | "click" => "track_event",
        _ => "message_event",
    }
}

struct Msg {
    id: String,
    campaign: String,
    subject: &'static str,
    pool: &'static str,
    ip: &'static str,
    from: &'static str,
    subaccount: i64,
    rcpt: String,
}

/// Ten days ending `now` (unix seconds); each day's events fall in the 200 seconds that
/// start 300 s before `now` minus that many days.
pub fn generate(now: i64) -> Seed {
    let mut events = Vec::new();
    let mut batches = Vec::new();
    let mut seq = 0u64;
    for d in (0..10i64).rev() {
        let base = now - d * 86_400 - 300;
        let mut day: Vec<Ev> = Vec::new();
        let mut push = |m: &Msg, kind: &'static str, dt: i64, extra: Value| {
            seq += 1;
            let mut j = json!({
                "type": ingest_name(kind),
                "event_id": format!("{}", 9_000_000_000u64 + seq),
                "message_id": m.id,
                "timestamp": (base + dt).to_string(),
                "rcpt_to": m.rcpt,
                "campaign_id": m.campaign,
                "subject": m.subject,
                "binding_group": m.pool,
                "sending_ip": m.ip,
                "friendly_from": m.from,
                "subaccount_id": m.subaccount,
                "open_tracking": true,
                "click_tracking": true,
            });
            if let (Some(o), Some(e)) = (j.as_object_mut(), extra.as_object()) {
                for (k, v) in e {
                    o.insert(k.clone(), v.clone());
                }
            }
            day.push(Ev {
                kind,
                ts: base + dt,
                campaign: m.campaign.clone(),
                ip: m.ip,
                pool: m.pool,
                subaccount: m.subaccount,
                rcpt: m.rcpt.clone(),
                bounce_class: extra["bounce_class"].as_str().map(|c| match c {
                    "10" => "10",
                    "51" => "51",
                    _ => "21",
                }),
                json: json!({ "msys": { grouping(kind): j } }),
            });
        };
        for k in 0..60 {
            let m = Msg {
                id: format!("d{d}s{k}"),
                campaign: "spring-sale".into(),
                subject: "Spring sale: 20% off",
                pool: "warm",
                ip: "10.1.0.1",
                from: "deals@mail.example.com",
                subaccount: 0,
                rcpt: format!("user{k}@gmail.com"),
            };
            push(&m, "injection", k, json!({}));
            match k {
                0 => push(
                    &m,
                    "bounce",
                    70,
                    json!({"bounce_class": "10", "reason": "550 5.1.1 <user@gmail.com>: unknown user"}),
                ),
                1 if d % 3 == 0 => push(
                    &m,
                    "bounce",
                    71,
                    json!({"bounce_class": "51", "reason": "554 5.7.1 Service unavailable; blocked using zen.spamhaus.org"}),
                ),
                2 => {
                    push(
                        &m,
                        "delay",
                        72,
                        json!({"bounce_class": "21", "num_retries": "0", "reason": "451 4.3.0 try again later"}),
                    );
                    push(
                        &m,
                        "delivery",
                        100,
                        json!({"num_retries": "1", "queue_time": "60000", "msg_size": "12000"}),
                    );
                }
                _ => push(
                    &m,
                    "delivery",
                    70 + k,
                    json!({"num_retries": "0", "queue_time": "1500", "msg_size": "12000"}),
                ),
            }
            if (4..30).contains(&k) {
                push(&m, "open", 140 + k, json!({}));
            }
            if (4..10).contains(&k) {
                let (name, url) = if k == 4 {
                    ("footer", "https://shop.example/about")
                } else {
                    ("hero", "https://shop.example/sale")
                };
                push(
                    &m,
                    "click",
                    150 + k,
                    json!({"target_link_name": name, "target_link_url": url}),
                );
            }
            if k == 12 && d == 3 {
                push(&m, "spam_complaint", 195, json!({"fbtype": "abuse"}));
            }
        }
        let rejected = Msg {
            id: format!("d{d}r"),
            campaign: "spring-sale".into(),
            subject: "Spring sale: 20% off",
            pool: "warm",
            ip: "10.1.0.1",
            from: "deals@mail.example.com",
            subaccount: 0,
            rcpt: "suppressed@gmail.com".into(),
        };
        push(
            &rejected,
            "policy_rejection",
            65,
            json!({"reason": "550 5.7.1 recipient is on the suppression list"}),
        );
        for k in 0..30 {
            let m = Msg {
                id: format!("d{d}n{k}"),
                campaign: "newsletter".into(),
                subject: "This week at Example",
                pool: "shared",
                ip: "10.1.0.2",
                from: "news@news.example.com",
                subaccount: 7,
                rcpt: if k == 0 && d % 3 == 0 {
                    "reader0@gmial.com".into()
                } else {
                    format!("reader{k}@yahoo.com")
                },
            };
            push(&m, "injection", 60 + k, json!({}));
            if k == 1 {
                push(
                    &m,
                    "bounce",
                    95,
                    json!({"bounce_class": "10", "reason": "550 5.1.1 mailbox unavailable"}),
                );
            } else {
                push(
                    &m,
                    "delivery",
                    95 + k,
                    json!({"num_retries": "0", "queue_time": "900", "msg_size": "30000"}),
                );
            }
            if (2..12).contains(&k) {
                push(&m, "open", 170 + k, json!({}));
            }
        }
        if d == 0 {
            let m = Msg {
                id: "xss".into(),
                campaign: XSS_CAMPAIGN.into(),
                subject: XSS_SUBJECT,
                pool: "warm",
                ip: "10.1.0.1",
                from: "deals@mail.example.com",
                subaccount: 0,
                rcpt: "xss@example.org".into(),
            };
            push(&m, "injection", 50, json!({}));
            push(
                &m,
                "delivery",
                51,
                json!({"num_retries": "0", "queue_time": "500", "msg_size": "800"}),
            );
        }
        day.sort_by_key(|e| e.ts);
        batches.push(
            day.iter()
                .map(|e| e.json.to_string() + "\n")
                .collect::<String>(),
        );
        events.extend(day);
    }
    // A batch with one malformed line: the Integration page shows its validation error.
    batches.push("{\"msys\":{\"message_event\":{\"type\":\"reception\"}}}\nnot json\n".into());
    Seed { events, batches }
}

impl Seed {
    /// Events of `kind` passing `pred`.
    pub fn count(&self, kind: &str, pred: impl Fn(&Ev) -> bool) -> i64 {
        self.events
            .iter()
            .filter(|e| e.kind == kind && pred(e))
            .count() as i64
    }
}

/// POSTs every batch (gzip) to the ingest API on `port` and checks each 200.
pub fn post_batches(port: u16, key: &str, seed: &Seed) {
    for body in &seed.batches {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(body.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "POST /api/v1/ingest/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {key}\r\n\
             Content-Type: application/x-ndjson\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            gz.len()
        )
        .unwrap();
        s.write_all(&gz).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(
            resp.starts_with("HTTP/1.1 200"),
            "ingest refused a batch: {resp}"
        );
    }
}

/// The UTC day (`YYYY-MM-DD`) of a unix time.
pub fn utc_day(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
