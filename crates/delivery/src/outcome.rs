//! The outcome policy, pure: what the replies of one attempt mean for each recipient and for
//! its queue under the operator's rules, and when waiting mail has waited too long.
//!
//! No I/O and no clock (times are arguments), so every rule is unit-tested below. The engine
//! applies what this module decides to the spool, the queues and the records (`settle.rs`).

use std::time::{Duration, SystemTime};

use petrel_config::{Config, EffectiveDomainSettings, QueueMode, SmtpPatternList};
use petrel_reply_class::{classify, ClientError, Reply};
use petrel_smtp_client::TransactionOutcome;

/// SparkPost's bounce class for mail refused by the sender platform's own policy.
pub(crate) const SUPPRESSED_CLASS: u16 = 25;

/// Bounce classes that mean the address will never work (SparkPost suppresses them):
/// invalid recipient, no recipient / bad address, unsubscribe.
const HARD_CLASSES: [u16; 3] = [10, 30, 90];

/// Whether a bounce of `class` means the address will never work, so it is suppressed.
pub(crate) fn is_hard(class: u16) -> bool {
    HARD_CLASSES.contains(&class)
}

/// What happened to one recipient in one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// The receiver took it.
    Delivered(Reply),
    /// A temporary failure: the recipient waits for its next retry.
    Deferred {
        /// The enhanced status (`4.2.2`).
        status: String,
        /// The accounting diagnostic (`smtp;452 4.2.2 mailbox full`).
        diag: String,
        /// SparkPost `bounce_class`.
        class: u16,
    },
    /// A permanent failure: the recipient is finished.
    Bounced {
        /// The enhanced status (`5.1.1`).
        status: String,
        /// The accounting diagnostic.
        diag: String,
        /// PowerMTA `bounceCat`, or the operator's own from `<bounce-category-patterns>`.
        category: String,
        /// SparkPost `bounce_class`.
        class: u16,
    },
}

/// The operator's rules that bear on an outcome: the queue's `<smtp-pattern-list>` and the
/// global `<bounce-category-patterns>`.
pub(crate) struct Rules<'c> {
    config: &'c Config,
    patterns: Option<&'c SmtpPatternList>,
}

impl<'c> Rules<'c> {
    /// The rules for a queue with `settings`.
    pub fn new(config: &'c Config, settings: &EffectiveDomainSettings) -> Rules<'c> {
        Rules {
            config,
            patterns: settings
                .smtp_pattern_list
                .as_deref()
                .and_then(|n| config.smtp_pattern_list(n)),
        }
    }
}

/// What the reply patterns ask of the queue after an attempt.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct QueueAction {
    /// `mode=backoff` / `mode=normal` of every matching reply, in order, with that reply.
    pub modes: Vec<(QueueMode, String)>,
    /// `defer-queue`: the reply that asked for it (the first one).
    pub defer: Option<String>,
    /// `bounce-queue`: the fate every waiting recipient gets (from the first such reply).
    pub bounce: Option<Fate>,
}

impl QueueAction {
    /// Matches one reply against the queue's patterns and notes what its rule asks.
    fn note(&mut self, rules: &Rules<'_>, reply: &Reply) {
        let Some(list) = rules.patterns else { return };
        let line = reply_line(reply);
        let Some(a) = list.actions_for(&line) else {
            return;
        };
        if a.defer_queue && self.defer.is_none() {
            self.defer = Some(line.clone());
        }
        if a.bounce_queue && self.bounce.is_none() {
            self.bounce = Some(forced_bounce(reply));
        }
        if let Some(mode) = a.mode {
            self.modes.push((mode, line));
        }
    }

    /// Whether the queue stops taking work (`defer-queue`, `bounce-queue`).
    pub fn stops(&self) -> bool {
        self.defer.is_some() || self.bounce.is_some()
    }

    /// Adds what a later part of the same attempt asked; the first `defer-queue` and
    /// `bounce-queue` win. The modes were applied already and are dropped.
    pub fn absorb(&mut self, later: QueueAction) {
        self.defer = self.defer.take().or(later.defer);
        self.bounce = self.bounce.take().or(later.bounce);
    }
}

