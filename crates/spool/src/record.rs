//! Pure encoding and decoding of spool records. No I/O happens here, so every rule about
//! the on-disk layout can be unit-tested (and later fuzzed) in isolation.
//!
//! Layout of one record (all integers little-endian):
//!
//! ```text
//! offset  size  field
//!      0     4  magic  = "PTRL" (0x4C52_5450)
//!      4     4  payload length in bytes (kind byte not included)
//!      8     4  CRC32 (IEEE, crc32fast) over kind byte + payload
//!     12     1  kind
//!     13     n  payload
//! ```
//!
//! Payloads:
//! * `SegmentHeader` (1): next_id u64, created_unix_ms u64. First record of every segment;
//!   it keeps message ids unique even after every message segment has been reclaimed.
//! * `Message` (2): id u64, envelope_len u32, envelope JSON (envelope_len bytes), body.
//! * `Remove` (3): id u64. Durable tombstone.
//! * `RecipientDone` (4): id u64, recipient index u32.

use std::fmt;

/// "PTRL" read as a little-endian u32: the first four bytes of every record.
pub(crate) const MAGIC: u32 = u32::from_le_bytes(*b"PTRL");
/// Bytes before the payload: magic, length, CRC, kind.
pub(crate) const HEADER_LEN: usize = 13;

/// Encoded size of a `SegmentHeader` record (header + two u64).
pub(crate) const SEGMENT_HEADER_RECORD_LEN: u64 = HEADER_LEN as u64 + 16;

pub(crate) const KIND_SEGMENT_HEADER: u8 = 1;
pub(crate) const KIND_MESSAGE: u8 = 2;
pub(crate) const KIND_REMOVE: u8 = 3;
pub(crate) const KIND_RECIPIENT_DONE: u8 = 4;

/// Fixed part of a `Message` payload before the envelope JSON: id + envelope length.
const MESSAGE_FIXED: usize = 12;

/// One decoded record, borrowing its variable-length parts from the input buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    SegmentHeader {
        next_id: u64,
        created_unix_ms: u64,
    },
    Message {
        id: u64,
        envelope_json: &'a [u8],
        body: &'a [u8],
    },
    Remove {
        id: u64,
    },
    RecipientDone {
        id: u64,
        rcpt: u32,
    },
    /// A record with a valid CRC but a kind this version does not know (a newer writer).
    Unknown {
        kind: u8,
    },
}

/// Why bytes at some offset are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The buffer ends before the record does (torn write if at the end of the log).
    Incomplete,
    BadMagic,
    BadCrc,
    /// CRC matched but the payload does not fit its kind.
    BadPayload(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Incomplete => f.write_str("incomplete record"),
            DecodeError::BadMagic => f.write_str("bad magic"),
            DecodeError::BadCrc => f.write_str("CRC mismatch"),
            DecodeError::BadPayload(why) => write!(f, "malformed payload: {why}"),
        }
    }
}

/// A record payload does not fit the u32 length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge;

fn header(kind: u8, payload_len: u32, crc: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&payload_len.to_le_bytes());
    h[8..12].copy_from_slice(&crc.to_le_bytes());
    h[12] = kind;
    h
}

fn crc_of(kind: u8, parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    for p in parts {
        hasher.update(p);
    }
    hasher.finalize()
}

fn encode_small(kind: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("small record payload fits u32");
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header(kind, len, crc_of(kind, &[payload])));
    out.extend_from_slice(payload);
    out
}

/// Encodes everything of a `Message` record except the body, which the writer appends
/// with a vectored write so a large body is never copied. The CRC already covers the body.
/// `body` is the body in parts, as it will be written one after the other.
pub(crate) fn encode_message_head(
    id: u64,
    envelope_json: &[u8],
    body: &[&[u8]],
) -> Result<Vec<u8>, TooLarge> {
    let env_len = u32::try_from(envelope_json.len()).map_err(|_| TooLarge)?;
    let body_len = body
        .iter()
        .try_fold(0usize, |n, p| n.checked_add(p.len()))
        .ok_or(TooLarge)?;
    let payload_len = MESSAGE_FIXED
        .checked_add(envelope_json.len())
        .and_then(|n| n.checked_add(body_len))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(TooLarge)?;
    let mut fixed = [0u8; MESSAGE_FIXED];
    fixed[0..8].copy_from_slice(&id.to_le_bytes());
    fixed[8..12].copy_from_slice(&env_len.to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[KIND_MESSAGE]);
    hasher.update(&fixed);
    hasher.update(envelope_json);
    for part in body {
        hasher.update(part);
    }
    let crc = hasher.finalize();
    let mut out = Vec::with_capacity(HEADER_LEN + MESSAGE_FIXED + envelope_json.len());
    out.extend_from_slice(&header(KIND_MESSAGE, payload_len, crc));
    out.extend_from_slice(&fixed);
    out.extend_from_slice(envelope_json);
    Ok(out)
}

