//! One returned message, start to finish: parse it, attribute it to the copy it is about,
//! write the `rb` / `rs` / `f` accounting rows and the `out_of_band` / `spam_complaint`
//! events, suppress hard-bounced and complaining recipients, and decide where (if anywhere)
//! the message itself goes.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use petrel_bounce::{Bounce, Complaint, OriginalRefs, Returned};
use petrel_config::Config;
use petrel_record::{Attribution, Outcome, Recorder, RemoteReport};
use petrel_suppression::{NewEntry, Reason, SuppressionList};
use tracing::{debug, info, warn};

use petrel_verp::{recipient_message_id, ReturnPathKeys};

/// A message received for an address in a processor's `<address-list>`.
pub struct ReturnedMail<'a> {
    /// The recipient it was sent to (a bounce or feedback-loop address, often a VERP one).
    pub rcpt: &'a str,
    /// Its envelope sender (usually `<>` for bounces).
    pub mail_from: &'a str,
    /// The client that sent it.
    pub client_ip: Option<IpAddr>,
    /// The client's HELO name.
    pub helo: &'a str,
    /// The message as received.
    pub message: &'a [u8],
}

/// What the message turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A delivery report naming at least one failed or delayed recipient.
    Bounce,
    /// A feedback-loop complaint.
    Complaint,
    /// Anything else (auto-replies, mail for a human, reports of successes).
    Unmatched,
    /// A message that could not be parsed at all.
    Error,
}

/// The processor's decision: what the message was, and the addresses it is to be delivered
/// to instead of its recipient (empty: consumed, only logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What the message was.
    pub kind: Kind,
    /// Where a copy goes (`postmaster`, `forward-*-to`), per `deliver-*-email`.
    pub deliver_to: Vec<String>,
}

/// Counters for `show status`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Bounce reports processed (PowerMTA's `bounceProcessed`).
    pub bounces: AtomicU64,
    /// Complaints processed (PowerMTA's `feedbackLoopProcessed`).
    pub complaints: AtomicU64,
    /// Messages that were not reports.
    pub unmatched: AtomicU64,
    /// Reports that named no message petrel could attribute by a signed return path.
    pub unattributed: AtomicU64,
}

/// The bounce and feedback-loop processor. One per daemon, shared by every SMTP session.
pub struct ReturnsProcessor {
    keys: Option<ReturnPathKeys>,
    /// Where `rb` / `rs` / `f` rows and `out_of_band` / `spam_complaint` events go.
    recorder: Recorder,
    /// Hard-bounced and complaining recipients go on it.
    suppression: Option<Arc<SuppressionList>>,
    /// What it has done since start.
    pub stats: Stats,
}

/// The copy a report is about, as far as petrel could tell.
struct Attributed {
    message_id: Option<String>,
    subaccount: u64,
    verified: bool,
}

impl Attributed {
    /// What the records say about the copy: nothing without a message id.
    fn copy(&self) -> Option<Attribution<'_>> {
        self.message_id.as_deref().map(|message_id| Attribution {
            message_id,
            subaccount: self.subaccount,
        })
    }
}

impl ReturnsProcessor {
    /// A processor that verifies return paths with `keys`, records what it finds with
    /// `recorder` and suppresses on `suppression`.
    pub fn new(
        keys: Option<ReturnPathKeys>,
        recorder: Recorder,
        suppression: Option<Arc<SuppressionList>>,
    ) -> ReturnsProcessor {
        ReturnsProcessor {
            keys,
            recorder,
            suppression,
            stats: Stats::default(),
        }
    }

