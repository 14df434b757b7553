//! `Accounting`: one background thread, fan-out by record type, drain on shutdown.

mod common;

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::thread;

use common::*;
use petrel_accounting::{Accounting, AcctError, AcctRecord};
use petrel_config::{AcctFile, AcctTarget, RecordType};

fn rows_in(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for n in files(dir) {
        let l = lines(&dir.join(n));
        assert_eq!(l[0], "type,rcpt");
        rows.extend(l[1..].iter().cloned());
    }
    rows
}

fn cfg(dir: &Path, records: &[RecordType]) -> AcctFile {
    AcctFile {
        record_fields: records.iter().map(|t| (*t, sel("rcpt"))).collect(),
        ..file_acct(dir, records)
    }
}

#[test]
fn drains_every_record_from_four_threads_on_shutdown() {
    let all = tempfile::tempdir().unwrap();
    let only_d = tempfile::tempdir().unwrap();
    let piped = tempfile::tempdir().unwrap();
    let pipe_out = piped.path().join("out.csv");
    let pipe = AcctFile {
        record_fields: vec![(RecordType::Bounce, sel("rcpt"))],
        records: vec![RecordType::Bounce],
        ..acct(AcctTarget::Pipe(format!("cat > '{}'", pipe_out.display())))
    };
    let acct = Arc::new(
        Accounting::from_config(&[
            cfg(all.path(), &[RecordType::Delivery, RecordType::Bounce]),
            cfg(only_d.path(), &[RecordType::Delivery]),
            pipe,
        ])
        .unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let acct = Arc::clone(&acct);
            thread::spawn(move || {
                for i in 0..2500 {
                    let base = if i % 2 == 0 { d_sample() } else { b_sample() };
                    acct.record(AcctRecord {
                        rcpt: format!("t{t}-{i}@example.com"),
                        ..base
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    acct.shutdown().unwrap();
    assert_eq!(acct.stats().recorded, 10_000);
    assert_eq!(acct.stats().errors, 0);
    assert!(matches!(acct.record(d_sample()), Err(AcctError::Closed)));
    acct.shutdown().unwrap(); // idempotent

    let all_rows = rows_in(all.path());
    assert_eq!(all_rows.len(), 10_000);
    let unique: HashSet<&String> = all_rows.iter().collect();
    assert_eq!(unique.len(), 10_000);
    for t in 0..4 {
        for i in 0..2500 {
            let ty = if i % 2 == 0 { "d" } else { "b" };
            assert!(unique.contains(&format!("{ty},t{t}-{i}@example.com")));
        }
    }
    let d_rows = rows_in(only_d.path());
    assert_eq!(d_rows.len(), 5_000);
    assert!(d_rows.iter().all(|r| r.starts_with("d,")));

    let p = lines(&pipe_out);
    assert_eq!(p[0], "type,rcpt");
    assert_eq!(p.len(), 1 + 5_000);
    assert!(p[1..].iter().all(|r| r.starts_with("b,")));
}

#[test]
fn flush_makes_records_visible_without_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let acct = Accounting::from_config(&[cfg(dir.path(), &[RecordType::Delivery])]).unwrap();
    // The file and its header exist from the start.
    assert_eq!(rows_in(dir.path()), Vec::<String>::new());
    acct.record(d_sample()).unwrap();
    acct.flush().unwrap();
    assert_eq!(rows_in(dir.path()), ["d,D@1181.com"]);
    acct.rotate().unwrap();
    acct.record(d_sample()).unwrap();
    drop(acct); // Drop shuts down and drains too.
    assert_eq!(files(dir.path()).len(), 2);
    assert_eq!(rows_in(dir.path()), ["d,D@1181.com", "d,D@1181.com"]);
}

#[test]
fn periodic_flush_writes_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let acct = Accounting::from_config(&[cfg(dir.path(), &[RecordType::Delivery])]).unwrap();
    acct.record(d_sample()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while rows_in(dir.path()).is_empty() {
        assert!(std::time::Instant::now() < deadline, "not flushed");
        thread::sleep(std::time::Duration::from_millis(20));
    }
    acct.shutdown().unwrap();
}

#[test]
fn from_config_reports_unknown_fields_and_unwritable_paths() {
    let dir = tempfile::tempdir().unwrap();
    let bad = AcctFile {
        record_fields: vec![(RecordType::Delivery, sel("*,nosuchfield"))],
        ..file_acct(dir.path(), &[RecordType::Delivery])
    };
    assert!(matches!(
        Accounting::from_config(&[bad]),
        Err(AcctError::UnknownField { .. })
    ));
    let blocker = dir.path().join("file");
    fs::write(&blocker, "").unwrap();
    let unwritable = file_acct(&blocker.join("sub"), &[RecordType::Delivery]);
    assert!(matches!(
        Accounting::from_config(&[unwritable]),
        Err(AcctError::Io { .. })
    ));
}

#[test]
fn a_slow_target_blocks_record_instead_of_dropping() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    // The consumer reads nothing for 1 s: the pipe, the writer's buffer and the channel
    // fill up, so `record` must wait.
    let slow = AcctFile {
        record_fields: vec![(RecordType::Delivery, sel("rcpt"))],
        records: vec![RecordType::Delivery],
        ..acct(AcctTarget::Pipe(format!(
            "sleep 1; cat > '{}'",
            out.display()
        )))
    };
    let acct = Accounting::from_config(&[slow]).unwrap();
    let start = std::time::Instant::now();
    for i in 0..20_000 {
        acct.record(AcctRecord {
            rcpt: format!("u{i}@example.com"),
            ..d_sample()
        })
        .unwrap();
    }
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(500),
        "record never blocked ({:?})",
        start.elapsed()
    );
    acct.shutdown().unwrap();
    let l = lines(&out);
    assert_eq!(l.len(), 20_001);
    assert_eq!(l[20_000], "d,u19999@example.com");
    assert_eq!(acct.stats().dropped, 0);
}
