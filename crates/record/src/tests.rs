//! The projections of each outcome kind, field by field: what the accounting row and the
//! Signals event say, and that the counters follow.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use petrel_accounting::DsnAction;
use petrel_config::{Config, RecordType};
use petrel_spool::{Envelope, MessageId, Recipient as SpooledRcpt, Spool, SpoolOptions};

use crate::sinks::{accounting, signals};
use crate::*;

const CONFIG: &str = "host-name mta.test\n\
    <virtual-mta v1>\nsmtp-source-host 192.0.2.10 v1.mta.test\n</virtual-mta>\n\
    <virtual-mta-pool p>\nvirtual-mta v1\n</virtual-mta-pool>\n\
    <signals>\napi-key 0123456789abcdef0123456789abcdef01234567\ncustomer-id 7\nupload false\n</signals>\n";

fn config(text: &str) -> Config {
    petrel_config::parse_str(text, std::path::Path::new("/virtual/petrel.conf"))
        .unwrap()
        .config
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// A spool holding one message to the pool `p`, received at t=1000 s.
fn spooled(dir: &std::path::Path) -> (Spool, MessageId, Envelope) {
    let (spool, _) = Spool::open(
        dir,
        SpoolOptions {
            min_free_space: 0,
            preallocate: false,
            ..SpoolOptions::default()
        },
    )
    .unwrap();
    let env = Envelope {
        mail_from: "news@sender.example".into(),
        recipients: vec![
            SpooledRcpt::new("Ana@Example.net"),
            SpooledRcpt {
                orcpt: Some("rfc822;bo@example.net".into()),
                ..SpooledRcpt::new("bo@example.net")
            },
        ],
        vmta: "p".into(),
        job_id: Some("spring".into()),
        env_id: Some("E1".into()),
        ret: None,
        smtputf8: false,
        body_8bit: false,
        auth_user: Some("alice".into()),
        client_ip: Some("198.51.100.4".parse().unwrap()),
        client_helo: Some("client.example".into()),
        received_at_unix_ms: 1_000_000,
        facts: Default::default(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = rt
        .block_on(spool.commit(env.clone(), b"Subject: x\r\n\r\nbody\r\n".to_vec()))
        .unwrap();
    (spool, id, env)
}

fn line(config: &Config, o: &Outcome<'_>) -> serde_json::Value {
    let e = signals::event(config, o).expect("an event");
    serde_json::from_str(&e.to_ingest_json()).unwrap()
}

#[test]
fn a_bounce_from_a_pool_member_projects_to_a_b_row_and_an_inband_event() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, id, env) = spooled(dir.path());
    let c = config(CONFIG);
    let esmtp = vec!["PIPELINING".to_string(), "STARTTLS".to_string()];
    let o = Outcome::Attempted(Attempted {
        rcpt: Recipient {
            spool: &spool,
            id,
            env: &env,
            index: 1,
        },
        route: Route {
            domain: "example.net",
            vmta: "v1",
            remote: Some(Remote {
                name: "mx.example.net",
                ip: "203.0.113.5".parse().unwrap(),
            }),
            session: Some(Session {
                source_ip: "192.0.2.10".parse().unwrap(),
                esmtp: &esmtp,
                tls: Some(("TLSv1.3", "TLS13_AES_128_GCM_SHA256")),
            }),
        },
        kind: AttemptKind::Bounced,
        at: at(1_060),
        status: "5.1.1",
        diag: "smtp;550 5.1.1 <bo@example.net> no such user",
        category: "bad-mailbox",
        class: 10,
        attempts: 2,
    });
    let r = accounting::row(&o);
    assert_eq!(r.record_type, RecordType::Bounce);
    assert_eq!(r.dsn_action, Some(DsnAction::Failed));
    assert_eq!(
        (r.orig.as_str(), r.rcpt.as_str(), r.orcpt.as_str()),
        (
            "news@sender.example",
            "bo@example.net",
            "rfc822;bo@example.net"
        )
    );
    assert_eq!(
        r.dsn_status.map(|s| s.to_string()).as_deref(),
        Some("5.1.1")
    );
    assert_eq!(r.bounce_cat, "bad-mailbox");
    assert_eq!(r.src_mta, "client.example (198.51.100.4)");
    assert_eq!(r.dsn_mta, "mx.example.net (203.0.113.5)");
    assert_eq!(
        (r.vmta.as_str(), r.vmta_pool.as_str(), r.queue.as_str()),
        ("v1", "p", "example.net/v1")
    );
    assert_eq!(r.dlv_esmtp_available, esmtp);
    assert_eq!(r.dlv_tls_protocol, "TLSv1.3");
    assert_eq!(
        r.dlv_source_ip,
        Some("192.0.2.10".parse::<IpAddr>().unwrap())
    );
    assert_eq!(r.time_queued, Some(at(1_000)));
    assert_eq!(r.total_seconds_queued, Some(60));
    assert_eq!(
        (
            r.job_id.as_str(),
            r.env_id.as_str(),
            r.rcv_smtp_user.as_str()
        ),
        ("spring", "E1", "alice")
    );

    let v = line(&c, &o);
    let e = &v["msys"]["message_event"];
    assert_eq!(e["type"], "inband");
    assert_eq!(e["message_id"], format!("{id}0001"));
    assert_eq!(e["rcpt_to"], "bo@example.net");
    assert_eq!(e["binding"], "v1");
    assert_eq!(e["binding_group"], "p");
    assert_eq!(e["sending_ip"], "192.0.2.10");
    assert_eq!(e["ip_address"], "203.0.113.5");
    assert_eq!(e["outbound_tls"], "1");
    assert_eq!(e["bounce_class"], "10");
    assert_eq!(e["error_code"], "550");
    assert_eq!(e["raw_reason"], "550 5.1.1 <bo@example.net> no such user");
    assert_eq!(e["num_retries"], "2");
    assert_eq!(e["campaign_id"], "spring");
    assert_eq!(e["customer_id"], "7");
    assert_eq!(e["queue_time"], "60000");
    assert_eq!(e["msg_size"], "20");
    assert_eq!(e["open_tracking"], false);
}

#[test]
fn policy_class_deliveries_deferrals_and_reception_map_to_their_types() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, id, env) = spooled(dir.path());
    let c = config(CONFIG);
    let rcpt = Recipient {
        spool: &spool,
        id,
        env: &env,
        index: 0,
    };
    let route = Route {
        domain: "example.net",
        vmta: "v1",
        remote: None,
        session: None,
    };
    let attempt = |kind, class| {
        Outcome::Attempted(Attempted {
            rcpt,
            route,
            kind,
            at: at(1_001),
            status: "5.7.1",
            diag: "smtp;550 5.7.1 suppressed",
            category: "policy-related",
            class,
            attempts: 0,
        })
    };
    let typed = |o: &Outcome<'_>| line(&c, o)["msys"]["message_event"]["type"].clone();
    assert_eq!(typed(&attempt(AttemptKind::Bounced, 25)), "rejection");
    assert_eq!(typed(&attempt(AttemptKind::Deferred, 70)), "tempfail");
    let delivered = attempt(AttemptKind::Delivered, 0);
    let v = line(&c, &delivered);
    assert_eq!(v["msys"]["message_event"]["type"], "delivery");
    assert!(v["msys"]["message_event"].get("bounce_class").is_none());
    // Without a connection the vmta's configured source address stands in.
    assert_eq!(v["msys"]["message_event"]["sending_ip"], "192.0.2.10");
    let r = accounting::row(&delivered);
    assert_eq!(
        (r.record_type, r.dsn_action, r.bounce_cat.as_str()),
        (RecordType::Delivery, Some(DsnAction::Relayed), "")
    );
    assert_eq!(
        accounting::row(&attempt(AttemptKind::Deferred, 70)).dsn_action,
        Some(DsnAction::Delayed)
    );

    let received = Outcome::Received(Received {
        rcpt,
        at: at(1_000),
    });
    let r = accounting::row(&received);
    assert_eq!(r.record_type, RecordType::Receipt);
    assert_eq!((r.rcpt.as_str(), r.vmta.as_str()), ("Ana@Example.net", "p"));
    assert_eq!(r.rcv_source_ip, Some("198.51.100.4".parse().unwrap()));
    let v = line(&c, &received);
    let e = &v["msys"]["message_event"];
    assert_eq!(e["type"], "reception");
    assert_eq!(e["rcpt_to"], "ana@example.net");
    assert_eq!(e["raw_rcpt_to"], "Ana@Example.net");
    assert_eq!(e["binding_group"], "p");
    assert!(e.get("binding").is_none(), "a pool has no binding yet");
    assert_eq!(e["remote_addr"], "198.51.100.4");
    assert_eq!(e["recv_method"], "esmtp");

    // No <signals>: no event at all; the row is the same.
    let plain = config("host-name mta.test\n");
    assert!(signals::event(&plain, &received).is_none());
    // A queue that could not be reached has a tq row and no event.
    let tq = Outcome::QueueDeferred(QueueDeferred {
        domain: "example.net",
        vmta: "v1",
        remote: None,
        error: "no MX host accepted a connection",
        status: "4.4.1",
        at: at(1_002),
    });
    let r = accounting::row(&tq);
    assert_eq!(
        (r.record_type, r.queue.as_str(), r.vmta.as_str()),
        (RecordType::TransientQueue, "example.net/v1", "v1")
    );
    assert!(signals::event(&c, &tq).is_none());
}

