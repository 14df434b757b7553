//! A full disk loses Signals events that were still in memory: that must be counted (the
//! `lost` metric) and logged, never silent (issue 17 item 7). Every event emitted is either
//! in an event file after recovery or counted as lost. Runs on a 1 MiB tmpfs the test
//! mounts (we run as root; skipped with a message where mounting is not permitted).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::UNIX_EPOCH;

use petrel_events::{Event, EventKind, EventSpool, SpoolConfig};

fn event(n: u64) -> Event {
    Event {
        rcpt_to: Some(format!("r{n}@example.net")),
        ..Event::new(EventKind::Reception, n, format!("m{n}"), UNIX_EPOCH)
    }
}

struct Tmpfs(tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

fn lines_in(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .map(|d| d.iter().filter(|&&b| b == b'\n').count())
        .sum()
}

#[test]
fn events_lost_to_a_full_disk_are_counted() {
    let mnt = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    }
    let mnt = Tmpfs(mnt);
    let dir = mnt.0.path().join("events");
    let spool = EventSpool::open(SpoolConfig::new(&dir)).unwrap();
    for n in 0..50 {
        spool.emit(&event(n)).unwrap();
    }
    spool.rotate().unwrap();
    assert_eq!(spool.lost(), 0);

    // Someone takes every byte that is left; the next events cannot be written.
    let ballast = mnt.0.path().join("ballast");
    {
        let mut f = fs::File::create(&ballast).unwrap();
        for size in [64 << 10, 4 << 10, 512, 1] {
            let chunk = vec![0u8; size];
            while f.write_all(&chunk).is_ok() {}
        }
        let _ = f.sync_all();
    }
    for n in 50..150 {
        spool.emit(&event(n)).unwrap();
    }
    spool.rotate().unwrap();
    let lost = spool.lost();
    assert!(lost > 0, "the full disk lost nothing?");
    spool.close().unwrap();

    // Space comes back: recovery keeps every complete line; with the ones counted as lost
    // that is every event emitted.
    fs::remove_file(&ballast).unwrap();
    let spool = EventSpool::open(SpoolConfig::new(&dir)).unwrap();
    spool.close().unwrap();
    let kept = lines_in(&dir) as u64;
    assert_eq!(kept + lost, 150, "kept {kept}, lost {lost}");
}
