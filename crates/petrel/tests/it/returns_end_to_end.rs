//! Out-of-band bounces, feedback loops and suppression, end to end over SMTP: a message is
//! delivered with a signed VERP return path per recipient; a remote MTA (another loopback
//! address, not allowed to relay) returns an RFC 3464 DSN for one recipient and an ARF
//! complaint for the other; petrel records `out_of_band` / `spam_complaint` events carrying
//! the original campaign, `rb` / `f` accounting rows, and suppresses both recipients, so a
//! second message to them is not attempted. Relaying through the bounce listener is denied,
//! and mail that is not a report goes to `postmaster`.

use crate::common;

use std::time::Duration;

use common::{free_port, python, text, wait_for_acct, wait_for_events, Petrel, Sink};
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
</domain>
<acct-file {DIR}/acct.csv>
  records d,b,rb,f
</acct-file>
<signals>
  api-key {KEY}
  upload-url http://127.0.0.1:{SIGPORT}/api/v1/ingest/events
  event-dir {DIR}/events
  upload-interval 200ms
</signals>
<signals-service>
  listener 127.0.0.1:{SIGPORT}
  database {DIR}/signals.db
</signals-service>
"#;

/// Sends from 127.0.0.1 (the sender's application).
const SEND: &str = r#"
import smtplib, sys
port = int(sys.argv[1]); rcpts = sys.argv[2:]
msg = ("From: News <news@brand.example>\r\nTo: list@brand.example\r\nSubject: Spring\r\n"
       "X-Job: spring\r\nMessage-ID: <spring-1@brand.example>\r\n\r\nHello\r\n")
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.sendmail("news@brand.example", rcpts, msg)
"#;

/// A remote MTA on 127.0.0.3: sends one message and prints the replies to RCPT and DATA.
const REMOTE: &str = r#"
import smtplib, sys
port, mail_from, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
msg = sys.stdin.read().replace("\n", "\r\n")
s = smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=("127.0.0.3", 0))
s.ehlo("mx.remote.example")
s.mail(mail_from)
code, text = s.rcpt(rcpt)
print("RCPT", code, text.decode())
if code == 250:
    code, text = s.data(msg)
    print("DATA", code, text.decode())
s.quit()
"#;

fn remote(p: &Petrel, mail_from: &str, rcpt: &str, message: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("python3")
        .args(["-c", REMOTE, &p.smtp_port.to_string(), mail_from, rcpt])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn dsn(to: &str, rcpt: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.sink.example>
To: {to}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"

--b1
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.sink.example

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mailstore.sink.example
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown

--b1
Content-Type: text/rfc822-headers

From: News <news@brand.example>
To: list@brand.example
Subject: Spring
X-Job: spring
Message-ID: <spring-1@brand.example>

--b1--
"
    )
}

fn arf(return_path: &str, rcpt: &str) -> String {
    format!(
        "From: Feedback Loop <fbl@isp.example>
To: fbl@fbl.brand.example
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary=\"b2\"

--b2
Content-Type: text/plain

This is an email abuse report.

--b2
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ISP-FBL/1.0
Version: 1
Original-Rcpt-To: {rcpt}
Source-IP: 127.0.0.1
Reported-Domain: brand.example

--b2
Content-Type: message/rfc822

Return-Path: <{return_path}>
From: News <news@brand.example>
To: list@brand.example
Subject: Spring
X-Job: spring
Message-ID: <spring-1@brand.example>

Hello
--b2--
"
    )
}

fn one<'a>(events: &'a [Value], t: &str, rcpt: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == t && e["rcpt_to"] == rcpt)
        .unwrap_or_else(|| panic!("no {t} for {rcpt}: {events:#?}"))
}

