//! The ingest lines match SparkPost's example events (sparkpost-spec §2.7) field for field.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use petrel_events::{Event, EventKind, Privacy};
use serde_json::{json, Value};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn check(event: &Event, expected: &str) {
    let line = event.to_ingest_json();
    assert!(!line.contains('\n'));
    let got: Value = serde_json::from_str(&line).unwrap();
    let want: Value = serde_json::from_str(expected).unwrap();
    assert_eq!(got, want, "\n got: {line}\nwant: {expected}");
}

#[test]
fn reception() {
    let e = Event {
        recv_method: s("esmtp"),
        rcpt_to: s("ana@example.net"),
        raw_rcpt_to: s("Ana@Example.net"),
        routing_domain: s("example.net"),
        msg_from: s("bounces@mail.example.com"),
        friendly_from: s("news@example.com"),
        subject: s("Spring is here"),
        msg_size: Some(18234),
        campaign_id: s("spring-launch"),
        binding: s("vmta-a"),
        ip_pool: s("warm"),
        sending_ip: ip("192.0.2.10"),
        open_tracking: Some(true),
        click_tracking: Some(true),
        initial_pixel: Some(true),
        rcpt_meta: Some(json!({"plan":"gold"})),
        rcpt_tags: vec!["eu".into(), "trial".into()],
        ..Event::new(
            EventKind::Reception,
            4812739012764551233,
            "0000a1b2c3d4e5f60718",
            at(1767225600),
        )
    };
    check(
        &e,
        r#"{"msys":{"message_event":{"type":"reception","event_id":"4812739012764551233","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767225600","recv_method":"esmtp","rcpt_to":"ana@example.net","raw_rcpt_to":"Ana@Example.net","routing_domain":"example.net","msg_from":"bounces@mail.example.com","friendly_from":"news@example.com","subject":"Spring is here","msg_size":"18234","campaign_id":"spring-launch","binding":"vmta-a","binding_group":"warm","sending_ip":"192.0.2.10","subaccount_id":0,"open_tracking":true,"click_tracking":true,"initial_pixel":true,"rcpt_meta":{"plan":"gold"},"rcpt_tags":["eu","trial"]}}}"#,
    );
}

#[test]
fn delivery() {
    let e = Event {
        delv_method: s("esmtp"),
        recv_method: s("esmtp"),
        rcpt_to: s("ana@example.net"),
        routing_domain: s("example.net"),
        msg_from: s("bounces@mail.example.com"),
        friendly_from: s("news@example.com"),
        subject: s("Spring is here"),
        msg_size: Some(18234),
        num_retries: Some(0),
        queue_time: Some(Duration::from_millis(2870)),
        binding: s("vmta-a"),
        ip_pool: s("warm"),
        sending_ip: ip("192.0.2.10"),
        ip_address: ip("198.51.100.25"),
        outbound_tls: Some(1),
        campaign_id: s("spring-launch"),
        ..Event::new(
            EventKind::Delivery,
            4812739012764551234,
            "0000a1b2c3d4e5f60718",
            at(1767225603),
        )
    };
    check(
        &e,
        r#"{"msys":{"message_event":{"type":"delivery","event_id":"4812739012764551234","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767225603","delv_method":"esmtp","recv_method":"esmtp","rcpt_to":"ana@example.net","routing_domain":"example.net","msg_from":"bounces@mail.example.com","friendly_from":"news@example.com","subject":"Spring is here","msg_size":"18234","num_retries":"0","queue_time":"2870","binding":"vmta-a","binding_group":"warm","sending_ip":"192.0.2.10","ip_address":"198.51.100.25","outbound_tls":"1","campaign_id":"spring-launch","subaccount_id":0}}}"#,
    );
}

#[test]
fn inband_bounce_with_redacted_reason() {
    let e = Event {
        delv_method: s("esmtp"),
        recv_method: s("esmtp"),
        rcpt_to: s("gone@example.org"),
        routing_domain: s("example.org"),
        msg_from: s("bounces@mail.example.com"),
        bounce_class: Some(10),
        error_code: Some(550),
        raw_reason: s("smtp;550 5.1.1 <gone@example.org>: Recipient address rejected"),
        num_retries: Some(0),
        sending_ip: ip("192.0.2.10"),
        ip_pool: s("warm"),
        campaign_id: s("spring-launch"),
        ..Event::new(
            EventKind::Bounce,
            4812739012764551235,
            "0000b7c6d5e4f3021a2b",
            at(1767225611),
        )
    };
    check(
        &e,
        r#"{"msys":{"message_event":{"type":"inband","event_id":"4812739012764551235","message_id":"0000b7c6d5e4f3021a2b","timestamp":"1767225611","delv_method":"esmtp","recv_method":"esmtp","rcpt_to":"gone@example.org","routing_domain":"example.org","msg_from":"bounces@mail.example.com","bounce_class":"10","error_code":"550","raw_reason":"smtp;550 5.1.1 <gone@example.org>: Recipient address rejected","reason":"smtp;550 5.1.1 <...@...>: Recipient address rejected","num_retries":"0","sending_ip":"192.0.2.10","binding_group":"warm","campaign_id":"spring-launch","subaccount_id":0}}}"#,
    );
}

