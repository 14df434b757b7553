//! The engine: dispatcher, connection tasks, and what each outcome does to the spool,
//! the accounting files and the sender (DSN).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use petrel_accounting::{Accounting, AcctRecord, DlvType, DsnAction, SrcType};
use petrel_config::{
    Config, DkimSign, EffectiveDomainSettings, KeyDomain, NoMxPolicy, QueueMode, RecordType,
    ReplyActions, SourceAddr,
};
use petrel_dkim::{DkimKey, SignOptions};
use petrel_events::{EventKind, EventSpool};
use petrel_reply_class::classify;
use petrel_smtp::Reply;
use petrel_smtp_client::{
    ClientError, ClientOptions, Connection, RecipientSpec, Timeouts, TlsMode, Transaction,
};
use petrel_spool::{Envelope, MessageId, Recipient, Spool};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::dsn::{build_failure_dsn, wants_failure_dsn, FailedRecipient};
use crate::queue::{
    later_by, queue_matcher, ConnectLimits, Next, QueueKey, QueueView, Queues, Work,
};
use crate::route::{Destination, RouteError, Router};
use crate::signals::{reason_parts, recipient_event, subaccount, Scope};
use crate::tracking::{self, Plan};
use petrel_suppression::{NewEntry, Reason, SuppressionList};
use petrel_tracking::TokenKeys;
use petrel_verp::ReturnPathKeys;

/// SparkPost's bounce class for mail refused by the sender platform's own policy.
const SUPPRESSED_CLASS: u16 = 25;
/// Bounce classes that mean the address will never work (SparkPost suppresses them):
/// invalid recipient, no recipient / bad address, unsubscribe.
const HARD_CLASSES: [u16; 3] = [10, 30, 90];

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

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    bounced: AtomicU64,
    deferred: AtomicU64,
    connections: AtomicU64,
    dsns: AtomicU64,
}

/// Where the engine writes what happened to each recipient. Both are optional so tests and
/// minimal configurations run without them.
#[derive(Clone, Default)]
pub struct Recorders {
    /// The accounting files (`<acct-file>`).
    pub accounting: Option<Arc<Accounting>>,
    /// The Signals event spool (`<signals>`); which messages produce events is decided per
    /// message by `enable-signals`.
    pub events: Option<Arc<EventSpool>>,
}

/// Parsed DKIM keys by (key file, signing domain); `None` remembers a key that failed to
/// load so the error is logged once, not per message.
type KeyCache = HashMap<(PathBuf, String), Option<Arc<DkimKey>>>;

struct Inner {
    spool: Spool,
    config: RwLock<Arc<Config>>,
    clock: Arc<dyn Clock>,
    accounting: Option<Arc<Accounting>>,
    events: Option<Arc<EventSpool>>,
    router: Router,
    queues: Mutex<Queues>,
    wake: Notify,
    /// Per queue: wakes one idle connection of that queue when work arrives.
    idle: Mutex<HashMap<QueueKey, Arc<Notify>>>,
    /// Per queue `max-msg-rate` windows: (window start, recipients attempted in it).
    rates: Mutex<HashMap<QueueKey, (tokio::time::Instant, u32)>>,
    keys: Mutex<KeyCache>,
    /// Keys that sign engagement-tracking links; without them no message is rewritten.
    tracking_keys: RwLock<Option<Arc<TokenKeys>>>,
    /// Keys that sign VERP return paths for mail from bounce-processor domains.
    return_path_keys: RwLock<Option<Arc<ReturnPathKeys>>>,
    /// Recipients not to be mailed (hard bounces, complaints, operator entries).
    suppression: RwLock<Option<Arc<SuppressionList>>>,
    pool_rr: Mutex<HashMap<String, usize>>,
    source_rr: Mutex<HashMap<String, usize>>,
    counters: Counters,
    tick: Duration,
}

/// The delivery engine. Cheap to clone; every clone drives the same queues.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// What happened to one recipient in one attempt.
#[derive(Clone)]
enum Fate {
    Delivered(Reply),
    Deferred {
        status: String,
        diag: String,
        /// SparkPost `bounce_class`.
        class: u16,
    },
    Bounced {
        status: String,
        diag: String,
        category: String,
        /// SparkPost `bounce_class`.
        class: u16,
    },
}

