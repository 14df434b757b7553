//! Turning a reply or a connection failure into PowerMTA's `bounceCat` and SparkPost's
//! `bounce_class`, for accounting records, DSNs and Signals events.
//!
//! Pure and table-driven. The order is:
//! 1. specific enhanced status codes ([`CODE_RULES`]: 5.1.1, 5.1.2, 5.2.2, …),
//! 2. text patterns on the reply ([`TEXT_RULES`]: "spam", "mailbox full", "banned", …),
//! 3. the enhanced code's class and subject ([`SUBJECT_RULES`]: x.7.x policy, x.4.x network …),
//! 4. the basic reply code ([`BASIC_RULES`]: 421, 500–504),
//! 5. `other` (SparkPost 1 for 5xx, 20 for 4xx).
//!
//! Generic codes such as 5.7.1 and 5.0.0 are deliberately not in step 1: "550 5.7.1 message
//! is spam" is better called spam-related than policy-related, and SparkPost distinguishes
//! spam blocks (51/52) and relaying (54) from other blocks (50) only by text.

use std::fmt;

use petrel_smtp::{EnhancedCode, Reply};

use crate::error::{ClientError, Phase};

/// PowerMTA's 17 built-in bounce categories (`bounceCat` in accounting records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BounceCategory {
    /// 5xx: remote configuration problem.
    BadConfiguration,
    /// 4xx: connection problems.
    BadConnection,
    /// 5xx: the domain does not exist or is invalid.
    BadDomain,
    /// 5xx: unknown or invalid user.
    BadMailbox,
    /// 5xx: content refused.
    ContentRelated,
    /// 5xx: disabled or expired account.
    InactiveMailbox,
    /// The sender's address or domain is refused.
    InvalidSender,
    /// Not delivered before `bounce-after` (set by the caller, see
    /// [`Classification::message_expired`]).
    MessageExpired,
    /// No response after connecting.
    NoAnswerFromHost,
    /// Anything else.
    Other,
    /// Policy block.
    PolicyRelated,
    /// SMTP syntax or sequence errors.
    ProtocolErrors,
    /// Mailbox full.
    QuotaIssues,
    /// The remote refuses to relay.
    RelayingIssues,
    /// Routing problems for the recipient domain.
    RoutingErrors,
    /// Spam block.
    SpamRelated,
    /// Virus block.
    VirusRelated,
}

impl BounceCategory {
    /// The name written in accounting files (`bad-mailbox`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            BounceCategory::BadConfiguration => "bad-configuration",
            BounceCategory::BadConnection => "bad-connection",
            BounceCategory::BadDomain => "bad-domain",
            BounceCategory::BadMailbox => "bad-mailbox",
            BounceCategory::ContentRelated => "content-related",
            BounceCategory::InactiveMailbox => "inactive-mailbox",
            BounceCategory::InvalidSender => "invalid-sender",
            BounceCategory::MessageExpired => "message-expired",
            BounceCategory::NoAnswerFromHost => "no-answer-from-host",
            BounceCategory::Other => "other",
            BounceCategory::PolicyRelated => "policy-related",
            BounceCategory::ProtocolErrors => "protocol-errors",
            BounceCategory::QuotaIssues => "quota-issues",
            BounceCategory::RelayingIssues => "relaying-issues",
            BounceCategory::RoutingErrors => "routing-errors",
            BounceCategory::SpamRelated => "spam-related",
            BounceCategory::VirusRelated => "virus-related",
        }
    }

    /// All 17, in PowerMTA's (alphabetical) order.
    pub const ALL: [BounceCategory; 17] = [
        BounceCategory::BadConfiguration,
        BounceCategory::BadConnection,
        BounceCategory::BadDomain,
        BounceCategory::BadMailbox,
        BounceCategory::ContentRelated,
        BounceCategory::InactiveMailbox,
        BounceCategory::InvalidSender,
        BounceCategory::MessageExpired,
        BounceCategory::NoAnswerFromHost,
        BounceCategory::Other,
        BounceCategory::PolicyRelated,
        BounceCategory::ProtocolErrors,
        BounceCategory::QuotaIssues,
        BounceCategory::RelayingIssues,
        BounceCategory::RoutingErrors,
        BounceCategory::SpamRelated,
        BounceCategory::VirusRelated,
    ];
}