#[test]
fn bounces_and_complaints_are_attributed_and_suppress_the_recipient() {
    let sink = Sink::start("127.0.0.1");
    let sig = free_port();
    let p = Petrel::start(
        &CONFIG
            .replace("{SINK}", &sink.port.to_string())
            .replace("{SIGPORT}", &sig.to_string())
            .replace("{KEY}", KEY),
    );
    let send = |rcpts: &[&str]| {
        let mut args = vec![p.smtp_port.to_string()];
        args.extend(rcpts.iter().map(|r| r.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = python(SEND, &args);
        assert!(out.status.success(), "{}", text(&out));
    };

    // One message, two recipients: two copies, each with its own signed return path.
    send(&["ana@sink.example", "bo@sink.example"]);
    let got = sink.wait_for(2, 30);
    let return_path = |rcpt: &str| -> String {
        let r = got
            .iter()
            .find(|r| r["rcpts"][0] == rcpt)
            .unwrap_or_else(|| panic!("no copy for {rcpt}: {got:?}"));
        assert_eq!(r["rcpts"].as_array().unwrap().len(), 1);
        r["mail_from"].as_str().unwrap().to_string()
    };
    let (ana_rp, bo_rp) = (
        return_path("ana@sink.example"),
        return_path("bo@sink.example"),
    );
    for rp in [&ana_rp, &bo_rp] {
        assert!(
            rp.starts_with("news+") && rp.ends_with("@bounces.brand.example"),
            "{rp}"
        );
    }
    assert_ne!(ana_rp, bo_rp);

    // The bounce listener is no open relay.
    let denied = remote(&p, "spam@remote.example", "someone@elsewhere.example", "x");
    assert!(
        denied.contains("RCPT 550") && denied.contains("5.7.1"),
        "{denied}"
    );

    // A DSN for ana, sent to ana's return path; an ARF report for bo.
    let out = remote(&p, "", &ana_rp, &dsn(&ana_rp, "ana@sink.example"));
    assert!(out.contains("DATA 250"), "{out}");
    let out = remote(
        &p,
        "fbl@isp.example",
        "fbl@fbl.brand.example",
        &arf(&bo_rp, "bo@sink.example"),
    );
    assert!(out.contains("DATA 250"), "{out}");

    // Events, attributed to the right copies and enriched from their deliveries.
    let events = wait_for_events(
        sig,
        KEY,
        "events=delivery,out_of_band,spam_complaint",
        30,
        |e| {
            e.iter().any(|x| x["type"] == "out_of_band")
                && e.iter().any(|x| x["type"] == "spam_complaint")
        },
    );
    let oob = one(&events, "out_of_band", "ana@sink.example");
    let delivered = one(&events, "delivery", "ana@sink.example");
    assert_eq!(oob["message_id"], delivered["message_id"]);
    assert_eq!(oob["campaign_id"], "spring");
    assert_eq!(oob["bounce_class"], "10");
    assert_eq!(oob["error_code"], "550");
    assert_eq!(oob["sending_ip"], delivered["sending_ip"]);
    assert!(oob["raw_reason"].as_str().unwrap().contains("User unknown"));
    let fbl = one(&events, "spam_complaint", "bo@sink.example");
    assert_eq!(
        fbl["message_id"],
        one(&events, "delivery", "bo@sink.example")["message_id"]
    );
    assert_eq!(fbl["fbtype"], "abuse");
    assert_eq!(fbl["report_to"], "fbl@fbl.brand.example");
    assert_eq!(fbl["campaign_id"], "spring");
    assert_eq!(fbl["user_agent"], "ISP-FBL/1.0");

    // Accounting rows.
    let rows = wait_for_acct(p.dir.path(), 10, |r| r["type"] == "rb");
    let rb = rows.iter().find(|r| r["type"] == "rb").unwrap();
    assert_eq!(rb["rcpt"], "ana@sink.example");
    assert_eq!(rb["orig"], ana_rp);
    assert_eq!(rb["bounceCat"], "bad-mailbox");
    assert!(rb["dsnStatus"].starts_with("5.1.1"), "{rb:?}");
    let rows = wait_for_acct(p.dir.path(), 10, |r| r["type"] == "f");
    let f = rows.iter().find(|r| r["type"] == "f").unwrap();
    assert_eq!(f["rcpt"], "bo@sink.example");
    assert_eq!(f["feedbackType"], "abuse");
    assert_eq!(f["header_X-job"], "spring");

    // An in-band hard bounce (550 5.1.1 at RCPT) suppresses too.
    send(&["reject-me@sink.example"]);
    wait_for_acct(p.dir.path(), 30, |r| {
        r["type"] == "b" && r["rcpt"] == "reject-me@sink.example"
    });

    // All three are suppressed now.
    let out = p.cli(&["suppression", "list", "--json"]);
    let listed = text(&out);
    assert!(out.status.success(), "{listed}");
    assert!(
        listed.contains("ana@sink.example") && listed.contains("hard_bounce"),
        "{listed}"
    );
    assert!(
        listed.contains("bo@sink.example") && listed.contains("spam_complaint"),
        "{listed}"
    );
    assert!(listed.contains("reject-me@sink.example"), "{listed}");

    // A second message to them is not attempted: policy rejections, b rows, nothing at the
    // sink; a third recipient still gets it.
    send(&["ana@sink.example", "bo@sink.example", "cy@sink.example"]);
    let got = sink.wait_for(3, 30);
    std::thread::sleep(Duration::from_millis(500));
    let got_now = sink.records();
    assert_eq!(got_now.len(), 3, "only cy is attempted: {got_now:?}");
    assert_eq!(got[2]["rcpts"][0], "cy@sink.example");
    let events = wait_for_events(sig, KEY, "events=policy_rejection", 30, |e| e.len() >= 2);
    for r in ["ana@sink.example", "bo@sink.example"] {
        let e = one(&events, "policy_rejection", r);
        assert_eq!(e["bounce_class"], "25");
    }
    for who in ["ana@sink.example", "bo@sink.example"] {
        wait_for_acct(p.dir.path(), 10, |r| r["type"] == "b" && r["rcpt"] == who);
    }
    let rows = common::acct_rows(p.dir.path());
    let b: Vec<_> = rows
        .iter()
        .filter(|r| r["type"] == "b" && r["rcpt"] != "reject-me@sink.example")
        .collect();
    assert_eq!(b.len(), 2, "{b:?}");
    assert!(b.iter().all(|r| r["bounceCat"] == "policy-related"));

    // Mail for the bounce domain that is not a report goes to postmaster.
    let out = remote(
        &p,
        "human@remote.example",
        "news@bounces.brand.example",
        "From: human@remote.example\nSubject: a question\n\nIs this list still active?\n",
    );
    assert!(out.contains("DATA 250"), "{out}");
    let got = sink.wait_for(4, 30);
    assert_eq!(got[3]["rcpts"][0], "pm@sink.example");
    assert!(got[3]["data"]
        .as_str()
        .unwrap()
        .contains("Is this list still active?"));

    // The processor's counters, as monitoring reads them: one bounce, one complaint, one
    // message that was not a report; three suppressed addresses.
    let (status, body) = p.http_get("/status");
    assert_eq!(status, 200, "{body}");
    let counters = &serde_json::from_str::<Value>(&body).unwrap()["data"]["counters"];
    assert_eq!(counters["returns"]["bounces"], 1, "{counters}");
    assert_eq!(counters["returns"]["complaints"], 1, "{counters}");
    assert_eq!(counters["returns"]["unmatched"], 1, "{counters}");
    assert_eq!(counters["suppression"]["entries"], 3, "{counters}");
}
