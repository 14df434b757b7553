//! The engine handle: starting it, taking new mail into its queues, the operator's
//! commands (pause, resume, schedule, delete, backoff) and the views (`show queues`, `jobs`,
//! `vmtas`, counters). The work happens in the modules beside it: `dispatch` opens
//! connections, `connection` drives one, `transaction` sends one message over it, `outcome`
//! decides what the replies mean, `settle` applies that, `record` writes it down, `dsn`
//! returns failures to the sender.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use petrel_config::{Config, LiveConfig, QueueMode};
use petrel_record::{subaccount, AttemptKind, Recorder, Scope};
use petrel_spool::{Envelope, MessageId, Spool};
use petrel_suppression::{NewEntry, Reason, SuppressionList};
use petrel_tracking::TokenKeys;
use petrel_verp::ReturnPathKeys;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::clock::{Clock, SystemClock};
use crate::dispatch::dispatcher;
use crate::dkim::KeyCache;
use crate::queue::{queue_matcher, QueueKey, QueueView, Queues, Work};
use crate::record::Attempt;
use crate::route::{RouteError, Router};
use crate::tracking::Plan;

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The resolver could not be configured.
    #[error("resolver: {0}")]
    Route(#[from] RouteError),
}

/// Counters for `show status`.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct EngineStats {
    /// Recipients delivered since start.
    pub delivered: u64,
    /// Recipients bounced since start.
    pub bounced: u64,
    /// Temporary failures since start.
    pub deferred: u64,
    /// Connections opened since start.
    pub connections: u64,
    /// DSNs generated.
    pub dsns: u64,
}

/// A job's state for `show jobs`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobView {
    /// The job id.
    pub job: String,
    /// Recipients waiting.
    pub recipients: u64,
    /// Paused by `pause job`.
    pub paused: bool,
}

/// A virtual MTA's state for `show vmtas`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VmtaView {
    /// The vmta.
    pub name: String,
    /// Queues (domains) with work.
    pub domains: u64,
    /// Recipients waiting.
    pub recipients: u64,
    /// Connections open.
    pub connections: u64,
}

/// What the engine has done since start besides recipient outcomes (those are the
/// recorder's counters).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) dsns: AtomicU64,
}

/// The engine's shared state: every clone of [`Engine`], the dispatcher and each connection
/// task hold it.
pub(crate) struct Inner {
    pub(crate) spool: Spool,
    pub(crate) config: LiveConfig,
    pub(crate) clock: Arc<dyn Clock>,
    /// Where outcomes go: accounting rows, Signals events, counters.
    pub(crate) recorder: Recorder,
    pub(crate) router: Router,
    pub(crate) queues: Mutex<Queues>,
    pub(crate) wake: Notify,
    /// Per queue: wakes one idle connection of that queue when work arrives.
    pub(crate) idle: Mutex<HashMap<QueueKey, Arc<Notify>>>,
    /// Per queue `max-msg-rate` windows: (window start, recipients attempted in it).
    pub(crate) rates: Mutex<HashMap<QueueKey, (tokio::time::Instant, u32)>>,
    /// Loaded DKIM keys, for the configuration generation they were loaded under.
    pub(crate) keys: Mutex<(u64, KeyCache)>,
    /// Keys that sign engagement-tracking links; without them no message is rewritten.
    pub(crate) tracking_keys: Option<Arc<TokenKeys>>,
    /// Keys that sign VERP return paths for mail from bounce-processor domains.
    pub(crate) return_path_keys: Option<Arc<ReturnPathKeys>>,
    /// Recipients not to be mailed (hard bounces, complaints, operator entries).
    pub(crate) suppression: Option<Arc<SuppressionList>>,
    pub(crate) pool_rr: Mutex<HashMap<String, usize>>,
    pub(crate) source_rr: Mutex<HashMap<String, usize>>,
    pub(crate) counters: Counters,
    pub(crate) tick: Duration,
}

/// The delivery engine. Cheap to clone; every clone drives the same queues.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

