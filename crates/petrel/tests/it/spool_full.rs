//! A full or unwritable spool answers `452 4.3.1`; the client keeps its message, petrel keeps
//! running, and what was acknowledged before stays spooled.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{python, text, Petrel};

const SEND: &str = r#"
import smtplib, sys
port, count, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
body = "Subject: fill\r\n\r\n" + ("y" * 98 + "\r\n") * (size // 100)
codes = []
for i in range(count):
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    try:
        s.sendmail("a@b.example", ["r%d@fill.example" % i], body)
        codes.append("250")
    except smtplib.SMTPDataError as e:
        codes.append("%d %s" % (e.smtp_code, e.smtp_error.decode()))
    s.quit()
print("\n".join(codes))
"#;

fn send(p: &Petrel, count: usize, size: usize) -> Vec<String> {
    let out = python(
        SEND,
        &[
            &p.smtp_port.to_string(),
            &count.to_string(),
            &size.to_string(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn min_free_space_refuses_with_452_and_keeps_running() {
    let p = Petrel::start(
        "<source 0/0>\n  always-allow-relaying yes\n</source>\n<spool {DIR}/spool>\n  min-free-space 1000000G\n</spool>\n",
    );
    let codes = send(&p, 3, 2000);
    for c in &codes {
        assert!(c.starts_with("452 4.3.1"), "{codes:?}");
    }
    // Still serving: a plain NOOP session works.
    let out = p.raw(b"EHLO c\r\nNOOP\r\nQUIT\r\n", Duration::from_secs(1));
    assert!(out.contains("250 2.0.0 ok"), "{out}");
    assert_eq!(p.list()["data"]["messages"].as_array().unwrap().len(), 0);
}

/// A real full disk: the spool lives on a 3 MiB tmpfs. Needs root (CI runs as root).
#[test]
fn a_full_file_system_answers_452_and_loses_nothing_acknowledged() {
    let mnt = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root); the min-free-space test covers the reply");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.path().to_path_buf());
    let mut p = Petrel::start(&format!(
        "<source 0/0>\n  always-allow-relaying yes\n</source>\n<spool {}/spool>\n</spool>\n",
        mnt.path().display()
    ));
    let codes = send(&p, 40, 200_000);
    let accepted = codes.iter().filter(|c| *c == "250").count();
    let refused = codes.iter().filter(|c| c.starts_with("452 4.3.1")).count();
    assert!(accepted > 0 && refused > 0, "{codes:?}");
    assert_eq!(accepted + refused, codes.len(), "{codes:?}");
    let out = p.raw(b"EHLO c\r\nNOOP\r\nQUIT\r\n", Duration::from_secs(1));
    assert!(
        out.contains("250 2.0.0 ok"),
        "petrel must keep running: {out}"
    );
    // Everything acknowledged is there, also after a crash and restart.
    assert_eq!(
        p.list()["data"]["messages"].as_array().unwrap().len(),
        accepted
    );
    p.kill9();
    p.spawn();
    assert_eq!(
        p.list()["data"]["messages"].as_array().unwrap().len(),
        accepted
    );
}
