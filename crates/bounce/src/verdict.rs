//! The bridge to petrel's one SMTP classifier ([`petrel_smtp_client::classify`]): a returned
//! recipient's status, reply code and diagnostic become a [`Reply`] and are classified the
//! same way as a reply petrel received itself, so `rb` rows and `b` rows agree.
//!
//! Only phrases that appear in bounce *prose* and never in an SMTP reply (queue expiry,
//! "retry timeout exceeded", DNS lookups failing inside the reporting MTA) are decided here,
//! in [`PROSE_RULES`], before the shared classifier runs.

use petrel_smtp_client::{classify, BounceCategory, Reply, CODE_RULES};

/// A classification of one returned recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// PowerMTA `bounceCat`.
    pub category: BounceCategory,
    /// SparkPost `bounce_class`.
    pub class: u16,
    /// A 5xx / 5.x.x failure (not a delay).
    pub permanent: bool,
}

impl Verdict {
    /// A hard bounce: the address itself is bad (unknown mailbox or domain), permanently.
    /// Full mailboxes, blocks and disabled accounts are soft: the address may work later.
    pub fn hard(&self) -> bool {
        self.permanent
            && matches!(
                self.category,
                BounceCategory::BadMailbox | BounceCategory::BadDomain
            )
    }
}

/// Bounce-prose phrases (lower case) decided before the SMTP classifier: what the reporting
/// MTA says about its own queue, never what a remote server replied.
pub const PROSE_RULES: &[(&[&str], BounceCategory, u16)] = &[
    (
        &[
            "retry timeout exceeded",
            "retry time not reached for any host after a long failure period",
            "delivery time expired",
            "message expired",
            "has been delayed",
            "have been delayed",
            "was not delivered within",
            "could not be delivered within",
            "couldn't be delivered within",
            "has not been delivered",
            "unable to deliver for",
            "delivery attempts will continue",
            "will be retried for",
            "will retry for",
            "message will be retried",
            "i'm not going to try again",
            "too long in the queue",
            "queue too long",
            "timeout exceeded",
            "expired after",
            "delivery has been delayed",
            "has been in the queue too long",
            "not yet been delivered",
            "could not be delivered for",
            "message timed out",
            "envelope expired",
            "all hosts have been failing for a long time",
            "did not accept our requests to connect",
            "host not reachable",
        ],
        BounceCategory::MessageExpired,
        24,
    ),
    (
        &[
            "all relevant mx records point to non-existent hosts",
            "unrouteable mail domain",
            "unrouteable address",
            "name or service not known",
            "host or domain name not found",
            "no mx or a record",
            "domain has no mx",
            "mx record for domain",
            "dns error",
            "no such host",
            "couldn't find any host named",
            "could not be resolved",
            "sorry, i couldn't find any host",
            "unknown host",
            "nameserver error",
            "indicated no smtp service",
            "couldn't find a mail exchanger",
            "domain name not found",
        ],
        BounceCategory::BadDomain,
        10,
    ),
];

/// Enhanced codes that real MTAs use loosely, so a recognisable reply text decides over the
/// code's registered meaning: Sendmail-family servers answer unknown users with 5.2.1
/// ("mailbox disabled"), Microsoft uses 5.1.10 ("null MX") for "recipient not found" and
/// 5.1.6 ("mailbox moved") for "not our customer".
pub const TEXT_OVER_CODE: &[(u16, u16)] = &[(2, 1), (1, 10), (1, 6), (2, 0), (4, 1)];

