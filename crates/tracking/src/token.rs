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

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;

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
/// A click on an unsubscribe link; its subaccount follows the link index.
const FLAG_UNSUBSCRIBE: u8 = 0x40;
const ACTION_MASK: u8 = 0x03;
const KNOWN_FLAGS: u8 =
    ACTION_MASK | FLAG_URL | FLAG_NAME | FLAG_DEFLATE | FLAG_HEX_ID | FLAG_UNSUBSCRIBE;

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
    /// For a link marked `data-msys-unsubscribe="1"`: the subaccount (0 = the primary
    /// account) whose mail the recipient leaves by following it, so the tracker can record
    /// `link_unsubscribe` and suppress the recipient without a lookup. `None` for every other
    /// link; pixels never carry it ([`TokenKeys::sign`] leaves it out of them).
    pub unsubscribe: Option<u64>,
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
        let mut signer =
            RecipientSigner::new(self, &data.message_id, &data.recipient, data.expires_unix);
        let link = Link {
            url: data.url.as_deref(),
            name: data.link_name.as_deref(),
            unsubscribe: data.unsubscribe,
        };
        let raw = signer.raw_token(data.action, &link);
        URL_SAFE_NO_PAD.encode(raw)
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

/// What a token says about the link it wraps (all `None` for pixels).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Link<'a> {
    /// The target URL.
    pub url: Option<&'a str>,
    /// The `data-msys-linkname`.
    pub name: Option<&'a str>,
    /// The subaccount of an unsubscribe link (see [`TokenData::unsubscribe`]).
    pub unsubscribe: Option<u64>,
}

/// Signs the tokens of one message for one recipient, exactly like [`TokenKeys::sign`] (which
/// uses it too). A message has dozens of links: the payload fields they all share (expiry,
/// message id, recipient) are encoded once, the signing key is looked up once, and one
/// buffer is reused.
pub(crate) struct RecipientSigner<'k> {
    key: &'k hmac::Key,
    key_id: u8,
    /// [`FLAG_HEX_ID`] when the message id is packed as hex digits, else 0.
    id_flag: u8,
    /// `varint expiry | message id | recipient`, as in every payload.
    common: Vec<u8>,
    /// The binary token being built.
    buf: Vec<u8>,
}

impl<'k> RecipientSigner<'k> {
    pub(crate) fn new(
        keys: &'k TokenKeys,
        message_id: &str,
        recipient: &str,
        expires_unix: u64,
    ) -> Self {
        let mut common = Vec::with_capacity(16 + message_id.len() + recipient.len());
        put_varint(&mut common, expires_unix);
        let hex_id = is_lower_hex(message_id);
        if hex_id {
            // Two hex digits per byte; the digit count keeps odd lengths exact.
            let digits = message_id.as_bytes();
            put_varint(&mut common, digits.len() as u64);
            for pair in digits.chunks(2) {
                let hi = hex_val(pair[0]);
                let lo = pair.get(1).map_or(0, |&b| hex_val(b));
                common.push(hi << 4 | lo);
            }
        } else {
            put_bytes(&mut common, message_id.as_bytes());
        }
        put_bytes(&mut common, recipient.as_bytes());
        RecipientSigner {
            key: &keys.keys[&keys.current],
            key_id: keys.current,
            id_flag: if hex_id { FLAG_HEX_ID } else { 0 },
            common,
            buf: Vec::with_capacity(256),
        }
    }

