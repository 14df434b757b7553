//! Behaviour tests of the whole spool: durability across reopen, recovery from torn and
//! corrupt segments, reclamation, and failure handling.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::segment::fault::{Faulty, Plan};
use crate::segment::{self, SegmentIo};
use crate::*;

fn env(rcpts: &[&str]) -> Envelope {
    Envelope {
        mail_from: "sender@example.net".into(),
        recipients: rcpts.iter().map(|r| Recipient::new(*r)).collect(),
        vmta: Envelope::DEFAULT_VMTA.into(),
        job_id: Some("job-1".into()),
        env_id: None,
        ret: Some(Ret::Full),
        smtputf8: false,
        body_8bit: false,
        auth_user: Some("alice".into()),
        client_ip: Some("127.0.0.1".parse().unwrap()),
        client_helo: None,
        received_at_unix_ms: 1_700_000_000_000,
        facts: Default::default(),
    }
}

fn body(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| b'a' + ((i as u8).wrapping_add(seed) % 26))
        .collect()
}

/// Preallocation on (the default), with segments small enough that zero-filling them
/// costs the tests little.
fn opts() -> SpoolOptions {
    SpoolOptions {
        min_free_space: 0,
        segment_size: 4 << 20,
        ..SpoolOptions::default()
    }
}

/// The same without preallocation: segments are appended to and end at their last record.
fn append_opts() -> SpoolOptions {
    SpoolOptions {
        preallocate: false,
        ..opts()
    }
}

/// Both modes, for tests whose rules hold in each.
fn modes() -> [SpoolOptions; 2] {
    [opts(), append_opts()]
}

fn mode(o: &SpoolOptions) -> &'static str {
    if o.preallocate {
        "preallocated"
    } else {
        "appended"
    }
}

fn open(dir: &Path, o: SpoolOptions) -> (Spool, RecoveryReport) {
    Spool::open(dir, o).expect("open spool")
}

fn seg_path(dir: &Path, n: u64) -> PathBuf {
    segment::path(dir, n)
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len()
}

/// A tiny deterministic PRNG so failures are reproducible without a rand dependency.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

#[test]
fn handle_is_send_sync_clone() {
    fn assert<T: Send + Sync + Clone + 'static>() {}
    assert::<Spool>();
}

#[tokio::test]
async fn commit_read_and_reopen_roundtrip() {
    for o in modes() {
        commit_read_and_reopen(o).await;
    }
}

async fn commit_read_and_reopen(o: SpoolOptions) {
    let dir = tempfile::tempdir().unwrap();
    let (spool, report) = open(dir.path(), o.clone());
    assert_eq!(
        report,
        RecoveryReport {
            segments: 0,
            ..RecoveryReport::default()
        }
    );

    let mut sent = Vec::new();
    for i in 0..5u8 {
        let mut e = env(&["a@x.org", "b@y.org"]);
        e.mail_from = if i == 0 {
            String::new()
        } else {
            format!("s{i}@x.org")
        };
        let b = body(1000 + i as usize * 333, i);
        let id = spool.commit(e.clone(), b.clone()).await.unwrap();
        assert_eq!(spool.read_body(id).unwrap(), b);
        assert_eq!(*spool.envelope(id).unwrap(), e);
        sent.push((id, e, b));
    }
    let ids: Vec<_> = sent.iter().map(|s| s.0).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase");
    assert_eq!(spool.ids(), ids);
    let st = spool.stats();
    assert_eq!((st.messages, st.recipients, st.segments), (5, 10, 1));
    spool.shutdown();

    let (spool, report) = open(dir.path(), o.clone());
    assert_eq!(report.messages, 5);
    assert_eq!(report.recipients, 10);
    assert_eq!(report.torn_tail_bytes, 0);
    assert!(report.corrupt_records.is_empty());
    assert_eq!(spool.ids(), ids);
    for (id, e, b) in &sent {
        assert_eq!(spool.read_body(*id).unwrap(), *b);
        assert_eq!(*spool.envelope(*id).unwrap(), *e);
    }
    let next = spool
        .commit(env(&["c@z.org"]), b"x".to_vec())
        .await
        .unwrap();
    assert!(
        next > *ids.last().unwrap(),
        "ids keep increasing across restarts"
    );
    assert!(report.to_string().contains("5 message(s)"));
}

#[tokio::test]
async fn commit_rejects_envelope_without_recipients() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts());
    let err = spool.commit(env(&[]), b"x".to_vec()).await.unwrap_err();
    assert!(matches!(err, SpoolError::NoRecipients));
}

#[tokio::test]
async fn torn_tail_is_truncated_at_any_offset() {
    // Appended segments; see torn_record_before_zero_padding_is_zeroed for preallocated ones.
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), append_opts());
    let mut kept = Vec::new();
    for i in 0..3u8 {
        let b = body(700, i);
        kept.push((spool.commit(env(&["a@x.org"]), b.clone()).await.unwrap(), b));
    }
    let seg = seg_path(dir.path(), 1);
    let last_start = file_len(&seg);
    let lost = spool
        .commit(env(&["a@x.org"]), body(4000, 9))
        .await
        .unwrap();
    spool.shutdown();
    let pristine = fs::read(&seg).unwrap();
    let last_len = pristine.len() as u64 - last_start;

    let mut rng = Lcg(7);
    let mut cuts: Vec<u64> = vec![1, 4, 12, 13, 14, last_len - 1];
    cuts.extend((0..10).map(|_| 1 + rng.next(last_len - 1)));
    for cut in cuts {
        fs::write(&seg, &pristine[..(last_start + cut) as usize]).unwrap();
        let (spool, report) = open(dir.path(), append_opts());
        assert_eq!(report.torn_tail_bytes, cut, "cut {cut}");
        assert!(report.corrupt_records.is_empty(), "cut {cut}: {report}");
        assert_eq!(
            file_len(&seg),
            last_start,
            "file truncated back to last good record"
        );
        assert_eq!(spool.ids(), kept.iter().map(|k| k.0).collect::<Vec<_>>());
        assert!(spool.envelope(lost).is_none());
        for (id, b) in &kept {
            assert_eq!(spool.read_body(*id).unwrap(), *b);
        }
        spool.shutdown();
    }

    // A complete last record with a bad CRC (e.g. garbage written by a crash) is a torn
    // tail too.
    let mut bad = pristine.clone();
    let n = bad.len();
    bad[n - 10] ^= 0xff;
    fs::write(&seg, &bad).unwrap();
    let (spool, report) = open(dir.path(), append_opts());
    assert_eq!(report.torn_tail_bytes, last_len);
    assert_eq!(spool.ids().len(), 3);
    // And appending after a truncated tail works and survives another reopen.
    let after = spool
        .commit(env(&["b@x.org"]), b"after".to_vec())
        .await
        .unwrap();
    spool.shutdown();
    let (spool, report) = open(dir.path(), append_opts());
    assert_eq!(report.torn_tail_bytes, 0);
    assert_eq!(spool.read_body(after).unwrap(), b"after");
}