/// Phrases of remote replies that the shared classifier's `TEXT_RULES` does not know yet,
/// seen in returned mail. Checked before the shared text rules (so Postfix's "delivery
/// temporarily suspended" is not read as a suspended account). Candidates to move into
/// `petrel_smtp_client::TEXT_RULES`.
pub const SUPPLEMENT_RULES: &[(&[&str], BounceCategory, u16)] = &[
    (
        &[
            "refused to talk to me",
            "no ptr record",
            "ptr record",
            "reverse dns",
            "reverse lookup",
            "rdns",
            "too many recipients",
            "not accepting connections",
            "groups.google.com",
            "google groups",
        ],
        BounceCategory::PolicyRelated,
        50,
    ),
    (
        &[
            "temporary locked",
            "temporarily locked",
            "disabled recipient",
            "mailbox is frozen",
            "account is locked",
        ],
        BounceCategory::InactiveMailbox,
        10,
    ),
    (
        &[
            "not our user",
            "not our customer",
            "user not exist",
            "doesn't have a",
            "not listed in domino directory",
            "no mailbox here",
            "recipientnotfound",
            "recipient not found",
            "unknown or illegal user",
        ],
        BounceCategory::BadMailbox,
        10,
    ),
];

/// Classifies one recipient: `status` is the RFC 3463 code, `reply_code` the SMTP code,
/// `text` the diagnostic (or the prose around it).
pub fn verdict(status: Option<(u8, u16, u16)>, reply_code: Option<u16>, text: &str) -> Verdict {
    let permanent = match (status, reply_code) {
        (Some((c, _, _)), _) => c == 5,
        (None, Some(code)) => code >= 500,
        (None, None) => true,
    };
    let lower = collapse(text);
    let code = reply_code
        .filter(|c| (*c >= 500) == permanent)
        .unwrap_or(if permanent { 550 } else { 450 });
    let make = |category: BounceCategory, class: u16| Verdict {
        category,
        class: if permanent {
            class
        } else {
            transient_class(class)
        },
        permanent,
    };
    // 1. The reporting MTA's own prose about its queue or DNS, unless a specific code
    //    says otherwise (5.1.1 beats a mention of expiry; x.4.4 and x.4.7 agree with it).
    let specific = status.is_some_and(|s| s.1 != 0 || s.2 != 0);
    if !specific || matches!(status, Some((_, 4, 7 | 4))) {
        for (phrases, category, class) in PROSE_RULES {
            if phrases.iter().any(|p| lower.contains(p)) {
                return make(*category, *class);
            }
        }
    }
    let plain = Reply::plain(code, text.to_string());
    let with_code = match status {
        Some(s) if s.0 == 4 || s.0 == 5 => Reply::new(code, s, text.to_string()),
        _ => plain.clone(),
    };
    let shared = classify(Some(&with_code), None);
    let as_verdict = |c: petrel_smtp_client::Classification| Verdict {
        category: c.bounce_cat,
        class: c.bounce_class,
        permanent,
    };
    // 2. A specific enhanced code with a rule of its own decides, unless it is a loosely
    //    used one.
    if let Some(s) = status {
        let has_rule = CODE_RULES.iter().any(|(class, subject, detail, _)| {
            class.is_none_or(|c| c == s.0) && *subject == s.1 && detail.is_none_or(|d| d == s.2)
        });
        if has_rule && !TEXT_OVER_CODE.contains(&(s.1, s.2)) {
            return as_verdict(shared);
        }
    }
    // 3. Reply phrases the shared table lacks.
    for (phrases, category, class) in SUPPLEMENT_RULES {
        if phrases.iter().any(|p| lower.contains(p)) {
            return make(*category, *class);
        }
    }
    // 4. The shared text rules on the text alone, then the shared classifier with the code.
    let text_only = classify(Some(&plain), None);
    if text_only.bounce_cat != BounceCategory::Other {
        return as_verdict(text_only);
    }
    as_verdict(shared)
}

/// The SparkPost class of a transient failure for a permanent one's class.
fn transient_class(class: u16) -> u16 {
    match class {
        10 | 1 | 40 => 20,
        c => c,
    }
}

/// Lower case with runs of whitespace collapsed to one space.
pub(crate) fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    for w in text.split_whitespace() {
        out.push_str(&w.to_lowercase());
        out.push(' ');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
