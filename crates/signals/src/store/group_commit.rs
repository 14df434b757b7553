//! Group commit for a store with one writer: batches that arrive while the writer is busy
//! wait in a queue, and the next caller to get the writer stores all of them together (one
//! transaction or insert, rollup rows summed over the group), then hands each waiting caller
//! its own outcome. Under load that turns N commits into one without making a lone batch
//! wait for company.

use std::collections::VecDeque;
use std::sync::{mpsc, Mutex};

use super::{BatchOutcome, StoreError};

/// What a group's store answers: one outcome per item, in order, or one error for all.
pub(crate) type GroupResult = Result<Vec<BatchOutcome>, StoreError>;

struct Job<T> {
    item: T,
    events: usize,
    reply: mpsc::Sender<Result<BatchOutcome, StoreError>>,
}

/// The waiting batches of one store.
pub(crate) struct GroupQueue<T> {
    queue: Mutex<VecDeque<Job<T>>>,
    /// A group takes waiting items up to this many events (at least one item).
    max_events: usize,
}

impl<T> GroupQueue<T> {
    pub(crate) fn new(max_events: usize) -> Self {
        GroupQueue {
            queue: Mutex::new(VecDeque::new()),
            max_events,
        }
    }

    /// Queues `item` (holding `events` events) and returns its outcome once stored, by this
    /// caller (holding `writer`, storing a whole group with `store`) or by another.
    pub(crate) fn submit<W>(
        &self,
        item: T,
        events: usize,
        writer: &Mutex<W>,
        mut store: impl FnMut(&mut W, Vec<T>) -> GroupResult,
    ) -> Result<BatchOutcome, StoreError> {
        let (reply, outcome) = mpsc::channel();
        lock(&self.queue)?.push_back(Job {
            item,
            events,
            reply,
        });
        loop {
            let mut w = lock(writer)?;
            if let Ok(r) = outcome.try_recv() {
                return r;
            }
            let jobs = self.next_group()?;
            if jobs.is_empty() {
                continue;
            }
            let (items, replies): (Vec<T>, Vec<_>) =
                jobs.into_iter().map(|j| (j.item, j.reply)).unzip();
            match store(&mut w, items) {
                Ok(outcomes) => {
                    for (reply, o) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(o));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(same_error(&e)));
                    }
                }
            }
        }
    }

    /// The oldest waiting items, up to `max_events` events (at least one item).
    fn next_group(&self) -> Result<Vec<Job<T>>, StoreError> {
        let mut queue = lock(&self.queue)?;
        let mut jobs = Vec::new();
        let mut events = 0;
        while let Some(job) = queue.front() {
            if !jobs.is_empty() && events + job.events > self.max_events {
                break;
            }
            events += job.events;
            jobs.extend(queue.pop_front());
        }
        Ok(jobs)
    }
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, StoreError> {
    m.lock().map_err(|_| StoreError::Poisoned)
}

/// The same error again, for every batch of a failed group.
pub(crate) fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Backend(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    fn outcome(n: u64) -> BatchOutcome {
        BatchOutcome {
            id: n.to_string(),
            error_type: None,
            accepted: n,
            failed: 0,
            duplicates: 0,
        }
    }

    /// Callers that arrive while the writer is busy are stored together, each gets its own
    /// outcome, and a failed group fails every caller in it.
    #[test]
    fn waiting_batches_are_stored_as_one_group_with_their_own_outcomes() {
        let queue = Arc::new(GroupQueue::<u64>::new(1_000));
        let writer = Arc::new(Mutex::new(Vec::<Vec<u64>>::new()));
        // Hold the writer while four callers queue up behind it.
        let held = writer.lock().unwrap();
        let start = Arc::new(Barrier::new(5));
        let callers: Vec<_> = (1..=4u64)
            .map(|n| {
                let (queue, writer, start) = (queue.clone(), writer.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    queue.submit(n, 10, &writer, |groups, items| {
                        groups.push(items.clone());
                        Ok(items.into_iter().map(outcome).collect())
                    })
                })
            })
            .collect();
        start.wait();
        while lock(&queue.queue).unwrap().len() < 4 {
            std::thread::yield_now();
        }
        drop(held);
        for (n, c) in (1..=4u64).zip(callers) {
            assert_eq!(c.join().unwrap().unwrap().accepted, n);
        }
        let groups = writer.lock().unwrap();
        assert_eq!(groups.len(), 1, "{groups:?}");
        let mut all = groups[0].clone();
        all.sort();
        assert_eq!(all, vec![1, 2, 3, 4]);
        drop(groups);

        let failed = queue.submit(9, 10, &writer, |_, _| {
            Err(StoreError::Unavailable("disk full".into()))
        });
        assert!(matches!(failed, Err(StoreError::Unavailable(m)) if m == "disk full"));
    }

    #[test]
    fn a_group_stops_at_its_event_limit() {
        let queue = GroupQueue::<u64>::new(25);
        for n in 0..3 {
            lock(&queue.queue).unwrap().push_back(Job {
                item: n,
                events: 10,
                reply: mpsc::channel().0,
            });
        }
        let first: Vec<u64> = queue
            .next_group()
            .unwrap()
            .into_iter()
            .map(|j| j.item)
            .collect();
        assert_eq!(first, vec![0, 1]);
    }
}