/// Record offsets of every message in segment 1, by id.
fn locations(spool: &Spool) -> Vec<(MessageId, u64, u64)> {
    let index = spool.inner.shared.read_index();
    index
        .iter()
        .map(|(id, e)| (*id, e.location.offset, e.location.len))
        .collect()
}

#[tokio::test]
async fn corruption_in_the_middle_is_reported_and_skipped() {
    // Each case damages the third of five records differently.
    type Damage = fn(&mut [u8], usize, usize);
    let cases: [(&str, Damage); 4] = [
        ("body byte", |d, off, len| d[off + len - 5] ^= 0x20),
        ("magic", |d, off, _| d[off] = b'X'),
        ("length grows", |d, off, _| {
            d[off + 4..off + 8].copy_from_slice(&u32::MAX.to_le_bytes())
        }),
        ("length shrinks", |d, off, _| {
            d[off + 4..off + 8].copy_from_slice(&20u32.to_le_bytes())
        }),
    ];
    for (o, (name, damage)) in modes()
        .into_iter()
        .flat_map(|o| cases.map(|c| (o.clone(), c)))
    {
        let name = format!("{name}, {}", mode(&o));
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = open(dir.path(), o.clone());
        let mut sent = Vec::new();
        for i in 0..5u8 {
            let b = body(300 + i as usize, i);
            sent.push((spool.commit(env(&["a@x.org"]), b.clone()).await.unwrap(), b));
        }
        let locs = locations(&spool);
        spool.shutdown();
        let (victim, off, len) = locs[2];
        let seg = seg_path(dir.path(), 1);
        let mut data = fs::read(&seg).unwrap();
        damage(&mut data, off as usize, len as usize);
        fs::write(&seg, &data).unwrap();

        let (spool, report) = open(dir.path(), o);
        assert_eq!(report.torn_tail_bytes, 0, "{name}");
        assert_eq!(report.corrupt_records.len(), 1, "{name}: {report}");
        let c = &report.corrupt_records[0];
        assert_eq!((c.segment, c.offset), (1, off), "{name}");
        assert!(
            report.to_string().contains("seg-0000000001.log@"),
            "{report}"
        );
        assert!(
            spool.envelope(victim).is_none(),
            "{name}: corrupt message must not appear"
        );
        assert_eq!(report.messages, 4);
        for (id, b) in sent.iter().filter(|s| s.0 != victim) {
            assert_eq!(spool.read_body(*id).unwrap(), *b, "{name}");
        }
        // The file is not modified: the evidence stays for the operator.
        spool.shutdown();
        assert_eq!(fs::read(&seg).unwrap(), data, "{name}");
    }
}

#[tokio::test]
async fn read_body_detects_corruption_after_open() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts());
    let id = spool.commit(env(&["a@x.org"]), body(500, 1)).await.unwrap();
    let (_, off, len) = locations(&spool)[0];
    let seg = seg_path(dir.path(), 1);
    let mut data = fs::read(&seg).unwrap();
    data[(off + len - 1) as usize] ^= 1;
    fs::write(&seg, &data).unwrap();
    assert!(matches!(
        spool.read_body(id),
        Err(SpoolError::Corrupt { segment: 1, .. })
    ));
}

#[tokio::test]
async fn corrupt_tail_of_an_older_segment_is_reported_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let o = SpoolOptions {
        segment_size: 1024,
        ..append_opts()
    };
    let (spool, _) = open(dir.path(), o.clone());
    let a = spool
        .commit(env(&["a@x.org"]), body(2000, 1))
        .await
        .unwrap();
    let b = spool
        .commit(env(&["a@x.org"]), body(2000, 2))
        .await
        .unwrap();
    spool.shutdown();
    assert!(seg_path(dir.path(), 2).exists());
    let seg1 = seg_path(dir.path(), 1);
    let len1 = file_len(&seg1);
    let f = fs::OpenOptions::new().write(true).open(&seg1).unwrap();
    f.set_len(len1 - 3).unwrap();
    drop(f);

    let (spool, report) = open(dir.path(), o);
    assert_eq!(report.torn_tail_bytes, 0);
    assert_eq!(report.corrupt_records.len(), 1, "{report}");
    assert_eq!(report.corrupt_records[0].segment, 1);
    assert!(spool.envelope(a).is_none());
    assert_eq!(spool.read_body(b).unwrap(), body(2000, 2));
    // Segment 1 has nothing live left: it is reclaimed, but renamed, not deleted, so the
    // damaged bytes stay available for inspection.
    assert!(!seg1.exists());
    let kept = dir.path().join("seg-0000000001.log.corrupt");
    assert_eq!(file_len(&kept), len1 - 3);
    assert_eq!(spool.stats().segments, 1);
    spool.shutdown();
    let (_spool, report) = open(dir.path(), SpoolOptions::default());
    assert!(
        report.corrupt_records.is_empty(),
        "quarantined file is not read again"
    );
}

