//! What the sink did, counted per behaviour, in total, per campaign (`X-Job`) and per
//! source IP, with atomics only on the hot path: a connection looks up its IP's counters
//! once, and a message its campaign's only when the campaign differs from the previous
//! message's; after that every count is a relaxed `fetch_add`.
//!
//! [`Snapshot`] is the typed form of the JSON at `--stats /`, so tests compare petrel's
//! numbers with the sink's without parsing by hand.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Declares the counters once: the plain [`Counts`] (a snapshot, serialisable) and the
/// [`AtomicCounts`] the sessions add to, with the same field names and docs.
macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// One set of counts (totals, a campaign or a source IP) at one moment.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Counts {
            $( $(#[$doc])* pub $name: u64, )*
        }

        /// The live form of [`Counts`].
        #[derive(Debug, Default)]
        pub struct AtomicCounts {
            $( $(#[$doc])* pub $name: AtomicU64, )*
        }

        impl AtomicCounts {
            /// The values now (each read on its own; counts only grow).
            pub fn load(&self) -> Counts {
                Counts { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }

        impl Counts {
            /// `(name, value)` for every counter, in declaration order.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![ $( (stringify!($name), self.$name), )* ]
            }
        }
    };
}

counters! {
    /// SMTP connections accepted.
    connections,
    /// Messages accepted (a `250` to the final dot).
    messages,
    /// Recipients accepted with a message: what petrel records as deliveries.
    delivered,
    /// `550 5.1.1` user-unknown refusals at RCPT.
    hard,
    /// `550 5.7.1` blocklist refusals at RCPT.
    block,
    /// `452 4.2.2` mailbox-full refusals at RCPT (one per attempt).
    soft,
    /// `421 4.7.0` refusals at RCPT, each closing its connection (one per attempt).
    defer,
    /// Accepted recipients whose final reply was delayed.
    slow,
    /// Recipients of a transaction whose connection the sink closed mid-DATA.
    drop,
    /// `530 5.7.0` refusals of recipients in sessions without STARTTLS.
    tls_required,
    /// Out-of-band DSNs delivered to `--return-to`.
    oob,
    /// ARF complaints delivered to `--return-to`.
    fbl,
    /// Messages opened: their images fetched with at least one answer.
    open,
    /// Links followed (the tracker answered).
    click,
    /// Unsubscribe links followed.
    unsub,
    /// Reports or fetches that were due but not done: nothing to fetch, a URL off
    /// loopback, no `--return-to` / `--feedback-to`.
    skipped,
    /// Reports or fetches that were tried and failed (refused, no answer, HTTP error).
    failed,
}

/// Everything the sink counted, as served at `--stats /` and printed on SIGTERM.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// All counts.
    pub totals: Counts,
    /// Per `X-Job` value, for what happened to messages (RCPT-time refusals have no message
    /// yet, so they are only in the totals and per source IP).
    pub campaigns: BTreeMap<String, Counts>,
    /// Per client address.
    pub source_ips: BTreeMap<String, Counts>,
    /// Reports and fetches scheduled and not yet done.
    pub pending: u64,
    /// When the first message was accepted (Unix milliseconds).
    pub first_message_unix_ms: Option<u64>,
    /// When the latest message was accepted (Unix milliseconds): with the first, the rate
    /// a benchmark measured.
    pub last_message_unix_ms: Option<u64>,
}

/// Campaigns counted separately; the rest share [`OTHER_CAMPAIGNS`], so a sender that
/// puts a unique `X-Job` on every message cannot make the sink grow without bound.
pub const MAX_CAMPAIGNS: usize = 10_000;

/// Where campaigns beyond [`MAX_CAMPAIGNS`] are counted.
pub const OTHER_CAMPAIGNS: &str = "(other)";

/// The sink's counters, shared by every session and background task.
#[derive(Debug, Default)]
pub struct Stats {
    /// All counts.
    pub totals: AtomicCounts,
    campaigns: RwLock<HashMap<String, Arc<AtomicCounts>>>,
    source_ips: RwLock<HashMap<IpAddr, Arc<AtomicCounts>>>,
    pending: AtomicU64,
    first_ms: AtomicU64,
    last_ms: AtomicU64,
}

/// Where one thing is counted: the totals, the client's IP, and the message's campaign
/// when there is one.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    stats: &'a Stats,
    ip: &'a AtomicCounts,
    campaign: Option<&'a AtomicCounts>,
}

impl Scope<'_> {
    /// Adds `n` to one counter everywhere this scope counts.
    pub fn add(&self, n: u64, field: impl Fn(&AtomicCounts) -> &AtomicU64) {
        if n == 0 {
            return;
        }
        field(&self.stats.totals).fetch_add(n, Ordering::Relaxed);
        field(self.ip).fetch_add(n, Ordering::Relaxed);
        if let Some(c) = self.campaign {
            field(c).fetch_add(n, Ordering::Relaxed);
        }
    }
}

