//! File naming, roll-over, move-to, delete-after and pipe targets, with an injected clock.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;
use petrel_accounting::{AcctError, AcctRecord, AcctWriter};
use petrel_config::{AcctFile, AcctTarget, RecordType};

const DAY1_2359: u64 = 1_549_670_399; // 2019-02-08 23:59:59 UTC

fn numbered(i: usize) -> AcctRecord {
    AcctRecord {
        rcpt: format!("user{i:05}@example.com"),
        ..d_sample()
    }
}

fn small_cfg(dir: &std::path::Path) -> AcctFile {
    AcctFile {
        record_fields: vec![(RecordType::Delivery, sel("rcpt"))],
        ..file_acct(dir, &[RecordType::Delivery])
    }
}

#[test]
fn file_name_is_dated_and_sequenced_and_header_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = AcctWriter::new(&small_cfg(dir.path())).unwrap();
    w.start(at(D_TIME)).unwrap();
    // The header is written as soon as the file is opened.
    assert_eq!(files(dir.path()), ["acct-2019-02-08-0000.csv"]);
    assert_eq!(
        lines(&dir.path().join("acct-2019-02-08-0000.csv")),
        ["type,rcpt"]
    );
    w.write_at(&numbered(1), at(D_TIME)).unwrap();
    w.close().unwrap();
    assert_eq!(
        lines(&dir.path().join("acct-2019-02-08-0000.csv")),
        ["type,rcpt", "d,user00001@example.com"]
    );
    // A restart the same day never reopens an existing file: it takes the next number.
    let mut w = AcctWriter::new(&small_cfg(dir.path())).unwrap();
    w.write_at(&numbered(2), at(D_TIME + 60)).unwrap();
    w.close().unwrap();
    assert_eq!(
        files(dir.path()),
        ["acct-2019-02-08-0000.csv", "acct-2019-02-08-0001.csv"]
    );
}

#[test]
fn max_size_rolls_over_to_the_next_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    // Header "type,rcpt\r\n" = 11 bytes; each row "d,userNNNNN@example.com\r\n" = 25 bytes.
    let cfg = AcctFile {
        max_size: 100,
        ..small_cfg(dir.path())
    };
    let mut w = AcctWriter::new(&cfg).unwrap();
    for i in 0..10 {
        w.write_at(&numbered(i), at(D_TIME)).unwrap();
    }
    w.close().unwrap();
    let names = files(dir.path());
    assert_eq!(
        names,
        [
            "acct-2019-02-08-0000.csv",
            "acct-2019-02-08-0001.csv",
            "acct-2019-02-08-0002.csv",
            "acct-2019-02-08-0003.csv",
        ]
    );
    let mut seen = Vec::new();
    for n in &names {
        let p = dir.path().join(n);
        assert!(fs::metadata(&p).unwrap().len() <= 100, "{n} too big");
        let l = lines(&p);
        assert_eq!(l[0], "type,rcpt", "{n}");
        seen.extend(l[1..].iter().cloned());
    }
    let expect: Vec<String> = (0..10)
        .map(|i| format!("d,user{i:05}@example.com"))
        .collect();
    assert_eq!(seen, expect);
}

#[test]
fn midnight_starts_a_new_dated_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = AcctWriter::new(&small_cfg(dir.path())).unwrap();
    w.write_at(&numbered(1), at(DAY1_2359)).unwrap();
    w.write_at(&numbered(2), at(DAY1_2359 + 2)).unwrap();
    w.write_at(&numbered(3), at(DAY1_2359 + 3)).unwrap();
    w.close().unwrap();
    assert_eq!(
        files(dir.path()),
        ["acct-2019-02-08-0000.csv", "acct-2019-02-09-0000.csv"]
    );
    assert_eq!(
        lines(&dir.path().join("acct-2019-02-08-0000.csv")),
        ["type,rcpt", "d,user00001@example.com"]
    );
    assert_eq!(
        lines(&dir.path().join("acct-2019-02-09-0000.csv")),
        [
            "type,rcpt",
            "d,user00002@example.com",
            "d,user00003@example.com"
        ]
    );
}

#[test]
fn idle_file_is_closed_at_midnight_by_tick() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let cfg = AcctFile {
        move_to: Some(archive.clone()),
        ..small_cfg(dir.path())
    };
    let mut w = AcctWriter::new(&cfg).unwrap();
    w.write_at(&numbered(1), at(DAY1_2359)).unwrap();
    w.tick(at(DAY1_2359)).unwrap();
    w.flush().unwrap();
    assert_eq!(files(dir.path()), ["acct-2019-02-08-0000.csv"]);
    w.tick(at(DAY1_2359 + 1)).unwrap();
    assert!(w.current_path().is_none());
    assert!(files(dir.path()).is_empty());
    assert_eq!(
        lines(&archive.join("acct-2019-02-08-0000.csv")),
        ["type,rcpt", "d,user00001@example.com"]
    );
}

