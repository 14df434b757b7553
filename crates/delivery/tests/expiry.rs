//! `bounce-after 4d12h` with an injected clock: a message whose destination never answers
//! is retried on `retry-after`, and bounces as `message-expired` (with a DSN to its sender)
//! once the clock passes 4 days 12 hours — without the test waiting four days.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use petrel_accounting::Accounting;
use petrel_config::LiveConfig;
use petrel_delivery::{Engine, ManualClock, Parts};
use petrel_record::{AccountingSink, Recorder};
use petrel_spool::{Envelope, Recipient, Spool, SpoolOptions};

fn acct_text(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("acct-") {
            out.push_str(&std::fs::read_to_string(e.path()).unwrap());
        }
    }
    out
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn undeliverable_mail_bounces_when_bounce_after_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens, every attempt is refused at once.
    let text = format!(
        "<domain dead.example>\n  smtp-hosts [127.0.0.1]:1\n  retry-after 10m\n</domain>\n<acct-file {}/acct.csv>\n  records d,b,t,tq\n</acct-file>\n",
        dir.path().display()
    );
    let config = Arc::new(
        petrel_config::parse_str(&text, &dir.path().join("petrel.conf"))
            .unwrap()
            .config,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let clock = ManualClock::new(start);
    let (spool, _) = Spool::open(
        &dir.path().join("spool"),
        SpoolOptions {
            min_free_space: 0,
            ..SpoolOptions::default()
        },
    )
    .unwrap();
    let accounting = Arc::new(Accounting::from_config(&config.acct_files).unwrap());
    let engine = rt.block_on(async {
        Engine::start(Parts {
            recorder: Recorder::new(vec![Arc::new(AccountingSink::new(accounting.clone()))]),
            clock: Arc::new(clock.clone()),
            tick: Duration::from_millis(20),
            ..Parts::new(spool.clone(), LiveConfig::new(config.clone()))
        })
        .unwrap()
    });
    let envelope = Envelope {
        mail_from: "sender@dead.example".into(),
        recipients: vec![Recipient::new("rcpt@dead.example")],
        vmta: Envelope::DEFAULT_VMTA.into(),
        pool_member: None,
        job_id: Some("j".into()),
        env_id: None,
        ret: None,
        smtputf8: false,
        body_8bit: false,
        auth_user: None,
        client_ip: None,
        client_helo: None,
        received_at_unix_ms: start
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
        facts: Default::default(),
    };
    let id = rt
        .block_on(spool.commit(envelope, b"Subject: expiring\r\n\r\nbody\r\n".to_vec()))
        .unwrap();
    engine.enqueue(id);

    // First attempt fails: a queue-level transient record, and the queue waits 10 minutes.
    // (The record is written just before the queue takes its wait: wait for both.)
    wait_until("the first failed attempt and the queue's wait", 20, || {
        accounting.flush().unwrap();
        acct_text(dir.path()).contains("\r\ntq,")
            && engine
                .queues()
                .first()
                .is_some_and(|q| q.retry_until.is_some())
    });
    let q = engine.queues();
    assert_eq!(q[0].recipients, 1);
    // Four days later: retried (the clock moved past every 10-minute wait), not yet expired.
    clock.advance(Duration::from_secs(4 * 86_400));
    std::thread::sleep(Duration::from_millis(300));
    accounting.flush().unwrap();
    assert!(
        !acct_text(dir.path()).contains("\r\nb,"),
        "bounced too early:\n{}",
        acct_text(dir.path())
    );
    assert!(spool.envelope(id).is_some());

    // Past 4d12h: the next attempt bounces it as expired.
    clock.advance(Duration::from_secs(12 * 3_600 + 60));
    engine.schedule("dead.example");
    wait_until("the expiry bounce", 20, || {
        accounting.flush().unwrap();
        acct_text(dir.path()).contains("message-expired")
    });
    let text = acct_text(dir.path());
    let row = text.lines().find(|l| l.starts_with("b,")).unwrap();
    assert!(
        row.contains("rcpt@dead.example") && row.contains("4.4.7") && row.contains("j"),
        "{row}"
    );
    wait_until("the message to leave the spool", 10, || {
        spool.envelope(id).is_none()
    });
    // The DSN to the sender is now queued (it will wait for dead.example like anything else).
    wait_until("the DSN", 10, || {
        spool.ids().iter().any(|i| {
            spool.envelope(*i).is_some_and(|e| {
                e.mail_from.is_empty() && e.recipients[0].address == "sender@dead.example"
            })
        })
    });
    drop(engine);
    accounting.shutdown().unwrap();
}
