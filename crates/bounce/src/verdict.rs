//! The bridge to petrel's one SMTP classifier ([`petrel_reply_class::classify`]): a returned
//! recipient's status, reply code and diagnostic become a [`Reply`] and are classified the
//! same way as a reply petrel received itself, so `rb` rows and `b` rows agree.
//!
//! Around it, this module decides only what returned mail adds:
//! - [`PROSE_RULES`]: phrases that appear in bounce *prose* and never in an SMTP reply (queue
//!   expiry, "retry timeout exceeded", DNS lookups failing inside the reporting MTA), decided
//!   before the shared classifier runs;
//! - [`CODE_SUPPLEMENT`]: registered enhanced codes the shared table lacks (RFC 7372
//!   authentication failures, RFC 7505 null MX);
//! - [`SUPPLEMENT_RULES`]: remote reply phrases the shared `TEXT_RULES` lacks;
//! - the SMTP phase the report names ([`SmtpPhase`], [`PHASE_MARKERS`]): a "user unknown"
//!   after DATA, or any refusal of MAIL FROM or EHLO, is not about the recipient address.

use petrel_reply_class::{classify, BounceCategory, Reply, CODE_RULES};

mod phase;

pub use phase::{smtp_phase, SmtpPhase, PHASE_MARKERS};

/// A classification of one returned recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// PowerMTA `bounceCat`.
    pub category: BounceCategory,
    /// SparkPost `bounce_class`.
    pub class: u16,
    /// A 5xx / 5.x.x failure (not a delay).
    pub permanent: bool,
    /// Something names the address itself as bad: an addressing status code (RFC 3463
    /// X.1.1 bad mailbox, X.1.2 bad system, X.1.3 bad syntax, RFC 7505 X.1.10 null MX) or
    /// reply words for an unknown user or domain. A category reached only through a
    /// code's subject (X.1.0 "other address status") or a bare reply code is weak
    /// evidence.
    pub address_evidence: bool,
}

impl Verdict {
    /// A hard bounce: the address itself is bad (unknown mailbox or domain), permanently,
    /// and the report says so in words or with an addressing code. Full mailboxes,
    /// blocks, disabled accounts, delays and weak evidence are soft: the address may work
    /// later, and a false hard bounce would suppress a good address for good.
    pub fn hard(&self) -> bool {
        self.permanent
            && self.address_evidence
            && matches!(
                self.category,
                BounceCategory::BadMailbox | BounceCategory::BadDomain
            )
    }
}

/// The rule groups this module and the recipient builder add around the shared
/// classifier, by name. All are on in production ([`Rules::all`]); the `crossval` example
/// switches groups off to measure, per reporting MTA held out, which ones earn their
/// place (docs/BOUNCES.md, "Cross-validation").
pub const RULE_GROUPS: &[&str] = &[
    "prose-expiry",
    "prose-dns",
    "dns-transient",
    "expiry-named-reason",
    "code-supplement",
    "text-over-loose-codes",
    "relaying",
    "unverified-identity",
    "sending-host",
    "sending-limits",
    "receiver-filter",
    "provider-blocklists",
    "authentication",
    "remote-failure",
    "address-blocklist",
    "sender-setup",
    "rfc5322",
    "network",
    "locked-account",
    "vendor-unknown-mailbox",
    "postfix-suspended",
    "postfix-bare-rejection",
    "phase-mail-from",
    "phase-helo",
    "phase-connect",
    "phase-data",
    "policy-code-user-unknown",
    "weak-evidence-soft",
    "local-mailer",
    "failed-4xx-expired",
];

/// Which of [`RULE_GROUPS`] are switched off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    off: Vec<&'static str>,
}

impl Rules {
    /// Every group on: what petrel ships.
    pub const fn all() -> Rules {
        Rules { off: Vec::new() }
    }

    /// These rules without `group`.
    pub fn without(mut self, group: &'static str) -> Rules {
        if !self.off.contains(&group) {
            self.off.push(group);
        }
        self
    }

    /// Whether `group` is on.
    pub fn on(&self, group: &str) -> bool {
        !self.off.contains(&group)
    }

    /// The groups switched off.
    pub fn off(&self) -> &[&'static str] {
        &self.off
    }
}

static ALL_RULES: Rules = Rules::all();

