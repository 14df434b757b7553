//! DKIM: `domain-key` + `dkim-sign yes` sign the final message (RSA-SHA256, relaxed/relaxed);
//! the signature verifies with an independent verifier, Python's dkimpy, at the sink.

use crate::common;

use std::path::Path;

use common::{dkimpy_verifies, send_mail, text, Petrel, Sink};

#[test]
fn delivered_mail_carries_a_signature_dkimpy_verifies() {
    let sink = Sink::start("127.0.0.1");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let config = format!(
        "<source 0/0>\n  always-allow-relaying yes\n</source>\ndomain-key mypmta, pmta.signalsdemo.trymsys.net, {}\n<domain *>\n  smtp-hosts [127.0.0.1]:{}\n  use-starttls no\n  dkim-sign yes\n</domain>\n",
        fixtures.join("dkim-mypmta.pem").display(),
        sink.port
    );
    let p = Petrel::start(&config);
    send_mail(
        p.smtp_port,
        "news@pmta.signalsdemo.trymsys.net",
        &["reader@sink.example"],
        "",
    );
    let got = sink.wait_for(1, 30);
    let data = got[0]["data"].as_str().unwrap();
    assert!(
        data.starts_with("DKIM-Signature:"),
        "signature goes first: {data}"
    );
    assert!(
        data.contains("d=pmta.signalsdemo.trymsys.net") && data.contains("s=mypmta"),
        "{data}"
    );
    let record = std::fs::read_to_string(fixtures.join("dkim-mypmta.dns.txt")).unwrap();
    let txt = record
        .split_once("TXT")
        .unwrap()
        .1
        .trim()
        .trim_matches('"')
        .to_string();
    let out = dkimpy_verifies(
        data.as_bytes(),
        "mypmta._domainkey.pmta.signalsdemo.trymsys.net",
        &txt,
    );
    assert!(out.status.success(), "{}", text(&out));
}
