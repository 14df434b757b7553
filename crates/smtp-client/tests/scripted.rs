//! Behaviour real servers show only when broken or hostile: silence, 421 in the middle of a
//! pipeline, a TLS handshake that fails, EHLO refused. A scripted server answers line by line.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{listen, opts, Peer};
use petrel_reply_class::{classify, BounceCategory};
use petrel_smtp_client::{ClientError, Connection, Phase, RecipientSpec, TlsMode, Transaction};

fn tx<'a>(rcpts: &'a [RecipientSpec<'a>]) -> Transaction<'a> {
    Transaction {
        mail_from: "s@example.com",
        recipients: rcpts,
        ret: None,
        envid: None,
        smtputf8: false,
        body_8bit: false,
        size: 0,
    }
}

#[tokio::test]
async fn silent_greeting_is_a_greeting_timeout() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let _held = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
    });
    let mut o = opts();
    o.timeouts.greeting = Duration::from_millis(300);
    let started = Instant::now();
    let err = Connection::open(addr, "localhost", &o).await.err().unwrap();
    let took = started.elapsed();
    assert!(
        matches!(err, ClientError::Timeout { phase: Phase::Greeting, after } if after == Duration::from_millis(300)),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert!(err.is_no_answer());
    assert_eq!(err.diag(), "x-petrel;greeting: timed out after 300ms");
    let c = classify(None, Some(&err));
    assert_eq!(
        (c.bounce_cat, c.permanent),
        (BounceCategory::NoAnswerFromHost, false)
    );
    eprintln!("greeting timeout of 300ms reported after {took:?}");
    server.abort();
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let (listener, addr) = listen().await;
    drop(listener);
    let err = Connection::open(addr, "localhost", &opts())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            ClientError::Io {
                phase: Phase::Connect,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_no_answer());
}

#[tokio::test]
async fn silence_after_the_dot_is_a_dot_timeout() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&listener).await;
        p.hello(&["PIPELINING"]).await;
        assert!(p.line().await.starts_with("MAIL FROM:<s@example.com>"));
        assert_eq!(p.line().await, "RCPT TO:<a@example.org>");
        assert_eq!(p.line().await, "DATA");
        p.send("250 ok\r\n250 ok\r\n354 go\r\n").await;
        let data = p.data().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        data
    });
    let mut o = opts();
    o.timeouts.data_termination = Duration::from_millis(300);
    let mut conn = Connection::open(addr, "localhost", &o).await.unwrap();
    let rcpts = [RecipientSpec::new("a@example.org")];
    let started = Instant::now();
    let err = conn.send(&tx(&rcpts), b"hi\r\n").await.err().unwrap();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                phase: Phase::Dot,
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(!conn.is_reusable());
    assert!(!err.is_no_answer());
    assert_eq!(
        classify(None, Some(&err)).bounce_cat,
        BounceCategory::BadConnection
    );
    server.abort();
}

#[tokio::test]
async fn wire_bytes_are_dot_stuffed_and_crlf_normalised() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&listener).await;
        p.hello(&[]).await;
        let mut lines = Vec::new();
        for reply in ["250 ok\r\n", "250 ok\r\n", "354 go\r\n"] {
            lines.push(p.line().await);
            p.send(reply).await;
        }
        let data = p.data().await;
        p.send("250 2.0.0 queued\r\n").await;
        assert_eq!(p.line().await, "QUIT");
        p.send("221 bye\r\n").await;
        (lines, data)
    });
    let mut conn = Connection::open(addr, "localhost", &opts()).await.unwrap();
    assert!(!conn.extensions().pipelining);
    let rcpts = [RecipientSpec::new("a@example.org")];
    let body = b"Subject: x\r\n\r\n.a\r\n..\nbare lf\n.\r\nlast";
    let out = conn.send(&tx(&rcpts), body).await.unwrap();
    assert_eq!(out.data.unwrap().enhanced.unwrap().to_string(), "2.0.0");
    conn.quit().await;
    let (lines, data) = server.await.unwrap();
    assert_eq!(
        lines,
        [
            "MAIL FROM:<s@example.com>",
            "RCPT TO:<a@example.org>",
            "DATA"
        ]
    );
    assert_eq!(
        data,
        b"Subject: x\r\n\r\n..a\r\n...\r\nbare lf\r\n..\r\nlast\r\n.\r\n".to_vec()
    );
}

