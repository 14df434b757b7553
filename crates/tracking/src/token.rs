//! Signed tracking tokens: what an open pixel or a wrapped link carries back to the tracker.
//!
//! Layout of the decoded token (then base64url without padding):
//!
//! ```text
//! version (1 byte, = 1) | key id (1 byte) | payload | tag (16 bytes)
//! tag = HMAC-SHA256(secret[key id], version | key id | payload)[..16]
//! ```
//!
//! The payload is a small binary record (see `docs/tracking.md`). The click target URL is part
//! of the signed payload, so a tracker that only redirects to the URL of a verified token can
//! never be used as an open redirector.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;

/// Token format version written by [`TokenKeys::sign`]; anything else is rejected.
const VERSION: u8 = 1;
/// Bytes of the HMAC-SHA256 tag kept in the token (128 bits).
const TAG_LEN: usize = 16;
/// Shortest secret accepted, so a configuration typo cannot produce a guessable key.
pub const MIN_SECRET_LEN: usize = 16;
/// URLs at least this long are deflated when that makes them shorter.
const DEFLATE_MIN: usize = 96;
/// Upper bound on an inflated URL, far above the 4096-byte wrapping limit.
const INFLATE_MAX: u64 = 64 * 1024;

const FLAG_URL: u8 = 0x04;
const FLAG_NAME: u8 = 0x08;
const FLAG_DEFLATE: u8 = 0x10;
const FLAG_HEX_ID: u8 = 0x20;
const ACTION_MASK: u8 = 0x03;
const KNOWN_FLAGS: u8 = ACTION_MASK | FLAG_URL | FLAG_NAME | FLAG_DEFLATE | FLAG_HEX_ID;

/// What a tracking hit means; it decides which engagement event the tracker records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The top-of-body pixel (SparkPost `initial_open`).
    InitialOpen,
    /// The bottom-of-body pixel (SparkPost `open`).
    Open,
    /// A wrapped link; `link_index` is its 0-based position among the wrapped links of the
    /// message, so the tracker can tell links with the same URL apart.
    Click {
        /// 0-based index of the wrapped link within the message.
        link_index: u32,
    },
}

/// Everything a tracking token proves about a hit, so the tracker needs no database lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenData {
    /// petrel's per-recipient Signals `message_id` (20+ hex digits), which correlates the hit
    /// with the reception and delivery events of the same recipient.
    pub message_id: String,
    /// The recipient address, so engagement events carry `rcpt_to` without a lookup.
    pub recipient: String,
    /// Open, initial open, or click on which link.
    pub action: Action,
    /// The click target, exactly as written in the HTML after entity decoding. Signed, so the
    /// tracker only ever redirects to URLs that were in the message.
    pub url: Option<String>,
    /// The `data-msys-linkname` of the link, if the author named it.
    pub link_name: Option<String>,
    /// Unix time after which the token is refused (SparkPost: links live about a year).
    pub expires_unix: u64,
}

/// Why [`TokenKeys::new`] or [`TokenKeys::add_key`] refused a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Short secrets make the HMAC guessable.
    #[error("tracking key {id}: secret is {len} bytes, at least {MIN_SECRET_LEN} are required")]
    SecretTooShort {
        /// The key id.
        id: u8,
        /// The secret's length.
        len: usize,
    },
    /// Two secrets under one id would make verification ambiguous.
    #[error("tracking key {0} is already defined")]
    DuplicateId(u8),
}

/// Why a token was refused; distinct so the tracker can log and count each cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64url, too short, an unknown version or an undecodable payload.
    #[error("malformed tracking token: {0}")]
    Malformed(&'static str),
    /// The token names a key id this tracker does not have (retired or never configured).
    #[error("tracking token signed with unknown key id {0}")]
    UnknownKey(u8),
    /// The HMAC does not match: the token was altered or forged.
    #[error("tracking token signature mismatch")]
    BadSignature,
    /// The token is authentic but past its expiry.
    #[error("tracking token expired at {expired_at}")]
    Expired {
        /// The token's `expires_unix`.
        expired_at: u64,
    },
}

