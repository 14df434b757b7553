//! Which virtual MTA sends a message, and so which queues its recipients join.
//!
//! A message sent to a pool is given one member when it is received (the listener stores
//! it in the spooled envelope), so its injection event, every outcome and every restart
//! name the same member. Two cases have no usable member: a message spooled by an older
//! petrel (none stored) and one whose member a reload removed. Both get
//! [`Config::pool_member_for`]'s choice, which depends only on the message, so all its
//! queues agree and a restart under the same configuration picks it again.

use std::collections::HashMap;

use petrel_config::Config;
use petrel_spool::{Envelope, MessageId};
use tracing::info;

use crate::engine::Inner;
use crate::queue::{QueueKey, Work};

/// The virtual MTA that sends message `id`: its stored pool member while that still
/// exists; else the pool's choice for the message; else the vmta it was sent to.
pub(crate) fn sending_vmta<'a>(config: &'a Config, id: MessageId, env: &'a Envelope) -> &'a str {
    match env.pool_member.as_deref() {
        Some(member) if config.virtual_mta(member).is_some() => member,
        Some(member) => match config.pool_member_for(&env.vmta, id.0) {
            Some(other) => {
                info!(
                    "message {id}: virtual MTA {member} of pool {} no longer exists; \
                     {other} sends it instead",
                    env.vmta
                );
                other
            }
            // The pool is gone too: like any message whose vmta a reload removed.
            None => member,
        },
        None => config.pool_member_for(&env.vmta, id.0).unwrap_or(&env.vmta),
    }
}

/// Whether a queue's vmta was removed by a reload (it is neither a vmta, a pool nor
/// `{default}` any more).
pub(crate) fn vmta_removed(config: &Config, vmta: &str) -> bool {
    vmta != Envelope::DEFAULT_VMTA
        && config.virtual_mta(vmta).is_none()
        && config.pool(vmta).is_none()
}

/// The queues recipients `rcpts` of message `id` join when `vmta` sends them: one work item
/// per recipient domain, or per `queue-to` target.
pub(crate) fn place(
    config: &Config,
    id: MessageId,
    env: &Envelope,
    vmta: &str,
    rcpts: impl IntoIterator<Item = u32>,
    attempts: u32,
) -> Vec<(QueueKey, Work)> {
    let queue_to = config.uses_queue_to();
    let mut by_domain: HashMap<String, Vec<u32>> = HashMap::new();
    for i in rcpts {
        let Some(r) = env.recipients.get(i as usize) else {
            continue;
        };
        // `queue-to`: the recipient joins another domain's queue (its routing and limits).
        let domain = if queue_to {
            config.queue_domain(&r.domain(), vmta)
        } else {
            r.domain()
        };
        by_domain.entry(domain).or_default().push(i);
    }
    by_domain
        .into_iter()
        .map(|(domain, rcpts)| {
            let key = QueueKey {
                domain,
                vmta: vmta.to_string(),
            };
            let work = Work {
                id,
                rcpts,
                job: env.job_id.clone(),
                attempts,
            };
            (key, work)
        })
        .collect()
}

impl Inner {
    /// Adds work to its queues and wakes a connection of each and the dispatcher.
    pub(crate) fn queue_work(&self, placed: Vec<(QueueKey, Work)>) {
        let keys: Vec<QueueKey> = placed.iter().map(|(k, _)| k.clone()).collect();
        let mut q = self.lock_queues();
        for (key, work) in placed {
            q.push(key, work);
        }
        drop(q);
        for key in &keys {
            self.idle_notifier(key).notify_one();
        }
        self.wake.notify_one();
    }

    /// Queue `key` belongs to a virtual MTA a reload removed: the recipients waiting in it
    /// whose message was sent to a pool that still exists move to another member's queues
    /// (ready at once; a paused job's stay parked). Others stay, as for any vmta a reload
    /// removed. Returns the number of work items moved.
    pub(crate) fn rehome(&self, config: &Config, key: &QueueKey) -> usize {
        let spool = &self.spool;
        let taken = self.lock_queues().remove_where(|k, w| {
            k == key
                && spool
                    .envelope(w.id)
                    .is_some_and(|e| config.pool(&e.vmta).is_some())
        });
        let moved = taken.len();
        let mut placed = Vec::new();
        for (_, w) in taken {
            let Some(env) = spool.envelope(w.id) else {
                continue;
            };
            let vmta = sending_vmta(config, w.id, &env);
            placed.extend(place(config, w.id, &env, vmta, w.rcpts, w.attempts));
        }
        if moved > 0 {
            info!("{key}: virtual MTA removed by a reload; mail sent to its pools moves to other members");
            self.queue_work(placed);
        }
        moved
    }
}