#[tokio::test]
async fn a_large_body_streams_through_in_chunks() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&listener).await;
        p.hello(&["PIPELINING"]).await;
        for _ in 0..3 {
            p.line().await;
        }
        p.send("250 ok\r\n250 ok\r\n354 go\r\n").await;
        let data = p.data().await;
        p.send("250 ok\r\n").await;
        data
    });
    let mut conn = Connection::open(addr, "localhost", &opts()).await.unwrap();
    // 1 MB of 100-byte lines, every tenth starting with a dot.
    let mut body = Vec::new();
    for i in 0..10_000 {
        if i % 10 == 0 {
            body.push(b'.');
        }
        body.extend(std::iter::repeat_n(b'y', 97 - usize::from(i % 10 == 0)));
        body.extend_from_slice(b"\r\n");
    }
    let rcpts = [RecipientSpec::new("a@example.org")];
    let started = Instant::now();
    let out = conn.send(&tx(&rcpts), &body).await.unwrap();
    eprintln!("{} byte body sent in {:?}", body.len(), started.elapsed());
    assert!(out.delivered(0));
    let data = server.await.unwrap();
    assert_eq!(data.len(), body.len() + 1_000 + 3);
}

#[tokio::test]
async fn a_421_in_the_middle_of_a_pipeline_answers_everything_after_it() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&listener).await;
        p.hello(&["PIPELINING", "ENHANCEDSTATUSCODES"]).await;
        for _ in 0..5 {
            p.line().await;
        }
        p.send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n421 4.7.0 too many errors, closing\r\n")
            .await;
    });
    let mut conn = Connection::open(addr, "localhost", &opts()).await.unwrap();
    let rcpts = [
        RecipientSpec::new("a@example.org"),
        RecipientSpec::new("b@example.org"),
        RecipientSpec::new("c@example.org"),
    ];
    let out = conn.send(&tx(&rcpts), b"x\r\n").await.unwrap();
    let codes: Vec<u16> = out.rcpts.iter().map(|r| r.code).collect();
    assert_eq!(codes, [250, 421, 421]);
    assert_eq!(out.data.as_ref().unwrap().code, 421);
    assert!(!out.delivered(0), "accepted recipient still gets the 421");
    assert_eq!(out.recipient_reply(0).code, 421);
    assert!(!conn.is_reusable());
    server.await.unwrap();
}

#[tokio::test]
async fn opportunistic_tls_falls_back_to_a_new_plaintext_connection_when_the_handshake_fails() {
    // Garbage sent after the 220 (a failed handshake), or together with it (data that
    // would be read as if it came over TLS): both end in a plaintext reconnect.
    for together in [false, true] {
        let (listener, addr) = listen().await;
        let server = tokio::spawn(async move {
            let mut p = Peer::accept(&listener).await;
            p.hello(&["STARTTLS"]).await;
            assert_eq!(p.line().await, "STARTTLS");
            if together {
                p.send("220 go ahead\r\nthis is not TLS\r\n").await;
            } else {
                p.send("220 go ahead\r\n").await;
                // Separately, so the client is already in the handshake when it arrives.
                tokio::time::sleep(Duration::from_millis(100)).await;
                p.send("this is not a TLS server hello\r\n").await;
            }
            drop(p);
            let mut p = Peer::accept(&listener).await;
            p.hello(&["STARTTLS"]).await;
            assert_eq!(
                p.line().await,
                "QUIT",
                "no STARTTLS on the second connection"
            );
            p.send("221 bye\r\n").await;
        });
        let mut o = opts();
        o.starttls = TlsMode::Opportunistic;
        let conn = Connection::open(addr, "localhost", &o).await.unwrap();
        assert!(conn.tls_info().is_none());
        let why = conn.tls_fallback().unwrap().to_string();
        assert!(why.starts_with("starttls: "), "{why}");
        eprintln!("fallback (together={together}): {why}");
        conn.quit().await;
        server.await.unwrap();
    }

    let mut o = opts();
    // The same server with TLS required is an error, no second connection.
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&listener).await;
        p.hello(&["STARTTLS"]).await;
        p.line().await;
        p.send("220 go ahead\r\nnot tls\r\n").await;
    });
    o.starttls = TlsMode::Required;
    let err = Connection::open(addr, "localhost", &o).await.err().unwrap();
    assert!(
        matches!(err, ClientError::Tls { .. } | ClientError::Protocol { .. }),
        "{err}"
    );
    assert_eq!(err.phase(), Phase::StartTls);
    server.await.unwrap();
}