#[tokio::test]
async fn removal_and_recipient_done_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts());
    let m1 = spool
        .commit(env(&["a@x.org", "b@y.org"]), b"one".to_vec())
        .await
        .unwrap();
    let m2 = spool
        .commit(env(&["a@X.org", "b@y.org"]), b"two".to_vec())
        .await
        .unwrap();
    let m3 = spool
        .commit(env(&["a@x.org", "b@y.org"]), b"three".to_vec())
        .await
        .unwrap();

    spool.remove(m1).await.unwrap();
    assert!(matches!(spool.remove(m1).await, Err(SpoolError::NotFound(id)) if id == m1));
    spool.recipient_done(m2, 0).await.unwrap();
    spool.recipient_done(m2, 0).await.unwrap(); // idempotent
    assert!(matches!(
        spool.recipient_done(m2, 2).await,
        Err(SpoolError::NoSuchRecipient { index: 2, .. })
    ));
    spool.recipient_done(m3, 1).await.unwrap();
    spool.recipient_done(m3, 0).await.unwrap(); // last one: m3 counts as removed
    assert!(spool.envelope(m3).is_none());
    assert!(matches!(
        spool.recipient_done(m3, 0).await,
        Err(SpoolError::NotFound(_))
    ));

    let check = |spool: &Spool| {
        assert_eq!(spool.ids(), vec![m2]);
        let e = spool.envelope(m2).unwrap();
        assert!(e.recipients[0].done && !e.recipients[1].done);
        let s = spool.stats();
        assert_eq!((s.messages, s.recipients, s.bytes), (1, 1, 3));
        assert_eq!(
            spool.domain_summary(),
            vec![DomainSummary {
                domain: "y.org".into(),
                recipients: 1,
                messages: 1,
                bytes: 3
            }]
        );
    };
    check(&spool);
    spool.shutdown();
    let (spool, report) = open(dir.path(), opts());
    assert_eq!((report.messages, report.recipients), (1, 1));
    check(&spool);
}

#[tokio::test]
async fn domain_summary_groups_by_recipient_domain() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts());
    let mut e = env(&["a@Big.com", "b@big.com", "c@small.org"]);
    spool.commit(e.clone(), vec![0; 10]).await.unwrap();
    e.vmta = "pool-b".into();
    e.recipients.truncate(1);
    spool.commit(e, vec![0; 5]).await.unwrap();
    let view: Vec<_> = spool
        .domain_summary()
        .into_iter()
        .map(|q| (q.domain, q.recipients, q.messages, q.bytes))
        .collect();
    assert_eq!(
        view,
        vec![("big.com".into(), 3, 2, 15), ("small.org".into(), 1, 1, 10)]
    );
}

fn segments_on_disk(dir: &Path) -> Vec<u64> {
    segment::list(dir).unwrap()
}

#[tokio::test]
async fn rotation_and_reclamation_go_oldest_first() {
    for o in modes() {
        rotation_and_reclamation(SpoolOptions {
            segment_size: 1024,
            ..o
        })
        .await;
    }
}

async fn rotation_and_reclamation(o: SpoolOptions) {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), o.clone());
    // With preallocation, wait for the next segment to be ready before each request, so
    // every rotation uses it and the segment numbers below are deterministic.
    let settle = || {
        if o.preallocate {
            wait_for_prepared(dir.path());
        }
    };
    let mut ids = Vec::new();
    for i in 0..6u8 {
        settle();
        // Larger than a segment: every message starts a new one.
        ids.push(
            spool
                .commit(env(&["a@x.org"]), body(1100, i))
                .await
                .unwrap(),
        );
    }
    assert_eq!(segments_on_disk(dir.path()), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(spool.stats().segments, 6);

    // Segment 2 is dead, but segment 1 (older) still holds a live message: keep both.
    settle();
    spool.remove(ids[1]).await.unwrap();
    assert_eq!(segments_on_disk(dir.path()), vec![1, 2, 3, 4, 5, 6, 7]);
    // Now 1 and 2 go; 3 has a live message and stops reclamation.
    settle();
    spool.remove(ids[0]).await.unwrap();
    assert_eq!(segments_on_disk(dir.path()), vec![3, 4, 5, 6, 7]);
    // Finishing a message through recipient_done reclaims too.
    settle();
    spool.recipient_done(ids[2], 0).await.unwrap();
    assert_eq!(segments_on_disk(dir.path()), vec![4, 5, 6, 7]);
    spool.shutdown();

    let (spool, report) = open(dir.path(), o.clone());
    assert_eq!(report.segments, 4);
    assert_eq!(spool.ids(), ids[3..].to_vec());
    for id in &ids[3..] {
        settle();
        spool.remove(*id).await.unwrap();
    }
    // Everything but the active segment is gone.
    let left = segments_on_disk(dir.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(spool.stats().segments, 1);
    spool.shutdown();

    // Ids stay unique even though every segment holding old ids is gone.
    let (spool, report) = open(dir.path(), o);
    assert_eq!(report.messages, 0);
    let fresh = spool
        .commit(env(&["a@x.org"]), b"x".to_vec())
        .await
        .unwrap();
    assert!(fresh > ids[5]);
}

#[tokio::test]
async fn below_min_free_space_refuses_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts());
    let kept = spool
        .commit(env(&["a@x.org"]), b"kept".to_vec())
        .await
        .unwrap();
    spool.shutdown();

    let full = SpoolOptions {
        min_free_space: u64::MAX,
        ..SpoolOptions::default()
    };
    let (spool, _) = open(dir.path(), full.clone());
    let before = fs::read(seg_path(dir.path(), 1)).unwrap();
    let records = spool.stats().records_written;
    let err = spool
        .commit(env(&["a@x.org"]), b"refused".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SpoolError::Full(FullCause::BelowMinFree { .. })),
        "{err}"
    );
    assert!(err.is_storage_unavailable());
    assert_eq!(
        fs::read(seg_path(dir.path(), 1)).unwrap(),
        before,
        "nothing written"
    );
    assert_eq!(spool.stats().records_written, records);
    assert_eq!(spool.ids(), vec![kept]);
    // Removals are still accepted when full: they are what frees space.
    spool.remove(kept).await.unwrap();
    assert!(spool.ids().is_empty());
}

type Plans = Arc<Mutex<Plan>>;