/// The HMAC keys of the tracking service: one current key signs, every key verifies.
///
/// Rotation: add the new key and make it current ([`TokenKeys::rotate`]); tokens already sent
/// keep verifying with the old key until it is removed ([`TokenKeys::retire`]), which should
/// wait until the old tokens have expired.
#[derive(Clone)]
pub struct TokenKeys {
    current: u8,
    keys: BTreeMap<u8, hmac::Key>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets.
        f.debug_struct("TokenKeys")
            .field("current", &self.current)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenKeys {
    /// A key set with a single key, which is also the signing key.
    pub fn new(id: u8, secret: &[u8]) -> Result<Self, KeyError> {
        let mut keys = TokenKeys {
            current: id,
            keys: BTreeMap::new(),
        };
        keys.add_key(id, secret)?;
        Ok(keys)
    }

    /// Adds a key that verifies tokens but does not sign (an older or a future key).
    pub fn add_key(&mut self, id: u8, secret: &[u8]) -> Result<(), KeyError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::SecretTooShort {
                id,
                len: secret.len(),
            });
        }
        if self.keys.contains_key(&id) {
            return Err(KeyError::DuplicateId(id));
        }
        self.keys
            .insert(id, hmac::Key::new(hmac::HMAC_SHA256, secret));
        Ok(())
    }

    /// Adds `id` and makes it the signing key; the previous keys keep verifying.
    pub fn rotate(&mut self, id: u8, secret: &[u8]) -> Result<(), KeyError> {
        self.add_key(id, secret)?;
        self.current = id;
        Ok(())
    }

    /// Removes a verification key so its tokens stop working. The current key cannot be
    /// retired (returns `false`), because then nothing could sign.
    pub fn retire(&mut self, id: u8) -> bool {
        id != self.current && self.keys.remove(&id).is_some()
    }

    /// The id of the key [`TokenKeys::sign`] uses, for logs and configuration checks.
    pub fn current_id(&self) -> u8 {
        self.current
    }

    /// Encodes and signs `data` into a URL-safe token (alphabet `A-Z a-z 0-9 - _`).
    pub fn sign(&self, data: &TokenData) -> String {
        let mut buf = Vec::with_capacity(
            64 + data.recipient.len() + data.url.as_ref().map_or(0, String::len),
        );
        buf.push(VERSION);
        buf.push(self.current);
        encode_payload(data, &mut buf);
        let key = &self.keys[&self.current];
        let tag = hmac::sign(key, &buf);
        buf.extend_from_slice(&tag.as_ref()[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(&buf)
    }

    /// Checks a token's signature and expiry and returns what it carries.
    ///
    /// The signature is checked before anything in the payload is trusted; the comparison is
    /// constant-time.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<TokenData, TokenError> {
        let raw = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| TokenError::Malformed("not base64url"))?;
        if raw.len() < 2 + TAG_LEN + 2 {
            return Err(TokenError::Malformed("too short"));
        }
        if raw[0] != VERSION {
            return Err(TokenError::Malformed("unknown version"));
        }
        let key_id = raw[1];
        let key = self
            .keys
            .get(&key_id)
            .ok_or(TokenError::UnknownKey(key_id))?;
        let (signed, tag) = raw.split_at(raw.len() - TAG_LEN);
        let expected = hmac::sign(key, signed);
        if !constant_time_eq(&expected.as_ref()[..TAG_LEN], tag) {
            return Err(TokenError::BadSignature);
        }
        let data = decode_payload(&signed[2..])?;
        if now_unix > data.expires_unix {
            return Err(TokenError::Expired {
                expired_at: data.expires_unix,
            });
        }
        Ok(data)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn is_lower_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        _ => b - b'a' + 10,
    }
}

