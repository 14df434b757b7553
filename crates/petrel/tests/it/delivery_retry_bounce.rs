//! Outcomes: a sink that tempfails then accepts (retry on `retry-after`, `t` then `d` rows),
//! and one that rejects (`b` row with bounceCat, and a DSN to the envelope sender).

use crate::common;

use common::{send_mail, wait_for_acct, Petrel, Sink};

const CONFIG: &str = r#"
<source 0/0>
  always-allow-relaying yes
</source>
<domain sink.example>
  smtp-hosts [127.0.0.1]:{SINK}
  retry-after 1s
  use-starttls no
</domain>
<domain sender.example>
  smtp-hosts [127.0.0.1]:{SINK}
  use-starttls no
</domain>
<acct-file {DIR}/acct.csv>
  records d,b,t,tq
</acct-file>
"#;

#[test]
fn tempfail_is_retried_then_delivered() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&CONFIG.replace("{SINK}", &sink.port.to_string()));
    send_mail(
        p.smtp_port,
        "news@sender.example",
        &["tempfail-1@sink.example"],
        "",
    );
    let got = sink.wait_for(1, 30);
    assert_eq!(got[0]["rcpts"][0], "tempfail-1@sink.example");
    let rows = wait_for_acct(p.dir.path(), 20, |r| r["type"] == "d");
    let t = rows
        .iter()
        .find(|r| r["type"] == "t")
        .expect("a t row for the tempfail");
    assert_eq!(t["dsnAction"], "delayed");
    assert!(t["dsnDiag"].contains("451 4.3.0"), "{t:?}");
    assert!(t["dsnStatus"].starts_with("4.3.0"), "{t:?}");
}

#[test]
fn rejection_bounces_with_category_and_dsn() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&CONFIG.replace("{SINK}", &sink.port.to_string()));
    send_mail(
        p.smtp_port,
        "news@sender.example",
        &["reject-me@sink.example", "ok@sink.example"],
        "",
    );
    let rows = wait_for_acct(p.dir.path(), 20, |r| r["type"] == "b");
    let b = rows.iter().find(|r| r["type"] == "b").unwrap();
    assert_eq!(b["rcpt"], "reject-me@sink.example");
    assert_eq!(b["dsnAction"], "failed");
    assert!(b["dsnStatus"].starts_with("5.1.1"), "{b:?}");
    assert_eq!(b["bounceCat"], "bad-mailbox");
    assert!(b["dsnDiag"].starts_with("smtp;550 5.1.1"), "{b:?}");
    // The good recipient was delivered, and the DSN went to the sender with a null MAIL FROM.
    let got = sink.wait_for(2, 30);
    // aiosmtpd shows the null reverse path as "<>".
    let dsn = got
        .iter()
        .find(|m| m["mail_from"] == "<>")
        .unwrap_or_else(|| panic!("a DSN with null sender: {got:?}\n{}", p.log()));
    assert_eq!(dsn["rcpts"][0], "news@sender.example");
    let data = dsn["data"].as_str().unwrap();
    assert!(data.contains("report-type=delivery-status"), "{data}");
    assert!(
        data.contains("Final-Recipient: rfc822; reject-me@sink.example"),
        "{data}"
    );
    assert!(data.contains("Status: 5.1.1"), "{data}");
    assert!(
        data.contains("Content-Type: message/rfc822\r\n\r\nReceived: "),
        "original returned: {data}"
    );
    assert!(got.iter().any(|m| m["rcpts"][0] == "ok@sink.example"));
}

#[test]
fn a_null_sender_never_gets_a_dsn() {
    let sink = Sink::start("127.0.0.1");
    let p = Petrel::start(&CONFIG.replace("{SINK}", &sink.port.to_string()));
    send_mail(
        p.smtp_port,
        "",
        &["reject-1@sink.example", "ok@sink.example"],
        "",
    );
    wait_for_acct(p.dir.path(), 20, |r| r["type"] == "b");
    sink.wait_for(1, 20);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Only the accepted recipient's copy arrives: no DSN is generated for a null sender.
    assert_eq!(sink.records().len(), 1, "{:?}", sink.records());
}