#[test]
fn move_interval_with_move_to_rotates_and_moves_closed_files() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let cfg = AcctFile {
        move_to: Some(archive.clone()),
        move_interval: Duration::from_secs(3600),
        ..small_cfg(dir.path())
    };
    let ten = 1_549_620_600; // 2019-02-08 10:10:00
    let mut w = AcctWriter::new(&cfg).unwrap();
    w.write_at(&numbered(1), at(ten)).unwrap();
    w.write_at(&numbered(2), at(ten + 40 * 60)).unwrap(); // 10:50, same hour
    w.write_at(&numbered(3), at(ten + 55 * 60)).unwrap(); // 11:05, next hour
    w.flush().unwrap();
    assert_eq!(files(&archive), ["acct-2019-02-08-0000.csv"]);
    assert_eq!(
        lines(&archive.join("acct-2019-02-08-0000.csv")),
        [
            "type,rcpt",
            "d,user00001@example.com",
            "d,user00002@example.com"
        ]
    );
    // The new file's number follows the moved one.
    assert_eq!(files(dir.path()), ["acct-2019-02-08-0001.csv"]);
    w.close().unwrap();
    assert_eq!(
        files(&archive),
        ["acct-2019-02-08-0000.csv", "acct-2019-02-08-0001.csv"]
    );
    assert_eq!(
        lines(&archive.join("acct-2019-02-08-0001.csv")),
        ["type,rcpt", "d,user00003@example.com"]
    );
}

#[test]
fn move_interval_is_ignored_without_move_to() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AcctFile {
        move_interval: Duration::from_secs(60),
        ..small_cfg(dir.path())
    };
    let mut w = AcctWriter::new(&cfg).unwrap();
    w.write_at(&numbered(1), at(D_TIME - 3600)).unwrap();
    w.write_at(&numbered(2), at(D_TIME)).unwrap();
    w.close().unwrap();
    assert_eq!(files(dir.path()), ["acct-2019-02-08-0000.csv"]);
}

#[test]
fn rotate_closes_now_and_next_row_opens_next_number() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = AcctWriter::new(&small_cfg(dir.path())).unwrap();
    w.write_at(&numbered(1), at(D_TIME)).unwrap();
    w.rotate(at(D_TIME)).unwrap();
    w.write_at(&numbered(2), at(D_TIME)).unwrap();
    w.close().unwrap();
    assert_eq!(
        files(dir.path()),
        ["acct-2019-02-08-0000.csv", "acct-2019-02-08-0001.csv"]
    );
}

#[test]
fn delete_after_removes_old_files_only_without_move_to() {
    let dir = tempfile::tempdir().unwrap();
    for n in [
        "acct-2019-01-30-0000.csv",
        "acct-2019-01-31-0003.csv",
        "other.csv",
    ] {
        fs::write(dir.path().join(n), "type\r\n").unwrap();
    }
    // 8d: a file of 2019-01-30 ended 2019-01-31 00:00, i.e. more than 8 days before
    // 2019-02-08 21:54; the one of 01-31 ended on 02-01, less than 8 days ago.
    let mut w = AcctWriter::new(&small_cfg(dir.path())).unwrap();
    w.start(at(D_TIME)).unwrap();
    w.close().unwrap();
    assert_eq!(
        files(dir.path()),
        [
            "acct-2019-01-31-0003.csv",
            "acct-2019-02-08-0000.csv",
            "other.csv"
        ]
    );
}

#[cfg(unix)]
#[test]
fn files_are_not_world_readable_unless_asked() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut w = AcctWriter::new(&small_cfg(dir.path())).unwrap();
    w.start(at(D_TIME)).unwrap();
    let mode = fs::metadata(w.current_path().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o007, 0, "{mode:o}");
}

#[test]
fn sync_yes_flushes_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AcctFile {
        sync: true,
        ..small_cfg(dir.path())
    };
    let mut w = AcctWriter::new(&cfg).unwrap();
    assert!(w.syncs());
    w.write_at(&numbered(1), at(D_TIME)).unwrap();
    w.flush().unwrap();
    assert_eq!(
        lines(w.current_path().unwrap()),
        ["type,rcpt", "d,user00001@example.com"]
    );
}

#[test]
fn rows_are_buffered_until_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = AcctWriter::new(&small_cfg(dir.path())).unwrap();
    w.write_at(&numbered(1), at(D_TIME)).unwrap();
    let path = w.current_path().unwrap().to_path_buf();
    assert_eq!(lines(&path), ["type,rcpt"]);
    w.flush().unwrap();
    assert_eq!(lines(&path), ["type,rcpt", "d,user00001@example.com"]);
}

