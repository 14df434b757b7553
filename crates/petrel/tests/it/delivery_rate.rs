//! `max-msg-rate`: a queue attempts at most N recipients per window, across its connections.

use crate::common;

use std::time::Duration;

use common::{send_mail, Petrel, Sink};

#[test]
fn max_msg_rate_spaces_deliveries() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&format!(
        "<source 0/0>\n  always-allow-relaying yes\n</source>\n<domain sink.example>\n  smtp-hosts [127.0.0.1]:{}\n  use-starttls no\n  max-msg-rate 2/3s\n</domain>\n",
        sink.port
    ));
    for i in 0..4 {
        send_mail(
            p.smtp_port,
            "a@b.example",
            &[&format!("r{i}@sink.example")],
            "",
        );
    }
    let first = sink.wait_for(1, 20);
    assert!(first.len() <= 2, "{first:?}");
    // Within the first window no more than two recipients may be attempted.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        sink.records().len() <= 2,
        "rate exceeded: {:?}",
        sink.records()
    );
    // The rest follow in the next window.
    sink.wait_for(4, 20);
}