    /// Processes one message for `mail.rcpt`, which must be in a processor's scope
    /// ([`Config::returned_mail_processor`]); returns what to do with the message.
    pub fn process(&self, config: &Config, mail: &ReturnedMail<'_>) -> Decision {
        let Some(p) = config.returned_mail_processor(mail.rcpt) else {
            return Decision {
                kind: Kind::Unmatched,
                deliver_to: vec![mail.rcpt.to_string()],
            };
        };
        let now = SystemTime::now();
        match petrel_bounce::try_parse(mail.message) {
            Ok(Returned::Bounce(b)) if !b.recipients.is_empty() => {
                self.stats.bounces.fetch_add(1, Ordering::Relaxed);
                self.bounce(config, mail, &b, now);
                decided(Kind::Bounce, p.deliver_matched_email, &[], config)
            }
            Ok(Returned::Complaint(c)) if !c.recipients.is_empty() => {
                self.stats.complaints.fetch_add(1, Ordering::Relaxed);
                self.complaint(config, mail, &c, now);
                decided(Kind::Complaint, p.deliver_matched_email, &[], config)
            }
            Ok(other) => {
                self.stats.unmatched.fetch_add(1, Ordering::Relaxed);
                let what = match other {
                    Returned::AutoReply => "an automatic reply",
                    Returned::Complaint(_) => "a complaint naming no recipient",
                    Returned::Bounce(_) => "a report naming no failed recipient",
                    Returned::Unrecognised => "not a report",
                };
                info!(rcpt = mail.rcpt, "returned mail: {what}");
                decided(
                    Kind::Unmatched,
                    p.deliver_unmatched_email,
                    &p.forward_unmatched_to,
                    config,
                )
            }
            Err(e) => {
                self.stats.unmatched.fetch_add(1, Ordering::Relaxed);
                warn!(rcpt = mail.rcpt, "returned mail could not be parsed: {e}");
                // PowerMTA: mail that failed to parse always continues to delivery.
                let to = if p.forward_errors_to.is_empty() {
                    &p.forward_unmatched_to
                } else {
                    &p.forward_errors_to
                };
                decided(Kind::Error, true, to, config)
            }
        }
    }

    /// Which copy a report is about: a signed return path (the address the report was sent
    /// to, else the returned original's Return-Path) verified for one of the recipients the
    /// report names; else only the original's Message-ID, which names the message but not
    /// petrel's copy.
    fn attribute<'r>(
        &self,
        to: &str,
        original: &OriginalRefs,
        recipients: impl Iterator<Item = &'r str> + Clone,
    ) -> Attributed {
        let verified = self.keys.as_ref().and_then(|k| {
            k.verify(to, recipients.clone()).or_else(|| {
                original
                    .envelope_from
                    .as_deref()
                    .and_then(|rp| k.verify(rp, recipients.clone()))
            })
        });
        match verified {
            Some(v) => Attributed {
                message_id: Some(recipient_message_id(v.spool_id, v.rcpt_index)),
                subaccount: v.subaccount,
                verified: true,
            },
            None => {
                self.stats.unattributed.fetch_add(1, Ordering::Relaxed);
                Attributed {
                    message_id: original
                        .message_id
                        .as_deref()
                        .map(|m| m.trim_matches(['<', '>']).to_string())
                        .filter(|m| !m.is_empty()),
                    subaccount: 0,
                    verified: false,
                }
            }
        }
    }

    fn bounce(&self, config: &Config, mail: &ReturnedMail<'_>, b: &Bounce, now: SystemTime) {
        for r in &b.recipients {
            // Attribute each recipient on its own: a report may name several.
            let at = self.attribute(mail.rcpt, &b.original, std::iter::once(r.address.as_str()));
            let failed = !r
                .action
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case("delayed"));
            let report = RemoteReport {
                at: now,
                failed,
                to: mail.rcpt,
                client: (mail.helo, mail.client_ip),
                recipient: &r.address,
                status: r.status.as_deref(),
                diagnostic: r.diagnostic.as_deref(),
                reply_code: r.reply_code,
                remote_mta: r.remote_mta.as_deref(),
                reporting_mta: b.reporting_mta.as_deref(),
                category: &r.bounce_cat,
                class: r.bounce_class,
                original_headers: &b.original.headers,
                campaign: b.original.x_job.as_deref(),
                copy: at.copy(),
            };
            self.recorder.record(config, &Outcome::Reported(report));
            if !failed {
                continue;
            }
            if r.hard && at.verified && config.suppress_hard_bounces {
                self.suppress(
                    &r.address,
                    at.subaccount,
                    Reason::HardBounce,
                    format!(
                        "out-of-band bounce {} {}",
                        r.status.as_deref().unwrap_or(""),
                        r.diagnostic.as_deref().unwrap_or("")
                    ),
                );
            } else if r.hard {
                debug!(
                    rcpt = r.address,
                    "hard bounce not attributed by a signed return path: not suppressed"
                );
            }
        }
    }

    fn complaint(&self, config: &Config, mail: &ReturnedMail<'_>, c: &Complaint, now: SystemTime) {
        for rcpt in &c.recipients {
            let at = self.attribute(mail.rcpt, &c.original, std::iter::once(rcpt.as_str()));
            let complaint = petrel_record::Complaint {
                at: now,
                to: mail.rcpt,
                recipient: rcpt,
                feedback_type: &c.feedback_type,
                user_agent: c.user_agent.as_deref(),
                reported_by: c.reported_by.as_deref(),
                source_ip: c.source_ip.as_deref(),
                original_headers: &c.original.headers,
                campaign: c.original.x_job.as_deref(),
                copy: at.copy(),
            };
            self.recorder
                .record(config, &Outcome::Complained(complaint));
            // A "not-spam" report takes a complaint back; it never suppresses.
            if !c.feedback_type.eq_ignore_ascii_case("not-spam") && config.suppress_complaints {
                self.suppress(
                    rcpt,
                    at.subaccount,
                    Reason::Complaint,
                    format!(
                        "{} complaint via {}",
                        c.feedback_type,
                        c.reported_by.as_deref().unwrap_or("a feedback loop")
                    ),
                );
            }
        }
    }

    fn suppress(&self, address: &str, subaccount: u64, reason: Reason, description: String) {
        let Some(list) = &self.suppression else {
            return;
        };
        let entry = NewEntry {
            address: address.to_string(),
            subaccount,
            reason,
            description: description.trim().to_string(),
        };
        match list.add(entry) {
            Ok(true) => info!(address, subaccount, "suppressed ({})", reason.as_str()),
            Ok(false) => {}
            Err(e) => warn!(address, "suppression: {e}"),
        }
    }
}