impl fmt::Display for BounceCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict on one failed recipient: both vendors' categories and whether to bounce now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification {
    /// PowerMTA `bounceCat`.
    pub bounce_cat: BounceCategory,
    /// SparkPost `bounce_class` (1 undetermined, 10 invalid recipient, 20 soft, 21 DNS,
    /// 22 mailbox full, 23 too large, 24 timeout, 25 admin, 40 generic, 50 block,
    /// 51 spam block, 52 spam content, 53 attachment/virus, 54 relaying, 70 transient).
    pub bounce_class: u16,
    /// True for a 5xx reply: bounce now. Connection failures are never permanent here; the
    /// caller decides when retrying ends (expiry, `bounce-upon-5xx-greeting`, …).
    pub permanent: bool,
}

impl Classification {
    /// The verdict for a message that outlived `bounce-after`; the client never sees expiry.
    pub fn message_expired() -> Classification {
        Classification {
            bounce_cat: BounceCategory::MessageExpired,
            bounce_class: 24,
            permanent: true,
        }
    }
}

use BounceCategory as C;

/// A rule's result: category, SparkPost class for a 5xx reply, and for a 4xx reply.
type Verdict = (BounceCategory, u16, u16);

/// One enhanced-status rule: `class` (`None` = 4 or 5), subject, detail (`None` = any).
pub type CodeRule = (Option<u8>, u16, Option<u16>, Verdict);

/// Step 1: enhanced codes specific enough to decide on their own.
pub const CODE_RULES: &[CodeRule] = &[
    (None, 1, Some(1), (C::BadMailbox, 10, 20)),
    (None, 1, Some(2), (C::BadDomain, 10, 21)),
    (None, 1, Some(3), (C::BadMailbox, 10, 20)),
    (None, 1, Some(4), (C::BadMailbox, 10, 20)),
    // RFC 3463 X.1.6 "Destination mailbox has moved, No forwarding address": the address
    // was valid once and mail is no longer accepted for it.
    (None, 1, Some(6), (C::BadMailbox, 10, 20)),
    (None, 1, Some(7), (C::InvalidSender, 50, 20)),
    (None, 1, Some(8), (C::InvalidSender, 50, 20)),
    (None, 1, Some(10), (C::BadDomain, 10, 21)),
    (None, 2, Some(1), (C::InactiveMailbox, 10, 20)),
    (None, 2, Some(2), (C::QuotaIssues, 22, 22)),
    (None, 2, Some(3), (C::ContentRelated, 23, 23)),
    (None, 3, Some(4), (C::ContentRelated, 23, 23)),
    (None, 4, Some(1), (C::NoAnswerFromHost, 70, 70)),
    (None, 4, Some(2), (C::BadConnection, 70, 70)),
    (None, 4, Some(4), (C::RoutingErrors, 21, 21)),
    (None, 4, Some(6), (C::RoutingErrors, 21, 21)),
    (None, 4, Some(7), (C::MessageExpired, 24, 24)),
    (None, 6, Some(7), (C::BadConfiguration, 40, 20)),
    (None, 7, Some(9), (C::PolicyRelated, 50, 50)),
];

/// One text rule: any of the phrases (lower case; a leading or trailing space asks for a
/// word boundary) gives the verdict.
pub type TextRule = (&'static [&'static str], Verdict);