    /// Appends the token for `action` to `out` (with what it says about the link, for
    /// clicks).
    pub(crate) fn append_token(&mut self, action: Action, link: &Link<'_>, out: &mut Vec<u8>) {
        let raw = self.raw_token(action, link);
        let start = out.len();
        // Unpadded base64: 4 characters per 3 bytes, 2 or 3 for a final partial group.
        out.resize(start + (4 * raw.len()).div_ceil(3), 0);
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut out[start..])
            .expect("output sized for the encoding");
        out.truncate(start + written);
    }

    /// The binary token (before base64): `version | key id | flags | common | [link index] |
    /// [unsubscribe subaccount] | [url] | [link name] | tag`.
    fn raw_token(&mut self, action: Action, link: &Link<'_>) -> &[u8] {
        let (mut flags, link_index) = match action {
            Action::InitialOpen => (0u8, None),
            Action::Open => (1, None),
            Action::Click { link_index } => (2, Some(link_index)),
        };
        flags |= self.id_flag;
        let buf = &mut self.buf;
        buf.clear();
        buf.extend_from_slice(&[VERSION, self.key_id, 0]);
        buf.extend_from_slice(&self.common);
        if let Some(i) = link_index {
            put_varint(buf, u64::from(i));
            // Only a click can unsubscribe.
            if let Some(sub) = link.unsubscribe {
                flags |= FLAG_UNSUBSCRIBE;
                put_varint(buf, sub);
            }
        }
        if let Some(url) = link.url {
            flags |= FLAG_URL;
            if put_url(buf, url) {
                flags |= FLAG_DEFLATE;
            }
        }
        if let Some(name) = link.name {
            flags |= FLAG_NAME;
            put_bytes(buf, name.as_bytes());
        }
        // Whether the URL is deflated is only known once it is written: flags come last.
        buf[2] = flags;
        let tag = hmac::sign(self.key, buf);
        buf.extend_from_slice(&tag.as_ref()[..TAG_LEN]);
        buf
    }
}

/// Writes the URL field: raw-deflated when the URL is at least [`DEFLATE_MIN`] bytes and
/// deflating makes it shorter (then returns `true`), else as is.
fn put_url(buf: &mut Vec<u8>, url: &str) -> bool {
    if url.len() < DEFLATE_MIN {
        put_bytes(buf, url.as_bytes());
        return false;
    }
    URL_DEFLATER.with_borrow_mut(|d| match d.deflated_if_shorter(url.as_bytes()) {
        Some(z) => {
            put_bytes(buf, z);
            true
        }
        None => {
            put_bytes(buf, url.as_bytes());
            false
        }
    })
}

thread_local! {
    static URL_DEFLATER: RefCell<UrlDeflater> = RefCell::new(UrlDeflater::default());
}

/// Deflates long URLs for tokens, remembering recent results.
///
/// Deflating a 100-byte URL at the best level costs about 10 µs, more than everything else
/// done for that link: miniz clears ~300 KB of tables per stream (and allocating them fresh
/// costs page faults on top). A message goes out once per recipient with the same links, so
/// each thread keeps one compressor and remembers the outcome for the URLs it has seen. The
/// output is byte for byte what a fresh `DeflateEncoder` produces (tested), so tokens do not
/// change.
#[derive(Default)]
struct UrlDeflater {
    compressor: Option<flate2::Compress>,
    /// The compressor's output buffer, kept to avoid an allocation per URL.
    out: Vec<u8>,
    /// URL → deflated URL, or `None` when deflating does not make it shorter.
    memo: HashMap<Box<[u8]>, Option<Box<[u8]>>>,
    /// Bytes held by `memo`, kept below [`UrlDeflater::MEMO_MAX_BYTES`].
    memo_bytes: usize,
}

impl UrlDeflater {
    /// Memory each thread may spend on remembered URLs (thousands of typical links).
    const MEMO_MAX_BYTES: usize = 1 << 20;

    fn deflated_if_shorter(&mut self, url: &[u8]) -> Option<&[u8]> {
        // Only link-sized URLs are remembered: one odd huge URL must not take the memory.
        if url.len() > Self::MEMO_MAX_BYTES / 64 {
            return self.deflate(url).filter(|z| z.len() < url.len());
        }
        if !self.memo.contains_key(url) {
            let z: Option<Box<[u8]>> = self
                .deflate(url)
                .filter(|z| z.len() < url.len())
                .map(Box::from);
            let size = url.len() + z.as_deref().map_or(0, <[u8]>::len) + 64;
            if self.memo_bytes + size > Self::MEMO_MAX_BYTES {
                // Simpler than an LRU and good enough: campaigns reuse a few dozen links.
                self.memo.clear();
                self.memo_bytes = 0;
            }
            self.memo_bytes += size;
            self.memo.insert(url.into(), z);
        }
        self.memo.get(url).and_then(|z| z.as_deref())
    }

