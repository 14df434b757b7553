//! The memory inbound sessions may hold for mail being received (`max-smtp-in-memory`).
//!
//! A message is held in memory from its first DATA byte until the spool has it on disk
//! (the spool's record format needs it whole: see docs/operations.md, "Limits and
//! hardening"), and a recipient list until the end of its transaction. Without a common
//! bound a few clients sending large messages at once could take all the memory there is.
//! Each transaction takes what it needs from one budget, in grains, and gives it back when
//! it ends; when the budget is spent the session answers 4xx and the client tries later.
//!
//! Refusing at once whoever finds the budget spent is not enough on its own: several large
//! messages arriving side by side grow in step, and each can find the budget spent by the
//! others at the same moment, so all of them are refused and all retry together. So the
//! first transaction to find the budget spent may instead wait a while for the memory the
//! others give back as they are refused or finish. Only one transaction waits at a time
//! (a flag, not a queue: no lock on the way of every message), so a waiter never holds
//! memory another waiter waits for, and one message always gets through.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Memory is handed out in grains of this many bytes, so a growing message or a new
/// recipient takes the semaphore only now and then.
const GRAIN: u64 = 4 << 10;

/// The budget every session shares.
#[derive(Clone)]
pub(crate) struct MemoryBudget {
    grains: Arc<Semaphore>,
    total: u64,
    /// Set while a transaction waits for memory: only one may.
    waiting: Arc<AtomicBool>,
}

impl MemoryBudget {
    pub(crate) fn new(bytes: u64) -> MemoryBudget {
        let grains = (bytes / GRAIN).clamp(1, Semaphore::MAX_PERMITS as u64);
        MemoryBudget {
            grains: Arc::new(Semaphore::new(grains as usize)),
            total: grains * GRAIN,
            waiting: Arc::default(),
        }
    }

    /// The whole budget in bytes: a message larger than this can never be taken.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// An empty claim on the budget, for one transaction.
    pub(crate) fn charge(&self) -> Charge {
        Charge {
            grains: self.grains.clone(),
            held: 0,
            whole: self.total / GRAIN,
            waiting: self.waiting.clone(),
        }
    }
}

/// The waiter's claim on [`MemoryBudget`]'s flag, lowered when dropped (also when the
/// session is dropped while it waits).
struct Waiting<'a>(&'a AtomicBool);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What one transaction holds of the budget; given back when dropped.
pub(crate) struct Charge {
    grains: Arc<Semaphore>,
    /// Grains held.
    held: u64,
    /// Grains in the whole budget.
    whole: u64,
    waiting: Arc<AtomicBool>,
}

impl Charge {
    /// Makes sure at least `bytes` are held. False, and nothing more taken, when the budget
    /// has not that much left.
    pub(crate) fn hold(&mut self, bytes: u64) -> bool {
        let want = bytes.div_ceil(GRAIN);
        if want <= self.held {
            return true;
        }
        let Ok(more) = u32::try_from(want - self.held) else {
            return false;
        };
        match self.grains.try_acquire_many(more) {
            Ok(permit) => {
                permit.forget();
                self.held = want;
                true
            }
            Err(_) => false,
        }
    }

    /// [`Charge::hold`], except that when no other transaction is waiting, this one waits
    /// up to `limit` for the memory instead of giving up (see the module doc). False when
    /// another waits already, when `bytes` is over the whole budget, or when the time runs
    /// out.
    pub(crate) async fn hold_or_wait(&mut self, bytes: u64, limit: Duration) -> bool {
        if self.hold(bytes) {
            return true;
        }
        let want = bytes.div_ceil(GRAIN);
        if want > self.whole {
            return false;
        }
        let Ok(more) = u32::try_from(want - self.held) else {
            return false;
        };
        if self
            .waiting
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let _waiting = Waiting(&self.waiting);
        match tokio::time::timeout(limit, self.grains.acquire_many(more)).await {
            Ok(Ok(permit)) => {
                permit.forget();
                self.held = want;
                true
            }
            _ => false,
        }
    }

    /// Gives back what is held beyond `bytes`.
    pub(crate) fn settle(&mut self, bytes: u64) {
        let keep = bytes.div_ceil(GRAIN).min(self.held);
        self.grains.add_permits((self.held - keep) as usize);
        self.held = keep;
    }

    /// Gives everything back (the transaction goes on holding nothing).
    pub(crate) fn release(&mut self) {
        self.settle(0);
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_bounded_and_given_back() {
        let budget = MemoryBudget::new(1 << 20);
        assert_eq!(budget.total(), 1 << 20);
        let mut a = budget.charge();
        let mut b = budget.charge();
        assert!(a.hold(600 << 10));
        assert!(a.hold(100), "holding less than held is free");
        assert!(!b.hold(600 << 10), "only 424 KiB left");
        assert!(b.hold(1), "a grain is small");
        assert!(b.hold(400 << 10));
        drop(a);
        assert!(b.hold(1000 << 10), "a's share came back");
        b.settle(100 << 10);
        let mut c = budget.charge();
        assert!(!c.hold(1 << 20), "b still holds 100 KiB");
        b.release();
        assert!(c.hold(1 << 20));
        assert!(!c.hold((1 << 20) + 1));
    }

    #[tokio::test]
    async fn one_charge_waits_and_gets_what_the_others_give_back() {
        let budget = MemoryBudget::new(1 << 20);
        let mut first = budget.charge();
        let mut second = budget.charge();
        assert!(first.hold(512 << 10));
        assert!(second.hold(512 << 10));
        let wait = Duration::from_secs(5);
        // The first to find the budget spent waits; the second is refused at once and
        // gives back what it holds, which the first then gets.
        let waiter = tokio::spawn(async move {
            let ok = first.hold_or_wait(1 << 20, wait).await;
            (ok, first)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !second.hold_or_wait(600 << 10, wait).await,
            "only one transaction waits at a time"
        );
        drop(second);
        let (ok, first) = waiter.await.unwrap();
        assert!(ok, "the waiter got the memory the other gave back");
        drop(first);
        // Time runs out when nobody gives anything back; the flag is lowered afterwards.
        let mut a = budget.charge();
        let mut b = budget.charge();
        assert!(a.hold(1 << 10));
        assert!(b.hold(1 << 10));
        assert!(!a.hold_or_wait(1 << 20, Duration::from_millis(50)).await);
        assert!(!b.hold_or_wait(1 << 20, Duration::from_millis(50)).await);
        drop(b);
        assert!(
            a.hold_or_wait(1 << 20, wait).await,
            "free again, and free to wait"
        );
        // Over the whole budget never waits.
        assert!(!a.hold_or_wait((1 << 20) + 1, wait).await);
    }
}
