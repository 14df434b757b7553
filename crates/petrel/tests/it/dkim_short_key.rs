//! A 1024-bit DKIM key (RFC 8301's minimum, still common) signs mail that dkimpy verifies;
//! `check-config` warns and recommends 2048 bits; a key petrel cannot sign with is an error
//! in `check-config` and stops `serve`, so mail never goes out silently unsigned.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{dkimpy_verifies, petrel_bin, send_mail, text, Petrel, Sink};

/// Key fixtures of the DKIM crate (one copy in the repository).
fn dkim_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../dkim/tests/fixtures")
        .join(name)
}

fn key_line(selector: &str, file: &str) -> String {
    format!(
        "domain-key {selector}, legacy.example, {}\n",
        dkim_fixture(file).display()
    )
}

#[test]
fn a_1024_bit_key_signs_mail_that_dkimpy_verifies() {
    let sink = Sink::start("127.0.0.1");
    let config = format!(
        "<source 0/0>\n  always-allow-relaying yes\n</source>\n{}<domain *>\n  smtp-hosts [127.0.0.1]:{}\n  use-starttls no\n  dkim-sign yes\n</domain>\n",
        key_line("old1024", "rsa1024.pem"),
        sink.port
    );
    let p = Petrel::start(&config);
    send_mail(
        p.smtp_port,
        "news@legacy.example",
        &["reader@sink.example"],
        "",
    );
    let got = sink.wait_for(1, 30);
    let data = got[0]["data"].as_str().unwrap();
    assert!(data.starts_with("DKIM-Signature:"), "not signed: {data}");
    assert!(
        data.contains("a=rsa-sha256")
            && data.contains("d=legacy.example")
            && data.contains("s=old1024"),
        "{data}"
    );
    let txt = std::fs::read_to_string(dkim_fixture("rsa1024.dkim-record.txt")).unwrap();
    let out = dkimpy_verifies(
        data.as_bytes(),
        "old1024._domainkey.legacy.example",
        txt.trim(),
    );
    assert!(out.status.success(), "{}", text(&out));
}

fn check_config(body: &str) -> (std::process::Output, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("petrel.conf");
    std::fs::write(&path, body).unwrap();
    let out = Command::new(petrel_bin())
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    (out, path, dir)
}

#[test]
fn check_config_warns_about_a_1024_bit_key_and_recommends_2048() {
    let (out, path, _dir) = check_config(&format!(
        "host-name petrel.test\n{}",
        key_line("old1024", "rsa1024.pem")
    ));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = format!("warning: {}:2:", path.display());
    assert!(stdout.contains(&expected), "{}", text(&out));
    assert!(
        stdout.contains("1024-bit RSA key") && stdout.contains("recommends 2048"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("configuration OK (1 warning(s))"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_key_petrel_cannot_sign_with_is_an_error_at_check_config_and_start() {
    let body = format!("host-name petrel.test\n{}", key_line("tiny", "rsa512.pem"));
    let (out, path, dir) = check_config(&body);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:", path.display()))
            && stderr.contains("shorter than 1024 bits"),
        "{}",
        text(&out)
    );

    // The daemon refuses to start with it rather than sending that domain's mail unsigned.
    let full = format!(
        "smtp-listener 127.0.0.1:{}\nhttp-mgmt-port 0\n<spool {}/spool>\n</spool>\n{body}",
        common::free_port(),
        dir.path().display()
    );
    std::fs::write(&path, full).unwrap();
    let mut child = Command::new(petrel_bin())
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("petrel serve kept running with an unusable DKIM key");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert!(!status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shorter than 1024 bits"),
        "{}",
        text(&out)
    );
}