/// `deliver-*-email`: to the forward addresses when there are any, else to `postmaster`;
/// nowhere (logged only) when delivery is off or no address is configured.
fn decided(kind: Kind, deliver: bool, forward: &[String], config: &Config) -> Decision {
    let deliver_to = if !deliver {
        Vec::new()
    } else if !forward.is_empty() {
        forward.to_vec()
    } else {
        config.postmaster.clone()
    };
    if deliver && deliver_to.is_empty() {
        info!("returned mail: no postmaster configured; logged only");
    }
    Decision { kind, deliver_to }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@mx.example\r\nTo: {TO}\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; {RCPT}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n--b--\r\n";

    fn parse(text: &str) -> Config {
        petrel_config::parse_str(text, std::path::Path::new("/virtual/petrel.conf"))
            .unwrap()
            .config
    }

    fn config(extra: &str) -> Config {
        parse(&format!(
            "postmaster pm@example.com\n<bounce-processor>\n{extra}<address-list>\ndomain bounces.example.com\n</address-list>\n</bounce-processor>\n"
        ))
    }

    const ARF: &str = "From: fbl@isp.example\r\nTo: {TO}\r\nSubject: FW: complaint\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"f\"\r\n\r\n--f\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n--f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: ISP-FBL/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: <bo@example.net>\r\n--f\r\nContent-Type: message/rfc822\r\n\r\nFrom: news@example.com\r\nTo: bo@example.net\r\nSubject: Sale\r\n\r\nBuy.\r\n--f--\r\n";

    /// Global lines, then a bounce processor for bounces.example.com and a feedback-loop
    /// processor for fbl.example.com.
    fn config_with(globals: &str) -> Config {
        parse(&format!(
            "postmaster pm@example.com\n{globals}<bounce-processor>\n<address-list>\ndomain bounces.example.com\n</address-list>\n</bounce-processor>\n<feedback-loop-processor>\n<address-list>\ndomain fbl.example.com\n</address-list>\n</feedback-loop-processor>\n"
        ))
    }

    #[test]
    fn automatic_suppression_can_be_switched_off_per_reason() {
        let rp = keys()
            .address("news@bounces.example.com", 9, 0, 0, "ana@example.net")
            .unwrap();
        let dsn = DSN
            .replace("{TO}", &rp)
            .replace("{RCPT}", "ana@example.net");
        let arf = ARF.replace("{TO}", "fbl@fbl.example.com");
        let run = |globals: &str| {
            let dir = tempfile::tempdir().unwrap();
            let (p, list) = processor(dir.path());
            let c = config_with(globals);
            assert_eq!(p.process(&c, &mail(&rp, dsn.as_bytes())).kind, Kind::Bounce);
            assert_eq!(
                p.process(&c, &mail("fbl@fbl.example.com", arf.as_bytes()))
                    .kind,
                Kind::Complaint
            );
            (
                list.is_suppressed(0, "ana@example.net").is_some(),
                list.is_suppressed(0, "bo@example.net").is_some(),
            )
        };
        assert_eq!(run(""), (true, true), "both on by default");
        assert_eq!(run("suppress-hard-bounces no\n"), (false, true));
        assert_eq!(run("suppress-complaints no\n"), (true, false));
    }

    fn keys() -> ReturnPathKeys {
        ReturnPathKeys::new(&[(1, "unit-test-secret-0123456789".into())]).unwrap()
    }

    fn processor(dir: &std::path::Path) -> (ReturnsProcessor, Arc<SuppressionList>) {
        let list = Arc::new(SuppressionList::open(&dir.join("s.db")).unwrap());
        let p = ReturnsProcessor::new(Some(keys()), Recorder::default(), Some(list.clone()));
        (p, list)
    }

    fn mail<'a>(rcpt: &'a str, message: &'a [u8]) -> ReturnedMail<'a> {
        ReturnedMail {
            rcpt,
            mail_from: "",
            client_ip: Some("127.0.0.3".parse().unwrap()),
            helo: "mx.example",
            message,
        }
    }

    #[test]
    fn a_verified_hard_bounce_suppresses_for_the_copys_subaccount() {
        let dir = tempfile::tempdir().unwrap();
        let (p, list) = processor(dir.path());
        let rp = keys()
            .address("news@bounces.example.com", 9, 0, 7, "ana@example.net")
            .unwrap();
        let dsn = DSN
            .replace("{TO}", &rp)
            .replace("{RCPT}", "ana@example.net");
        let d = p.process(&config(""), &mail(&rp, dsn.as_bytes()));
        assert_eq!(d.kind, Kind::Bounce);
        assert!(d.deliver_to.is_empty(), "consumed by default");
        assert!(list.is_suppressed(7, "ana@example.net").is_some());
        assert!(list.is_suppressed(0, "ana@example.net").is_none());
        assert_eq!(p.stats.bounces.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_bounce_for_someone_else_is_recorded_but_suppresses_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let (p, list) = processor(dir.path());
        // A genuine return path, but the report names another address.
        let rp = keys()
            .address("news@bounces.example.com", 9, 0, 0, "ana@example.net")
            .unwrap();
        let dsn = DSN
            .replace("{TO}", &rp)
            .replace("{RCPT}", "victim@example.net");
        let d = p.process(&config(""), &mail(&rp, dsn.as_bytes()));
        assert_eq!(d.kind, Kind::Bounce);
        assert!(list.is_empty());
        assert_eq!(p.stats.unattributed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn unmatched_mail_goes_to_postmaster_or_forward_or_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = processor(dir.path());
        let human = b"From: a@b.example\r\nSubject: hi\r\n\r\nStill there?\r\n";
        let rcpt = "news@bounces.example.com";
        let d = p.process(&config(""), &mail(rcpt, human));
        assert_eq!(
            (d.kind, d.deliver_to),
            (Kind::Unmatched, vec!["pm@example.com".into()])
        );
        let d = p.process(
            &config("forward-unmatched-to ops@example.com\n"),
            &mail(rcpt, human),
        );
        assert_eq!(d.deliver_to, vec!["ops@example.com".to_string()]);
        let d = p.process(&config("deliver-unmatched-email no\n"), &mail(rcpt, human));
        assert!(d.deliver_to.is_empty());
        // Recognised reports go on only with deliver-matched-email.
        let dsn = DSN.replace("{TO}", rcpt).replace("{RCPT}", "x@example.net");
        let d = p.process(
            &config("deliver-matched-email yes\n"),
            &mail(rcpt, dsn.as_bytes()),
        );
        assert_eq!(
            (d.kind, d.deliver_to),
            (Kind::Bounce, vec!["pm@example.com".into()])
        );
    }

    #[test]
    fn mail_that_cannot_be_parsed_is_passed_on_and_suppresses_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let (p, list) = processor(dir.path());
        let rcpt = "news@bounces.example.com";
        // Even with deliver-unmatched-email off: PowerMTA always passes such mail on.
        let d = p.process(
            &config("deliver-unmatched-email no\n"),
            &mail(rcpt, b" \r\n"),
        );
        assert_eq!(
            (d.kind, d.deliver_to),
            (Kind::Error, vec!["pm@example.com".into()])
        );
        let d = p.process(
            &config("forward-errors-to errors@example.com\n"),
            &mail(rcpt, b""),
        );
        assert_eq!(d.deliver_to, vec!["errors@example.com".to_string()]);
        assert!(list.is_empty());
    }
}