#[test]
fn tempfail() {
    let e = Event {
        delv_method: s("esmtp"),
        recv_method: s("esmtp"),
        rcpt_to: s("busy@example.com"),
        msg_from: s("bounces@mail.example.com"),
        bounce_class: Some(22),
        error_code: Some(452),
        raw_reason: s("smtp;452 4.2.2 Mailbox full"),
        num_retries: Some(1),
        queue_time: Some(Duration::from_millis(600412)),
        sending_ip: ip("192.0.2.10"),
        ..Event::new(
            EventKind::Delay,
            4812739012764551236,
            "0000c8d7e6f5041b2c3d",
            at(1767225640),
        )
    };
    check(
        &e,
        r#"{"msys":{"message_event":{"type":"tempfail","event_id":"4812739012764551236","message_id":"0000c8d7e6f5041b2c3d","timestamp":"1767225640","delv_method":"esmtp","recv_method":"esmtp","rcpt_to":"busy@example.com","msg_from":"bounces@mail.example.com","bounce_class":"22","error_code":"452","raw_reason":"smtp;452 4.2.2 Mailbox full","reason":"smtp;452 4.2.2 Mailbox full","num_retries":"1","queue_time":"600412","sending_ip":"192.0.2.10","subaccount_id":0}}}"#,
    );
}

#[test]
fn out_of_band() {
    let e = Event {
        delv_method: s("esmtp"),
        recv_method: s("esmtp"),
        rcpt_to: s("ana@example.net"),
        msg_from: s("bounces@mail.example.com"),
        bounce_class: Some(10),
        error_code: Some(550),
        raw_reason: s("550 5.0.0 <ana@example.net>... User unknown"),
        ..Event::new(
            EventKind::OutOfBand,
            4812739012764551237,
            "0000a1b2c3d4e5f60718",
            at(1767229200),
        )
    };
    check(
        &e,
        r#"{"msys":{"message_event":{"type":"outofband","event_id":"4812739012764551237","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767229200","delv_method":"esmtp","recv_method":"esmtp","rcpt_to":"ana@example.net","msg_from":"bounces@mail.example.com","bounce_class":"10","error_code":"550","raw_reason":"550 5.0.0 <ana@example.net>... User unknown","reason":"550 5.0.0 ...@... User unknown","subaccount_id":0}}}"#,
    );
}

#[test]
fn spam_complaint() {
    let e = Event {
        delv_method: s("esmtp"),
        rcpt_to: s("ana@example.net"),
        fbtype: s("abuse"),
        report_by: s("fbl.example.net"),
        report_to: s("fbl@mail.example.com"),
        friendly_from: s("news@example.com"),
        sending_ip: ip("192.0.2.10"),
        ..Event::new(
            EventKind::SpamComplaint,
            4812739012764551238,
            "0000a1b2c3d4e5f60718",
            at(1767232800),
        )
    };
    check(
        &e,
        r#"{"msys":{"message_event":{"type":"feedback","event_id":"4812739012764551238","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767232800","delv_method":"esmtp","rcpt_to":"ana@example.net","fbtype":"abuse","report_by":"fbl.example.net","report_to":"fbl@mail.example.com","friendly_from":"news@example.com","sending_ip":"192.0.2.10","subaccount_id":0}}}"#,
    );
}

#[test]
fn policy_rejection() {
    let e = Event {
        recv_method: s("esmtp"),
        rcpt_to: s("x@example.com"),
        raw_rcpt_to: s("x@example.com"),
        msg_from: s("app@unverified.example"),
        friendly_from: s("app@unverified.example"),
        bounce_class: Some(25),
        error_code: Some(550),
        raw_reason: s("550 5.7.1 Unconfigured Sending Domain"),
        remote_addr: ip("203.0.113.7"),
        ..Event::new(
            EventKind::PolicyRejection,
            4812739012764551239,
            "0000d9e8f7a6051c3d4e",
            at(1767225605),
        )
    };
    check(
        &e,
        r#"{"msys":{"message_event":{"type":"rejection","event_id":"4812739012764551239","message_id":"0000d9e8f7a6051c3d4e","timestamp":"1767225605","recv_method":"esmtp","rcpt_to":"x@example.com","raw_rcpt_to":"x@example.com","msg_from":"app@unverified.example","friendly_from":"app@unverified.example","bounce_class":"25","error_code":"550","raw_reason":"550 5.7.1 Unconfigured Sending Domain","reason":"550 5.7.1 Unconfigured Sending Domain","remote_addr":"203.0.113.7","subaccount_id":0}}}"#,
    );
}