/// One phrase rule: group name (see [`RULE_GROUPS`]), lower-case phrases, category and
/// SparkPost class.
pub type PhraseRule = (&'static str, &'static [&'static str], BounceCategory, u16);

/// Bounce-prose phrases (lower case) decided before the SMTP classifier: what the reporting
/// MTA says about its own queue, never what a remote server replied.
pub const PROSE_RULES: &[PhraseRule] = &[
    (
        "prose-expiry",
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
            // DragonFly Mail Agent: "Could not deliver for the last 432000 seconds. Giving up."
            "could not deliver for the last",
            // Sendmail's warning: "message still undelivered after 4 hours".
            "still undelivered after",
        ],
        BounceCategory::MessageExpired,
        24,
    ),
    (
        "prose-dns",
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
            // DragonFly Mail Agent: "DNS lookup failure: host example.org not found".
            "dns lookup failure",
            // OpenSMTPD: "No MX found for domain".
            "no mx found",
            "host name lookup failure",
            // Postfix: "Name service error for domain example.com: Host not found".
            "name service error",
        ],
        BounceCategory::BadDomain,
        10,
    ),
];

/// Words (lower case) that make a DNS failure in [`PROSE_RULES`] temporary even when the
/// report is final: Postfix's "Host not found, try again" is a resolver timeout
/// (`TRY_AGAIN`) and "Malformed or unexpected name server reply" a broken answer, neither
/// an answer that the domain does not exist.
pub const DNS_TRANSIENT: &[&str] = &[
    "try again",
    "temporary failure",
    "servfail",
    "server failure",
    "timed out",
    "malformed or unexpected name server reply",
];

/// Words (lower case) of a DNS answer that is definite whatever the status: the domain
/// publishes a null MX (RFC 7505), it exists and refuses mail.
pub const DNS_DEFINITE: &[&str] = &["null mx", "doesn't receive email", "does not receive email"];

/// Enhanced codes that real MTAs use loosely, so a recognisable reply text decides over the
/// code's registered meaning: Sendmail-family servers answer unknown users with 5.2.1
/// ("mailbox disabled"), Microsoft uses 5.1.10 ("null MX") for "recipient not found" (Exchange
/// Online's published "550 5.1.10 RESOLVER.ADR.RecipientNotFound") and 5.4.1 for "Recipient
/// address rejected: Access denied" (directory-based edge blocking of unknown recipients).
/// X.1.6 is not loose: RFC 3463 "Destination mailbox has moved, No forwarding address" says
/// the address is no longer accepted, which is what "recipient no longer on server" says.
pub const TEXT_OVER_CODE: &[(u16, u16)] = &[(2, 1), (1, 10), (2, 0), (4, 1)];

/// One [`CODE_SUPPLEMENT`] rule: class (`None` = 4 or 5), subject, detail, category, and
/// the SparkPost class for a permanent and for a transient failure.
pub type CodeSupplement = (Option<u8>, u16, u16, BounceCategory, u16, u16);

/// Registered enhanced codes the shared `CODE_RULES` does not know (see [`CodeSupplement`]).
/// Candidates to move into `petrel_reply_class::CODE_RULES`.
pub const CODE_SUPPLEMENT: &[CodeSupplement] = &[
    // RFC 3463: x.4.3 "Directory server failure" (the system could not reach the directory
    // or routing server it needs, qmail-ldap's "Unable to contact LDAP server (#4.4.3)"): a
    // routing problem of the receiving side, whatever the expiry prose around it says.
    (None, 4, 3, BounceCategory::RoutingErrors, 21, 21),
    // RFC 3463 (IANA registry): x.7.13 "User Account Disabled".
    (None, 7, 13, BounceCategory::InactiveMailbox, 10, 20),
    // RFC 7372 authentication failures, all of the sending domain or host, never of the
    // recipient: x.7.20-22 DKIM, x.7.23-24 SPF, x.7.25 reverse DNS, x.7.26 several checks.
    // "5.7.26 … SPF … To best protect our users from spam" is an authentication block,
    // not a spam verdict on the content.
    (None, 7, 20, BounceCategory::PolicyRelated, 50, 50),
    (None, 7, 21, BounceCategory::PolicyRelated, 50, 50),
    (None, 7, 22, BounceCategory::PolicyRelated, 50, 50),
    (None, 7, 23, BounceCategory::PolicyRelated, 50, 50),
    (None, 7, 24, BounceCategory::PolicyRelated, 50, 50),
    (None, 7, 25, BounceCategory::PolicyRelated, 50, 50),
    (None, 7, 26, BounceCategory::PolicyRelated, 50, 50),
    // RFC 7505: x.7.27 "Sender address has null MX".
    (None, 7, 27, BounceCategory::InvalidSender, 50, 20),
];