fn open_faulty(dir: &Path, o: SpoolOptions) -> (Spool, Plans) {
    let plan: Plans = Arc::default();
    let p = plan.clone();
    let wrap = Box::new(move |f: fs::File| {
        Box::new(Faulty {
            inner: Box::new(f),
            plan: p.clone(),
        }) as Box<dyn SegmentIo>
    });
    let hooks = crate::writer::Hooks {
        wrap,
        ..crate::writer::Hooks::plain()
    };
    let (spool, _) = Spool::open_with(dir, o, hooks).unwrap();
    (spool, plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_write_or_sync_fails_the_group_and_rolls_back() {
    for o in modes() {
        failed_write_or_sync(o).await;
    }
}

async fn failed_write_or_sync(o: SpoolOptions) {
    let dir = tempfile::tempdir().unwrap();
    let (spool, plan) = open_faulty(dir.path(), o.clone());
    let seg = seg_path(dir.path(), 1);
    let good = spool.commit(env(&["a@x.org"]), body(100, 1)).await.unwrap();
    let durable = file_len(&seg);

    // A short write followed by EIO: every caller in flight gets an Io error.
    plan.lock().unwrap().fail_writes_after = Some(50);
    let tasks: Vec<_> = (0..10u8)
        .map(|i| {
            let s = spool.clone();
            tokio::spawn(async move { s.commit(env(&["a@x.org"]), body(1000, i)).await })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert!(matches!(err, SpoolError::Io { .. }), "{err}");
    }
    assert_eq!(file_len(&seg), durable, "no half record left behind");

    // ENOSPC from the file system is reported as Full.
    *plan.lock().unwrap() = Plan {
        fail_writes_after: Some(0),
        write_errno: Some(28),
        ..Plan::default()
    };
    let err = spool
        .commit(env(&["a@x.org"]), body(10, 0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SpoolError::Full(FullCause::NoSpace(_))),
        "{err}"
    );

    // fdatasync failing (EIO) also rolls back the fully written group.
    *plan.lock().unwrap() = Plan {
        fail_sync: true,
        ..Plan::default()
    };
    let err = spool
        .commit(env(&["a@x.org"]), body(100, 2))
        .await
        .unwrap_err();
    assert!(matches!(err, SpoolError::Io { .. }), "{err}");
    assert_eq!(file_len(&seg), durable);

    // The process keeps going: later requests succeed.
    *plan.lock().unwrap() = Plan::default();
    let later = spool.commit(env(&["a@x.org"]), body(100, 3)).await.unwrap();
    assert_eq!(spool.ids(), vec![good, later]);
    spool.shutdown();

    let (spool, report) = open(dir.path(), o);
    assert_eq!(report.torn_tail_bytes, 0);
    assert!(report.corrupt_records.is_empty());
    assert_eq!(spool.ids(), vec![good, later]);
    assert_eq!(spool.read_body(later).unwrap(), body(100, 3));
}

#[tokio::test]
async fn failed_truncate_moves_to_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, plan) = open_faulty(dir.path(), append_opts());
    let good = spool.commit(env(&["a@x.org"]), body(100, 1)).await.unwrap();
    *plan.lock().unwrap() = Plan {
        fail_sync: true,
        fail_truncate: true,
        ..Plan::default()
    };
    assert!(spool.commit(env(&["a@x.org"]), body(100, 2)).await.is_err());
    *plan.lock().unwrap() = Plan::default();
    let later = spool.commit(env(&["a@x.org"]), body(100, 3)).await.unwrap();
    assert_eq!(segments_on_disk(dir.path()), vec![1, 2]);
    spool.shutdown();
    let (spool, _) = open(dir.path(), append_opts());
    // The unacknowledged record may come back (a duplicate, never a loss); the
    // acknowledged ones are there.
    assert!(spool.envelope(good).is_some() && spool.envelope(later).is_some());
}

/// Mounts a 1 MiB tmpfs for the duration of a test; `None` when not permitted.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount() -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        ok.then_some(Tmpfs { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[tokio::test]
async fn real_enospc_on_a_tiny_tmpfs() {
    for preallocate in [true, false] {
        let Some(fs_) = Tmpfs::mount() else {
            eprintln!(
                "NOTE: skipping real_enospc_on_a_tiny_tmpfs: mounting a tmpfs is not permitted here"
            );
            return;
        };
        real_enospc(&fs_, preallocate).await;
    }
}

async fn real_enospc(fs_: &Tmpfs, preallocate: bool) {
    let dir = fs_.dir.path().join("spool");
    let o = SpoolOptions {
        min_free_space: 0, // let the file system itself say ENOSPC
        segment_size: 128 << 10,
        max_pending: 64,
        preallocate,
    };
    let (spool, _) = open(&dir, o.clone());
    let mut acked = Vec::new();
    let err = loop {
        let b = body(50_000, acked.len() as u8);
        match spool.commit(env(&["a@x.org"]), b).await {
            Ok(id) => acked.push(id),
            Err(e) => break e,
        }
        assert!(acked.len() < 100, "1 MiB tmpfs never filled up");
    };
    assert!(
        matches!(err, SpoolError::Full(FullCause::NoSpace(_))),
        "{err}"
    );
    assert!(acked.len() > 5);
    assert_eq!(spool.ids(), acked);
    // Every segment on disk ends at a record boundary: reopen sees no torn tail.
    let lens: u64 = segments_on_disk(&dir)
        .iter()
        .map(|n| file_len(&seg_path(&dir, *n)))
        .sum();
    assert_eq!(lens, spool.stats().disk_bytes);

    // Removing messages reclaims segments and the spool accepts mail again.
    for id in &acked {
        spool.remove(*id).await.unwrap();
    }
    let again = spool
        .commit(env(&["a@x.org"]), body(50_000, 7))
        .await
        .unwrap();
    spool.shutdown();

    let (spool, report) = open(&dir, o);
    assert_eq!(report.torn_tail_bytes, 0, "{report}");
    assert!(report.corrupt_records.is_empty(), "{report}");
    assert_eq!(spool.ids(), vec![again]);
    assert_eq!(spool.read_body(again).unwrap(), body(50_000, 7));
    spool.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_serves_many_messages_per_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts());
    let before = spool.stats();
    let tasks: Vec<_> = (0..200u32)
        .map(|i| {
            let s = spool.clone();
            tokio::spawn(async move {
                let b = body(5000, i as u8);
                let id = s.commit(env(&["a@x.org"]), b.clone()).await.unwrap();
                (id, b)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        let (id, b) = t.await.unwrap();
        assert_eq!(spool.read_body(id).unwrap(), b);
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let st = spool.stats();
    let fsyncs = st.fsyncs - before.fsyncs;
    let records = st.records_written - before.records_written;
    eprintln!("group commit: {records} records, {fsyncs} fsyncs");
    assert_eq!(records, 200);
    assert!(fsyncs < records, "{fsyncs} fsyncs for {records} records");
}

#[tokio::test]
async fn second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts());
    let err = Spool::open(dir.path(), opts()).err().expect("locked");
    assert!(err.to_string().contains("locking spool directory"), "{err}");
    spool.shutdown();
    let (_spool, _) = open(dir.path(), opts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_queued_requests_then_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts());
    let other = spool.clone();
    let tasks: Vec<_> = (0..50u8)
        .map(|i| {
            let s = spool.clone();
            tokio::spawn(async move { s.commit(env(&["a@x.org"]), body(100, i)).await })
        })
        .collect();
    let mut acked = Vec::new();
    for t in tasks {
        acked.push(t.await.unwrap().unwrap());
    }
    spool.shutdown();
    assert!(matches!(
        other.commit(env(&["a@x.org"]), b"late".to_vec()).await,
        Err(SpoolError::Closed)
    ));
    drop(other);
    let (spool, report) = open(dir.path(), opts());
    assert_eq!(report.messages, 50);
    acked.sort();
    assert_eq!(spool.ids(), acked);
}

#[tokio::test]
async fn dropping_the_last_handle_flushes_in_flight_commits() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let (spool, _) = open(dir.path(), opts());
        spool
            .commit(env(&["a@x.org"]), b"x".to_vec())
            .await
            .unwrap()
    };
    let (spool, _) = open(dir.path(), opts());
    assert_eq!(spool.ids(), vec![id]);
}

