//! Engagement tracking end to end, with a real browser: an HTML message injected over SMTP
//! is delivered to a sink with open pixels and wrapped links (DKIM-signed after the
//! rewrite); headless Chromium opens the delivered HTML, loads the pixels from petrel's
//! tracking host, clicks a tracked link and lands on the original page (served on
//! loopback); the initial_open, open and click events then show up in petrel's events
//! search with the campaign, IP pool and subaccount of the delivery.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::browser::Browser;
use common::pages::page_server;
use common::{free_port, http, http_with, wait_for_events, Petrel, Sink};
use serde_json::Value;

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

const CONFIG: &str = r#"
<source 0/0>
  always-allow-relaying yes
  process-x-job yes
  default-virtual-mta pool1
</source>
<virtual-mta mta1>
  smtp-source-host 127.0.0.2 mta1.petrel.test
</virtual-mta>
<virtual-mta-pool pool1>
  virtual-mta mta1
  enable-signals true,subaccount=7
</virtual-mta-pool>
domain-key mypmta, pmta.signalsdemo.trymsys.net, {DKIM}
<domain sink.example>
  smtp-hosts [127.0.0.1]:{SINK}
  use-starttls no
  dkim-sign yes
</domain>
<signals>
  api-key {KEY}
  upload-url http://127.0.0.1:{SIGPORT}/api/v1/ingest/events
  event-dir {DIR}/events
  upload-interval 200ms
  engagement-tracking sparkpost
  tracking-listener 127.0.0.1:{TRACK}
</signals>
<signals-service>
  listener 127.0.0.1:{SIGPORT}
  database {DIR}/signals.db
</signals-service>
"#;

/// Sends a multipart/alternative message whose HTML part is quoted-printable, with a tracked
/// link (entity in the URL, link name), an opted-out link, a mailto and a link whose text says
/// unsubscribe (not marked `data-msys-unsubscribe`, so an ordinary tracked link).
const SEND: &str = r#"
import smtplib, sys
from email.message import EmailMessage
port, page = int(sys.argv[1]), sys.argv[2]
html = f"""<html><head><title>Spring</title></head>
<BODY style="margin:0">
<p>Hello! {"A long line that quoted-printable has to fold. " * 6}</p>
<A id="shop" HREF='http://127.0.0.1:{page}/landing?x=1&amp;y=2' data-msys-linkname="hero">Shop now</A>
<a id="plain" href="http://127.0.0.1:{page}/untracked" data-msys-clicktrack="0">Not tracked</a>
<a href="mailto:help@example.com">Mail us</a>
<a href="https://example.com/unsubscribe?u=1">Unsubscribe</a>
</BODY></html>
"""
m = EmailMessage()
m["From"] = "News <news@pmta.signalsdemo.trymsys.net>"
m["To"] = "reader@sink.example"
m["Subject"] = "Spring"
m["X-Job"] = "spring"
m.set_content(f"Text version: http://127.0.0.1:{page}/landing\n")
m.add_alternative(html, subtype="html", cte="quoted-printable")
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.send_message(m, "news@pmta.signalsdemo.trymsys.net", ["reader@sink.example"])
"#;

/// Reads the delivered message: verifies its DKIM signature with dkimpy and prints the
/// decoded text and HTML parts as JSON.
const INSPECT: &str = r#"
import dkim, email, json, sys
from email import policy
msg = sys.stdin.buffer.read()
txt = sys.argv[1].encode()
ok = dkim.verify(msg, dnsfunc=lambda name, timeout=5: txt)
m = email.message_from_bytes(msg, policy=policy.default)
plain = m.get_body(("plain",)).get_content()
html = m.get_body(("html",)).get_content()
print(json.dumps({"dkim": ok, "plain": plain, "html": html,
                  "longest_line": max(len(l) for l in msg.split(b"\r\n"))}))
"#;

fn run_python(script: &str, args: &[&str], stdin: &[u8]) -> String {
    use std::process::{Command, Stdio};
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn one<'a>(events: &'a [Value], t: &str) -> &'a Value {
    let all: Vec<&Value> = events.iter().filter(|e| e["type"] == t).collect();
    assert_eq!(all.len(), 1, "exactly one {t}: {events:#?}");
    all[0]
}

