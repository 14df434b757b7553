//! Queue state, pure: which recipients wait for which destination, what is paused, and when
//! a queue in retry mode may try again. No I/O here; the engine drives it with a clock.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::time::{Duration, SystemTime};

use petrel_spool::MessageId;

/// A queue as PowerMTA names it: recipient domain and virtual MTA (`gmail.com/mta1`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueKey {
    /// Recipient domain, lower-case.
    pub domain: String,
    /// Virtual MTA (a pool member, or `{default}`).
    pub vmta: String,
}

impl fmt::Display for QueueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.vmta)
    }
}

/// Recipients of one message that go to one queue: one SMTP transaction's worth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Work {
    /// The spooled message.
    pub id: MessageId,
    /// Indexes into the envelope's recipient list.
    pub rcpts: Vec<u32>,
    /// The message's job, for job pause.
    pub job: Option<String>,
    /// How many delivery attempts these recipients had.
    pub attempts: u32,
}

/// One queue's state.
#[derive(Debug, Default)]
pub struct Queue {
    ready: VecDeque<Work>,
    deferred: Vec<(SystemTime, Work)>,
    /// `pause queue` is in force.
    pub paused: bool,
    /// Connections open for this queue now.
    pub active: u32,
    /// Recipients taken by a connection and not yet settled: still in the queue for
    /// `show queues`, as in PowerMTA, until delivered or bounced.
    in_flight: Vec<(MessageId, u64)>,
    retry_until: Option<SystemTime>,
    retry_step: usize,
    /// In backoff mode since then (`None`: normal mode).
    backoff_since: Option<SystemTime>,
    /// `defer-queue`: no connection takes work before this time, even one already open.
    hold_until: Option<SystemTime>,
    /// When the last connection was opened (`smtp-out-rampup-interval`).
    last_open: Option<SystemTime>,
    /// Opening times within the current `max-connect-rate` window, oldest first.
    recent_opens: VecDeque<SystemTime>,
    /// The last error seen, for `show queues`.
    pub last_error: Option<String>,
    /// Recipients delivered, bounced and deferred since start.
    pub delivered: u64,
    /// Recipients bounced since start.
    pub bounced: u64,
    /// Temporary failures since start.
    pub deferrals: u64,
}

/// What `show queues` needs about one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueView {
    /// The queue.
    pub key: QueueKey,
    /// Recipients waiting (ready, deferred, being sent and parked by a paused job).
    pub recipients: u64,
    /// Messages those recipients belong to.
    pub messages: u64,
    /// The messages' size in bytes.
    pub bytes: u64,
    /// Connections open.
    pub connections: u32,
    /// Paused by an operator.
    pub paused: bool,
    /// In retry mode until this time.
    pub retry_until: Option<SystemTime>,
    /// In backoff mode since this time (`None`: normal mode).
    pub backoff_since: Option<SystemTime>,
    /// Last error text.
    pub last_error: Option<String>,
}

/// `t + d`, or a century later when a configured interval does not fit the calendar (a
/// typo such as `retry-after 99999999999d` must not panic the dispatcher).
pub fn later_by(t: SystemTime, d: Duration) -> SystemTime {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(t)
}

/// A queue's limits on opening connections, in its current mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectLimits {
    /// `max-smtp-out` (or `backoff-max-smtp-out`): connections open at once.
    pub max: u32,
    /// `max-connect-rate` (or its backoff form): at most `count` openings per `window`.
    pub rate: Option<(u32, Duration)>,
    /// `smtp-out-rampup-interval`: at least this long between two openings.
    pub rampup: Duration,
}

/// What an open connection does next ([`Queues::next_for_connection`]).
#[derive(Debug)]
pub enum Next {
    /// Send this; `backoff` says which limits apply.
    Work {
        /// The recipients to send.
        work: Work,
        /// The queue is in backoff mode.
        backoff: bool,
    },
    /// Nothing ready: wait for work or the idle timeout.
    Empty,
    /// The queue is held by `defer-queue`: close.
    Held,
    /// Over the backoff connection limit: close; the connection slot is already released.
    Released,
}

