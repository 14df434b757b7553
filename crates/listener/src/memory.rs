//! The memory inbound sessions may hold for mail being received (`max-smtp-in-memory`).
//!
//! A message is held in memory from its first DATA byte until the spool has it on disk
//! (the spool's record format needs it whole: see docs/operations.md, "Limits and
//! hardening"), and a recipient list until the end of its transaction. Without a common
//! bound a few clients sending large messages at once could take all the memory there is.
//! Each transaction takes what it needs from one budget, in grains, and gives it back when
//! it ends; when the budget is spent the session answers 4xx and the client tries later.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Memory is handed out in grains of this many bytes, so a growing message or a new
/// recipient takes the semaphore only now and then.
const GRAIN: u64 = 4 << 10;

/// The budget every session shares.
#[derive(Clone)]
pub(crate) struct MemoryBudget {
    grains: Arc<Semaphore>,
    total: u64,
}

impl MemoryBudget {
    pub(crate) fn new(bytes: u64) -> MemoryBudget {
        let grains = (bytes / GRAIN).clamp(1, Semaphore::MAX_PERMITS as u64);
        MemoryBudget {
            grains: Arc::new(Semaphore::new(grains as usize)),
            total: grains * GRAIN,
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
        }
    }
}

/// What one transaction holds of the budget; given back when dropped.
pub(crate) struct Charge {
    grains: Arc<Semaphore>,
    /// Grains held.
    held: u64,
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
}
