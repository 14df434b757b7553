//! The in-memory index of live messages: where each record is, its envelope, and
//! per-queue aggregates maintained incrementally so management views cost O(queues),
//! not O(messages).
//!
//! Only the writer thread (and recovery, before it starts) mutates the index, always after
//! the corresponding records are durable; readers take a shared lock for a moment.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::{Envelope, MessageId};

/// Where a message record lives on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    pub segment: u64,
    /// Offset of the record header within the segment.
    pub offset: u64,
    /// Total encoded length of the record (header included).
    pub len: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub envelope: Arc<Envelope>,
    pub location: Location,
    pub body_len: u64,
    /// Recipients not yet done; the entry leaves the index when this reaches zero.
    pub pending: u32,
}

impl Entry {
    pub fn new(envelope: Arc<Envelope>, location: Location, body_len: u64) -> Entry {
        let pending = envelope.pending_recipients() as u32;
        Entry {
            envelope,
            location,
            body_len,
            pending,
        }
    }
}

/// Pending work for one recipient domain, whichever queue it waits in: what `show domains`
/// lists. (Queues, keyed by domain *and* virtual MTA, are the delivery engine's: a pool
/// member or a `queue-to` target is only decided there.)
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct DomainSummary {
    /// Recipient domain, lowercased.
    pub domain: String,
    /// Recipients still pending for this domain.
    pub recipients: u64,
    /// Messages with at least one such recipient.
    pub messages: u64,
    /// Body bytes of those messages.
    pub bytes: u64,
}

#[derive(Default, Clone, Copy, Debug)]
struct Agg {
    recipients: u64,
    messages: u64,
    bytes: u64,
}

/// What `mark_done` did.
#[derive(Debug)]
pub(crate) enum DoneOutcome {
    NotFound,
    NoSuchRecipient,
    AlreadyDone,
    Marked,
    /// That was the last pending recipient: the message left the index.
    Completed(Entry),
}

#[derive(Default)]
pub(crate) struct Index {
    messages: BTreeMap<MessageId, Entry>,
    domains: HashMap<String, Agg>,
    recipients: u64,
    bytes: u64,
}

/// Pending recipients of `entry` grouped by domain.
fn contribution(entry: &Entry) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for r in entry.envelope.recipients.iter().filter(|r| !r.done) {
        let d = r.domain();
        match out.iter_mut().find(|(k, _)| *k == d) {
            Some((_, n)) => *n += 1,
            None => out.push((d, 1)),
        }
    }
    out
}

impl Index {
    fn account(&mut self, entry: &Entry, add: bool) {
        for (key, n) in contribution(entry) {
            if add {
                let agg = self.domains.entry(key).or_default();
                agg.recipients += n;
                agg.messages += 1;
                agg.bytes += entry.body_len;
            } else if let Some(agg) = self.domains.get_mut(&key) {
                agg.recipients -= n;
                agg.messages -= 1;
                agg.bytes -= entry.body_len;
                if agg.messages == 0 {
                    self.domains.remove(&key);
                }
            }
        }
        let pending = u64::from(entry.pending);
        if add {
            self.recipients += pending;
            self.bytes += entry.body_len;
        } else {
            self.recipients -= pending;
            self.bytes -= entry.body_len;
        }
    }

    /// Adds a message. Returns false (and changes nothing) if the id is already present
    /// or the message has no pending recipient.
    pub fn insert(&mut self, id: MessageId, entry: Entry) -> bool {
        if entry.pending == 0 || self.messages.contains_key(&id) {
            return false;
        }
        self.account(&entry, true);
        self.messages.insert(id, entry);
        true
    }

    pub fn remove(&mut self, id: MessageId) -> Option<Entry> {
        let entry = self.messages.remove(&id)?;
        self.account(&entry, false);
        Some(entry)
    }

    pub fn mark_done(&mut self, id: MessageId, rcpt: u32) -> DoneOutcome {
        let Some(entry) = self.messages.get(&id) else {
            return DoneOutcome::NotFound;
        };
        match entry.envelope.recipients.get(rcpt as usize) {
            None => return DoneOutcome::NoSuchRecipient,
            Some(r) if r.done => return DoneOutcome::AlreadyDone,
            Some(_) => {}
        }
        let mut entry = self.messages.remove(&id).expect("present");
        self.account(&entry, false);
        Arc::make_mut(&mut entry.envelope).recipients[rcpt as usize].done = true;
        entry.pending -= 1;
        if entry.pending == 0 {
            return DoneOutcome::Completed(entry);
        }
        self.account(&entry, true);
        self.messages.insert(id, entry);
        DoneOutcome::Marked
    }