/// The recipients of one transaction and what the rules ask of the queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// A fate for each recipient index, in order.
    pub fates: Vec<(u32, Fate)>,
    /// The queue-level part.
    pub queue: QueueAction,
}

/// A transaction the receiver answered: recipient `idxs[n]` got `outcome.rcpts[n]`. The
/// reply that decides a recipient is MAIL's when MAIL failed, else its RCPT reply when that
/// failed, else DATA's. Every reply (MAIL, each RCPT, DATA) is matched against the patterns.
pub(crate) fn answered(rules: &Rules<'_>, idxs: &[u32], outcome: &TransactionOutcome) -> Attempt {
    let fates = idxs
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let rcpt = outcome.rcpts.get(n);
            let decisive = if outcome.mail.code >= 300 {
                Some(&outcome.mail)
            } else if rcpt.is_some_and(|r| r.code >= 300) {
                rcpt
            } else {
                outcome.data.as_ref()
            };
            let mut fate = fate_of(decisive, None);
            recategorize(rules.config, &mut fate, decisive);
            // `bounce-rcpt`: this receiver's 4xx to RCPT will not get better.
            if let (Some(r), Some(list)) = (rcpt, rules.patterns) {
                if (400..500).contains(&r.code)
                    && list
                        .actions_for(&reply_line(r))
                        .is_some_and(|a| a.bounce_rcpt)
                {
                    fate = forced_bounce(r);
                }
            }
            (i, fate)
        })
        .collect();
    let mut queue = QueueAction::default();
    for r in std::iter::once(&outcome.mail)
        .chain(&outcome.rcpts)
        .chain(&outcome.data)
    {
        queue.note(rules, r);
    }
    Attempt { fates, queue }
}

/// A transaction the connection failed in (timeout, lost connection, refused RSET, …): every
/// recipient gets the error's fate, and a refusal inside the error is matched against the
/// patterns.
pub(crate) fn failed(rules: &Rules<'_>, idxs: &[u32], error: &ClientError) -> Attempt {
    let fates = idxs
        .iter()
        .map(|&i| {
            let mut fate = fate_of(None, Some(error));
            recategorize(rules.config, &mut fate, error.reply());
            (i, fate)
        })
        .collect();
    Attempt {
        fates,
        queue: refused(rules, error),
    }
}

/// A connection that could not be opened: a refusing greeting ("421 too many connections")
/// is matched against the patterns too.
pub(crate) fn refused(rules: &Rules<'_>, error: &ClientError) -> QueueAction {
    let mut queue = QueueAction::default();
    if let Some(r) = error.reply() {
        queue.note(rules, r);
    }
    queue
}

/// Recipients an attempt never reached (the connection broke, or a pattern stopped the
/// queue) go back as deferred.
pub(crate) fn connection_lost() -> Fate {
    Fate::Deferred {
        status: "4.4.2".into(),
        diag: "smtp;421 4.4.2 connection lost".into(),
        class: 70,
    }
}

/// A suppressed recipient: failed by petrel's own policy (bounce class 25), like SparkPost's
/// "recipient address was suppressed due to customer policy".
pub(crate) fn suppressed(address: &str, reason: &str) -> Fate {
    Fate::Bounced {
        status: "5.7.1".into(),
        diag: format!("smtp;550 5.7.1 <{address}>: recipient address was suppressed ({reason})"),
        category: "policy-related".into(),
        class: SUPPRESSED_CLASS,
    }
}

/// A recipient that outlived `bounce-after`.
pub(crate) fn expired() -> Fate {
    Fate::Bounced {
        status: "4.4.7".into(),
        diag: "smtp;554 4.4.7 message expired: not delivered within bounce-after".into(),
        category: "message-expired".into(),
        class: 24,
    }
}

/// The recipient domain does not exist (NXDOMAIN).
pub(crate) fn no_such_domain(domain: &str) -> Fate {
    Fate::Bounced {
        status: "5.1.2".into(),
        diag: format!("smtp;550 5.1.2 domain {domain} does not exist"),
        category: "bad-domain".into(),
        class: 21,
    }
}

/// The recipient domain publishes a null MX (RFC 7505): it accepts no mail.
pub(crate) fn null_mx(domain: &str) -> Fate {
    Fate::Bounced {
        status: "5.1.10".into(),
        diag: format!("smtp;556 5.1.10 domain {domain} does not accept mail (null MX)"),
        category: "bad-domain".into(),
        class: 10,
    }
}