impl Stats {
    /// A scope for the counters of `ip` and, optionally, a campaign's.
    pub fn scope<'a>(
        &'a self,
        ip: &'a AtomicCounts,
        campaign: Option<&'a AtomicCounts>,
    ) -> Scope<'a> {
        Scope {
            stats: self,
            ip,
            campaign,
        }
    }

    /// The counters of a client address (created on first use).
    pub fn source_ip(&self, ip: IpAddr) -> Arc<AtomicCounts> {
        if let Some(c) = read(&self.source_ips).get(&ip) {
            return c.clone();
        }
        write(&self.source_ips).entry(ip).or_default().clone()
    }

    /// The counters of a campaign (created on first use, up to [`MAX_CAMPAIGNS`]).
    pub fn campaign(&self, name: &str) -> Arc<AtomicCounts> {
        if let Some(c) = read(&self.campaigns).get(name) {
            return c.clone();
        }
        let mut map = write(&self.campaigns);
        let key = if map.len() >= MAX_CAMPAIGNS && !map.contains_key(name) {
            OTHER_CAMPAIGNS
        } else {
            name
        };
        map.entry(key.to_string()).or_default().clone()
    }

    /// Notes an accepted message's time, for the first/last message stamps.
    pub fn message_at(&self, now: SystemTime) {
        let ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let _ = self
            .first_ms
            .compare_exchange(0, ms, Ordering::Relaxed, Ordering::Relaxed);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// One more scheduled report or fetch.
    pub fn pending_start(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// A scheduled report or fetch is done (whatever its outcome).
    pub fn pending_done(&self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }

    /// Everything, now.
    pub fn snapshot(&self) -> Snapshot {
        let stamp = |a: &AtomicU64| Some(a.load(Ordering::Relaxed)).filter(|&v| v > 0);
        Snapshot {
            totals: self.totals.load(),
            campaigns: read(&self.campaigns)
                .iter()
                .map(|(k, v)| (k.clone(), v.load()))
                .collect(),
            source_ips: read(&self.source_ips)
                .iter()
                .map(|(k, v)| (k.to_string(), v.load()))
                .collect(),
            pending: self.pending.load(Ordering::Relaxed),
            first_message_unix_ms: stamp(&self.first_ms),
            last_message_unix_ms: stamp(&self.last_ms),
        }
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Snapshot {
    /// The summary printed on SIGTERM: totals, then per campaign and per source IP, only
    /// the counters that are not zero.
    pub fn summary(&self) -> String {
        let line = |c: &Counts| {
            c.fields()
                .into_iter()
                .filter(|(_, v)| *v > 0)
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut out = format!("petrel sink: {}\n", line(&self.totals));
        if self.pending > 0 {
            out.push_str(&format!(
                "  {} reports or fetches were still pending and were not done\n",
                self.pending
            ));
        }
        for (name, c) in &self.campaigns {
            out.push_str(&format!("  campaign {name}: {}\n", line(c)));
        }
        for (ip, c) in &self.source_ips {
            out.push_str(&format!("  source {ip}: {}\n", line(c)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_go_to_totals_ip_and_campaign() {
        let stats = Stats::default();
        let ip = stats.source_ip("127.0.0.2".parse().unwrap());
        let spring = stats.campaign("spring");
        stats.scope(&ip, Some(&spring)).add(2, |c| &c.delivered);
        stats.scope(&ip, None).add(1, |c| &c.hard);
        let other = stats.source_ip("127.0.0.3".parse().unwrap());
        stats.scope(&other, Some(&spring)).add(1, |c| &c.delivered);
        let s = stats.snapshot();
        assert_eq!(s.totals.delivered, 3);
        assert_eq!(s.totals.hard, 1);
        assert_eq!(s.campaigns["spring"].delivered, 3);
        assert_eq!(s.campaigns["spring"].hard, 0);
        assert_eq!(s.source_ips["127.0.0.2"].delivered, 2);
        assert_eq!(s.source_ips["127.0.0.3"].delivered, 1);
        let json = serde_json::to_string(&s).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert!(
            s.summary().contains("delivered=3 hard=1"),
            "{}",
            s.summary()
        );
    }

    #[test]
    fn campaigns_are_capped() {
        let stats = Stats::default();
        for i in 0..MAX_CAMPAIGNS + 5 {
            let c = stats.campaign(&format!("c{i}"));
            c.messages.fetch_add(1, Ordering::Relaxed);
        }
        let s = stats.snapshot();
        assert_eq!(s.campaigns.len(), MAX_CAMPAIGNS + 1);
        assert_eq!(s.campaigns[OTHER_CAMPAIGNS].messages, 5);
    }
}
