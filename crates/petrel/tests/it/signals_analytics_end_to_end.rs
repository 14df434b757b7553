//! Signals analytics end to end: an HTML message injected over SMTP to eight recipients is
//! delivered to a loopback sink that accepts five, rejects one as unknown (hard), one as
//! blocklisted (block) and defers one; one accepted recipient's mailbox later returns a DSN
//! (to petrel's bounce processor), another complains (ARF to the FBL processor), two open
//! the message and one clicks (HTTP to petrel's tracking host). The Metrics API and the
//! Signals API of petrel's own service must then report what the test sent and the sink
//! saw.

use crate::common;

use std::time::{Duration, Instant};

use common::{free_port, signals_get, text, Petrel, Sink};
use serde_json::Value;

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

const CONFIG: &str = r#"
postmaster pm@sink.example
<rewrite-list mfrom>
  mail-from *@brand.example *@bounces.brand.example
</rewrite-list>
<source 127.0.0.1>
  always-allow-relaying yes
  process-x-job yes
  rewrite-list mfrom
</source>
<source 127.0.0.3>
  always-allow-relaying no
</source>
<bounce-processor>
  <address-list>
    domain bounces.brand.example
  </address-list>
</bounce-processor>
<feedback-loop-processor>
  <address-list>
    domain fbl.brand.example
  </address-list>
</feedback-loop-processor>
<domain sink.example>
  smtp-hosts [127.0.0.1]:{SINK}
  use-starttls no
  retry-after 1h
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

const ACCEPTED: [&str; 5] = ["ana", "bo", "cy", "dee", "eve"];
const OTHERS: [&str; 3] = ["reject-1", "block-1", "tempfail-99"];

const SEND: &str = r#"
import smtplib, sys
from email.message import EmailMessage
port = int(sys.argv[1]); rcpts = sys.argv[2:]
m = EmailMessage()
m["From"] = "News <news@brand.example>"
m["To"] = "list@brand.example"
m["Subject"] = "Spring"
m["X-Job"] = "spring"
m.set_content("Text version\n")
m.add_alternative('<html><body><p>Hi</p><a href="https://shop.example/x" data-msys-linkname="hero">Shop</a></body></html>', subtype="html")
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.send_message(m, "news@brand.example", rcpts)
"#;

/// Prints the tracking URLs (pixels, then links) of a delivered message.
const URLS: &str = r#"
import email, re, sys
from email import policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
html = m.get_body(("html",)).get_content()
for u in re.findall(r'(?:src|href)="(http://127\.0\.0\.1:\d+/[oc]/[^"]+)"', html):
    print(u)
"#;

const REMOTE: &str = r#"
import smtplib, sys
port, mail_from, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
msg = sys.stdin.read().replace("\n", "\r\n")
s = smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=("127.0.0.3", 0))
s.ehlo("mx.remote.example")
s.sendmail(mail_from, [rcpt], msg)
s.quit()
"#;

fn py(script: &str, args: &[&str], stdin: &[u8]) -> String {
    use std::io::Write;
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
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn dsn(to: &str, rcpt: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.sink.example\nTo: {to}\nSubject: Undelivered\nMIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n\n--b1\n\
Content-Type: text/plain\n\nNot delivered.\n\n--b1\nContent-Type: message/delivery-status\n\n\
Reporting-MTA: dns; mx.sink.example\n\nFinal-Recipient: rfc822; {rcpt}\nAction: failed\nStatus: 5.1.1\n\
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: User unknown\n\n--b1--\n"
    )
}

fn arf(return_path: &str, rcpt: &str) -> String {
    format!(
        "From: fbl@isp.example\nTo: fbl@fbl.brand.example\nSubject: Abuse report\nMIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"b2\"\n\n--b2\n\
Content-Type: text/plain\n\nAbuse report.\n\n--b2\nContent-Type: message/feedback-report\n\n\
Feedback-Type: abuse\nUser-Agent: ISP-FBL/1.0\nVersion: 1\nOriginal-Rcpt-To: {rcpt}\n\n--b2\n\
Content-Type: message/rfc822\n\nReturn-Path: <{return_path}>\nFrom: news@brand.example\nSubject: Spring\n\nHi\n--b2--\n"
    )
}