    pub fn get(&self, id: MessageId) -> Option<&Entry> {
        self.messages.get(&id)
    }

    pub fn ids(&self) -> Vec<MessageId> {
        self.messages.keys().copied().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&MessageId, &Entry)> {
        self.messages.iter()
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn recipients(&self) -> u64 {
        self.recipients
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Sorted by pending recipients (descending), then domain.
    pub fn domain_summary(&self) -> Vec<DomainSummary> {
        let mut out: Vec<DomainSummary> = self
            .domains
            .iter()
            .map(|(domain, agg)| DomainSummary {
                domain: domain.clone(),
                recipients: agg.recipients,
                messages: agg.messages,
                bytes: agg.bytes,
            })
            .collect();
        out.sort_by(|a, b| {
            b.recipients
                .cmp(&a.recipients)
                .then_with(|| a.domain.cmp(&b.domain))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Recipient;

    fn env(vmta: &str, rcpts: &[&str]) -> Arc<Envelope> {
        Arc::new(Envelope {
            mail_from: "s@x".into(),
            recipients: rcpts.iter().map(|r| Recipient::new(*r)).collect(),
            vmta: vmta.into(),
            job_id: None,
            env_id: None,
            ret: None,
            smtputf8: false,
            body_8bit: false,
            auth_user: None,
            client_ip: None,
            client_helo: None,
            received_at_unix_ms: 0,
            facts: Default::default(),
        })
    }

    fn loc() -> Location {
        Location {
            segment: 1,
            offset: 0,
            len: 1,
        }
    }

    #[test]
    fn summary_tracks_done_and_removal() {
        let mut ix = Index::default();
        ix.insert(
            MessageId(1),
            Entry::new(env("v1", &["a@B.com", "c@b.com", "d@z.org"]), loc(), 100),
        );
        ix.insert(MessageId(2), Entry::new(env("v1", &["e@z.org"]), loc(), 10));
        ix.insert(MessageId(3), Entry::new(env("v2", &["f@b.com"]), loc(), 1));
        let s = ix.domain_summary();
        let view: Vec<_> = s
            .iter()
            .map(|q| (q.domain.as_str(), q.recipients, q.messages, q.bytes))
            .collect();
        assert_eq!(view, vec![("b.com", 3, 2, 101), ("z.org", 2, 2, 110)]);
        assert_eq!((ix.len(), ix.recipients(), ix.bytes()), (3, 5, 111));

        assert!(matches!(ix.mark_done(MessageId(1), 2), DoneOutcome::Marked));
        assert!(matches!(
            ix.mark_done(MessageId(1), 2),
            DoneOutcome::AlreadyDone
        ));
        assert!(matches!(
            ix.mark_done(MessageId(1), 9),
            DoneOutcome::NoSuchRecipient
        ));
        assert!(matches!(
            ix.mark_done(MessageId(9), 0),
            DoneOutcome::NotFound
        ));
        let z = ix
            .domain_summary()
            .into_iter()
            .find(|q| q.domain == "z.org")
            .unwrap();
        assert_eq!((z.recipients, z.messages, z.bytes), (1, 1, 10));
        assert!(ix.get(MessageId(1)).unwrap().envelope.recipients[2].done);

        assert!(matches!(
            ix.mark_done(MessageId(3), 0),
            DoneOutcome::Completed(_)
        ));
        assert!(ix.get(MessageId(3)).is_none());
        assert!(ix.remove(MessageId(2)).is_some());
        assert!(ix.remove(MessageId(2)).is_none());
        assert_eq!(ix.domain_summary().len(), 1);
        assert_eq!((ix.len(), ix.recipients(), ix.bytes()), (1, 2, 100));
        assert!(ix.remove(MessageId(1)).is_some());
        assert!(ix.domain_summary().is_empty());
        assert_eq!((ix.len(), ix.recipients(), ix.bytes()), (0, 0, 0));
    }
}
