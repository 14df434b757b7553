//! GET on a wrapped link marked `data-msys-unsubscribe="1"`: the redirect and the `click`
//! event as for any link, plus a `link_unsubscribe` event (ingest type `link`, grouping
//! `unsubscribe_event`) and the recipient on the suppression list of the token's subaccount.
//! A link scanner's hit is recorded, flagged, but suppresses nobody; HEAD does nothing.

mod common;

use common::*;
use petrel_suppression::Reason;

const UNSUB_URL: &str = "https://brand.example/unsubscribe?u=77";

#[tokio::test]
async fn a_person_following_it_is_unsubscribed_from_that_subaccount() {
    let h = Harness::start().await;
    let token = unsubscribe_token(UNSUB_URL, 7);

    // A link checker's HEAD: same answer, no event, no suppression.
    let r = h
        .request("HEAD", &format!("/c/{token}"), &[("User-Agent", BROWSER)])
        .await;
    assert_eq!(r.status, 302);
    assert!(h.suppression.is_suppressed(7, RECIPIENT).is_none());

    let r = h
        .get(&format!("/c/{token}"), &[("User-Agent", BROWSER)])
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(UNSUB_URL));

    let entry = h
        .suppression
        .is_suppressed(7, RECIPIENT)
        .expect("suppressed for subaccount 7");
    assert_eq!(entry.address, "fred.smith@example.com");
    assert_eq!(entry.reason, Reason::LinkUnsubscribe);
    assert!(
        entry.description.contains(UNSUB_URL),
        "{}",
        entry.description
    );
    assert!(
        entry.description.contains(MESSAGE_ID),
        "{}",
        entry.description
    );
    assert!(
        h.suppression.is_suppressed(0, RECIPIENT).is_none(),
        "other subaccounts still mail them"
    );
    let stats = h.host.stats();
    assert_eq!(
        (stats.clicks, stats.unsubscribes, stats.suppressed),
        (1, 1, 1)
    );

    let events = h.finish().await;
    assert_eq!(events.len(), 2, "{events:#?}");
    let click = &events[0];
    assert_eq!(click["type"], "click");
    assert_eq!(click["target_link_url"], UNSUB_URL);
    let unsub = &events[1];
    assert_eq!(unsub["type"], "link");
    assert_eq!(unsub["message_id"], MESSAGE_ID);
    assert_eq!(unsub["rcpt_to"], "fred.smith@example.com");
    assert_eq!(unsub["target_link_url"], UNSUB_URL);
    assert_eq!(unsub["user_agent"], BROWSER);
    assert_eq!(unsub["ip_address"], "127.0.0.1");
    assert_eq!(unsub["delv_method"], "esmtp");
    assert_eq!(unsub["recv_method"], "esmtp");
    assert_eq!(unsub["subaccount_id"], 7);
    assert_eq!(unsub["customer_id"], CUSTOMER_ID.to_string());
    assert!(unsub.get("machine").is_none());
    assert_ne!(unsub["event_id"], click["event_id"]);
}

#[tokio::test]
async fn the_events_are_in_the_unsubscribe_grouping() {
    let h = Harness::start().await;
    let token = unsubscribe_token(UNSUB_URL, 0);
    let r = h
        .get(&format!("/c/{token}"), &[("User-Agent", BROWSER)])
        .await;
    assert_eq!(r.status, 302);
    h.spool.rotate().unwrap();
    let mut groupings = Vec::new();
    for entry in std::fs::read_dir(h.dir.path().join("events")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let (g, e) = v["msys"].as_object().unwrap().iter().next().unwrap();
            groupings.push(format!("{g}/{}", e["type"].as_str().unwrap()));
        }
    }
    assert_eq!(groupings, ["track_event/click", "unsubscribe_event/link"]);
    h.finish().await;
}

#[tokio::test]
async fn a_link_scanner_is_recorded_but_unsubscribes_nobody() {
    let h = Harness::start().await;
    let token = unsubscribe_token(UNSUB_URL, 7);
    let r = h
        .get(&format!("/c/{token}"), &[("User-Agent", "curl/8.5.0")])
        .await;
    assert_eq!(r.status, 302);
    assert!(h.suppression.is_suppressed(7, RECIPIENT).is_none());
    assert_eq!(h.host.stats().suppressed, 0);
    let events = h.finish().await;
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[1]["type"], "link");
    assert_eq!(events[1]["machine"], "link-scanner");
}

#[tokio::test]
async fn ordinary_links_unsubscribe_nobody() {
    let h = Harness::start().await;
    let token = click_token("https://brand.example/unsubscribe?u=1", None);
    let r = h
        .get(&format!("/c/{token}"), &[("User-Agent", BROWSER)])
        .await;
    assert_eq!(r.status, 302);
    assert!(h.suppression.is_empty());
    let events = h.finish().await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["type"], "click");
}