/// Step 2: phrases in the reply text, first match wins. Mailbox and domain phrases come
/// before relay and policy ones, because "User unknown in relay recipient table" is about
/// the mailbox.
pub const TEXT_RULES: &[TextRule] = &[
    (&["virus", "malware", "infected"], (C::VirusRelated, 53, 53)),
    (
        &[
            "blacklist",
            "blocklist",
            "block list",
            "black list",
            "denylist",
            "spamhaus",
            "spamcop",
            "barracuda",
            "dnsbl",
            " rbl",
            "blocked using",
            "listed at",
            "listed on",
            "reputation",
        ],
        (C::SpamRelated, 51, 51),
    ),
    (
        // "UBE": unsolicited bulk e-mail (amavisd-new's "Message content rejected, UBE").
        &[
            "spam",
            "junk mail",
            "unsolicited",
            "bulk mail",
            " ube,",
            " ube ",
        ],
        (C::SpamRelated, 52, 52),
    ),
    (
        &[
            "mailbox full",
            "mailbox is full",
            "mailbox has exceeded",
            "over quota",
            "overquota",
            "quota exceeded",
            "exceeds quota",
            "exceeded its quota",
            "exceeded storage",
            "mailbox size limit",
            "disk quota",
            "storage quota",
            "out of storage",
            "mailbox exceeds",
        ],
        (C::QuotaIssues, 22, 22),
    ),
    (
        &[
            "domain does not exist",
            "domain not found",
            "no such domain",
            "domain name not found",
            "host not found",
            "host unknown",
            "nxdomain",
            "null mx",
            "invalid domain",
        ],
        (C::BadDomain, 10, 21),
    ),
    (
        &[
            "account disabled",
            "account has been disabled",
            "account is disabled",
            "mailbox disabled",
            "mailbox is disabled",
            "mailbox is inactive",
            "account is inactive",
            "inactive account",
            "inactive user",
            "deactivated",
            "account expired",
            "account has expired",
            "suspended",
            "no longer active",
            // Gmail's published "550 5.2.1 The email account that you tried to reach is
            // disabled".
            "tried to reach is disabled",
        ],
        (C::InactiveMailbox, 10, 20),
    ),
    (
        &[
            "no longer valid",
            "no longer available",
            "user unknown",
            "unknown user",
            "no such user",
            "no such mailbox",
            "no such recipient",
            "mailbox not found",
            "mailbox unavailable",
            "mailbox does not exist",
            "user does not exist",
            "recipient does not exist",
            "address does not exist",
            "does not exist",
            "doesn't exist",
            "invalid recipient",
            "invalid mailbox",
            "recipient unknown",
            "unknown recipient",
            "user not found",
            "recipient not found",
            "addressee unknown",
            "not a valid mailbox",
        ],
        (C::BadMailbox, 10, 20),
    ),
    (
        &[
            "relay access denied",
            "relaying denied",
            "relay denied",
            "relay not permitted",
            "relaying not permitted",
            "not permitted to relay",
            "relaying not allowed",
            "relay not allowed",
            "not allowed to relay",
            "unable to relay",
            "we do not relay",
            "relaying disallowed",
            "relaying prohibited",
            "relaying to",
        ],
        (C::RelayingIssues, 54, 54),
    ),
    (
        &["greylist", "graylist", "grey list", "gray list"],
        (C::PolicyRelated, 70, 70),
    ),
    (
        &[
            "too many connections",
            "too many messages",
            "rate limit",
            "rate-limit",
            "ratelimit",
            "throttl",
            "temporarily deferred",
            // Gmail's published "450 4.2.1 The user you are trying to contact is receiving
            // mail too quickly" / "… at a rate that prevents additional messages".
            "receiving mail too quickly",
            "receiving mail at a rate",
        ],
        (C::PolicyRelated, 70, 70),
    ),
    (
        &[
            "message too large",
            "message too big",
            "message is too large",
            "message is too big",
            "message size exceeds",
            "exceeds the maximum message size",
            "size exceeds",
            "size limit exceeded",
            "too much mail data",
        ],
        (C::ContentRelated, 23, 23),
    ),
    (
        &["attachment", "prohibited file", "file type"],
        (C::ContentRelated, 53, 53),
    ),
    (
        &[
            "banned",
            "blocked",
            // Mimecast's published "550 Administrative prohibition".
            "administrative prohibition",
            "policy",
            "prohibited",
            "not authorized",
            "unauthorized",
            "access denied",
            "dmarc",
            " spf",
            " dkim",
        ],
        (C::PolicyRelated, 50, 50),
    ),
    (
        &["content", "message rejected"],
        (C::ContentRelated, 50, 50),
    ),
    (
        &[
            "mail loop",
            "loops back",
            "too many hops",
            "unable to route",
            "no route",
            "unrouteable",
        ],
        (C::RoutingErrors, 21, 21),
    ),
    (
        &[
            "syntax error",
            "command unrecognized",
            "unrecognized command",
            "bad sequence",
            "out of sequence",
            "line too long",
            "bare lf",
            "bare linefeed",
        ],
        (C::ProtocolErrors, 40, 20),
    ),
    (
        &[
            "timeout",
            "timed out",
            "lost connection",
            "connection reset",
        ],
        (C::BadConnection, 70, 70),
    ),
];

/// Step 3: the enhanced code's class and subject (RFC 3463 §3).
pub const SUBJECT_RULES: &[CodeRule] = &[
    (None, 1, None, (C::BadMailbox, 10, 20)),
    (None, 2, None, (C::BadMailbox, 10, 20)),
    (None, 3, None, (C::BadConfiguration, 40, 20)),
    (Some(5), 4, None, (C::RoutingErrors, 21, 21)),
    (Some(4), 4, None, (C::BadConnection, 70, 70)),
    (None, 5, None, (C::ProtocolErrors, 40, 20)),
    (None, 6, None, (C::ContentRelated, 50, 50)),
    (None, 7, None, (C::PolicyRelated, 50, 50)),
];

