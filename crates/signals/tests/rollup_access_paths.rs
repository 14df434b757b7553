//! Every way the store can read its rollups gives the same sums as adding up the events by
//! hand. The data has enough distinct campaigns, pools, IPs and domains that filters on a
//! few values make the SQLite backend seek by id, and filters on most values make it scan
//! the range; both sides (sender, recipient) and both at once (the full table, by sender
//! dim, by recipient dim through its index, or by range) are queried at every increment,
//! grouped and not, by bucket and not, and the answers are compared with the events. A
//! filter on one side that excludes few values is answered as everything minus what it
//! excludes; that path is compared too.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use petrel_signals::store::{
    AnalyticsStore, Condition, Dims, Facet, Filter, Grouping, ReasonKind, ReasonQuery, Retention,
    RollupQuery,
};
use petrel_signals::{ingest, SqliteStore};
use petrel_signals_model::counters::{CounterSet, Counters, Increment};
use petrel_signals_model::traps::TrapList;
use serde_json::json;

/// Monday 2026-11-02 00:00 UTC.
const BASE: i64 = 1_793_577_600;

struct Ev {
    ts: i64,
    dims: Dims,
    kind: &'static str,
    reason: Option<&'static str>,
}

fn events() -> Vec<Ev> {
    let mut out = Vec::new();
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for i in 0..2000i64 {
        let campaign = next(40);
        let pool = campaign % 12;
        let domain = next(80);
        let dims = Dims {
            subaccount: (campaign % 3) as i64,
            campaign: format!("camp-{campaign}"),
            template: format!("tpl-{}", campaign % 7),
            ip_pool: format!("pool-{pool}"),
            sending_ip: format!("10.1.{pool}.{}", next(3)),
            sending_domain: format!("brand{}.example", campaign % 3),
            domain: format!("d{domain}.example"),
            mailbox_provider: format!("Provider{}", domain % 9),
            region: ["Global", "Europe", "North America"][(domain % 3) as usize].into(),
        };
        // Most over five days; a dense stretch in the first day for minute rollups.
        let ts = if i % 2 == 0 {
            BASE + i * 5 * 86_400 / 2000
        } else {
            BASE + 3600 + i * 40
        };
        out.push(Ev {
            ts,
            dims: dims.clone(),
            kind: "reception",
            reason: None,
        });
        let (kind, reason) = match next(10) {
            0 => ("inband", Some("550 5.1.1 unknown")),
            1 => ("inband", Some("554 5.7.1 blocked")),
            2 => ("tempfail", Some("451 4.3.0 later")),
            _ => ("delivery", None),
        };
        out.push(Ev {
            ts: ts + 61,
            dims,
            kind,
            reason,
        });
    }
    out
}

