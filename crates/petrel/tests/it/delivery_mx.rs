//! MX routing with a resolver we control (a dnslib server on loopback, `name-server
//! 127.0.0.1:PORT`): preference order, fallback to the next MX when the best one does not
//! answer, the implicit MX (A record) when there is no MX, and NXDOMAIN → bounce bad-domain.

use crate::common;

use common::{send_mail, wait_for_acct, Dns, Petrel, Sink};

#[test]
fn mx_preference_fallback_implicit_mx_and_nxdomain() {
    let sink = Sink::start("127.0.0.1");
    // mx1 (preference 10) points at 127.0.0.3, where nothing listens on the sink's port;
    // mx2 (preference 20) points at the sink. noMx.example has only an A record.
    let zone = r#"{
        "mx.example.": {"MX": [[20, "mx2.mx.example."], [10, "mx1.mx.example."]]},
        "mx1.mx.example.": {"A": ["127.0.0.3"]},
        "mx2.mx.example.": {"A": ["127.0.0.1"]},
        "nomx.example.": {"A": ["127.0.0.1"]}
    }"#;
    let dns = Dns::start(zone);
    let config = format!(
        "name-server 127.0.0.1:{}\n<source 0/0>\n  always-allow-relaying yes\n</source>\n<domain *>\n  default-smtp-port {}\n  use-starttls no\n  connect-timeout 2s\n</domain>\n<acct-file {{DIR}}/acct.csv>\n  records d,b,t,tq\n</acct-file>\n",
        dns.port, sink.port
    );
    let p = Petrel::start(&config);
    send_mail(p.smtp_port, "", &["user@mx.example"], "");
    send_mail(p.smtp_port, "", &["user@nomx.example"], "");
    send_mail(p.smtp_port, "", &["user@nosuch.example"], "");
    let got = sink.wait_for(2, 30);
    let rcpts: Vec<&str> = got
        .iter()
        .map(|m| m["rcpts"][0].as_str().unwrap())
        .collect();
    assert!(
        rcpts.contains(&"user@mx.example") && rcpts.contains(&"user@nomx.example"),
        "{got:?}"
    );

    let rows = wait_for_acct(p.dir.path(), 20, |r| r["type"] == "b");
    let d = rows
        .iter()
        .find(|r| r["type"] == "d" && r["rcpt"] == "user@mx.example")
        .unwrap();
    assert_eq!(
        d["dsnMta"], "mx2.mx.example (127.0.0.1)",
        "delivered through the second MX: {d:?}"
    );
    // The failed attempt at the best MX is on record as a queue-level transient failure.
    assert!(
        rows.iter()
            .any(|r| r["type"] == "tq" && r["dsnMta"].starts_with("mx1.mx.example")),
        "{rows:#?}"
    );
    let b = rows.iter().find(|r| r["type"] == "b").unwrap();
    assert_eq!(b["rcpt"], "user@nosuch.example");
    assert_eq!(b["bounceCat"], "bad-domain");
    assert!(b["dsnStatus"].starts_with("5.1.2"), "{b:?}");
}