/// Phrases of remote replies that the shared classifier's `TEXT_RULES` does not know yet,
/// seen in returned mail. Checked before the shared text rules (so Postfix's "delivery
/// temporarily suspended" is not read as a suspended account). Candidates to move into
/// `petrel_reply_class::TEXT_RULES`.
pub const SUPPLEMENT_RULES: &[PhraseRule] = &[
    // Relaying refused in Postfix's and others' short forms ("Recipient address rejected:
    // No relaying"), before the policy group's "rejected".
    (
        "relaying",
        &["no relaying", "relaying denied", "relay access denied"],
        BounceCategory::RelayingIssues,
        54,
    ),
    // A smarthost that will not relay for an identity it has not verified (Amazon SES:
    // "554 Message rejected: Email address is not verified. The following identities
    // failed the check"): the relay refuses, whatever the recipient.
    (
        "unverified-identity",
        &[
            "email address is not verified",
            "identities failed the check",
        ],
        BounceCategory::RelayingIssues,
        54,
    ),
    // Refusals of the sending host: missing or unverifiable reverse DNS, hosts that will
    // not talk to us, and Google Groups' posting refusals.
    (
        "sending-host",
        &[
            "refused to talk to me",
            "no ptr record",
            "ptr record",
            "reverse dns",
            "reverse lookup",
            "rdns",
            "unverifiable sending ip",
            "unverifyable sending ip",
            "too many recipients",
            "groups.google.com",
            "google groups",
            // Orange / La Poste: "421 … Service refusé. Veuillez essayer plus tard".
            "service refuse",
            "service refusé",
            // Mimecast's published "554 Host network not allowed" (the sending IP is not
            // permitted by the recipient's policy).
            "host network not allowed",
        ],
        BounceCategory::PolicyRelated,
        50,
    ),
    // Sending limits that are not the shared table's wording ("You've reached your daily
    // relay quota"): a rate limit on the sender, transient.
    (
        "sending-limits",
        &[
            "relay quota",
            "sending quota",
            "sending limit",
            "daily limit",
            "hourly limit",
        ],
        BounceCategory::PolicyRelated,
        70,
    ),
    // The receiving system's own filter said so ("550 5.2.0 Message Filtered"): a block,
    // not an unknown user.
    (
        "receiver-filter",
        &[
            "message filtered",
            "rejected by the domain filter",
            "rejected by a filter",
            "due to the recipients policy",
            "message rejected due to user rules",
            "refused due to recipient preferences",
            "you have been blocked by the recipient",
            "recipient is only accepting mail from specific",
        ],
        BounceCategory::PolicyRelated,
        50,
    ),
    // Mailbox providers' published codes for a sending IP blocked on reputation: Outlook.com
    // "550 SC-001 … Unfortunately, messages from … weren't sent … part of their network is on
    // our block list" (SC-001 to SC-004), Cox's "AUP#CXBL" / "AUP#CDRBL" (IP blocked for
    // spam-like behaviour) and "AUP#IPBL…" (listed on a DNSBL), from postmaster.cox.net.
    (
        "provider-blocklists",
        &[
            " sc-001",
            " sc-002",
            " sc-003",
            " sc-004",
            "aup#cxbl",
            "aup#cdrbl",
            "aup#ipbl",
        ],
        BounceCategory::SpamRelated,
        51,
    ),
    // The server requires the client to authenticate (RFC 4954: "530 5.7.0 Authentication
    // required"; relays and submission servers: "550 Unauthenticated senders not
    // allowed"): a refusal of the sending setup, never of the recipient.
    (
        "authentication",
        &[
            "authentication required",
            "authentication is required",
            "unauthenticated sender",
            "must authenticate",
        ],
        BounceCategory::PolicyRelated,
        50,
    ),
    // The remote system failed on its side ("Internal system error", RFC 5321's "451
    // Requested action aborted: local error in processing"): a configuration problem of
    // the receiving system, not the recipient's address.
    (
        "remote-failure",
        &[
            "internal system error",
            "internal server error",
            "internal error",
            "system error",
            "local error in processing",
        ],
        BounceCategory::BadConfiguration,
        40,
    ),
    // Lists of blocked e-mail addresses (sender or recipient), as opposed to the IP
    // reputation lists of the shared spam group: a policy decision about an address.
    (
        "address-blocklist",
        &[
            "email address is blacklisted",
            "e-mail address is blacklisted",
            "sender address is blacklisted",
        ],
        BounceCategory::PolicyRelated,
        50,
    ),
    // The sender's own setup is refused: Gmail's "Send mail as" for an address whose
    // settings are broken, unverified sender identities.
    (
        "sender-setup",
        &[
            "'send mail as'",
            "customfromdenied",
            "sender address rejected",
            "sender verify failed",
            "sender domain must exist",
        ],
        BounceCategory::InvalidSender,
        50,
    ),
    // Messages that break RFC 5322 (Gmail: "Messages with multiple addresses in From:
    // header are not accepted", "… is not RFC 5322 compliant").
    (
        "rfc5322",
        &[
            "rfc 5322",
            "rfc5322",
            "rfc 2822",
            "rfc2822",
            "multiple addresses in from",
            "missing a valid address in from",
            "duplicate header",
            "malformed header",
        ],
        BounceCategory::ContentRelated,
        50,
    ),
    // The reporting MTA could not reach any MX (OpenSMTPD "Network error on destination
    // MXs"); transient by nature.
    (
        "network",
        &[
            "network error",
            "network is unreachable",
            "connection refused",
        ],
        BounceCategory::BadConnection,
        70,
    ),
    // Accounts locked by their provider: the address exists, so never hard.
    (
        "locked-account",
        &["temporarily locked", "account is locked"],
        BounceCategory::InactiveMailbox,
        10,
    ),
    // Unknown mailboxes in vendors' own words: Gmail ("the address couldn't be found"),
    // Exchange 2003 ("The recipient name is not recognized"), IMail ("Invalid final
    // delivery userid"), Lotus Notes / Domino ("not listed in public Name & Address Book",
    // "not listed in Domino Directory"), Microsoft's directory-based edge blocking and
    // Postfix access maps ("Recipient address rejected: Access denied", which Exchange
    // Online documents as "the recipient does not exist").
    (
        "vendor-unknown-mailbox",
        &[
            "doesn't have a",
            "not listed in domino directory",
            "not listed in public name & address book",
            "no mailbox here",
            "recipientnotfound",
            "recipient not found",
            "address couldn't be found",
            "address could not be found",
            "recipient name is not recognized",
            "invalid final delivery userid",
            "recipient address rejected: access denied",
        ],
        BounceCategory::BadMailbox,
        10,
    ),
    // Postfix's note that it stopped trying a destination for now ("delivery temporarily
    // suspended: connect to mx[192.0.2.1]:25: Connection timed out"): a connection
    // problem, not a suspended account (the shared "suspended"). After the groups above,
    // so a reason given after it ("refused to talk to me") still decides.
    (
        "postfix-suspended",
        &["delivery temporarily suspended"],
        BounceCategory::BadConnection,
        70,
    ),
];

