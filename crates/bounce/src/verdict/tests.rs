//! The verdict rules, one behaviour per test.

use super::*;
use BounceCategory as C;

fn cat(status: Option<(u8, u16, u16)>, code: Option<u16>, text: &str) -> (C, u16, bool) {
    let v = verdict(status, code, text);
    (v.category, v.class, v.hard())
}

#[test]
fn uses_the_shared_classifier() {
    let v = verdict(Some((5, 1, 1)), Some(550), "User unknown");
    assert_eq!(v.category, BounceCategory::BadMailbox);
    assert_eq!(v.class, 10);
    assert!(v.hard());
    let v = verdict(Some((5, 2, 2)), Some(552), "Mailbox full");
    assert_eq!(v.category, BounceCategory::QuotaIssues);
    assert!(!v.hard());
    let v = verdict(None, None, "retry timeout exceeded");
    assert_eq!(v.category, BounceCategory::MessageExpired);
    let v = verdict(Some((4, 4, 7)), None, "delivery time expired");
    assert!(!v.permanent);
}

#[test]
fn every_supplement_phrase() {
    for (_, phrases, category, class) in SUPPLEMENT_RULES {
        for p in *phrases {
            let text = format!("550 Sorry: {} (see FAQ)", p.to_uppercase());
            let (c, k, _) = cat(None, Some(550), &text);
            assert_eq!((c, k), (*category, *class), "{p:?}");
        }
    }
}

#[test]
fn every_code_supplement() {
    for &(_, subject, detail, category, perm, temp) in CODE_SUPPLEMENT {
        let v = verdict(Some((5, subject, detail)), Some(550), "no words we know");
        assert_eq!(
            (v.category, v.class),
            (category, perm),
            "5.{subject}.{detail}"
        );
        let v = verdict(Some((4, subject, detail)), Some(450), "no words we know");
        assert_eq!(
            (v.category, v.class),
            (category, temp),
            "4.{subject}.{detail}"
        );
    }
    // An SPF failure mentioning spam is an authentication block, not spam content.
    let (c, _, hard) = cat(
        Some((5, 7, 26)),
        Some(550),
        "550-5.7.26 SPF hard fail. To best protect our users from spam, the message has been blocked.",
    );
    assert_eq!(c, C::PolicyRelated);
    assert!(!hard);
}

#[test]
fn vendor_unknown_mailbox_wording() {
    for text in [
        "Your message wasn't delivered to a@b.example because the address couldn't be found.",
        "a@b.example on 1 May 2010\n    The recipient name is not recognized",
        "Invalid final delivery userid: a@b.example",
        "User  not listed in public Name & Address Book",
        "550 5.4.1 [a@b.example]: Recipient address rejected: Access denied [X.prod.protection.outlook.com]",
        "550 <a@b.example>: Recipient address rejected.",
    ] {
        let status = crate::scan::enhanced_code(text, &[5]).or(Some((5, 0, 0)));
        assert_eq!(cat(status, Some(550), text), (C::BadMailbox, 10, true), "{text}");
    }
    // A Postfix refusal with a reason is about that reason.
    assert_eq!(
        cat(
            None,
            Some(450),
            "450 <a@b.example>: Recipient address rejected: Greylisted"
        )
        .0,
        C::PolicyRelated
    );
}

#[test]
fn prose_of_the_reporting_mta() {
    // Expiry in DragonFly's and Sendmail's words.
    for text in [
        "Could not deliver for the last 432000 seconds. Giving up.",
        "Deferred: 421 Warning: message still undelivered after 4 hours",
    ] {
        assert_eq!(cat(None, None, text).0, C::MessageExpired, "{text}");
    }
    // A code without a rule of its own (4.1.9) says less than the prose.
    let text = "Resources temporarily unavailable [#4.1.9]. I'm not going to try again; this message has been in the queue too long.";
    assert_eq!(cat(Some((4, 1, 9)), None, text).0, C::MessageExpired);
    // A named reason outlasts the expiry.
    assert_eq!(
        cat(None, None, "mailbox is full: retry timeout exceeded").0,
        C::QuotaIssues
    );
    // DNS: permanent answers are bad-domain, temporary failures routing errors.
    assert_eq!(
        cat(
            None,
            None,
            "DNS lookup failure: host mx.example.org not found"
        ),
        (C::BadDomain, 10, true)
    );
    assert_eq!(
        cat(
            Some((4, 0, 0)),
            None,
            "DNS Error: DNS type 'mx' lookup of example.org responded with code NXDOMAIN"
        )
        .0,
        C::RoutingErrors
    );
    assert_eq!(
        cat(
            Some((5, 0, 0)),
            None,
            "Name service error for domain example.com: Host not found, try again"
        ),
        (C::RoutingErrors, 21, false)
    );
    assert_eq!(
        cat(
            Some((4, 0, 0)),
            None,
            "DNS Error: The domain example.org doesn't receive email according to the administrator: returned Null MX"
        )
        .0,
        C::BadDomain
    );
}