/// Payload: flags | varint expiry | message id | recipient | [varint link index] | [url] | [name].
fn encode_payload(data: &TokenData, buf: &mut Vec<u8>) {
    let (action, link_index) = match data.action {
        Action::InitialOpen => (0u8, None),
        Action::Open => (1, None),
        Action::Click { link_index } => (2, Some(link_index)),
    };
    let hex_id = is_lower_hex(&data.message_id);
    let url_bytes = data.url.as_deref().map(|u| {
        if u.len() >= DEFLATE_MIN {
            if let Some(z) = deflate(u.as_bytes()).filter(|z| z.len() < u.len()) {
                return (true, z);
            }
        }
        (false, u.as_bytes().to_vec())
    });
    let mut flags = action;
    if hex_id {
        flags |= FLAG_HEX_ID;
    }
    if let Some((deflated, _)) = &url_bytes {
        flags |= FLAG_URL;
        if *deflated {
            flags |= FLAG_DEFLATE;
        }
    }
    if data.link_name.is_some() {
        flags |= FLAG_NAME;
    }
    buf.push(flags);
    put_varint(buf, data.expires_unix);
    if hex_id {
        // Two hex digits per byte; the digit count keeps odd lengths exact.
        let digits = data.message_id.as_bytes();
        put_varint(buf, digits.len() as u64);
        for pair in digits.chunks(2) {
            let hi = hex_val(pair[0]);
            let lo = pair.get(1).map_or(0, |&b| hex_val(b));
            buf.push(hi << 4 | lo);
        }
    } else {
        put_bytes(buf, data.message_id.as_bytes());
    }
    put_bytes(buf, data.recipient.as_bytes());
    if let Some(i) = link_index {
        put_varint(buf, u64::from(i));
    }
    if let Some((_, bytes)) = &url_bytes {
        put_bytes(buf, bytes);
    }
    if let Some(name) = &data.link_name {
        put_bytes(buf, name.as_bytes());
    }
}