#[test]
fn returned_mail_projects_to_rb_rs_and_f_rows_and_thin_events() {
    let c = config(CONFIG);
    let headers = vec![("original-envelope-id".to_string(), "E9".to_string())];
    let report = |failed, copy| {
        Outcome::Reported(RemoteReport {
            at: at(2_000),
            failed,
            to: "news+tok@bounces.example",
            client: ("mx.isp.example", Some("203.0.113.9".parse().unwrap())),
            recipient: "Ana@Example.net",
            status: Some("5.1.1"),
            diagnostic: Some("550 5.1.1 user unknown"),
            reply_code: Some(550),
            remote_mta: Some("mx.example.net"),
            reporting_mta: Some("mx.isp.example"),
            category: "bad-mailbox",
            class: 10,
            original_headers: &headers,
            campaign: Some("spring"),
            copy,
        })
    };
    let copy = Some(Attribution {
        message_id: "0123456789abcdef0000",
        subaccount: 3,
    });
    let rb = accounting::row(&report(true, copy));
    assert_eq!(rb.record_type, RecordType::RemoteBounce);
    assert_eq!(rb.dsn_action, None);
    assert_eq!(rb.dsn_diag, "smtp;550 5.1.1 user unknown");
    assert_eq!(rb.src_mta, "mx.isp.example (203.0.113.9)");
    assert_eq!((rb.env_id.as_str(), rb.format.as_str()), ("E9", "dsn"));
    let rs = accounting::row(&report(false, copy));
    assert_eq!(
        (rs.record_type, rs.dsn_action),
        (RecordType::RemoteStatus, Some(DsnAction::Delayed))
    );
    assert!(
        signals::event(&c, &report(false, copy)).is_none(),
        "delays: no event"
    );
    assert!(
        signals::event(&c, &report(true, None)).is_none(),
        "no copy: no event"
    );
    let v = line(&c, &report(true, copy));
    let e = &v["msys"]["message_event"];
    assert_eq!(e["type"], "outofband");
    assert_eq!(e["message_id"], "0123456789abcdef0000");
    assert_eq!(e["subaccount_id"], 3);
    assert_eq!(e["msg_from"], "news+tok@bounces.example");
    assert_eq!(e["raw_reason"], "550 5.1.1 user unknown");
    assert_eq!(e["customer_id"], "7");

    let complaint = Outcome::Complained(Complaint {
        at: at(2_001),
        to: "fbl@fbl.example",
        recipient: "bo@example.net",
        feedback_type: "abuse",
        user_agent: Some("ISP-FBL/1.0"),
        reported_by: Some("isp.example"),
        source_ip: Some("192.0.2.10"),
        original_headers: &headers,
        campaign: None,
        copy,
    });
    let f = accounting::row(&complaint);
    assert_eq!(f.record_type, RecordType::FeedbackLoop);
    assert_eq!(
        (
            f.feedback_type.as_str(),
            f.format.as_str(),
            f.reporting_mta.as_str()
        ),
        ("abuse", "arf", "isp.example")
    );
    assert_eq!(f.dlv_source_ip, Some("192.0.2.10".parse().unwrap()));
    let v = line(&c, &complaint);
    let e = &v["msys"]["message_event"];
    assert_eq!(e["type"], "feedback");
    assert_eq!(e["fbtype"], "abuse");
    assert_eq!(e["report_to"], "fbl@fbl.example");
}

#[test]
fn the_recorder_counts_every_outcome() {
    let c = config("host-name mta.test\n");
    let recorder = Recorder::new(Vec::new());
    let tq = |status| {
        Outcome::QueueDeferred(QueueDeferred {
            domain: "d",
            vmta: "v",
            remote: None,
            error: "e",
            status,
            at: at(1),
        })
    };
    recorder.record(&c, &tq("4.4.1"));
    recorder.record(&c, &tq("4.4.3"));
    assert_eq!(recorder.counters().queue_deferred, 2);
    assert_eq!(recorder.counters().delivered, 0);
}
