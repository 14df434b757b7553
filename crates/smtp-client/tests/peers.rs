//! The client against real SMTP servers over loopback: Postfix's smtp-sink and a Python
//! aiosmtpd sink that records what it received.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use common::{opts, PySink, SmtpSink};
use petrel_smtp_client::{
    ClientError, Connection, Notify, Phase, RecipientSpec, Ret, TlsMode, Transaction,
    TransactionNote,
};

fn tx<'a>(from: &'a str, rcpts: &'a [RecipientSpec<'a>], size: u64) -> Transaction<'a> {
    Transaction {
        mail_from: from,
        recipients: rcpts,
        ret: None,
        envid: None,
        smtputf8: false,
        body_8bit: false,
        size,
    }
}

fn codes(replies: &[petrel_smtp_client::Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.code).collect()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn three_recipients_pipelined_through_smtp_sink_with_dsn() {
    let sink = SmtpSink::start();
    let mut conn = Connection::open(sink.addr, "localhost", &opts())
        .await
        .unwrap();
    assert!(conn.extensions().pipelining);
    assert!(conn.extensions().dsn);
    assert_eq!(conn.greeting().code, 220);
    assert_eq!(conn.peer_addr(), sink.addr);

    let notify = [Notify::Success, Notify::Failure];
    let rcpts = [
        RecipientSpec {
            address: "a@example.org",
            notify: Some(&notify),
            orcpt: Some("rfc822;a+x@example.org"),
        },
        RecipientSpec::new("b@example.org"),
        RecipientSpec::new("c@example.net"),
    ];
    let body = b"Subject: three\r\n\r\nhello\r\n";
    let mut t = tx("sender@example.com", &rcpts, body.len() as u64);
    t.ret = Some(Ret::Hdrs);
    t.envid = Some("env 1");
    let out = conn.send(&t, body).await.unwrap();
    assert_eq!(out.mail.code, 250);
    assert_eq!(codes(&out.rcpts), [250, 250, 250]);
    assert_eq!(out.data.as_ref().unwrap().code, 250);
    assert!((0..3).all(|i| out.delivered(i)));
    assert!(out.notes.is_empty());
    conn.quit().await;

    let dump = sink.dump();
    assert!(
        dump.contains("X-Mail-Args: <sender@example.com> RET=HDRS ENVID=env+201\n"),
        "{dump}"
    );
    assert!(
        dump.contains(
            "X-Rcpt-Args: <a@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bx@example.org\n"
        ),
        "{dump}"
    );
    assert!(dump.contains("X-Rcpt-Args: <b@example.org>\n"));
    assert!(dump.contains("X-Rcpt-Args: <c@example.net>\n"));
    assert!(dump.contains("hello\n"));
}

#[tokio::test]
async fn one_connection_carries_many_transactions() {
    let sink = SmtpSink::start();
    let mut conn = Connection::open(sink.addr, "localhost", &opts())
        .await
        .unwrap();
    let local = conn.local_addr();
    let body: Vec<u8> = b"Subject: reuse\r\n\r\n"
        .iter()
        .copied()
        .chain(
            std::iter::repeat_n(b'x', 76)
                .chain(*b"\r\n")
                .cycle()
                .take(10_000),
        )
        .collect();
    let rcpts = [
        RecipientSpec::new("a@example.org"),
        RecipientSpec::new("b@example.org"),
        RecipientSpec::new("c@example.org"),
    ];
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        let out = conn
            .send(&tx("s@example.com", &rcpts, body.len() as u64), &body)
            .await
            .unwrap();
        assert!((0..3).all(|i| out.delivered(i)));
        assert!(conn.is_reusable());
        assert_eq!(conn.local_addr(), local);
    }
    let took = started.elapsed();
    conn.quit().await;
    eprintln!(
        "{n} transactions x 3 recipients x {} bytes on one connection: {:?} ({:.0} msg/s)",
        body.len(),
        took,
        f64::from(n) / took.as_secs_f64()
    );
    assert_eq!(sink.dump().matches("X-Mail-Args:").count(), n as usize);
}

