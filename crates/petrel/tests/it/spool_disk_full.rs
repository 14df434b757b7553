//! A full disk must not wedge the spool (issue 17 item 6). On a 20 MB tmpfs made by the
//! test, petrel takes mail until the file system is full (452 after that); then another
//! process takes every byte that is left, and only then does the destination come up. Every
//! delivered recipient must still be marked done (no duplicates over two crashes and
//! restarts), and once everything has left, new mail must be taken again although nothing
//! freed any space. Before the fix, `min-free-space 0` gave 146 duplicates over two
//! restarts and `min-free-space 4M` refused every new message with 452 for good.
//!
//! The figures (acknowledged, delivered, duplicates, time to recover) are printed; run with
//! `--nocapture` to see them (docs/BENCHMARKS.md).

use crate::common;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{free_port, python, text, Petrel, Sink, Tmpfs};

/// Sends messages `first..first+count` (`Subject: mN`, about `size` bytes each), one
/// connection each, and prints `N CODE` per message; stops early after `stop_after`
/// refusals in a row.
const SEND: &str = r#"
import smtplib, sys
port, first, count, size, stop_after = (int(a) for a in sys.argv[1:6])
refused = 0
for i in range(first, first + count):
    body = "Subject: m%d\r\n\r\n" % i + ("z" * 98 + "\r\n") * (size // 100)
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    try:
        s.sendmail("a@b.example", ["r%d@sink.example" % i], body)
        print(i, 250, flush=True)
        refused = 0
    except smtplib.SMTPDataError as e:
        print(i, e.smtp_code, flush=True)
        refused += 1
    s.quit()
    if refused >= stop_after:
        break
"#;

/// (message number, reply code) per message sent.
fn send(
    p: &Petrel,
    first: usize,
    count: usize,
    size: usize,
    stop_after: usize,
) -> Vec<(usize, u16)> {
    let args = [first, count, size, stop_after].map(|n| n.to_string());
    let port = p.smtp_port.to_string();
    let out = python(SEND, &[&port, &args[0], &args[1], &args[2], &args[3]]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (n, code) = l.split_once(' ').unwrap();
            (n.parse().unwrap(), code.parse().unwrap())
        })
        .collect()
}

/// Writes zeros to `path` until the file system is full.
fn fill_up(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let mut written = 0u64;
    for size in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
        let chunk = vec![0u8; size];
        while f.write_all(&chunk).is_ok() {
            written += size as u64;
        }
    }
    let _ = f.sync_all();
    written
}

/// Deliveries the sink saw, by subject.
fn deliveries(sink: &Sink) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for r in sink.records() {
        let data = r["data"].as_str().unwrap_or_default();
        let subject = data
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("?")
            .trim()
            .to_string();
        *seen.entry(subject).or_default() += 1;
    }
    seen
}

fn spooled(p: &Petrel) -> usize {
    p.list()["data"]["messages"].as_array().unwrap().len()
}

fn wait_until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn full_disk_scenario(min_free_space: &str) {
    let Some(mnt) = Tmpfs::mount("20m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the spool's own tests cover the rules"
        );
        return;
    };
    let sink_port = free_port();
    let mut p = Petrel::start(&format!(
        "<source 0/0>\n  always-allow-relaying yes\n</source>\n\
         <spool {}/spool>\n  min-free-space {min_free_space}\n</spool>\n\
         <domain sink.example>\n  smtp-hosts [127.0.0.1]:{sink_port}\n  use-starttls no\n  retry-after 1s\n</domain>\n",
        mnt.path().display()
    ));

    // Fill the disk: the destination is down, so everything stays spooled.
    let codes = send(&p, 0, 400, 100_000, 3);
    let acknowledged: Vec<usize> = codes.iter().filter(|c| c.1 == 250).map(|c| c.0).collect();
    let refused = codes.iter().filter(|c| c.1 == 452).count();
    assert!(
        acknowledged.len() > 50 && refused > 0,
        "the disk should fill up: {codes:?}"
    );
    assert_eq!(acknowledged.len() + refused, codes.len(), "{codes:?}");
    // Someone else takes every byte that is left.
    fill_up(&mnt.path().join("ballast"));

    // The destination comes back: everything is delivered, and marked done.
    let sink = Sink::start_on("127.0.0.1", sink_port);
    let _ = p.cli(&["schedule", "sink.example"]);
    wait_until(120, "every acknowledged message delivered", || {
        deliveries(&sink).len() >= acknowledged.len()
    });
    let marked_done = {
        let deadline = Instant::now() + Duration::from_secs(10);
        while spooled(&p) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        spooled(&p) == 0
    };
    // Two crashes and restarts: nothing may come back.
    for _ in 0..2 {
        p.kill9();
        p.spawn();
        let _ = p.cli(&["schedule", "sink.example"]);
        std::thread::sleep(Duration::from_secs(3));
    }
    let left_after_restarts = spooled(&p);

    // The disk is still full (the ballast stays): new mail must be taken again.
    let started = Instant::now();
    let mut attempts = 0;
    let recovered = loop {
        attempts += 1;
        let mut dialogue = format!(
            "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<new@sink.example>\r\nDATA\r\nSubject: new{attempts}\r\n\r\n"
        )
        .into_bytes();
        dialogue.extend_from_slice(&[&b"z".repeat(98)[..], b"\r\n"].concat().repeat(1000));
        dialogue.extend_from_slice(b".\r\nQUIT\r\n");
        if p.raw(&dialogue, Duration::from_secs(2))
            .contains("250 2.6.0")
        {
            break Some(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(20) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if recovered.is_some() {
        wait_until(30, "the new message delivered", || {
            deliveries(&sink).contains_key(&format!("new{attempts}"))
        });
    }

    let seen = deliveries(&sink);
    let delivered = acknowledged
        .iter()
        .filter(|n| seen.contains_key(&format!("m{n}")))
        .count();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    let recovery = match recovered {
        Some(t) => format!(
            "new 100 KB message taken {:.3} s after the restarts, at attempt {attempts}",
            t.as_secs_f64()
        ),
        None => format!("new mail still refused after 20 s ({attempts} attempts)"),
    };
    println!(
        "full disk (20 MB tmpfs, min-free-space {min_free_space}): acknowledged {}, refused {refused}, \
         delivered {delivered}, all marked done: {marked_done}, duplicates {duplicates} over two \
         restarts, {left_after_restarts} message(s) left spooled; {recovery}, the disk still full",
        acknowledged.len(),
    );
    assert_eq!(delivered, acknowledged.len(), "acknowledged mail was lost");
    assert!(marked_done, "delivered recipients were not marked done");
    assert_eq!(duplicates, 0, "delivered more than once: {seen:?}");
    assert_eq!(left_after_restarts, 0);
    assert!(recovered.is_some(), "{recovery}; log:\n{}", p.log());
}

#[test]
fn full_disk_with_min_free_space_0() {
    full_disk_scenario("0");
}

#[test]
fn full_disk_with_min_free_space_4m() {
    full_disk_scenario("4M");
}
