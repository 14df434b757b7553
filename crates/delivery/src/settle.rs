//! Applying outcomes: what a recipient's fate does to the spool (done or not), its queue
//! (delivered, retry, backoff), the records and the sender (a DSN); and the queue-wide
//! outcomes (a queue that cannot be reached, bounced by a pattern, or past `bounce-after`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use petrel_config::EffectiveDomainSettings;
use petrel_record::AttemptKind;
use petrel_smtp_client::Connection;
use petrel_spool::{Envelope, MessageId, Recipient};
use tracing::{info, warn};

use crate::dsn::{build_failure_dsn, wants_failure_dsn, FailedRecipient};
use crate::engine::{Engine, Inner};
use crate::outcome::{self, Fate, QueueAction};
use crate::queue::{later_by, QueueKey, Queues, Work};
use crate::record::Attempt;
use crate::route::Destination;
use crate::transaction::Flow;

/// A whole queue could not be reached: `tq` record and retry mode.
pub(crate) async fn queue_failure(
    inner: &Arc<Inner>,
    key: &QueueKey,
    settings: &EffectiveDomainSettings,
    dest: Option<&Destination>,
    error: &str,
    status: &str,
) {
    let now = inner.clock.now();
    inner.record_queue_failure(key, dest, error, status, now);
    {
        let mut q = inner.lock_queues();
        let schedule = retry_schedule(&q, key, settings).to_vec();
        q.enter_retry(key, now, &schedule, error.to_string());
    }
    // Messages past bounce-after are bounced now rather than waiting for a host.
    expire_waiting(inner, key, settings, now).await;
}

/// Messages past `bounce-after` bounce now rather than waiting for a host.
pub(crate) async fn expire_waiting(
    inner: &Arc<Inner>,
    key: &QueueKey,
    settings: &EffectiveDomainSettings,
    now: SystemTime,
) {
    bounce_older(
        inner,
        key,
        settings,
        now,
        settings.bounce_after,
        &outcome::expired(),
    )
    .await;
}

/// Bounces every waiting recipient of `key` whose message has been queued `max_age` or
/// longer, with `fate`.
pub(crate) async fn bounce_older(
    inner: &Arc<Inner>,
    key: &QueueKey,
    settings: &EffectiveDomainSettings,
    now: SystemTime,
    max_age: Duration,
    fate: &Fate,
) {
    let old = inner.lock_queues().remove_where(|k, w| {
        k == key
            && inner
                .spool
                .envelope(w.id)
                .is_some_and(|e| outcome::older_than(e.received_at_unix_ms, max_age, now))
    });
    for (k, w) in old {
        if let Some(env) = inner.spool.envelope(w.id) {
            let fates: Vec<(u32, Fate)> = w.rcpts.iter().map(|&i| (i, fate.clone())).collect();
            settle(inner, settings, &env, &w, &k, None, None, fates, None).await;
        }
    }
}

/// Every waiting recipient of the queue bounces with `fate` (the domain does not exist,
/// or a `bounce-queue` pattern matched).
pub(crate) async fn bounce_queue(
    inner: &Arc<Inner>,
    key: &QueueKey,
    settings: &EffectiveDomainSettings,
    fate: &Fate,
) {
    let works = inner.lock_queues().remove_where(|k, _| k == key);
    for (k, w) in works {
        if let Some(env) = inner.spool.envelope(w.id) {
            let fates = w.rcpts.iter().map(|&i| (i, fate.clone())).collect();
            settle(inner, settings, &env, &w, &k, None, None, fates, None).await;
        }
    }
}

/// The retry schedule of `key` in its current mode: `backoff-retry-after` in backoff.
pub(crate) fn retry_schedule<'s>(
    queues: &Queues,
    key: &QueueKey,
    settings: &'s EffectiveDomainSettings,
) -> &'s [Duration] {
    if queues.in_backoff(key) {
        &settings.backoff_retry_after
    } else {
        &settings.retry_after
    }
}