#[tokio::test]
async fn foreign_files_in_the_spool_directory_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("README"), "operator notes").unwrap();
    fs::write(dir.path().join("seg-1.log"), "not ours").unwrap();
    let (spool, report) = open(dir.path(), opts());
    assert_eq!(report.segments, 0);
    spool
        .commit(env(&["a@x.org"]), b"x".to_vec())
        .await
        .unwrap();
}

#[tokio::test]
async fn random_damage_never_yields_a_wrong_message() {
    // Invariant under arbitrary byte damage: every message recovered is exactly what was
    // committed, and every message whose record bytes were untouched is recovered.
    let mut rng = Lcg(2024);
    for round in 0..40 {
        let o = modes()[round % 2].clone();
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = open(dir.path(), o.clone());
        let mut sent = Vec::new();
        for i in 0..12u8 {
            let mut e = env(&["a@x.org", "b@y.org"]);
            e.job_id = Some(format!("r{round}-{i}"));
            let b = body(50 + rng.next(400) as usize, i);
            sent.push((spool.commit(e.clone(), b.clone()).await.unwrap(), e, b));
        }
        let locs = locations(&spool);
        spool.shutdown();
        let seg = seg_path(dir.path(), 1);
        let mut data = fs::read(&seg).unwrap();
        // Where the records are, plus a little of a preallocated segment's zero padding.
        let records_end = locs.iter().map(|l| l.1 + l.2).max().unwrap();
        let span = (records_end + 64).min(data.len() as u64);
        let mut hit = Vec::new();
        for _ in 0..1 + rng.next(3) {
            let at = rng.next(span) as usize;
            data[at] ^= 1 + rng.next(255) as u8;
            hit.push(at as u64);
        }
        fs::write(&seg, &data).unwrap();

        let (spool, report) = open(dir.path(), o.clone());
        for (id, e, b) in &sent {
            let (_, off, len) = *locs.iter().find(|l| l.0 == *id).unwrap();
            let touched = hit.iter().any(|h| (off..off + len).contains(h));
            match spool.envelope(*id) {
                Some(got) => {
                    assert!(
                        !touched,
                        "round {round}: damaged message {id} was recovered"
                    );
                    assert_eq!(*got, *e);
                    assert_eq!(spool.read_body(*id).unwrap(), *b);
                }
                None => assert!(touched, "round {round}: intact message {id} lost: {report}"),
            }
        }
        // And the spool keeps working on top of whatever it found.
        let id = spool
            .commit(env(&["c@z.org"]), b"ok".to_vec())
            .await
            .unwrap();
        spool.shutdown();
        let (spool, report) = open(dir.path(), o);
        assert_eq!(report.torn_tail_bytes, 0, "round {round}: {report}");
        assert_eq!(spool.read_body(id).unwrap(), b"ok");
    }
}

#[tokio::test]
async fn unknown_record_kind_is_reported_and_skipped() {
    // Appends a record to the file, so the segment must end at its last record.
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), append_opts());
    let a = spool
        .commit(env(&["a@x.org"]), b"a".to_vec())
        .await
        .unwrap();
    spool.shutdown();
    let seg = seg_path(dir.path(), 1);
    let mut data = fs::read(&seg).unwrap();
    data.extend(crate::record::encode(&crate::record::Record::Unknown { kind: 99 }).unwrap());
    fs::write(&seg, &data).unwrap();
    let (spool, report) = open(dir.path(), append_opts());
    assert_eq!(report.corrupt_records.len(), 1);
    assert!(report.corrupt_records[0]
        .reason
        .contains("unknown record kind 99"));
    let b = spool
        .commit(env(&["a@x.org"]), b"b".to_vec())
        .await
        .unwrap();
    assert_eq!(spool.ids(), vec![a, b]);
}

#[tokio::test]
async fn crash_while_creating_a_segment_is_recovered() {
    // The newest segment exists but its header never made it: empty, or a torn header
    // (appended), or all zeros (a prepared file renamed into place just before the crash).
    let zeros = vec![0u8; opts().segment_size as usize];
    let mut cases = Vec::new();
    for o in modes() {
        cases.push((o.clone(), &b""[..]));
        cases.push((o, &b"PTRL\x10"[..]));
    }
    cases.push((opts(), &zeros[..]));
    for (o, stub) in cases {
        let name = format!("{}, stub of {} bytes", mode(&o), stub.len());
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = open(dir.path(), o.clone());
        let a = spool
            .commit(env(&["a@x.org"]), b"a".to_vec())
            .await
            .unwrap();
        spool.shutdown();
        fs::write(seg_path(dir.path(), 2), stub).unwrap();

        let (spool, report) = open(dir.path(), o.clone());
        let zero_stub = !stub.is_empty() && all_zero(stub);
        let torn = if zero_stub { 0 } else { stub.len() as u64 };
        assert_eq!(report.torn_tail_bytes, torn, "{name}");
        assert!(report.corrupt_records.is_empty(), "{name}");
        if o.preallocate {
            // Deterministic: the prepared segment is ready for the next rotation.
            wait_for_prepared(dir.path());
        }
        let b = spool
            .commit(env(&["a@x.org"]), b"b".to_vec())
            .await
            .unwrap();
        assert!(b > a);
        assert!(
            file_len(&seg_path(dir.path(), 2)) > 0,
            "{name}: header written to segment 2"
        );
        // With preallocation, an appended segment hands over to the prepared one as soon
        // as that is ready, so "b" lands in segment 3 unless segment 2 is preallocated.
        let segments = if o.preallocate && !zero_stub { 3 } else { 2 };
        if zero_stub {
            assert_eq!(file_len(&seg_path(dir.path(), 2)), stub.len() as u64);
        }
        spool.shutdown();
        let (spool, report) = open(dir.path(), o);
        assert_eq!((report.segments, report.messages), (segments, 2), "{name}");
        assert_eq!(report.torn_tail_bytes, 0, "{name}");
        assert_eq!(spool.read_body(b).unwrap(), b"b");
    }
}