/// Everything the engine works with, given once when it starts: no part is attached later,
/// so mail recovered from the spool at start-up is attempted with suppression, VERP and
/// tracking already in place.
pub struct Parts {
    /// The spool mail is delivered from (its pending recipients are queued at start).
    pub spool: Spool,
    /// The daemon's configuration handle; each connection and message reads it when it
    /// starts, so a reload applies from then on.
    pub config: LiveConfig,
    /// Where outcomes go (accounting rows, Signals events, counters).
    pub recorder: Recorder,
    /// Recipients not to be mailed: suppressed ones fail without an attempt
    /// (`policy_rejection`, a `b` row with bounce class 25) and hard bounces are added.
    pub suppression: Option<Arc<SuppressionList>>,
    /// Keys that sign VERP return paths: mail whose MAIL FROM is in the
    /// `<bounce-processor>`'s address list leaves one recipient per transaction, each with a
    /// return path naming its copy, so bounces are attributed exactly.
    pub return_path_keys: Option<Arc<ReturnPathKeys>>,
    /// Keys that sign engagement-tracking links; without them nothing is rewritten.
    pub tracking_keys: Option<Arc<TokenKeys>>,
    /// Where time comes from ([`crate::ManualClock`] in tests).
    pub clock: Arc<dyn Clock>,
    /// The longest the dispatcher sleeps between looks at retry times (1 s in production,
    /// shorter in tests).
    pub tick: Duration,
}

impl Parts {
    /// The parts of a plain engine: the system clock, a 1 s tick, a recorder that only
    /// counts, and no suppression, VERP or tracking.
    pub fn new(spool: Spool, config: LiveConfig) -> Parts {
        Parts {
            spool,
            config,
            recorder: Recorder::default(),
            suppression: None,
            return_path_keys: None,
            tracking_keys: None,
            clock: Arc::new(SystemClock),
            tick: Duration::from_secs(1),
        }
    }
}

impl Engine {
    /// Starts the engine on a running tokio runtime: loads every pending recipient from the
    /// spool into its queue and spawns the dispatcher.
    pub fn start(parts: Parts) -> Result<Engine, EngineError> {
        let router = Router::new(&parts.config.get().name_servers)?;
        let generation = parts.config.generation();
        let engine = Engine {
            inner: Arc::new(Inner {
                spool: parts.spool,
                config: parts.config,
                clock: parts.clock,
                recorder: parts.recorder,
                router,
                queues: Mutex::new(Queues::default()),
                wake: Notify::new(),
                idle: Mutex::new(HashMap::new()),
                rates: Mutex::new(HashMap::new()),
                keys: Mutex::new((generation, HashMap::new())),
                tracking_keys: parts.tracking_keys,
                return_path_keys: parts.return_path_keys,
                suppression: parts.suppression,
                pool_rr: Mutex::new(HashMap::new()),
                source_rr: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                tick: parts.tick,
            }),
        };
        let ids = engine.inner.spool.ids();
        let n = ids.len();
        for id in ids {
            engine.enqueue(id);
        }
        if n > 0 {
            info!("delivery: {n} spooled message(s) queued");
        }
        let inner = engine.inner.clone();
        tokio::spawn(dispatcher(inner));
        Ok(engine)
    }

    /// A message was just committed by the listener: writes its reception records (`r`
    /// accounting rows, `reception` events) and queues it.
    pub fn received(&self, id: MessageId) {
        if let Some(env) = self.inner.spool.envelope(id) {
            self.inner.record_reception(id, &env);
        }
        self.enqueue(id);
    }

    /// Queues the pending recipients of a spooled message (after a commit or at start-up).
    pub fn enqueue(&self, id: MessageId) {
        let Some(env) = self.inner.spool.envelope(id) else {
            return;
        };
        let config = self.inner.config();
        let queue_to = config.uses_queue_to();
        let mut by_queue: HashMap<QueueKey, Vec<u32>> = HashMap::new();
        for (i, r) in env.recipients.iter().enumerate() {
            if r.done {
                continue;
            }
            let vmta = self.inner.pick_vmta(&config, &env.vmta);
            // `queue-to`: the recipient joins another domain's queue (its routing and limits).
            let domain = if queue_to {
                config.queue_domain(&r.domain(), &vmta)
            } else {
                r.domain()
            };
            let key = QueueKey { domain, vmta };
            by_queue.entry(key).or_default().push(i as u32);
        }
        let keys: Vec<QueueKey> = by_queue.keys().cloned().collect();
        let mut q = self.inner.lock_queues();
        for (key, rcpts) in by_queue {
            q.push(
                key,
                Work {
                    id,
                    rcpts,
                    job: env.job_id.clone(),
                    attempts: 0,
                },
            );
        }
        drop(q);
        for key in &keys {
            self.inner.idle_notifier(key).notify_one();
        }
        self.inner.wake.notify_one();
    }