#[test]
fn weak_evidence_is_soft() {
    // Only a code's subject (X.1.0 "other address status") and no words: soft and
    // undetermined for SparkPost, though the category is still bad-mailbox.
    let v = verdict(Some((5, 1, 0)), Some(550), "550 #5.1.0 Address rejected.");
    assert_eq!((v.category, v.class, v.hard()), (C::BadMailbox, 1, false));
    // An addressing code, or words, make it hard.
    let v = verdict(Some((5, 1, 1)), Some(550), "550 5.1.1 Address rejected.");
    assert_eq!((v.class, v.hard()), (10, true));
    let v = verdict(
        Some((5, 1, 0)),
        Some(550),
        "550 5.1.0 <a@b.example>: User unknown",
    );
    assert_eq!((v.class, v.hard()), (10, true));
    // Gmail's published texts.
    let v = verdict(
        Some((5, 2, 1)),
        Some(550),
        "550 5.2.1 The email account that you tried to reach is disabled.",
    );
    assert_eq!((v.category, v.hard()), (C::InactiveMailbox, false));
    let v = verdict(
        Some((4, 2, 1)),
        Some(450),
        "450 4.2.1 The user you are trying to contact is receiving mail too quickly.",
    );
    assert_eq!((v.category, v.class), (C::PolicyRelated, 70));
}

#[test]
fn codes_and_words_of_the_second_pass() {
    // A bare 421 does not outweigh the enhanced code's subject: 4.3.0 is a system
    // problem of the receiving side.
    assert_eq!(
        cat(
            Some((4, 3, 0)),
            Some(421),
            "421 4.3.0 Upstream error, please retry"
        )
        .0,
        C::BadConfiguration
    );
    // RFC 3463 X.1.6: the address is no longer accepted.
    assert_eq!(
        cat(
            Some((5, 1, 6)),
            Some(550),
            "550 5.1.6 recipient no longer on server"
        ),
        (C::BadMailbox, 10, true)
    );
    // X.4.4 with words that say the domain is invalid.
    assert_eq!(
        cat(Some((5, 4, 4)), Some(550), "550 5.4.4 Invalid domain"),
        (C::BadDomain, 10, true)
    );
    assert_eq!(
        cat(Some((5, 4, 4)), Some(550), "550 5.4.4 Unable to route").0,
        C::RoutingErrors
    );
    // The recipient's preferences refused the message: the address exists.
    assert_eq!(
        cat(
            Some((5, 1, 1)),
            Some(550),
            "550 5.1.1 RCP-P2 Refused due to recipient preferences"
        ),
        (C::PolicyRelated, 50, false)
    );
    // RFC 4954: authentication required.
    assert_eq!(
        cat(None, Some(530), "530 5.7.0 Authentication required").0,
        C::PolicyRelated
    );
    assert_eq!(
        cat(None, Some(550), "550 Unauthenticated senders not allowed").0,
        C::PolicyRelated
    );
}

#[test]
fn rule_groups_switch_off() {
    assert!(RULE_GROUPS.contains(&"phase-data") && RULE_GROUPS.contains(&"weak-evidence-soft"));
    let data = "550 Unknown user a@b.example (in reply to end of DATA command)";
    let all = verdict_with(&Rules::all(), None, Some(550), data, smtp_phase(data));
    assert_eq!(all.category, C::PolicyRelated);
    let off = Rules::all().without("phase-data");
    assert!(!off.on("phase-data") && off.off() == ["phase-data"]);
    let v = verdict_with(&off, None, Some(550), data, smtp_phase(data));
    assert_eq!((v.category, v.hard()), (C::BadMailbox, true));
    let weak = Rules::all().without("weak-evidence-soft");
    let v = verdict_with(
        &weak,
        Some((5, 1, 0)),
        Some(550),
        "550 #5.1.0 Address rejected.",
        None,
    );
    assert!(v.hard());
}