// ---- Preallocated segments -------------------------------------------------------------

use crate::prepare::{PrepError, PREPARED_NAME, PREPARING_NAME};

fn prepared_path(dir: &Path) -> PathBuf {
    dir.join(PREPARED_NAME)
}

/// Waits until the background thread has a prepared segment ready (so the next rotation
/// uses it), or panics after 20 s.
fn wait_for_prepared(dir: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !prepared_path(dir).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "next segment never prepared"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The file is renamed just before the thread returns; let it finish.
    std::thread::sleep(std::time::Duration::from_millis(30));
}

/// Waits (bounded) until no background preparation is writing its file.
fn wait_while_preparing(dir: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while dir.join(PREPARING_NAME).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "preparation never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The file is renamed just before the thread returns; let it finish.
    std::thread::sleep(std::time::Duration::from_millis(30));
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

#[tokio::test]
async fn preallocated_segment_is_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts();
    let size = o.segment_size;
    let (spool, _) = open(dir.path(), o.clone());
    let seg = seg_path(dir.path(), 1);
    // Created at full size before the first commit; the header is the only record.
    assert_eq!(file_len(&seg), size);
    let mut sent = Vec::new();
    for i in 0..4u8 {
        let b = body(3000, i);
        sent.push((spool.commit(env(&["a@x.org"]), b.clone()).await.unwrap(), b));
        assert_eq!(
            file_len(&seg),
            size,
            "commits overwrite, the file does not grow"
        );
    }
    let end = locations(&spool).iter().map(|l| l.1 + l.2).max().unwrap();
    wait_for_prepared(dir.path());
    assert_eq!(file_len(&prepared_path(dir.path())), size);
    // Let the writer notice the prepared file (it polls before each group).
    spool.remove(sent[0].0).await.unwrap();
    let st = spool.stats();
    assert_eq!((st.segments, st.disk_bytes), (1, size));
    let end = end + 21; // the Remove record
    assert_eq!(st.preallocated_bytes, (size - end) + size);
    spool.shutdown();
    let data = fs::read(&seg).unwrap();
    assert!(all_zero(&data[end as usize..]));

    // Reopen: the padding is neither torn nor corrupt, and the file keeps its length.
    let (spool, report) = open(dir.path(), o.clone());
    assert_eq!(report.torn_tail_bytes, 0, "{report}");
    assert!(report.corrupt_records.is_empty(), "{report}");
    assert_eq!(file_len(&seg), size);
    let more = spool.commit(env(&["b@x.org"]), body(10, 9)).await.unwrap();
    let (_, off, _) = *locations(&spool).iter().find(|l| l.0 == more).unwrap();
    assert_eq!(off, end, "writing resumes at the logical end");
    for (id, b) in &sent[1..] {
        assert_eq!(spool.read_body(*id).unwrap(), *b);
    }
    // The prepared file was adopted again, not rewritten.
    assert!(prepared_path(dir.path()).exists());
    assert!(!dir.path().join(PREPARING_NAME).exists());
}

#[tokio::test]
async fn torn_record_before_zero_padding_is_zeroed() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts();
    let (spool, _) = open(dir.path(), o.clone());
    let mut kept = Vec::new();
    for i in 0..3u8 {
        let b = body(700, i);
        kept.push((spool.commit(env(&["a@x.org"]), b.clone()).await.unwrap(), b));
    }
    let lost = spool
        .commit(env(&["a@x.org"]), body(4000, 9))
        .await
        .unwrap();
    let (_, last_start, last_len) = *locations(&spool).iter().find(|l| l.0 == lost).unwrap();
    spool.shutdown();
    let seg = seg_path(dir.path(), 1);
    let pristine = fs::read(&seg).unwrap();
    assert_eq!(pristine.len() as u64, o.segment_size);
    let (start, len) = (last_start as usize, last_len as usize);

    // A write cut short: a prefix of the record, zeros after it (the preallocated padding).
    // Also a complete record with a bad CRC, and stray non-zero bytes in the padding.
    let mut rng = Lcg(11);
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    let mut cuts: Vec<usize> = vec![1, 4, 12, 13, 14, len - 1];
    cuts.extend((0..8).map(|_| 1 + rng.next(len as u64 - 1) as usize));
    for cut in cuts {
        let mut d = pristine.clone();
        d[start + cut..start + len].fill(0);
        cases.push((format!("cut at {cut}"), d));
    }
    let mut d = pristine.clone();
    d[start + len - 10] ^= 0xff;
    cases.push(("bad CRC".into(), d));
    let mut d = pristine.clone();
    d[start..start + len].fill(0);
    d[start + 5000] = 0x42;
    cases.push(("garbage in the padding".into(), d));

    for (name, damaged) in cases {
        fs::write(&seg, &damaged).unwrap();
        let dirty = damaged.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1) - start;
        let (spool, report) = open(dir.path(), o.clone());
        assert_eq!(report.torn_tail_bytes, dirty as u64, "{name}: {report}");
        assert!(report.corrupt_records.is_empty(), "{name}: {report}");
        assert_eq!(spool.ids(), kept.iter().map(|k| k.0).collect::<Vec<_>>());
        assert!(spool.envelope(lost).is_none(), "{name}");
        // The length is kept (writes stay overwrites) and the torn bytes are zeros now.
        let on_disk = fs::read(&seg).unwrap();
        assert_eq!(on_disk.len(), pristine.len(), "{name}");
        assert_eq!(&on_disk[..start], &pristine[..start], "{name}");
        assert!(all_zero(&on_disk[start..]), "{name}: torn bytes not zeroed");

        // A shorter record written there later leaves nothing stale behind it, and is read
        // back after another reopen without any report.
        let after = spool
            .commit(env(&["b@x.org"]), b"after".to_vec())
            .await
            .unwrap();
        spool.shutdown();
        let (spool, report) = open(dir.path(), o.clone());
        assert_eq!(report.torn_tail_bytes, 0, "{name}: {report}");
        assert!(report.corrupt_records.is_empty(), "{name}: {report}");
        assert_eq!(spool.read_body(after).unwrap(), b"after", "{name}");
        for (id, b) in &kept {
            assert_eq!(spool.read_body(*id).unwrap(), *b, "{name}");
        }
        spool.shutdown();
    }
}

