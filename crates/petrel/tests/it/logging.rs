//! `log-connections`, `log-commands` and `log-data` write the session to `log-file`, with
//! AUTH secrets masked.

use crate::common;

use std::time::{Duration, Instant};

use common::Petrel;

#[test]
fn the_dialogue_and_data_reach_the_log_file() {
    let p = Petrel::start(
        "<source 0/0>\n  always-allow-relaying yes\n  log-connections true\n  log-commands true\n  log-data true\n</source>\n",
    );
    let out = p.raw(
        b"EHLO logged.test\r\nAUTH PLAIN c2VjcmV0\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nSubject: logged-subject\r\n\r\nhello\r\n.\r\nQUIT\r\n",
        Duration::from_millis(1500),
    );
    assert!(out.contains("250 2.6.0"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = p.log();
        if log.contains("disconnected") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(log.contains("connected"), "{log}");
    assert!(log.contains(">>> EHLO logged.test"), "{log}");
    assert!(
        log.contains("<<< 250 2.1.0 sender <a@b.example> ok"),
        "{log}"
    );
    assert!(
        log.contains("AUTH ****") && !log.contains("c2VjcmV0"),
        "secrets must be masked: {log}"
    );
    // log-data: the hex dump shows the subject's bytes and their ASCII.
    assert!(
        log.contains("5375626a656374"),
        "hex of 'Subject' missing: {log}"
    );
    assert!(
        log.contains("Subject: logged-"),
        "ASCII column missing: {log}"
    );
    // Multi-line replies are logged line by line.
    assert!(log.contains("<<< 250-PIPELINING"), "{log}");
}

#[test]
fn quiet_by_default() {
    let p = Petrel::start("<source 0/0>\n  always-allow-relaying yes\n</source>\n");
    p.raw(b"EHLO quiet.test\r\nQUIT\r\n", Duration::from_millis(800));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!p.log().contains(">>> EHLO quiet.test"), "{}", p.log());
}
