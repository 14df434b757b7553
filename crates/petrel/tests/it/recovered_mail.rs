//! Mail recovered from the spool after a kill -9 is delivered with every part of the engine
//! in place from the first attempt: the suppressed recipient is refused by policy, the HTML
//! copy is tracked and the return path is a signed VERP address.

use crate::common;

use std::time::Duration;

use common::{python, text, wait_for_acct, Petrel, Sink};

const CONFIG: &str = r#"
<source 0/0>
  always-allow-relaying yes
</source>
<domain sink.example>
  smtp-hosts [127.0.0.1]:{SINK}
  use-starttls no
</domain>
<bounce-processor>
  <address-list>
    domain bounces.brand.example
  </address-list>
</bounce-processor>
<signals>
  api-key 0123456789abcdef0123456789abcdef01234567
  upload false
  event-dir {DIR}/events
  engagement-tracking sparkpost
  tracking-domain https://click.example.com/t
  tracking-key 3 recovered-mail-test-secret-0123
</signals>
<acct-file {DIR}/acct.csv>
  records b
</acct-file>
"#;

const SEND: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
msg = ("From: news@brand.example\r\nTo: list@brand.example\r\nSubject: spring\r\n"
       "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
       "<html><body><a href=\"https://shop.example/spring\">Shop</a></body></html>\r\n")
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.sendmail("news@bounces.brand.example", ["ana@sink.example", "gone@sink.example"], msg)
"#;

#[test]
fn recovered_mail_is_suppressed_tracked_and_verp_signed() {
    let sink = Sink::start("127.0.0.1");
    let mut p = Petrel::start(&CONFIG.replace("{SINK}", &sink.port.to_string()));
    let ok = |args: &[&str]| {
        let out = p.cli(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    };
    ok(&["suppression", "add", "gone@sink.example"]);
    // Hold the queue so the message is still spooled when the daemon dies.
    ok(&["pause", "queue", "sink.example/{default}"]);
    let out = python(SEND, &[&p.smtp_port.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.records().is_empty(), "the paused queue sent mail");

    p.kill9();
    // The pause was not durable: the restarted daemon sends the recovered message at once.
    p.spawn();

    let got = sink.wait_for(1, 30);
    std::thread::sleep(Duration::from_millis(500));
    let got = sink.records().len().max(got.len());
    assert_eq!(
        got,
        1,
        "only the recipient who is not suppressed: {:?}",
        sink.records()
    );
    let m = &sink.records()[0];
    assert_eq!(m["rcpts"], serde_json::json!(["ana@sink.example"]));
    let from = m["mail_from"].as_str().unwrap();
    let token = from
        .strip_prefix("news+")
        .and_then(|r| r.strip_suffix("@bounces.brand.example"))
        .unwrap_or_else(|| panic!("return path is not a VERP address: {from}"));
    assert!(
        token.len() >= 20
            && token
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
        "{from}"
    );
    let data = m["data"].as_str().unwrap();
    assert!(
        data.contains("https://click.example.com/t/c/")
            && data.contains("https://click.example.com/t/o/"),
        "the copy is not tracked:\n{data}"
    );
    assert!(
        !data.contains("href=\"https://shop.example/spring\""),
        "{data}"
    );

    // The suppressed recipient was refused by petrel's own policy, not sent.
    wait_for_acct(p.dir.path(), 20, |r| {
        r.get("rcpt").map(String::as_str) == Some("gone@sink.example")
            && r.get("dsnDiag").is_some_and(|d| d.contains("suppressed"))
            && r.get("bounceCat").map(String::as_str) == Some("policy-related")
    });
}