#[test]
fn a_browser_opens_and_clicks_and_the_events_carry_the_campaign() {
    let sink = Sink::start("127.0.0.1");
    let html = Arc::new(Mutex::new(String::new()));
    let (page, seen) = page_server(html.clone());
    let (sig, track) = (free_port(), free_port());
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let p = Petrel::start(
        &CONFIG
            .replace("{SINK}", &sink.port.to_string())
            .replace("{SIGPORT}", &sig.to_string())
            .replace("{TRACK}", &track.to_string())
            .replace("{KEY}", KEY)
            .replace(
                "{DKIM}",
                &fixtures.join("dkim-mypmta.pem").display().to_string(),
            ),
    );
    // No tracking-key in the configuration: petrel made one, readable only by itself.
    let key_file = p.dir.path().join("tracking.key");
    assert!(key_file.exists(), "{}", p.log());

    run_python(SEND, &[&p.smtp_port.to_string(), &page.to_string()], b"");
    let got = sink.wait_for(1, 30);
    let data = got[0]["data"].as_str().unwrap();

    // What the recipient got: signed after the rewrite, legal line lengths, text untouched.
    let record = std::fs::read_to_string(fixtures.join("dkim-mypmta.dns.txt")).unwrap();
    let dns_txt = record.split_once("TXT").unwrap().1.trim().trim_matches('"');
    let seen_msg: Value =
        serde_json::from_str(&run_python(INSPECT, &[dns_txt], data.as_bytes())).unwrap();
    assert_eq!(seen_msg["dkim"], true, "DKIM must cover the rewritten body");
    assert!(seen_msg["longest_line"].as_u64().unwrap() <= 998);
    assert_eq!(
        seen_msg["plain"].as_str().unwrap().trim_end(),
        format!("Text version: http://127.0.0.1:{page}/landing")
    );
    let delivered = seen_msg["html"].as_str().unwrap().to_string();
    let base = format!("http://127.0.0.1:{track}");
    assert_eq!(
        delivered.matches(&format!("{base}/o/")).count(),
        2,
        "{delivered}"
    );
    // Every http(s) link but the opted-out one, whatever its text ("Each HTML link is also
    // changed").
    assert_eq!(
        delivered.matches(&format!("{base}/c/")).count(),
        2,
        "{delivered}"
    );
    assert!(!delivered.contains("landing?x=1"), "tracked URL is hidden");
    assert!(delivered.contains(&format!("href=\"http://127.0.0.1:{page}/untracked\"")));
    assert!(!delivered.contains("data-msys-"), "{delivered}");
    assert!(delivered.contains("href=\"mailto:help@example.com\""));
    assert!(!delivered.contains("https://example.com/unsubscribe?u=1"));

    // A tampered link is refused without a redirect.
    let token_start = delivered.find(&format!("{base}/c/")).unwrap() + base.len();
    let path: String = delivered[token_start..]
        .chars()
        .take_while(|c| *c != '"' && *c != '\'')
        .collect();
    let mut tampered = path.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (status, _) = http(track, "GET", &tampered);
    assert_eq!(status, 404);

    // The browser: load the message (pixels), click the tracked link, land on the page.
    *html.lock().unwrap() = delivered.clone();
    let browser = Browser::start();
    let ua = browser.user_agent();
    browser.goto(&format!("http://127.0.0.1:{page}/message.html"));
    browser.click("#shop");
    let landed = browser.current_url();
    assert_eq!(landed, format!("http://127.0.0.1:{page}/landing?x=1&y=2"));
    assert!(seen.lock().unwrap().iter().any(|p| p == "/landing?x=1&y=2"));

    // The events, enriched from the delivery, in petrel's own events search.
    let events = wait_for_events(
        sig,
        KEY,
        "events=delivery,initial_open,open,click",
        30,
        |e| {
            ["delivery", "initial_open", "open", "click"]
                .iter()
                .all(|t| e.iter().any(|x| x["type"] == *t))
        },
    );
    let delivery = one(&events, "delivery");
    assert_eq!(delivery["open_tracking"], true);
    assert_eq!(delivery["click_tracking"], true);
    for t in ["initial_open", "open", "click"] {
        let e = one(&events, t);
        assert_eq!(e["message_id"], delivery["message_id"], "{t}");
        assert_eq!(e["rcpt_to"], "reader@sink.example", "{t}");
        assert_eq!(e["campaign_id"], "spring", "{t}");
        assert_eq!(e["ip_pool"], "pool1", "{t}");
        assert_eq!(e["subaccount_id"], "7", "{t}");
        assert_eq!(e["sending_ip"], "127.0.0.2", "{t}");
        assert_eq!(e["ip_address"], "127.0.0.1", "{t}");
        assert_eq!(e["user_agent"], ua.as_str(), "{t}");
        assert!(e.get("machine").is_none(), "a browser is a person: {e}");
    }
    let click = one(&events, "click");
    assert_eq!(
        click["target_link_url"],
        format!("http://127.0.0.1:{page}/landing?x=1&y=2")
    );
    assert_eq!(click["target_link_name"], "hero");

    // A link checker's HEAD gets the redirect but records nothing.
    let (status, _) = http_with(track, "HEAD", &path, "");
    assert_eq!(status, 302);
    std::thread::sleep(std::time::Duration::from_millis(800));
    let clicks = wait_for_events(sig, KEY, "events=click", 5, |e| !e.is_empty());
    assert_eq!(clicks.len(), 1, "HEAD is not a click: {clicks:#?}");
}