/// The recipient domain has no MX record and `bounce-upon-no-mx` says to bounce.
pub(crate) fn no_mx(domain: &str) -> Fate {
    Fate::Bounced {
        status: "5.4.4".into(),
        diag: format!("smtp;554 5.4.4 domain {domain} has no MX record (bounce-upon-no-mx)"),
        category: "bad-domain".into(),
        class: 21,
    }
}

/// Whether a message received at `received_at_unix_ms` has waited `max_age` or longer by
/// `now` (`bounce-after`, the age limit of `bounce-upon-no-mx`). A clock behind the
/// reception time means it has not.
pub(crate) fn older_than(received_at_unix_ms: u64, max_age: Duration, now: SystemTime) -> bool {
    let queued = SystemTime::UNIX_EPOCH + Duration::from_millis(received_at_unix_ms);
    now.duration_since(queued).is_ok_and(|age| age >= max_age)
}

/// How long a recipient waits after its `attempts`-th temporary failure: that step of the
/// retry schedule (`retry-after`, or `backoff-retry-after` in backoff mode), the last step
/// once the schedule is used up, 10 minutes without a schedule.
pub(crate) fn retry_wait(attempts: u32, schedule: &[Duration]) -> Duration {
    let step = (attempts.max(1) as usize - 1).min(schedule.len().saturating_sub(1));
    schedule
        .get(step)
        .copied()
        .unwrap_or(Duration::from_secs(600))
}

/// A reply as one line, `421 4.7.0 text`, which `reply` patterns are matched against.
pub(crate) fn reply_line(r: &Reply) -> String {
    r.to_string().replace("\r\n", " ")
}

/// `<bounce-category-patterns>`: the operator's own `bounceCat` for a bounce's reply, before
/// petrel's built-in rules (the SparkPost `bounce_class` stays petrel's).
fn recategorize(config: &Config, fate: &mut Fate, reply: Option<&Reply>) {
    if config.bounce_category_patterns.is_empty() {
        return;
    }
    let (Fate::Bounced { category, .. }, Some(r)) = (fate, reply) else {
        return;
    };
    if let Some(c) = config.bounce_category_for(&reply_line(r)) {
        *category = c.to_string();
    }
}

/// `bounce-rcpt` / `bounce-queue`: a reply that would defer bounces instead.
fn forced_bounce(r: &Reply) -> Fate {
    match fate_of(Some(r), None) {
        Fate::Deferred {
            status,
            diag,
            class,
        } => Fate::Bounced {
            status,
            diag,
            category: classify(Some(r), None).bounce_cat.to_string(),
            class,
        },
        other => other,
    }
}

/// The fate a reply (or, without one, a connection error) gives by petrel's classifier.
fn fate_of(reply: Option<&Reply>, error: Option<&ClientError>) -> Fate {
    let class = classify(reply, error);
    let (status, diag) = match (reply, error) {
        (Some(r), _) => (
            r.enhanced
                .map(|e| e.to_string())
                .unwrap_or_else(|| default_status(r.code)),
            format!("smtp;{}", r.to_string().replace("\r\n", " ")),
        ),
        (None, Some(e)) => (e.status().to_string(), e.diag()),
        (None, None) => ("4.0.0".to_string(), "no reply".to_string()),
    };
    match reply.map(|r| r.code) {
        Some(c) if (200..300).contains(&c) => {
            Fate::Delivered(reply.cloned().unwrap_or_else(|| Reply::plain(250, "ok")))
        }
        _ if class.permanent => Fate::Bounced {
            status,
            diag,
            category: class.bounce_cat.to_string(),
            class: class.bounce_class,
        },
        _ => Fate::Deferred {
            status,
            diag,
            class: class.bounce_class,
        },
    }
}