/// All queues plus job pauses. The engine keeps one behind a mutex and holds it only to move
/// work in and out.
#[derive(Debug, Default)]
pub struct Queues {
    queues: HashMap<QueueKey, Queue>,
    paused_jobs: HashSet<String>,
    parked: HashMap<String, Vec<(QueueKey, Work)>>,
}

impl Queues {
    /// Adds work that may be attempted now.
    pub fn push(&mut self, key: QueueKey, work: Work) {
        if let Some(job) = &work.job {
            if self.paused_jobs.contains(job) {
                self.parked
                    .entry(job.clone())
                    .or_default()
                    .push((key, work));
                return;
            }
        }
        self.queues.entry(key).or_default().ready.push_back(work);
    }

    /// Adds work that must wait until `due` (a recipient's temporary failure).
    pub fn defer(&mut self, key: QueueKey, work: Work, due: SystemTime) {
        let q = self.queues.entry(key).or_default();
        q.deferrals += work.rcpts.len() as u64;
        q.deferred.push((due, work));
    }

    /// Moves deferred work whose time has come back to the ready list. Returns the keys of
    /// queues that received work.
    pub fn promote_due(&mut self, now: SystemTime) -> Vec<QueueKey> {
        let mut touched = Vec::new();
        let mut moved = Vec::new();
        for (key, q) in &mut self.queues {
            let mut i = 0;
            while i < q.deferred.len() {
                if q.deferred[i].0 <= now {
                    let (_, w) = q.deferred.swap_remove(i);
                    moved.push((key.clone(), w));
                } else {
                    i += 1;
                }
            }
        }
        for (key, w) in moved {
            if !touched.contains(&key) {
                touched.push(key.clone());
            }
            self.push(key, w);
        }
        touched
    }

    /// The earliest time something deferred or in retry becomes ready, for the dispatcher's
    /// sleep.
    pub fn next_due(&self, now: SystemTime) -> Option<SystemTime> {
        self.queues
            .values()
            .flat_map(|q| q.deferred.iter().map(|(t, _)| *t).chain(q.retry_until))
            // A retry time already past stays recorded until a delivery; it must not hide
            // the next time that is still to come.
            .filter(|t| *t > now)
            .min()
    }

    /// Decides which queues open how many connections now, and counts them as open
    /// (`active`, and the opening times the rate limits look at). `limits_for(key,
    /// in_backoff)` gives the queue's limits in its current mode. Also returns the earliest
    /// time a queue held back by `smtp-out-rampup-interval` or `max-connect-rate` may open
    /// one, so the dispatcher wakes then.
    pub fn start_connections(
        &mut self,
        now: SystemTime,
        limits_for: impl Fn(&QueueKey, bool) -> ConnectLimits,
    ) -> (Vec<(QueueKey, u32)>, Option<SystemTime>) {
        let mut out = Vec::new();
        let mut next: Option<SystemTime> = None;
        let mut later = |t: SystemTime| next = Some(next.map_or(t, |n| n.min(t)));
        for (key, q) in &mut self.queues {
            if q.paused || q.ready.is_empty() || q.retry_until.is_some_and(|t| t > now) {
                continue;
            }
            let lim = limits_for(key, q.backoff_since.is_some());
            // One connection per batch of work is enough; do not open more than there is work.
            let mut wanted = (q.ready.len() as u32).min(lim.max).saturating_sub(q.active);
            if wanted == 0 {
                continue;
            }
            if !lim.rampup.is_zero() {
                // An opening "in the future" (the clock went back) does not count; an
                // interval too large for the calendar means never again.
                let since = q.last_open.filter(|t| *t <= now);
                if let Some(last) = since {
                    match last.checked_add(lim.rampup) {
                        Some(ok_at) if ok_at > now => {
                            later(ok_at);
                            continue;
                        }
                        Some(_) => {}
                        None => continue,
                    }
                }
                wanted = 1;
            }
            match lim.rate {
                Some((count, window)) => {
                    q.recent_opens
                        .retain(|t| *t <= now && now.duration_since(*t).is_ok_and(|d| d < window));
                    let left = count.saturating_sub(q.recent_opens.len() as u32);
                    if left == 0 {
                        if let Some(ok_at) =
                            q.recent_opens.front().and_then(|t| t.checked_add(window))
                        {
                            later(ok_at);
                        }
                        continue;
                    }
                    wanted = wanted.min(left);
                    q.recent_opens
                        .extend(std::iter::repeat_n(now, wanted as usize));
                }
                None => q.recent_opens.clear(),
            }
            q.active += wanted;
            q.last_open = Some(now);
            out.push((key.clone(), wanted));
        }
        out.sort();
        (out, next)
    }

