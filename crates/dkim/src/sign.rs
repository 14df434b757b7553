//! Building the `DKIM-Signature` header field (RFC 6376 §5, RFC 8463).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::digest;
use ring::rand::SystemRandom;
use ring::signature::RSA_PKCS1_SHA256;

use crate::canon::{self, Field};
use crate::error::DkimError;
use crate::key::{is_same_or_subdomain, normalize_domain, DkimKey, Secret};

/// Header fields PowerMTA always signs when the message has them (pmta-spec §2.6.7).
///
/// Public so configuration tooling and docs can show exactly what is covered.
pub const ALWAYS_SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Sender",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-ID",
    "Content-Description",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Owner",
    "List-Post",
    "List-Subscribe",
    "List-Unsubscribe",
    "List-Archive",
    "List-Help",
    "Resent-Date",
    "Resent-From",
    "Resent-Message-ID",
    "Resent-Sender",
    "Resent-To",
    "Resent-Cc",
];

/// Header fields never signed, even when named in `dkim-headers`: relays add or rewrite
/// them in transit (Received, Return-Path), or they must not be visible (Bcc), so signing
/// them would only break the signature.
pub const NEVER_SIGNED_HEADERS: &[&str] = &[
    "Bcc",
    "Keywords",
    "Return-Path",
    "Comments",
    "Received",
    "DKIM-Signature",
    "Resent-Bcc",
];

/// The per-queue signing settings (`dkim-identity`, `dkim-headers`, `dkim-add-body-limit`,
/// `dkim-add-timestamp`, `dkim-expire-after`).
///
/// Kept separate from the key because the same key signs with different settings in
/// different `<domain>` blocks. `Default` is PowerMTA's default: no `i=`, no extra headers,
/// no `l=`, `t=` or `x=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignOptions {
    /// The `i=` tag: `user@domain`, `@domain` or `domain` (taken as `@domain`). Its domain
    /// must be the signing domain or a subdomain of it. `None` emits no `i=`.
    pub identity: Option<String>,
    /// Extra header names to sign (`dkim-headers`), on top of [`ALWAYS_SIGNED_HEADERS`].
    /// Names in [`NEVER_SIGNED_HEADERS`] are ignored; `/regex/` entries are an error.
    pub extra_headers: Vec<String>,
    /// Add `l=` (the signed body length). Lets a forwarder append a footer without breaking
    /// the signature, at the price of letting anyone append anything.
    pub body_length_limit: bool,
    /// Add `t=` (signing time).
    pub timestamp: bool,
    /// Add `x=` (expiry) this long after the signing time.
    pub expire_after: Option<Duration>,
}

impl SignOptions {
    /// Checks the options without a message, so configuration loading can reject a bad
    /// `dkim-headers` or `dkim-identity` instead of every message failing to sign later.
    pub fn validate(&self) -> Result<(), DkimError> {
        extra_header_names(&self.extra_headers)?;
        if let Some(identity) = &self.identity {
            Identity::parse(identity)?;
        }
        Ok(())
    }
}

/// The domain PowerMTA signs as by default (`dkim-identity sender-or-from`): the domain of
/// the Sender address, else of the From address, lower-cased. `None` when neither has a
/// usable domain.
///
/// Exists because key selection ([`crate::KeyRing::select`]) starts from this domain.
pub fn signing_identity_domain(message: &[u8]) -> Option<String> {
    identity_domain_of(&canon::parse(message).fields)
}

