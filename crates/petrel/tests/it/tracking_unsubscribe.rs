//! An unsubscribe link end to end, with a real browser: a message whose HTML has a link
//! marked `data-msys-unsubscribe="1"` is delivered with that link wrapped like every other;
//! headless Chromium opens the message and clicks it; the reader lands on the sender's
//! unsubscribe page, petrel's Signals service has the `click` and the `link_unsubscribe`
//! event, the recipient is on the suppression list of the message's subaccount (7), and the
//! next message to them is not sent (a `policy_rejection`).

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::browser::Browser;
use common::pages::page_server;
use common::{
    free_port, python, relay_to_sink, signals_to_self, text, wait_for_events, Petrel, Sink,
};
use serde_json::Value;

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";
const READER: &str = "reader@sink.example";

/// Sends an HTML newsletter with a shop link and a marked unsubscribe link, as job `job`.
const SEND: &str = r#"
import smtplib, sys
from email.message import EmailMessage
port, page, job = int(sys.argv[1]), sys.argv[2], sys.argv[3]
html = f"""<html><body>
<p>Spring is here.</p>
<a id="shop" href="http://127.0.0.1:{page}/shop">Shop now</a>
<p><a id="unsub" data-msys-unsubscribe="1" href="http://127.0.0.1:{page}/unsubscribe?u=77">Unsubscribe</a></p>
</body></html>
"""
m = EmailMessage()
m["From"] = "News <news@brand.example>"
m["To"] = "reader@sink.example"
m["Subject"] = "Spring"
m["X-Job"] = job
m.set_content("Text version.\n")
m.add_alternative(html, subtype="html")
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.send_message(m, "news@brand.example", ["reader@sink.example"])
"#;

fn send(p: &Petrel, page: u16, job: &str) {
    let out = python(SEND, &[&p.smtp_port.to_string(), &page.to_string(), job]);
    assert!(out.status.success(), "{}", text(&out));
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

#[test]
fn clicking_an_unsubscribe_link_suppresses_the_reader_for_that_subaccount() {
    let sink = Sink::start("127.0.0.1");
    let html = Arc::new(Mutex::new(String::new()));
    let (page, seen) = page_server(html.clone());
    let (sig, track) = (free_port(), free_port());
    // Mail for sink.example goes to the sink; events to petrel's own Signals service; the
    // messages belong to subaccount 7.
    let tracking =
        format!("  engagement-tracking sparkpost\n  tracking-listener 127.0.0.1:{track}\n");
    let p = Petrel::start(&format!(
        "{}{}enable-signals true,subaccount=7\n",
        relay_to_sink(sink.port),
        signals_to_self(sig, KEY, &tracking)
    ));

    send(&p, page, "spring");
    let got = sink.wait_for(1, 30);
    let data = got[0]["data"].as_str().unwrap();
    // The delivered HTML, quoted-printable decoded.
    let decoded = python(
        "import email, sys\nfrom email import policy\nm = email.message_from_bytes(sys.argv[1].encode(), policy=policy.default)\nprint(m.get_body(('html',)).get_content())",
        &[data],
    );
    assert!(decoded.status.success(), "{}", text(&decoded));
    let delivered = String::from_utf8(decoded.stdout).unwrap();
    // Both links are wrapped; the authoring attribute is gone.
    let base = format!("http://127.0.0.1:{track}/c/");
    assert_eq!(delivered.matches(&base).count(), 2, "{delivered}");
    assert!(!delivered.contains("/unsubscribe?u=77"), "{delivered}");
    assert!(!delivered.contains("data-msys-"), "{delivered}");

    // The reader opens the message and clicks "Unsubscribe".
    *html.lock().unwrap() = delivered;
    let browser = Browser::start();
    let ua = browser.user_agent();
    browser.goto(&format!("http://127.0.0.1:{page}/message.html"));
    browser.click("#unsub");
    assert_eq!(
        browser.current_url(),
        format!("http://127.0.0.1:{page}/unsubscribe?u=77")
    );
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|p| p == "/unsubscribe?u=77"));
    browser.screenshot(
        &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tracking_unsubscribe.png"),
    );

    // The click and the link_unsubscribe event, in petrel's own Signals service.
    let events = wait_for_events(
        sig,
        KEY,
        "events=delivery,click,link_unsubscribe",
        30,
        |e| {
            ["delivery", "click", "link_unsubscribe"]
                .iter()
                .all(|t| e.iter().any(|x| x["type"] == *t))
        },
    );
    let delivery = of_type(&events, "delivery")[0];
    let clicks = of_type(&events, "click");
    let unsubs = of_type(&events, "link_unsubscribe");
    assert_eq!((clicks.len(), unsubs.len()), (1, 1), "{events:#?}");
    let target = format!("http://127.0.0.1:{page}/unsubscribe?u=77");
    for e in [clicks[0], unsubs[0]] {
        assert_eq!(e["message_id"], delivery["message_id"], "{e}");
        assert_eq!(e["rcpt_to"], READER, "{e}");
        assert_eq!(e["target_link_url"], target.as_str(), "{e}");
        assert_eq!(e["user_agent"], ua.as_str(), "{e}");
        assert_eq!(e["subaccount_id"], "7", "{e}");
        assert_eq!(e["campaign_id"], "spring", "{e}");
    }

    // On the suppression list of subaccount 7, and only there.
    let out = p.cli(&["suppression", "list", "--subaccount", "7", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["results"][0]["address"], READER);
    assert_eq!(list["results"][0]["reason"], "link_unsubscribe");
    let out = p.cli(&["suppression", "list", "--subaccount", "0", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["total"], 0, "{list}");

    // The next message to them is suppressed: a policy rejection, nothing delivered.
    send(&p, page, "summer");
    let events = wait_for_events(
        sig,
        KEY,
        "events=policy_rejection&campaigns=summer",
        30,
        |e| !e.is_empty(),
    );
    assert_eq!(events[0]["rcpt_to"], READER);
    assert_eq!(events[0]["bounce_class"], "25");
    assert!(
        events[0]["raw_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("suppressed (link_unsubscribe)"),
        "{}",
        events[0]
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.records().len(), 1, "the second message was not sent");
}