#[tokio::test]
async fn refused_starttls_continues_in_plaintext_when_opportunistic() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&listener).await;
        p.hello(&["STARTTLS", "PIPELINING"]).await;
        assert_eq!(p.line().await, "STARTTLS");
        p.send("454 4.7.0 TLS not available due to temporary reason\r\n")
            .await;
        assert_eq!(p.line().await, "QUIT");
        p.send("221 bye\r\n").await;
    });
    let mut o = opts();
    o.starttls = TlsMode::Opportunistic;
    let conn = Connection::open(addr, "localhost", &o).await.unwrap();
    assert!(conn.tls_info().is_none());
    assert_eq!(
        conn.tls_fallback(),
        Some("STARTTLS refused: 454 4.7.0 TLS not available due to temporary reason")
    );
    assert!(conn.extensions().pipelining);
    conn.quit().await;
    server.await.unwrap();
}

#[tokio::test]
async fn ehlo_refused_falls_back_to_helo_and_lockstep() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&listener).await;
        p.send("220 old.test SMTP\r\n").await;
        assert_eq!(p.line().await, "EHLO petrel.test");
        p.send("502 command not implemented\r\n").await;
        assert_eq!(p.line().await, "HELO petrel.test");
        p.send("250 old.test\r\n").await;
        let mut seen = Vec::new();
        for reply in ["250 ok\r\n", "250 ok\r\n", "354 go\r\n"] {
            seen.push(p.line().await);
            p.send(reply).await;
        }
        p.data().await;
        p.send("250 ok\r\n").await;
        seen
    });
    let mut o = opts();
    o.starttls = TlsMode::Opportunistic;
    let mut conn = Connection::open(addr, "localhost", &o).await.unwrap();
    assert_eq!(conn.extensions(), &Default::default());
    let rcpts = [RecipientSpec::new("a@example.org")];
    let mut t = tx(&rcpts);
    t.size = 99;
    let out = conn.send(&t, b"x").await.unwrap();
    assert!(out.delivered(0));
    let seen = server.await.unwrap();
    assert_eq!(
        seen,
        [
            "MAIL FROM:<s@example.com>",
            "RCPT TO:<a@example.org>",
            "DATA"
        ]
    );
}

#[tokio::test]
async fn refused_greeting_is_rejected_and_classified() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&listener).await;
        p.send("554 5.7.1 no SMTP service for you\r\n").await;
        assert_eq!(p.line().await, "QUIT");
        p.send("221 bye\r\n").await;
    });
    let err = Connection::open(addr, "localhost", &opts())
        .await
        .err()
        .unwrap();
    let reply = err.reply().unwrap();
    assert_eq!((err.phase(), reply.code), (Phase::Greeting, 554));
    assert_eq!(err.diag(), "smtp;554 5.7.1 no SMTP service for you");
    let c = classify(None, Some(&err));
    assert_eq!(
        (c.bounce_cat, c.permanent),
        (BounceCategory::PolicyRelated, true)
    );
    server.await.unwrap();
}

#[tokio::test]
async fn garbage_instead_of_a_reply_is_a_protocol_error() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&listener).await;
        p.send("HTTP/1.1 400 Bad Request\r\n\r\n").await;
    });
    let err = Connection::open(addr, "localhost", &opts())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            ClientError::Protocol {
                phase: Phase::Greeting,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        classify(None, Some(&err)).bounce_cat,
        BounceCategory::ProtocolErrors
    );
    server.await.unwrap();
}

#[tokio::test]
async fn disconnect_during_rcpt_is_a_closed_error() {
    let (listener, addr): (_, SocketAddr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&listener).await;
        p.hello(&[]).await;
        p.line().await;
        p.send("250 ok\r\n").await;
        p.line().await;
    });
    let mut conn = Connection::open(addr, "localhost", &opts()).await.unwrap();
    let rcpts = [RecipientSpec::new("a@example.org")];
    let err = conn.send(&tx(&rcpts), b"x").await.err().unwrap();
    assert!(
        matches!(err, ClientError::Closed { phase: Phase::Rcpt }),
        "{err}"
    );
    assert!(!conn.is_reusable());
    server.await.unwrap();
}
