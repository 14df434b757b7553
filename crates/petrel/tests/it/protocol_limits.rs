//! RFC 5321 behaviour on the wire: pipelining, SIZE and max-message-size, recipient limits,
//! bad command sequences, over-long lines, and the end-of-data rule.

use crate::common;

use std::time::Duration;

use common::{python, text, Petrel};

const CONFIG: &str = r#"
<source 0/0>
  always-allow-relaying yes
  max-message-size 10k
  max-rcpt-per-message 3
</source>
"#;

fn settle() -> Duration {
    Duration::from_millis(1500)
}

#[test]
fn a_pipelined_transaction_gets_every_reply_in_order() {
    let p = Petrel::start(CONFIG);
    let out = p.raw(
        b"EHLO c.test\r\nMAIL FROM:<a@b.example> SIZE=100\r\nRCPT TO:<x@one.example>\r\nRCPT TO:<y@two.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;y@two.example\r\nDATA\r\nSubject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n",
        settle(),
    );
    let codes: Vec<&str> = out
        .lines()
        .filter(|l| l.len() >= 4 && &l[3..4] == " ")
        .map(|l| &l[..3])
        .collect();
    assert_eq!(
        codes,
        ["220", "250", "250", "250", "250", "354", "250", "221"],
        "{out}"
    );
    assert!(
        out.contains("250-PIPELINING") && out.contains("250-SIZE 10240"),
        "{out}"
    );
    assert!(
        out.contains("250-8BITMIME") && out.contains("250-ENHANCEDSTATUSCODES"),
        "{out}"
    );
    assert!(out.contains("250-SMTPUTF8") && out.contains("DSN"), "{out}");
    let list = p.list();
    assert_eq!(
        list["data"]["messages"].as_array().unwrap().len(),
        1,
        "{list}"
    );
}

#[test]
fn size_limits_are_enforced_at_mail_and_after_data() {
    let p = Petrel::start(CONFIG);
    let out = p.raw(
        b"EHLO c\r\nMAIL FROM:<a@b.example> SIZE=20000\r\nQUIT\r\n",
        settle(),
    );
    assert!(out.contains("552 5.3.4"), "{out}");
    let big = "x".repeat(70);
    let mut data = String::from("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@one.example>\r\nDATA\r\nSubject: big\r\n\r\n");
    for _ in 0..200 {
        data.push_str(&big);
        data.push_str("\r\n");
    }
    data.push_str(".\r\nNOOP\r\nQUIT\r\n");
    let out = p.raw(data.as_bytes(), settle());
    assert!(
        out.contains("552 5.3.4 message size exceeds fixed maximum of 10240 bytes"),
        "{out}"
    );
    // The session goes on after the refusal.
    assert!(out.contains("250 2.0.0 ok") && out.contains("221"), "{out}");
    assert_eq!(p.list()["data"]["messages"].as_array().unwrap().len(), 0);
}

#[test]
fn recipient_limit_answers_452() {
    let p = Petrel::start(CONFIG);
    let out = p.raw(
        b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<1@x.example>\r\nRCPT TO:<2@x.example>\r\nRCPT TO:<3@x.example>\r\nRCPT TO:<4@x.example>\r\nQUIT\r\n",
        settle(),
    );
    assert!(out.contains("452 4.5.3 too many recipients"), "{out}");
}

#[test]
fn bad_sequences_and_syntax_get_proper_codes() {
    let p = Petrel::start(CONFIG);
    let out = p.raw(
        b"MAIL FROM:<a@b.example>\r\nEHLO c\r\nRCPT TO:<x@y.example>\r\nDATA\r\nMAIL FROM:<a@b.example\r\nMAIL FROM:<a@b.example> FOO=1\r\nXYZZY\r\nMAIL FROM:<a@b.example>\r\nMAIL FROM:<a@b.example>\r\nDATA\r\nBDAT 10 LAST\r\nQUIT\r\n",
        settle(),
    );
    let lines: Vec<&str> = out.lines().collect();
    let find = |p: &str| lines.iter().position(|l| l.starts_with(p));
    assert!(lines[1].starts_with("503 5.5.1"), "MAIL before EHLO: {out}");
    assert!(out.contains("503 5.5.1 need MAIL before RCPT"), "{out}");
    assert!(out.contains("503 5.5.1 need MAIL before DATA"), "{out}");
    assert!(out.contains("501 5.1.3"), "unterminated path: {out}");
    assert!(out.contains("555 5.5.4 unsupported parameter FOO"), "{out}");
    assert!(out.contains("500 5.5.1 command unrecognized"), "{out}");
    assert!(out.contains("503 5.5.1 nested MAIL command"), "{out}");
    assert!(out.contains("554 5.5.1 no valid recipients"), "{out}");
    assert!(find("502 5.5.1").is_some(), "BDAT without CHUNKING: {out}");
    assert!(out.trim_end().ends_with("closing connection"), "{out}");
}

#[test]
fn over_long_command_lines_are_refused_and_the_session_survives() {
    let p = Petrel::start(CONFIG);
    let mut input = format!("EHLO {}\r\n", "a".repeat(3000)).into_bytes();
    input.extend_from_slice(b"NOOP\r\nQUIT\r\n");
    let out = p.raw(&input, settle());
    assert!(out.contains("500 5.5.2 line too long"), "{out}");
    assert!(out.contains("250 2.0.0 ok"), "{out}");
}

#[test]
fn bare_lf_dot_does_not_end_the_message() {
    let p = Petrel::start(CONFIG);
    let out = p.raw(
        b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@one.example>\r\nDATA\r\nSubject: smuggle\r\n\r\nline\n.\nMAIL FROM:<evil@x.example>\r\nstill body\r\n..dot-stuffed\r\n.\r\nQUIT\r\n",
        settle(),
    );
    assert_eq!(out.matches("250 2.6.0").count(), 1, "{out}");
    let list = p.list();
    let id = list["data"]["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, body) = p.http_get(&format!("/messageBody?id={id}"));
    assert!(
        body.contains("line\n.\nMAIL FROM:<evil@x.example>\r\nstill body\r\n.dot-stuffed\r\n"),
        "{body}"
    );
}

#[test]
fn smtplib_sends_utf8_and_8bit_mail() {
    let p = Petrel::start(CONFIG);
    let script = r#"
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "józef@b.example"
m["To"] = "zoë@one.example"
m["Subject"] = "Grüße"
m.set_content("Ça va? ✓")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20) as s:
    s.send_message(m, mail_options=["SMTPUTF8"])
print("sent")
"#;
    let out = python(script, &[&p.smtp_port.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let list = p.list();
    let m = &list["data"]["messages"][0];
    assert_eq!(m["orig"], "józef@b.example", "{list}");
    assert_eq!(m["rcpts"][0], "zoë@one.example", "{list}");
    // Without SMTPUTF8 a non-ASCII address is refused with RFC 6531's code.
    let out = p.raw(
        "EHLO c\r\nMAIL FROM:<józef@b.example>\r\nQUIT\r\n".as_bytes(),
        settle(),
    );
    assert!(out.contains("553 5.6.7"), "{out}");
}
