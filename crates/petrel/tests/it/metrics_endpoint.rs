//! An operator's monitoring: after real traffic (a delivery, a bounce, Signals uploads and a
//! bad tracking link), `/metrics` on the management port counts each of them in Prometheus's
//! text format, and `petrel show status` prints the same counters per section.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{
    free_port, http, relay_to_sink, send_mail, signals_to_self, text, wait_for_events, Petrel, Sink,
};

const KEY: &str = "00112233445566778899aabbccddeeff00112233";

/// `name value` samples of the exposition text; panics on a sample line that is not one.
fn samples(body: &str) -> HashMap<String, u64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l}"));
            (
                name.to_string(),
                value.parse().unwrap_or_else(|_| panic!("{l}")),
            )
        })
        .collect()
}

fn scrape(p: &Petrel) -> (String, HashMap<String, u64>) {
    let (status, body) = p.http_get("/metrics");
    assert_eq!(status, 200, "{body}");
    let map = samples(&body);
    (body, map)
}

#[test]
fn traffic_shows_up_in_metrics_and_show_status() {
    let sink = Sink::start("127.0.0.1");
    let sig = free_port();
    let track = free_port();
    let p = Petrel::start(&format!(
        r#"
{relay}<acct-file {{DIR}}/acct.csv>
  records d,b
</acct-file>
{signals}"#,
        relay = relay_to_sink(sink.port),
        signals = signals_to_self(
            sig,
            KEY,
            &format!(
                "  engagement-tracking sparkpost\n  tracking-domain http://127.0.0.1:{track}\n  tracking-listener 127.0.0.1:{track}\n"
            )
        ),
    ));
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["ok@sink.example", "reject-1@sink.example"],
        "X-Job: metered\r\n",
    );
    sink.wait_for(1, 30);
    // Two injections, a delivery and a bounce reach the Signals service.
    wait_for_events(sig, KEY, "campaigns=metered", 30, |r| r.len() >= 4);
    let (status, _) = http(track, "GET", "/o/not-a-token");
    assert_eq!(status, 404);

    // The uploader's counters move once its 200 has been handled; poll briefly.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (body, m) = loop {
        let (body, m) = scrape(&p);
        if m.get("petrel_signals_events_uploaded_total").copied() >= Some(4) {
            break (body, m);
        }
        assert!(Instant::now() < deadline, "no upload counted:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let at = |name: &str| {
        *m.get(name)
            .unwrap_or_else(|| panic!("no sample {name}:\n{body}"))
    };
    assert_eq!(at("petrel_smtp_in_messages_total"), 1);
    assert_eq!(at("petrel_smtp_in_recipients_total"), 2);
    assert_eq!(at("petrel_delivery_delivered_total"), 1);
    assert_eq!(at("petrel_delivery_bounced_total"), 1);
    // r ×2, d, b, and the DSN's own r row and outcome: every record handed to accounting,
    // before each file's `records` filter.
    assert!(at("petrel_accounting_records_total") >= 4, "{body}");
    assert_eq!(at("petrel_signals_events_emitted_total"), 4);
    assert!(at("petrel_signals_batches_uploaded_total") >= 1);
    assert_eq!(at("petrel_signals_upload_failures_total"), 0);
    assert_eq!(at("petrel_tracking_not_found_total"), 1);
    assert_eq!(at("petrel_tracking_clicks_total"), 0);
    assert!(at("petrel_spool_fsyncs_total") >= 1);
    assert!(
        body.contains("# TYPE petrel_delivery_delivered_total counter\n"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE petrel_spool_messages gauge\n"),
        "{body}"
    );
    assert!(
        !body.contains("petrel_returns_"),
        "no bounce processor configured, so no section: {body}"
    );

    // The CLI's status view: one line per section with the same values.
    let out = p.cli(&["show", "status"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    let line = |section: &str| {
        shown
            .lines()
            .find(|l| l.split_whitespace().next() == Some(section))
            .unwrap_or_else(|| panic!("no {section} line:\n{shown}"))
            .to_string()
    };
    assert!(line("delivery").contains("delivered=1"), "{shown}");
    assert!(line("delivery").contains("bounced=1"), "{shown}");
    assert!(line("tracking").contains("not_found=1"), "{shown}");
    assert!(line("signals").contains("events_emitted=4"), "{shown}");
}
