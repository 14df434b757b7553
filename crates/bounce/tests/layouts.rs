//! Hand-written samples of the report layouts and rule groups added for the corpus
//! agreement work (docs/BOUNCES.md): each sample is minimal and made up, not a corpus copy.

use petrel_bounce::{parse, BouncedRecipient, Returned};

fn bounce(raw: &str) -> Vec<BouncedRecipient> {
    match parse(raw.as_bytes()) {
        Returned::Bounce(b) => b.recipients,
        other => panic!("not a bounce: {other:?}"),
    }
}

fn verdict(r: &BouncedRecipient) -> (&str, &str, u16, bool) {
    (
        r.address.as_str(),
        r.bounce_cat.as_str(),
        r.bounce_class,
        r.hard,
    )
}

/// A multipart/report with the given text part and delivery-status part.
fn dsn(text: &str, status: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net\nTo: bounce-1@bounce.example.com\n\
Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n\
--B\nContent-Type: text/plain\n\n{text}\n\n\
--B\nContent-Type: message/delivery-status\n\n{status}\n\n\
--B\nContent-Type: text/rfc822-headers\n\n\
Return-Path: <bounce-1@bounce.example.com>\nMessage-ID: <m1@petrel.example.com>\n\
From: shop@example.com\nTo: someone@example.org\n\n--B--\n"
    )
}

/// A plain-text report from a mailer daemon.
fn plain(subject: &str, body: &str) -> String {
    format!(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>\n\
To: bounce-1@bounce.example.com\nSubject: {subject}\n\n{body}\n"
    )
}

#[test]
fn amazon_ses_notifications() {
    let json = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"gone@example.org","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"reportingMTA":"dsn; a1.smtp-out.example.com"},"mail":{"source":"bounce-1@bounce.example.com","headers":[{"name":"Message-ID","value":"<m1@petrel.example.com>"},{"name":"X-Job","value":"spring"}]}}"#;
    let mail = |body: &str| {
        format!(
            "From: AWS Notifications <no-reply@sns.example.com>\nTo: ops@example.com\n\
Subject: AWS Notification Message\nContent-Type: text/plain; charset=UTF-8\n\n{body}\n\n--\nIf you wish to stop receiving notifications, unsubscribe.\n"
        )
    };
    let Returned::Bounce(b) = parse(mail(json).as_bytes()) else {
        panic!("not a bounce")
    };
    assert_eq!(
        verdict(&b.recipients[0]),
        ("gone@example.org", "bad-mailbox", 10, true)
    );
    assert_eq!(b.recipients[0].status.as_deref(), Some("5.1.1"));
    assert_eq!(b.reporting_mta.as_deref(), Some("a1.smtp-out.example.com"));
    assert_eq!(
        b.original.message_id.as_deref(),
        Some("m1@petrel.example.com")
    );
    assert_eq!(b.original.x_job.as_deref(), Some("spring"));
    assert_eq!(
        b.original.envelope_from.as_deref(),
        Some("bounce-1@bounce.example.com")
    );

    // The same object inside an SNS envelope, with a line broken by an MTA ("!" CRLF SP).
    let escaped = json.replace('"', "\\\"");
    let (a, z) = escaped.split_at(120);
    let wrapped = format!("{{\"Type\":\"Notification\",\"Message\":\"{a}!\n {z}\"}}");
    assert!(matches!(
        parse(mail(&wrapped).as_bytes()),
        Returned::Bounce(_)
    ));

    let complaint = r#"{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"angry@example.org"}],"complaintFeedbackType":"abuse","userAgent":"Yahoo!-Mail-Feedback/1.0","arrivalDate":"2024-05-01T10:00:00.000Z"},"mail":{"sourceIp":"192.0.2.7","headers":[]}}"#;
    let Returned::Complaint(c) = parse(mail(complaint).as_bytes()) else {
        panic!("not a complaint")
    };
    assert_eq!(c.recipients, vec!["angry@example.org"]);
    assert_eq!(c.feedback_type, "abuse");
    assert_eq!(c.source_ip.as_deref(), Some("192.0.2.7"));

    let delivery = r#"{"notificationType":"Delivery","delivery":{"recipients":["ok@example.org"],"smtpResponse":"250 2.6.0 Message received"},"mail":{}}"#;
    assert!(matches!(
        parse(mail(delivery).as_bytes()),
        Returned::Unrecognised
    ));
    // Broken JSON is not a notification, and not a crash.
    let broken = &json[..json.len() / 2];
    assert!(!matches!(
        parse(mail(broken).as_bytes()),
        Returned::Complaint(_)
    ));
}

