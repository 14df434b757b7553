//! `petrel sink`, one behaviour at a time: each tag in a recipient's local part gets the
//! reply, the later report or the later fetch it promises, in the words of the recipient's
//! provider, and is counted; the reports are read back with `petrel classify` (what petrel's
//! returns processor sees), the fetches by a recording web server on loopback.

use crate::common;

use std::time::{Duration, Instant};

use common::sink::{PetrelSink, Smtp, Web};
use common::{petrel_bin, python, test_cert, text, Sink};
use serde_json::Value;

const MSG: &str = "From: News <news@brand.example>\nTo: reader@x.example\nSubject: Spring sale\nX-Job: spring\nMessage-ID: <m1@brand.example>\n\nHello\n";
const FROM: &str = "news+tok@bounces.brand.example";

#[test]
fn hard_is_user_unknown_in_each_providers_words() {
    let sink = PetrelSink::start(&[]);
    let mut s = Smtp::ehlo(sink.port);
    let (r, _) = s.send(FROM, "ana+hard@gmail.example", MSG);
    assert!(
        r.starts_with("550-5.1.1 The email account that you tried to reach does not exist."),
        "{r}"
    );
    assert!(
        r.ends_with("550 5.1.1  https://support.google.com/mail/?p=NoSuchUser - gsmtp\r\n"),
        "{r}"
    );
    let (r, _) = s.send(FROM, "bo+hard@hotmail.example", MSG);
    assert!(
        r.starts_with(
            "550 5.1.1 Requested action not taken: mailbox unavailable (bo+hard@hotmail.example)"
        ),
        "{r}"
    );
    let (r, _) = s.send(FROM, "cy+hard@yahoo.example", MSG);
    assert_eq!(
        r,
        "550 5.1.1 Requested action not taken: mailbox unavailable\r\n"
    );
    let (r, _) = s.send(FROM, "dd+hard@deliverable.example", MSG);
    assert!(
        r.contains("Recipient address rejected: User unknown in virtual mailbox table"),
        "{r}"
    );
    let c = sink.snapshot();
    assert_eq!((c.totals.hard, c.totals.delivered), (4, 0), "{c:?}");
    assert_eq!(c.source_ips["127.0.0.1"].hard, 4);
    // Refused at RCPT: no message, so no campaign.
    assert!(c.campaigns.is_empty());
}

#[test]
fn block_is_a_blocklist_refusal_naming_the_client() {
    let sink = PetrelSink::start(&[]);
    let mut s = Smtp::ehlo(sink.port);
    let (r, _) = s.send(FROM, "ana+block@outlook.example", MSG);
    assert!(
        r.starts_with("550 5.7.1 Unfortunately, messages from [127.0.0.1] weren't sent.")
            && r.contains("block list (S3150)"),
        "{r}"
    );
    let (r, _) = s.send(FROM, "bo+block@yahoo.example", MSG);
    assert!(
        r.starts_with("550 5.7.1 [BL21] Connections will not be accepted from 127.0.0.1"),
        "{r}"
    );
    let (r, _) = s.send(FROM, "cy+block@gmail.example", MSG);
    assert!(r.starts_with("550-5.7.1 [127.0.0.1] Our system"), "{r}");
    let (r, _) = s.send(FROM, "dd+block@elsewhere.example", MSG);
    assert!(r.contains("blocked using zen.spamhaus.org"), "{r}");
    assert_eq!(sink.snapshot().totals.block, 4);
}

#[test]
fn soft_is_mailbox_full_for_n_attempts_then_accepted() {
    let sink = PetrelSink::start(&[]);
    let mut s = Smtp::ehlo(sink.port);
    for _ in 0..2 {
        let (r, _) = s.send(FROM, "ana+soft2@yahoo.example", MSG);
        assert!(r.starts_with("452 4.2.2 Mailbox full"), "{r}");
    }
    let (r, dot) = s.send(FROM, "ana+soft2@yahoo.example", MSG);
    assert!(r.starts_with("250 2.1.5"), "{r}");
    assert!(dot.starts_with("250 2.0.0"), "{dot}");
    // Each copy (return path) has its own attempts; `soft` alone means the default, 2.
    for _ in 0..2 {
        let (r, _) = s.send("other@brand.example", "ana+soft@gmail.example", MSG);
        assert!(r.starts_with("452-4.2.2 The email account"), "{r}");
    }
    let (r, _) = s.send("other@brand.example", "ana+soft@gmail.example", MSG);
    assert!(r.starts_with("250"), "{r}");
    let c = sink.snapshot();
    assert_eq!((c.totals.soft, c.totals.delivered), (4, 2), "{c:?}");
    assert_eq!(c.campaigns["spring"].delivered, 2);
}