#[tokio::test]
async fn corruption_before_the_padding_of_an_older_segment_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let o = SpoolOptions {
        segment_size: 64 << 10,
        ..opts()
    };
    let (spool, _) = open(dir.path(), o.clone());
    let a = spool
        .commit(env(&["a@x.org"]), body(3000, 1))
        .await
        .unwrap();
    let (_, off, len) = locations(&spool)[0];
    // Fill segment 1 past its size so the next group rotates.
    spool
        .commit(env(&["a@x.org"]), body(70_000, 2))
        .await
        .unwrap();
    let b = spool.commit(env(&["a@x.org"]), body(100, 3)).await.unwrap();
    assert_eq!(segments_on_disk(dir.path()), vec![1, 2]);
    spool.shutdown();
    // Damage the first message: bad CRC, valid records follow it (corrupt, skipped).
    let seg1 = seg_path(dir.path(), 1);
    let mut data = fs::read(&seg1).unwrap();
    data[(off + len - 1) as usize] ^= 1;
    fs::write(&seg1, &data).unwrap();
    let (spool, report) = open(dir.path(), o);
    assert_eq!(report.torn_tail_bytes, 0);
    assert_eq!(report.corrupt_records.len(), 1, "{report}");
    assert_eq!(
        (
            report.corrupt_records[0].segment,
            report.corrupt_records[0].offset
        ),
        (1, off)
    );
    assert!(spool.envelope(a).is_none());
    assert_eq!(spool.read_body(b).unwrap(), body(100, 3));
}

#[tokio::test]
async fn rotation_across_preallocated_segments_and_reclamation() {
    let dir = tempfile::tempdir().unwrap();
    let o = SpoolOptions {
        segment_size: 64 << 10,
        ..opts()
    };
    let size = o.segment_size;
    let (spool, _) = open(dir.path(), o.clone());
    let mut sent = Vec::new();
    for i in 0..20u8 {
        // Make sure the next segment is ready, so every rotation uses a prepared one.
        wait_for_prepared(dir.path());
        let b = body(10_000, i);
        sent.push((spool.commit(env(&["a@x.org"]), b.clone()).await.unwrap(), b));
    }
    let segs = segments_on_disk(dir.path());
    assert!(segs.len() >= 4, "{segs:?}");
    // A group that did not fit in the rest of a segment went to the next one instead of
    // growing the file: every segment kept its preallocated size.
    for n in &segs {
        assert_eq!(file_len(&seg_path(dir.path(), *n)), size, "segment {n}");
    }
    let st = spool.stats();
    assert_eq!(st.disk_bytes, size * segs.len() as u64);
    spool.shutdown();

    let (spool, report) = open(dir.path(), o.clone());
    assert_eq!(report.torn_tail_bytes, 0, "{report}");
    assert!(report.corrupt_records.is_empty(), "{report}");
    assert_eq!(report.segments, segs.len());
    for (id, b) in &sent {
        assert_eq!(spool.read_body(*id).unwrap(), *b);
    }
    // Reclamation deletes preallocated segments like any other, oldest first.
    for (id, _) in &sent[..sent.len() - 1] {
        spool.remove(*id).await.unwrap();
    }
    let left = segments_on_disk(dir.path());
    assert_eq!(
        left,
        vec![*segs.last().unwrap()],
        "only the active segment is left"
    );
    assert_eq!(spool.stats().segments, 1);
    assert_eq!(spool.stats().disk_bytes, size);
    let last = sent.last().unwrap();
    assert_eq!(spool.read_body(last.0).unwrap(), last.1);
}

/// Hooks whose preallocation fails with ENOSPC while `fail` is set.
fn open_with_failing_prepare(dir: &Path, o: SpoolOptions, fail: Arc<AtomicBool>) -> Spool {
    let hooks = crate::writer::Hooks {
        prepare: Arc::new(move |job, cancel| {
            if fail.load(std::sync::atomic::Ordering::Relaxed) {
                Err(PrepError::Io(std::io::Error::from_raw_os_error(28)))
            } else {
                crate::prepare::zero_fill(job, cancel)
            }
        }),
        ..crate::writer::Hooks::plain()
    };
    Spool::open_with(dir, o, hooks).unwrap().0
}

use std::sync::atomic::AtomicBool;

#[tokio::test]
async fn failed_preallocation_falls_back_to_appending() {
    let dir = tempfile::tempdir().unwrap();
    let o = SpoolOptions {
        segment_size: 32 << 10,
        ..opts()
    };
    let fail = Arc::new(AtomicBool::new(true));
    let spool = open_with_failing_prepare(dir.path(), o.clone(), fail.clone());
    let mut sent = Vec::new();
    for i in 0..8u8 {
        let b = body(10_000, i);
        sent.push((spool.commit(env(&["a@x.org"]), b.clone()).await.unwrap(), b));
    }
    // Appended segments: each file ends at its last record.
    let segs = segments_on_disk(dir.path());
    assert!(segs.len() >= 2, "{segs:?}");
    let st = spool.stats();
    assert_eq!(st.preallocated_bytes, 0);
    let lens: u64 = segs
        .iter()
        .map(|n| file_len(&seg_path(dir.path(), *n)))
        .sum();
    assert_eq!(lens, st.disk_bytes);
    assert!(file_len(&seg_path(dir.path(), 1)) < o.segment_size + 11_000);
    assert!(!prepared_path(dir.path()).exists());
    assert!(!dir.path().join(PREPARING_NAME).exists());

    // Once preparing works again, the next rotation moves to a preallocated segment.
    // (The preparation runs in the background: a rotation while it is still running
    // appends once more, so keep committing, letting each preparation finish, until a
    // full-size segment is in use. On a busy machine that can take a rotation or two.)
    fail.store(false, std::sync::atomic::Ordering::Relaxed);
    let appended_until = *segs.last().unwrap();
    let mut preallocated_in_use = false;
    for i in 8..40u8 {
        let b = body(10_000, i);
        sent.push((spool.commit(env(&["a@x.org"]), b.clone()).await.unwrap(), b));
        wait_while_preparing(dir.path());
        let newest = *segments_on_disk(dir.path()).last().unwrap();
        if newest > appended_until && file_len(&seg_path(dir.path(), newest)) == o.segment_size {
            preallocated_in_use = true;
            break;
        }
    }
    assert!(
        preallocated_in_use,
        "no preallocated segment after preparing recovered: {:?}",
        segments_on_disk(dir.path())
    );
    spool.shutdown();

    let (spool, report) = open(dir.path(), o);
    assert_eq!(report.torn_tail_bytes, 0, "{report}");
    assert!(report.corrupt_records.is_empty(), "{report}");
    for (id, b) in &sent {
        assert_eq!(spool.read_body(*id).unwrap(), *b);
    }
}