fn body(events: &[Ev]) -> Vec<u8> {
    let mut text = String::new();
    for (n, e) in events.iter().enumerate() {
        let d = &e.dims;
        let mut f = json!({
            "type": e.kind, "event_id": n.to_string(), "message_id": format!("m{}", n / 2),
            "timestamp": e.ts.to_string(), "rcpt_to": format!("u{n}@{}", d.domain),
            "subaccount_id": d.subaccount, "campaign_id": d.campaign, "template_id": d.template,
            "ip_pool": d.ip_pool, "sending_ip": d.sending_ip, "sending_domain": d.sending_domain,
            "mailbox_provider": d.mailbox_provider, "mailbox_provider_region": d.region,
            "num_retries": "0",
        });
        match e.kind {
            "inband" => {
                f["bounce_class"] = json!(if e.reason == Some("554 5.7.1 blocked") {
                    "51"
                } else {
                    "10"
                });
                f["reason"] = json!(e.reason);
            }
            "tempfail" => f["reason"] = json!(e.reason),
            _ => {}
        }
        text.push_str(&json!({"msys": {"message_event": f}}).to_string());
        text.push('\n');
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

fn cond(facet: Facet, eq: &[&str], not_eq: &[&str], like: &[&str]) -> Condition {
    let low = |v: &[&str]| v.iter().map(|s| s.to_lowercase()).collect();
    Condition {
        facet: Some(facet),
        eq: low(eq),
        like: low(like),
        not_eq: low(not_eq),
        not_like: Vec::new(),
    }
}

fn filters() -> Vec<(&'static str, Filter)> {
    let and = |c: Vec<Condition>| Grouping {
        and: true,
        conditions: c,
    };
    let or = |c: Vec<Condition>| Grouping {
        and: false,
        conditions: c,
    };
    let f = |g: Vec<Grouping>| Filter { groupings: g };
    vec![
        ("none", Filter::all()),
        (
            "one campaign",
            f(vec![and(vec![cond(
                Facet::Campaign,
                &["camp-7"],
                &[],
                &[],
            )])]),
        ),
        (
            "one domain",
            f(vec![and(vec![cond(
                Facet::Domain,
                &["D3.example"],
                &[],
                &[],
            )])]),
        ),
        (
            "all domains but one",
            f(vec![and(vec![cond(
                Facet::Domain,
                &[],
                &["d3.example"],
                &[],
            )])]),
        ),
        (
            "campaigns like 1",
            f(vec![and(vec![cond(Facet::Campaign, &[], &[], &["p-1"])])]),
        ),
        (
            "one subaccount",
            f(vec![and(vec![cond(Facet::Subaccount, &["2"], &[], &[])])]),
        ),
        (
            "one provider",
            f(vec![and(vec![cond(
                Facet::MailboxProvider,
                &["provider4"],
                &[],
                &[],
            )])]),
        ),
        (
            "pool or domain",
            f(vec![or(vec![
                cond(Facet::IpPool, &["pool-3"], &[], &[]),
                cond(Facet::Domain, &["d5.example"], &[], &[]),
            ])]),
        ),
        (
            "campaign and domains",
            f(vec![and(vec![
                cond(Facet::Campaign, &["camp-11", "camp-12"], &[], &[]),
                cond(
                    Facet::Domain,
                    &["d1.example", "d2.example", "d9.example"],
                    &[],
                    &[],
                ),
            ])]),
        ),
        (
            "ip and not region, two groupings",
            f(vec![
                and(vec![cond(
                    Facet::SendingIp,
                    &["10.1.4.0", "10.1.4.1", "10.1.5.2"],
                    &[],
                    &[],
                )]),
                and(vec![cond(Facet::Region, &[], &["europe"], &[])]),
            ]),
        ),
        (
            "no data key",
            f(vec![and(vec![Condition {
                facet: None,
                not_eq: vec!["x".into()],
                ..Condition::default()
            }])]),
        ),
        (
            "impossible",
            f(vec![and(vec![cond(Facet::Campaign, &["nope"], &[], &[])])]),
        ),
    ]
}

fn counters_of(kind: &str, reason: Option<&str>) -> Counters {
    let mut c = Counters::default();
    match kind {
        "reception" => c.injected = 1,
        "delivery" => {
            c.delivered = 1;
            c.delivered_first = 1;
        }
        "inband" => {
            c.inband_bounce = 1;
            if reason == Some("554 5.7.1 blocked") {
                c.block_bounce = 1;
            } else {
                c.hard_bounce = 1;
            }
        }
        _ => {
            c.delayed = 1;
            c.delayed_first = 1;
        }
    }
    c
}

/// The counters a query asks for.
const ASKED: &[&str] = &["injected", "delivered", "inband_bounce", "delayed"];

fn masked(c: &Counters) -> Counters {
    let mut out = Counters::default();
    for i in CounterSet::of(ASKED).iter() {
        out.set(i, c.get(i));
    }
    out
}

#[test]
fn every_access_path_sums_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn AnalyticsStore> =
        Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let evs = events();
    let batch = ingest::prepare(&body(&evs), &TrapList::default()).unwrap();
    let outcome = store.ingest(batch).unwrap();
    assert_eq!(outcome.accepted as usize, evs.len());

    let windows = [
        (Increment::Minute, BASE, BASE + 86_400),
        (Increment::Hour, BASE, BASE + 3 * 86_400),
        // Over two weeks: the whole week is read from the week table.
        (Increment::Day, BASE - 86_400, BASE + 15 * 86_400),
    ];
    let groups: [&[Facet]; 6] = [
        &[],
        &[Facet::Campaign],
        &[Facet::Domain],
        &[Facet::Subaccount],
        &[Facet::IpPool, Facet::MailboxProvider],
        &[Facet::Region],
    ];
    let mut checked = 0;
    for (inc, from, to) in windows {
        for (name, filter) in filters() {
            for group_by in groups {
                for by_bucket in [false, true] {
                    let got = store
                        .rollups(&RollupQuery {
                            increment: inc,
                            from,
                            to,
                            filter: &filter,
                            group_by,
                            by_bucket,
                            counters: CounterSet::of(ASKED),
                        })
                        .unwrap();
                    let mut want: BTreeMap<(Vec<String>, Option<i64>), Counters> = BTreeMap::new();
                    for e in &evs {
                        if e.ts < from || e.ts >= to || !filter.matches(&e.dims) {
                            continue;
                        }
                        let key = group_by.iter().map(|f| e.dims.get(*f)).collect();
                        let bucket = by_bucket.then(|| inc.floor(e.ts));
                        want.entry((key, bucket))
                            .or_default()
                            .add(&masked(&counters_of(e.kind, e.reason)));
                    }
                    let got: BTreeMap<(Vec<String>, Option<i64>), Counters> = got
                        .into_iter()
                        .map(|r| ((r.key, r.bucket), r.counters))
                        .collect();
                    assert_eq!(
                        got, want,
                        "{inc:?} filter `{name}` group {group_by:?} by_bucket {by_bucket}"
                    );
                    checked += 1;
                }
            }
            // Reasons, by domain and not.
            for by_domain in [false, true] {
                let got = store
                    .reasons(&ReasonQuery {
                        kind: ReasonKind::Bounce,
                        increment: inc,
                        from,
                        to,
                        filter: &filter,
                        by_domain,
                    })
                    .unwrap();
                let mut want: BTreeMap<(String, Option<String>), i64> = BTreeMap::new();
                for e in &evs {
                    if e.kind != "inband" || e.ts < from || e.ts >= to || !filter.matches(&e.dims) {
                        continue;
                    }
                    let domain = by_domain.then(|| e.dims.domain.clone());
                    *want.entry((e.reason.unwrap().into(), domain)).or_default() += 1;
                }
                let got: BTreeMap<(String, Option<String>), i64> = got
                    .into_iter()
                    .map(|r| ((r.reason, r.domain), r.counts[0]))
                    .collect();
                assert_eq!(got, want, "reasons {inc:?} `{name}` by_domain {by_domain}");
            }
        }
    }
    assert_eq!(checked, 3 * filters().len() * groups.len() * 2);

    // A database of this layout made before the week tables existed: opening it fills them
    // from the day tables, so a long day read (whole weeks from the week table) still sums
    // every day.
    drop(store);
    let path = dir.path().join("s.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let weeks: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%_week'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(weeks.len() > 1, "{weeks:?}");
        for w in weeks {
            conn.execute_batch(&format!("DROP TABLE {w}")).unwrap();
        }
    }
    let store: Arc<dyn AnalyticsStore> = Arc::new(SqliteStore::open(&path).unwrap());

    let day = 86_400;
    let by_domain = |store: &dyn AnalyticsStore, first_day: i64| {
        let got = store
            .rollups(&RollupQuery {
                increment: Increment::Day,
                from: BASE - day,
                to: BASE + 15 * day,
                filter: &Filter::all(),
                group_by: &[Facet::Domain],
                by_bucket: false,
                counters: CounterSet::of(ASKED),
            })
            .unwrap();
        let mut want: BTreeMap<Vec<String>, Counters> = BTreeMap::new();
        for e in evs
            .iter()
            .filter(|e| Increment::Day.floor(e.ts) >= first_day)
        {
            want.entry(vec![e.dims.domain.clone()])
                .or_default()
                .add(&masked(&counters_of(e.kind, e.reason)));
        }
        let got: BTreeMap<Vec<String>, Counters> =
            got.into_iter().map(|r| (r.key, r.counters)).collect();
        (got, want)
    };
    let (got, want) = by_domain(&*store, 0);
    assert_eq!(got, want, "week tables filled on open");

    // Retention deletes the day rows before its cutoff, mid-week: the week's row then holds
    // deleted days, and reads must take that week from the day rows that are left.
    let cutoff = BASE + 2 * 86_400 + 12 * 3600;
    store
        .expire(
            &Retention {
                events_secs: 400 * day,
                metrics_secs: 30 * day,
            },
            cutoff + 30 * day,
        )
        .unwrap();
    let (got, want) = by_domain(&*store, cutoff);
    assert_eq!(got, want, "after retention");
}