#[tokio::test]
async fn exact_content_dot_stuffing_and_final_crlf() {
    for flags in [&["--pipelining"][..], &[]] {
        let sink = PySink::start(flags);
        let mut conn = Connection::open(sink.addr, "localhost", &opts())
            .await
            .unwrap();
        assert_eq!(conn.extensions().pipelining, !flags.is_empty());
        let rcpts = [RecipientSpec::new("ok@example.org")];
        let body = b"Subject: dots\r\n\r\n.leading\r\n..two\r\n.\r\nmiddle . dot\r\n.";
        let out = conn
            .send(&tx("s@example.com", &rcpts, body.len() as u64), body)
            .await
            .unwrap();
        assert_eq!(out.data.unwrap().code, 250);
        let mut want = body.to_vec();
        want.extend_from_slice(b"\r\n");
        assert_eq!(sink.content(0), want);

        // A body that already ends in CRLF gets no second one.
        let body = b"Subject: plain\r\n\r\nend\r\n";
        conn.send(&tx("s@example.com", &rcpts, 20), body)
            .await
            .unwrap();
        assert_eq!(sink.content(1), body);
        conn.quit().await;
    }
}

#[tokio::test]
async fn mixed_recipient_outcomes_in_order() {
    for flags in [&["--pipelining"][..], &[]] {
        let sink = PySink::start(flags);
        let mut conn = Connection::open(sink.addr, "localhost", &opts())
            .await
            .unwrap();
        let rcpts = [
            RecipientSpec::new("one@example.org"),
            RecipientSpec::new("t-busy@example.org"),
            RecipientSpec::new("r-gone@example.org"),
            RecipientSpec::new("two@example.org"),
        ];
        let out = conn
            .send(&tx("s@example.com", &rcpts, 10), b"x\r\n")
            .await
            .unwrap();
        assert_eq!(codes(&out.rcpts), [250, 450, 550, 250], "{flags:?}");
        assert_eq!(out.rcpts[2].lines, ["no such user"]);
        assert_eq!(
            (0..4).map(|i| out.delivered(i)).collect::<Vec<_>>(),
            [true, false, false, true]
        );
        assert_eq!(out.recipient_reply(1).code, 450);
        assert_eq!(out.recipient_reply(3).code, 250);
        let data = sink.events("data");
        assert_eq!(
            strings(&data[0]["rcpts"]),
            ["one@example.org", "two@example.org"]
        );

        // All recipients refused: no DATA; the next transaction starts with RSET.
        let bad = [RecipientSpec::new("r-a@example.org")];
        let out = conn
            .send(&tx("s@example.com", &bad, 10), b"x\r\n")
            .await
            .unwrap();
        assert_eq!(codes(&out.rcpts), [550]);
        assert_eq!(out.data, None);
        let out = conn
            .send(&tx("s@example.com", &rcpts[..1], 10), b"y\r\n")
            .await
            .unwrap();
        assert!(out.delivered(0));
        assert_eq!(sink.events("rset").len(), 1);
        assert_eq!(sink.events("data").len(), 2);
        conn.quit().await;
    }
}

#[tokio::test]
async fn binds_the_source_address() {
    let sink = PySink::start(&[]);
    let mut o = opts();
    o.source_ip = Some(IpAddr::from([127, 0, 0, 2]));
    let mut conn = Connection::open(sink.addr, "localhost", &o).await.unwrap();
    assert_eq!(conn.local_addr().ip(), IpAddr::from([127, 0, 0, 2]));
    let rcpts = [RecipientSpec::new("ok@example.org")];
    conn.send(&tx("s@example.com", &rcpts, 3), b"x\r\n")
        .await
        .unwrap();
    conn.quit().await;
    assert_eq!(sink.events("mail")[0]["peer"], "127.0.0.2");
    assert_eq!(sink.events("data")[0]["peer"], "127.0.0.2");
}

#[tokio::test]
async fn a_source_address_that_is_not_local_fails_in_the_connect_phase() {
    let mut o = opts();
    o.source_ip = Some(IpAddr::from([192, 0, 2, 77]));
    let addr = SocketAddr::from(([127, 0, 0, 1], 9));
    let err = Connection::open(addr, "localhost", &o).await.err().unwrap();
    assert_eq!(err.phase(), Phase::Connect, "{err}");
}