#[tokio::test]
async fn preallocation_larger_than_a_tiny_tmpfs_falls_back_to_appending() {
    let Some(fs_) = Tmpfs::mount() else {
        eprintln!("NOTE: skipping: mounting a tmpfs is not permitted here");
        return;
    };
    let dir = fs_.dir.path().join("spool");
    // Bigger than the whole file system: preallocation hits ENOSPC at once.
    let o = SpoolOptions {
        min_free_space: 0,
        segment_size: 2 << 20,
        ..SpoolOptions::default()
    };
    let (spool, _) = open(&dir, o.clone());
    assert!(!prepared_path(&dir).exists());
    assert!(!dir.join(PREPARING_NAME).exists(), "partial file removed");
    let b = body(100_000, 1);
    let id = spool.commit(env(&["a@x.org"]), b.clone()).await.unwrap();
    let seg = seg_path(&dir, 1);
    assert!(file_len(&seg) < 110_000, "segment 1 is appended");
    assert_eq!(spool.stats().preallocated_bytes, 0);
    spool.shutdown();
    let (spool, report) = open(&dir, o);
    assert_eq!(report.torn_tail_bytes, 0, "{report}");
    assert_eq!(spool.read_body(id).unwrap(), b);
    spool.shutdown();
}

#[tokio::test]
async fn stray_prepared_files_at_open() {
    // An interrupted preparation is deleted; a complete one is used for the next segment.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(PREPARING_NAME), b"half").unwrap();
    fs::write(prepared_path(dir.path()), vec![0u8; 100_000]).unwrap();
    let (spool, _) = open(dir.path(), opts());
    // (The next segment is being prepared under that name again by now.)
    let stale = fs::read(dir.path().join(PREPARING_NAME)).ok();
    assert_ne!(stale.as_deref(), Some(&b"half"[..]), "stale file deleted");
    assert_eq!(
        file_len(&seg_path(dir.path(), 1)),
        100_000,
        "adopted as segment 1"
    );
    let id = spool
        .commit(env(&["a@x.org"]), b"x".to_vec())
        .await
        .unwrap();
    spool.shutdown();
    let (spool, report) = open(dir.path(), opts());
    assert_eq!(report.torn_tail_bytes, 0);
    assert_eq!(spool.read_body(id).unwrap(), b"x");
    spool.shutdown();

    // With preallocation off, a prepared file is deleted to give the space back.
    fs::write(prepared_path(dir.path()), vec![0u8; 1000]).unwrap();
    let (spool, _) = open(dir.path(), append_opts());
    assert!(!prepared_path(dir.path()).exists());
    // The existing segment keeps its padding and is still written in place.
    let id2 = spool
        .commit(env(&["a@x.org"]), b"y".to_vec())
        .await
        .unwrap();
    assert_eq!(file_len(&seg_path(dir.path(), 1)), 100_000);
    spool.shutdown();
    let (spool, report) = open(dir.path(), append_opts());
    assert_eq!(report.torn_tail_bytes, 0);
    assert_eq!(spool.ids(), vec![id, id2]);
}

#[tokio::test]
async fn failed_zeroing_and_truncate_move_to_a_new_segment() {
    // Preallocated: a failed write is normally zeroed again; when writes and truncation
    // both keep failing, the segment is abandoned like an appended one.
    let dir = tempfile::tempdir().unwrap();
    let (spool, plan) = open_faulty(dir.path(), opts());
    let good = spool.commit(env(&["a@x.org"]), body(100, 1)).await.unwrap();
    *plan.lock().unwrap() = Plan {
        fail_writes_after: Some(40),
        fail_truncate: true,
        ..Plan::default()
    };
    assert!(spool.commit(env(&["a@x.org"]), body(100, 2)).await.is_err());
    *plan.lock().unwrap() = Plan::default();
    let later = spool.commit(env(&["a@x.org"]), body(100, 3)).await.unwrap();
    assert_eq!(segments_on_disk(dir.path()), vec![1, 2]);
    spool.shutdown();
    let (spool, _) = open(dir.path(), opts());
    assert_eq!(spool.ids(), vec![good, later]);
}

#[tokio::test]
async fn failed_write_in_a_preallocated_segment_is_zeroed_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, plan) = open_faulty(dir.path(), opts());
    let seg = seg_path(dir.path(), 1);
    let good = spool.commit(env(&["a@x.org"]), body(100, 1)).await.unwrap();
    let before = fs::read(&seg).unwrap();
    // The whole group is written, then fdatasync fails: the bytes are zeroed again.
    plan.lock().unwrap().fail_sync = true;
    assert!(spool
        .commit(env(&["a@x.org"]), body(3000, 2))
        .await
        .is_err());
    assert_eq!(fs::read(&seg).unwrap(), before, "zeros again, same length");
    *plan.lock().unwrap() = Plan::default();
    let later = spool
        .commit(env(&["a@x.org"]), b"short".to_vec())
        .await
        .unwrap();
    spool.shutdown();
    let (spool, report) = open(dir.path(), opts());
    assert_eq!(report.torn_tail_bytes, 0, "{report}");
    assert!(report.corrupt_records.is_empty(), "{report}");
    assert_eq!(spool.ids(), vec![good, later]);
    assert_eq!(spool.read_body(later).unwrap(), b"short");
}