/// Encodes a whole record into one buffer (bodies included; the writer uses
/// [`encode_message_head`] for messages instead).
pub(crate) fn encode(record: &Record<'_>) -> Result<Vec<u8>, TooLarge> {
    Ok(match *record {
        Record::SegmentHeader {
            next_id,
            created_unix_ms,
        } => {
            let mut p = [0u8; 16];
            p[0..8].copy_from_slice(&next_id.to_le_bytes());
            p[8..16].copy_from_slice(&created_unix_ms.to_le_bytes());
            encode_small(KIND_SEGMENT_HEADER, &p)
        }
        Record::Message {
            id,
            envelope_json,
            body,
        } => {
            let mut v = encode_message_head(id, envelope_json, &[body])?;
            v.extend_from_slice(body);
            v
        }
        Record::Remove { id } => encode_small(KIND_REMOVE, &id.to_le_bytes()),
        Record::RecipientDone { id, rcpt } => {
            let mut p = [0u8; 12];
            p[0..8].copy_from_slice(&id.to_le_bytes());
            p[8..12].copy_from_slice(&rcpt.to_le_bytes());
            encode_small(KIND_RECIPIENT_DONE, &p)
        }
        Record::Unknown { kind } => encode_small(kind, &[]),
    })
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes the record at the start of `buf`, returning it and its total encoded length.
/// The CRC is verified before the payload is interpreted.
pub(crate) fn decode(buf: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    if buf.len() < 4 {
        return Err(DecodeError::Incomplete);
    }
    if u32_at(buf, 0) != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Incomplete);
    }
    let payload_len = u32_at(buf, 4) as usize;
    let total = HEADER_LEN
        .checked_add(payload_len)
        .ok_or(DecodeError::Incomplete)?;
    if buf.len() < total {
        return Err(DecodeError::Incomplete);
    }
    let crc = u32_at(buf, 8);
    let kind = buf[12];
    let payload = &buf[HEADER_LEN..total];
    if crc_of(kind, &[payload]) != crc {
        return Err(DecodeError::BadCrc);
    }
    let record = match kind {
        KIND_SEGMENT_HEADER => {
            if payload.len() != 16 {
                return Err(DecodeError::BadPayload("segment header must be 16 bytes"));
            }
            Record::SegmentHeader {
                next_id: u64_at(payload, 0),
                created_unix_ms: u64_at(payload, 8),
            }
        }
        KIND_MESSAGE => {
            if payload.len() < MESSAGE_FIXED {
                return Err(DecodeError::BadPayload(
                    "message shorter than its fixed part",
                ));
            }
            let id = u64_at(payload, 0);
            let env_len = u32_at(payload, 8) as usize;
            let rest = &payload[MESSAGE_FIXED..];
            if env_len > rest.len() {
                return Err(DecodeError::BadPayload("envelope length exceeds record"));
            }
            Record::Message {
                id,
                envelope_json: &rest[..env_len],
                body: &rest[env_len..],
            }
        }
        KIND_REMOVE => {
            if payload.len() != 8 {
                return Err(DecodeError::BadPayload("remove must be 8 bytes"));
            }
            Record::Remove {
                id: u64_at(payload, 0),
            }
        }
        KIND_RECIPIENT_DONE => {
            if payload.len() != 12 {
                return Err(DecodeError::BadPayload("recipient-done must be 12 bytes"));
            }
            Record::RecipientDone {
                id: u64_at(payload, 0),
                rcpt: u32_at(payload, 8),
            }
        }
        other => Record::Unknown { kind: other },
    };
    Ok((record, total))
}

