//! The Metrics and Signals APIs against generated data whose expected answers this test
//! computes itself, from the events it sends. `suite` takes any [`AnalyticsStore`]: the
//! SQLite backend runs it here, and a second backend (ClickHouse) runs the same function.

use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use petrel_signals::{
    router, AnalyticsStore, ClickHouseSettings, ClickHouseStore, Permission, Retention,
    ServiceOptions, SqliteStore,
};
use petrel_signals_model::traps::TrapList;
use petrel_test_clickhouse::ClickHouseServer;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DAY: i64 = 86_400;
/// Monday 2026-11-02 00:00 UTC.
const BASE: i64 = 1_793_577_600;
const CAMPAIGNS: [&str; 3] = ["spring", "summer-sale", "blackfriday-flash-deals"];
const DOMAINS: [&str; 4] = ["gmail.com", "yahoo.com", "example.org", "gmal.com"];

/// One generated event: its type and fields (ingest form).
#[derive(Clone)]
struct Ev {
    kind: &'static str,
    grouping: &'static str,
    ts: i64,
    msg: String,
    fields: Value,
}

struct Message {
    i: usize,
    msg: String,
    rcpt: String,
    campaign: &'static str,
    pool: &'static str,
    sub: i64,
    t: i64,
}

fn message(i: usize) -> Message {
    let r = i % 60;
    let domain = DOMAINS[(r / 2) % 4];
    Message {
        i,
        msg: format!("m{i:05}"),
        rcpt: format!("user{r}@{domain}"),
        campaign: CAMPAIGNS[i % 3],
        pool: ["warm", "cold"][i % 2],
        sub: if i % 4 == 3 { 7 } else { 0 },
        t: BASE + (i as i64 % 8) * DAY + 10 * 3600 + i as i64 * 60,
    }
}

fn generate() -> Vec<Ev> {
    let mut out = Vec::new();
    let mut push =
        |m: &Message, kind: &'static str, grouping: &'static str, ts: i64, extra: Value| {
            let mut f = json!({
                "type": kind, "event_id": format!("{}{}", 1_000_000 + out.len(), m.i),
                "message_id": m.msg, "timestamp": ts.to_string(), "rcpt_to": m.rcpt,
                "campaign_id": m.campaign, "binding_group": m.pool,
                "sending_ip": if m.pool == "warm" { "192.0.2.10" } else { "192.0.2.20" },
                "friendly_from": "news@brand.example", "subaccount_id": m.sub,
            });
            if grouping != "message_event" {
                // Thin engagement events: the service enriches them from the delivery.
                f = json!({"type": kind, "event_id": f["event_id"], "message_id": m.msg,
                       "timestamp": ts.to_string(), "rcpt_to": m.rcpt});
            }
            for (k, v) in extra.as_object().unwrap() {
                f[k] = v.clone();
            }
            out.push(Ev {
                kind,
                grouping,
                ts,
                msg: m.msg.clone(),
                fields: f,
            });
        };
    for i in 0..120 {
        let m = message(i);
        let t = m.t;
        let k = i % 10;
        if k == 9 {
            push(
                &m,
                "rejection",
                "message_event",
                t,
                json!({"bounce_class": "25", "reason": "550 5.7.1 recipient suppressed"}),
            );
            continue;
        }
        push(
            &m,
            "reception",
            "message_event",
            t,
            json!({"open_tracking": true}),
        );
        let delivered = match k {
            6 => {
                push(
                    &m,
                    "inband",
                    "message_event",
                    t + 5,
                    json!({"bounce_class": "10", "reason": "550 5.1.1 no such user"}),
                );
                false
            }
            7 => {
                push(
                    &m,
                    "inband",
                    "message_event",
                    t + 5,
                    json!({"bounce_class": "51", "reason": "550 5.7.1 blocked"}),
                );
                false
            }
            8 => {
                push(
                    &m,
                    "tempfail",
                    "message_event",
                    t + 5,
                    json!({"bounce_class": "21", "num_retries": "0", "reason": "451 4.3.0 try later"}),
                );
                push(
                    &m,
                    "delivery",
                    "message_event",
                    t + 600,
                    json!({"num_retries": "1", "queue_time": "600000", "msg_size": "2000"}),
                );
                true
            }
            _ => {
                push(
                    &m,
                    "delivery",
                    "message_event",
                    t + 5,
                    json!({"num_retries": "0", "queue_time": "1000", "msg_size": "2000"}),
                );
                true
            }
        };
        if !delivered {
            continue;
        }
        if i % 3 == 0 {
            push(&m, "open", "track_event", t + 3600, json!({}));
            if i % 6 == 0 {
                push(&m, "open", "track_event", t + 3720, json!({}));
            }
        }
        if i == 40 {
            push(
                &m,
                "open",
                "track_event",
                t + 3700,
                json!({"machine": "image-proxy"}),
            );
        }
        if i % 5 == 0 {
            push(
                &m,
                "click",
                "track_event",
                t + 7200,
                json!({"target_link_name": "hero", "target_link_url": "https://x.example/h"}),
            );
        }
        if i == 10 {
            push(
                &m,
                "feedback",
                "message_event",
                t + DAY,
                json!({"fbtype": "abuse"}),
            );
        }
        if i == 20 {
            push(
                &m,
                "link",
                "unsubscribe_event",
                t + 100,
                json!({"target_link_url": "https://x.example/unsub"}),
            );
        }
        if i == 30 {
            push(
                &m,
                "outofband",
                "message_event",
                t + 1800,
                json!({"bounce_class": "10", "reason": "550 5.1.1 user unknown"}),
            );
        }
    }
    // Two injections either side of midnight UTC, for time-zone boundaries.
    for (n, ts) in [
        (900usize, BASE + 10 * DAY + 23 * 3600 + 1800),
        (901, BASE + 11 * DAY + 1800),
    ] {
        let mut m = message(n);
        m.campaign = "tz-test";
        m.t = ts;
        push(&m, "reception", "message_event", ts, json!({}));
    }
    out
}

