//! Rebuilding the index from the segment files at start-up.
//!
//! Rules (see docs/spool-format.md):
//! * Segments are replayed in number order, records in file order.
//! * A bad record (bad magic, CRC, incomplete) is followed by a scan for the next offset
//!   where a complete record with a valid CRC starts. If one is found, the bad bytes are
//!   reported as a corrupt record and skipped. If none is found and this is the last
//!   segment, the bytes are a torn tail from a crash mid-write: the file is truncated there.
//!   In an older segment they are reported as corrupt (and left on disk for inspection).
//! * A bad record never yields a message: a message either decodes completely with its CRC
//!   or it does not exist.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::index::{Entry, Index, Location};
use crate::record::{self, Record};
use crate::segment;
use crate::{Envelope, MessageId, SpoolError};

/// A stretch of a segment that did not decode and was skipped at recovery.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CorruptRecord {
    /// Segment number (file `seg-<number>.log`).
    pub segment: u64,
    /// Byte offset of the bad record within the segment.
    pub offset: u64,
    /// What was wrong, for the operator.
    pub reason: String,
}

impl fmt::Display for CorruptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}: {}",
            segment::file_name(self.segment),
            self.offset,
            self.reason
        )
    }
}

/// What `Spool::open` found, so the daemon can log one line at start-up and an operator
/// can see whether anything was lost to corruption.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files replayed.
    pub segments: usize,
    /// Live messages recovered.
    pub messages: usize,
    /// Pending recipients of those messages.
    pub recipients: u64,
    /// Bytes cut off the end of the last segment (an unfinished write from a crash; those
    /// records were never acknowledged).
    pub torn_tail_bytes: u64,
    /// Damaged records that were skipped. Non-empty means data was lost to storage
    /// corruption and deserves an alert.
    pub corrupt_records: Vec<CorruptRecord>,
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spool recovered {} message(s) with {} pending recipient(s) from {} segment(s)",
            self.messages, self.recipients, self.segments
        )?;
        if self.torn_tail_bytes > 0 {
            write!(
                f,
                "; truncated a torn tail of {} byte(s)",
                self.torn_tail_bytes
            )?;
        }
        if !self.corrupt_records.is_empty() {
            write!(
                f,
                "; {} corrupt record(s) skipped:",
                self.corrupt_records.len()
            )?;
            for c in &self.corrupt_records {
                write!(f, " [{c}]")?;
            }
        }
        Ok(())
    }
}

/// Everything `open` needs to start the writer.
pub(crate) struct Recovered {
    pub report: RecoveryReport,
    pub index: Index,
    /// Segment numbers with their (possibly truncated) lengths, ascending.
    pub segments: Vec<(u64, u64)>,
    /// Live messages per segment.
    pub live: HashMap<u64, u64>,
    /// Every id below this was used at some point.
    pub id_floor: u64,
    /// Segments in which corrupt records were found: kept for inspection when reclaimed.
    pub damaged: HashSet<u64>,
}

pub(crate) fn recover(dir: &Path) -> Result<Recovered, SpoolError> {
    let numbers = segment::list(dir).map_err(|e| SpoolError::io("listing spool directory", e))?;
    let mut report = RecoveryReport {
        segments: numbers.len(),
        ..RecoveryReport::default()
    };
    let mut index = Index::default();
    let mut id_floor = 0u64;
    let mut segments = Vec::with_capacity(numbers.len());

    for (i, &number) in numbers.iter().enumerate() {
        let is_last = i + 1 == numbers.len();
        let path = segment::path(dir, number);
        let data = fs::read(&path).map_err(|e| SpoolError::io("reading segment", e))?;
        let mut pos = 0usize;
        let mut len = data.len() as u64;
        while pos < data.len() {
            match record::decode(&data[pos..]) {
                Ok((rec, size)) => {
                    let loc = Location {
                        segment: number,
                        offset: pos as u64,
                        len: size as u64,
                    };
                    apply(rec, loc, &mut index, &mut id_floor, &mut report);
                    pos += size;
                }
                Err(err) => match record::resync(&data, pos + 1) {
                    Some(next) => {
                        report.corrupt_records.push(CorruptRecord {
                            segment: number,
                            offset: pos as u64,
                            reason: format!("{err}; skipped {} byte(s)", next - pos),
                        });
                        pos = next;
                    }
                    None if is_last => {
                        let torn = data.len() - pos;
                        tracing::warn!(
                            segment = number,
                            offset = pos,
                            bytes = torn,
                            reason = %err,
                            "truncating torn tail of spool segment"
                        );
                        truncate(dir, number, pos as u64)?;
                        report.torn_tail_bytes += torn as u64;
                        len = pos as u64;
                        break;
                    }
                    None => {
                        report.corrupt_records.push(CorruptRecord {
                            segment: number,
                            offset: pos as u64,
                            reason: format!(
                                "{err}; no valid record in the last {} byte(s) of the segment",
                                data.len() - pos
                            ),
                        });
                        break;
                    }
                },
            }
        }
        segments.push((number, len));
    }

    let mut live: HashMap<u64, u64> = HashMap::new();
    for (_, entry) in index.iter() {
        *live.entry(entry.location.segment).or_default() += 1;
    }
    report.messages = index.len();
    report.recipients = index.recipients();
    for c in &report.corrupt_records {
        tracing::error!(corrupt = %c, "corrupt spool record skipped");
    }
    let damaged = report.corrupt_records.iter().map(|c| c.segment).collect();
    Ok(Recovered {
        report,
        index,
        segments,
        live,
        id_floor,
        damaged,
    })
}

fn truncate(dir: &Path, number: u64, len: u64) -> Result<(), SpoolError> {
    let file = segment::open_rw(dir, number).map_err(|e| SpoolError::io("opening segment", e))?;
    file.set_len(len)
        .and_then(|()| file.sync_data())
        .map_err(|e| SpoolError::io("truncating torn tail", e))
}

fn apply(
    rec: Record<'_>,
    loc: Location,
    index: &mut Index,
    id_floor: &mut u64,
    report: &mut RecoveryReport,
) {
    let mut corrupt = |reason: String| {
        report.corrupt_records.push(CorruptRecord {
            segment: loc.segment,
            offset: loc.offset,
            reason,
        })
    };
    match rec {
        Record::SegmentHeader { next_id, .. } => *id_floor = (*id_floor).max(next_id),
        Record::Message {
            id,
            envelope_json,
            body,
        } => {
            *id_floor = (*id_floor).max(id.saturating_add(1));
            let mut envelope: Envelope = match serde_json::from_slice(envelope_json) {
                Ok(e) => e,
                Err(e) => return corrupt(format!("message {}: envelope JSON: {e}", MessageId(id))),
            };
            for r in &mut envelope.recipients {
                r.done = false;
            }
            let duplicate = index.get(MessageId(id)).is_some();
            let entry = Entry::new(Arc::new(envelope), loc, body.len() as u64);
            if duplicate {
                corrupt(format!("duplicate message id {}", MessageId(id)));
            } else {
                index.insert(MessageId(id), entry);
            }
        }
        Record::Remove { id } => {
            *id_floor = (*id_floor).max(id.saturating_add(1));
            // Unknown ids are normal: the message's segment was reclaimed, or its record
            // was corrupt (and is reported as such).
            index.remove(MessageId(id));
        }
        Record::RecipientDone { id, rcpt } => {
            *id_floor = (*id_floor).max(id.saturating_add(1));
            index.mark_done(MessageId(id), rcpt);
        }
        Record::Unknown { kind } => corrupt(format!(
            "unknown record kind {kind} (written by a newer petrel?)"
        )),
    }
}
