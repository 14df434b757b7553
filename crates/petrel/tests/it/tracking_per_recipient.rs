//! Engagement tracking is per recipient: an HTML message for two recipients leaves in two
//! transactions, each copy with links naming its own recipient; a plain-text message for two
//! recipients still leaves in one transaction; mail from a virtual MTA without Signals is not
//! rewritten at all; the events say which messages were tracked.

use crate::common;

use base64::Engine as _;
use common::{free_port, python, text, wait_for_events, Petrel, Sink};
use serde_json::Value;

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

const CONFIG: &str = r#"
<source 0/0>
  always-allow-relaying yes
  process-x-virtual-mta yes
</source>
<virtual-mta quiet>
  enable-signals false
</virtual-mta>
<domain sink.example>
  smtp-hosts [127.0.0.1]:{SINK}
  use-starttls no
</domain>
<signals>
  api-key {KEY}
  upload-url http://127.0.0.1:{SIGPORT}/api/v1/ingest/events
  event-dir {DIR}/events
  upload-interval 200ms
  engagement-tracking sparkpost
  tracking-domain https://click.example.com/t
  tracking-key 7 per-recipient-test-secret-0123
</signals>
<signals-service>
  listener 127.0.0.1:{SIGPORT}
  database {DIR}/signals.db
</signals-service>
"#;

const SEND: &str = r#"
import smtplib, sys
port, kind, vmta = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rcpts = ["ana@sink.example", "bo@sink.example"]
if kind == "html":
    body = ("Content-Type: text/html; charset=utf-8\r\n\r\n"
            "<html><body><a href=\"https://shop.example/spring\">Shop</a></body></html>\r\n")
else:
    body = "Content-Type: text/plain\r\n\r\nSee https://shop.example/spring\r\n"
msg = ("From: news@brand.example\r\nTo: list@brand.example\r\nSubject: " + kind + "\r\n"
       + ("X-Virtual-MTA: " + vmta + "\r\n" if vmta != "-" else "")
       + "MIME-Version: 1.0\r\n" + body)
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.sendmail("news@brand.example", rcpts, msg)
"#;

fn send(p: &Petrel, kind: &str, vmta: &str) {
    let out = python(SEND, &[&p.smtp_port.to_string(), kind, vmta]);
    assert!(out.status.success(), "{}", text(&out));
}

/// The tokens of every tracking URL in `data` (click and open), decoded.
fn tokens(data: &str) -> Vec<Vec<u8>> {
    data.match_indices("https://click.example.com/t/")
        .map(|(i, m)| {
            let rest = &data[i + m.len() + 2..]; // skip "o/" or "c/"
            let tok: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(tok)
                .unwrap()
        })
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn html_goes_one_recipient_per_transaction_and_text_is_untouched() {
    let sink = Sink::start("127.0.0.1");
    let sig = free_port();
    let p = Petrel::start(
        &CONFIG
            .replace("{SINK}", &sink.port.to_string())
            .replace("{SIGPORT}", &sig.to_string())
            .replace("{KEY}", KEY),
    );

    // HTML for two recipients: two transactions, each copy tracked for its recipient.
    send(&p, "html", "-");
    let got = sink.wait_for(2, 30);
    for r in &got {
        let rcpts: Vec<&str> = r["rcpts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(rcpts.len(), 1, "one recipient per tracked copy: {r}");
        let data = r["data"].as_str().unwrap();
        let toks = tokens(data);
        assert_eq!(toks.len(), 3, "two pixels and one link: {data}");
        for t in &toks {
            assert_eq!(t[1], 7, "signed with the configured key id");
            assert!(contains(t, rcpts[0]), "token names {}", rcpts[0]);
        }
        assert!(!data.contains("href=\"https://shop.example/spring\""));
    }

    // Plain text for two recipients: one transaction, byte-identical body.
    send(&p, "text", "-");
    let got = sink.wait_for(3, 30);
    let t = &got[2];
    assert_eq!(t["rcpts"].as_array().unwrap().len(), 2, "{t}");
    assert!(t["data"]
        .as_str()
        .unwrap()
        .contains("See https://shop.example/spring"));

    // A vmta without Signals: no tracking, one transaction.
    send(&p, "html", "quiet");
    let got = sink.wait_for(4, 30);
    let q = &got[3];
    assert_eq!(q["rcpts"].as_array().unwrap().len(), 2, "{q}");
    assert!(q["data"]
        .as_str()
        .unwrap()
        .contains("<a href=\"https://shop.example/spring\">"));

    // The events: the HTML message's deliveries say tracking was on (the text message's
    // too: tracking was on for it, there was just nothing to rewrite).
    let events = wait_for_events(sig, KEY, "events=delivery", 30, |e| e.len() >= 4);
    assert_eq!(
        events.len(),
        4,
        "the quiet vmta produces no events: {events:#?}"
    );
    assert!(events
        .iter()
        .all(|e: &Value| e["open_tracking"] == true && e["click_tracking"] == true));
}
