//! Loopback ports for daemons a test starts itself (petrel, ClickHouse, smtp-sink).
//!
//! The usual trick — bind port 0, read the port, close the socket — hands out a port from
//! Linux's ephemeral range (32768–60999). That port is free only until the kernel gives it
//! to some outgoing connection as its source port (a browser, an uploader, another test),
//! and then the daemon fails to start with "Address already in use". CI saw exactly that.
//! [`free_port`] takes ports below the ephemeral range instead, where the kernel never
//! picks source ports; each test process walks its own stretch of it (seeded by its PID,
//! so binaries running side by side rarely meet), and every candidate is checked by
//! binding it.
#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// First port handed out.
const LOW: u32 = 20_000;
/// How many ports follow it (up to 31999, below the ephemeral range).
const SPAN: u32 = 12_000;

/// A loopback port nobody listens on right now, outside the ephemeral range.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(389) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
        for p in ports {
            assert!((20_000..32_000).contains(&p), "{p}");
            TcpListener::bind(("127.0.0.1", p)).expect("still free");
        }
    }
}