fn ndjson(events: &[Ev]) -> Vec<u8> {
    let mut text = String::new();
    for e in events {
        text.push_str(&json!({"msys": {e.grouping: e.fields}}).to_string());
        text.push('\n');
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

struct Api {
    addr: SocketAddr,
    key: String,
}

impl Api {
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Value) {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\nContent-Length: {}\r\n",
            self.key,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.unwrap();
        let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let status = String::from_utf8_lossy(&resp[9..12]).parse().unwrap();
        (
            status,
            serde_json::from_slice(&resp[split + 4..]).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.request("GET", path, &[], b"").await;
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    async fn bad(&self, path: &str, param: &str) -> Value {
        let (status, v) = self.request("GET", path, &[], b"").await;
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(v["errors"][0]["param"], param, "{path}: {v}");
        assert!(v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        v
    }
}

const RANGE: &str = "from=2026-11-01T00:00&to=2026-11-15T00:00";

fn count(events: &[Ev], kind: &str) -> i64 {
    events.iter().filter(|e| e.kind == kind).count() as i64
}

fn count_where(events: &[Ev], kind: &str, pred: impl Fn(&Ev) -> bool) -> i64 {
    events.iter().filter(|e| e.kind == kind && pred(e)).count() as i64
}

/// Distinct (message, bucket) pairs of a type: the exact unique count per increment.
fn unique(events: &[Ev], kinds: &[&str], secs: i64) -> i64 {
    let set: HashSet<(String, i64)> = events
        .iter()
        .filter(|e| kinds.contains(&e.kind))
        .map(|e| (e.msg.clone(), e.ts.div_euclid(secs)))
        .collect();
    set.len() as i64
}

fn campaign_of(e: &Ev, events: &[Ev]) -> String {
    events
        .iter()
        .find(|x| x.msg == e.msg && x.fields.get("campaign_id").is_some())
        .map(|x| x.fields["campaign_id"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The whole suite, against any store.
pub async fn suite(store: Arc<dyn AnalyticsStore>) {
    let key = store
        .create_api_key("test", &[Permission::Ingest, Permission::Read])
        .unwrap();
    let traps = TrapList::parse("user5@yahoo.com recycled\n").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(store.clone(), ServiceOptions { traps });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let api = Api { addr, key };

    let events = generate();
    // Two batches, the second one re-sending half of the first (duplicates are dropped).
    let (a, b) = events.split_at(events.len() / 2);
    for body in [ndjson(a), ndjson(b), ndjson(&events[..10])] {
        let (status, v) = api
            .request(
                "POST",
                "/api/v1/ingest/events",
                &[("Content-Encoding", "gzip")],
                &body,
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let in_range: Vec<Ev> = events
        .iter()
        .filter(|e| e.ts < BASE + 13 * DAY)
        .cloned()
        .collect();

    // --- Summary: every metric against the test's own count.
    let all: Vec<&str> = petrel_signals_model::counters::METRICS
        .iter()
        .map(|m| m.name)
        .collect();
    let v = api
        .get(&format!(
            "/api/v1/metrics/deliverability?{RANGE}&precision=hour&metrics={}",
            all.join(",")
        ))
        .await;
    let r = &v["results"][0];
    let delivered = count(&in_range, "delivery");
    let oob = count(&in_range, "outofband");
    let inband = count(&in_range, "inband");
    let expect = [
        ("count_injected", count(&in_range, "reception")),
        ("count_policy_rejection", count(&in_range, "rejection")),
        (
            "count_targeted",
            count(&in_range, "reception") + count(&in_range, "rejection"),
        ),
        ("count_delivered", delivered),
        (
            "count_delivered_first",
            count_where(&in_range, "delivery", |e| e.fields["num_retries"] == "0"),
        ),
        (
            "count_delivered_subsequent",
            count_where(&in_range, "delivery", |e| e.fields["num_retries"] == "1"),
        ),
        ("count_sent", delivered + inband),
        ("count_accepted", delivered - oob),
        ("count_bounce", inband + oob),
        ("count_inband_bounce", inband),
        ("count_outofband_bounce", oob),
        (
            "count_hard_bounce",
            count_where(&in_range, "inband", |e| e.fields["bounce_class"] == "10") + oob,
        ),
        (
            "count_block_bounce",
            count_where(&in_range, "inband", |e| e.fields["bounce_class"] == "51"),
        ),
        ("count_delayed", count(&in_range, "tempfail")),
        ("count_delayed_first", count(&in_range, "tempfail")),
        ("total_msg_volume", 2000 * delivered),
        (
            "total_delivery_time_first",
            1000 * count_where(&in_range, "delivery", |e| e.fields["num_retries"] == "0"),
        ),
        (
            "total_delivery_time_subsequent",
            600_000 * count_where(&in_range, "delivery", |e| e.fields["num_retries"] == "1"),
        ),
        ("count_rendered", count(&in_range, "open")),
        (
            "count_nonprefetched_rendered",
            count_where(&in_range, "open", |e| e.fields.get("machine").is_none()),
        ),
        ("count_unique_rendered", unique(&in_range, &["open"], 3600)),
        (
            "count_unique_confirmed_opened",
            unique(&in_range, &["open", "click"], 3600),
        ),
        ("count_clicked", count(&in_range, "click")),
        ("count_unique_clicked", unique(&in_range, &["click"], 3600)),
        ("count_spam_complaint", count(&in_range, "feedback")),
        ("count_unsubscribe", count(&in_range, "link")),
    ];
    for (name, n) in expect {
        assert_eq!(r[name], n, "{name}: {r}");
    }
    assert!(r["count_unsubscribe"].as_i64().unwrap() > 0 && r["count_spam_complaint"] == 1);
    // Uniques are exact per increment: per minute, the second open of a message in another
    // minute of the same hour counts again.
    let v = api.get("/api/v1/metrics/deliverability?from=2026-11-02T00:00&to=2026-11-02T23:59&precision=1min&metrics=count_unique_rendered").await;
    let day0: Vec<Ev> = in_range
        .iter()
        .filter(|e| e.ts < BASE + DAY)
        .cloned()
        .collect();
    assert_eq!(
        v["results"][0]["count_unique_rendered"],
        unique(&day0, &["open"], 60)
    );
    assert!(unique(&day0, &["open"], 60) > unique(&day0, &["open"], 3600));

    // --- Group by campaign, order_by and limit.
    let v = api.get(&format!("/api/v1/metrics/deliverability/campaign?{RANGE}&metrics=count_injected,count_clicked&order_by=count_clicked&limit=2")).await;
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    let clicks = |c: &str| count_where(&in_range, "click", |e| campaign_of(e, &in_range) == c);
    let mut want: Vec<(i64, &str)> = CAMPAIGNS.iter().map(|c| (clicks(c), *c)).collect();
    want.sort_by_key(|w| std::cmp::Reverse(w.0));
    assert_eq!(rows[0]["count_clicked"], want[0].0);
    assert!(rows[0]["count_clicked"].as_i64() >= rows[1]["count_clicked"].as_i64());
    for row in rows {
        let c = row["campaign_id"].as_str().unwrap();
        assert_eq!(row["count_clicked"], clicks(c), "{c}");
        assert_eq!(
            row["count_injected"],
            count_where(&in_range, "reception", |e| e.fields["campaign_id"] == c)
        );
    }
    // Subaccount keys are integers; domains group by recipient domain.
    let v = api
        .get(&format!(
            "/api/v1/metrics/deliverability/subaccount?{RANGE}&metrics=count_injected"
        ))
        .await;
    let sub7 = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["subaccount_id"] == 7)
        .unwrap();
    assert_eq!(
        sub7["count_injected"],
        count_where(&in_range, "reception", |e| e.fields["subaccount_id"] == 7)
    );
    let v = api
        .get(&format!(
            "/api/v1/metrics/deliverability/domain?{RANGE}&metrics=count_injected&subaccounts=0"
        ))
        .await;
    for row in v["results"].as_array().unwrap() {
        let d = row["domain"].as_str().unwrap();
        let n = count_where(&in_range, "reception", |e| {
            e.fields["subaccount_id"] == 0
                && e.fields["rcpt_to"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("@{d}"))
        });
        assert_eq!(row["count_injected"], n, "{d}");
    }
    let v = api
        .get(&format!(
            "/api/v1/metrics/deliverability/mailbox-provider?{RANGE}&metrics=count_injected"
        ))
        .await;
    let gmail = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mailbox_provider"] == "Gmail")
        .unwrap();
    assert_eq!(
        gmail["count_injected"],
        count_where(&in_range, "reception", |e| e.fields["rcpt_to"]
            .as_str()
            .unwrap()
            .ends_with("@gmail.com"))
    );

    // --- query_filters: campaigns like "friday" AND domain not gmail.com; simple filters ignored.
    let qf = r#"{"groupings":[{"AND":{"campaigns":{"like":["friday"]},"domains":{"notEq":["gmail.com"]}}}]}"#;
    let v = api.get(&format!("/api/v1/metrics/deliverability?{RANGE}&metrics=count_injected&campaigns=spring&query_filters={}", enc(qf))).await;
    let n = count_where(&in_range, "reception", |e| {
        e.fields["campaign_id"] == "blackfriday-flash-deals"
            && !e.fields["rcpt_to"]
                .as_str()
                .unwrap()
                .ends_with("@gmail.com")
    });
    assert_eq!(v["results"][0]["count_injected"], n);
    let qf = r#"{"groupings":[{"OR":{"ip_pools":{"eq":["warm"]},"subaccounts":{"eq":[7]}}}]}"#;
    let v = api
        .get(&format!(
            "/api/v1/metrics/deliverability?{RANGE}&metrics=count_injected&query_filters={}",
            enc(qf)
        ))
        .await;
    let n = count_where(&in_range, "reception", |e| {
        e.fields["binding_group"] == "warm" || e.fields["subaccount_id"] == 7
    });
    assert_eq!(v["results"][0]["count_injected"], n);
    // A sender-side facet OR a recipient-side one: each whole full tuple is tested.
    let qf =
        r#"{"groupings":[{"OR":{"campaigns":{"eq":["spring"]},"domains":{"eq":["gmail.com"]}}}]}"#;
    let v = api
        .get(&format!(
            "/api/v1/metrics/deliverability?{RANGE}&metrics=count_injected&query_filters={}",
            enc(qf)
        ))
        .await;
    let gmail = |e: &Ev| {
        e.fields["rcpt_to"]
            .as_str()
            .unwrap()
            .ends_with("@gmail.com")
    };
    let n = count_where(&in_range, "reception", |e| {
        e.fields["campaign_id"] == "spring" || gmail(e)
    });
    assert!(n > 0);
    assert_eq!(v["results"][0]["count_injected"], n);
    // Grouped by a sender-side facet, filtered by a recipient-side one (the full cube).
    let v = api
        .get(&format!(
            "/api/v1/metrics/deliverability/campaign?{RANGE}&metrics=count_injected&domains=gmail.com"
        ))
        .await;
    for c in CAMPAIGNS {
        let n = count_where(&in_range, "reception", |e| {
            e.fields["campaign_id"] == c && gmail(e)
        });
        let row = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["campaign_id"] == c);
        assert_eq!(
            row.map_or(json!(0), |r| r["count_injected"].clone()),
            n,
            "{c}: {v}"
        );
    }
    // Reasons filtered by a sender-side facet, with and without the domain.
    for path in ["bounce-reason", "bounce-reason/domain"] {
        let v = api
            .get(&format!(
                "/api/v1/metrics/deliverability/{path}?{RANGE}&metrics=count_inband_bounce&campaigns=summer-sale"
            ))
            .await;
        let got: i64 = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["count_inband_bounce"].as_i64().unwrap())
            .sum();
        let n = count_where(&in_range, "inband", |e| {
            e.fields["campaign_id"] == "summer-sale"
        });
        assert!(n > 0);
        assert_eq!(got, n, "{path}: {v}");
    }

    // --- Time series: zone boundaries and rounding.
    let v = api.get("/api/v1/metrics/deliverability/time-series?from=2026-11-12T18:00&to=2026-11-12T20:00&precision=hour&timezone=America/New_York&metrics=count_injected&campaigns=tz-test").await;
    let ts: Vec<(String, i64)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["ts"].as_str().unwrap().to_string(),
                r["count_injected"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ts,
        vec![
            ("2026-11-12T18:00:00-05:00".to_string(), 1),
            ("2026-11-12T19:00:00-05:00".to_string(), 1)
        ],
        "{v}"
    );
    let v = api.get("/api/v1/metrics/deliverability/time-series?from=2026-11-12T00:00&to=2026-11-13T12:00&precision=day&timezone=America/New_York&metrics=count_injected&campaigns=tz-test").await;
    let days: Vec<(String, i64)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["ts"].as_str().unwrap().to_string(),
                r["count_injected"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        days,
        vec![
            ("2026-11-12T00:00:00+00:00".into(), 1),
            ("2026-11-13T00:00:00+00:00".into(), 1)
        ],
        "day is UTC: {v}"
    );
    let v = api.get("/api/v1/metrics/deliverability/time-series?from=2026-11-12T23:22&to=2026-11-13T00:37&precision=15min&metrics=count_injected").await;
    let first = v["results"][0]["ts"].as_str().unwrap();
    let last = v["results"].as_array().unwrap().last().unwrap()["ts"]
        .as_str()
        .unwrap();
    assert_eq!(
        (first, last),
        ("2026-11-12T23:15:00+00:00", "2026-11-13T00:30:00+00:00")
    );
    let total: i64 = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count_injected"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 2);

    // --- Reasons, links, attempts.
    let v = api.get(&format!("/api/v1/metrics/deliverability/bounce-reason?{RANGE}&metrics=count_bounce,count_inband_bounce,count_outofband_bounce")).await;
    let hard = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "550 5.1.1 no such user")
        .unwrap();
    assert_eq!(
        hard["count_inband_bounce"],
        count_where(&in_range, "inband", |e| e.fields["bounce_class"] == "10")
    );
    assert_eq!(hard["bounce_category_name"], "Hard");
    assert_eq!(hard["classification_id"], 10);
    let v = api
        .get(&format!(
            "/api/v1/metrics/deliverability/bounce-classification?{RANGE}&metrics=count_bounce"
        ))
        .await;
    let block = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["classification_id"] == 51)
        .unwrap();
    assert_eq!(
        block["count_bounce"],
        count_where(&in_range, "inband", |e| e.fields["bounce_class"] == "51")
    );
    assert_eq!(block["bounce_category_name"], "Block");
    let v = api.get(&format!("/api/v1/metrics/deliverability/bounce-reason/domain?{RANGE}&metrics=count_bounce&domains=gmail.com")).await;
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["domain"] == "gmail.com"),
        "{v}"
    );
    let v = api
        .get(&format!(
            "/api/v1/metrics/deliverability/delay-reason?{RANGE}"
        ))
        .await;
    assert_eq!(v["results"][0]["reason"], "451 4.3.0 try later");
    assert_eq!(
        v["results"][0]["count_delayed"],
        count(&in_range, "tempfail")
    );
    let v = api
        .get(&format!(
            "/api/v1/metrics/deliverability/rejection-reason?{RANGE}"
        ))
        .await;
    assert_eq!(
        v["results"][0]["count_rejected"],
        count(&in_range, "rejection")
    );
    assert_eq!(v["results"][0]["rejection_type"], "Policy Rejection");
    let v = api.get(&format!("/api/v1/metrics/deliverability/link-name?{RANGE}&metrics=count_clicked,count_raw_clicked")).await;
    assert_eq!(v["results"][0]["link_name"], "hero");
    assert_eq!(v["results"][0]["count_clicked"], count(&in_range, "click"));
    let v = api
        .get(&format!("/api/v1/metrics/deliverability/attempt?{RANGE}"))
        .await;
    assert_eq!(
        v["results"][0],
        json!({"attempt": "1", "count_delivered": count_where(&in_range, "delivery", |e| e.fields["num_retries"] == "0")})
    );
    assert_eq!(v["results"][1]["attempt"], "2");
    let v = api.get("/api/v1/metrics/campaigns?match=SALE").await;
    assert_eq!(v["results"]["campaigns"], json!(["summer-sale"]));
    let v = api.get("/api/v1/metrics/ip-pools").await;
    assert_eq!(v["results"]["ip-pools"], json!(["cold", "warm"]));

    // --- Every 400 case, with the parameter named.
    for (path, param) in [
        ("/api/v1/metrics/deliverability?metrics=count_injected", "from"),
        ("/api/v1/metrics/deliverability?from=2026-11-01T00:00", "metrics"),
        ("/api/v1/metrics/deliverability?from=2026-11-01T00:00&metrics=count_bananas", "metrics"),
        ("/api/v1/metrics/deliverability?from=yesterday&metrics=count_injected", "from"),
        ("/api/v1/metrics/deliverability?from=2026-11-01T00:00&to=2026-11-02T00:01&precision=1min&metrics=count_injected", "precision"),
        ("/api/v1/metrics/deliverability?from=2026-11-01T00:00&to=2026-11-02T00:01&precision=5min&metrics=count_injected", "precision"),
        ("/api/v1/metrics/deliverability?from=2026-11-01T00:00&to=2026-11-03T00:01&precision=15min&metrics=count_injected", "precision"),
        ("/api/v1/metrics/deliverability?from=2026-10-01T00:00&to=2026-11-03T00:00&precision=hour&metrics=count_injected", "precision"),
        ("/api/v1/metrics/deliverability?from=2026-11-01T00:00&precision=decade&metrics=count_injected", "precision"),
        ("/api/v1/metrics/deliverability/campaign?from=2026-11-01T00:00&metrics=count_injected&limit=0", "limit"),
        ("/api/v1/metrics/deliverability/campaign?from=2026-11-01T00:00&metrics=count_injected&limit=10001", "limit"),
        ("/api/v1/metrics/deliverability/campaign?from=2026-11-01T00:00&metrics=count_injected&order_by=count_clicked", "order_by"),
        ("/api/v1/metrics/deliverability?from=2026-11-01T00:00&metrics=count_injected&timezone=Mars/Olympus", "timezone"),
        ("/api/v1/metrics/deliverability?from=2026-11-02T00:00&to=2026-11-01T00:00&metrics=count_injected", "from"),
        ("/api/v1/metrics/deliverability/bounce-reason?from=2026-11-01T00:00&metrics=count_delivered", "metrics"),
    ] {
        api.bad(path, param).await;
    }
    for qf in [
        "{",
        r#"{"groupings":[{"XOR":{}}]}"#,
        r#"{"groupings":[{"AND":{"campaigns":{"like":["ab"]}}}]}"#,
    ] {
        let v = api.bad(&format!("/api/v1/metrics/deliverability?from=2026-11-01T00:00&metrics=count_injected&query_filters={}", enc(qf)), "query_filters").await;
        assert!(
            v["errors"][0]["validationErrors"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            "{v}"
        );
    }

    // --- Signals: health score per campaign, spam traps, cohorts.
    let sig = "from=2026-11-02&to=2026-11-11";
    let v = api
        .get(&format!(
            "/api/v1/signals/health-score/campaign_id?{sig}&limit=10"
        ))
        .await;
    assert_eq!(v["results"]["total_count"], 3, "{v}");
    for row in v["results"]["data"].as_array().unwrap() {
        let score: f64 = row["current_health_score"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=1.0).contains(&score));
        assert_eq!(row["current_weights"].as_array().unwrap().len(), 12);
        assert_eq!(row["history"].as_array().unwrap().len(), 10);
        let injected: i64 = row["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["total_injection_count"].as_i64().unwrap())
            .sum();
        let c = row["campaign_id"].as_str().unwrap();
        assert_eq!(
            injected,
            count_where(&in_range, "reception", |e| e.fields["campaign_id"] == c
                && e.ts < BASE + 10 * DAY)
        );
    }
    let v = api.get(&format!("/api/v1/signals/spam-hits?{sig}")).await;
    let all = v["results"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sid"] == -1)
        .unwrap();
    let hist = all["history"].as_array().unwrap();
    let typo: i64 = hist
        .iter()
        .map(|h| h["trap_hits_typo"].as_i64().unwrap())
        .sum();
    let recycled: i64 = hist
        .iter()
        .map(|h| h["trap_hits_recycled"].as_i64().unwrap())
        .sum();
    assert_eq!(
        typo,
        count_where(&in_range, "reception", |e| e.fields["rcpt_to"]
            .as_str()
            .unwrap()
            .ends_with("@gmal.com"))
    );
    assert_eq!(
        recycled,
        count_where(&in_range, "reception", |e| e.fields["rcpt_to"]
            == "user5@yahoo.com")
    );
    let (status, v) = api
        .request(
            "GET",
            &format!("/api/v1/signals/cohort-engagement?{sig}"),
            &[("x-msys-subaccount", "7")],
            b"",
        )
        .await;
    assert_eq!(status, 200);
    let rows = v["results"]["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["sid"], 7);
    let total: i64 = rows[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["c_total"].as_i64().unwrap())
        .sum();
    let by_cohort: i64 = rows[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            ["c_new", "c_14d", "c_90d", "c_365d", "c_uneng"]
                .iter()
                .map(|k| h[k].as_i64().unwrap())
                .sum::<i64>()
        })
        .sum();
    assert_eq!(
        total,
        count_where(&in_range, "reception", |e| e.fields["subaccount_id"] == 7
            && e.ts < BASE + 10 * DAY)
    );
    assert_eq!(by_cohort, total);
    let v = api.get(&format!("/api/v1/signals/eng-cohort?{sig}")).await;
    let all = v["results"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sid"] == -1)
        .unwrap();
    let engaged: i64 = all["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["c_total_eng"].as_i64().unwrap())
        .sum();
    let engaged_msgs: HashSet<&str> = in_range
        .iter()
        .filter(|e| ["open", "click"].contains(&e.kind))
        .map(|e| e.msg.as_str())
        .collect();
    assert_eq!(engaged, engaged_msgs.len() as i64);
    for (path, param) in [
        (
            "/api/v1/signals/health-score?from=2026-11-02&to=2026-11-04",
            "from",
        ),
        (
            "/api/v1/signals/health-score?from=2026-01-01&to=2026-11-04",
            "from",
        ),
        (
            "/api/v1/signals/health-score?from=11/02/2026&to=2026-11-10",
            "from",
        ),
        (
            "/api/v1/signals/spam-hits/mb_provider?from=2026-11-02&to=2026-11-10",
            "facet",
        ),
    ] {
        api.bad(path, param).await;
    }

    // --- Events search: keyword tokens and the facets that were ignored before.
    let ev = |q: &str| {
        format!("/api/v1/events/message?from=2026-11-01T00:00:00Z&to=2026-11-20T00:00:00Z&per_page=10000&{q}")
    };
    let v = api
        .get(&ev("mailbox_providers=Gmail&events=injection"))
        .await;
    assert_eq!(
        v["total_count"],
        count_where(&events, "reception", |e| e.fields["rcpt_to"]
            .as_str()
            .unwrap()
            .ends_with("@gmail.com"))
    );
    let v = api
        .get(&ev("recipient_domains=gmal&events=injection"))
        .await;
    assert_eq!(
        v["total_count"],
        count_where(&events, "reception", |e| e.fields["rcpt_to"]
            .as_str()
            .unwrap()
            .ends_with("@gmal.com"))
    );
    let v = api.get(&ev("campaigns=blackfriday&events=injection")).await;
    assert_eq!(
        v["total_count"],
        count_where(&events, "reception", |e| e.fields["campaign_id"]
            == "blackfriday-flash-deals")
    );
    let v = api.get(&ev("campaigns=friday")).await;
    assert_eq!(v["total_count"], 0, "a partial token does not match");

    // --- Retention: raw events go after event-retention, rollups stay.
    let expired = store
        .expire(
            &Retention {
                events_secs: DAY,
                metrics_secs: 400 * DAY,
            },
            BASE + 30 * DAY,
        )
        .unwrap();
    assert!(
        expired.events > 0 && expired.rollup_rows == 0,
        "{expired:?}"
    );
    let v = api.get(&ev("")).await;
    assert_eq!(v["total_count"], 0);
    let v = api
        .get(&format!(
            "/api/v1/metrics/deliverability?{RANGE}&metrics=count_injected"
        ))
        .await;
    assert_eq!(
        v["results"][0]["count_injected"],
        count(&in_range, "reception")
    );
    let expired = store
        .expire(
            &Retention {
                events_secs: DAY,
                metrics_secs: DAY,
            },
            BASE + 30 * DAY,
        )
        .unwrap();
    assert!(expired.rollup_rows > 0);
    let v = api
        .get(&format!(
            "/api/v1/metrics/deliverability?{RANGE}&metrics=count_injected"
        ))
        .await;
    assert_eq!(v["results"][0]["count_injected"], 0);
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn sqlite_backend() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("signals.db")).unwrap());
    suite(store).await;
}

/// The same suite on a real ClickHouse server; then every statement the store sent is run
/// again on current ClickHouse (chDB) to check that both engines accept the SQL.
#[tokio::test]
async fn clickhouse_backend() {
    let server = ClickHouseServer::start();
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("analytics_api.statements");
    let _ = std::fs::remove_file(&log);
    let settings = ClickHouseSettings {
        url: server.url(),
        database: "analytics".into(),
        user: petrel_test_clickhouse::USER.into(),
        password: petrel_test_clickhouse::PASSWORD.into(),
        statement_log: Some(log.clone()),
    };
    let store = tokio::task::spawn_blocking(move || ClickHouseStore::connect(&settings))
        .await
        .unwrap()
        .unwrap();
    suite(Arc::new(store)).await;
    petrel_test_clickhouse::replay_on_chdb(&log);
}