    /// What an open connection of `key` does next: close because the queue is held
    /// (`defer-queue`) or over its backoff connection limit (then its slot is released here,
    /// under the same lock, so the other connections see the new count at once), or take
    /// the next work item.
    pub fn next_for_connection(
        &mut self,
        key: &QueueKey,
        now: SystemTime,
        backoff_max_connections: u32,
    ) -> Next {
        let Some(q) = self.queues.get_mut(key) else {
            return Next::Empty;
        };
        if q.hold_until.is_some_and(|t| t > now) {
            return Next::Held;
        }
        let backoff = q.backoff_since.is_some();
        if backoff && q.active > backoff_max_connections {
            q.active -= 1;
            return Next::Released;
        }
        match self.take(key) {
            Some(work) => Next::Work { work, backoff },
            None => Next::Empty,
        }
    }

    /// `defer-queue`: open connections stop taking work until `until` (new ones wait for
    /// the retry time anyway).
    pub fn hold(&mut self, key: &QueueKey, until: SystemTime) {
        self.queues.entry(key.clone()).or_default().hold_until = Some(until);
    }

    /// Takes the next work for a connection of `key`, unless the queue is paused.
    pub fn take(&mut self, key: &QueueKey) -> Option<Work> {
        let q = self.queues.get_mut(key)?;
        if q.paused {
            return None;
        }
        let w = q.ready.pop_front()?;
        q.in_flight.push((w.id, w.rcpts.len() as u64));
        Some(w)
    }

    /// A taken work item was settled (delivered, bounced, or deferred again).
    pub fn finished(&mut self, key: &QueueKey, id: MessageId) {
        if let Some(q) = self.queues.get_mut(key) {
            if let Some(i) = q.in_flight.iter().position(|(m, _)| *m == id) {
                q.in_flight.swap_remove(i);
            }
        }
    }

    /// Puts work back at the front (connection lost before the transaction started).
    pub fn unshift(&mut self, key: &QueueKey, work: Work) {
        self.queues
            .entry(key.clone())
            .or_default()
            .ready
            .push_front(work);
    }

    /// A connection for `key` opened or closed.
    pub fn connection_delta(&mut self, key: &QueueKey, opened: bool) {
        let q = self.queues.entry(key.clone()).or_default();
        if opened {
            q.active += 1;
        } else {
            q.active = q.active.saturating_sub(1);
        }
    }

    /// The queue could not reach any host: enter retry mode for the next step of the
    /// `retry-after` list (the last entry repeats).
    pub fn enter_retry(
        &mut self,
        key: &QueueKey,
        now: SystemTime,
        schedule: &[Duration],
        error: String,
    ) -> SystemTime {
        let q = self.queues.entry(key.clone()).or_default();
        let step = q.retry_step.min(schedule.len().saturating_sub(1));
        let wait = schedule
            .get(step)
            .copied()
            .unwrap_or(Duration::from_secs(600));
        let until = later_by(now, wait);
        q.retry_until = Some(until);
        q.retry_step += 1;
        q.last_error = Some(error);
        until
    }

    /// The retry delay for the queue's current step (used for recipient-level deferrals).
    pub fn retry_delay(&self, key: &QueueKey, schedule: &[Duration]) -> Duration {
        let step = self.queues.get(key).map_or(0, |q| q.retry_step);
        let step = step.min(schedule.len().saturating_sub(1));
        schedule
            .get(step)
            .copied()
            .unwrap_or(Duration::from_secs(600))
    }