#[tokio::test]
async fn opportunistic_starttls_gives_tls_info() {
    let cert = common::cert_path();
    let sink = PySink::start(&["--pipelining", "--starttls", cert.to_str().unwrap()]);
    let mut o = opts();
    o.starttls = TlsMode::Opportunistic;
    let mut conn = Connection::open(sink.addr, "mx.example.org", &o)
        .await
        .unwrap();
    let info = conn.tls_info().expect("TLS negotiated").clone();
    assert!(info.protocol.starts_with("TLSv1."), "{info:?}");
    assert!(info.cipher.starts_with("TLS"), "{info:?}");
    assert!(
        !conn.extensions().starttls,
        "EHLO after TLS no longer offers STARTTLS"
    );
    assert!(conn.extensions().pipelining);
    let rcpts = [RecipientSpec::new("ok@example.org")];
    let out = conn
        .send(&tx("s@example.com", &rcpts, 3), b"x\r\n")
        .await
        .unwrap();
    assert!(out.delivered(0));
    conn.quit().await;
    eprintln!("negotiated {} {}", info.protocol, info.cipher);

    let ehlos = sink.events("ehlo");
    assert_eq!(ehlos.len(), 2);
    assert_eq!(ehlos[0]["tls"], false);
    assert_eq!(ehlos[1]["tls"], true);
    assert_eq!(sink.events("data").len(), 1);

    // Required works too; Off does not use it although it is offered.
    o.starttls = TlsMode::Required;
    let conn = Connection::open(sink.addr, "mx.example.org", &o)
        .await
        .unwrap();
    assert!(conn.tls_info().is_some());
    conn.quit().await;
    o.starttls = TlsMode::Off;
    let conn = Connection::open(sink.addr, "mx.example.org", &o)
        .await
        .unwrap();
    assert!(conn.tls_info().is_none());
    assert!(conn.extensions().starttls);
    conn.quit().await;
}

#[tokio::test]
async fn required_tls_without_starttls_is_an_error() {
    let sink = PySink::start(&[]);
    let mut o = opts();
    o.starttls = TlsMode::Required;
    let err = Connection::open(sink.addr, "localhost", &o)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::TlsUnavailable), "{err}");
    assert_eq!(err.phase(), Phase::StartTls);
    let c = petrel_reply_class::classify(None, Some(&err));
    assert!(!c.permanent);

    // Opportunistic carries on in plaintext.
    o.starttls = TlsMode::Opportunistic;
    let conn = Connection::open(sink.addr, "localhost", &o).await.unwrap();
    assert!(conn.tls_info().is_none());
    assert_eq!(conn.tls_fallback(), None);
    conn.quit().await;
}

#[tokio::test]
async fn size_is_declared_only_when_advertised() {
    let rcpts = [RecipientSpec::new("ok@example.org")];
    let sink = PySink::start(&[]);
    let mut conn = Connection::open(sink.addr, "localhost", &opts())
        .await
        .unwrap();
    assert_eq!(conn.extensions().size, Some(1 << 25));
    conn.send(&tx("s@example.com", &rcpts, 1234), b"x\r\n")
        .await
        .unwrap();
    conn.quit().await;
    assert_eq!(strings(&sink.events("mail")[0]["options"]), ["SIZE=1234"]);

    let sink = PySink::start(&["--no-size"]);
    let mut conn = Connection::open(sink.addr, "localhost", &opts())
        .await
        .unwrap();
    assert_eq!(conn.extensions().size, None);
    conn.send(&tx("s@example.com", &rcpts, 1234), b"x\r\n")
        .await
        .unwrap();
    conn.quit().await;
    assert!(strings(&sink.events("mail")[0]["options"]).is_empty());
}