/// Step 4: bare reply codes that say enough on their own.
pub const BASIC_RULES: &[(u16, Verdict)] = &[
    (421, (C::BadConnection, 70, 70)),
    (500, (C::ProtocolErrors, 40, 20)),
    (501, (C::ProtocolErrors, 40, 20)),
    (502, (C::ProtocolErrors, 40, 20)),
    (503, (C::ProtocolErrors, 40, 20)),
    (504, (C::ProtocolErrors, 40, 20)),
];

/// Classifies a failure. `reply` is the reply that decided the recipient (usually
/// [`crate::TransactionOutcome::recipient_reply`]); when it is `None`, the reply inside
/// `error` is used, and failing that the error itself: no answer at connect or greeting is
/// `no-answer-from-host`, a connection lost later is `bad-connection`, a garbled reply is
/// `protocol-errors`, all transient (SparkPost 70). A refused greeting that matches nothing
/// more specific is `no-answer-from-host` (PowerMTA's "no response after connecting,
/// 4xx/5xx"); anything in the STARTTLS phase is transient, as `require-starttls` asks.
/// With neither, the result is `other`, undetermined and transient.
pub fn classify(reply: Option<&Reply>, error: Option<&ClientError>) -> Classification {
    if let Some(reply) = reply.or_else(|| error.and_then(ClientError::reply)) {
        let mut c = classify_reply(reply);
        match error.map(ClientError::phase) {
            Some(Phase::Greeting) if c.bounce_cat == C::Other => {
                c.bounce_cat = C::NoAnswerFromHost;
            }
            Some(Phase::StartTls) => {
                c.permanent = false;
                c.bounce_cat = C::BadConnection;
                c.bounce_class = 70;
            }
            _ => {}
        }
        return c;
    }
    let Some(error) = error else {
        return Classification {
            bounce_cat: C::Other,
            bounce_class: 1,
            permanent: false,
        };
    };
    let bounce_cat = match error {
        _ if error.is_no_answer() => C::NoAnswerFromHost,
        ClientError::Protocol { .. } => C::ProtocolErrors,
        _ => C::BadConnection,
    };
    Classification {
        bounce_cat,
        bounce_class: 70,
        permanent: false,
    }
}

/// Steps 1–5 for one reply.
fn classify_reply(reply: &Reply) -> Classification {
    if reply.code < 400 {
        return Classification {
            bounce_cat: C::Other,
            bounce_class: 1,
            permanent: false,
        };
    }
    let permanent = reply.code >= 500;
    let (bounce_cat, perm_class, temp_class) = reply
        .enhanced
        .and_then(|e| code_rule(CODE_RULES, e))
        .or_else(|| text_rule(&reply.lines))
        .or_else(|| reply.enhanced.and_then(|e| code_rule(SUBJECT_RULES, e)))
        .or_else(|| {
            BASIC_RULES
                .iter()
                .find(|(code, _)| *code == reply.code)
                .map(|(_, v)| *v)
        })
        .unwrap_or((C::Other, 1, 20));
    Classification {
        bounce_cat,
        bounce_class: if permanent { perm_class } else { temp_class },
        permanent,
    }
}

/// The first rule matching the enhanced code.
fn code_rule(rules: &[CodeRule], e: EnhancedCode) -> Option<Verdict> {
    rules
        .iter()
        .find(|(class, subject, detail, _)| {
            class.is_none_or(|c| c == e.0) && *subject == e.1 && detail.is_none_or(|d| d == e.2)
        })
        .map(|rule| rule.3)
}

