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
//! oldest transaction (the first to take its charge) may instead wait a while for the
//! memory the others give back as they are refused or finish. Only one transaction waits
//! at a time, so waiters never hold memory the others wait for, and one message always
//! gets through.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// The tickets of the charges alive, oldest first: the first may wait for memory.
    tickets: Arc<Mutex<BTreeSet<u64>>>,
    next_ticket: Arc<AtomicU64>,
}

impl MemoryBudget {
    pub(crate) fn new(bytes: u64) -> MemoryBudget {
        let grains = (bytes / GRAIN).clamp(1, Semaphore::MAX_PERMITS as u64);
        MemoryBudget {
            grains: Arc::new(Semaphore::new(grains as usize)),
            total: grains * GRAIN,
            tickets: Arc::default(),
            next_ticket: Arc::default(),
        }
    }

    /// The whole budget in bytes: a message larger than this can never be taken.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// An empty claim on the budget, for one transaction.
    pub(crate) fn charge(&self) -> Charge {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        lock(&self.tickets).insert(ticket);
        Charge {
            grains: self.grains.clone(),
            held: 0,
            whole: self.total / GRAIN,
            ticket,
            tickets: self.tickets.clone(),
        }
    }
}

/// The ticket set; a panic elsewhere while it was held leaves it usable.
fn lock(tickets: &Mutex<BTreeSet<u64>>) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
    tickets.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one transaction holds of the budget; given back when dropped.
pub(crate) struct Charge {
    grains: Arc<Semaphore>,
    /// Grains held.
    held: u64,
    /// Grains in the whole budget.
    whole: u64,
    /// When the charge was taken, in the order of [`MemoryBudget::charge`] calls.
    ticket: u64,
    tickets: Arc<Mutex<BTreeSet<u64>>>,
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

    /// [`Charge::hold`], except that the oldest charge alive waits up to `limit` for the
    /// memory instead of giving up (see the module doc). False when this charge is not the
    /// oldest, when `bytes` is over the whole budget, or when the time runs out.
    pub(crate) async fn hold_or_wait(&mut self, bytes: u64, limit: Duration) -> bool {
        if self.hold(bytes) {
            return true;
        }
        if lock(&self.tickets).first() != Some(&self.ticket) {
            return false;
        }
        let want = bytes.div_ceil(GRAIN);
        if want > self.whole {
            return false;
        }
        let Ok(more) = u32::try_from(want - self.held) else {
            return false;
        };
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
        lock(&self.tickets).remove(&self.ticket);
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
    async fn only_the_oldest_charge_waits_and_it_gets_what_the_others_give_back() {
        let budget = MemoryBudget::new(1 << 20);
        let mut old = budget.charge();
        let mut young = budget.charge();
        assert!(old.hold(512 << 10));
        assert!(young.hold(512 << 10));
        let wait = Duration::from_secs(5);
        assert!(
            !young.hold_or_wait(600 << 10, wait).await,
            "a younger charge is refused at once"
        );
        // The oldest waits; the younger one is refused on its next step and gives back.
        let waiter = tokio::spawn(async move {
            let ok = old.hold_or_wait(1 << 20, wait).await;
            (ok, old)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(young);
        let (ok, old) = waiter.await.unwrap();
        assert!(ok, "the oldest got the memory the younger gave back");
        drop(old);
        // Time runs out when nobody gives anything back; over the whole budget never waits.
        let mut a = budget.charge();
        let mut b = budget.charge();
        assert!(b.hold(1 << 10));
        assert!(!a.hold_or_wait(1 << 20, Duration::from_millis(50)).await);
        drop(b);
        assert!(!a.hold_or_wait((1 << 20) + 1, wait).await);
    }
}