    /// Whether `key` is in backoff mode.
    pub fn in_backoff(&self, key: &QueueKey) -> bool {
        self.queues
            .get(key)
            .is_some_and(|q| q.backoff_since.is_some())
    }

    /// Switches `key` to backoff (`true`) or normal mode. Returns whether the mode changed.
    /// Entering backoff while already in it keeps the original start time, so
    /// `backoff-to-normal-after` counts from the first entry.
    pub fn set_backoff(&mut self, key: &QueueKey, backoff: bool, now: SystemTime) -> bool {
        let q = self.queues.entry(key.clone()).or_default();
        match (backoff, q.backoff_since.is_some()) {
            (true, false) => {
                q.backoff_since = Some(now);
                true
            }
            (false, true) => {
                q.backoff_since = None;
                true
            }
            _ => false,
        }
    }

    /// `backoff-to-normal-after-delivery`: a delivery by a transaction that started after the
    /// queue entered backoff ends it. Returns whether it did. (A transaction already under
    /// way when a throttling reply arrived proves nothing about the receiver's mood now.)
    pub fn end_backoff_after_delivery(&mut self, key: &QueueKey, started: SystemTime) -> bool {
        match self.queues.get_mut(key) {
            Some(q) if q.backoff_since.is_some_and(|since| since < started) => {
                q.backoff_since = None;
                true
            }
            _ => false,
        }
    }

    /// `set queue --mode`: switches every queue matching `matches`; returns how many
    /// matched.
    pub fn set_backoff_matching(
        &mut self,
        matches: impl Fn(&QueueKey) -> bool,
        backoff: bool,
        now: SystemTime,
    ) -> usize {
        let keys: Vec<QueueKey> = self.queues.keys().filter(|k| matches(k)).cloned().collect();
        for k in &keys {
            self.set_backoff(k, backoff, now);
        }
        keys.len()
    }

    /// Queues whose backoff has lasted `after_for(key)` (their `backoff-to-normal-after`)
    /// return to normal mode; returns them.
    pub fn end_expired_backoffs(
        &mut self,
        now: SystemTime,
        after_for: impl Fn(&QueueKey) -> Option<Duration>,
    ) -> Vec<QueueKey> {
        let mut ended = Vec::new();
        for (key, q) in &mut self.queues {
            let Some(since) = q.backoff_since else {
                continue;
            };
            if after_for(key)
                .is_some_and(|after| since.checked_add(after).is_some_and(|t| t <= now))
            {
                q.backoff_since = None;
                ended.push(key.clone());
            }
        }
        ended
    }

    /// A delivery succeeded: the retry list starts over (PowerMTA resets it on delivery).
    pub fn delivered(&mut self, key: &QueueKey, recipients: u64) {
        let q = self.queues.entry(key.clone()).or_default();
        q.retry_step = 0;
        q.retry_until = None;
        q.delivered += recipients;
    }

    /// Recipients bounced.
    pub fn bounced(&mut self, key: &QueueKey, recipients: u64, error: String) {
        let q = self.queues.entry(key.clone()).or_default();
        q.bounced += recipients;
        q.last_error = Some(error);
    }

    /// Records an error text without changing the mode.
    pub fn note_error(&mut self, key: &QueueKey, error: String) {
        self.queues.entry(key.clone()).or_default().last_error = Some(error);
    }

    /// `schedule DOMAIN[/VMTA]`: leave retry mode and make deferred work ready now.
    pub fn schedule(&mut self, matches: impl Fn(&QueueKey) -> bool) -> usize {
        let mut n = 0;
        for (key, q) in &mut self.queues {
            if matches(key) {
                q.retry_until = None;
                q.hold_until = None;
                for (_, w) in q.deferred.drain(..) {
                    q.ready.push_back(w);
                }
                n += 1;
            }
        }
        n
    }

    /// `pause queue` / `resume queue`; returns how many queues matched.
    pub fn set_paused(&mut self, matches: impl Fn(&QueueKey) -> bool, paused: bool) -> usize {
        let mut n = 0;
        for (key, q) in &mut self.queues {
            if matches(key) {
                q.paused = paused;
                n += 1;
            }
        }
        n
    }