/// Replies that servers which check recipients only after DATA give for an account that
/// does not exist, so the phase does not make them a filter (Yahoo: "554 delivery error:
/// dd This user doesn't have a yahoo.com account").
pub const AFTER_DATA_MAILBOX: &[&str] = &["doesn't have a", "does not have a"];

/// Classifies one recipient: `status` is the RFC 3463 code, `reply_code` the SMTP code,
/// `text` the diagnostic (or the prose around it). The SMTP phase is read from `text`.
pub fn verdict(status: Option<(u8, u16, u16)>, reply_code: Option<u16>, text: &str) -> Verdict {
    verdict_in(status, reply_code, text, smtp_phase(text))
}

/// [`verdict`] with the SMTP phase known from elsewhere in the report (the recipient's
/// paragraph, a session transcript).
pub fn verdict_in(
    status: Option<(u8, u16, u16)>,
    reply_code: Option<u16>,
    text: &str,
    phase: Option<SmtpPhase>,
) -> Verdict {
    verdict_with(&ALL_RULES, status, reply_code, text, phase)
}

/// [`verdict_in`] with some rule groups switched off ([`Rules`]).
pub fn verdict_with(
    rules: &Rules,
    status: Option<(u8, u16, u16)>,
    reply_code: Option<u16>,
    text: &str,
    phase: Option<SmtpPhase>,
) -> Verdict {
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
        address_evidence: true,
    };
    let plain = Reply::plain(code, text.to_string());
    // The text alone, under a neutral code: a bare-code rule (421 → bad-connection) must not
    // pre-empt what the enhanced code's subject says (421 4.3.0 is a system problem).
    let neutral = Reply::plain(if permanent { 550 } else { 450 }, text.to_string());
    let with_code = match status {
        Some(s) if s.0 == 4 || s.0 == 5 => Reply::new(code, s, text.to_string()),
        _ => plain.clone(),
    };
    let as_verdict = |c: petrel_reply_class::Classification| Verdict {
        category: c.bounce_cat,
        class: c.bounce_class,
        permanent,
        address_evidence: true,
    };
    let text_only = classify(Some(&neutral), None);
    let supplemented = supplement(rules, &lower);
    // Evidence that the address itself is bad: an addressing code, or words.
    let says_address =
        |c: BounceCategory| matches!(c, BounceCategory::BadMailbox | BounceCategory::BadDomain);
    let address_evidence = !rules.on("weak-evidence-soft")
        || matches!(status, Some((_, 1, 1 | 2 | 3 | 6 | 10)))
        || says_address(text_only.bounce_cat)
        || supplemented.is_some_and(|(c, _)| says_address(c));
    let v = 'decided: {
        // 1. The reporting MTA's own prose about its queue or DNS, unless a code with a
        //    rule of its own says otherwise (5.1.1 beats a mention of expiry; x.4.4 and
        //    x.4.7 agree with it; a code without a rule, such as 4.1.9, says less than the
        //    prose).
        let ruled = status.is_some_and(|s| has_code_rule(rules, s));
        if !ruled || matches!(status, Some((_, 4, 7 | 4))) {
            if let Some(v) = prose(rules, &lower, permanent, text, code, phase) {
                break 'decided v;
            }
        }
        // 2. The receiver names its own filter or the recipient's preferences (Facebook's
        //    published "550 5.1.1 RCP-P2 … Refused due to recipient preferences"): the
        //    address exists, so that outweighs an address code.
        if let Some((_, _, category, class)) =
            phrase_rule(rules, SUPPLEMENT_RULES, &lower).filter(|r| r.0 == "receiver-filter")
        {
            break 'decided make(*category, *class);
        }
        // 3. A specific enhanced code with a rule of its own decides, unless it is a
        //    loosely used one.
        if let Some(s) = status {
            if let Some(&(_, _, _, category, perm, temp)) = code_supplement(rules, s) {
                break 'decided make(category, if permanent { perm } else { temp });
            }
            let loose = rules.on("text-over-loose-codes") && TEXT_OVER_CODE.contains(&(s.1, s.2));
            // X.4.4 "unable to route" is what servers answer when the domain does not
            // resolve; words that say so ("550 5.4.4 Invalid domain") name the cause.
            if s.1 == 4
                && s.2 == 4
                && rules.on("text-over-loose-codes")
                && text_only.bounce_cat == BounceCategory::BadDomain
            {
                break 'decided as_verdict(text_only);
            }
            if shared_code_rule(s) && !loose {
                break 'decided as_verdict(classify(Some(&with_code), None));
            }
        }
        // 4. Reply phrases the shared table lacks.
        if let Some((category, class)) = supplemented {
            break 'decided make(category, class);
        }
        // 5. The shared text rules on the text alone, then the shared classifier with the
        //    code.
        if text_only.bounce_cat != BounceCategory::Other {
            break 'decided as_verdict(text_only);
        }
        as_verdict(classify(Some(&with_code), None))
    };
    let mut v = refine(rules, v, status, &lower, phase);
    v.address_evidence =
        address_evidence || (v.category == BounceCategory::BadDomain && prose_dns(rules, &lower));
    // A bad-mailbox or bad-domain verdict on weak evidence is undetermined for SparkPost
    // (class 1), never "invalid recipient" (10): only hard bounces are suppressed.
    if v.permanent && v.class == 10 && !v.address_evidence && says_address(v.category) {
        v.class = 1;
    }
    v
}

