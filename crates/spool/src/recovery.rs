//! Rebuilding the index from the segment files at start-up.
//!
//! Rules (see docs/spool-format.md):
//! * Segments are replayed in number order, records in file order.
//! * Zero bytes from some offset to the end of the file are padding (a preallocated
//!   segment's unused space): the records end there. Not reported, not modified.
//! * A bad record (bad magic, CRC, incomplete) is followed by a scan for the next offset
//!   where a complete record with a valid CRC starts. If one is found, the bad bytes are
//!   reported as a corrupt record and skipped. If none is found and this is the last
//!   segment, the bytes are a torn tail from a crash mid-write: if the file ends inside the
//!   bad record (an appended segment) the file is truncated there; if zero padding follows
//!   it (a preallocated segment) the bad bytes are overwritten with zeros and the length
//!   kept. In an older segment they are reported as corrupt (and left on disk for
//!   inspection).
//! * A bad record never yields a message: a message either decodes completely with its CRC
//!   or it does not exist.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::index::{Entry, Index, Location};
use crate::record::{self, DecodeError, Record};
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
    /// Bytes of an unfinished write from a crash discarded at the end of the last segment:
    /// cut off an appended segment, or zeroed in a preallocated one (whose zero padding is
    /// not counted). Those records were never acknowledged.
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
                "; discarded a torn tail of {} byte(s)",
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

/// Where a recovered segment's records end, and how big its file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentExtent {
    pub number: u64,
    /// Logical end: the next record would be written here (for the last segment).
    pub len: u64,
    /// File size; larger than `len` when zero padding follows the records.
    pub size: u64,
}

/// Everything `open` needs to start the writer.
pub(crate) struct Recovered {
    pub report: RecoveryReport,
    pub index: Index,
    /// Segments, ascending, after any torn tail was discarded.
    pub segments: Vec<SegmentExtent>,
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
        // Everything from `dirty_end` on is zero: padding, where no record can start (a
        // record starts with its magic). A record may still end in zero bytes past it.
        let dirty_end = dirty_end(&data);
        let mut pos = 0usize;
        let mut size = data.len() as u64;
        while pos < dirty_end {
            match record::decode(&data[pos..]) {
                Ok((rec, len)) => {
                    let loc = Location {
                        segment: number,
                        offset: pos as u64,
                        len: len as u64,
                    };
                    apply(rec, loc, &mut index, &mut id_floor, &mut report);
                    pos += len;
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
                        let (new_size, torn) =
                            discard_torn_tail(dir, number, &data, pos, dirty_end, &err)?;
                        size = new_size;
                        report.torn_tail_bytes += torn;
                        break;
                    }
                    None => {
                        report.corrupt_records.push(CorruptRecord {
                            segment: number,
                            offset: pos as u64,
                            reason: format!(
                                "{err}; no valid record in the last {} byte(s) of the segment",
                                dirty_end - pos
                            ),
                        });
                        break;
                    }
                },
            }
        }
        segments.push(SegmentExtent {
            number,
            len: pos as u64,
            size,
        });
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

/// Length of `data` without its trailing zero bytes. Compares eight bytes at a time: the
/// padding of a preallocated segment can be most of its 64 MiB.
fn dirty_end(data: &[u8]) -> usize {
    let mut end = data.len();
    while end >= 8 {
        let word = u64::from_ne_bytes(data[end - 8..end].try_into().expect("8 bytes"));
        if word != 0 {
            break;
        }
        end -= 8;
    }
    data[..end]
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1)
}

/// Removes the torn record at `pos` of the last segment (nothing valid follows it) and
/// returns the file's new size and how many bytes were discarded. Two shapes:
/// * the file ends inside the bad record (it claims more bytes than there are), or the bad
///   bytes run to the end of the file: an appended segment cut short. Truncate at `pos`.
/// * zero padding follows the bad bytes: a preallocated segment. Overwrite `pos..dirty_end`
///   with zeros and keep the length, so later writes stay overwrites and a shorter record
///   written there later cannot leave stale bytes behind it.
///
/// (An appended segment whose torn record happens to end in zero bytes takes the second
/// path; it then simply has a little padding, which is equally correct.)
fn discard_torn_tail(
    dir: &Path,
    number: u64,
    data: &[u8],
    pos: usize,
    dirty_end: usize,
    err: &DecodeError,
) -> Result<(u64, u64), SpoolError> {
    let appended = *err == DecodeError::Incomplete || dirty_end == data.len();
    let (size, torn) = if appended {
        (pos, data.len() - pos)
    } else {
        (data.len(), dirty_end - pos)
    };
    tracing::warn!(
        segment = number,
        offset = pos,
        bytes = torn,
        reason = %err,
        "discarding torn tail of spool segment"
    );
    let done = if appended {
        segment::open_rw(dir, number).and_then(|file| {
            file.set_len(pos as u64)?;
            file.sync_data()
        })
    } else {
        segment::zero_range(dir, number, pos as u64, dirty_end as u64)
    };
    done.map_err(|e| SpoolError::io("discarding torn tail", e))?;
    Ok((size as u64, torn as u64))
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