    /// Makes sure a queue exists (so `pause queue x/y` works before its first message).
    pub fn ensure(&mut self, key: QueueKey) -> &mut Queue {
        self.queues.entry(key).or_default()
    }

    /// `pause job ID`: its queued work is parked until resumed; in-flight transactions finish.
    pub fn pause_job(&mut self, job: &str) {
        self.paused_jobs.insert(job.to_string());
        let mut parked = Vec::new();
        for (key, q) in &mut self.queues {
            let (keep, park): (VecDeque<Work>, VecDeque<Work>) = q
                .ready
                .drain(..)
                .partition(|w| w.job.as_deref() != Some(job));
            q.ready = keep;
            parked.extend(park.into_iter().map(|w| (key.clone(), w)));
            let mut i = 0;
            while i < q.deferred.len() {
                if q.deferred[i].1.job.as_deref() == Some(job) {
                    let (_, w) = q.deferred.swap_remove(i);
                    parked.push((key.clone(), w));
                } else {
                    i += 1;
                }
            }
        }
        self.parked
            .entry(job.to_string())
            .or_default()
            .extend(parked);
    }

    /// `resume job ID`: parked work becomes ready again.
    pub fn resume_job(&mut self, job: &str) -> usize {
        self.paused_jobs.remove(job);
        let parked = self.parked.remove(job).unwrap_or_default();
        let n = parked.len();
        for (key, w) in parked {
            self.push(key, w);
        }
        n
    }

    /// Whether a job is paused.
    pub fn job_paused(&self, job: &str) -> bool {
        self.paused_jobs.contains(job)
    }

    /// Removes and returns all waiting work matching `pred` (for `delete`).
    pub fn remove_where(
        &mut self,
        pred: impl Fn(&QueueKey, &Work) -> bool,
    ) -> Vec<(QueueKey, Work)> {
        let mut out = Vec::new();
        for (key, q) in &mut self.queues {
            let (keep, gone): (VecDeque<Work>, VecDeque<Work>) =
                q.ready.drain(..).partition(|w| !pred(key, w));
            q.ready = keep;
            out.extend(gone.into_iter().map(|w| (key.clone(), w)));
            let mut i = 0;
            while i < q.deferred.len() {
                if pred(key, &q.deferred[i].1) {
                    let (_, w) = q.deferred.swap_remove(i);
                    out.push((key.clone(), w));
                } else {
                    i += 1;
                }
            }
        }
        for list in self.parked.values_mut() {
            let (gone, keep): (Vec<_>, Vec<_>) = list.drain(..).partition(|(k, w)| pred(k, w));
            *list = keep;
            out.extend(gone);
        }
        out
    }

    /// A view of every queue, for the management API. Its messages are counted here, by
    /// the queue they wait in (a pool member's, a `queue-to` target's), and `size` gives
    /// each one's bytes.
    pub fn views(&self, size: impl Fn(MessageId) -> u64) -> Vec<QueueView> {
        let mut parked: HashMap<&QueueKey, Vec<(MessageId, u64)>> = HashMap::new();
        for list in self.parked.values() {
            for (k, w) in list {
                parked
                    .entry(k)
                    .or_default()
                    .push((w.id, w.rcpts.len() as u64));
            }
        }
        let mut out: Vec<QueueView> = self
            .queues
            .iter()
            .map(|(key, q)| {
                let waiting = q
                    .ready
                    .iter()
                    .chain(q.deferred.iter().map(|(_, w)| w))
                    .map(|w| (w.id, w.rcpts.len() as u64))
                    .chain(q.in_flight.iter().copied())
                    .chain(parked.get(key).into_iter().flatten().copied());
                let mut recipients = 0;
                let mut messages = HashSet::new();
                for (id, n) in waiting {
                    recipients += n;
                    messages.insert(id);
                }
                (key, q, recipients, messages)
            })
            .map(|(key, q, recipients, messages)| QueueView {
                key: key.clone(),
                recipients,
                messages: messages.len() as u64,
                bytes: messages.iter().map(|id| size(*id)).sum(),
                connections: q.active,
                paused: q.paused,
                retry_until: q.retry_until,
                backoff_since: q.backoff_since,
                last_error: q.last_error.clone(),
            })
            .collect();
        out.sort_by(|a, b| b.recipients.cmp(&a.recipients).then(a.key.cmp(&b.key)));
        out
    }