/// Whether an enhanced code has a rule of its own (shared or supplementary).
fn has_code_rule(rules: &Rules, s: (u8, u16, u16)) -> bool {
    code_supplement(rules, s).is_some() || shared_code_rule(s)
}

/// The [`CODE_SUPPLEMENT`] rule for `s`.
fn code_supplement(rules: &Rules, s: (u8, u16, u16)) -> Option<&'static CodeSupplement> {
    if !rules.on("code-supplement") {
        return None;
    }
    CODE_SUPPLEMENT
        .iter()
        .find(|r| r.0.is_none_or(|c| c == s.0) && r.1 == s.1 && r.2 == s.2)
}

/// The first [`PhraseRule`] that is on and has a phrase in `lower`.
fn phrase_rule(
    rules: &Rules,
    table: &'static [PhraseRule],
    lower: &str,
) -> Option<&'static PhraseRule> {
    table
        .iter()
        .find(|(name, phrases, _, _)| rules.on(name) && phrases.iter().any(|p| lower.contains(p)))
}

/// Whether the text is the reporting MTA's own DNS failure ([`PROSE_RULES`]' "prose-dns").
fn prose_dns(rules: &Rules, lower: &str) -> bool {
    phrase_rule(rules, PROSE_RULES, lower).is_some_and(|r| r.0 == "prose-dns")
}