fn identity_domain_of(fields: &[Field<'_>]) -> Option<String> {
    ["Sender", "From"].iter().find_map(|name| {
        fields
            .iter()
            .find(|f| f.is(name))
            .and_then(|f| address_domain(f.value))
    })
}

/// The domain of the first address in a Sender/From value: the angle-addr if there is one,
/// else the first token with an `@`; comments and quoted strings are skipped.
fn address_domain(value: &[u8]) -> Option<String> {
    let mut cleaned = Vec::with_capacity(value.len());
    let (mut depth, mut quoted) = (0usize, false);
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        i += 1;
        if quoted {
            match b {
                b'\\' => i += 1,
                b'"' => quoted = false,
                _ => {}
            }
        } else if depth > 0 {
            match b {
                b'\\' => i += 1,
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
        } else {
            match b {
                b'"' => quoted = true,
                b'(' => {
                    depth = 1;
                    cleaned.push(b' ');
                }
                _ => cleaned.push(b),
            }
        }
    }
    let addr: &[u8] = match cleaned.iter().position(|&b| b == b'<') {
        Some(lt) => {
            let after = &cleaned[lt + 1..];
            &after[..after.iter().position(|&b| b == b'>').unwrap_or(after.len())]
        }
        None => cleaned
            .split(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b',' | b';'))
            .find(|t| t.contains(&b'@'))?,
    };
    let at = addr.iter().rposition(|&b| b == b'@')?;
    let domain = std::str::from_utf8(&addr[at + 1..]).ok()?.trim();
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
    if domain.is_empty() || domain.contains(bad) {
        return None;
    }
    Some(domain.to_ascii_lowercase())
}

/// A parsed `i=` value.
struct Identity {
    local: String,
    domain: String,
}

impl Identity {
    fn parse(raw: &str) -> Result<Self, DkimError> {
        let bad = || DkimError::BadIdentity(raw.to_string());
        let s = raw.trim();
        let s = s
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(s);
        let (local, domain) = match s.rfind('@') {
            Some(at) => (&s[..at], &s[at + 1..]),
            None => ("", s),
        };
        if local.contains(['\r', '\n']) {
            return Err(bad());
        }
        let domain = normalize_domain(domain).ok_or_else(bad)?;
        Ok(Identity {
            local: local.to_string(),
            domain,
        })
    }

    /// The `i=` tag value, in dkim-quoted-printable (RFC 6376 §2.11) so a local part with
    /// `;`, `=`, spaces or 8-bit bytes cannot break the tag list.
    fn tag_value(&self) -> String {
        let mut out = String::new();
        for &b in self.local.as_bytes() {
            if matches!(b, 0x21..=0x3a | 0x3c | 0x3e..=0x7e) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("={b:02X}"));
            }
        }
        out.push('@');
        out.push_str(&self.domain);
        out
    }
}

/// Validates `dkim-headers` names: a field name is printable ASCII without `:` (RFC 5322).
fn extra_header_names(extra: &[String]) -> Result<Vec<&str>, DkimError> {
    let mut names = Vec::with_capacity(extra.len());
    for raw in extra {
        let name = raw.trim();
        if name.len() >= 2 && name.starts_with('/') && name.ends_with('/') {
            return Err(DkimError::HeaderPattern(raw.clone()));
        }
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b':')
        {
            return Err(DkimError::BadHeaderName(raw.clone()));
        }
        names.push(name);
    }
    Ok(names)
}

fn in_list(list: &[&str], name: &[u8]) -> bool {
    list.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(name))
}

/// The fields to sign, top to bottom: every field whose name is in the built-in set or
/// the extras and not in the never-signed set. A name that occurs N times is here N times.
fn fields_to_sign<'a>(fields: &[Field<'a>], extras: &[&str]) -> Vec<Field<'a>> {
    fields
        .iter()
        .filter(|f| {
            (in_list(ALWAYS_SIGNED_HEADERS, f.name) || in_list(extras, f.name))
                && !in_list(NEVER_SIGNED_HEADERS, f.name)
        })
        .copied()
        .collect()
}

