//! DKIM: `domain-key` + `dkim-sign yes` sign the final message (RSA-SHA256, relaxed/relaxed);
//! the signature verifies with an independent verifier, Python's dkimpy, at the sink.

mod common;

use std::path::Path;

use common::{dkim_fixture_txt, python, send_mail, text, Petrel, Sink};

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
    let txt = dkim_fixture_txt();
    let script = r#"
import dkim, sys
msg = sys.stdin.buffer.read()
txt = sys.argv[1].encode()
def dns(name, timeout=5):
    assert name == b"mypmta._domainkey.pmta.signalsdemo.trymsys.net.", name
    return txt
ok = dkim.verify(msg, dnsfunc=dns)
tampered = dkim.verify(msg.replace(b"Hello from the test", b"Hello from elsewhere"), dnsfunc=dns)
print("verify", ok, "tampered", tampered)
sys.exit(0 if ok and not tampered else 1)
"#;
    let out = run_with_stdin(script, &txt, data.as_bytes());
    assert!(out.status.success(), "{}", text(&out));
    let _ = python;
}

fn run_with_stdin(script: &str, arg: &str, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("python3")
        .args(["-c", script, arg])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}
