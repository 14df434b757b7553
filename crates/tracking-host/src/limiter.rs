//! The burst limit: one token hit more than [`BURST_LIMIT`] times within [`BURST_WINDOW_SECS`]
//! seconds is a loop or a scanner hammering the link, and further hits in that window are
//! refused (403, no event), as SparkPost does for excessive clicks.
//!
//! A fixed window per token: the first hit opens a window of 60 s, and hits are counted until
//! it ends. The map is split into [`SHARDS`] mutex-protected shards keyed by a hash of the
//! token, so concurrent requests rarely wait for each other, and each shard holds at most
//! [`SHARD_CAPACITY`] entries, so memory stays bounded however many distinct tokens arrive.
//!
//! Every function takes the time (`now_secs`) as a parameter, so tests need no clock.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

/// Hits of one token allowed per window; the next ones are refused.
pub const BURST_LIMIT: u32 = 20;
/// Length of a token's window in seconds, counted from its first hit.
pub const BURST_WINDOW_SECS: u64 = 60;
/// Independent shards; a power of two so the shard is a mask of the hash.
const SHARDS: usize = 16;
/// Entries per shard: 16 × 4096 tokens ≈ 1.5 MiB at most.
const SHARD_CAPACITY: usize = 4096;

/// What the limiter says about one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer it normally.
    Allow,
    /// Over the limit in the current window: answer 403 and record nothing.
    Limited,
}

/// One token's window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start_secs: u64,
    count: u32,
}

impl Window {
    fn is_live(&self, now_secs: u64) -> bool {
        // A clock that went backwards also ends the window rather than extending it.
        now_secs >= self.start_secs && now_secs - self.start_secs < BURST_WINDOW_SECS
    }
}

#[derive(Debug, Default)]
struct Shard {
    windows: HashMap<u64, Window>,
    /// The second of the last pruning pass, so a shard full of live, busy tokens is scanned
    /// at most once a second instead of on every new token.
    pruned_at: Option<u64>,
}

impl Shard {
    /// Makes room for one more entry if it can; returns whether there is room.
    fn make_room(&mut self, now_secs: u64) -> bool {
        if self.windows.len() < SHARD_CAPACITY {
            return true;
        }
        if self.pruned_at == Some(now_secs) {
            return false;
        }
        self.pruned_at = Some(now_secs);
        // Ended windows first, and tokens seen only once: losing those costs nothing.
        self.windows
            .retain(|_, w| w.is_live(now_secs) && w.count > 1);
        if self.windows.len() >= SHARD_CAPACITY {
            // Still full: keep only the tokens being refused, the ones the limit is for.
            self.windows
                .retain(|_, w| w.is_live(now_secs) && w.count >= BURST_LIMIT);
        }
        self.windows.len() < SHARD_CAPACITY
    }
}

/// Counts hits per token in sharded, bounded maps (see the module documentation).
#[derive(Debug)]
pub struct BurstLimiter {
    shards: [Mutex<Shard>; SHARDS],
    /// Keyed (SipHash with random keys) so nobody can aim many tokens at one shard.
    hasher: RandomState,
}