/// Polls a Metrics query until `done` holds for its first row.
fn wait_metrics(port: u16, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (status, v) = signals_get(port, KEY, path);
        assert_eq!(status, 200, "{path}: {v}");
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never matched: {v}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn metrics_and_signals_report_what_was_sent_and_seen() {
    let sink = Sink::start("127.0.0.1");
    let (sig, track) = (free_port(), free_port());
    let p = Petrel::start(
        &CONFIG
            .replace("{SINK}", &sink.port.to_string())
            .replace("{SIGPORT}", &sig.to_string())
            .replace("{TRACK}", &track.to_string())
            .replace("{KEY}", KEY),
    );
    let rcpts: Vec<String> = ACCEPTED
        .iter()
        .chain(OTHERS.iter())
        .map(|l| format!("{l}@sink.example"))
        .collect();
    let mut args = vec![p.smtp_port.to_string()];
    args.extend(rcpts.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    py(SEND, &args, b"");

    // What the sink saw: one copy per accepted recipient, each with its own return path.
    let got = sink.wait_for(ACCEPTED.len(), 30);
    let copy = |who: &str| -> &Value {
        got.iter()
            .find(|r| r["rcpts"][0] == format!("{who}@sink.example"))
            .unwrap_or_else(|| panic!("no copy for {who}"))
    };
    let delivered = got.len() as i64;
    assert_eq!(delivered, 5);

    // Later: a DSN for ana, a complaint for bo, opens by cy and dee, a click by cy.
    let rp = |who: &str| copy(who)["mail_from"].as_str().unwrap().to_string();
    py(
        REMOTE,
        &[&p.smtp_port.to_string(), "", &rp("ana")],
        dsn(&rp("ana"), "ana@sink.example").as_bytes(),
    );
    py(
        REMOTE,
        &[
            &p.smtp_port.to_string(),
            "fbl@isp.example",
            "fbl@fbl.brand.example",
        ],
        arf(&rp("bo"), "bo@sink.example").as_bytes(),
    );
    let mut pixels = 0;
    let mut clicks = 0;
    for who in ["cy", "dee"] {
        let urls = py(URLS, &[], copy(who)["data"].as_str().unwrap().as_bytes());
        for u in urls.lines() {
            let path = &u[u.find("/o/").or_else(|| u.find("/c/")).unwrap()..];
            let is_click = path.starts_with("/c/");
            if is_click && who != "cy" {
                continue;
            }
            let status = get_status(track, path);
            assert!(status == 200 || status == 302, "{u}: {status}");
            if is_click {
                clicks += 1;
            } else {
                pixels += 1;
            }
        }
    }
    assert_eq!((pixels, clicks), (4, 1), "two pixels per message, one link");

    // The Metrics API, against those counts.
    let from = {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - 3600;
        let (d, s) = (t.div_euclid(86_400), t.rem_euclid(86_400));
        let (y, m, dd) = civil(d);
        format!("{y:04}-{m:02}-{dd:02}T{:02}:{:02}", s / 3600, s % 3600 / 60)
    };
    let metrics = "count_injected,count_targeted,count_sent,count_delivered,count_accepted,\
count_bounce,count_hard_bounce,count_block_bounce,count_inband_bounce,count_outofband_bounce,\
count_delayed,count_spam_complaint,count_rendered,count_initial_rendered,count_unique_confirmed_opened,\
count_clicked,count_unique_clicked";
    let path = format!("/api/v1/metrics/deliverability?from={from}&precision=hour&metrics={metrics}&campaigns=spring");
    let v = wait_metrics(sig, &path, |v| {
        let r = &v["results"][0];
        r["count_spam_complaint"] == 1
            && r["count_outofband_bounce"] == 1
            && r["count_clicked"] == 1
            && r["count_rendered"] == 2
    });
    let r = &v["results"][0];
    let expect = [
        ("count_injected", rcpts.len() as i64),
        ("count_targeted", rcpts.len() as i64),
        ("count_delivered", delivered),
        ("count_sent", delivered + 2),
        ("count_accepted", delivered - 1),
        ("count_inband_bounce", 2),
        ("count_outofband_bounce", 1),
        ("count_bounce", 3),
        ("count_hard_bounce", 2),
        ("count_block_bounce", 1),
        ("count_delayed", 1),
        ("count_spam_complaint", 1),
        ("count_rendered", 2),
        ("count_initial_rendered", 2),
        ("count_unique_confirmed_opened", 2),
        ("count_clicked", 1),
        ("count_unique_clicked", 1),
    ];
    for (name, n) in expect {
        assert_eq!(r[name], n, "{name}: {r}");
    }
    let (_, v) = signals_get(
        sig,
        KEY,
        &format!(
            "/api/v1/metrics/deliverability/bounce-classification?from={from}&metrics=count_bounce"
        ),
    );
    let classes: Vec<i64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["classification_id"].as_i64().unwrap())
        .collect();
    assert!(classes.contains(&10) && classes.contains(&51), "{v}");
    let (_, v) = signals_get(
        sig,
        KEY,
        &format!("/api/v1/metrics/deliverability/delay-reason?from={from}"),
    );
    assert!(
        v["results"][0]["reason"].as_str().unwrap().contains("451"),
        "{v}"
    );
    let (_, v) = signals_get(
        sig,
        KEY,
        &format!("/api/v1/metrics/deliverability/link-name?from={from}&metrics=count_clicked"),
    );
    assert_eq!(v["results"][0]["link_name"], "hero", "{v}");

    // The Signals API: today's partial row for all subaccounts.
    let (status, v) = signals_get(sig, KEY, "/api/v1/signals/health-score");
    assert_eq!(status, 200, "{v}");
    let all = v["results"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sid"] == -1)
        .cloned()
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        all["current_total_injection_count"],
        rcpts.len() as i64,
        "{all}"
    );
    assert_eq!(all["current_partial"], true);
    let weights = all["current_weights"].as_array().unwrap();
    let w = |t: &str| {
        weights.iter().find(|x| x["weight_type"] == t).unwrap()["weight_value"]
            .as_f64()
            .unwrap()
    };
    assert!((w("Hard Bounces") - 2.0 / 8.0).abs() < 1e-9, "{all}");
    assert!((w("Complaints") - 1.0 / 8.0).abs() < 1e-9, "{all}");
    let (_, v) = signals_get(sig, KEY, "/api/v1/signals/eng-cohort");
    let all = v["results"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sid"] == -1)
        .cloned()
        .unwrap();
    assert_eq!(all["current_c_total_eng"], 2, "{all}");
    assert_eq!(
        all["current_c_new_eng"], 2,
        "first-time recipients are new: {all}"
    );
}

/// GET on loopback, returning only the status (pixel answers are binary GIFs).
fn get_status(port: u16, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0 (test)\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw[9..12]).parse().unwrap()
}

/// Days since 1970-01-01 → (year, month, day), for the `from` parameter.
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
