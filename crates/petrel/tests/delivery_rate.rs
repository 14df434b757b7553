//! `max-msg-rate`: a queue attempts at most N recipients per window, across its connections.

mod common;

use std::time::Duration;

use common::{python, text, Petrel, Sink};

#[test]
fn max_msg_rate_spaces_deliveries() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&format!(
        "<source 0/0>\n  always-allow-relaying yes\n</source>\n<domain sink.example>\n  smtp-hosts [127.0.0.1]:{}\n  use-starttls no\n  max-msg-rate 2/3s\n</domain>\n",
        sink.port
    ));
    // All four from one client process, well inside one window (four separate Python
    // starts took longer than the 3 s window on a loaded machine).
    let script = r#"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20) as s:
    for i in range(4):
        s.sendmail("a@b.example", ["r%d@sink.example" % i], "Subject: test\r\n\r\nrate\r\n")
"#;
    let out = python(script, &[&p.smtp_port.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
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
