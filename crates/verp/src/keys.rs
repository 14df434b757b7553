//! Signed VERP return paths: the MAIL FROM of each recipient's copy names the message, the
//! recipient and its subaccount, so a bounce sent back to it is attributed exactly, without
//! looking anything up.
//!
//! `news@bounces.example.com` becomes `news+<token>@bounces.example.com`, where the token is
//! the lower-case base32 of
//!
//! ```text
//! spool id (8 bytes, big-endian) | recipient index (varint) | subaccount (varint)
//!   | key id (1 byte) | tag (8 bytes)
//! tag = HMAC-SHA256(secret[key id], "petrel-verp" 0 | the bytes before the tag | lower(recipient))
//! ```
//!
//! The recipient address is inside the tag but not in the token: a bounce verifies only for
//! the recipient the copy was sent to, so a forged bounce cannot get an arbitrary address
//! suppressed, and the return path does not show the recipient. Base32 survives MTAs that
//! lower-case local parts. The whole local part stays within RFC 5321's 64 octets, or no
//! token is added.

use ring::hmac;

const CONTEXT: &[u8] = b"petrel-verp\0";
const TAG_LEN: usize = 8;
/// RFC 5321: at most 64 octets in a local part.
const MAX_LOCAL: usize = 64;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The keys that sign return paths: the last one signs, every one verifies (rotation).
#[derive(Clone)]
pub struct ReturnPathKeys {
    keys: Vec<(u8, hmac::Key)>,
}

/// What a verified return path says about the copy a report is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The spool id of the original message.
    pub spool_id: u64,
    /// The recipient's index in the original's envelope.
    pub rcpt_index: u32,
    /// The subaccount the original was sent for.
    pub subaccount: u64,
    /// The recipient the tag verified for, as the report names it.
    pub recipient: String,
}

impl ReturnPathKeys {
    /// Keys from `(id, secret)` pairs in order; `None` without any.
    pub fn new(pairs: &[(u8, String)]) -> Option<ReturnPathKeys> {
        if pairs.is_empty() {
            return None;
        }
        Some(ReturnPathKeys {
            keys: pairs
                .iter()
                .map(|(id, s)| (*id, hmac::Key::new(hmac::HMAC_SHA256, s.as_bytes())))
                .collect(),
        })
    }

    /// The return path of one recipient's copy of `mail_from`, or `None` when the local part
    /// would get too long (the copy is then sent with `mail_from` unchanged).
    pub fn address(
        &self,
        mail_from: &str,
        spool_id: u64,
        rcpt_index: u32,
        subaccount: u64,
        recipient: &str,
    ) -> Option<String> {
        let (local, domain) = mail_from.rsplit_once('@')?;
        let (key_id, key) = self.keys.last()?;
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(&spool_id.to_be_bytes());
        put_varint(&mut bytes, u64::from(rcpt_index));
        put_varint(&mut bytes, subaccount);
        bytes.push(*key_id);
        let tag = tag(key, &bytes, recipient);
        bytes.extend_from_slice(&tag);
        let token = base32(&bytes);
        if local.len() + 1 + token.len() > MAX_LOCAL {
            return None;
        }
        Some(format!("{local}+{token}@{domain}"))
    }

    /// Reads the token in `address` (where a report was sent, or the returned original's
    /// Return-Path) and returns what it names if its tag verifies for one of `recipients`.
    pub fn verify<'r>(
        &self,
        address: &str,
        recipients: impl IntoIterator<Item = &'r str>,
    ) -> Option<Verified> {
        let local = address.trim_matches(['<', '>']).rsplit_once('@')?.0;
        let token = local.rsplit_once('+')?.1;
        let bytes = unbase32(token)?;
        if bytes.len() < 8 + 1 + 1 + 1 + TAG_LEN {
            return None;
        }
        let (signed, tag_bytes) = bytes.split_at(bytes.len() - TAG_LEN);
        let spool_id = u64::from_be_bytes(signed[..8].try_into().ok()?);
        let mut rest = &signed[8..];
        let rcpt_index = u32::try_from(take_varint(&mut rest)?).ok()?;
        let subaccount = take_varint(&mut rest)?;
        let [key_id] = rest else {
            return None;
        };
        let (_, key) = self.keys.iter().find(|(id, _)| id == key_id)?;
        recipients.into_iter().find_map(|r| {
            let expected = tag(key, signed, r);
            ct_eq(&expected, tag_bytes).then(|| Verified {
                spool_id,
                rcpt_index,
                subaccount,
                recipient: r.to_string(),
            })
        })
    }
}

