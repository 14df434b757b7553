//! Domains without a usable MX: a null MX (RFC 7505, `MX 0 .`) bounces at once with 5.1.10;
//! without any MX, `bounce-upon-no-mx true` bounces with 5.4.4, `bounce-upon-no-mx 1h`
//! still delivers a young message to the domain's own address, and the default (`false`)
//! delivers there as RFC 5321 §5.1 says.

use crate::common;

use common::{send_mail, wait_for_acct, Dns, Petrel, Sink};

#[test]
fn null_mx_and_bounce_upon_no_mx() {
    let sink = Sink::start("127.0.0.1");
    let dns = Dns::start(
        r#"{
        "nullmx.example.": {"MX": [[0, "."]], "A": ["127.0.0.1"]},
        "strict.example.": {"A": ["127.0.0.1"]},
        "patient.example.": {"A": ["127.0.0.1"]},
        "plain.example.": {"A": ["127.0.0.1"]}
    }"#,
    );
    let p = Petrel::start(&format!(
        "name-server 127.0.0.1:{}\n<source 0/0>\n  always-allow-relaying yes\n</source>\n\
         <domain *>\n  default-smtp-port {}\n  use-starttls no\n</domain>\n\
         <domain strict.example>\n  bounce-upon-no-mx true\n</domain>\n\
         <domain patient.example>\n  bounce-upon-no-mx 1h\n</domain>\n\
         <acct-file {{DIR}}/acct.csv>\n  records d,b\n</acct-file>\n",
        dns.port, sink.port
    ));
    for rcpt in [
        "a@nullmx.example",
        "b@strict.example",
        "c@patient.example",
        "d@plain.example",
    ] {
        send_mail(p.smtp_port, "", &[rcpt], "");
    }
    let got = sink.wait_for(2, 30);
    let mut delivered: Vec<&str> = got
        .iter()
        .map(|m| m["rcpts"][0].as_str().unwrap())
        .collect();
    delivered.sort();
    assert_eq!(delivered, ["c@patient.example", "d@plain.example"]);

    let row = |rcpt: &str| {
        let rows = wait_for_acct(p.dir.path(), 30, |r| r["type"] == "b" && r["rcpt"] == rcpt);
        rows.into_iter()
            .find(|r| r["type"] == "b" && r["rcpt"] == rcpt)
            .unwrap()
    };
    let null = row("a@nullmx.example");
    assert!(null["dsnStatus"].starts_with("5.1.10"), "{null:?}");
    assert_eq!(null["bounceCat"], "bad-domain");
    assert!(null["dsnDiag"].contains("null MX"), "{null:?}");
    let strict = row("b@strict.example");
    assert!(strict["dsnStatus"].starts_with("5.4.4"), "{strict:?}");
    assert!(strict["dsnDiag"].contains("no MX"), "{strict:?}");
}