    /// Jobs with waiting work: job id → recipients.
    pub fn jobs(&self) -> HashMap<String, (u64, bool)> {
        let mut out: HashMap<String, (u64, bool)> = HashMap::new();
        for q in self.queues.values() {
            for w in q.ready.iter().chain(q.deferred.iter().map(|(_, w)| w)) {
                if let Some(j) = &w.job {
                    out.entry(j.clone()).or_default().0 += w.rcpts.len() as u64;
                }
            }
        }
        for (job, list) in &self.parked {
            let e = out.entry(job.clone()).or_default();
            e.0 += list.iter().map(|(_, w)| w.rcpts.len() as u64).sum::<u64>();
        }
        for job in &self.paused_jobs {
            out.entry(job.clone()).or_default().1 = true;
        }
        out
    }
}

/// PowerMTA's queue patterns for commands: `domain`, `domain/vmta`, with `*` wildcards
/// (`*/*`, `yahoo.com/*`, `*/vmta1`). A bare domain means every vmta.
pub fn queue_matcher(pattern: &str) -> impl Fn(&QueueKey) -> bool {
    let (d, v) = match pattern.split_once('/') {
        Some((d, v)) => (d.to_ascii_lowercase(), Some(v.to_string())),
        None => (pattern.to_ascii_lowercase(), None),
    };
    move |k: &QueueKey| glob(&d, &k.domain) && v.as_ref().is_none_or(|v| glob(v, &k.vmta))
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.len() >= head.len() + tail.len() && text.starts_with(head) && {
                let rest = &text[head.len()..];
                (0..=rest.len())
                    .filter(|&i| rest.is_char_boundary(i))
                    .any(|i| glob(tail, &rest[i..]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(d: &str) -> QueueKey {
        QueueKey {
            domain: d.into(),
            vmta: "v".into(),
        }
    }
    fn limits(max: u32) -> ConnectLimits {
        ConnectLimits {
            max,
            rate: None,
            rampup: Duration::ZERO,
        }
    }

    #[test]
    fn views_count_the_messages_waiting_in_each_queue() {
        let mut q = Queues::default();
        let (a, b) = (key("a"), key("b"));
        // Message 1 has two recipients in `a` and one in `b` (a queue-to target, say).
        q.push(
            a.clone(),
            Work {
                rcpts: vec![0, 1],
                ..work(1, None)
            },
        );
        q.push(b.clone(), work(1, None));
        q.push(a.clone(), work(2, Some("j")));
        q.pause_job("j");
        let size = |id: MessageId| id.0 * 1000;
        let view = |q: &Queues, k: &QueueKey| {
            let v = q.views(size).into_iter().find(|v| &v.key == k).unwrap();
            (v.recipients, v.messages, v.bytes)
        };
        assert_eq!(view(&q, &a), (3, 2, 3000), "a parked job still counts");
        assert_eq!(view(&q, &b), (1, 1, 1000));
        // Taken by a connection: still in the queue until settled.
        let w = q.take(&b).unwrap();
        assert_eq!(view(&q, &b), (1, 1, 1000));
        q.finished(&b, w.id);
        assert_eq!(view(&q, &b), (0, 0, 0));
    }

    #[test]
    fn connect_rate_and_rampup_spread_openings() {
        let mut q = Queues::default();
        let t0 = SystemTime::UNIX_EPOCH;
        let a = key("a");
        for i in 0..20 {
            q.push(a.clone(), work(i, None));
        }
        let sec = Duration::from_secs(1);
        // max-connect-rate 3/10s with max-smtp-out 10: three now, none until the window moves.
        let rated = |_: &QueueKey, _: bool| ConnectLimits {
            max: 10,
            rate: Some((3, 10 * sec)),
            rampup: Duration::ZERO,
        };
        assert_eq!(q.start_connections(t0, rated), (vec![(a.clone(), 3)], None));
        for _ in 0..3 {
            q.connection_delta(&a, false);
        }
        assert_eq!(
            q.start_connections(t0 + 5 * sec, rated),
            (vec![], Some(t0 + 10 * sec)),
            "the window is full until 10 s"
        );
        assert_eq!(
            q.start_connections(t0 + 10 * sec, rated).0,
            vec![(a.clone(), 3)]
        );
        for _ in 0..3 {
            q.connection_delta(&a, false);
        }
        // smtp-out-rampup-interval 2s: one at a time, 2 s apart.
        let ramp = |_: &QueueKey, _: bool| ConnectLimits {
            max: 10,
            rate: None,
            rampup: 2 * sec,
        };
        let t = t0 + 20 * sec;
        assert_eq!(q.start_connections(t, ramp).0, vec![(a.clone(), 1)]);
        assert_eq!(
            q.start_connections(t + sec, ramp),
            (vec![], Some(t + 2 * sec))
        );
        assert_eq!(
            q.start_connections(t + 2 * sec, ramp).0,
            vec![(a.clone(), 1)]
        );
    }

    fn work(id: u64, job: Option<&str>) -> Work {
        Work {
            id: MessageId(id),
            rcpts: vec![0],
            job: job.map(String::from),
            attempts: 0,
        }
    }

    #[test]
    fn retry_schedule_steps_and_resets() {
        let mut q = Queues::default();
        let t0 = SystemTime::UNIX_EPOCH;
        let sched = [Duration::from_secs(60), Duration::from_secs(600)];
        q.push(key("a"), work(1, None));
        q.enter_retry(&key("a"), t0, &sched, "down".into());
        assert!(q.start_connections(t0, |_, _| limits(5)).0.is_empty());
        assert_eq!(q.next_due(t0), Some(t0 + Duration::from_secs(60)));
        q.enter_retry(&key("a"), t0, &sched, "down".into());
        q.enter_retry(&key("a"), t0, &sched, "down".into());
        // The last entry repeats.
        assert_eq!(q.next_due(t0), Some(t0 + Duration::from_secs(600)));
        assert_eq!(
            q.next_due(t0 + Duration::from_secs(600)),
            None,
            "past times are not due"
        );
        q.delivered(&key("a"), 1);
        assert_eq!(
            q.start_connections(t0, |_, _| limits(5)).0,
            vec![(key("a"), 1)]
        );
    }

    #[test]
    fn backoff_mode_sets_the_limit_and_ends_on_time() {
        let mut q = Queues::default();
        let t0 = SystemTime::UNIX_EPOCH;
        for i in 0..10 {
            q.push(key("a"), work(i, None));
        }
        let limit = |_: &QueueKey, backoff: bool| limits(if backoff { 2 } else { 8 });
        assert_eq!(q.start_connections(t0, limit).0, vec![(key("a"), 8)]);
        for _ in 0..8 {
            q.connection_delta(&key("a"), false);
        }
        assert!(q.set_backoff(&key("a"), true, t0));
        assert!(
            !q.set_backoff(&key("a"), true, t0 + Duration::from_secs(5)),
            "already"
        );
        assert!(q.in_backoff(&key("a")));
        assert_eq!(q.start_connections(t0, limit).0, vec![(key("a"), 2)]);
        // backoff-to-normal-after counts from the first entry.
        let after = |_: &QueueKey| Some(Duration::from_secs(60));
        assert!(q
            .end_expired_backoffs(t0 + Duration::from_secs(59), after)
            .is_empty());
        assert_eq!(
            q.end_expired_backoffs(t0 + Duration::from_secs(60), after),
            vec![key("a")]
        );
        assert!(!q.in_backoff(&key("a")));
        // Without the directive backoff lasts until switched off.
        q.set_backoff(&key("a"), true, t0);
        assert!(q
            .end_expired_backoffs(t0 + Duration::from_secs(86_400), |_| None)
            .is_empty());
        assert_eq!(q.set_backoff_matching(|k| k.domain == "a", false, t0), 1);
        assert!(!q.in_backoff(&key("a")));
        assert_eq!(q.views(|_| 0)[0].backoff_since, None);
    }

    #[test]
    fn connections_close_when_held_or_over_the_backoff_limit() {
        let mut q = Queues::default();
        let t0 = SystemTime::UNIX_EPOCH;
        let a = key("a");
        for i in 0..4 {
            q.push(a.clone(), work(i, None));
        }
        for _ in 0..3 {
            q.connection_delta(&a, true);
        }
        assert!(matches!(
            q.next_for_connection(&a, t0, 1),
            Next::Work { backoff: false, .. }
        ));
        // Backoff with a limit of 1: two of the three connections give their slot back, one
        // at a time, and the third keeps working.
        q.set_backoff(&a, true, t0);
        assert!(matches!(q.next_for_connection(&a, t0, 1), Next::Released));
        assert!(matches!(q.next_for_connection(&a, t0, 1), Next::Released));
        assert!(matches!(
            q.next_for_connection(&a, t0, 1),
            Next::Work { backoff: true, .. }
        ));
        // defer-queue holds every open connection until the retry time.
        let until = q.enter_retry(&a, t0, &[Duration::from_secs(60)], "421".into());
        q.hold(&a, until);
        assert!(matches!(q.next_for_connection(&a, t0, 5), Next::Held));
        q.delivered(&a, 1);
        assert!(
            matches!(q.next_for_connection(&a, t0, 5), Next::Held),
            "a delivery by another connection does not lift the hold"
        );
        assert!(matches!(
            q.next_for_connection(&a, until, 5),
            Next::Work { .. }
        ));
        // backoff-to-normal-after-delivery counts only transactions started after backoff.
        let t1 = t0 + Duration::from_secs(10);
        q.set_backoff(&a, false, t1);
        q.set_backoff(&a, true, t1);
        assert!(!q.end_backoff_after_delivery(&a, t0));
        assert!(!q.end_backoff_after_delivery(&a, t1));
        assert!(q.end_backoff_after_delivery(&a, t1 + Duration::from_secs(1)));
        assert!(!q.in_backoff(&a));
    }

    #[test]
    fn job_pause_parks_and_resume_restores() {
        let mut q = Queues::default();
        q.push(key("a"), work(1, Some("j1")));
        q.push(key("a"), work(2, Some("j2")));
        q.pause_job("j1");
        q.push(key("a"), work(3, Some("j1")));
        assert_eq!(q.take(&key("a")).unwrap().id, MessageId(2));
        assert!(q.take(&key("a")).is_none());
        assert_eq!(q.jobs()["j1"], (2, true));
        assert_eq!(q.resume_job("j1"), 2);
        assert!(q.take(&key("a")).is_some());
        assert!(q.take(&key("a")).is_some());
    }

    #[test]
    fn deferred_work_comes_back_when_due() {
        let mut q = Queues::default();
        let t0 = SystemTime::UNIX_EPOCH;
        q.defer(key("a"), work(1, None), t0 + Duration::from_secs(10));
        assert!(q.take(&key("a")).is_none());
        assert!(q.promote_due(t0 + Duration::from_secs(5)).is_empty());
        assert_eq!(q.promote_due(t0 + Duration::from_secs(10)), vec![key("a")]);
        assert!(q.take(&key("a")).is_some());
    }

    #[test]
    fn patterns() {
        let k = QueueKey {
            domain: "mail.yahoo.com".into(),
            vmta: "vmta1".into(),
        };
        assert!(queue_matcher("*/*")(&k));
        assert!(queue_matcher("mail.yahoo.com")(&k));
        assert!(queue_matcher("*.yahoo.com/vmta1")(&k));
        assert!(queue_matcher("*/vmta*")(&k));
        assert!(!queue_matcher("yahoo.com/*")(&k));
        assert!(!queue_matcher("*/vmta2")(&k));
    }
}