#[test]
fn defer_is_try_again_later_and_closes_the_connection() {
    let sink = PetrelSink::start(&[]);
    let mut s = Smtp::ehlo(sink.port);
    s.cmd(&format!("MAIL FROM:<{FROM}>"));
    let r = s.cmd("RCPT TO:<ana+defer@yahoo.example>");
    assert!(
        r.starts_with("421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred"),
        "{r}"
    );
    assert_eq!(s.cmd("NOOP"), "", "the connection is closed after a 421");
    // Once is the default: the next attempt is accepted.
    let mut s = Smtp::ehlo(sink.port);
    let (r, dot) = s.send(FROM, "ana+defer@yahoo.example", MSG);
    assert!(r.starts_with("250") && dot.starts_with("250"), "{r}{dot}");
    let c = sink.snapshot();
    assert_eq!((c.totals.defer, c.totals.delivered), (1, 1), "{c:?}");
}

#[test]
fn slow_answers_the_message_late() {
    let sink = PetrelSink::start(&[]);
    let mut s = Smtp::ehlo(sink.port);
    let start = Instant::now();
    let (r, dot) = s.send(FROM, "ana+slow2@gmail.example", MSG);
    assert!(r.starts_with("250"), "{r}");
    assert!(dot.starts_with("250 2.0.0"), "{dot}");
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let c = sink.snapshot();
    assert_eq!((c.totals.slow, c.totals.delivered), (1, 1), "{c:?}");
}

#[test]
fn drop_hangs_up_in_the_middle_of_the_message_then_accepts() {
    let sink = PetrelSink::start(&[]);
    let mut s = Smtp::ehlo(sink.port);
    let (r, dot) = s.send(FROM, "ana+drop@gmail.example", MSG);
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(dot, "", "no answer: the connection was closed");
    let c = sink.snapshot();
    assert_eq!((c.totals.drop, c.totals.delivered), (1, 0), "{c:?}");
    // The header had arrived, so the campaign is known.
    assert_eq!(c.campaigns["spring"].drop, 1);
    let mut s = Smtp::ehlo(sink.port);
    let (_, dot) = s.send(FROM, "ana+drop@gmail.example", MSG);
    assert!(dot.starts_with("250"), "{dot}");
    // Everyone in the transaction is cut off with it, and counted.
    let mut s = Smtp::ehlo(sink.port);
    s.cmd(&format!("MAIL FROM:<{FROM}>"));
    assert!(s.cmd("RCPT TO:<bo@gmail.example>").starts_with("250"));
    assert!(s.cmd("RCPT TO:<cy+drop@gmail.example>").starts_with("250"));
    assert!(s.cmd("DATA").starts_with("354"));
    assert_eq!(s.body(MSG), "");
    assert_eq!(sink.snapshot().totals.drop, 3);
}

#[test]
fn tags_win_over_the_mix() {
    let sink = PetrelSink::start(&["--mix", "hard=100"]);
    let mut s = Smtp::ehlo(sink.port);
    let (r, _) = s.send(FROM, "ana@gmail.example", MSG);
    assert!(r.starts_with("550-5.1.1"), "drawn from the mix: {r}");
    let (r, dot) = s.send(FROM, "ana+delivered@gmail.example", MSG);
    assert!(
        r.starts_with("250 2.1.5") && dot.starts_with("250 2.0.0"),
        "{r}{dot}"
    );
    // A subaddress that is no tag leaves the recipient to the mix.
    let (r, _) = s.send(FROM, "ana+newsletter@gmail.example", MSG);
    assert!(r.starts_with("550"), "{r}");
    let c = sink.snapshot();
    assert_eq!((c.totals.hard, c.totals.delivered), (2, 1), "{c:?}");
}

/// RCPT after STARTTLS, with Python's ssl (the sink's certificate is the test one).
const STARTTLS_RCPT: &str = r#"
import smtplib, ssl, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("client.test")
s.starttls(context=ssl._create_unverified_context())
s.ehlo("client.test")
s.mail("news@brand.example")
code, msg = s.rcpt(sys.argv[2])
print(code, msg.decode())
s.quit()
"#;

