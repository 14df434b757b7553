//! Hand-written samples of each kind of returned mail.

use petrel_bounce::{parse, try_parse, ParseError, Returned};

const DSN: &str = "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r
To: bounce-123@bounce.example.com\r
Subject: Undelivered Mail Returned to Sender\r
Auto-Submitted: auto-replied\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r
\r
--B\r
Content-Type: text/plain\r
\r
I'm sorry to have to inform you that your message could not be delivered.\r
\r
--B\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.net\r
Original-Envelope-Id: job42-msg7\r
\r
Final-Recipient: rfc822; gone@example.net\r
Original-Recipient: rfc822; Gone@example.net\r
Action: failed\r
Status: 5.0.0\r
Remote-MTA: dns; mail.example.net\r
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address\r
 rejected: User unknown in local recipient table\r
\r
Final-Recipient: rfc822; full@example.net\r
Action: delayed\r
Status: 4.2.2\r
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\r
\r
Final-Recipient: rfc822; ok@example.net\r
Action: relayed\r
Status: 2.0.0\r
\r
--B\r
Content-Type: text/rfc822-headers\r
\r
Return-Path: <bounce-123@bounce.example.com>\r
Message-ID: <abc.123@petrel.example.com>\r
X-Job: spring-sale\r
From: shop@example.com\r
To: gone@example.net\r
\r
--B--\r
";

#[test]
fn rfc3464_dsn() {
    let Returned::Bounce(b) = parse(DSN.as_bytes()) else {
        panic!("not a bounce")
    };
    assert_eq!(b.reporting_mta.as_deref(), Some("mx.example.net"));
    assert_eq!(b.recipients.len(), 2, "relayed is not a bounce");
    let r = &b.recipients[0];
    assert_eq!(r.address, "gone@example.net");
    assert_eq!(
        r.status.as_deref(),
        Some("5.1.1"),
        "the diagnostic's code wins"
    );
    assert_eq!(r.reply_code, Some(550));
    assert_eq!(r.remote_mta.as_deref(), Some("mail.example.net"));
    assert_eq!(r.action.as_deref(), Some("failed"));
    assert_eq!(
        (r.bounce_cat.as_str(), r.bounce_class, r.hard),
        ("bad-mailbox", 10, true)
    );
    assert!(r.diagnostic.as_deref().unwrap().contains("User unknown"));
    let d = &b.recipients[1];
    assert_eq!(d.action.as_deref(), Some("delayed"));
    assert_eq!(
        (d.bounce_cat.as_str(), d.bounce_class, d.hard),
        ("quota-issues", 22, false)
    );
    assert_eq!(
        b.original.message_id.as_deref(),
        Some("abc.123@petrel.example.com")
    );
    assert_eq!(b.original.x_job.as_deref(), Some("spring-sale"));
    assert_eq!(
        b.original.envelope_from.as_deref(),
        Some("bounce-123@bounce.example.com")
    );
    assert!(b
        .original
        .headers
        .contains(&("original-envelope-id".to_string(), "job42-msg7".to_string())));
    let json = serde_json::to_string(&Returned::Bounce(b)).unwrap();
    assert!(json.starts_with("{\"kind\":\"bounce\""));
}

#[test]
fn success_only_dsn_is_not_a_bounce() {
    let raw = DSN
        .replace("Action: failed", "Action: delivered")
        .replace("Action: delayed", "Action: expanded");
    assert!(matches!(parse(raw.as_bytes()), Returned::Unrecognised));
}

const QMAIL: &str = "From: MAILER-DAEMON@mx4.example.jp\n\
To: bounce-9@bounce.example.com\n\
Subject: failure notice\n\
\n\
Hi. This is the qmail-send program at mx4.example.jp.\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\n\
This is a permanent error; I've given up. Sorry it didn't work out.\n\
\n\
<kijitora@example.ne.jp>:\n\
192.0.2.1 does not like recipient.\n\
Remote host said: 552 Error: disk quota exceeded\n\
Giving up on 192.0.2.1.\n\
\n\
<nobody@example.org>:\n\
Sorry, I couldn't find any host named example.org. (#5.1.2)\n\
\n\
--- Below this line is a copy of the message.\n\
\n\
Return-Path: <bounce-9@bounce.example.com>\n\
Message-ID: <q.1@petrel.example.com>\n\
X-Job: newsletter\n\
To: kijitora@example.ne.jp\n\
\n\
Hello\n";