impl Engine {
    /// Starts the engine on a running tokio runtime: loads every pending recipient from the
    /// spool into its queue and spawns the dispatcher. `tick` bounds how long the dispatcher
    /// sleeps between looks at retry times (1 s in production, shorter in tests).
    pub fn start(
        spool: Spool,
        config: Arc<Config>,
        recorders: Recorders,
        clock: Arc<dyn Clock>,
        tick: Duration,
    ) -> Result<Engine, EngineError> {
        let router = Router::new(&config.name_servers)?;
        let engine = Engine {
            inner: Arc::new(Inner {
                spool,
                config: RwLock::new(config),
                clock,
                accounting: recorders.accounting,
                events: recorders.events,
                router,
                queues: Mutex::new(Queues::default()),
                wake: Notify::new(),
                idle: Mutex::new(HashMap::new()),
                rates: Mutex::new(HashMap::new()),
                keys: Mutex::new(HashMap::new()),
                tracking_keys: RwLock::new(None),
                return_path_keys: RwLock::new(None),
                suppression: RwLock::new(None),
                pool_rr: Mutex::new(HashMap::new()),
                source_rr: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                tick,
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

    /// Sets the keys that sign engagement-tracking links (`tracking-key`, or the key file).
    /// Until they are set, or with `None`, messages are sent without tracking.
    pub fn set_tracking_keys(&self, keys: Option<Arc<TokenKeys>>) {
        *self
            .inner
            .tracking_keys
            .write()
            .unwrap_or_else(|e| e.into_inner()) = keys;
    }

    /// Sets the keys that sign VERP return paths. With keys, mail whose MAIL FROM is in the
    /// `<bounce-processor>`'s address list leaves one recipient per transaction, each with a
    /// return path naming its copy, so bounces are attributed exactly.
    pub fn set_return_path_keys(&self, keys: Option<Arc<ReturnPathKeys>>) {
        *self
            .inner
            .return_path_keys
            .write()
            .unwrap_or_else(|e| e.into_inner()) = keys;
    }

    /// Sets the suppression list: suppressed recipients are failed without an attempt
    /// (`policy_rejection`, `b` row with bounce class 25), and hard bounces are added to it.
    pub fn set_suppression(&self, list: Option<Arc<SuppressionList>>) {
        *self
            .inner
            .suppression
            .write()
            .unwrap_or_else(|e| e.into_inner()) = list;
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

    /// Applies a reloaded configuration to connections opened from now on.
    pub fn reload(&self, config: Arc<Config>) {
        *self.inner.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        self.inner
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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
        for (key, work) in removed {
            let Some(env) = self.inner.spool.envelope(work.id) else {
                continue;
            };
            for &i in &work.rcpts {
                let now = self.inner.clock.now();
                self.inner.record(AcctRecordInput {
                    kind: RecordType::Bounce,
                    id: work.id,
                    env: &env,
                    rcpt_index: i,
                    key: &key,
                    dest: None,
                    conn: None,
                    status: "5.0.0",
                    diag: "smtp;550 5.0.0 deleted by administrator",
                    category: "other",
                    class: 25,
                    attempts: work.attempts,
                    action: DsnAction::Failed,
                    now,
                });
                if self.inner.spool.recipient_done(work.id, i).await.is_ok() {
                    n += 1;
                }
            }
        }
        n
    }

    /// Every queue with its waiting recipients, for `show queues`.
    pub fn queues(&self) -> Vec<QueueView> {
        self.inner.lock_queues().views()
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
        EngineStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            bounced: c.bounced.load(Ordering::Relaxed),
            deferred: c.deferred.load(Ordering::Relaxed),
            connections: c.connections.load(Ordering::Relaxed),
            dsns: c.dsns.load(Ordering::Relaxed),
        }
    }

    /// Writes any buffered accounting rows (tests and shutdown).
    pub fn flush_accounting(&self) {
        if let Some(a) = &self.inner.accounting {
            if let Err(e) = a.flush() {
                warn!("accounting: {e}");
            }
        }
    }
}

impl Inner {
    fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `max-msg-rate`: recipients attempted per window, shared by every connection of the
    /// queue. Waits until the current window has room (a batch larger than the whole
    /// allowance goes alone at the start of a window).
    async fn wait_for_rate(&self, key: &QueueKey, rate: petrel_config::Rate, n: u32) {
        loop {
            let wait = {
                let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
                let now = tokio::time::Instant::now();
                let (start, used) = rates.entry(key.clone()).or_insert((now, 0));
                if now.duration_since(*start) >= rate.window {
                    *start = now;
                    *used = 0;
                }
                if *used == 0 || *used + n <= rate.count {
                    *used += n;
                    return;
                }
                (*start + rate.window).saturating_duration_since(now)
            };
            tokio::time::sleep(wait).await;
        }
    }

    fn idle_notifier(&self, key: &QueueKey) -> Arc<Notify> {
        let mut map = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(key) {
            return n.clone();
        }
        map.entry(key.clone()).or_default().clone()
    }

    fn lock_queues(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pool is resolved to one of its members, round-robin per message (pmta-spec §2.7).
    fn pick_vmta(&self, config: &Config, name: &str) -> String {
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

    /// Source IP and EHLO name for a vmta: its `smtp-source-host` lines (round-robin), else
    /// the global ones, else the OS's choice and the first `host-name`.
    fn source_for(&self, config: &Config, vmta: &str) -> (Option<IpAddr>, String) {
        let ips: Vec<(IpAddr, &str)> = config
            .source_hosts_for(vmta)
            .iter()
            .filter_map(|h| match h.addr {
                SourceAddr::Ip(ip) => Some((ip, h.host_name.as_str())),
                SourceAddr::Cidr(_) => None,
            })
            .collect();
        if ips.is_empty() {
            let name = config
                .virtual_mta(vmta)
                .and_then(|v| v.host_name.first().cloned())
                .unwrap_or_else(|| config.primary_host_name().to_string());
            return (None, name);
        }
        let mut rr = self.source_rr.lock().unwrap_or_else(|e| e.into_inner());
        let n = rr.entry(vmta.to_string()).or_default();
        let (ip, name) = ips[*n % ips.len()];
        *n += 1;
        (Some(ip), name.to_string())
    }

    /// The VERP keys when the message's MAIL FROM is one of the bounce processor's
    /// addresses (so bounces come back to petrel) and keys are loaded.
    fn verp_keys_for(&self, config: &Config, env: &Envelope) -> Option<Arc<ReturnPathKeys>> {
        if env.mail_from.is_empty() {
            return None;
        }
        let bp = config.bounce_processor.as_ref()?;
        if !bp.address_list.contains(&env.mail_from) {
            return None;
        }
        self.return_path_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `mode=backoff` / `mode=normal` of a matching reply pattern: switches the queue and logs
    /// the change (nothing when the queue is already in that mode).
    fn apply_reply_mode(&self, key: &QueueKey, actions: &ReplyActions, reply: &str) {
        let Some(mode) = actions.mode else { return };
        let backoff = mode == QueueMode::Backoff;
        let now = self.clock.now();
        if self.lock_queues().set_backoff(key, backoff, now) {
            let what = if backoff { "backoff" } else { "normal" };
            info!("{key}: reply pattern matched ({reply}); queue now in {what} mode");
        }
    }

    /// Adds a recipient that hard-bounced in the SMTP session to the suppression list, unless
    /// `suppress-hard-bounces no`.
    fn suppress_hard_bounce(&self, env: &Envelope, key: &QueueKey, rcpt: &str, diag: &str) {
        let config = self.config();
        if !config.suppress_hard_bounces {
            return;
        }
        let Some(list) = self
            .suppression
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return;
        };
        let entry = NewEntry {
            address: rcpt.to_string(),
            subaccount: subaccount(&config, env, &Scope::at_delivery(env, key)),
            reason: Reason::HardBounce,
            description: format!("bounce: {diag}"),
        };
        if let Err(e) = list.add(entry) {
            warn!("suppression: {e}");
        }
    }

    /// How message `id` is rewritten for engagement tracking when sent from queue `key`,
    /// if at all.
    fn tracking_plan(
        &self,
        config: &Config,
        id: MessageId,
        env: &Envelope,
        scope: &Scope<'_>,
        now: SystemTime,
    ) -> Option<Plan> {
        let keys = self
            .tracking_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        Plan::new(config, Some(keys), id, env, scope, now)
    }

    fn dkim_key_for(
        &self,
        config: &Config,
        vmta: &str,
        identity_domain: &str,
    ) -> Option<Arc<DkimKey>> {
        let vmta_keys = config
            .virtual_mta(vmta)
            .map(|v| v.domain_keys.clone())
            .unwrap_or_default();
        for k in vmta_keys.iter().chain(config.domain_keys.iter()) {
            // A key's domain must equal, or be a parent of, the identity's domain; `*` signs
            // for whatever domain the identity has (pmta-spec §2.1 `domain-key`).
            let signing_domain = match &k.domain {
                KeyDomain::Any => identity_domain.to_string(),
                KeyDomain::Name(d)
                    if identity_domain == d || identity_domain.ends_with(&format!(".{d}")) =>
                {
                    d.clone()
                }
                KeyDomain::Name(_) => continue,
            };
            let mut cache = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            let entry = cache
                .entry((k.key_file.clone(), signing_domain.clone()))
                .or_insert_with(|| {
                    match DkimKey::load(&k.selector, &signing_domain, &k.key_file) {
                        Ok(key) => Some(Arc::new(key)),
                        Err(e) => {
                            warn!("dkim: {e}");
                            None
                        }
                    }
                });
            if let Some(key) = entry.clone() {
                return Some(key);
            }
        }
        None
    }

    /// Writes one recipient's outcome to the accounting files and the Signals stream, both
    /// derived from the same input.
    fn record(&self, i: AcctRecordInput<'_>) {
        self.emit_outcome(&i);
        self.account(i);
    }

    fn emit_outcome(&self, i: &AcctRecordInput<'_>) {
        let Some(events) = &self.events else { return };
        let kind = match i.kind {
            RecordType::Delivery => EventKind::Delivery,
            // Class 25 ("admin failure") is petrel's own policy, e.g. a suppressed
            // recipient: SparkPost reports that as a policy rejection, not a bounce.
            RecordType::Bounce if i.class == SUPPRESSED_CLASS => EventKind::PolicyRejection,
            RecordType::Bounce => EventKind::Bounce,
            RecordType::Transient => EventKind::Delay,
            _ => return,
        };
        let config = self.config();
        let scope = Scope::at_delivery(i.env, i.key);
        let Some(mut e) = recipient_event(&config, kind, i.id, i.env, i.rcpt_index, &scope, i.now)
        else {
            return;
        };
        set_tracking_flags(&mut e, tracking::flags(&config, i.env, &scope));
        e.delv_method = Some("esmtp".into());
        e.msg_size = self.spool.body_len(i.id);
        e.num_retries = Some(i.attempts);
        if let Some(c) = i.conn {
            e.sending_ip = Some(c.local_addr().ip());
            e.outbound_tls = Some(i8::from(c.tls_info().is_some()));
        }
        if let Some(d) = i.dest {
            e.ip_address = Some(d.addr.ip());
        }
        if kind != EventKind::Delivery {
            let (code, reason) = reason_parts(i.diag);
            e.bounce_class = Some(i.class);
            e.error_code = code;
            e.raw_reason = Some(reason);
        }
        if let Err(err) = events.emit(&e) {
            warn!("signals: {err}");
        }
    }

    /// `r` rows and `reception` events, one per recipient.
    fn record_reception(&self, id: MessageId, env: &Envelope) {
        let now = self.clock.now();
        let config = self.config();
        let scope = Scope::at_reception(&config, env);
        let size = self.spool.body_len(id);
        for (i, r) in env.recipients.iter().enumerate() {
            if let Some(acct) = &self.accounting {
                let mut rec = AcctRecord::new(RecordType::Receipt, now);
                rec.orig = env.mail_from.clone();
                rec.rcpt = r.address.clone();
                rec.orcpt = r.orcpt.clone().unwrap_or_default();
                rec.src_type = Some(SrcType::Smtp);
                rec.rcv_source_ip = env.client_ip;
                rec.vmta = env.vmta.clone();
                rec.job_id = env.job_id.clone().unwrap_or_default();
                rec.env_id = env.env_id.clone().unwrap_or_default();
                rec.rcv_smtp_user = env.auth_user.clone().unwrap_or_default();
                if let Err(e) = acct.record(rec) {
                    warn!("accounting: {e}");
                }
            }
            let Some(events) = &self.events else { continue };
            let Some(mut e) = recipient_event(
                &config,
                EventKind::Reception,
                id,
                env,
                i as u32,
                &scope,
                now,
            ) else {
                continue;
            };
            e.recv_method = Some("esmtp".into());
            set_tracking_flags(&mut e, tracking::flags(&config, env, &scope));
            e.msg_size = size;
            e.remote_addr = env.client_ip;
            if let Err(err) = events.emit(&e) {
                warn!("signals: {err}");
            }
        }
    }

    fn account(&self, i: AcctRecordInput<'_>) {
        let Some(acct) = &self.accounting else { return };
        let r: &Recipient = &i.env.recipients[i.rcpt_index as usize];
        let queued = SystemTime::UNIX_EPOCH + Duration::from_millis(i.env.received_at_unix_ms);
        let pool = if i.env.vmta != i.key.vmta {
            Some(i.env.vmta.clone())
        } else {
            None
        };
        let mut rec = AcctRecord::new(i.kind, i.now);
        rec.time_queued = Some(queued);
        rec.orig = i.env.mail_from.clone();
        rec.rcpt = r.address.clone();
        rec.orcpt = r.orcpt.clone().unwrap_or_default();
        rec.dsn_action = Some(i.action);
        rec.dsn_status = i.status.parse().ok();
        rec.dsn_diag = i.diag.to_string();
        rec.bounce_cat = if i.kind == RecordType::Delivery {
            String::new()
        } else {
            i.category.to_string()
        };
        rec.src_type = Some(SrcType::Smtp);
        rec.src_mta = match (&i.env.client_helo, &i.env.client_ip) {
            (Some(h), Some(a)) => format!("{h} ({a})"),
            (None, Some(a)) => format!("({a})"),
            (Some(h), None) => h.clone(),
            (None, None) => String::new(),
        };
        rec.dlv_type = Some(DlvType::Smtp);
        if let Some(d) = i.dest {
            rec.dsn_mta = format!("{} ({})", d.name, d.addr.ip());
            rec.dlv_destination_ip = Some(d.addr.ip());
        }
        if let Some(c) = i.conn {
            rec.dlv_source_ip = Some(c.local_addr().ip());
            rec.dlv_esmtp_available = c.extensions().keywords.clone();
            if let Some(t) = c.tls_info() {
                rec.dlv_tls_protocol = t.protocol.clone();
                rec.dlv_tls_cipher = t.cipher.clone();
            }
        }
        rec.vmta = i.key.vmta.clone();
        rec.vmta_pool = pool.unwrap_or_default();
        rec.job_id = i.env.job_id.clone().unwrap_or_default();
        rec.env_id = i.env.env_id.clone().unwrap_or_default();
        rec.queue = i.key.to_string();
        rec.rcv_smtp_user = i.env.auth_user.clone().unwrap_or_default();
        rec.total_seconds_queued = i.now.duration_since(queued).map(|d| d.as_secs()).ok();
        if let Err(e) = acct.record(rec) {
            warn!("accounting: {e}");
        }
    }
}

struct AcctRecordInput<'a> {
    kind: RecordType,
    id: MessageId,
    env: &'a Envelope,
    rcpt_index: u32,
    key: &'a QueueKey,
    dest: Option<&'a Destination>,
    conn: Option<&'a Connection>,
    status: &'a str,
    diag: &'a str,
    category: &'a str,
    /// SparkPost `bounce_class` (events only).
    class: u16,
    /// Failed attempts before this one.
    attempts: u32,
    action: DsnAction,
    now: SystemTime,
}

async fn dispatcher(inner: Arc<Inner>) {
    loop {
        let now = inner.clock.now();
        let config = inner.config();
        let (starts, next_due) = {
            let mut q = inner.lock_queues();
            let promoted = q.promote_due(now);
            for key in &promoted {
                inner.idle_notifier(key).notify_one();
            }
            for key in q.end_expired_backoffs(now, |k| {
                config
                    .domain_settings(&k.domain, &k.vmta)
                    .backoff_to_normal_after
            }) {
                info!("{key}: backoff-to-normal-after has passed; back to normal mode");
            }
            let (starts, allowed_at) = q.start_connections(now, |k, backoff| {
                let s = config.domain_settings(&k.domain, &k.vmta);
                let (max, rate) = if backoff {
                    (s.backoff_max_smtp_out, s.backoff_max_connect_rate)
                } else {
                    (s.max_smtp_out, s.max_connect_rate)
                };
                ConnectLimits {
                    max,
                    rate: rate.map(|r| (r.count, r.window)),
                    rampup: s.smtp_out_rampup_interval,
                }
            });
            let next_due = match (q.next_due(now), allowed_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (starts, next_due)
        };
        for (key, n) in starts {
            for _ in 0..n {
                inner.counters.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(connection_task(inner.clone(), key.clone()));
            }
        }
        let mut sleep = inner.tick;
        if let Some(due) = next_due {
            if let Ok(d) = due.duration_since(now) {
                sleep = sleep.min(d.max(Duration::from_millis(5)));
            }
        }
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

fn client_options(
    settings: &EffectiveDomainSettings,
    source_ip: Option<IpAddr>,
    ehlo: String,
) -> ClientOptions {
    ClientOptions {
        ehlo_name: ehlo,
        source_ip,
        starttls: if settings.require_starttls {
            TlsMode::Required
        } else if settings.use_starttls {
            TlsMode::Opportunistic
        } else {
            TlsMode::Off
        },
        timeouts: Timeouts {
            connect: settings.connect_timeout,
            greeting: settings.smtp_greeting_timeout,
            command: settings.smtp_greeting_timeout,
            data_send: settings.data_send_timeout,
            data_termination: settings.smtp_data_termination_timeout,
        },
    }
}

async fn connection_task(inner: Arc<Inner>, key: QueueKey) {
    if run_connection(&inner, &key).await == Slot::Held {
        inner.lock_queues().connection_delta(&key, false);
    }
    inner.wake.notify_one();
}

/// Whether a finished connection still counts against its queue's connection limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Still counted: release it.
    Held,
    /// Already released (the backoff limit closed the connection).
    Released,
}

async fn run_connection(inner: &Arc<Inner>, key: &QueueKey) -> Slot {
    let config = inner.config();
    let settings = config.domain_settings(&key.domain, &key.vmta);
    let now = inner.clock.now();
    let levels = match inner.router.route(&key.domain, &settings).await {
        Ok(l) if !l.is_empty() => l,
        Ok(_) => {
            let e = RouteError::Temporary {
                domain: key.domain.clone(),
                reason: "no destination".into(),
            };
            queue_failure(inner, key, &settings, None, &e.to_string(), "4.4.4").await;
            return Slot::Held;
        }
        Err(RouteError::NoSuchDomain(d)) => {
            bounce_queue(
                inner,
                key,
                &settings,
                &format!("smtp;550 5.1.2 domain {d} does not exist"),
                "5.1.2",
                "bad-domain",
                21,
            )
            .await;
            return Slot::Held;
        }
        Err(RouteError::NullMx(d)) => {
            bounce_queue(
                inner,
                key,
                &settings,
                &format!("smtp;556 5.1.10 domain {d} does not accept mail (null MX)"),
                "5.1.10",
                "bad-domain",
                10,
            )
            .await;
            return Slot::Held;
        }
        Err(RouteError::NoMx(d)) => {
            let diag = format!("smtp;554 5.4.4 domain {d} has no MX record (bounce-upon-no-mx)");
            let NoMxPolicy::After(age) = settings.bounce_upon_no_mx else {
                bounce_queue(inner, key, &settings, &diag, "5.4.4", "bad-domain", 21).await;
                return Slot::Held;
            };
            // Older messages bounce; younger ones still try the domain's own address.
            let fate = Fate::Bounced {
                status: "5.4.4".into(),
                diag,
                category: "bad-domain".into(),
                class: 21,
            };
            bounce_older(inner, key, &settings, now, age, &fate).await;
            match inner
                .router
                .implicit_mx(&key.domain, settings.default_smtp_port)
                .await
            {
                Ok(l) if l.iter().any(|level| !level.is_empty()) => l,
                Ok(_) => {
                    let e = format!("{d} has no MX and no address");
                    queue_failure(inner, key, &settings, None, &e, "4.4.4").await;
                    return Slot::Held;
                }
                Err(e) => {
                    queue_failure(inner, key, &settings, None, &e.to_string(), "4.4.3").await;
                    return Slot::Held;
                }
            }
        }
        Err(e) => {
            queue_failure(inner, key, &settings, None, &e.to_string(), "4.4.3").await;
            return Slot::Held;
        }
    };
    let (source_ip, ehlo) = inner.source_for(&config, &key.vmta);
    let opts = client_options(&settings, source_ip, ehlo);
    let patterns = reply_patterns(&config, &settings);
    let mut opened = None;
    'levels: for level in &levels {
        for dest in level {
            match Connection::open(dest.addr, &dest.name, &opts).await {
                Ok(c) => {
                    opened = Some((c, dest.clone()));
                    break 'levels;
                }
                Err(e) => {
                    debug!("{key}: {} ({}): {e}", dest.name, dest.addr);
                    queue_failure_record(inner, key, Some(dest), &e.to_string(), "4.4.1", now);
                    // A refusing greeting ("421 too many connections") can match the
                    // queue's reply patterns too.
                    if let (Some(r), Some(list)) = (e.reply(), patterns) {
                        let line = reply_line(r);
                        if let Some(a) = list.actions_for(&line) {
                            inner.apply_reply_mode(key, a, &line);
                            let mut action = QueueAction::default();
                            action.merge(a, r);
                            if action.stops() {
                                action.apply(inner, key, &settings).await;
                                return Slot::Held;
                            }
                        }
                    }
                }
            }
        }
    }
    let Some((mut conn, dest)) = opened else {
        let last = levels.last().and_then(|l| l.last()).cloned();
        queue_failure(
            inner,
            key,
            &settings,
            last.as_ref(),
            "no MX host accepted a connection",
            "4.4.1",
        )
        .await;
        return Slot::Held;
    };
    let mut sent = 0u32;
    // An idle connection waits this long for more mail before QUIT: reconnecting costs a
    // TCP handshake, a greeting, EHLO and maybe TLS per message.
    let idle = if settings.connection_idle_timeout.is_zero() {
        IDLE_GRACE
    } else {
        settings.connection_idle_timeout
    };
    let notifier = inner.idle_notifier(key);
    let mut slot = Slot::Held;
    loop {
        let now = inner.clock.now();
        let next = inner
            .lock_queues()
            .next_for_connection(key, now, settings.backoff_max_smtp_out);
        let (work, backoff) = match next {
            Next::Work { work, backoff } => (work, backoff),
            Next::Empty => {
                if tokio::time::timeout(idle, notifier.notified())
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            Next::Held => break,
            Next::Released => {
                slot = Slot::Released;
                break;
            }
        };
        let rate = if backoff {
            settings.backoff_max_msg_rate
        } else {
            settings.max_msg_rate
        };
        if let Some(rate) = rate {
            inner
                .wait_for_rate(key, rate, work.rcpts.len() as u32)
                .await;
        }
        let flow = deliver_taken(inner, &mut conn, &dest, key, &settings, work).await;
        sent += 1;
        match flow {
            Flow::Continue => {}
            Flow::Lost => return slot,
            Flow::Stop => break,
        }
        if settings.max_msg_per_connection.is_some_and(|m| sent >= m) {
            break;
        }
    }
    conn.quit().await;
    slot
}

/// How long a connection stays open without work when `connection-idle-timeout` is 0.
const IDLE_GRACE: Duration = Duration::from_secs(2);

/// A whole queue could not be reached: `tq` record and retry mode.
async fn queue_failure(
    inner: &Arc<Inner>,
    key: &QueueKey,
    settings: &EffectiveDomainSettings,
    dest: Option<&Destination>,
    error: &str,
    status: &str,
) {
    let now = inner.clock.now();
    queue_failure_record(inner, key, dest, error, status, now);
    {
        let mut q = inner.lock_queues();
        let schedule = retry_schedule(&q, key, settings).to_vec();
        q.enter_retry(key, now, &schedule, error.to_string());
    }
    // Messages past bounce-after are bounced now rather than waiting for a host.
    expire_waiting(inner, key, settings, now).await;
}

fn queue_failure_record(
    inner: &Inner,
    key: &QueueKey,
    dest: Option<&Destination>,
    error: &str,
    status: &str,
    now: SystemTime,
) {
    let Some(acct) = &inner.accounting else {
        return;
    };
    let mut rec = AcctRecord::new(RecordType::TransientQueue, now);
    rec.queue = key.to_string();
    rec.vmta = key.vmta.clone();
    rec.dsn_status = status.parse().ok();
    rec.dsn_diag = error.to_string();
    rec.dlv_type = Some(DlvType::Smtp);
    if let Some(d) = dest {
        rec.dsn_mta = format!("{} ({})", d.name, d.addr.ip());
        rec.dlv_destination_ip = Some(d.addr.ip());
    }
    if let Err(e) = acct.record(rec) {
        warn!("accounting: {e}");
    }
}

async fn expire_waiting(
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
        &expired_fate(),
    )
    .await;
}

/// Bounces every waiting recipient of `key` whose message has been queued `max_age` or
/// longer, with `fate`.
async fn bounce_older(
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
                .is_some_and(|e| older_than(&e, max_age, now))
    });
    for (k, w) in old {
        if let Some(env) = inner.spool.envelope(w.id) {
            let fates: Vec<(u32, Fate)> = w.rcpts.iter().map(|&i| (i, fate.clone())).collect();
            settle(inner, settings, &env, &w, &k, None, None, fates, None).await;
        }
    }
}

fn is_expired(env: &Envelope, settings: &EffectiveDomainSettings, now: SystemTime) -> bool {
    older_than(env, settings.bounce_after, now)
}

fn older_than(env: &Envelope, max_age: Duration, now: SystemTime) -> bool {
    let queued = SystemTime::UNIX_EPOCH + Duration::from_millis(env.received_at_unix_ms);
    now.duration_since(queued).is_ok_and(|age| age >= max_age)
}

/// A suppressed recipient: failed by petrel's own policy (bounce class 25), like SparkPost's
/// "recipient address was suppressed due to customer policy".
fn suppressed_fate(address: &str, reason: &str) -> Fate {
    Fate::Bounced {
        status: "5.7.1".into(),
        diag: format!("smtp;550 5.7.1 <{address}>: recipient address was suppressed ({reason})"),
        category: "policy-related".into(),
        class: SUPPRESSED_CLASS,
    }
}

fn expired_fate() -> Fate {
    Fate::Bounced {
        status: "4.4.7".into(),
        diag: "smtp;554 4.4.7 message expired: not delivered within bounce-after".into(),
        category: "message-expired".into(),
        class: 24,
    }
}

/// The domain does not exist: every waiting recipient of the queue bounces.
async fn bounce_queue(
    inner: &Arc<Inner>,
    key: &QueueKey,
    settings: &EffectiveDomainSettings,
    diag: &str,
    status: &str,
    category: &str,
    class: u16,
) {
    let works = inner.lock_queues().remove_where(|k, _| k == key);
    for (k, w) in works {
        if let Some(env) = inner.spool.envelope(w.id) {
            let fates = w
                .rcpts
                .iter()
                .map(|&i| {
                    (
                        i,
                        Fate::Bounced {
                            status: status.into(),
                            diag: diag.into(),
                            category: category.into(),
                            class,
                        },
                    )
                })
                .collect();
            settle(inner, settings, &env, &w, &k, None, None, fates, None).await;
        }
    }
}

/// One transaction for `work`; says whether the connection may carry on.
async fn deliver(
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
    if is_expired(&env, settings, now) {
        let fates = work.rcpts.iter().map(|&i| (i, expired_fate())).collect();
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
    let scope = Scope::at_delivery(&env, key);
    // Suppressed recipients fail here, without an attempt; the others are sent.
    let sendable: Vec<u32> = {
        let subaccount = subaccount(&config, &env, &scope);
        let list = inner
            .suppression
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
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
                fates.push((i, suppressed_fate(&r.address, hit.reason.as_str())));
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
    let patterns = reply_patterns(&config, settings);
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
        match conn.send(&tx, body).await {
            Ok(outcome) => {
                let failed_tx = !outcome.mail.code.to_string().starts_with('2')
                    || outcome.data.as_ref().is_none_or(|d| d.code >= 300);
                for (n, &i) in idxs.iter().enumerate() {
                    let rcpt_reply = outcome.rcpts.get(n);
                    let decisive = if outcome.mail.code >= 300 {
                        Some(&outcome.mail)
                    } else if rcpt_reply.is_some_and(|r| r.code >= 300) {
                        rcpt_reply
                    } else {
                        outcome.data.as_ref()
                    };
                    let mut fate = fate_of(decisive, None);
                    recategorize(&config, &mut fate, decisive);
                    // `bounce-rcpt`: this receiver's 4xx to RCPT will not get better.
                    if let (Some(r), Some(list)) = (rcpt_reply, patterns) {
                        if (400..500).contains(&r.code)
                            && list
                                .actions_for(&reply_line(r))
                                .is_some_and(|a| a.bounce_rcpt)
                        {
                            fate = forced_bounce(r);
                        }
                    }
                    fates.push((i, fate));
                }
                if let Some(list) = patterns {
                    let replies = std::iter::once(&outcome.mail)
                        .chain(&outcome.rcpts)
                        .chain(&outcome.data);
                    for r in replies {
                        let line = reply_line(r);
                        if let Some(a) = list.actions_for(&line) {
                            inner.apply_reply_mode(key, a, &line);
                            queue_action.merge(a, r);
                        }
                    }
                }
                if !conn.is_reusable() || (failed_tx && conn.reset().await.is_err()) {
                    lost = true;
                }
            }
            Err(e) => {
                for &i in idxs {
                    let mut fate = fate_of(None, Some(&e));
                    recategorize(&config, &mut fate, e.reply());
                    fates.push((i, fate));
                }
                if let (Some(r), Some(list)) = (e.reply(), patterns) {
                    let line = reply_line(r);
                    if let Some(a) = list.actions_for(&line) {
                        inner.apply_reply_mode(key, a, &line);
                        queue_action.merge(a, r);
                    }
                }
                lost = true;
            }
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
            fates.push((
                i,
                Fate::Deferred {
                    status: "4.4.2".into(),
                    diag: "smtp;421 4.4.2 connection lost".into(),
                    class: 70,
                },
            ));
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
    let flow = queue_action.apply(inner, key, settings).await;
    if lost {
        Flow::Lost
    } else {
        flow
    }
}

/// Runs one taken work item and marks it no longer in flight, whatever happened.
async fn deliver_taken(
    inner: &Arc<Inner>,
    conn: &mut Connection,
    dest: &Destination,
    key: &QueueKey,
    settings: &EffectiveDomainSettings,
    work: Work,
) -> Flow {
    let n = work.rcpts.len();
    let flow = deliver(inner, conn, dest, key, settings, work).await;
    inner.lock_queues().finished(key, n);
    flow
}

/// What a connection does after a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Take the next work item.
    Continue,
    /// The connection is no longer usable: drop it.
    Lost,
    /// A reply pattern stopped the queue (`defer-queue`, `bounce-queue`): QUIT and leave.
    Stop,
}

/// The queue-level part of the reply patterns that matched during one transaction.
#[derive(Default)]
struct QueueAction {
    /// `defer-queue`: the reply that asked for it.
    defer: Option<String>,
    /// `bounce-queue`: the fate every waiting recipient gets.
    bounce: Option<Fate>,
}

impl QueueAction {
    fn merge(&mut self, a: &ReplyActions, reply: &Reply) {
        if a.defer_queue && self.defer.is_none() {
            self.defer = Some(reply_line(reply));
        }
        if a.bounce_queue && self.bounce.is_none() {
            self.bounce = Some(forced_bounce(reply));
        }
    }

    fn stops(&self) -> bool {
        self.defer.is_some() || self.bounce.is_some()
    }

    /// Bounces the queue or puts it into retry mode, as the patterns asked.
    async fn apply(
        self,
        inner: &Arc<Inner>,
        key: &QueueKey,
        settings: &EffectiveDomainSettings,
    ) -> Flow {
        if let Some(Fate::Bounced {
            status,
            diag,
            category,
            class,
        }) = self.bounce
        {
            info!("{key}: bounce-queue pattern matched ({diag}); bouncing the queue");
            bounce_queue(inner, key, settings, &diag, &status, &category, class).await;
            return Flow::Stop;
        }
        if let Some(reply) = self.defer {
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
}

/// The queue's `<smtp-pattern-list>`, when `smtp-pattern-list` names one.
fn reply_patterns<'c>(
    config: &'c Config,
    settings: &EffectiveDomainSettings,
) -> Option<&'c petrel_config::SmtpPatternList> {
    settings
        .smtp_pattern_list
        .as_deref()
        .and_then(|n| config.smtp_pattern_list(n))
}

/// A reply as one line, `421 4.7.0 text`, which `reply` patterns are matched against.
fn reply_line(r: &Reply) -> String {
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

/// The retry schedule of `key` in its current mode: `backoff-retry-after` in backoff.
fn retry_schedule<'s>(
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

/// Marks which tracking a message's events can be followed by (SparkPost's Health Score
/// needs `open_tracking` to count opens).
fn set_tracking_flags(e: &mut petrel_events::Event, flags: Option<tracking::Flags>) {
    let f = flags.unwrap_or(tracking::Flags {
        open: false,
        click: false,
        initial_open: false,
    });
    e.open_tracking = Some(f.open);
    e.click_tracking = Some(f.click);
    e.initial_pixel = Some(f.initial_open);
}

fn sign(inner: &Inner, vmta: &str, body: Vec<u8>, now: SystemTime) -> Vec<u8> {
    let config = inner.config();
    let Some(domain) = petrel_dkim::signing_identity_domain(&body) else {
        return body;
    };
    let Some(key) = inner.dkim_key_for(&config, vmta, &domain) else {
        return body;
    };
    match petrel_dkim::sign(&body, &key, &SignOptions::default(), now) {
        Ok(header) => {
            let mut out = Vec::with_capacity(header.len() + 2 + body.len());
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body);
            out
        }
        Err(e) => {
            warn!("dkim signing failed, sending unsigned: {e}");
            body
        }
    }
}

/// Applies the fates of one attempt: spool, queues, accounting, DSN. `started` is when the
/// transaction began, for `backoff-to-normal-after-delivery`.
#[allow(clippy::too_many_arguments)]
async fn settle(
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
    let mut deferred = Vec::new();
    let mut failed: Vec<FailedRecipient> = Vec::new();
    let mut delivered = 0u64;
    for (i, fate) in fates {
        match fate {
            Fate::Delivered(reply) => {
                let diag = format!("smtp;{}", reply.to_string().replace("\r\n", " "));
                inner.record(AcctRecordInput {
                    kind: RecordType::Delivery,
                    id: work.id,
                    env,
                    rcpt_index: i,
                    key,
                    dest,
                    conn,
                    status: "2.0.0",
                    diag: &diag,
                    category: "",
                    class: 0,
                    attempts: work.attempts,
                    action: DsnAction::Relayed,
                    now,
                });
                delivered += 1;
                inner.counters.delivered.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = inner.spool.recipient_done(work.id, i).await {
                    warn!("{key}: could not mark {} done: {e}", work.id);
                }
            }
            Fate::Deferred {
                status,
                diag,
                class,
            } => {
                inner.record(AcctRecordInput {
                    kind: RecordType::Transient,
                    id: work.id,
                    env,
                    rcpt_index: i,
                    key,
                    dest,
                    conn,
                    status: &status,
                    diag: &diag,
                    category: "other",
                    class,
                    attempts: work.attempts,
                    action: DsnAction::Delayed,
                    now,
                });
                inner.counters.deferred.fetch_add(1, Ordering::Relaxed);
                deferred.push(i);
                inner.lock_queues().note_error(key, diag);
            }
            Fate::Bounced {
                status,
                diag,
                category,
                class,
            } => {
                inner.record(AcctRecordInput {
                    kind: RecordType::Bounce,
                    id: work.id,
                    env,
                    rcpt_index: i,
                    key,
                    dest,
                    conn,
                    status: &status,
                    diag: &diag,
                    category: &category,
                    class,
                    attempts: work.attempts,
                    action: DsnAction::Failed,
                    now,
                });
                inner.counters.bounced.fetch_add(1, Ordering::Relaxed);
                let r = &env.recipients[i as usize];
                if HARD_CLASSES.contains(&class) && dest.is_some() {
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
        let schedule = retry_schedule(&q, key, settings);
        let step = (attempts as usize - 1).min(schedule.len().saturating_sub(1));
        let wait = schedule
            .get(step)
            .copied()
            .unwrap_or(Duration::from_secs(600));
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
async fn send_dsn(
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
