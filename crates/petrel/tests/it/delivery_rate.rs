//! `max-msg-rate`: a queue attempts at most N recipients per window, across its connections.
//!
//! The four messages wait in a paused queue, so they are all ready when delivery starts; the
//! spacing is then read from the sink's own receive times, not from when this test happens to
//! look (a loaded machine delays the test thread, not petrel's clock).

use crate::common;

use common::{send_mail, Petrel, Sink};

#[test]
fn max_msg_rate_spaces_deliveries() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&format!(
        "<source 0/0>\n  always-allow-relaying yes\n</source>\n<domain sink.example>\n  smtp-hosts [127.0.0.1]:{}\n  use-starttls no\n  max-msg-rate 2/3s\n</domain>\n",
        sink.port
    ));
    let paused = p.cli(&["pause", "queue", "sink.example"]);
    assert!(paused.status.success(), "{paused:?}");
    for i in 0..4 {
        send_mail(
            p.smtp_port,
            "a@b.example",
            &[&format!("r{i}@sink.example")],
            "",
        );
    }
    let resumed = p.cli(&["resume", "queue", "sink.example"]);
    assert!(resumed.status.success(), "{resumed:?}");

    let records = sink.wait_for(4, 30);
    let mut at: Vec<f64> = records
        .iter()
        .map(|r| r["at"].as_f64().expect("the sink records a receive time"))
        .collect();
    at.sort_by(f64::total_cmp);
    // The window opens at the first attempt and admits two; the third waits until it has
    // passed (3 s), so it arrives at least 3 s minus the first transaction's own duration after
    // the first. Without the limit all four arrive within a fraction of a second. (The fourth
    // may follow the third closely: they share the second window.)
    assert!(at[2] - at[0] >= 2.0, "third delivery too early: {at:?}");
}
