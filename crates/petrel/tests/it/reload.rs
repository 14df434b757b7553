//! `petrel reload` applies a changed configuration to new sessions; a broken file is refused
//! with its errors and the running configuration stays.

use crate::common;

use std::time::Duration;

use common::{text, Petrel};

#[test]
fn reload_applies_good_files_and_keeps_the_old_one_on_errors() {
    let p = Petrel::start("<source 0/0>\n  always-allow-relaying yes\n</source>\n");
    let probe = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@far.example>\r\nQUIT\r\n";
    assert!(p
        .raw(probe, Duration::from_millis(800))
        .contains("250 2.1.5"));

    let original = std::fs::read_to_string(&p.config).unwrap();
    std::fs::write(
        &p.config,
        original.replace("always-allow-relaying yes", "always-allow-relaying no"),
    )
    .unwrap();
    let out = p.cli(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Configuration reloaded."));
    assert!(p
        .raw(probe, Duration::from_millis(800))
        .contains("550 5.7.1 relaying denied"));

    // A broken file: reload fails with file:line, and the previous configuration stays.
    std::fs::write(&p.config, format!("{original}\nsmtp-servce true\n")).unwrap();
    let out = p.cli(&["reload"]);
    assert!(!out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("petrel.conf:") && t.contains("smtp-servce"),
        "{t}"
    );
    assert!(p
        .raw(probe, Duration::from_millis(800))
        .contains("550 5.7.1 relaying denied"));
}