/// RFC 6376 §5.4.2: for each name in `h=`, in order, the field to hash. The k-th
/// occurrence of a name in `h=` takes the k-th field of that name counting from the
/// bottom of the header block; a name with no field left yields `None` (hashed as nothing).
pub(crate) fn signed_fields<'a>(fields: &[Field<'a>], h: &[&[u8]]) -> Vec<Option<Field<'a>>> {
    h.iter()
        .enumerate()
        .map(|(j, name)| {
            let k = h[..j]
                .iter()
                .filter(|n| n.eq_ignore_ascii_case(name))
                .count();
            fields
                .iter()
                .rev()
                .filter(|f| f.name.eq_ignore_ascii_case(name))
                .nth(k)
                .copied()
        })
        .collect()
}

/// The longest line, in characters, excluding CRLF (RFC 5322 §2.1.1's recommended limit).
const MAX_LINE: usize = 78;
/// How lines are folded: CRLF and one tab.
const FOLD: &str = "\r\n\t";

/// Accumulates the header field, folding between tags (and inside `h=` and `b=`, where
/// RFC 6376 allows folding whitespace) so no line exceeds [`MAX_LINE`].
struct Folder {
    out: String,
    col: usize,
}

impl Folder {
    fn new(name: &str) -> Self {
        let out = format!("{name}:");
        Folder {
            col: out.len(),
            out,
        }
    }

    fn fold(&mut self) {
        self.out.push_str(FOLD);
        self.col = 1;
    }

    /// Appends an unbreakable piece, preceded by a space when `space`, folding first if it
    /// would not fit. A piece longer than a line goes on a line of its own.
    fn atom(&mut self, s: &str, space: bool) {
        let sep = usize::from(space);
        if self.col + sep + s.len() <= MAX_LINE {
            if space {
                self.out.push(' ');
            }
            self.col += sep;
        } else {
            self.fold();
        }
        self.out.push_str(s);
        self.col += s.len();
    }

    /// Starts the `b=` tag on a line of its own, where its value (which may be broken
    /// anywhere) has the most room.
    fn open_on_new_line(&mut self, prefix: &str) {
        self.fold();
        self.out.push_str(prefix);
        self.col += prefix.len();
    }

    /// Appends `value` (base64, so it may be broken anywhere), folding at line ends.
    fn fill(&mut self, value: &str) {
        let mut rest = value;
        while !rest.is_empty() {
            let avail = MAX_LINE.saturating_sub(self.col);
            if avail == 0 {
                self.fold();
                continue;
            }
            let take = avail.min(rest.len());
            // Base64 is ASCII, so any byte index is a char boundary.
            self.out.push_str(&rest[..take]);
            self.col += take;
            rest = &rest[take..];
        }
    }
}

