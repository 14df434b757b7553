//! One transaction on an open connection: suppressed recipients fail without an attempt,
//! VERP and engagement tracking give each recipient its own copy where they apply, DKIM
//! signs what is sent, large recipient lists are split per `max-rcpt-per-transaction`, and
//! the replies go to the outcome policy.

use std::sync::Arc;

use petrel_config::{DkimSign, EffectiveDomainSettings};
use petrel_smtp_client::{Connection, RecipientSpec, Transaction};
use petrel_spool::Recipient;
use tracing::warn;

use crate::dkim::sign;
use crate::engine::Inner;
use crate::outcome::{self, Fate, QueueAction, Rules};
use crate::queue::{QueueKey, Work};
use crate::route::Destination;
use crate::settle::{apply_queue_action, settle};
use petrel_record::{subaccount, Scope};

/// One transaction for `work`; says whether the connection may carry on.
pub(crate) async fn deliver(
    inner: &Arc<Inner>,
    conn: &mut Connection,
    dest: &Destination,
    key: &QueueKey,
    settings: &EffectiveDomainSettings,
    work: Work,
) -> Flow {
    let Some(env) = inner.spool.envelope(work.id) else {
        return Flow::Continue;
    };
    let now = inner.clock.now();
    if outcome::older_than(env.received_at_unix_ms, settings.bounce_after, now) {
        let fates = work
            .rcpts
            .iter()
            .map(|&i| (i, outcome::expired()))
            .collect();
        settle(
            inner,
            settings,
            &env,
            &work,
            key,
            Some(dest),
            Some(&*conn),
            fates,
            None,
        )
        .await;
        return Flow::Continue;
    }
    // A pread of a recently written record is served from the page cache in microseconds;
    // handing it to a blocking thread would cost more in context switches than it saves.
    let id = work.id;
    let body = match inner.spool.read_body(id) {
        Ok(b) => b,
        Err(e) => {
            warn!("{key}: cannot read message {id}: {e}");
            return Flow::Continue;
        }
    };
    let dkim = settings.dkim_sign == DkimSign::Yes;
    let mut fates: Vec<(u32, Fate)> = Vec::new();
    let config = inner.config();
    let scope = Scope::at_delivery(&env, &key.vmta);
    // Suppressed recipients fail here, without an attempt; the others are sent.
    let sendable: Vec<u32> = {
        let subaccount = subaccount(&config, &env, &scope);
        let list = inner.suppression.clone();
        work.rcpts
            .iter()
            .copied()
            .filter(|&i| {
                let r = &env.recipients[i as usize];
                let Some(hit) = list
                    .as_ref()
                    .and_then(|l| l.is_suppressed(subaccount, &r.address))
                else {
                    return true;
                };
                fates.push((i, outcome::suppressed(&r.address, hit.reason.as_str())));
                false
            })
            .collect()
    };
    // VERP: mail from a bounce-processor domain gets a signed return path per recipient.
    let verp = inner
        .verp_keys_for(&config, &env)
        .map(|keys| (keys, subaccount(&config, &env, &scope)));
    // Engagement tracking: each recipient gets its own rewritten copy in a transaction of
    // its own. A message with nothing to track (no HTML) is sent like any other.
    let first_tracked = sendable.first().and_then(|&i| {
        let plan = inner.tracking_plan(&config, id, &env, &scope, now)?;
        let copy = plan.rewrite(&body, i, &env.recipients[i as usize].address)?;
        Some((plan, copy))
    });
    // `base`: what every recipient gets when not tracked; the source of each copy when
    // tracked.
    let (plan, mut first_copy, base) = match first_tracked {
        Some((plan, copy)) => (Some(plan), Some(copy), body),
        None if dkim => (None, None, sign(inner, &key.vmta, body, now)),
        None => (None, None, body),
    };
    // Large recipient lists are split per max-rcpt-per-transaction; tracked and VERP
    // copies go one recipient per transaction.
    let chunk = if plan.is_some() || verp.is_some() {
        1
    } else {
        settings.max_rcpt_per_transaction.max(1) as usize
    };
    let mut lost = false;
    let rules = Rules::new(&config, settings);
    let mut queue_action = QueueAction::default();
    for idxs in sendable.chunks(chunk) {
        let specs: Vec<RecipientSpec<'_>> = idxs
            .iter()
            .map(|&i| {
                let r: &Recipient = &env.recipients[i as usize];
                RecipientSpec {
                    address: &r.address,
                    notify: r.notify.as_deref(),
                    orcpt: r.orcpt.as_deref(),
                }
            })
            .collect();
        let own: Vec<u8>;
        let body: &[u8] = match &plan {
            None => &base,
            Some(plan) => {
                let i = idxs[0];
                let copy = first_copy
                    .take()
                    .or_else(|| plan.rewrite(&base, i, &env.recipients[i as usize].address))
                    .unwrap_or_else(|| base.clone());
                own = if dkim {
                    sign(inner, &key.vmta, copy, now)
                } else {
                    copy
                };
                &own
            }
        };
        let return_path = verp.as_ref().and_then(|(keys, subaccount)| {
            let i = idxs[0];
            keys.address(
                &env.mail_from,
                id.0,
                i,
                *subaccount,
                &env.recipients[i as usize].address,
            )
        });
        let tx = Transaction {
            mail_from: return_path.as_deref().unwrap_or(&env.mail_from),
            recipients: &specs,
            ret: env.ret.map(|r| match r {
                petrel_spool::Ret::Full => petrel_smtp::Ret::Full,
                petrel_spool::Ret::Hdrs => petrel_smtp::Ret::Hdrs,
            }),
            envid: env.env_id.as_deref(),
            smtputf8: env.smtputf8,
            body_8bit: env.body_8bit,
            size: body.len() as u64,
        };
        let (attempt, needs_reset) = match conn.send(&tx, body).await {
            Ok(replies) => {
                let failed_tx = !replies.mail.code.to_string().starts_with('2')
                    || replies.data.as_ref().is_none_or(|d| d.code >= 300);
                (outcome::answered(&rules, idxs, &replies), failed_tx)
            }
            Err(e) => {
                lost = true;
                (outcome::failed(&rules, idxs, &e), false)
            }
        };
        fates.extend(attempt.fates);
        let mut action = attempt.queue;
        inner.apply_modes(key, std::mem::take(&mut action.modes));
        queue_action.absorb(action);
        // A failed transaction leaves the session mid-state: RSET before the next one.
        if !lost && (!conn.is_reusable() || (needs_reset && conn.reset().await.is_err())) {
            lost = true;
        }
        if lost || queue_action.stops() {
            break;
        }
    }
    // Recipients not attempted because the connection broke (or a reply pattern stopped the
    // queue) go back as deferred.
    let attempted: Vec<u32> = fates.iter().map(|(i, _)| *i).collect();
    for &i in &work.rcpts {
        if !attempted.contains(&i) {
            fates.push((i, outcome::connection_lost()));
        }
    }
    settle(
        inner,
        settings,
        &env,
        &work,
        key,
        Some(dest),
        Some(&*conn),
        fates,
        Some(now),
    )
    .await;
    // The queue-level actions hold even when the throttling reply also ended the
    // connection (a 421 closes it).
    let flow = apply_queue_action(inner, key, settings, queue_action).await;
    if lost {
        Flow::Lost
    } else {
        flow
    }
}

/// Runs one taken work item and marks it no longer in flight, whatever happened.
pub(crate) async fn deliver_taken(
    inner: &Arc<Inner>,
    conn: &mut Connection,
    dest: &Destination,
    key: &QueueKey,
    settings: &EffectiveDomainSettings,
    work: Work,
) -> Flow {
    let id = work.id;
    let flow = deliver(inner, conn, dest, key, settings, work).await;
    inner.lock_queues().finished(key, id);
    flow
}

/// What a connection does after a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Take the next work item.
    Continue,
    /// The connection is no longer usable: drop it.
    Lost,
    /// A reply pattern stopped the queue (`defer-queue`, `bounce-queue`): QUIT and leave.
    Stop,
}