    /// `pause queue PATTERN` / `resume queue PATTERN`: returns the number of queues matched.
    /// A pattern naming one queue that has no mail yet creates it paused.
    pub fn set_queue_paused(&self, pattern: &str, paused: bool) -> usize {
        let mut q = self.inner.lock_queues();
        let mut n = q.set_paused(queue_matcher(pattern), paused);
        if n == 0 && !pattern.contains('*') {
            if let Some((d, v)) = pattern.split_once('/') {
                q.ensure(QueueKey {
                    domain: d.to_ascii_lowercase(),
                    vmta: v.to_string(),
                })
                .paused = paused;
                n = 1;
            }
        }
        drop(q);
        self.inner.wake.notify_one();
        n
    }

    /// `pause job ID` / `resume job ID`.
    pub fn set_job_paused(&self, job: &str, paused: bool) {
        let mut q = self.inner.lock_queues();
        if paused {
            q.pause_job(job);
        } else {
            q.resume_job(job);
        }
        drop(q);
        self.inner.wake.notify_one();
    }

    /// `set queue --mode=backoff|normal PATTERN`: switches the matching queues' mode.
    /// Returns the number of queues matched; a `domain/vmta` with nothing queued yet is
    /// created so the mode applies to its first message.
    pub fn set_queue_backoff(&self, pattern: &str, backoff: bool) -> usize {
        let now = self.inner.clock.now();
        let mut q = self.inner.lock_queues();
        let mut n = q.set_backoff_matching(queue_matcher(pattern), backoff, now);
        if n == 0 && !pattern.contains('*') {
            if let Some((d, v)) = pattern.split_once('/') {
                let key = QueueKey {
                    domain: d.to_ascii_lowercase(),
                    vmta: v.to_string(),
                };
                q.set_backoff(&key, backoff, now);
                n = 1;
            }
        }
        drop(q);
        info!(
            "set queue {pattern} --mode={}: {n} queue(s)",
            if backoff { "backoff" } else { "normal" }
        );
        self.inner.wake.notify_one();
        n
    }

    /// `schedule PATTERN`: retry now. Returns the number of queues matched.
    pub fn schedule(&self, pattern: &str) -> usize {
        let n = self.inner.lock_queues().schedule(queue_matcher(pattern));
        self.inner.wake.notify_one();
        n
    }

    /// `delete --queue=PATTERN` or `--jobId=ID`: removes waiting recipients, writing a bounce
    /// record "deleted by administrator" for each. Returns the number of recipients.
    pub async fn delete(&self, queue: Option<&str>, job: Option<&str>) -> usize {
        let matcher = queue.map(queue_matcher);
        let removed = self.inner.lock_queues().remove_where(|k, w| {
            matcher.as_ref().is_none_or(|m| m(k)) && job.is_none_or(|j| w.job.as_deref() == Some(j))
        });
        let mut n = 0;
        let config = self.inner.config();
        for (key, work) in removed {
            let Some(env) = self.inner.spool.envelope(work.id) else {
                continue;
            };
            for &i in &work.rcpts {
                let now = self.inner.clock.now();
                let deleted = Attempt {
                    id: work.id,
                    env: &env,
                    rcpt: i,
                    key: &key,
                    dest: None,
                    conn: None,
                    kind: AttemptKind::Bounced,
                    status: "5.0.0",
                    diag: "smtp;550 5.0.0 deleted by administrator",
                    category: "other",
                    class: 25,
                    attempts: work.attempts,
                    at: now,
                };
                self.inner.record_attempt(&config, deleted);
                if self.inner.spool.recipient_done(work.id, i).await.is_ok() {
                    n += 1;
                }
            }
        }
        n
    }

    /// Every queue with its waiting recipients, for `show queues`.
    pub fn queues(&self) -> Vec<QueueView> {
        let spool = &self.inner.spool;
        self.inner
            .lock_queues()
            .views(|id| spool.body_len(id).unwrap_or(0))
    }

    /// Jobs with waiting mail, for `show jobs`.
    pub fn jobs(&self) -> Vec<JobView> {
        let mut v: Vec<JobView> = self
            .inner
            .lock_queues()
            .jobs()
            .into_iter()
            .map(|(job, (recipients, paused))| JobView {
                job,
                recipients,
                paused,
            })
            .collect();
        v.sort_by(|a, b| b.recipients.cmp(&a.recipients).then(a.job.cmp(&b.job)));
        v
    }