#[test]
fn recipient_groups_without_blank_lines() {
    let raw = dsn(
        "Your message could not be delivered.",
        "Reporting-MTA: dns; mx.example.net\n\
Final-Recipient: rfc822; full@example.org\nAction: failed\nStatus: 5.2.2\n\
Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\n\
Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n\
Diagnostic-Code: smtp; 550 5.1.1 User unknown",
    );
    let r = bounce(&raw);
    assert_eq!(r.len(), 2);
    assert_eq!(
        verdict(&r[0]),
        ("full@example.org", "quota-issues", 22, false)
    );
    assert_eq!(
        verdict(&r[1]),
        ("gone@example.org", "bad-mailbox", 10, true)
    );
}

#[test]
fn postfix_user_unknown_after_data_is_a_filter() {
    let text = "<gone@example.org>: host mx.example.org[192.0.2.1] said: 550 Unknown user\n    gone@example.org (in reply to end of DATA command)";
    let status =
        "Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; gone@example.org\n\
Action: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 Unknown user gone@example.org";
    let r = bounce(&dsn(text, status));
    assert_eq!(
        verdict(&r[0]),
        ("gone@example.org", "policy-related", 50, false)
    );
    // The same reply to RCPT TO is about the address.
    let r = bounce(&dsn(&text.replace("end of DATA", "RCPT TO"), status));
    assert_eq!(
        verdict(&r[0]),
        ("gone@example.org", "bad-mailbox", 10, true)
    );
}

#[test]
fn sendmail_transcripts_tell_data_from_pipelined_rcpt() {
    let report = |reply: &str, own: &str| {
        dsn(
            &format!(
                "   ----- The following addresses had permanent fatal errors -----\n<gone@example.org>\n\n\
   ----- Transcript of session follows -----\n... while talking to mx.example.org.:\n>>> DATA\n<<< {reply}\n{own}"
            ),
            &format!(
                "Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: RFC822; gone@example.org\n\
Action: failed\nStatus: 5.2.0\nDiagnostic-Code: SMTP; {reply}"
            ),
        )
    };
    // Sendmail's own line without the address: the DATA command failed.
    let r = bounce(&report(
        "550 Unknown user gone@example.org",
        "554 5.0.0 Service unavailable",
    ));
    assert_eq!(r[0].bounce_cat, "policy-related");
    assert!(!r[0].hard);
    // Sendmail's own line for the recipient: a pipelined RCPT TO reply.
    let r = bounce(&report(
        "550 Unknown user gone@example.org",
        "550 5.1.1 <gone@example.org>... User unknown",
    ));
    assert_eq!(r[0].bounce_cat, "bad-mailbox");
    assert!(r[0].hard);
}

#[test]
fn exim_phases_and_a_recipient_without_domain() {
    let exim = |failed: &str, detail: &str| {
        plain(
            "Mail delivery failed: returning message to sender",
            &format!(
                "This message was created automatically by mail delivery software.\n\n\
A message that you sent could not be delivered to one or more of its\n\
recipients. This is a permanent error. The following address(es) failed:\n\n  {failed}\n{detail}\n\n\
------ This is a copy of the message, including all the headers. ------\n\n\
Return-path: <bounce-1@bounce.example.com>\nTo: someone@example.org\nSubject: Hi\n"
            ),
        )
    };
    // MAIL FROM refused: about the sender's address, whatever the words.
    let r = bounce(&exim(
        "someone@example.org",
        "    SMTP error from remote mail server after MAIL FROM:<bounce-1@bounce.example.com> SIZE=100:\n    553 5.1.0 bounce.example.com does not exist",
    ));
    assert_eq!(
        verdict(&r[0]),
        ("someone@example.org", "invalid-sender", 50, false)
    );
    // EHLO refused: about the sending host.
    let r = bounce(&exim(
        "someone@example.org",
        "    SMTP error from remote mail server after EHLO mx.example.net:\n    550 Rejected",
    ));
    assert_eq!(r[0].bounce_cat, "policy-related");
    // A local part without domain: the returned To is the recipient, the coded paragraph
    // its diagnostic.
    let r = bounce(&exim(
        "someone",
        "    SMTP error from remote mail server after RCPT TO:<someone@example.org>:\n    550 5.7.1 Relaying denied",
    ));
    assert_eq!(r[0].address, "someone@example.org");
    assert_eq!(r[0].status.as_deref(), Some("5.7.1"));
    assert_eq!(r[0].bounce_cat, "relaying-issues");
}

