//! How the engine describes what happened as [`Outcome`]s for the recorder: the recipients
//! of a new message, each recipient's attempt, and a queue that could not be reached. The
//! accounting rows, Signals events and counters are the recorder's projections of them.

use std::time::SystemTime;

use petrel_config::Config;
use petrel_record::{
    AttemptKind, Attempted, Outcome, QueueDeferred, Received, Recipient, Remote, Route, Session,
};
use petrel_smtp_client::Connection;
use petrel_spool::{Envelope, MessageId};

use crate::engine::Inner;
use crate::queue::QueueKey;
use crate::route::Destination;

/// One recipient's attempt, as the engine knows it.
pub(crate) struct Attempt<'a> {
    pub id: MessageId,
    pub env: &'a Envelope,
    pub rcpt: u32,
    pub key: &'a QueueKey,
    pub dest: Option<&'a Destination>,
    pub conn: Option<&'a Connection>,
    pub kind: AttemptKind,
    pub status: &'a str,
    pub diag: &'a str,
    pub category: &'a str,
    pub class: u16,
    /// Failed attempts before this one.
    pub attempts: u32,
    pub at: SystemTime,
}

impl Inner {
    /// Records the recipients of a message just accepted (`r` rows, `reception` events).
    pub(crate) fn record_reception(&self, id: MessageId, env: &Envelope) {
        let at = self.clock.now();
        let config = self.config();
        for index in 0..env.recipients.len() as u32 {
            let rcpt = self.recipient(id, env, index);
            self.recorder
                .record(&config, &Outcome::Received(Received { rcpt, at }));
        }
    }

    /// Records one recipient's attempt.
    pub(crate) fn record_attempt(&self, config: &Config, a: Attempt<'_>) {
        let session = a.conn.map(|c| Session {
            source_ip: c.local_addr().ip(),
            esmtp: &c.extensions().keywords,
            tls: c
                .tls_info()
                .map(|t| (t.protocol.as_str(), t.cipher.as_str())),
        });
        let outcome = Outcome::Attempted(Attempted {
            rcpt: self.recipient(a.id, a.env, a.rcpt),
            route: Route {
                domain: &a.key.domain,
                vmta: &a.key.vmta,
                remote: a.dest.map(remote),
                session,
            },
            kind: a.kind,
            at: a.at,
            status: a.status,
            diag: a.diag,
            category: a.category,
            class: a.class,
            attempts: a.attempts,
        });
        self.recorder.record(config, &outcome);
    }

    /// Records that queue `key` could not be reached (`tq` row).
    pub(crate) fn record_queue_failure(
        &self,
        key: &QueueKey,
        dest: Option<&Destination>,
        error: &str,
        status: &str,
        at: SystemTime,
    ) {
        let outcome = Outcome::QueueDeferred(QueueDeferred {
            domain: &key.domain,
            vmta: &key.vmta,
            remote: dest.map(remote),
            error,
            status,
            at,
        });
        self.recorder.record(&self.config(), &outcome);
    }

    fn recipient<'a>(&'a self, id: MessageId, env: &'a Envelope, index: u32) -> Recipient<'a> {
        Recipient {
            spool: &self.spool,
            id,
            env,
            index,
        }
    }
}

fn remote(d: &Destination) -> Remote<'_> {
    Remote {
        name: &d.name,
        ip: d.addr.ip(),
    }
}