/// The first text rule with a phrase in the reply text (lower-cased, whitespace collapsed,
/// padded with a space at each end so phrases can ask for word boundaries).
fn text_rule(lines: &[String]) -> Option<Verdict> {
    let mut text = String::from(" ");
    for word in lines.iter().flat_map(|l| l.split_whitespace()) {
        text.push_str(&word.to_lowercase());
        text.push(' ');
    }
    TEXT_RULES
        .iter()
        .find(|(phrases, _)| phrases.iter().any(|p| text.contains(p)))
        .map(|rule| rule.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn verdict_of(c: Classification) -> (BounceCategory, u16) {
        (c.bounce_cat, c.bounce_class)
    }

    fn reply(code: u16, enhanced: Option<(u8, u16, u16)>, text: &str) -> Reply {
        match enhanced {
            Some(e) => Reply::new(code, e, text),
            None => Reply::plain(code, text),
        }
    }

    #[test]
    fn every_code_rule() {
        for &(class, subject, detail, (cat, perm, temp)) in CODE_RULES {
            let detail = detail.unwrap();
            if class != Some(4) {
                let r = reply(550, Some((5, subject, detail)), "text");
                let c = classify(Some(&r), None);
                assert_eq!(verdict_of(c), (cat, perm), "5.{subject}.{detail}");
                assert!(c.permanent);
            }
            if class != Some(5) {
                let r = reply(450, Some((4, subject, detail)), "text");
                let c = classify(Some(&r), None);
                assert_eq!(verdict_of(c), (cat, temp), "4.{subject}.{detail}");
                assert!(!c.permanent);
            }
        }
    }

    #[test]
    fn every_text_rule_and_phrase() {
        for (phrases, (cat, perm, temp)) in TEXT_RULES {
            for phrase in *phrases {
                let text = format!("Sorry:{} (see FAQ)", phrase.to_uppercase());
                let c = classify(Some(&reply(550, None, &text)), None);
                assert_eq!(verdict_of(c), (*cat, *perm), "{phrase:?}");
                let c = classify(Some(&reply(451, None, &text)), None);
                assert_eq!(verdict_of(c), (*cat, *temp), "{phrase:?}");
            }
        }
    }

    #[test]
    fn every_subject_rule() {
        for &(class, subject, _, (cat, perm, temp)) in SUBJECT_RULES {
            if class != Some(4) {
                let r = reply(554, Some((5, subject, 99)), "nothing to see");
                assert_eq!(
                    verdict_of(classify(Some(&r), None)),
                    (cat, perm),
                    "5.{subject}.99"
                );
            }
            if class != Some(5) {
                let r = reply(454, Some((4, subject, 99)), "nothing to see");
                assert_eq!(
                    verdict_of(classify(Some(&r), None)),
                    (cat, temp),
                    "4.{subject}.99"
                );
            }
        }
    }

    #[test]
    fn every_basic_rule_and_the_fallbacks() {
        for &(code, (cat, perm, temp)) in BASIC_RULES {
            let c = classify(Some(&reply(code, None, "hmm")), None);
            let want = if code >= 500 { perm } else { temp };
            assert_eq!(verdict_of(c), (cat, want), "{code}");
        }
        let c = classify(Some(&reply(550, None, "go away")), None);
        assert_eq!((verdict_of(c), c.permanent), ((C::Other, 1), true));
        let c = classify(Some(&reply(451, Some((4, 0, 0)), "go away")), None);
        assert_eq!((verdict_of(c), c.permanent), ((C::Other, 20), false));
        let c = classify(None, None);
        assert_eq!((verdict_of(c), c.permanent), ((C::Other, 1), false));
        let c = classify(Some(&reply(250, Some((2, 1, 5)), "ok")), None);
        assert_eq!((verdict_of(c), c.permanent), ((C::Other, 1), false));
    }

    #[test]
    fn the_examples_from_the_specs() {
        type Case = (
            u16,
            Option<(u8, u16, u16)>,
            &'static str,
            BounceCategory,
            u16,
        );
        let cases: &[Case] = &[
            (
                550,
                Some((5, 1, 1)),
                "<gone@example.org>: Recipient address rejected",
                C::BadMailbox,
                10,
            ),
            (
                550,
                Some((5, 1, 1)),
                "User unknown in relay recipient table",
                C::BadMailbox,
                10,
            ),
            (
                550,
                Some((5, 1, 2)),
                "bad destination system",
                C::BadDomain,
                10,
            ),
            (452, Some((4, 2, 2)), "Mailbox full", C::QuotaIssues, 22),
            (552, Some((5, 2, 2)), "over quota", C::QuotaIssues, 22),
            (
                550,
                Some((5, 7, 1)),
                "Unconfigured Sending Domain",
                C::PolicyRelated,
                50,
            ),
            (
                550,
                Some((5, 7, 1)),
                "Message rejected as spam",
                C::SpamRelated,
                52,
            ),
            (
                554,
                Some((5, 7, 1)),
                "Service unavailable; blocked using zen.spamhaus.org",
                C::SpamRelated,
                51,
            ),
            (
                554,
                Some((5, 7, 1)),
                "Relay access denied",
                C::RelayingIssues,
                54,
            ),
            (
                550,
                Some((5, 0, 0)),
                "<ana@example.net>... User unknown",
                C::BadMailbox,
                10,
            ),
            (
                550,
                None,
                "Requested action not taken: mailbox unavailable",
                C::BadMailbox,
                10,
            ),
            (550, None, "Address no longer valid", C::BadMailbox, 10),
            (552, None, "Mailbox   is  FULL", C::QuotaIssues, 22),
            (550, None, "You have been banned", C::PolicyRelated, 50),
            (
                554,
                Some((5, 7, 0)),
                "Virus found in message",
                C::VirusRelated,
                53,
            ),
            (
                451,
                Some((4, 7, 1)),
                "Greylisted, please try again later",
                C::PolicyRelated,
                70,
            ),
            (
                421,
                Some((4, 7, 0)),
                "Too many connections from your IP",
                C::PolicyRelated,
                70,
            ),
            (
                552,
                Some((5, 3, 4)),
                "Message size exceeds fixed limit",
                C::ContentRelated,
                23,
            ),
            (
                421,
                None,
                "Service not available, closing transmission channel",
                C::BadConnection,
                70,
            ),
            (
                550,
                Some((5, 1, 1)),
                "mailbox full (misleading text, the code decides)",
                C::BadMailbox,
                10,
            ),
        ];
        for &(code, e, text, cat, class) in cases {
            let c = classify(Some(&reply(code, e, text)), None);
            assert_eq!(verdict_of(c), (cat, class), "{code} {e:?} {text}");
            assert_eq!(c.permanent, code >= 500);
        }
    }

    #[test]
    fn connection_failures() {
        let timeout = |phase| ClientError::Timeout {
            phase,
            after: Duration::from_secs(1),
        };
        for (e, cat) in [
            (timeout(Phase::Connect), C::NoAnswerFromHost),
            (timeout(Phase::Greeting), C::NoAnswerFromHost),
            (
                ClientError::Closed {
                    phase: Phase::Greeting,
                },
                C::NoAnswerFromHost,
            ),
            (
                ClientError::Io {
                    phase: Phase::Connect,
                    source: std::io::ErrorKind::ConnectionRefused.into(),
                },
                C::NoAnswerFromHost,
            ),
            (timeout(Phase::Dot), C::BadConnection),
            (ClientError::Closed { phase: Phase::Data }, C::BadConnection),
            (
                ClientError::Protocol {
                    phase: Phase::Rcpt,
                    detail: "garbage".into(),
                },
                C::ProtocolErrors,
            ),
            (ClientError::TlsUnavailable, C::BadConnection),
        ] {
            let c = classify(None, Some(&e));
            assert_eq!(
                (c.bounce_cat, c.bounce_class, c.permanent),
                (cat, 70, false),
                "{e}"
            );
        }
    }

    #[test]
    fn refusals_inside_errors_use_the_reply_and_the_phase() {
        let greeting = ClientError::Rejected {
            phase: Phase::Greeting,
            reply: reply(554, None, "No SMTP service here"),
        };
        let c = classify(None, Some(&greeting));
        assert_eq!((c.bounce_cat, c.permanent), (C::NoAnswerFromHost, true));

        let blocked = ClientError::Rejected {
            phase: Phase::Greeting,
            reply: reply(554, Some((5, 7, 1)), "listed at spamcop"),
        };
        assert_eq!(classify(None, Some(&blocked)).bounce_cat, C::SpamRelated);

        let tls = ClientError::Rejected {
            phase: Phase::StartTls,
            reply: reply(554, Some((5, 7, 0)), "TLS not available"),
        };
        let c = classify(None, Some(&tls));
        assert_eq!(
            (c.bounce_cat, c.bounce_class, c.permanent),
            (C::BadConnection, 70, false)
        );
    }

    #[test]
    fn names_and_expiry() {
        assert_eq!(BounceCategory::ALL.len(), 17);
        let names: std::collections::HashSet<_> =
            BounceCategory::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), 17);
        assert_eq!(C::NoAnswerFromHost.to_string(), "no-answer-from-host");
        let e = Classification::message_expired();
        assert_eq!(
            (e.bounce_cat.as_str(), e.bounce_class, e.permanent),
            ("message-expired", 24, true)
        );
    }
}