#[test]
fn exchange_2003_lists_recipients_after_the_quoted_header() {
    let r = bounce(&plain(
        "Undeliverable: Hi",
        "Your message\n\n  To:      someone@example.org\n  Subject: Hi\n  Sent:    Thu, 1 May 2003 10:00:00 +0000\n\n\
did not reach the following recipient(s):\n\n\
gone@example.net on Thu, 1 May 2003 10:00:05 +0000\n    The recipient name is not recognized\n\
    MSEXCH:IMS:EXAMPLE:SITE:MX1 0 (000C05A6) Unknown Recipient\n",
    ));
    assert_eq!(r.len(), 1);
    assert_eq!(
        verdict(&r[0]),
        ("gone@example.net", "bad-mailbox", 10, true)
    );
}

#[test]
fn lotus_notes_reason_before_the_address() {
    let r = bounce(&plain(
        "Undeliverable message",
        "------- Failure Reasons  --------\n\nUser not listed in public Name & Address Book\ngone@example.com\n\n\
------- Returned Message --------\nReceived: from mx.example.net by gw.example.com\n\
From: shop@example.com\nTo: gone@example.com\nSubject: Hi\n\nhello\n",
    ));
    assert_eq!(
        verdict(&r[0]),
        ("gone@example.com", "bad-mailbox", 10, true)
    );
}

#[test]
fn old_sendmail_host_lines_end_a_recipient_block() {
    let r = bounce(&plain(
        "Returned mail: Host unknown",
        "   ----- Transcript of session follows -----\n\
554 <a@one.example>... Remote protocol error: Connection reset by peer\n\
550 two.example (smtp)... 550 Host unknown\n\
554 <b@two.example>... 550 Host unknown (Authoritative answer from name server)\n\
While talking to mx.three.example:\n>>> RCPT To:<c@three.example>\n<<< 550 No such user here\n\
550 <c@three.example>... User unknown\n\n   ----- Unsent message follows -----\n\
From: shop@example.com\nTo: other@four.example\nSubject: Hi\n\nhello\n",
    ));
    let got: Vec<_> = r.iter().map(verdict).collect();
    assert_eq!(
        got,
        vec![
            ("a@one.example", "bad-connection", 70, false),
            ("b@two.example", "bad-domain", 10, true),
            ("c@three.example", "bad-mailbox", 10, true),
        ]
    );
}

#[test]
fn local_mailer_failures_are_configuration_problems() {
    let text = "   ----- The following addresses had permanent fatal errors -----\n\
\"|/usr/bin/procmail\"\n    (reason: 73)\n    (expanded from: <user@example.org>)\n\n\
   ----- Transcript of session follows -----\n\
procmail: Couldn't create \"/var/mail/user\"\n554 5.3.0 unknown mailer error 73";
    let status = "Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: RFC822; user@example.org\n\
X-Actual-Recipient: X-Unix; |/usr/bin/procmail\nAction: delayed\nStatus: 4.5.0\nDiagnostic-Code: X-Unix; 73";
    let r = bounce(&dsn(text, status));
    assert_eq!(r[0].bounce_cat, "bad-configuration");
    // A generic status takes the specific code from the text part.
    let r = bounce(&dsn(
        text,
        &status
            .replace("delayed", "failed")
            .replace("4.5.0", "5.0.0"),
    ));
    assert_eq!(r[0].status.as_deref(), Some("5.3.0"));
    assert_eq!(r[0].bounce_cat, "bad-configuration");
}