#[test]
fn qmail_plain_text_bounce() {
    let Returned::Bounce(b) = parse(QMAIL.as_bytes()) else {
        panic!("not a bounce")
    };
    assert_eq!(b.recipients.len(), 2);
    let r = &b.recipients[0];
    assert_eq!(r.address, "kijitora@example.ne.jp");
    assert_eq!(r.reply_code, Some(552));
    assert_eq!(
        r.status.as_deref(),
        Some("5.0.0"),
        "derived from the reply code"
    );
    assert_eq!(r.bounce_cat, "quota-issues");
    assert!(!r.hard);
    let r = &b.recipients[1];
    assert_eq!(r.status.as_deref(), Some("5.1.2"));
    assert_eq!((r.bounce_cat.as_str(), r.hard), ("bad-domain", true));
    assert_eq!(
        b.original.message_id.as_deref(),
        Some("q.1@petrel.example.com")
    );
    assert_eq!(b.original.x_job.as_deref(), Some("newsletter"));
}

const ARF: &str = "From: <fbl@isp.example>\r
To: <fbl@petrel.example.com>\r
Subject: FW: Sale\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=feedback-report; boundary=\"part1\"\r
\r
--part1\r
Content-Type: text/plain\r
\r
This is an email abuse report for an email message received from IP 192.0.2.1.\r
--part1\r
Content-Type: message/feedback-report\r
\r
Feedback-Type: abuse\r
User-Agent: SomeGenerator/1.0\r
Version: 1\r
Original-Mail-From: <bounce-77@bounce.example.com>\r
Original-Rcpt-To: <user@isp.example>\r
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r
Source-IP: 192.0.2.1\r
Reported-Domain: example.com\r
\r
--part1\r
Content-Type: message/rfc822\r
\r
Return-Path: <bounce-77@bounce.example.com>\r
Message-ID: <m77@petrel.example.com>\r
X-Job: sale\r
From: shop@example.com\r
To: user@isp.example\r
Subject: Sale\r
\r
Buy now\r
--part1--\r
";