/// Whether the shared `CODE_RULES` has a rule for `s`.
fn shared_code_rule(s: (u8, u16, u16)) -> bool {
    CODE_RULES.iter().any(|(class, subject, detail, _)| {
        class.is_none_or(|c| c == s.0) && *subject == s.1 && detail.is_none_or(|d| d == s.2)
    })
}

/// Step 1: [`PROSE_RULES`] on the collapsed text.
fn prose(
    rules: &Rules,
    lower: &str,
    permanent: bool,
    text: &str,
    code: u16,
    phase: Option<SmtpPhase>,
) -> Option<Verdict> {
    let (_, _, category, class) = phrase_rule(rules, PROSE_RULES, lower)?;
    let mut v = Verdict {
        category: *category,
        class: if permanent {
            *class
        } else {
            transient_class(*class)
        },
        permanent,
        address_evidence: true,
    };
    match category {
        // A reason the text names itself ("mailbox is full: retry timeout exceeded") says
        // more than the queue giving up on it.
        BounceCategory::MessageExpired if rules.on("expiry-named-reason") => {
            if let Some(reason) = named_reason(rules, lower, text, code) {
                v.category = reason.0;
                v.class = if permanent {
                    reason.1
                } else {
                    transient_class(reason.1)
                };
            } else if phase == Some(SmtpPhase::Helo) && rules.on("phase-helo") {
                // The queue gave up on a server that refused our EHLO / HELO every time
                // (qmail: "Connected to … but my name was rejected"): a refusal of the
                // sending host, not a timeout.
                v.category = BounceCategory::PolicyRelated;
                v.class = 50;
            }
        }
        // A DNS lookup that failed temporarily (or that a report calls temporary) is a
        // routing problem; "the domain does not exist" (bad-domain) needs a permanent answer.
        BounceCategory::BadDomain if rules.on("dns-transient") => {
            let definite = DNS_DEFINITE.iter().any(|p| lower.contains(p));
            let transient = !permanent || DNS_TRANSIENT.iter().any(|p| lower.contains(p));
            if transient && !definite {
                v.category = BounceCategory::RoutingErrors;
                v.class = 21;
            }
        }
        _ => {}
    }
    Some(v)
}

/// The reason a queue-expiry text names besides the expiry, if it is one that outlasts
/// retrying: a full mailbox, an unknown or disabled mailbox, a spam, virus or policy block
/// (the last reply quoted: "421 4.7.0 [TSS04] … temporarily deferred … I'm not going to try
/// again").
fn named_reason(
    rules: &Rules,
    lower: &str,
    text: &str,
    code: u16,
) -> Option<(BounceCategory, u16)> {
    let found = supplement(rules, lower).unwrap_or_else(|| {
        let c = classify(Some(&Reply::plain(code, text.to_string())), None);
        (c.bounce_cat, c.bounce_class)
    });
    matches!(
        found.0,
        BounceCategory::QuotaIssues
            | BounceCategory::BadMailbox
            | BounceCategory::InactiveMailbox
            | BounceCategory::SpamRelated
            | BounceCategory::VirusRelated
            | BounceCategory::PolicyRelated
    )
    .then_some(found)
}