#[test]
fn records_of_other_types_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = AcctWriter::new(&small_cfg(dir.path())).unwrap();
    assert!(!w.accepts(RecordType::Bounce));
    w.write_at(&b_sample(), at(D_TIME)).unwrap();
    assert!(
        w.current_path().is_none(),
        "no file for a record it does not take"
    );
}

#[test]
fn a_failing_file_target_keeps_rows_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocked");
    fs::write(&blocker, "a file where a directory should be").unwrap();
    let cfg = AcctFile {
        max_size: 1 << 20,
        ..small_cfg(&blocker.join("sub"))
    };
    let mut w = AcctWriter::new(&cfg).unwrap();
    w.max_backlog = 60;
    let e = w.write_at(&numbered(1), at(D_TIME)).unwrap_err();
    assert!(matches!(e, AcctError::Io { .. }), "{e}");
    w.write_at(&numbered(2), at(D_TIME)).unwrap_err();
    // Past the backlog cap, rows are discarded, and that is reported.
    let e = w.write_at(&numbered(3), at(D_TIME)).unwrap_err();
    assert!(matches!(e, AcctError::Dropped { dropped: 1, .. }), "{e}");
    // Once the directory can be created, the kept rows are written.
    fs::remove_file(&blocker).unwrap();
    w.flush().unwrap();
    let path = w.current_path().unwrap().to_path_buf();
    w.close().unwrap();
    assert_eq!(
        lines(&path),
        [
            "type,rcpt",
            "d,user00001@example.com",
            "d,user00002@example.com"
        ]
    );
}

#[test]
fn pipe_target_gets_header_then_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("piped.csv");
    let cfg = AcctFile {
        record_fields: vec![(RecordType::Delivery, sel("rcpt,dsnDiag"))],
        records: vec![RecordType::Delivery],
        ..acct(AcctTarget::Pipe(format!("cat > '{}'", out.display())))
    };
    let mut w = AcctWriter::new(&cfg).unwrap();
    w.start(at(D_TIME)).unwrap();
    for i in 0..3 {
        w.write_at(&numbered(i), at(D_TIME)).unwrap();
    }
    w.flush().unwrap();
    w.write_at(&numbered(3), at(D_TIME)).unwrap();
    w.close().unwrap();
    assert_eq!(
        lines(&out),
        [
            "type,rcpt,dsnDiag",
            "d,user00000@example.com,smtp;250 DATA ok",
            "d,user00001@example.com,smtp;250 DATA ok",
            "d,user00002@example.com,smtp;250 DATA ok",
            "d,user00003@example.com,smtp;250 DATA ok",
        ]
    );
}

#[test]
fn pipe_is_restarted_after_the_retry_interval_with_a_new_header() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("piped.txt");
    // Reads the header and one row, then exits.
    let cmd = format!(
        "IFS= read -r h; printf '%s\\n' \"$h\" >> '{0}'; IFS= read -r r; printf '%s\\n' \"$r\" >> '{0}'",
        out.display()
    );
    let cfg = AcctFile {
        record_fields: vec![(RecordType::Delivery, sel("rcpt"))],
        records: vec![RecordType::Delivery],
        ..acct(AcctTarget::Pipe(cmd))
    };
    let mut w = AcctWriter::new(&cfg).unwrap();
    w.retry_interval = Duration::from_secs(60);
    w.write_at(&numbered(1), at(D_TIME)).unwrap();
    w.flush().unwrap();
    // Wait until the command has exited and the writer noticed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match w.tick(at(D_TIME + 1)) {
            Err(AcctError::Pipe { context, .. }) => {
                assert_eq!(context, "executing");
                break;
            }
            Ok(()) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < deadline, "pipe command did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Within the retry interval the row waits in memory.
    w.write_at(&numbered(2), at(D_TIME + 30)).unwrap();
    w.flush().unwrap();
    let trimmed = |v: Vec<String>| -> Vec<String> {
        v.iter()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect()
    };
    let read = || {
        trimmed(
            fs::read_to_string(&out)
                .unwrap()
                .lines()
                .map(String::from)
                .collect(),
        )
    };
    assert_eq!(read(), ["type,rcpt", "d,user00001@example.com"]);
    // After it, the command is started again: header first, then the waiting row.
    w.tick(at(D_TIME + 62)).unwrap();
    w.close().unwrap();
    assert_eq!(
        read(),
        [
            "type,rcpt",
            "d,user00001@example.com",
            "type,rcpt",
            "d,user00002@example.com"
        ]
    );
}