/// Applies the fates of one attempt: spool, queues, accounting, DSN. `started` is when the
/// transaction began, for `backoff-to-normal-after-delivery`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn settle(
    inner: &Arc<Inner>,
    settings: &EffectiveDomainSettings,
    env: &Envelope,
    work: &Work,
    key: &QueueKey,
    dest: Option<&Destination>,
    conn: Option<&Connection>,
    fates: Vec<(u32, Fate)>,
    started: Option<SystemTime>,
) {
    let now = inner.clock.now();
    // A DSN returns the original: read it before the last recipient is marked done, which
    // removes the message from the spool.
    let needs_dsn = !env.mail_from.is_empty()
        && fates.iter().any(|(i, f)| {
            matches!(f, Fate::Bounced { .. })
                && wants_failure_dsn(env.recipients[*i as usize].notify.as_deref())
        });
    let original = if needs_dsn {
        inner.spool.read_body(work.id).unwrap_or_default()
    } else {
        Vec::new()
    };
    let config = inner.config();
    // What every recipient's record shares; each fills in its own.
    let base = Attempt {
        id: work.id,
        env,
        rcpt: 0,
        key,
        dest,
        conn,
        kind: AttemptKind::Delivered,
        status: "",
        diag: "",
        category: "",
        class: 0,
        attempts: work.attempts,
        at: now,
    };
    let mut deferred = Vec::new();
    let mut failed: Vec<FailedRecipient> = Vec::new();
    let mut delivered = 0u64;
    for (i, fate) in fates {
        match fate {
            Fate::Delivered(reply) => {
                let diag = format!("smtp;{}", reply.to_string().replace("\r\n", " "));
                let a = Attempt {
                    rcpt: i,
                    status: "2.0.0",
                    diag: &diag,
                    ..base
                };
                inner.record_attempt(&config, a);
                delivered += 1;
                if let Err(e) = inner.spool.recipient_done(work.id, i).await {
                    warn!("{key}: could not mark {} done: {e}", work.id);
                }
            }
            Fate::Deferred {
                status,
                diag,
                class,
            } => {
                let a = Attempt {
                    rcpt: i,
                    kind: AttemptKind::Deferred,
                    status: &status,
                    diag: &diag,
                    category: "other",
                    class,
                    ..base
                };
                inner.record_attempt(&config, a);
                deferred.push(i);
                inner.lock_queues().note_error(key, diag);
            }
            Fate::Bounced {
                status,
                diag,
                category,
                class,
            } => {
                let a = Attempt {
                    rcpt: i,
                    kind: AttemptKind::Bounced,
                    status: &status,
                    diag: &diag,
                    category: &category,
                    class,
                    ..base
                };
                inner.record_attempt(&config, a);
                let r = &env.recipients[i as usize];
                if outcome::is_hard(class) && dest.is_some() {
                    inner.suppress_hard_bounce(env, key, &r.address, &diag);
                }
                if wants_failure_dsn(r.notify.as_deref()) {
                    failed.push(FailedRecipient {
                        rcpt: r.address.clone(),
                        orcpt: r.orcpt.clone(),
                        status: status.clone(),
                        remote_mta: dest.map(|d| d.name.clone()),
                        diagnostic: diag.clone(),
                    });
                }
                inner.lock_queues().bounced(key, 1, diag);
                if let Err(e) = inner.spool.recipient_done(work.id, i).await {
                    warn!("{key}: could not mark {} done: {e}", work.id);
                }
            }
        }
    }
    if delivered > 0 {
        let mut q = inner.lock_queues();
        q.delivered(key, delivered);
        if settings.backoff_to_normal_after_delivery
            && started.is_some_and(|t| q.end_backoff_after_delivery(key, t))
        {
            info!("{key}: delivered; backoff-to-normal-after-delivery: back to normal mode");
        }
    }
    if !deferred.is_empty() {
        let attempts = work.attempts + 1;
        let mut q = inner.lock_queues();
        let wait = outcome::retry_wait(attempts, retry_schedule(&q, key, settings));
        q.defer(
            key.clone(),
            Work {
                id: work.id,
                rcpts: deferred,
                job: work.job.clone(),
                attempts,
            },
            later_by(now, wait),
        );
    }
    if !failed.is_empty() && !env.mail_from.is_empty() {
        send_dsn(inner, env, work.id, &original, &failed, now).await;
    }
}

/// Queues a DSN to the envelope sender (never for a null sender: that would loop).
pub(crate) async fn send_dsn(
    inner: &Arc<Inner>,
    env: &Envelope,
    id: MessageId,
    original: &[u8],
    failed: &[FailedRecipient],
    now: SystemTime,
) {
    let config = inner.config();
    let host = config.primary_host_name().to_string();
    let dsn = build_failure_dsn(&host, env, original, failed, now);
    let envelope = Envelope {
        mail_from: String::new(),
        recipients: vec![Recipient::new(env.mail_from.clone())],
        vmta: env.vmta.clone(),
        job_id: None,
        env_id: None,
        ret: None,
        smtputf8: env.smtputf8,
        body_8bit: false,
        auth_user: None,
        client_ip: None,
        client_helo: None,
        received_at_unix_ms: now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        facts: petrel_spool::MessageFacts {
            generated: true,
            ..Default::default()
        },
    };
    match inner.spool.commit(envelope, dsn).await {
        Ok(dsn_id) => {
            inner.counters.dsns.fetch_add(1, Ordering::Relaxed);
            Engine {
                inner: inner.clone(),
            }
            .enqueue(dsn_id);
        }
        Err(e) => warn!("could not spool the DSN for message {id}: {e}"),
    }
}

/// Bounces the queue or puts it into retry mode, as the reply patterns asked; says whether
/// the connection may carry on.
pub(crate) async fn apply_queue_action(
    inner: &Arc<Inner>,
    key: &QueueKey,
    settings: &EffectiveDomainSettings,
    action: QueueAction,
) -> Flow {
    if let Some(fate @ Fate::Bounced { .. }) = &action.bounce {
        if let Fate::Bounced { diag, .. } = fate {
            info!("{key}: bounce-queue pattern matched ({diag}); bouncing the queue");
        }
        bounce_queue(inner, key, settings, fate).await;
        return Flow::Stop;
    }
    if let Some(reply) = action.defer {
        info!("{key}: defer-queue pattern matched ({reply}); queue in retry mode");
        let now = inner.clock.now();
        let mut q = inner.lock_queues();
        let schedule = retry_schedule(&q, key, settings).to_vec();
        let until = q.enter_retry(key, now, &schedule, reply);
        // The queue's other open connections stop taking work too.
        q.hold(key, until);
        return Flow::Stop;
    }
    Flow::Continue
}
