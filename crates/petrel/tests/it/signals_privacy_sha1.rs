//! `privacy-policy sha1` end to end: the events leave petrel with `rcpt_hash` (SHA-1 of the
//! lower-cased address) instead of `rcpt_to` / `raw_rcpt_to`, petrel's Signals service accepts
//! them, and the recipient can still be found by its hash. The same operator keeps the
//! `X-SP-Subaccount-ID` header in delivered mail (`retain-x-sp-subaccount-id true`) while the
//! header still sets the events' subaccount.

use crate::common;

use common::{
    free_port, python, relay_to_sink, send_mail, signals_get, signals_to_self, text,
    wait_for_events, Petrel, Sink,
};

const KEY: &str = "89abcdef0123456789abcdef0123456789abcdef";

fn sha1_hex(s: &str) -> String {
    let out = python(
        "import hashlib, sys; print(hashlib.sha1(sys.argv[1].encode()).hexdigest())",
        &[s],
    );
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn recipients_leave_as_hashes_and_the_retained_header_reaches_the_sink() {
    let sink = Sink::start("127.0.0.1");
    let sig = free_port();
    let p = Petrel::start(&format!(
        r#"
{relay}{signals}"#,
        relay = relay_to_sink(sink.port),
        signals = signals_to_self(
            sig,
            KEY,
            "  privacy-policy sha1\n  process-x-sp-subaccount-id true\n  retain-x-sp-subaccount-id true\n",
        ),
    ));
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["Frank.Jones@Sink.example"],
        "X-Job: hashed\r\nX-SP-Subaccount-ID: 31\r\n",
    );
    let got = sink.wait_for(1, 30);
    let data = got[0]["data"].as_str().unwrap();
    assert!(
        data.contains("X-SP-Subaccount-ID: 31\r\n"),
        "retain-x-sp-subaccount-id keeps the header: {data}"
    );

    let hash = sha1_hex("frank.jones@sink.example");
    let events = wait_for_events(sig, KEY, "campaigns=hashed", 30, |r| r.len() >= 2);
    let mut types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["delivery", "injection"], "{events:#?}");
    for e in &events {
        assert_eq!(e["rcpt_hash"], hash.as_str(), "{e}");
        assert!(e.get("raw_rcpt_to").is_none(), "no plain address: {e}");
        assert_ne!(e["rcpt_to"], "frank.jones@sink.example", "{e}");
        assert!(
            !e.to_string().to_ascii_lowercase().contains("frank.jones"),
            "the address appears nowhere in the event: {e}"
        );
        assert_eq!(e["recipient_domain"], "sink.example", "{e}");
        assert_eq!(e["subaccount_id"], "31", "{e}");
    }

    // The hash is what a search by recipient matches; the plain address matches nothing.
    let (status, by_hash) = signals_get(
        sig,
        KEY,
        &format!("/api/v1/events/message?recipients={hash}"),
    );
    assert_eq!(status, 200, "{by_hash}");
    assert_eq!(by_hash["results"].as_array().unwrap().len(), 2, "{by_hash}");
    let (_, by_address) = signals_get(
        sig,
        KEY,
        "/api/v1/events/message?recipients=frank.jones@sink.example",
    );
    assert_eq!(
        by_address["results"].as_array().unwrap().len(),
        0,
        "{by_address}"
    );
}
