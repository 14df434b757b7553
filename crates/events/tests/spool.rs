//! Event files: naming, rotation by size and age, durability and crash recovery.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};

use petrel_events::{Event, EventKind, EventSpool, SpoolConfig};

fn event(n: u64) -> Event {
    Event {
        rcpt_to: Some(format!("r{n}@example.net")),
        ..Event::new(EventKind::Reception, n, format!("m{n}"), UNIX_EPOCH)
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// The article's form: `sp1-` + 16 upper-case hex digits + `.json` (`sp1-0000000000003FBD.json`).
fn is_closed_name(n: &str) -> bool {
    n.len() == "sp1-0000000000003FBD.json".len()
        && n.starts_with("sp1-")
        && n.ends_with(".json")
        && n[4..20]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

fn all_lines(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for n in names(dir) {
        let data = fs::read_to_string(dir.join(&n)).unwrap();
        assert!(data.ends_with('\n'), "{n} must end with a newline");
        out.extend(data.lines().map(str::to_owned));
    }
    out
}

#[test]
fn close_publishes_one_named_file_with_every_line_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = EventSpool::open(SpoolConfig::new(tmp.path())).unwrap();
    for n in 0..100 {
        spool.emit(&event(n)).unwrap();
    }
    spool.close().unwrap();
    let files = names(tmp.path());
    assert_eq!(files.len(), 1);
    assert!(is_closed_name(&files[0]), "{files:?}");
    let expected: Vec<String> = (0..100).map(|n| event(n).to_ingest_json()).collect();
    assert_eq!(all_lines(tmp.path()), expected);
    assert!(
        spool.emit(&event(1)).is_err(),
        "emit after close must fail loudly"
    );
}

#[test]
fn rotates_by_size_and_names_sort_oldest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let line_len = event(0).to_ingest_json().len() as u64 + 1;
    // Room for ten lines (later lines are up to 3 bytes longer), not for eleven.
    let config = SpoolConfig {
        max_file_bytes: line_len * 10 + 40,
        ..SpoolConfig::new(tmp.path())
    };
    let spool = EventSpool::open(config).unwrap();
    for n in 0..95 {
        spool.emit(&event(n)).unwrap();
    }
    spool.close().unwrap();
    let files = names(tmp.path());
    assert_eq!(files.len(), 10, "{files:?}");
    assert!(files.iter().all(|f| is_closed_name(f)));
    // Name order is write order: concatenating in name order gives the events in order.
    let expected: Vec<String> = (0..95).map(|n| event(n).to_ingest_json()).collect();
    assert_eq!(all_lines(tmp.path()), expected);
}

#[test]
fn files_never_exceed_the_size_limit() {
    // A limit that is not a whole number of lines: the file closes before the line that
    // would overshoot it, so every file fits one upload batch.
    let tmp = tempfile::tempdir().unwrap();
    let line_len = event(0).to_ingest_json().len() as u64 + 1;
    let max = line_len * 10 - 1;
    let config = SpoolConfig {
        max_file_bytes: max,
        ..SpoolConfig::new(tmp.path())
    };
    let spool = EventSpool::open(config).unwrap();
    for n in 0..95 {
        spool.emit(&event(n)).unwrap();
    }
    spool.close().unwrap();
    for f in names(tmp.path()) {
        let len = std::fs::metadata(tmp.path().join(&f)).unwrap().len();
        assert!(len <= max, "{f} holds {len} bytes, limit {max}");
    }
    assert_eq!(all_lines(tmp.path()).len(), 95);
}

#[test]
fn rotates_by_age_while_open_file_stays_tmp() {
    let tmp = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        max_file_age: Duration::from_millis(300),
        ..SpoolConfig::new(tmp.path())
    };
    let spool = EventSpool::open(config).unwrap();
    spool.emit(&event(1)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let files = names(tmp.path());
    assert_eq!(files.len(), 1);
    assert!(
        files[0].ends_with(".json.tmp"),
        "an open file is not visible to the uploader: {files:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !names(tmp.path()).iter().all(|f| is_closed_name(f)) {
        assert!(Instant::now() < deadline, "age rotation did not happen");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(all_lines(tmp.path()), vec![event(1).to_ingest_json()]);
    // An idle spool creates no empty files.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(names(tmp.path()).len(), 1);
    drop(spool);
}

#[test]
fn rotate_makes_events_visible_immediately() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = EventSpool::open(SpoolConfig::new(tmp.path())).unwrap();
    spool.emit(&event(1)).unwrap();
    spool.rotate().unwrap();
    spool.emit(&event(2)).unwrap();
    spool.rotate().unwrap();
    assert_eq!(names(tmp.path()).len(), 2);
    assert_eq!(
        all_lines(tmp.path()),
        vec![event(1).to_ingest_json(), event(2).to_ingest_json()]
    );
}

#[test]
fn crash_leftover_tmp_is_recovered_up_to_the_last_complete_line() {
    let tmp = tempfile::tempdir().unwrap();
    let a = event(1).to_ingest_json();
    let b = event(2).to_ingest_json();
    fs::write(
        tmp.path().join("sp1-00000000000000aa.json.tmp"),
        format!("{a}\n{b}\n{{\"msys\":{{\"mess"),
    )
    .unwrap();
    fs::write(tmp.path().join("sp1-00000000000000ab.json.tmp"), "{\"torn").unwrap();
    fs::write(tmp.path().join("unrelated.txt"), "x").unwrap();
    let spool = EventSpool::open(SpoolConfig::new(tmp.path())).unwrap();
    spool.close().unwrap();
    assert_eq!(
        names(tmp.path()),
        vec![
            "sp1-00000000000000aa.json".to_owned(),
            "unrelated.txt".to_owned()
        ]
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("sp1-00000000000000aa.json")).unwrap(),
        format!("{a}\n{b}\n")
    );
}

#[test]
fn emit_blocks_instead_of_dropping_when_the_channel_is_full() {
    let tmp = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        channel_capacity: 1,
        max_file_bytes: 4096,
        ..SpoolConfig::new(tmp.path())
    };
    let spool = std::sync::Arc::new(EventSpool::open(config).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let spool = spool.clone();
            std::thread::spawn(move || {
                for n in 0..500 {
                    spool.emit(&event(t * 1000 + n)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    spool.close().unwrap();
    let mut got = all_lines(tmp.path());
    got.sort();
    let mut want: Vec<String> = (0..4)
        .flat_map(|t| (0..500).map(move |n| event(t * 1000 + n).to_ingest_json()))
        .collect();
    want.sort();
    assert_eq!(got, want);
}
