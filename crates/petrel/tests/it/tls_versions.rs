//! The article's TLS check: clients offering only TLS 1.0 or 1.1 fail the handshake,
//! TLS 1.2 and 1.3 clients succeed; the allow switches are honoured.

use crate::common;

use std::process::Command;

use common::{require, text, Petrel};

const CONFIG: &str = r#"
smtp-server-tls-certificate {CERT}
smtp-server-tls-allow-tlsv1 false
smtp-server-tls-allow-tlsv1.1 false
smtp-server-tls-allow-tlsv1.2 true
smtp-server-tls-allow-tlsv1.3 true
<source 0/0>
  allow-starttls true
  always-allow-relaying yes
</source>
"#;

fn s_client(port: u16, flags: &[&str]) -> String {
    require("openssl");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo QUIT | timeout 20 openssl s_client -connect 127.0.0.1:{port} -starttls smtp {} 2>&1",
            flags.join(" ")
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// swaks negotiating STARTTLS with only `proto` enabled, then quitting after EHLO.
fn starttls_with(p: &Petrel, proto: &str) -> std::process::Output {
    p.swaks(&[
        "--tls",
        "--tls-protocol",
        proto,
        "--to",
        "a@example.com",
        "--quit-after",
        "EHLO",
    ])
}

#[test]
fn swaks_with_tls_1_2_and_1_3_succeeds() {
    let p = Petrel::start(CONFIG);
    for proto in ["tlsv1_2", "tlsv1_3"] {
        let out = starttls_with(&p, proto);
        assert!(out.status.success(), "{proto}: {}", text(&out));
    }
}

#[test]
fn swaks_offering_only_tls_1_0_or_1_1_fails() {
    let p = Petrel::start(CONFIG);
    for proto in ["tlsv1", "tlsv1_1"] {
        let out = starttls_with(&p, proto);
        assert!(!out.status.success(), "{proto} must fail: {}", text(&out));
        assert!(text(&out).contains("TLS"), "{}", text(&out));
    }
}

#[test]
fn openssl_sees_the_server_refuse_old_versions() {
    let p = Petrel::start(CONFIG);
    // SECLEVEL=0 lets the client really offer TLS 1.0/1.1, so the refusal is the server's.
    for flag in ["-tls1", "-tls1_1"] {
        let out = s_client(p.smtp_port, &[flag, "-cipher", "DEFAULT@SECLEVEL=0"]);
        assert!(
            !out.contains("Cipher is ECDHE") && !out.contains("New, TLSv1"),
            "{flag} negotiated: {out}"
        );
        assert!(
            out.contains("alert protocol version")
                || out.contains("handshake failure")
                || out.contains("unsupported protocol"),
            "{flag}: {out}"
        );
    }
    let ok12 = s_client(p.smtp_port, &["-tls1_2"]);
    assert!(ok12.contains("TLSv1.2"), "{ok12}");
    let ok13 = s_client(p.smtp_port, &["-tls1_3"]);
    assert!(ok13.contains("TLSv1.3"), "{ok13}");
}

#[test]
fn disabling_tls_1_2_leaves_only_1_3() {
    let p = Petrel::start(&CONFIG.replace(
        "smtp-server-tls-allow-tlsv1.2 true",
        "smtp-server-tls-allow-tlsv1.2 false",
    ));
    let out = starttls_with(&p, "tlsv1_2");
    assert!(!out.status.success(), "{}", text(&out));
    let out = starttls_with(&p, "tlsv1_3");
    assert!(out.status.success(), "{}", text(&out));
}