/// Signs `message` with `key` and returns the complete `DKIM-Signature: …` header field to
/// put in front of the message: folded at 78 columns with CRLF + tab between lines, and no
/// trailing CRLF (the caller adds one when prepending).
///
/// Canonicalization is relaxed/relaxed; the algorithm follows the key (`rsa-sha256` or
/// `ed25519-sha256`). `d=` is the key's domain, or for a `*` key the identity's domain
/// (the `i=` domain if given, else [`signing_identity_domain`]). `h=` lists, in message
/// order, every field present from [`ALWAYS_SIGNED_HEADERS`] and `opts.extra_headers`
/// (a name present N times is listed N times). `now` gives `t=` and `x=`.
///
/// The message may use CRLF or bare-LF line ends (both are signed as CRLF, the form it is
/// transmitted in) and may have 8-bit content. Signing must be the last change made to it.
pub fn sign(
    message: &[u8],
    key: &DkimKey,
    opts: &SignOptions,
    now: SystemTime,
) -> Result<String, DkimError> {
    let extras = extra_header_names(&opts.extra_headers)?;
    let identity = opts.identity.as_deref().map(Identity::parse).transpose()?;
    let msg = canon::parse(message);

    let domain = match key.domain() {
        Some(d) => d.to_string(),
        None => {
            let wanted = match &identity {
                Some(id) => id.domain.clone(),
                None => identity_domain_of(&msg.fields).ok_or(DkimError::NoSigningDomain)?,
            };
            normalize_domain(&wanted).ok_or(DkimError::BadSigningDomain(wanted))?
        }
    };
    if let Some(id) = &identity {
        if !is_same_or_subdomain(&id.domain, &domain) {
            return Err(DkimError::IdentityOutsideDomain {
                identity: id.tag_value(),
                domain,
            });
        }
    }

    let to_sign = fields_to_sign(&msg.fields, &extras);
    if !to_sign.iter().any(|f| f.is("From")) {
        return Err(DkimError::NoFrom);
    }
    let h: Vec<&[u8]> = to_sign.iter().map(|f| f.name).collect();
    let (body_hash, body_len) = canon::body_hash(msg.body);
    let secs = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();

    let mut f = Folder::new("DKIM-Signature");
    f.atom("v=1;", true);
    f.atom(&format!("a={};", key.algorithm().as_str()), true);
    f.atom("c=relaxed/relaxed;", true);
    f.atom(&format!("d={domain};"), true);
    f.atom(&format!("s={};", key.selector()), true);
    if let Some(id) = &identity {
        f.atom(&format!("i={};", id.tag_value()), true);
    }
    if opts.timestamp {
        f.atom(&format!("t={secs};"), true);
    }
    if let Some(after) = opts.expire_after {
        // RFC 6376 §3.5: x= must be later than t=.
        let x = secs.saturating_add(after.as_secs().max(1));
        f.atom(&format!("x={x};"), true);
    }
    if opts.body_length_limit {
        f.atom(&format!("l={body_len};"), true);
    }
    for (i, name) in h.iter().enumerate() {
        let name = String::from_utf8_lossy(name);
        let prefix = if i == 0 { "h=" } else { "" };
        let sep = if i + 1 == h.len() { ";" } else { ":" };
        f.atom(&format!("{prefix}{name}{sep}"), i == 0);
    }
    f.atom(
        &format!("bh={};", STANDARD.encode(body_hash.as_ref())),
        true,
    );
    f.open_on_new_line("b=");

    // RFC 6376 §3.7: the selected fields in h= order, then this field with an empty b=
    // and no trailing CRLF.
    let mut data = Vec::with_capacity(1024);
    for field in signed_fields(&msg.fields, &h).into_iter().flatten() {
        canon::relaxed_header(field.name, field.value, &mut data);
        data.extend_from_slice(b"\r\n");
    }
    let own_value = &f.out.as_bytes()["DKIM-Signature:".len()..];
    canon::relaxed_header(b"DKIM-Signature", own_value, &mut data);

    let signature = match key.secret() {
        Secret::Rsa(k) => {
            let mut sig = vec![0u8; k.public().modulus_len()];
            k.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &data, &mut sig)
                .map_err(|_| DkimError::Signing)?;
            sig
        }
        Secret::ShortRsa(k) => k.sign(&data)?,
        // RFC 8463 §3: Ed25519 (PureEdDSA) over the SHA-256 hash of the data.
        Secret::Ed25519(k) => k
            .sign(digest::digest(&digest::SHA256, &data).as_ref())
            .as_ref()
            .to_vec(),
    };
    f.fill(&STANDARD.encode(signature));
    Ok(f.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::fixture;

    fn h_of(message: &[u8], extras: &[&str]) -> String {
        let msg = canon::parse(message);
        fields_to_sign(&msg.fields, extras)
            .iter()
            .map(|f| String::from_utf8_lossy(f.name).into_owned())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Unfolds the field and returns its tags as (name, value without WSP).
    fn tags(header: &str) -> Vec<(String, String)> {
        let value = header.strip_prefix("DKIM-Signature:").unwrap();
        value
            .split(';')
            .filter(|t| !t.trim().is_empty())
            .map(|t| {
                let (k, v) = t.split_once('=').unwrap();
                let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect();
                (strip(k), strip(v))
            })
            .collect()
    }

    fn tag(header: &str, name: &str) -> Option<String> {
        tags(header)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn rsa_key() -> DkimKey {
        DkimKey::load(
            "mypmta",
            "pmta.signalsdemo.trymsys.net",
            fixture("mypmta.pmta.signalsdemo.trymsys.net.pem"),
        )
        .unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const MSG: &[u8] = b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Return-Path: <bounce@pmta.signalsdemo.trymsys.net>\r\n\
From: Joe <joe@pmta.signalsdemo.trymsys.net>\r\n\
To: suzie@example.net\r\n\
Bcc: hidden@example.net\r\n\
Subject: hello\r\n\
X-Campaign: 42\r\n\
Received: from c by d; Mon, 1 Jan 2024 00:00:01 +0000\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Message-ID: <1@pmta.signalsdemo.trymsys.net>\r\n\
\r\n\
Hi.\r\n";

    #[test]
    fn header_selection_follows_the_built_in_set_and_never_list() {
        assert_eq!(h_of(MSG, &[]), "From:To:Subject:Date:Message-ID");
        // Extras are added; never-signed names stay out even when asked for.
        assert_eq!(
            h_of(
                MSG,
                &["x-campaign", "Received", "BCC", "Return-Path", "X-Absent"]
            ),
            "From:To:Subject:X-Campaign:Date:Message-ID"
        );
    }

    #[test]
    fn repeated_fields_are_listed_n_times_and_hashed_bottom_up() {
        let m = b"Resent-To: first\r\nFrom: f@x.example\r\nResent-To: second\r\n\
Subject: s\r\nResent-To: third\r\n\r\n";
        assert_eq!(h_of(m, &[]), "Resent-To:From:Resent-To:Subject:Resent-To");
        let msg = canon::parse(m);
        let h: Vec<&[u8]> = vec![
            b"Resent-To",
            b"From",
            b"resent-to",
            b"Subject",
            b"Resent-To",
            b"To",
        ];
        let picked: Vec<Option<&[u8]>> = signed_fields(&msg.fields, &h)
            .into_iter()
            .map(|f| f.map(|f| f.value))
            .collect();
        assert_eq!(
            picked,
            vec![
                Some(&b" third"[..]),
                Some(b" f@x.example"),
                Some(b" second"),
                Some(b" s"),
                Some(b" first"),
                None, // a name with no field left is hashed as nothing
            ]
        );
    }

    #[test]
    fn folding_keeps_lines_short_and_tags_intact() {
        let mut extra: Vec<String> = (0..12).map(|i| format!("X-Long-Header-Name-{i}")).collect();
        extra.push("X-Campaign".into());
        let mut m = MSG.to_vec();
        let mut head = Vec::new();
        for name in &extra {
            head.extend_from_slice(format!("{name}: v\r\n").as_bytes());
        }
        m.splice(0..0, head);
        let opts = SignOptions {
            identity: Some("bounces@news.pmta.signalsdemo.trymsys.net".into()),
            extra_headers: extra,
            body_length_limit: true,
            timestamp: true,
            expire_after: Some(Duration::from_secs(86400)),
        };
        let sig = sign(&m, &rsa_key(), &opts, at(1_700_000_000)).unwrap();
        assert!(
            sig.starts_with("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;"),
            "{sig}"
        );
        assert!(!sig.ends_with('\n') && !sig.ends_with('\r'));
        let lines: Vec<&str> = sig.split("\r\n").collect();
        assert!(lines.len() > 5);
        for (i, line) in lines.iter().enumerate() {
            assert!(
                line.len() <= MAX_LINE,
                "line {i} is {} long: {line:?}",
                line.len()
            );
            assert!(!line.contains(['\r', '\n']));
            if i > 0 {
                assert!(line.starts_with('\t'), "{line:?}");
            }
        }
        let names: Vec<String> = tags(&sig).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            ["v", "a", "c", "d", "s", "i", "t", "x", "l", "h", "bh", "b"]
        );
        assert_eq!(tag(&sig, "d").unwrap(), "pmta.signalsdemo.trymsys.net");
        assert_eq!(
            tag(&sig, "i").unwrap(),
            "bounces@news.pmta.signalsdemo.trymsys.net"
        );
        assert_eq!(tag(&sig, "t").unwrap(), "1700000000");
        assert_eq!(tag(&sig, "x").unwrap(), "1700086400");
        assert_eq!(tag(&sig, "l").unwrap(), "5"); // "Hi.\r\n"
        assert!(tag(&sig, "h")
            .unwrap()
            .starts_with("X-Long-Header-Name-0:X-Long-Header-Name-1:"));
        assert!(tag(&sig, "h")
            .unwrap()
            .ends_with(":From:To:Subject:X-Campaign:Date:Message-ID"));
        assert_eq!(tag(&sig, "b").unwrap().len(), 344); // 256-byte RSA signature
    }

    #[test]
    fn short_signature_fits_expected_shape() {
        let sig = sign(MSG, &rsa_key(), &SignOptions::default(), at(0)).unwrap();
        assert_eq!(tag(&sig, "h").unwrap(), "From:To:Subject:Date:Message-ID");
        assert_eq!(tag(&sig, "s").unwrap(), "mypmta");
        assert!(tag(&sig, "i").is_none() && tag(&sig, "t").is_none() && tag(&sig, "l").is_none());
        // RSA PKCS#1 v1.5 is deterministic: same input, same signature.
        assert_eq!(
            sig,
            sign(MSG, &rsa_key(), &SignOptions::default(), at(0)).unwrap()
        );
    }

    #[test]
    fn identity_rules() {
        let key = rsa_key();
        let with = |id: &str| SignOptions {
            identity: Some(id.into()),
            ..SignOptions::default()
        };
        let sig = sign(MSG, &key, &with("pmta.signalsdemo.trymsys.net"), at(0)).unwrap();
        assert_eq!(tag(&sig, "i").unwrap(), "@pmta.signalsdemo.trymsys.net");
        let sig = sign(
            MSG,
            &key,
            &with("a;b c@PMTA.signalsdemo.trymsys.net"),
            at(0),
        )
        .unwrap();
        assert_eq!(
            tag(&sig, "i").unwrap(),
            "a=3Bb=20c@pmta.signalsdemo.trymsys.net"
        );
        assert!(matches!(
            sign(MSG, &key, &with("joe@example.com"), at(0)),
            Err(DkimError::IdentityOutsideDomain { .. })
        ));
        assert!(matches!(
            sign(MSG, &key, &with("joe@"), at(0)),
            Err(DkimError::BadIdentity(_))
        ));
        assert!(with("x@[1.2.3.4]").validate().is_err());
    }

    #[test]
    fn star_key_signs_as_the_sender_or_from_domain() {
        let key = DkimKey::load("any", "*", fixture("ed25519-openssl.pem")).unwrap();
        let m = b"From: a@From.Example\r\nSender: b@list.sender.example\r\n\r\n";
        let sig = sign(m, &key, &SignOptions::default(), at(0)).unwrap();
        assert_eq!(tag(&sig, "d").unwrap(), "list.sender.example");
        assert_eq!(tag(&sig, "a").unwrap(), "ed25519-sha256");
        let opts = SignOptions {
            identity: Some("@other.example".into()),
            ..SignOptions::default()
        };
        let sig = sign(m, &key, &opts, at(0)).unwrap();
        assert_eq!(tag(&sig, "d").unwrap(), "other.example");
        let no_domain = b"From: undisclosed-recipients:;\r\n\r\n";
        assert!(matches!(
            sign(no_domain, &key, &SignOptions::default(), at(0)),
            Err(DkimError::NoSigningDomain)
        ));
    }

    #[test]
    fn refusals() {
        let key = rsa_key();
        assert!(matches!(
            sign(
                b"To: a@b.example\r\n\r\nx",
                &key,
                &SignOptions::default(),
                at(0)
            ),
            Err(DkimError::NoFrom)
        ));
        let opts = |h: &str| SignOptions {
            extra_headers: vec![h.into()],
            ..SignOptions::default()
        };
        assert!(matches!(
            sign(MSG, &key, &opts("/^X-/"), at(0)),
            Err(DkimError::HeaderPattern(_))
        ));
        assert!(matches!(
            sign(MSG, &key, &opts("X:Y"), at(0)),
            Err(DkimError::BadHeaderName(_))
        ));
        assert!(opts("X-Ok").validate().is_ok());
        assert!(opts("").validate().is_err());
    }

    #[test]
    fn identity_domain_sender_or_from() {
        let d = |m: &str| signing_identity_domain(m.as_bytes());
        assert_eq!(
            d("From: Joe <joe@Example.COM>\r\n\r\n").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            d("From: a@from.example\r\nSender: \"x@y\" <s@Sender.example.>\r\n\r\n").as_deref(),
            Some("sender.example")
        );
        // Sender without a usable domain falls back to From.
        assert_eq!(
            d("Sender: nobody\r\nFrom: a@from.example\r\n\r\n").as_deref(),
            Some("from.example")
        );
        assert_eq!(
            d("From: joe@x.example (Joe @ home)\r\n\r\n").as_deref(),
            Some("x.example")
        );
        assert_eq!(
            d("From: \"Doe, <J@fake.example>\" <j@real.example>\r\n\r\n").as_deref(),
            Some("real.example")
        );
        assert_eq!(
            d("From: Joe\r\n <joe@folded.example>\n\n").as_deref(),
            Some("folded.example")
        );
        assert_eq!(
            d("From: a@b.example, c@d.example\r\n\r\n").as_deref(),
            Some("b.example")
        );
        assert_eq!(d("From: joe@[192.0.2.1]\r\n\r\n"), None);
        assert_eq!(d("To: a@b.example\r\n\r\n"), None);
    }

    /// RFC 8463 Appendix A: the published Ed25519 signature verifies over our header
    /// canonicalization, which proves the relaxed header form, the bottom-up / missing-field
    /// rules and the "Ed25519 over SHA-256" construction against an independent vector.
    #[test]
    fn rfc8463_vector_verifies_over_our_canonicalization() {
        use ring::signature::{UnparsedPublicKey, ED25519};
        let message = b"From: Joe SixPack <joe@football.example.com>\r\n\
To: Suzie Q <suzie@shopping.example.net>\r\n\
Subject: Is dinner ready?\r\n\
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n\
Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n\
\r\n\
Hi.\r\n\
\r\n\
We lost the game.  Are you hungry yet?\r\n\
\r\n\
Joe.\r\n";
        let sig_value = " v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n \
d=football.example.com; i=@football.example.com;\r\n \
q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n \
subject : date : message-id : from : subject : date;\r\n \
bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n \
b=";
        let b = "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==";
        let public = STANDARD
            .decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
            .unwrap();

        let msg = canon::parse(message);
        let (bh, _) = canon::body_hash(msg.body);
        assert_eq!(
            STANDARD.encode(bh.as_ref()),
            "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
        );
        let h: Vec<&[u8]> = vec![
            b"from",
            b"to",
            b"subject",
            b"date",
            b"message-id",
            b"from",
            b"subject",
            b"date",
        ];
        let mut data = Vec::new();
        for f in signed_fields(&msg.fields, &h).into_iter().flatten() {
            canon::relaxed_header(f.name, f.value, &mut data);
            data.extend_from_slice(b"\r\n");
        }
        canon::relaxed_header(b"DKIM-Signature", sig_value.as_bytes(), &mut data);
        let hash = digest::digest(&digest::SHA256, &data);
        UnparsedPublicKey::new(&ED25519, &public)
            .verify(hash.as_ref(), &STANDARD.decode(b).unwrap())
            .expect("RFC 8463 signature must verify");
    }
}
