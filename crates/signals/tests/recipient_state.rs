//! Engagement state through the store: a machine-flagged click (a link scanner) is no
//! engagement and a machine-flagged link unsubscribe no unsubscribe, so the recipient stays
//! in the cohort a human click would have moved it out of; and a recipient's state is
//! forgotten by retention a year after its last activity, after which it is `new` again.

use std::sync::Arc;

use petrel_signals::store::{AnalyticsStore, SignalsFacet, SignalsQuery};
use petrel_signals::{ingest, Retention, SqliteStore};
use petrel_signals_model::cohort::Cohort;
use petrel_signals_model::daily::Daily;
use petrel_signals_model::traps::TrapList;
use serde_json::json;

const DAY: i64 = 86_400;
/// Monday 2026-11-02 00:00 UTC.
const BASE: i64 = 1_793_577_600;

/// (grouping, type, message, recipient, time, machine flag)
type Ev = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    bool,
);

fn ingest_events(store: &dyn AnalyticsStore, events: &[Ev]) {
    let mut text = String::new();
    for (n, (grouping, kind, msg, rcpt, ts, machine)) in events.iter().enumerate() {
        let mut f = json!({
            "type": kind, "event_id": format!("{ts}{n}"), "message_id": msg,
            "timestamp": ts.to_string(), "rcpt_to": rcpt, "subaccount_id": 0,
            "campaign_id": "news",
        });
        if *machine {
            f["machine"] = json!("link-scanner");
        }
        if *kind == "click" || *kind == "link" {
            f["target_link_url"] = json!("https://shop.example/x");
        }
        text.push_str(&json!({"msys": {*grouping: f}}).to_string());
        text.push('\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    let batch = ingest::prepare(&gz.finish().unwrap(), &TrapList::default()).unwrap();
    let outcome = store.ingest(batch).unwrap();
    assert_eq!(outcome.accepted as usize, events.len());
}

/// The day's Signals counters, summed over subaccounts.
fn day(store: &dyn AnalyticsStore, at: i64) -> Daily {
    let d = at - at.rem_euclid(DAY);
    let rows = store
        .daily(&SignalsQuery {
            from_day: d,
            to_day: d,
            facet: SignalsFacet::Subaccount,
            subaccount: None,
        })
        .unwrap();
    let mut sum = Daily::default();
    for r in rows {
        sum.add(&r.daily);
    }
    sum
}

fn cohort(d: &Daily, c: Cohort) -> i64 {
    d.cohort[Cohort::ALL.iter().position(|x| *x == c).unwrap()]
}

#[test]
fn machine_clicks_are_no_engagement_and_state_expires() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn AnalyticsStore> =
        Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let t0 = BASE + 10 * 3600;
    // a is clicked only by a scanner, which also follows the unsubscribe link; b clicks.
    ingest_events(
        &*store,
        &[
            ("message_event", "reception", "m1", "a@x.example", t0, false),
            ("message_event", "reception", "m2", "b@x.example", t0, false),
            ("track_event", "click", "m1", "a@x.example", t0 + 3600, true),
            (
                "unsubscribe_event",
                "link",
                "m1",
                "a@x.example",
                t0 + 3601,
                true,
            ),
            (
                "track_event",
                "click",
                "m2",
                "b@x.example",
                t0 + 3600,
                false,
            ),
        ],
    );
    let first = day(&*store, t0);
    assert_eq!(first.injections, 2);
    assert_eq!(cohort(&first, Cohort::New), 2);
    assert_eq!(first.unsubscribes, 0, "a scanner's unsubscribe is none");
    // Of the day's new injections only b's was engaged with.
    assert_eq!(
        first.engaged[0], 1,
        "{:?}: the scanner's click is no engagement",
        first.engaged
    );

    // Twenty days later: a was never engaged (mailed over 7 days ago), b engaged 20 days ago.
    let t1 = t0 + 20 * DAY;
    ingest_events(
        &*store,
        &[
            ("message_event", "reception", "m3", "a@x.example", t1, false),
            ("message_event", "reception", "m4", "b@x.example", t1, false),
        ],
    );
    let second = day(&*store, t1);
    assert_eq!(cohort(&second, Cohort::Unengaged), 1);
    assert_eq!(cohort(&second, Cohort::Recent90), 1);
    assert_eq!(cohort(&second, Cohort::New), 0);

    // A year and a week after their last injection both states are forgotten, not before;
    // a recipient mailed again then starts over as new.
    let retention = Retention {
        events_secs: 10 * DAY,
        metrics_secs: 30 * DAY,
    };
    let early = store.expire(&retention, t1 + 365 * DAY).unwrap();
    assert_eq!(early.recipients, 0, "{early:?}");
    let t2 = t1 + 373 * DAY;
    let expired = store.expire(&retention, t2).unwrap();
    assert_eq!(expired.recipients, 2, "{expired:?}");
    ingest_events(
        &*store,
        &[("message_event", "reception", "m5", "a@x.example", t2, false)],
    );
    let third = day(&*store, t2);
    assert_eq!(cohort(&third, Cohort::New), 1);
    assert_eq!(cohort(&third, Cohort::Unengaged), 0);
}