fn engagement(kind: EventKind, id: u64, ts: u64) -> Event {
    Event {
        delv_method: s("esmtp"),
        rcpt_to: s("ana@example.net"),
        user_agent: s("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
        ip_address: ip("203.0.113.50"),
        ..Event::new(kind, id, "0000a1b2c3d4e5f60718", at(ts))
    }
}

#[test]
fn track_events() {
    let initial = Event {
        geo_ip: Some(
            json!({"country":"DE","region":"BE","city":"Berlin","latitude":52.52,"longitude":13.40,"zip":10115,"postal_code":"10115"}),
        ),
        ..engagement(EventKind::InitialOpen, 4812739012764551241, 1767226000)
    };
    check(
        &initial,
        r#"{"msys":{"track_event":{"type":"initial_open","event_id":"4812739012764551241","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767226000","delv_method":"esmtp","rcpt_to":"ana@example.net","user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64)","ip_address":"203.0.113.50","geo_ip":{"country":"DE","region":"BE","city":"Berlin","latitude":52.52,"longitude":13.40,"zip":10115,"postal_code":"10115"},"subaccount_id":0}}}"#,
    );
    check(
        &engagement(EventKind::Open, 4812739012764551242, 1767226001),
        r#"{"msys":{"track_event":{"type":"open","event_id":"4812739012764551242","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767226001","delv_method":"esmtp","rcpt_to":"ana@example.net","user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64)","ip_address":"203.0.113.50","subaccount_id":0}}}"#,
    );
    let click = Event {
        target_link_url: s("https://shop.example.com/spring"),
        target_link_name: s("hero-banner"),
        ..engagement(EventKind::Click, 4812739012764551243, 1767226030)
    };
    check(
        &click,
        r#"{"msys":{"track_event":{"type":"click","event_id":"4812739012764551243","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767226030","delv_method":"esmtp","rcpt_to":"ana@example.net","target_link_url":"https://shop.example.com/spring","target_link_name":"hero-banner","user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64)","ip_address":"203.0.113.50","subaccount_id":0}}}"#,
    );
}

/// The spec's `link` unsubscribe line (§2.7): ingest type `link` in `unsubscribe_event`.
#[test]
fn link_unsubscribe() {
    let e = Event {
        delv_method: s("esmtp"),
        recv_method: s("esmtp"),
        rcpt_to: s("ana@example.net"),
        user_agent: s("Mozilla/5.0"),
        target_link_url: s("https://example.com/unsub?u=77"),
        ..Event::new(
            EventKind::LinkUnsubscribe,
            4812739012764551244,
            "0000a1b2c3d4e5f60718",
            at(1767226100),
        )
    };
    check(
        &e,
        r#"{"msys":{"unsubscribe_event":{"type":"link","event_id":"4812739012764551244","message_id":"0000a1b2c3d4e5f60718","timestamp":"1767226100","delv_method":"esmtp","recv_method":"esmtp","rcpt_to":"ana@example.net","user_agent":"Mozilla/5.0","target_link_url":"https://example.com/unsub?u=77","subaccount_id":0}}}"#,
    );
    assert_eq!(EventKind::LinkUnsubscribe.public_type(), "link_unsubscribe");
}

#[test]
fn privacy_sha1_sends_hash_and_domain_together() {
    let e = Event {
        recv_method: s("esmtp"),
        rcpt_to: s("ana@example.net"),
        raw_rcpt_to: s("Ana@Example.NET"),
        ..Event::new(EventKind::Reception, 1, "m", at(1))
    };
    let v: Value = serde_json::from_str(&e.to_ingest_json_with(Privacy::Sha1)).unwrap();
    let ev = &v["msys"]["message_event"];
    assert!(ev.get("rcpt_to").is_none() && ev.get("raw_rcpt_to").is_none());
    // printf %s ana@example.net | sha1sum
    assert_eq!(ev["rcpt_hash"], "3207896f406c6b5580d0e88fae3efcec78102e60");
    assert_eq!(ev["rcpt_domain"], "example.net");
}

#[test]
fn event_ids_are_unique_u63_and_strings_are_escaped() {
    let a = petrel_events::next_event_id();
    let b = petrel_events::next_event_id();
    assert_ne!(a, b);
    assert!(a < 1 << 63 && b < 1 << 63);
    let e = Event {
        subject: s("quote \" and \n newline é"),
        ..Event::new(EventKind::Reception, a, "m", at(1))
    };
    let line = e.to_ingest_json();
    assert!(!line.contains('\n'));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        v["msys"]["message_event"]["subject"],
        "quote \" and \n newline é"
    );
    assert_eq!(v["msys"]["message_event"]["event_id"], a.to_string());
}