#[test]
fn tls_required_refuses_plain_sessions_only() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sink.conf");
    std::fs::write(
        &conf,
        format!("tls-certificate {}\n", test_cert().display()),
    )
    .unwrap();
    let sink = PetrelSink::start(&["--config", conf.to_str().unwrap()]);
    let (mut s, _) = Smtp::connect(sink.port);
    let ehlo = s.cmd("EHLO client.test");
    assert!(
        ehlo.contains("250-STARTTLS") || ehlo.contains("250 STARTTLS"),
        "{ehlo}"
    );
    let (r, _) = s.send(FROM, "ana+tls-required@gmail.example", MSG);
    assert_eq!(
        r,
        "530 5.7.0 Must issue a STARTTLS command first. - gsmtp\r\n"
    );
    let out = python(
        STARTTLS_RCPT,
        &[&sink.port.to_string(), "ana+tls-required@gmail.example"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("250 "),
        "{}",
        text(&out)
    );
    assert_eq!(sink.snapshot().totals.tls_required, 1);
}

/// Writes a recorded message to a file and runs `petrel classify` on it.
fn classify(message: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("report.eml");
    std::fs::write(&f, message).unwrap();
    let out = std::process::Command::new(petrel_bin())
        .arg("classify")
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn oob_sends_an_rfc3464_dsn_to_the_return_path_later() {
    let mta = Sink::start("127.0.0.1");
    let sink = PetrelSink::start(&[
        "--return-to",
        &format!("127.0.0.1:{}", mta.port),
        "--delay",
        "oob=300ms",
    ]);
    let mut s = Smtp::ehlo(sink.port);
    let (_, dot) = s.send(FROM, "ana+oob@gmail.example", MSG);
    assert!(dot.starts_with("250"), "accepted first: {dot}");
    let got = mta.wait_for(1, 20);
    assert_eq!(got[0]["mail_from"], "<>", "a DSN has a null return path");
    assert_eq!(got[0]["rcpts"][0], FROM);
    let dsn = got[0]["data"].as_str().unwrap();
    assert!(
        dsn.contains("report-type=delivery-status") && dsn.contains("Action: failed"),
        "{dsn}"
    );
    let v = classify(dsn);
    assert_eq!(v["kind"], "bounce", "{v}");
    let r = &v["recipients"][0];
    assert_eq!(r["address"], "ana+oob@gmail.example");
    assert_eq!(r["bounce_class"], 10);
    assert_eq!(r["hard"], true);
    assert_eq!(v["original"]["x_job"], "spring");
    let c = sink.wait_for(10, |c| c.pending == 0);
    assert_eq!((c.totals.delivered, c.totals.oob), (1, 1), "{c:?}");
    assert_eq!(c.campaigns["spring"].oob, 1);
}

#[test]
fn fbl_sends_an_arf_complaint_to_the_feedback_address_later() {
    let mta = Sink::start("127.0.0.1");
    let sink = PetrelSink::start(&[
        "--return-to",
        &format!("127.0.0.1:{}", mta.port),
        "--feedback-to",
        "fbl@fbl.brand.example",
        "--delay",
        "fbl=300ms",
    ]);
    let mut s = Smtp::ehlo(sink.port);
    let (_, dot) = s.send(FROM, "ana+fbl@yahoo.example", MSG);
    assert!(dot.starts_with("250"), "{dot}");
    let got = mta.wait_for(1, 20);
    assert_eq!(got[0]["rcpts"][0], "fbl@fbl.brand.example");
    let arf = got[0]["data"].as_str().unwrap();
    let v = classify(arf);
    assert_eq!(v["kind"], "complaint", "{v}");
    assert_eq!(v["recipients"][0], "ana+fbl@yahoo.example");
    assert_eq!(v["feedback_type"], "abuse");
    assert_eq!(v["user_agent"], "Yahoo!-Mail-Feedback/2.0");
    assert_eq!(v["source_ip"], "127.0.0.1");
    // The returned original names its return path: how petrel attributes the complaint.
    assert_eq!(v["original"]["envelope_from"], FROM);
    let c = sink.wait_for(10, |c| c.pending == 0);
    assert_eq!(c.totals.fbl, 1, "{c:?}");
}

fn html_message(web: u16, first_link: &str) -> String {
    format!(
        "From: News <news@brand.example>\nTo: reader@x.example\nSubject: Spring\nX-Job: spring\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nHello\n--b\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n<html><body><img src=3D\"http://127.0.0.1:{web}/o/top\" width=3D\"1\">\n<img src=3D\"https://cdn.brand.example/logo.png\">\n<a href=3D\"mailto:help@brand.example\">Help</a>\n<a href=3D\"{first_link}\">Shop now</a>\n<a href=3D\"http://127.0.0.1:{web}/unsub?u=3D1&amp;l=3D2\" data-msys-unsubscribe=3D\"1\">Manage preferences</a>\n<img src=3D\"http://127.0.0.1:{web}/o/bottom\" width=3D\"1\"></body></html>\n--b--\n"
    )
}

#[test]
fn open_click_and_unsub_fetch_loopback_urls_like_a_browser() {
    let web = Web::start();
    let sink = PetrelSink::start(&["--delay", "open=100ms,click=300ms,unsub=100ms"]);
    let w = web.port;
    let tracked = format!("http://127.0.0.1:{w}/go/http://127.0.0.1:{w}/landing");
    let off_loopback_redirect = format!("http://127.0.0.1:{w}/go/https://brand.example/sale");
    let mut s = Smtp::ehlo(sink.port);
    for (rcpt, link) in [
        ("ana+open@gmail.example", &tracked),
        ("bo+click@gmail.example", &tracked),
        ("cy+unsub@gmail.example", &tracked),
        ("dd+click@gmail.example", &off_loopback_redirect),
        (
            "ee+click@gmail.example",
            &"https://brand.example/direct".to_string(),
        ),
    ] {
        let (_, dot) = s.send(FROM, rcpt, &html_message(w, link));
        assert!(dot.starts_with("250"), "{rcpt}: {dot}");
    }
    let c = sink.wait_for(20, |c| c.pending == 0);
    // Every click opens first: ana, bo, dd, ee opened.
    assert_eq!(c.totals.open, 4, "{c:?}");
    // bo's and dd's links were fetched; ee's is not on loopback.
    assert_eq!(c.totals.click, 2, "{c:?}");
    assert_eq!(c.totals.unsub, 1, "{c:?}");
    assert_eq!(c.totals.skipped, 1, "{c:?}");
    assert_eq!(c.totals.failed, 0, "{c:?}");
    assert_eq!(c.campaigns["spring"].click, 2);
    // Both pixels of each opened message; the CDN image was never requested.
    assert_eq!(web.hits_on("/o/top").len(), 4);
    assert_eq!(web.hits_on("/o/bottom").len(), 4);
    // The redirect to the landing page (loopback) was followed, the one off loopback not.
    assert_eq!(web.hits_on("/go/").len(), 2);
    assert_eq!(web.hits_on("/landing").len(), 1);
    // The unsubscribe link, with its character references decoded.
    let unsub = web.hits_on("/unsub");
    assert_eq!(unsub.len(), 1);
    assert_eq!(unsub[0].path, "/unsub?u=1&l=2");
    for h in web.hits() {
        assert!(
            h.user_agent
                .starts_with("Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
                && h.user_agent.contains("Chrome/"),
            "{h:?}"
        );
    }
    let log = sink.log();
    assert!(
        log.contains("https://cdn.brand.example/logo.png: not a loopback address"),
        "{log}"
    );
    assert!(
        log.contains("not following a redirect to https://brand.example/sale"),
        "{log}"
    );
    assert!(
        log.contains("https://brand.example/direct: not a loopback address"),
        "{log}"
    );
}

/// The RCPT reply codes for `n` untagged recipients.
fn codes(sink: &PetrelSink, n: usize) -> Vec<String> {
    let mut s = Smtp::ehlo(sink.port);
    s.cmd(&format!("MAIL FROM:<{FROM}>"));
    (0..n)
        .map(|i| s.cmd(&format!("RCPT TO:<user{i}@example.com>"))[..3].to_string())
        .collect()
}

#[test]
fn mix_draws_are_the_same_for_the_same_seed_in_every_run() {
    let args = ["--mix", "hard=20,block=10,tls-required=10", "--seed", "7"];
    let a = codes(&PetrelSink::start(&args), 300);
    let b = codes(&PetrelSink::start(&args), 300);
    assert_eq!(a, b);
    let count = |code: &str| a.iter().filter(|c| *c == code).count();
    // 20 % hard + 10 % block = 550s, 10 % tls-required = 530s, the rest accepted.
    assert!((65..=115).contains(&count("550")), "{a:?}");
    assert!((15..=50).contains(&count("530")), "{a:?}");
    assert_eq!(count("550") + count("530") + count("250"), 300);
    let other = codes(
        &PetrelSink::start(&["--mix", "hard=20,block=10,tls-required=10", "--seed", "8"]),
        300,
    );
    assert_ne!(a, other);
}