#[test]
fn arf_complaint() {
    let Returned::Complaint(c) = parse(ARF.as_bytes()) else {
        panic!("not a complaint")
    };
    assert_eq!(c.feedback_type, "abuse");
    assert_eq!(c.user_agent.as_deref(), Some("SomeGenerator/1.0"));
    assert_eq!(c.reported_by.as_deref(), Some("example.com"));
    assert_eq!(c.recipients, vec!["user@isp.example"]);
    assert_eq!(c.source_ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(
        c.arrival_date.as_deref(),
        Some("Thu, 8 Mar 2005 14:00:00 EDT")
    );
    assert_eq!(
        c.original.message_id.as_deref(),
        Some("m77@petrel.example.com")
    );
    assert_eq!(c.original.x_job.as_deref(), Some("sale"));
    assert_eq!(
        c.original.envelope_from.as_deref(),
        Some("bounce-77@bounce.example.com")
    );
}

#[test]
fn arf_without_rcpt_uses_the_original_to_and_report_from() {
    let raw = ARF
        .replace("Original-Rcpt-To: <user@isp.example>\r\n", "")
        .replace("Reported-Domain: example.com\r\n", "");
    let Returned::Complaint(c) = parse(raw.as_bytes()) else {
        panic!("not a complaint")
    };
    assert_eq!(c.recipients, vec!["user@isp.example"]);
    assert_eq!(c.reported_by.as_deref(), Some("isp.example"));
}

#[test]
fn jmrp_complaint() {
    let raw = "From: staff@hotmail.com\r
To: fbl@petrel.example.com\r
Subject: complaint about message from 192.0.2.1\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary=\"b\"\r
\r
--b\r
Content-Type: text/plain\r
\r
This is a complaint.\r
--b\r
Content-Type: message/rfc822\r
\r
X-HmXmrOriginalRecipient: <someone@hotmail.com>\r
Message-ID: <j1@petrel.example.com>\r
From: shop@example.com\r
\r
body\r
--b--\r
";
    let Returned::Complaint(c) = parse(raw.as_bytes()) else {
        panic!("not a complaint")
    };
    assert_eq!(c.feedback_type, "abuse");
    assert_eq!(c.recipients, vec!["someone@hotmail.com"]);
    assert_eq!(c.reported_by.as_deref(), Some("hotmail.com"));
    assert_eq!(
        c.original.message_id.as_deref(),
        Some("j1@petrel.example.com")
    );
}

#[test]
fn vacation_replies() {
    let base = "From: Ann <ann@example.org>\nTo: shop@example.com\n";
    for extra in [
        "Subject: Out of Office: Sale\n",
        "Subject: Automatic reply: Sale\n",
        "Subject: Sale\nAuto-Submitted: auto-replied\n",
        "Subject: Sale\nX-Autoreply: yes\n",
        "Subject: Re: Sale\nPrecedence: auto_reply\n",
    ] {
        let raw =
            format!("{base}{extra}\nI am away until Monday; your message could not be read.\n");
        assert!(
            matches!(parse(raw.as_bytes()), Returned::AutoReply),
            "{extra}"
        );
    }
}

#[test]
fn auto_submitted_bounces_stay_bounces() {
    // Postfix marks its bounces Auto-Submitted: auto-replied.
    assert!(matches!(parse(DSN.as_bytes()), Returned::Bounce(_)));
    let raw = QMAIL.replace(
        "Subject: failure notice\n",
        "Subject: failure notice\nAuto-Submitted: auto-replied\n",
    );
    assert!(matches!(parse(raw.as_bytes()), Returned::Bounce(_)));
}

#[test]
fn exim_and_unrecognised() {
    let exim = "From: Mail Delivery System <Mailer-Daemon@mx.example.org>\n\
To: bounce-5@bounce.example.com\n\
Subject: Mail delivery failed: returning message to sender\n\
X-Failed-Recipients: kijitora@example.net\n\
\n\
This message was created automatically by mail delivery software.\n\
\n\
A message that you sent could not be delivered to one or more of its\n\
recipients. This is a permanent error. The following address(es) failed:\n\
\n\
  kijitora@example.net\n\
    retry timeout exceeded\n\
\n\
------ This is a copy of the message, including all the headers. ------\n\
\n\
Return-path: <bounce-5@bounce.example.com>\n\
Message-Id: <e5@petrel.example.com>\n\
\n\
hi\n";
    let Returned::Bounce(b) = parse(exim.as_bytes()) else {
        panic!("not a bounce")
    };
    assert_eq!(b.recipients.len(), 1);
    assert_eq!(b.recipients[0].address, "kijitora@example.net");
    assert_eq!(b.recipients[0].bounce_cat, "message-expired");
    assert_eq!(
        b.original.envelope_from.as_deref(),
        Some("bounce-5@bounce.example.com")
    );

    let human = "From: bob@example.org\nTo: shop@example.com\nSubject: Question\n\nWhat time do you open?\n";
    assert!(matches!(parse(human.as_bytes()), Returned::Unrecognised));
    assert_eq!(try_parse(b"").unwrap_err(), ParseError::Empty);
    assert!(matches!(
        parse(b"\x00\x01 not mail"),
        Returned::Unrecognised
    ));
}

#[test]
fn a_message_that_makes_the_mime_parser_panic_is_an_error_not_a_crash() {
    // Found by the bounce_parse fuzz target (minimised): a message/rfc822 part whose body is
    // only another message/rfc822 header. mail-parser 0.11.9 panics on it.
    let raw = include_bytes!("mail-parser-panic.eml");
    assert!(matches!(
        petrel_bounce::try_parse(raw),
        Err(petrel_bounce::ParseError::Malformed)
    ));
}

#[test]
fn a_status_field_with_a_parenthesis_closed_before_it_opens_is_no_crash() {
    // Found by the bounce_parse fuzz target in CI: "Status: 5.7.26…)…(" made the comment
    // reader slice backwards and panic.
    let raw = include_bytes!("status-comment-panic.eml");
    let _ = petrel_bounce::try_parse(raw);
}