fn tag(key: &hmac::Key, signed: &[u8], recipient: &str) -> [u8; TAG_LEN] {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(CONTEXT);
    ctx.update(signed);
    ctx.update(recipient.trim().to_ascii_lowercase().as_bytes());
    let full = ctx.sign();
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&full.as_ref()[..TAG_LEN]);
    out
}

/// Compares without an early exit, so timing does not tell how much of a guessed tag was
/// right.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// RFC 4648 base32, lower case, no padding.
fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Reverses [`base32`], accepting upper case (some MTAs upper-case local parts).
fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c.to_ascii_lowercase() {
            c @ b'a'..=b'z' => c - b'a',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ReturnPathKeys {
        ReturnPathKeys::new(&[(3, "return-path-secret-0123456789".into())]).unwrap()
    }

    #[test]
    fn round_trip_names_message_recipient_and_subaccount() {
        let k = keys();
        let a = k
            .address(
                "news@bounces.example.com",
                0x0190_a5c1_e2f3_0001,
                2,
                7,
                "Ana@Example.net",
            )
            .unwrap();
        assert!(
            a.starts_with("news+") && a.ends_with("@bounces.example.com"),
            "{a}"
        );
        assert!(a.split('@').next().unwrap().len() <= 64);
        let v = k.verify(&a, ["bo@example.net", "ana@example.net"]).unwrap();
        assert_eq!(
            v,
            Verified {
                spool_id: 0x0190_a5c1_e2f3_0001,
                rcpt_index: 2,
                subaccount: 7,
                recipient: "ana@example.net".into()
            }
        );
        // Upper-cased by a remote MTA, in angle brackets: still verifies.
        assert!(k
            .verify(&format!("<{}>", a.to_uppercase()), ["ana@example.net"])
            .is_some());
    }

    #[test]
    fn other_recipients_tampering_and_unknown_keys_fail() {
        let k = keys();
        let a = k
            .address("news@b.example", 42, 0, 0, "ana@example.net")
            .unwrap();
        assert!(k.verify(&a, ["victim@example.net"]).is_none());
        let (local, domain) = a.split_once('@').unwrap();
        let mut t: Vec<u8> = local.bytes().collect();
        let i = t.len() - 3;
        t[i] = if t[i] == b'a' { b'b' } else { b'a' };
        let tampered = format!("{}@{domain}", String::from_utf8(t).unwrap());
        assert!(k.verify(&tampered, ["ana@example.net"]).is_none());
        let other = ReturnPathKeys::new(&[(4, "another-secret-0123456789".into())]).unwrap();
        assert!(other.verify(&a, ["ana@example.net"]).is_none());
        assert!(k.verify("news@b.example", ["ana@example.net"]).is_none());
        assert!(k
            .verify("news+!!!@b.example", ["ana@example.net"])
            .is_none());
    }

    #[test]
    fn rotation_keeps_old_return_paths_valid() {
        let old = keys();
        let a = old.address("n@b.example", 1, 0, 0, "x@y.example").unwrap();
        let both = ReturnPathKeys::new(&[
            (3, "return-path-secret-0123456789".into()),
            (4, "next-secret-0123456789abcdef".into()),
        ])
        .unwrap();
        assert!(both.verify(&a, ["x@y.example"]).is_some());
        let b = both.address("n@b.example", 1, 0, 0, "x@y.example").unwrap();
        assert!(
            old.verify(&b, ["x@y.example"]).is_none(),
            "signed with key 4"
        );
    }

    #[test]
    fn long_local_parts_get_no_token() {
        let long = format!("{}@b.example", "l".repeat(40));
        assert!(keys().address(&long, 1, 0, 0, "x@y.example").is_none());
    }

    #[test]
    fn base32_round_trips() {
        for n in 0..40u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(unbase32(&base32(&bytes)).unwrap(), bytes);
        }
    }
}