fn default_status(code: u16) -> String {
    match code {
        200..=299 => "2.0.0".into(),
        400..=499 => "4.0.0".into(),
        _ => "5.0.0".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_reply_class::Phase;

    fn config(text: &str) -> Config {
        petrel_config::parse_str(text, std::path::Path::new("/virtual/petrel.conf"))
            .unwrap()
            .config
    }

    /// A configuration whose `example.com` queue uses the `throttles` pattern list.
    const PATTERNS: &str = "<smtp-pattern-list throttles>\n\
        reply /TS01/ mode=backoff\n\
        reply /too many connections/ mode=backoff, defer-queue\n\
        reply /over quota/ bounce-rcpt\n\
        reply /blocked for good/ bounce-queue\n\
        reply /^250 / mode=normal\n\
        </smtp-pattern-list>\n\
        <domain example.com>\nsmtp-pattern-list throttles\n</domain>\n\
        <bounce-category-patterns>\n/Recipient address rejected/ custom-mailbox\n</bounce-category-patterns>\n";

    fn with_rules<T>(text: &str, f: impl FnOnce(&Rules<'_>) -> T) -> T {
        let c = config(text);
        let settings = c.domain_settings("example.com", "{default}");
        f(&Rules::new(&c, &settings))
    }

    fn r(code: u16, enhanced: Option<(u8, u16, u16)>, text: &str) -> Reply {
        match enhanced {
            Some(e) => Reply::new(code, e, text),
            None => Reply::plain(code, text),
        }
    }

    fn outcome(mail: Reply, rcpts: Vec<Reply>, data: Option<Reply>) -> TransactionOutcome {
        TransactionOutcome {
            mail,
            rcpts,
            data,
            notes: Vec::new(),
        }
    }

    fn ok() -> Reply {
        r(250, Some((2, 0, 0)), "ok")
    }

    fn bounced(status: &str, category: &str, class: u16) -> (String, String, u16) {
        (status.into(), category.into(), class)
    }

    fn as_bounce(f: &Fate) -> Option<(String, String, u16)> {
        match f {
            Fate::Bounced {
                status,
                category,
                class,
                ..
            } => Some((status.clone(), category.clone(), *class)),
            _ => None,
        }
    }

    fn as_deferral(f: &Fate) -> Option<(String, u16)> {
        match f {
            Fate::Deferred { status, class, .. } => Some((status.clone(), *class)),
            _ => None,
        }
    }

    #[test]
    fn each_reply_class_decides_the_recipient() {
        with_rules("", |rules| {
            // 2xx to the dot: delivered, with the receiver's reply kept for the d row.
            let a = answered(rules, &[0], &outcome(ok(), vec![ok()], Some(ok())));
            assert_eq!(a.fates, vec![(0, Fate::Delivered(ok()))]);
            // 5xx to RCPT: bounced with petrel's category and class.
            let unknown = r(550, Some((5, 1, 1)), "no such user");
            let a = answered(
                rules,
                &[3, 4],
                &outcome(ok(), vec![unknown, ok()], Some(ok())),
            );
            assert_eq!(
                as_bounce(&a.fates[0].1),
                Some(bounced("5.1.1", "bad-mailbox", 10))
            );
            assert_eq!(a.fates[0].0, 3);
            assert_eq!(a.fates[1], (4, Fate::Delivered(ok())));
            // 4xx: deferred, with SparkPost's soft class.
            let full = r(452, Some((4, 2, 2)), "mailbox full");
            let a = answered(rules, &[0], &outcome(ok(), vec![full], None));
            assert_eq!(as_deferral(&a.fates[0].1), Some(("4.2.2".into(), 22)));
            // A refused MAIL decides every recipient, whatever their RCPT copy says.
            let sender = r(553, Some((5, 1, 8)), "bad sender domain");
            let a = answered(
                rules,
                &[0, 1],
                &outcome(sender.clone(), vec![sender.clone(), sender], None),
            );
            for (_, f) in &a.fates {
                assert_eq!(as_bounce(f), Some(bounced("5.1.8", "invalid-sender", 50)));
            }
            // A refused DATA (after accepted RCPTs) decides too, as does the final dot.
            let spam = r(554, Some((5, 7, 1)), "message looks like spam");
            let a = answered(rules, &[0], &outcome(ok(), vec![ok()], Some(spam)));
            assert_eq!(
                as_bounce(&a.fates[0].1),
                Some(bounced("5.7.1", "spam-related", 52))
            );
            // No enhanced code: the basic code's class stands in for the status.
            let plain = r(451, None, "try later");
            let a = answered(rules, &[0], &outcome(ok(), vec![ok()], Some(plain)));
            assert_eq!(as_deferral(&a.fates[0].1), Some(("4.0.0".into(), 20)));
            let Fate::Deferred { diag, .. } = &a.fates[0].1 else {
                unreachable!()
            };
            assert_eq!(diag, "smtp;451 try later");
            assert_eq!(a.queue, QueueAction::default(), "no pattern list");
        });
    }

    #[test]
    fn a_failed_connection_defers_and_a_refusal_inside_it_is_classified() {
        with_rules("", |rules| {
            let lost = ClientError::Closed { phase: Phase::Dot };
            let a = failed(rules, &[0, 2], &lost);
            assert_eq!(a.fates.len(), 2);
            for (_, f) in &a.fates {
                assert_eq!(as_deferral(f), Some(("4.4.2".into(), 70)));
            }
            let Fate::Deferred { diag, .. } = &a.fates[0].1 else {
                unreachable!()
            };
            assert!(diag.starts_with("x-petrel;"), "{diag}");
            let rset = ClientError::Rejected {
                phase: Phase::Rset,
                reply: r(550, Some((5, 1, 1)), "no such user"),
            };
            let a = failed(rules, &[0], &rset);
            assert_eq!(
                as_bounce(&a.fates[0].1),
                Some(bounced("5.1.1", "bad-mailbox", 10))
            );
        });
    }

    #[test]
    fn bounce_category_patterns_rename_bounces_only() {
        with_rules(PATTERNS, |rules| {
            let rejected = r(550, Some((5, 1, 1)), "Recipient address rejected");
            let a = answered(rules, &[0], &outcome(ok(), vec![rejected], None));
            assert_eq!(
                as_bounce(&a.fates[0].1),
                Some(bounced("5.1.1", "custom-mailbox", 10)),
                "the operator's category; petrel's class"
            );
            let later = r(450, Some((4, 1, 1)), "Recipient address rejected");
            let a = answered(rules, &[0], &outcome(ok(), vec![later], None));
            assert!(
                as_deferral(&a.fates[0].1).is_some(),
                "deferrals keep theirs"
            );
        });
    }

    #[test]
    fn bounce_rcpt_bounces_a_4xx_to_rcpt_only() {
        with_rules(PATTERNS, |rules| {
            let quota = r(452, Some((4, 2, 2)), "user over quota");
            let a = answered(rules, &[0], &outcome(ok(), vec![quota.clone()], None));
            assert_eq!(
                as_bounce(&a.fates[0].1),
                Some(bounced("4.2.2", "quota-issues", 22))
            );
            // The same text to DATA is not a RCPT reply: it defers.
            let a = answered(rules, &[0], &outcome(ok(), vec![ok()], Some(quota)));
            assert!(as_deferral(&a.fates[0].1).is_some());
        });
        // Without the pattern list the same reply defers.
        with_rules("", |rules| {
            let quota = r(452, Some((4, 2, 2)), "user over quota");
            let a = answered(rules, &[0], &outcome(ok(), vec![quota], None));
            assert!(as_deferral(&a.fates[0].1).is_some());
        });
    }

    #[test]
    fn queue_actions_from_every_reply_first_one_wins() {
        with_rules(PATTERNS, |rules| {
            // mode=backoff from a RCPT reply, mode=normal from the dot: both, in order.
            let throttled = r(451, Some((4, 7, 0)), "[TS01] deferred");
            let a = answered(
                rules,
                &[0, 1],
                &outcome(ok(), vec![throttled, ok()], Some(ok())),
            );
            let modes: Vec<QueueMode> = a.queue.modes.iter().map(|(m, _)| *m).collect();
            assert_eq!(
                modes,
                vec![
                    QueueMode::Normal,
                    QueueMode::Backoff,
                    QueueMode::Normal,
                    QueueMode::Normal
                ]
            );
            assert_eq!(a.queue.modes[1].1, "451 4.7.0 [TS01] deferred");
            assert!(!a.queue.stops());
            // defer-queue (with its mode) stops the queue and names the reply.
            let busy = r(421, Some((4, 7, 0)), "too many connections");
            let a = answered(rules, &[0], &outcome(ok(), vec![busy], None));
            assert_eq!(
                a.queue.defer.as_deref(),
                Some("421 4.7.0 too many connections")
            );
            assert!(a.queue.stops());
            assert_eq!(a.queue.modes[1].0, QueueMode::Backoff);
            // bounce-queue: a 4xx becomes the bounce every waiting recipient gets.
            let blocked = r(421, Some((4, 7, 1)), "blocked for good");
            let a = answered(rules, &[0], &outcome(blocked, vec![], None));
            assert_eq!(
                a.queue.bounce.as_ref().and_then(as_bounce),
                Some(bounced("4.7.1", "policy-related", 50))
            );
            // Merging the parts of one attempt keeps the first of each.
            let mut first = QueueAction {
                defer: Some("first".into()),
                ..QueueAction::default()
            };
            first.absorb(QueueAction {
                defer: Some("second".into()),
                bounce: Some(expired()),
                modes: vec![(QueueMode::Backoff, "x".into())],
            });
            assert_eq!(first.defer.as_deref(), Some("first"));
            assert_eq!(first.bounce, Some(expired()));
            assert!(first.modes.is_empty());
        });
    }

    #[test]
    fn a_refusing_greeting_is_matched_too() {
        with_rules(PATTERNS, |rules| {
            let greeting = ClientError::Rejected {
                phase: Phase::Greeting,
                reply: r(421, None, "too many connections from your IP"),
            };
            let q = refused(rules, &greeting);
            assert!(q.defer.is_some() && q.stops());
            let timeout = ClientError::Timeout {
                phase: Phase::Connect,
                after: Duration::from_secs(1),
            };
            assert_eq!(refused(rules, &timeout), QueueAction::default());
        });
    }

    #[test]
    fn policy_fates() {
        assert_eq!(
            as_bounce(&suppressed("a@b.example", "hard_bounce")),
            Some(bounced("5.7.1", "policy-related", SUPPRESSED_CLASS))
        );
        assert_eq!(
            as_bounce(&expired()),
            Some(bounced("4.4.7", "message-expired", 24))
        );
        assert_eq!(
            as_bounce(&no_such_domain("x.example")),
            Some(bounced("5.1.2", "bad-domain", 21))
        );
        assert_eq!(
            as_bounce(&null_mx("x.example")),
            Some(bounced("5.1.10", "bad-domain", 10))
        );
        assert_eq!(
            as_bounce(&no_mx("x.example")),
            Some(bounced("5.4.4", "bad-domain", 21))
        );
        assert_eq!(as_deferral(&connection_lost()), Some(("4.4.2".into(), 70)));
        assert!(is_hard(10) && is_hard(30) && is_hard(90));
        assert!(!is_hard(SUPPRESSED_CLASS) && !is_hard(22) && !is_hard(24));
    }

    #[test]
    fn expiry_is_reached_at_the_limit_not_before() {
        let received = 1_700_000_000_000u64;
        let at = |secs: u64| {
            SystemTime::UNIX_EPOCH + Duration::from_millis(received) + Duration::from_secs(secs)
        };
        let four_days = Duration::from_secs(4 * 86_400);
        assert!(!older_than(received, four_days, at(4 * 86_400 - 1)));
        assert!(older_than(received, four_days, at(4 * 86_400)));
        assert!(older_than(received, four_days, at(5 * 86_400)));
        // A clock behind the reception time never expires anything.
        assert!(!older_than(
            received,
            Duration::ZERO,
            SystemTime::UNIX_EPOCH + Duration::from_millis(received - 1)
        ));
        assert!(older_than(received, Duration::ZERO, at(0)));
    }

    #[test]
    fn retries_walk_the_schedule_and_stay_on_its_last_step() {
        let m = |n: u64| Duration::from_secs(60 * n);
        let schedule = [m(10), m(20), m(60)];
        assert_eq!(retry_wait(1, &schedule), m(10));
        assert_eq!(retry_wait(2, &schedule), m(20));
        assert_eq!(retry_wait(3, &schedule), m(60));
        assert_eq!(retry_wait(9, &schedule), m(60));
        assert_eq!(retry_wait(1, &[]), m(10), "no schedule: 10 minutes");
    }
}