    /// Raw deflate at the best level, fed like `flate2::write::DeflateEncoder` does
    /// (`write_all`, then `finish`), so the output is the same.
    fn deflate(&mut self, data: &[u8]) -> Option<&[u8]> {
        use flate2::{Compress, Compression, FlushCompress, Status};
        let c = self
            .compressor
            .get_or_insert_with(|| Compress::new(Compression::best(), false));
        c.reset();
        self.out.clear();
        let mut input = data;
        let mut finishing = false;
        // Every round has room to make progress; the bound only guards against looping forever.
        for _ in 0..data.len() / 256 + 64 {
            self.out.reserve(input.len() + 1024);
            let flush = if finishing {
                FlushCompress::Finish
            } else {
                FlushCompress::None
            };
            let before = c.total_in();
            let status = c.compress_vec(input, &mut self.out, flush).ok()?;
            input = input.get(usize::try_from(c.total_in() - before).ok()?..)?;
            if finishing && status == Status::StreamEnd {
                return Some(&self.out);
            }
            finishing = input.is_empty();
        }
        None
    }
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
    let unsubscribe = match (flags & FLAG_UNSUBSCRIBE != 0, action) {
        (false, _) => None,
        (true, Action::Click { .. }) => Some(r.varint()?),
        (true, _) => return Err(TokenError::Malformed("unsubscribe flag on a pixel")),
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
        unsubscribe,
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
            unsubscribe: None,
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
            TokenData {
                unsubscribe: Some(0),
                ..click("https://example.com/unsub?u=1")
            },
            TokenData {
                unsubscribe: Some(300),
                link_name: None,
                ..click("https://example.com/unsub?u=2")
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

    /// Tokens signed by the original implementation: the format must not drift, and the
    /// faster signing path (shared payload prefix, reused compressor) must not change a byte.
    #[test]
    fn tokens_are_byte_for_byte_stable() {
        let keys = TokenKeys::new(5, b"golden-secret-0123456789abcdef").unwrap();
        let long = format!(
            "https://shop.example.com/campaign/spring?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_content={}",
            "x".repeat(40)
        );
        let data =
            |id: &str, rcpt: &str, action, url: Option<String>, name: Option<&str>| TokenData {
                message_id: id.into(),
                recipient: rcpt.into(),
                action,
                url,
                link_name: name.map(str::to_owned),
                unsubscribe: None,
                expires_unix: 2_000_000_000,
            };
        let id = "0123456789abcdef0042";
        let cases = [
            (
                data(id, "fred@example.org", Action::InitialOpen, None, None),
                "AQUggKjWuQcUASNFZ4mrze8AQhBmcmVkQGV4YW1wbGUub3JnjSnIEJX8oEoG9fOWygR65g",
            ),
            (
                data(id, "fred@example.org", Action::Open, None, None),
                "AQUhgKjWuQcUASNFZ4mrze8AQhBmcmVkQGV4YW1wbGUub3JnUDb3Qc0YA_zgJuKgl0Sc9w",
            ),
            (
                data(
                    "0123456789abcdef004",
                    "Fred@Example.org",
                    Action::Click { link_index: 3 },
                    Some("https://example.com/a?b=1&c=2".into()),
                    None,
                ),
                "AQUmgKjWuQcTASNFZ4mrze8AQBBGcmVkQEV4YW1wbGUub3JnAx1odHRwczovL2V4YW1wbGUuY29tL2E_Yj0xJmM9Mm_F5Z4OtoTm5Ra181u-3YI",
            ),
            (
                data(
                    "<id@host>",
                    "fred@example.org",
                    Action::Click { link_index: 300 },
                    Some(long),
                    Some("Buy & save"),
                ),
                "AQUegKjWuQcJPGlkQGhvc3Q-EGZyZWRAZXhhbXBsZS5vcmesAlqNy8sKgCAQheG3aZn7QHqUEDuk4IzijOTjd5H2ndXhgz-oFlmMkZDLjO6oJMw-k_H3dfFgI6VGPtamtElu1cMyTklQRZ0eJeyxkQW5mF74UjvSYZkVrLb_3AUKQnV5ICYgc2F2ZVAadBfi2XYhv-KwT2CDqmA",
            ),
            (
                data(
                    id,
                    "fred@example.org",
                    Action::Click { link_index: 0 },
                    Some(format!("https://x.example/{}", "ab".repeat(60))),
                    Some("\u{e9}"),
                ),
                "AQU-gKjWuQcUASNFZ4mrze8AQhBmcmVkQGV4YW1wbGUub3JnACHFwcEJAAAEBdCN_LttKOVAKQ7GN4aez1QzsGQrWWEQ_XECw6ndey4N_lMAIMn5jdncEOo_",
            ),
        ];
        // Twice: the second round takes the remembered deflate results.
        for _ in 0..2 {
            for (d, expected) in &cases {
                assert_eq!(keys.sign(d), *expected);
                let mut signer =
                    RecipientSigner::new(&keys, &d.message_id, &d.recipient, d.expires_unix);
                let mut out = b"prefix/".to_vec();
                let link = Link {
                    url: d.url.as_deref(),
                    name: d.link_name.as_deref(),
                    unsubscribe: d.unsubscribe,
                };
                signer.append_token(d.action, &link, &mut out);
                assert_eq!(out, [&b"prefix/"[..], expected.as_bytes()].concat());
            }
        }
    }

    /// The deflate `flate2::write::DeflateEncoder` gives at the best level: what tokens used
    /// before the compressor was reused.
    fn fresh_deflate(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reused_compressor_and_memo_match_a_fresh_encoder() {
        let mut deflater = UrlDeflater::default();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut urls: Vec<Vec<u8>> = Vec::new();
        for n in 0..200 {
            let url: Vec<u8> = if n % 2 == 0 {
                // Short and random-looking: deflating does not pay.
                let len = 96 + (next() % 64) as usize;
                (0..len).map(|_| b'!' + (next() % 90) as u8).collect()
            } else {
                // Longer and repetitive (some too big to be remembered): deflating pays.
                let len = 96 + (next() % 1200) as usize + if n % 50 == 1 { 20_000 } else { 0 };
                let words: [&[u8]; 4] = [b"utm_source=", b"news", b"&id=", b"/p/"];
                let mut url = b"https://example.com/".to_vec();
                while url.len() < len {
                    url.extend_from_slice(words[(next() % 4) as usize]);
                    url.push(b'a' + (next() % 26) as u8);
                }
                url
            };
            urls.push(url);
        }
        // New URLs each round, each looked up twice (computed, then remembered): enough to
        // fill the memo, so it gets cleared and refilled.
        let (mut cleared, mut shorter, mut not_shorter) = (0, 0, 0);
        for round in 0..12u8 {
            for url in &mut urls {
                url.push(b'0' + round);
                let fresh = fresh_deflate(url);
                let expected = (fresh.len() < url.len()).then_some(&fresh[..]);
                if expected.is_some() {
                    shorter += 1;
                } else {
                    not_shorter += 1;
                }
                let before = deflater.memo_bytes;
                assert_eq!(deflater.deflated_if_shorter(url), expected, "round {round}");
                cleared += usize::from(deflater.memo_bytes < before);
                assert_eq!(deflater.deflated_if_shorter(url), expected, "round {round}");
                assert!(deflater.memo_bytes <= UrlDeflater::MEMO_MAX_BYTES);
            }
        }
        assert!(cleared >= 1, "the memo was never cleared");
        assert!(
            shorter > 100 && not_shorter > 100,
            "{shorter} / {not_shorter}"
        );
    }

    /// Only a click can unsubscribe: an authentic token whose unsubscribe flag sits on a
    /// pixel is refused, and signing drops the field from pixels.
    #[test]
    fn unsubscribe_is_for_clicks_only() {
        let keys = TokenKeys::new(1, SECRET1).unwrap();
        let unsub = TokenData {
            unsubscribe: Some(5),
            link_name: None,
            ..click("https://example.com/u")
        };
        let mut raw = URL_SAFE_NO_PAD.decode(keys.sign(&unsub)).unwrap();
        raw.truncate(raw.len() - TAG_LEN);
        raw[2] = (raw[2] & !ACTION_MASK) | 1;
        let tag = hmac::sign(&keys.keys[&1], &raw);
        raw.extend_from_slice(&tag.as_ref()[..TAG_LEN]);
        assert_eq!(
            keys.verify(&URL_SAFE_NO_PAD.encode(&raw), 0),
            Err(TokenError::Malformed("unsubscribe flag on a pixel"))
        );
        let pixel = TokenData {
            action: Action::Open,
            url: None,
            ..unsub
        };
        assert_eq!(
            keys.verify(&keys.sign(&pixel), 0).unwrap().unsubscribe,
            None
        );
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
