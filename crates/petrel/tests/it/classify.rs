//! `petrel classify FILE…`: one JSON line per file with what petrel reads from returned
//! mail — a real Postfix DSN from the corpus, an ARF complaint, a vacation auto-reply — and a
//! clear error (exit 1) for a file that cannot be read.

use crate::common;

use std::process::Command;

use common::{petrel_bin, shared_dir, text};
use serde_json::Value;

const ARF: &str = "From: <fbl@isp.example>\r
To: <fbl@fbl.petrel.example>\r
Subject: FW: Sale\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=feedback-report; boundary=\"b1\"\r
\r
--b1\r
Content-Type: text/plain\r
\r
An abuse report.\r
--b1\r
Content-Type: message/feedback-report\r
\r
Feedback-Type: abuse\r
User-Agent: ISP-FBL/2.1\r
Version: 1\r
Original-Rcpt-To: <reader@isp.example>\r
Reported-Domain: brand.example\r
\r
--b1\r
Content-Type: message/rfc822\r
\r
Message-ID: <m1@petrel.test>\r
X-Job: spring-sale\r
From: news@brand.example\r
To: reader@isp.example\r
\r
Buy now\r
--b1--\r
";

#[test]
fn prints_one_json_line_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let arf = dir.path().join("arf.eml");
    std::fs::write(&arf, ARF).unwrap();
    let corpus = shared_dir().join("corpus/bounces");
    let out = Command::new(petrel_bin())
        .arg("classify")
        .arg(corpus.join("lhost-amavis-02.eml"))
        .arg(&arf)
        .arg(corpus.join("rfc3834-03.eml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");

    let dsn = &lines[0];
    assert_eq!(dsn["kind"], "bounce", "{dsn}");
    let r = &dsn["recipients"][0];
    assert_eq!(r["address"], "neko@example.co.jp");
    assert_eq!(r["status"], "5.1.1");
    assert_eq!(r["bounce_cat"], "bad-mailbox");
    assert_eq!(r["bounce_class"], 10);
    assert_eq!(r["hard"], true);
    assert_eq!(
        dsn["original"]["message_id"],
        "Qdmail.0.0.0e_9c642ee04972b793b0cd524f85f923cb@example.net"
    );

    let fbl = &lines[1];
    assert_eq!(fbl["kind"], "complaint", "{fbl}");
    assert_eq!(fbl["feedback_type"], "abuse");
    assert_eq!(fbl["user_agent"], "ISP-FBL/2.1");
    assert_eq!(fbl["recipients"][0], "reader@isp.example");
    assert_eq!(fbl["original"]["x_job"], "spring-sale");

    assert_eq!(lines[2]["kind"], "auto_reply", "{}", lines[2]);
}

#[test]
fn unreadable_files_are_reported_and_exit_1() {
    let out = Command::new(petrel_bin())
        .args(["classify", "/nonexistent/bounce.eml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/bounce.eml"),
        "{}",
        text(&out)
    );
}