/// After a bad record at some offset, finds the first offset at or after `from` where a
/// complete record with a valid CRC starts. `None` means nothing valid follows.
pub(crate) fn resync(buf: &[u8], from: usize) -> Option<usize> {
    let magic = MAGIC.to_le_bytes();
    let mut pos = from;
    while pos + HEADER_LEN <= buf.len() {
        let window = &buf[pos..];
        let hit = window.windows(4).position(|w| w == magic)?;
        let at = pos + hit;
        if decode(&buf[at..]).is_ok() {
            return Some(at);
        }
        pos = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Vec<u8>> {
        vec![
            encode(&Record::SegmentHeader {
                next_id: 7,
                created_unix_ms: 99,
            })
            .unwrap(),
            encode(&Record::Message {
                id: 42,
                envelope_json: b"{\"a\":1}",
                body: b"hello\r\n",
            })
            .unwrap(),
            encode(&Record::Remove { id: 42 }).unwrap(),
            encode(&Record::RecipientDone { id: 42, rcpt: 3 }).unwrap(),
        ]
    }

    #[test]
    fn roundtrip_each_kind() {
        let expected = [
            Record::SegmentHeader {
                next_id: 7,
                created_unix_ms: 99,
            },
            Record::Message {
                id: 42,
                envelope_json: b"{\"a\":1}",
                body: b"hello\r\n",
            },
            Record::Remove { id: 42 },
            Record::RecipientDone { id: 42, rcpt: 3 },
        ];
        assert_eq!(samples()[0].len() as u64, SEGMENT_HEADER_RECORD_LEN);
        for (bytes, want) in samples().iter().zip(expected.iter()) {
            let (got, len) = decode(bytes).unwrap();
            assert_eq!(&got, want);
            assert_eq!(len, bytes.len());
        }
    }

    #[test]
    fn message_head_plus_body_equals_full_encoding() {
        let head = encode_message_head(5, b"{}", &[b"bo", b"dy"]).unwrap();
        let mut joined = head.clone();
        joined.extend_from_slice(b"body");
        let full = encode(&Record::Message {
            id: 5,
            envelope_json: b"{}",
            body: b"body",
        })
        .unwrap();
        assert_eq!(joined, full);
        assert_eq!(head.len(), HEADER_LEN + MESSAGE_FIXED + 2);
    }

    #[test]
    fn layout_is_as_documented() {
        let bytes = encode(&Record::Remove { id: 0x0102 }).unwrap();
        assert_eq!(&bytes[0..4], b"PTRL");
        assert_eq!(u32_at(&bytes, 4), 8);
        assert_eq!(bytes[12], KIND_REMOVE);
        assert_eq!(&bytes[13..], &0x0102u64.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[12..]);
        assert_eq!(u32_at(&bytes, 8), h.finalize());
    }

    #[test]
    fn every_truncation_is_incomplete() {
        for bytes in samples() {
            for cut in 0..bytes.len() {
                let err = decode(&bytes[..cut]).unwrap_err();
                assert_eq!(err, DecodeError::Incomplete, "cut at {cut}");
            }
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        for bytes in samples() {
            for i in 0..bytes.len() {
                for bit in 0..8 {
                    let mut b = bytes.clone();
                    b[i] ^= 1 << bit;
                    // A flip in the length field may make the record look longer
                    // (Incomplete) or shorter (CRC over fewer bytes): never valid.
                    assert!(
                        decode(&b).is_err(),
                        "flip byte {i} bit {bit} went unnoticed"
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_kind_with_valid_crc_decodes_as_unknown() {
        let bytes = encode_small(200, b"future");
        assert_eq!(decode(&bytes).unwrap().0, Record::Unknown { kind: 200 });
    }

    #[test]
    fn resync_skips_garbage_and_finds_next_record() {
        let good = encode(&Record::Remove { id: 9 }).unwrap();
        let mut buf = b"PTRLgarbage-that-is-not-a-record".to_vec();
        let at = buf.len();
        buf.extend_from_slice(&good);
        assert_eq!(resync(&buf, 1), Some(at));
        assert_eq!(resync(&buf, 0), Some(at));
        assert_eq!(resync(&buf[..buf.len() - 1], 0), None);
        assert_eq!(resync(b"", 0), None);
    }

    #[test]
    fn message_with_envelope_length_past_end_is_bad_payload() {
        let mut p = Vec::new();
        p.extend_from_slice(&1u64.to_le_bytes());
        p.extend_from_slice(&100u32.to_le_bytes());
        p.extend_from_slice(b"{}");
        let bytes = encode_small(KIND_MESSAGE, &p);
        assert!(matches!(decode(&bytes), Err(DecodeError::BadPayload(_))));
    }
}