/// Step 3: [`SUPPLEMENT_RULES`], and a Postfix recipient refusal with no reason at all
/// ("550 <a@b>: Recipient address rejected."), which refuses the address itself.
fn supplement(rules: &Rules, lower: &str) -> Option<(BounceCategory, u16)> {
    if let Some((_, _, category, class)) = phrase_rule(rules, SUPPLEMENT_RULES, lower) {
        return Some((*category, *class));
    }
    if !rules.on("postfix-bare-rejection") {
        return None;
    }
    let marker = "recipient address rejected";
    let at = lower.find(marker)?;
    let rest = lower[at + marker.len()..].trim_start_matches(['.', ':', ';', ' ']);
    (rest.is_empty() || rest.starts_with("(in reply to"))
        .then_some((BounceCategory::BadMailbox, 10))
}

/// What the enhanced code's subject and the SMTP phase add to a verdict on the text:
/// - a security or policy code (x.7.x) makes "user unknown" a block: servers hide filters
///   behind that wording, and a policy refusal is no evidence that the address is bad;
/// - after DATA the recipient had been accepted, so "user unknown" without an address
///   status code (x.1.x) is a filter on the message (except [`AFTER_DATA_MAILBOX`]);
/// - a refusal of MAIL FROM is about the sender's address, not the recipient's;
/// - a refusal of EHLO / HELO, or of the connection, is about the sending host.
fn refine(
    rules: &Rules,
    mut v: Verdict,
    status: Option<(u8, u16, u16)>,
    lower: &str,
    phase: Option<SmtpPhase>,
) -> Verdict {
    let mailbox = matches!(
        v.category,
        BounceCategory::BadMailbox | BounceCategory::BadDomain | BounceCategory::InactiveMailbox
    );
    let subject = status.map(|s| s.1);
    let to = match phase {
        Some(SmtpPhase::MailFrom) if mailbox && rules.on("phase-mail-from") => {
            Some((BounceCategory::InvalidSender, 50, 20))
        }
        Some(SmtpPhase::Helo)
            if rules.on("phase-helo") && (mailbox || v.category == BounceCategory::Other) =>
        {
            Some((BounceCategory::PolicyRelated, 50, 50))
        }
        Some(SmtpPhase::Connect)
            if rules.on("phase-connect") && (mailbox || v.category == BounceCategory::Other) =>
        {
            Some((BounceCategory::NoAnswerFromHost, 1, 20))
        }
        Some(SmtpPhase::Data)
            if rules.on("phase-data")
                && v.category == BounceCategory::BadMailbox
                && subject != Some(1)
                && !AFTER_DATA_MAILBOX.iter().any(|p| lower.contains(p)) =>
        {
            Some((BounceCategory::PolicyRelated, 50, 50))
        }
        _ if rules.on("policy-code-user-unknown")
            && subject == Some(7)
            && v.category == BounceCategory::BadMailbox =>
        {
            Some((BounceCategory::PolicyRelated, 50, 50))
        }
        _ => None,
    };
    if let Some((category, perm, temp)) = to {
        v.category = category;
        v.class = if v.permanent { perm } else { temp };
    }
    v
}

/// The SparkPost class of a transient failure for a permanent one's class.
fn transient_class(class: u16) -> u16 {
    match class {
        10 | 1 | 40 => 20,
        c => c,
    }
}

/// Lower case with runs of whitespace collapsed to one space. Reply and status codes after
/// the first word are dropped: a multi-line reply flattened into one diagnostic repeats
/// them at every line start ("Messages with multiple 550-5.7.1 addresses in From:"), which
/// would split the phrases the rules look for.
pub(crate) fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    for (i, w) in text.split_whitespace().enumerate() {
        if i > 0 && is_code_word(w) {
            continue;
        }
        out.push_str(&w.to_lowercase());
        out.push(' ');
    }
    out
}

/// `550`, `550-`, `550-5.7.1`, `5.7.1`: a reply code, an enhanced code or both.
fn is_code_word(w: &str) -> bool {
    let (reply, rest) = match w.split_once('-') {
        Some((r, rest)) => (r, Some(rest)),
        None => (w, None),
    };
    let is_reply = |r: &str| {
        r.len() == 3 && r.starts_with(['4', '5']) && r.bytes().all(|b| b.is_ascii_digit())
    };
    let is_enhanced = |e: &str| {
        let parts: Vec<&str> = e.split('.').collect();
        parts.len() == 3
            && ["2", "4", "5"].contains(&parts[0])
            && parts[1..]
                .iter()
                .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    };
    match rest {
        Some(rest) => is_reply(reply) && (rest.is_empty() || is_enhanced(rest)),
        None => is_reply(w) || is_enhanced(w),
    }
}

#[cfg(test)]
mod tests;