fn deflate(data: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, TokenError> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or(TokenError::Malformed("truncated payload"))?;
        self.buf = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, TokenError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(TokenError::Malformed("varint too long"))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], TokenError> {
        let n = usize::try_from(n).map_err(|_| TokenError::Malformed("length"))?;
        if n > self.buf.len() {
            return Err(TokenError::Malformed("truncated payload"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], TokenError> {
        let n = self.varint()?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, TokenError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| TokenError::Malformed("invalid UTF-8"))
    }
}

fn decode_payload(buf: &[u8]) -> Result<TokenData, TokenError> {
    let mut r = Reader { buf };
    let flags = r.byte()?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(TokenError::Malformed("unknown flags"));
    }
    let expires_unix = r.varint()?;
    let message_id = if flags & FLAG_HEX_ID != 0 {
        let digits = r.varint()?;
        let packed = r.take(digits.div_ceil(2))?;
        let mut s = String::with_capacity(packed.len() * 2);
        for &b in packed {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 0x0f)]));
        }
        s.truncate(usize::try_from(digits).map_err(|_| TokenError::Malformed("length"))?);
        s
    } else {
        r.string()?
    };
    let recipient = r.string()?;
    let action = match flags & ACTION_MASK {
        0 => Action::InitialOpen,
        1 => Action::Open,
        2 => {
            let i = r.varint()?;
            Action::Click {
                link_index: u32::try_from(i).map_err(|_| TokenError::Malformed("link index"))?,
            }
        }
        _ => return Err(TokenError::Malformed("unknown action")),
    };
    let url = if flags & FLAG_URL != 0 {
        let b = r.bytes()?;
        let bytes = if flags & FLAG_DEFLATE != 0 {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(b)
                .take(INFLATE_MAX)
                .read_to_end(&mut out)
                .map_err(|_| TokenError::Malformed("bad deflate data"))?;
            out
        } else {
            b.to_vec()
        };
        Some(String::from_utf8(bytes).map_err(|_| TokenError::Malformed("invalid UTF-8"))?)
    } else {
        None
    };
    let link_name = if flags & FLAG_NAME != 0 {
        Some(r.string()?)
    } else {
        None
    };
    if !r.buf.is_empty() {
        return Err(TokenError::Malformed("trailing bytes"));
    }
    Ok(TokenData {
        message_id,
        recipient,
        action,
        url,
        link_name,
        expires_unix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET1: &[u8] = b"0123456789abcdef-first-secret";
    const SECRET2: &[u8] = b"fedcba9876543210-second-secret";

    fn click(url: &str) -> TokenData {
        TokenData {
            message_id: "0123456789abcdef0001".into(),
            recipient: "Fred@Example.com".into(),
            action: Action::Click { link_index: 7 },
            url: Some(url.into()),
            link_name: Some("Buy now".into()),
            expires_unix: 2_000_000_000,
        }
    }

    #[test]
    fn round_trip_all_actions() {
        let keys = TokenKeys::new(1, SECRET1).unwrap();
        for data in [
            click("https://example.com/a?b=1&c=2"),
            TokenData {
                action: Action::Open,
                url: None,
                link_name: None,
                ..click("")
            },
            TokenData {
                action: Action::InitialOpen,
                url: None,
                link_name: None,
                message_id: "odd1d".into(),
                ..click("")
            },
            TokenData {
                message_id: "NOT-HEX <id@host>".into(),
                ..click("http://x/é")
            },
            TokenData {
                message_id: "abc".into(),
                ..click("")
            },
        ] {
            let t = keys.sign(&data);
            assert!(t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(keys.verify(&t, 1_000).unwrap(), data);
        }
    }

    #[test]
    fn long_urls_are_deflated_and_round_trip() {
        let keys = TokenKeys::new(1, SECRET1).unwrap();
        let url = format!(
            "https://shop.example.com/campaign/spring?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_content={}",
            "x".repeat(300)
        );
        let t = keys.sign(&click(&url));
        assert!(
            t.len() < url.len(),
            "token {} vs url {}",
            t.len(),
            url.len()
        );
        assert_eq!(keys.verify(&t, 0).unwrap().url.as_deref(), Some(&url[..]));
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        let keys = TokenKeys::new(1, SECRET1).unwrap();
        let t = keys.sign(&click("https://example.com/"));
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            let orig = b[i];
            b[i] = *alphabet.iter().find(|&&c| c != orig).unwrap();
            let tampered = String::from_utf8(b).unwrap();
            assert!(keys.verify(&tampered, 0).is_err(), "position {i} accepted");
        }
        // A byte in the middle of the payload gives a signature error specifically.
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[6] ^= 0x01;
        assert_eq!(
            keys.verify(&URL_SAFE_NO_PAD.encode(&raw), 0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn expired_unknown_and_malformed() {
        let keys = TokenKeys::new(1, SECRET1).unwrap();
        let t = keys.sign(&click("https://example.com/"));
        assert_eq!(
            keys.verify(&t, 2_000_000_000).map(|d| d.expires_unix),
            Ok(2_000_000_000)
        );
        assert_eq!(
            keys.verify(&t, 2_000_000_001),
            Err(TokenError::Expired {
                expired_at: 2_000_000_000
            })
        );
        let other = TokenKeys::new(9, SECRET1).unwrap();
        assert_eq!(other.verify(&t, 0), Err(TokenError::UnknownKey(1)));
        assert!(matches!(keys.verify("", 0), Err(TokenError::Malformed(_))));
        assert!(matches!(
            keys.verify("!!!", 0),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            keys.verify("AQE", 0),
            Err(TokenError::Malformed(_))
        ));
        // Same id, different secret: a forgery.
        let forger = TokenKeys::new(1, SECRET2).unwrap();
        assert_eq!(forger.verify(&t, 0), Err(TokenError::BadSignature));
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_retired() {
        let mut keys = TokenKeys::new(1, SECRET1).unwrap();
        let old = keys.sign(&click("https://example.com/old"));
        keys.rotate(2, SECRET2).unwrap();
        assert_eq!(keys.current_id(), 2);
        let new = keys.sign(&click("https://example.com/new"));
        assert_eq!(URL_SAFE_NO_PAD.decode(&new).unwrap()[1], 2);
        assert_eq!(
            keys.verify(&old, 0).unwrap().url.as_deref(),
            Some("https://example.com/old")
        );
        assert!(keys.verify(&new, 0).is_ok());
        assert!(!keys.retire(2), "the signing key cannot be retired");
        assert!(keys.retire(1));
        assert_eq!(keys.verify(&old, 0), Err(TokenError::UnknownKey(1)));
    }

    #[test]
    fn key_validation() {
        assert!(matches!(
            TokenKeys::new(1, b"short"),
            Err(KeyError::SecretTooShort { id: 1, len: 5 })
        ));
        let mut keys = TokenKeys::new(1, SECRET1).unwrap();
        assert_eq!(keys.add_key(1, SECRET2), Err(KeyError::DuplicateId(1)));
        assert!(!format!("{keys:?}").contains("secret"));
    }
}