#[test]
fn dns_failures_permanent_and_temporary() {
    let gmail = |status: &str, diag: &str| {
        dsn(
            "** Message not delivered **",
            &format!(
                "Reporting-MTA: dns; googlemail.com\n\nFinal-Recipient: rfc822; a@example.invalid\n\
Action: failed\nStatus: {status}\nDiagnostic-Code: smtp; {diag}"
            ),
        )
    };
    let r = bounce(&gmail(
        "4.0.0",
        "DNS Error: 1234 DNS type 'mx' lookup of example.invalid responded with code NXDOMAIN",
    ));
    assert_eq!(r[0].bounce_cat, "routing-errors");
    assert!(!r[0].hard);
    let r = bounce(&gmail(
        "5.1.2",
        "550 5.1.2 Host or domain name not found. Name service error for name=example.invalid type=A: Host not found",
    ));
    assert_eq!(r[0].bounce_cat, "bad-domain");
    assert!(r[0].hard);
}

#[test]
fn status_comment_and_local_program() {
    let first = |text: &str, group: &str| {
        let fields = format!("Reporting-MTA: dns; mx.example.net\n\n{group}");
        bounce(&dsn(text, &fields)).remove(0)
    };
    // RFC 3464's own example: a delayed recipient whose only reason is a comment in the
    // Status field.
    let r = first(
        "Delivery to the following recipients has been delayed.",
        "Final-Recipient: rfc822;late@example.org\nAction: delayed\n\
Status: 4.0.0 (example.org: host name lookup failure)",
    );
    assert_eq!(
        r.diagnostic.as_deref(),
        Some("example.org: host name lookup failure")
    );
    assert_eq!(
        verdict(&r),
        ("late@example.org", "routing-errors", 21, false)
    );
    // Sendmail names a pipe as the actual recipient: a local program failed after the
    // address was accepted, so no x.5.x protocol error and never a hard bounce.
    let r = first(
        "554 \"|/usr/bin/procmail\"... Service unavailable",
        "Final-Recipient: rfc822;pipe@example.org\n\
X-Actual-Recipient: rfc822; |/usr/bin/procmail -f- #pipe@example.org\n\
Action: failed\nStatus: 5.5.0",
    );
    assert_eq!(
        verdict(&r),
        ("pipe@example.org", "bad-configuration", 40, false)
    );
    // Postfix reporting procmail's "No such user" with 5.1.1 and an X-Unix diagnostic.
    let r = first(
        "<r@mx.example.net> (expanded from <gone@example.org>): user unknown.",
        "Final-Recipient: rfc822;gone@example.org\nAction: failed\nStatus: 5.1.1\n\
Diagnostic-Code: x-unix; procmail: id: gone: No such user",
    );
    assert_eq!(
        verdict(&r),
        ("gone@example.org", "bad-configuration", 40, false)
    );
}

#[test]
fn qmail_phases_and_expiry() {
    // qmail-remote's fixed texts name the command that was refused; a queue that gave up
    // on a refused EHLO is a refusal of the sending host, not an expiry.
    let helo = plain(
        "failure notice",
        "Hi. This is the qmail-send program at mx.example.net.\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\n\
This is a permanent error; I've given up. Sorry it didn't work out.\n\n\
<gone@example.org>:\nConnected to 192.0.2.1 but my name was rejected.\n\
Remote host said: 501 5.0.0 Invalid domain name\n\
I'm not going to try again; this message has been in the queue too long.\n\n\
--- Below this line is a copy of the message.\n\nSubject: hi\n",
    );
    assert_eq!(
        verdict(&bounce(&helo)[0]),
        ("gone@example.org", "policy-related", 50, false)
    );
    // The last reply names a block that lasted the whole queue lifetime.
    let mail_from = helo
        .replace("my name was rejected", "sender was rejected")
        .replace(
        "501 5.0.0 Invalid domain name",
        "421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to user complaints",
    );
    assert_eq!(bounce(&mail_from)[0].bounce_cat, "policy-related");
}