    /// Virtual MTAs with their queues, for `show vmtas`.
    pub fn vmtas(&self) -> Vec<VmtaView> {
        let mut by: HashMap<String, VmtaView> = HashMap::new();
        for name in self
            .inner
            .config()
            .virtual_mtas
            .iter()
            .map(|v| v.name.clone())
        {
            by.insert(
                name.clone(),
                VmtaView {
                    name,
                    domains: 0,
                    recipients: 0,
                    connections: 0,
                },
            );
        }
        for q in self.queues() {
            let e = by.entry(q.key.vmta.clone()).or_insert(VmtaView {
                name: q.key.vmta.clone(),
                domains: 0,
                recipients: 0,
                connections: 0,
            });
            e.domains += 1;
            e.recipients += q.recipients;
            e.connections += u64::from(q.connections);
        }
        let mut v: Vec<VmtaView> = by.into_values().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Counters since start.
    pub fn stats(&self) -> EngineStats {
        let c = &self.inner.counters;
        let outcomes = self.inner.recorder.counters();
        EngineStats {
            delivered: outcomes.delivered,
            bounced: outcomes.bounced,
            deferred: outcomes.deferred,
            connections: c.connections.load(Ordering::Relaxed),
            dsns: c.dsns.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    pub(crate) fn config(&self) -> Arc<Config> {
        self.config.get()
    }

    pub(crate) fn idle_notifier(&self, key: &QueueKey) -> Arc<Notify> {
        let mut map = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(key) {
            return n.clone();
        }
        map.entry(key.clone()).or_default().clone()
    }

    pub(crate) fn lock_queues(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pool is resolved to one of its members, round-robin per message (pmta-spec §2.7).
    pub(crate) fn pick_vmta(&self, config: &Config, name: &str) -> String {
        match config.pool(name) {
            Some(pool) if !pool.members.is_empty() => {
                let mut rr = self.pool_rr.lock().unwrap_or_else(|e| e.into_inner());
                let n = rr.entry(name.to_string()).or_default();
                let member = pool.members[*n % pool.members.len()].clone();
                *n += 1;
                member
            }
            _ => name.to_string(),
        }
    }

    /// The VERP keys when the message's MAIL FROM is one of the bounce processor's
    /// addresses (so bounces come back to petrel) and keys are loaded.
    pub(crate) fn verp_keys_for(
        &self,
        config: &Config,
        env: &Envelope,
    ) -> Option<Arc<ReturnPathKeys>> {
        if env.mail_from.is_empty() {
            return None;
        }
        let bp = config.bounce_processor.as_ref()?;
        if !bp.address_list.contains(&env.mail_from) {
            return None;
        }
        self.return_path_keys.clone()
    }

    /// `mode=backoff` / `mode=normal` of matching reply patterns, in order: switches the
    /// queue and logs each change (nothing when the queue is already in that mode).
    pub(crate) fn apply_modes(&self, key: &QueueKey, modes: Vec<(QueueMode, String)>) {
        for (mode, reply) in modes {
            let backoff = mode == QueueMode::Backoff;
            let now = self.clock.now();
            if self.lock_queues().set_backoff(key, backoff, now) {
                let what = if backoff { "backoff" } else { "normal" };
                info!("{key}: reply pattern matched ({reply}); queue now in {what} mode");
            }
        }
    }

    /// Adds a recipient that hard-bounced in the SMTP session to the suppression list, unless
    /// `suppress-hard-bounces no`.
    pub(crate) fn suppress_hard_bounce(
        &self,
        env: &Envelope,
        key: &QueueKey,
        rcpt: &str,
        diag: &str,
    ) {
        let config = self.config();
        if !config.suppress_hard_bounces {
            return;
        }
        let Some(list) = self.suppression.clone() else {
            return;
        };
        let entry = NewEntry {
            address: rcpt.to_string(),
            subaccount: subaccount(&config, env, &Scope::at_delivery(env, &key.vmta)),
            reason: Reason::HardBounce,
            description: format!("bounce: {diag}"),
        };
        if let Err(e) = list.add(entry) {
            warn!("suppression: {e}");
        }
    }

    /// How message `id` is rewritten for engagement tracking when sent from queue `key`,
    /// if at all.
    pub(crate) fn tracking_plan(
        &self,
        config: &Config,
        id: MessageId,
        env: &Envelope,
        scope: &Scope<'_>,
        now: SystemTime,
    ) -> Option<Plan> {
        let keys = self.tracking_keys.clone()?;
        Plan::new(config, Some(keys), id, env, scope, now)
    }
}