#[tokio::test]
async fn eight_bit_bodies_with_and_without_8bitmime() {
    let rcpts = [RecipientSpec::new("ok@example.org")];
    let body = "Subject: caf\u{e9}\r\n\r\nna\u{ef}ve\r\n".as_bytes();
    let mut t = tx("s@example.com", &rcpts, body.len() as u64);
    t.body_8bit = true;

    let sink = PySink::start(&["--no-size"]);
    let mut conn = Connection::open(sink.addr, "localhost", &opts())
        .await
        .unwrap();
    assert!(conn.extensions().eight_bit_mime);
    let out = conn.send(&t, body).await.unwrap();
    assert!(out.delivered(0) && out.notes.is_empty());
    conn.quit().await;
    assert_eq!(
        strings(&sink.events("mail")[0]["options"]),
        ["BODY=8BITMIME"]
    );
    assert_eq!(sink.content(0), body);

    let sink = PySink::start(&["--no-size", "--no-8bitmime"]);
    let mut conn = Connection::open(sink.addr, "localhost", &opts())
        .await
        .unwrap();
    assert!(!conn.extensions().eight_bit_mime);
    let out = conn.send(&t, body).await.unwrap();
    assert!(out.delivered(0));
    assert_eq!(out.notes, [TransactionNote::EightBitWithout8BitMime]);
    conn.quit().await;
    assert!(strings(&sink.events("mail")[0]["options"]).is_empty());
    assert_eq!(sink.content(0), body);
}

#[tokio::test]
async fn smtputf8_is_used_when_offered_and_refused_locally_when_not() {
    let rcpts = [RecipientSpec::new("j\u{f6}rg@example.de")];
    let t = tx("s@example.com", &rcpts, 3);

    let sink = PySink::start(&["--no-size", "--smtputf8"]);
    let mut conn = Connection::open(sink.addr, "localhost", &opts())
        .await
        .unwrap();
    assert!(conn.extensions().smtputf8);
    let out = conn.send(&t, b"x\r\n").await.unwrap();
    assert!(out.delivered(0));
    conn.quit().await;
    assert_eq!(strings(&sink.events("mail")[0]["options"]), ["SMTPUTF8"]);
    assert_eq!(sink.events("rcpt")[0]["addr"], "j\u{f6}rg@example.de");

    let sink = PySink::start(&["--no-size"]);
    let mut conn = Connection::open(sink.addr, "localhost", &opts())
        .await
        .unwrap();
    let out = conn.send(&t, b"x\r\n").await.unwrap();
    assert_eq!((out.mail.code, out.rcpts[0].code), (553, 553));
    assert_eq!(out.mail.enhanced.unwrap().to_string(), "5.6.7");
    assert_eq!(out.notes, [TransactionNote::Smtputf8NotOffered]);
    assert!(conn.is_reusable());
    // Still usable, and nothing reached the server.
    let ok = [RecipientSpec::new("ok@example.org")];
    assert!(conn
        .send(&tx("s@example.com", &ok, 3), b"x\r\n")
        .await
        .unwrap()
        .delivered(0));
    conn.quit().await;
    let mails = sink.events("mail");
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["addr"], "s@example.com");
    assert_eq!(sink.events("rcpt").len(), 1);
}

#[tokio::test]
async fn dsn_parameters_are_dropped_when_not_offered() {
    let sink = PySink::start(&["--no-size", "--pipelining"]);
    let mut conn = Connection::open(sink.addr, "localhost", &opts())
        .await
        .unwrap();
    assert!(!conn.extensions().dsn);
    let notify = [Notify::Success];
    let rcpts = [RecipientSpec {
        address: "ok@example.org",
        notify: Some(&notify),
        orcpt: Some("rfc822;ok@example.org"),
    }];
    let mut t = tx("s@example.com", &rcpts, 3);
    t.ret = Some(Ret::Full);
    let out = conn.send(&t, b"x\r\n").await.unwrap();
    assert!(out.delivered(0));
    assert_eq!(out.notes, [TransactionNote::DsnNotOffered]);
    conn.quit().await;
    assert!(strings(&sink.events("mail")[0]["options"]).is_empty());
    assert!(strings(&sink.events("rcpt")[0]["options"]).is_empty());
}
