//! `smtp-max-auth-failure-rate`: remembers failed AUTH attempts per client IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failure windows per client address. PowerMTA counts the window from the first failure;
/// once the count is reached, AUTH is refused until that window ends.
#[derive(Debug, Default)]
pub struct AuthFailures {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthFailures {
    /// If `ip` is throttled under `max` failures per `window`, how long until it may retry.
    pub fn blocked_for(
        &self,
        ip: IpAddr,
        max: u32,
        window: Duration,
        now: Instant,
    ) -> Option<Duration> {
        let map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = *map.get(&ip)?;
        let end = start + window;
        (count >= max && now < end).then(|| end - now)
    }

    /// Records one failure for `ip`.
    pub fn record(&self, ip: IpAddr, window: Duration, now: Instant) {
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| now < *start + window);
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now >= entry.0 + window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_from_first_failure() {
        let f = AuthFailures::default();
        let ip: IpAddr = "127.0.0.5".parse().unwrap();
        let t0 = Instant::now();
        let w = Duration::from_secs(60);
        assert!(f.blocked_for(ip, 1, w, t0).is_none());
        f.record(ip, w, t0);
        let left = f
            .blocked_for(ip, 1, w, t0 + Duration::from_secs(10))
            .unwrap();
        assert_eq!(left, Duration::from_secs(50));
        assert!(f
            .blocked_for(ip, 1, w, t0 + Duration::from_secs(61))
            .is_none());
        assert!(f.blocked_for(ip, 2, w, t0).is_none());
    }
}