#[test]
fn collapse_drops_repeated_reply_codes() {
    assert_eq!(
        collapse("550-5.7.1 Messages with multiple\n550-5.7.1 addresses in From: 550 5.7.1 header"),
        " 550-5.7.1 messages with multiple addresses in from: header "
    );
    // Only whole words that are codes: numbers in text stay.
    assert_eq!(collapse("Over 5000 rcpts, 550x"), " over 5000 rcpts, 550x ");
    assert!(is_code_word("421-") && is_code_word("4.4.7") && !is_code_word("2.11.3.4"));
}

#[test]
fn smtp_phase_markers() {
    for (text, phase) in [
        (
            "<a@b.example>: host mx[192.0.2.1] said: 550 Unknown user (in reply to end of DATA command)",
            SmtpPhase::Data,
        ),
        (
            "SMTP error from remote mail server after RCPT TO:<a@b.example>: 550 no",
            SmtpPhase::RcptTo,
        ),
        (
            "SMTP error from remote mail server after MAIL FROM:<s@a.example> SIZE=1: 553 no",
            SmtpPhase::MailFrom,
        ),
        (
            "SMTP error from remote mail server after EHLO a.example: 550 Rejected",
            SmtpPhase::Helo,
        ),
        (
            "SMTP error from remote mail server after initial connection: 554 no",
            SmtpPhase::Connect,
        ),
        (
            "192.0.2.1 failed after I sent the message. Remote host said: 550 no",
            SmtpPhase::Data,
        ),
        (
            "Connected to 192.0.2.1 but sender was rejected. Remote host said: 553 no",
            SmtpPhase::MailFrom,
        ),
        (
            "Connected to 192.0.2.1 but my name was rejected.",
            SmtpPhase::Helo,
        ),
        (
            "Connected to 192.0.2.1 but greeting failed.",
            SmtpPhase::Connect,
        ),
    ] {
        assert_eq!(smtp_phase(text), Some(phase), "{text}");
    }
    assert_eq!(smtp_phase("550 5.1.1 User unknown"), None);
}

#[test]
fn the_phase_says_whom_a_refusal_is_about() {
    // "User unknown" after DATA: the recipient was accepted; a filter refused the message.
    let data = "550 Unknown user a@b.example (in reply to end of DATA command)";
    assert_eq!(cat(None, Some(550), data), (C::PolicyRelated, 50, false));
    // … unless an address status code says it is the address,
    assert_eq!(
        cat(Some((5, 1, 1)), Some(550), data),
        (C::BadMailbox, 10, true)
    );
    // … or the server is one that checks accounts only after DATA (Yahoo).
    let yahoo = "554 delivery error: dd This user doesn't have a yahoo.com account [0] (in reply to end of DATA command)";
    assert_eq!(cat(None, Some(554), yahoo).0, C::BadMailbox);
    // The same words at RCPT TO are about the address.
    let rcpt = "550 Unknown user a@b.example (in reply to RCPT TO command)";
    assert_eq!(cat(None, Some(550), rcpt), (C::BadMailbox, 10, true));
    // MAIL FROM: the sender's address.
    let mail = "after MAIL FROM:<s@a.example>: 553 5.1.0 a.example does not exist";
    assert_eq!(
        cat(Some((5, 1, 0)), Some(553), mail),
        (C::InvalidSender, 50, false)
    );
    // EHLO: the sending host.
    assert_eq!(
        cat(None, Some(550), "after EHLO a.example: 550 Rejected").0,
        C::PolicyRelated
    );
    // A policy code (x.7.x) with "user unknown" is a block.
    assert_eq!(
        cat(
            Some((5, 7, 1)),
            Some(550),
            "550 5.7.1 550 User Unknown: a@b.example"
        ),
        (C::PolicyRelated, 50, false)
    );
    // An explicit phase overrides what the text says about itself.
    let v = verdict_in(
        Some((5, 2, 0)),
        Some(550),
        "550 : User unknown",
        Some(SmtpPhase::Data),
    );
    assert_eq!(v.category, C::PolicyRelated);
}
