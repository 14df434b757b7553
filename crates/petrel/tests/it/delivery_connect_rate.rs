//! `max-connect-rate`: a queue opens no more connections per window than allowed, even with
//! work waiting and connection slots free; the rest of its mail waits for the next window.

use crate::common;

use std::time::Duration;

use common::{relay_to_sink_with, send_mail, text, Petrel, Sink};

#[test]
fn openings_stop_at_the_connect_rate() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&relay_to_sink_with(
        sink.port,
        "  max-smtp-out 10\n  max-msg-per-connection 1\n  max-connect-rate 2/1h\n",
    ));
    for i in 0..4 {
        send_mail(
            p.smtp_port,
            "news@brand.example",
            &[&format!("r{i}@sink.example")],
            "",
        );
    }
    sink.wait_for(2, 30);
    // Slots and work are there; only the rate holds the other two back.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sink.records().len(), 2, "two connections, one message each");
    let (status, body) = p.http_get("/metrics");
    assert_eq!(status, 200);
    assert!(
        body.lines()
            .any(|l| l == "petrel_delivery_connections_total 2"),
        "{body}"
    );
    let out = p.cli(&["show", "queues", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let q = &v["data"]["queues"][0];
    assert_eq!(q["queue"], "sink.example/{default}", "{v}");
    assert_eq!(q["rcp"], 2, "{v}");
}
