//! Scenario: thin engagement events (an open and a click from a tracker that knows only the
//! message id and recipient) are stored with the campaign, IP pool, sending IP and
//! subaccount of the delivery they belong to, so they show up in campaign reports; an event
//! whose message is unknown is stored as it came; the sender's own fields are never
//! overwritten.

use std::io::Write;

use petrel_signals::ingest::prepare;
use petrel_signals::{AnalyticsStore, BatchOutcome, EventQuery, SignalsStore};

fn ingest(store: &SignalsStore, body: &[u8]) -> BatchOutcome {
    store
        .ingest(prepare(body, &Default::default()).unwrap())
        .unwrap()
}
use serde_json::Value;

fn gzip(data: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data.as_bytes()).unwrap();
    enc.finish().unwrap()
}

fn search(store: &SignalsStore, filter: &[(&str, &str)]) -> Vec<Value> {
    let mut pairs = vec![
        ("from".to_string(), "2025-12-31T00:00:00Z".to_string()),
        ("to".to_string(), "2026-01-02T00:00:00Z".to_string()),
    ];
    pairs.extend(filter.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let q = EventQuery::from_pairs(pairs).unwrap();
    store
        .search_events(&q)
        .unwrap()
        .results
        .iter()
        .map(|j| serde_json::from_str(j).unwrap())
        .collect()
}

const DELIVERY: &str = r#"{"msys":{"message_event":{"type":"delivery","event_id":"1","message_id":"00000000000000aa0000","timestamp":"1767225600","rcpt_to":"ana@example.net","friendly_from":"news@brand.example","subject":"Spring","campaign_id":"spring","binding":"vmta-a","binding_group":"warm","sending_ip":"192.0.2.10","subaccount_id":7,"open_tracking":true}}}"#;

#[test]
fn engagement_events_take_the_delivery_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SignalsStore::open(&dir.path().join("s.db")).unwrap();

    // The delivery and an open in the same batch (the open after it), a click in a later one.
    let open = r#"{"msys":{"track_event":{"type":"open","event_id":"2","message_id":"00000000000000aa0000","timestamp":"1767225700","rcpt_to":"ana@example.net","user_agent":"Mozilla/5.0 (X11)","ip_address":"203.0.113.5","subaccount_id":0}}}"#;
    let out = ingest(&store, &gzip(&format!("{DELIVERY}\n{open}\n")));
    assert_eq!((out.accepted, out.failed), (2, 0));
    let click = r#"{"msys":{"track_event":{"type":"click","event_id":"3","message_id":"00000000000000aa0000","timestamp":"1767225800","rcpt_to":"ana@example.net","target_link_url":"https://shop.example/x","campaign_id":"own-campaign","subaccount_id":0}}}"#;
    let stray = r#"{"msys":{"track_event":{"type":"open","event_id":"4","message_id":"00000000000000bb0000","timestamp":"1767225900","rcpt_to":"bo@example.net","subaccount_id":0}}}"#;
    let out = ingest(&store, &gzip(&format!("{click}\n{stray}\n")));
    assert_eq!((out.accepted, out.failed), (2, 0));

    // The campaign facet finds the delivery and the open; the click kept its own campaign.
    let spring = search(&store, &[("campaigns", "spring")]);
    let types: Vec<&str> = spring.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["open", "delivery"], "{spring:?}");
    let o = &spring[0];
    assert_eq!(o["binding_group"], "warm");
    assert_eq!(o["sending_ip"], "192.0.2.10");
    assert_eq!(o["subject"], "Spring");
    assert_eq!(o["subaccount_id"], 7);
    assert_eq!(o["user_agent"], "Mozilla/5.0 (X11)", "own fields stay");
    assert_eq!(o["ip_address"], "203.0.113.5");

    let own = search(&store, &[("campaigns", "own-campaign")]);
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["type"], "click");
    assert_eq!(
        own[0]["binding_group"], "warm",
        "missing fields still filled"
    );

    // Facets that are indexed columns work on enriched events too.
    let pool = search(&store, &[("ip_pools", "warm"), ("events", "click,open")]);
    assert_eq!(pool.len(), 2);
    let sub = search(&store, &[("subaccounts", "7"), ("events", "click")]);
    assert_eq!(sub.len(), 1);

    // No original stored: the event stays thin.
    let stray = search(&store, &[("message_ids", "00000000000000bb0000")]);
    assert_eq!(stray.len(), 1);
    assert!(stray[0].get("campaign_id").is_none());
    assert_eq!(stray[0]["subaccount_id"], 0);
}