impl Default for BurstLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl BurstLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        BurstLimiter {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            hasher: RandomState::new(),
        }
    }

    /// Counts a hit of `token` (a GET) and says whether to answer it.
    ///
    /// When a shard is full of busy tokens even after pruning, a new token is let through
    /// without being counted: a missed limit is better than a refused reader.
    pub fn hit(&self, token: &str, now_secs: u64) -> Verdict {
        let (key, shard) = self.shard(token);
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = shard.windows.get_mut(&key) {
            if w.is_live(now_secs) {
                if w.count >= BURST_LIMIT {
                    return Verdict::Limited;
                }
                w.count += 1;
            } else {
                *w = Window {
                    start_secs: now_secs,
                    count: 1,
                };
            }
            return Verdict::Allow;
        }
        if shard.make_room(now_secs) {
            shard.windows.insert(
                key,
                Window {
                    start_secs: now_secs,
                    count: 1,
                },
            );
        }
        Verdict::Allow
    }

    /// The verdict a hit would get, without counting it (HEAD requests: link checkers send
    /// them, and they record nothing).
    pub fn peek(&self, token: &str, now_secs: u64) -> Verdict {
        let (key, shard) = self.shard(token);
        let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        match shard.windows.get(&key) {
            Some(w) if w.is_live(now_secs) && w.count >= BURST_LIMIT => Verdict::Limited,
            _ => Verdict::Allow,
        }
    }

    /// Entries held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).windows.len())
            .sum()
    }

    fn shard(&self, token: &str) -> (u64, &Mutex<Shard>) {
        let key = self.hasher.hash_one(token);
        (key, &self.shards[(key as usize) & (SHARDS - 1)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_hits_pass_then_refused_until_the_window_ends() {
        let l = BurstLimiter::new();
        let t0 = 1_000_000;
        for i in 0..BURST_LIMIT {
            assert_eq!(
                l.hit("tok", t0 + u64::from(i) % 3),
                Verdict::Allow,
                "hit {i}"
            );
        }
        assert_eq!(l.peek("tok", t0 + 5), Verdict::Limited);
        assert_eq!(l.hit("tok", t0 + 5), Verdict::Limited);
        assert_eq!(l.hit("tok", t0 + 59), Verdict::Limited);
        // Other tokens are unaffected.
        assert_eq!(l.hit("other", t0 + 59), Verdict::Allow);
        // The window opened at t0 ends at t0 + 60.
        assert_eq!(l.peek("tok", t0 + 60), Verdict::Allow);
        assert_eq!(l.hit("tok", t0 + 60), Verdict::Allow);
        for _ in 1..BURST_LIMIT {
            assert_eq!(l.hit("tok", t0 + 61), Verdict::Allow);
        }
        assert_eq!(l.hit("tok", t0 + 61), Verdict::Limited);
    }

    #[test]
    fn peek_does_not_count() {
        let l = BurstLimiter::new();
        for _ in 0..100 {
            assert_eq!(l.peek("tok", 10), Verdict::Allow);
        }
        assert_eq!(l.len(), 0);
        for _ in 0..BURST_LIMIT {
            assert_eq!(l.hit("tok", 10), Verdict::Allow);
        }
        assert_eq!(l.hit("tok", 10), Verdict::Limited);
    }

    #[test]
    fn clock_going_backwards_starts_a_new_window() {
        let l = BurstLimiter::new();
        for _ in 0..=BURST_LIMIT {
            l.hit("tok", 500);
        }
        assert_eq!(l.hit("tok", 500), Verdict::Limited);
        assert_eq!(l.hit("tok", 400), Verdict::Allow);
    }

    #[test]
    fn memory_stays_bounded_and_refused_tokens_survive_pruning() {
        let l = BurstLimiter::new();
        let now = 7_000;
        for _ in 0..BURST_LIMIT {
            l.hit("hammered", now);
        }
        // Far more distinct tokens than the limiter holds, some seen twice.
        for i in 0..(SHARDS * SHARD_CAPACITY * 3) {
            let t = format!("t{i}");
            l.hit(&t, now);
            if i % 2 == 0 {
                l.hit(&t, now);
            }
            assert!(l.len() <= SHARDS * SHARD_CAPACITY);
        }
        assert_eq!(l.hit("hammered", now), Verdict::Limited);
        // A minute later every old window is gone at the next pruning pass.
        let later = now + BURST_WINDOW_SECS;
        for i in 0..(SHARDS * SHARD_CAPACITY * 2) {
            l.hit(&format!("u{i}"), later);
        }
        assert_eq!(l.hit("hammered", later), Verdict::Allow);
        assert!(l.len() <= SHARDS * SHARD_CAPACITY);
    }
}
