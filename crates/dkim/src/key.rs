//! DKIM private keys and PowerMTA's key selection.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use rustls_pki_types::pem::{self, PemObject as _};
use rustls_pki_types::PrivateKeyDer;

use crate::der;
use crate::error::{DkimError, KeyProblem};
use crate::short_rsa::ShortRsaKey;

/// RFC 8301 §3.2: signers SHOULD use RSA keys of at least this many bits.
pub const RECOMMENDED_RSA_BITS: usize = 2048;

/// The DKIM signing algorithm, fixed by the key type.
///
/// Exists so callers can log or report what a key signs with; `rsa-sha1` is deliberately
/// absent (RFC 8301 forbids signing with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `a=rsa-sha256` (RFC 6376).
    RsaSha256,
    /// `a=ed25519-sha256` (RFC 8463).
    Ed25519Sha256,
}

impl Algorithm {
    /// The `a=` tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    /// The `k=` value of the DNS key record.
    pub fn key_type(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "rsa",
            Algorithm::Ed25519Sha256 => "ed25519",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) enum Secret {
    /// RSA of 2048 to 4096 bits, signed by `ring`.
    Rsa(RsaKeyPair),
    /// RSA of 1024 to 2047 bits, which `ring` refuses (see [`crate::short_rsa`]).
    ShortRsa(ShortRsaKey),
    Ed25519(Ed25519KeyPair),
}

/// A parsed DKIM private key with the selector and domain it signs for
/// (`domain-key SELECTOR,DOMAIN,FILE`).
///
/// Keys are parsed once, at configuration load, so a bad key file is reported to the
/// operator at startup rather than discovered on the first message. The key is immutable
/// and `Send + Sync`; share it between virtual MTAs with an `Arc`.
pub struct DkimKey {
    selector: String,
    /// `None` for `*` (any domain).
    domain: Option<String>,
    secret: Secret,
    bits: usize,
}

impl fmt::Debug for DkimKey {
    // Never print key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("selector", &self.selector)
            .field("domain", &self.domain.as_deref().unwrap_or("*"))
            .field("algorithm", &self.algorithm())
            .field("bits", &self.bits)
            .finish()
    }
}

impl DkimKey {
    /// Reads and parses the PEM private key in `path` for `selector` and `domain` (`*` for
    /// any domain).
    ///
    /// RSA keys may be PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`),
    /// 1024 to 4096 bits (see [`DkimKey::below_recommended_size`]); Ed25519 keys are PKCS#8 (as `openssl genpkey -algorithm ed25519`
    /// writes them). Every error names the file and says what is wrong with it.
    pub fn load(selector: &str, domain: &str, path: impl AsRef<Path>) -> Result<Self, DkimError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|err| DkimError::ReadKey {
            file: path.to_path_buf(),
            err,
        })?;
        Self::from_pem(selector, domain, &pem, path)
    }

    /// Parses a PEM private key already in memory. `origin` names where it came from (a
    /// file, or e.g. `X-DKIM-Key header`) and is used only in error messages.
    ///
    /// Exists for keys that do not come from a file, such as PowerMTA's `X-DKIM-Key`.
    pub fn from_pem(
        selector: &str,
        domain: &str,
        pem: &[u8],
        origin: impl AsRef<Path>,
    ) -> Result<Self, DkimError> {
        let bad = |problem| DkimError::BadKey {
            file: origin.as_ref().to_path_buf(),
            problem,
        };
        let selector = check_selector(selector)
            .ok_or_else(|| bad(KeyProblem::BadSelector(selector.to_string())))?;
        let domain = if domain.trim() == "*" {
            None
        } else {
            Some(
                normalize_domain(domain)
                    .ok_or_else(|| bad(KeyProblem::BadDomain(domain.to_string())))?,
            )
        };
        let (secret, bits) = parse_private_key(pem).map_err(bad)?;
        Ok(DkimKey {
            selector,
            domain,
            secret,
            bits,
        })
    }

    /// The selector (`s=`).
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The domain the key signs for (`d=`), or `None` for a `*` key, which signs as the
    /// message's own identity domain.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match self.secret {
            Secret::Rsa(_) | Secret::ShortRsa(_) => Algorithm::RsaSha256,
            Secret::Ed25519(_) => Algorithm::Ed25519Sha256,
        }
    }

    /// Whether this is an RSA key shorter than [`RECOMMENDED_RSA_BITS`]: legal DKIM that
    /// petrel signs with, but RFC 8301 recommends 2048 bits, so `check-config` warns.
    pub fn below_recommended_size(&self) -> bool {
        self.algorithm() == Algorithm::RsaSha256 && self.bits < RECOMMENDED_RSA_BITS
    }

    /// Key size in bits (the RSA modulus length; 256 for Ed25519), for logging.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The TXT record to publish at `SELECTOR._domainkey.DOMAIN`, e.g.
    /// `v=DKIM1; k=rsa; p=MIIBIjANBg…`.
    ///
    /// Exists so operators (and `petrel` tooling) can derive the DNS record from the
    /// private key instead of keeping a second file in sync.
    pub fn dns_record(&self) -> String {
        let p = match &self.secret {
            Secret::Rsa(k) => STANDARD.encode(der::rsa_spki(k.public().as_ref())),
            Secret::ShortRsa(k) => STANDARD.encode(der::rsa_spki(k.public_key_der())),
            Secret::Ed25519(k) => STANDARD.encode(k.public_key().as_ref()),
        };
        format!("v=DKIM1; k={}; p={p}", self.algorithm().key_type())
    }

    /// The DNS name the record goes under: `SELECTOR._domainkey.DOMAIN`. For a `*` key the
    /// domain is the one being signed for, so it must be given.
    pub fn dns_name(&self, signing_domain: &str) -> String {
        let domain = self.domain.as_deref().unwrap_or(signing_domain);
        format!("{}._domainkey.{domain}", self.selector)
    }

    /// Whether this key may sign for `identity_domain`: the key's domain equals it or is a
    /// parent of it, and `*` matches anything.
    pub fn matches(&self, identity_domain: &str) -> bool {
        let Some(key_domain) = &self.domain else {
            return true;
        };
        let id = identity_domain.trim();
        let id = id.rsplit('@').next().unwrap_or(id);
        let id = id.strip_suffix('.').unwrap_or(id);
        is_same_or_subdomain(id, key_domain)
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }
}

/// `child` equals `parent` or ends in `.parent`, ignoring ASCII case.
pub(crate) fn is_same_or_subdomain(child: &str, parent: &str) -> bool {
    let (c, p) = (child.as_bytes(), parent.as_bytes());
    if c.len() == p.len() {
        return c.eq_ignore_ascii_case(p);
    }
    c.len() > p.len()
        && c[c.len() - p.len()..].eq_ignore_ascii_case(p)
        && c[c.len() - p.len() - 1] == b'.'
}

/// Dot-separated labels of letters, digits, `-`, `_`; each 1..=63 bytes.
fn valid_labels(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn check_selector(selector: &str) -> Option<String> {
    let s = selector.trim();
    valid_labels(s, 253).then(|| s.to_string())
}

/// Lower-cases an ASCII domain, drops one trailing dot, and checks its syntax.
pub(crate) fn normalize_domain(domain: &str) -> Option<String> {
    let d = domain.trim();
    let d = d.strip_suffix('.').unwrap_or(d);
    valid_labels(d, 253).then(|| d.to_ascii_lowercase())
}

/// The `-----BEGIN X-----` labels present, for "found: …" in errors.
fn pem_labels(pem: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(pem);
    text.lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("-----BEGIN ")
                .and_then(|r| r.strip_suffix("-----"))
                .map(str::to_string)
        })
        .collect()
}

fn parse_private_key(pem: &[u8]) -> Result<(Secret, usize), KeyProblem> {
    let labels = pem_labels(pem);
    if labels.is_empty() {
        return Err(KeyProblem::NotPem);
    }
    if labels.iter().any(|l| l == "ENCRYPTED PRIVATE KEY") {
        return Err(KeyProblem::Encrypted);
    }
    let key = match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => key,
        Err(pem::Error::NoItemsFound) => return Err(KeyProblem::NoPrivateKey(labels.join(", "))),
        Err(e) => return Err(KeyProblem::Malformed(e.to_string())),
    };
    // Traditional OpenSSL encryption puts "Proc-Type: 4,ENCRYPTED" inside an RSA section;
    // the PEM parser cannot decode that body, so it fails above as malformed. Check anyway.
    if String::from_utf8_lossy(pem).contains("Proc-Type: 4,ENCRYPTED") {
        return Err(KeyProblem::Encrypted);
    }
    match key {
        PrivateKeyDer::Pkcs1(k) => rsa_from_pkcs1(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => {
            let der_bytes = k.secret_pkcs8_der();
            let info = der::pkcs8(der_bytes)
                .ok_or_else(|| KeyProblem::Malformed("not a PKCS#8 PrivateKeyInfo".into()))?;
            if info.algorithm == der::OID_RSA {
                let bits = rsa_bits(info.private_key)?;
                if bits < RECOMMENDED_RSA_BITS {
                    return Ok((
                        Secret::ShortRsa(ShortRsaKey::from_pkcs1(info.private_key)?),
                        bits,
                    ));
                }
                let key = RsaKeyPair::from_pkcs8(der_bytes)
                    .map_err(|e| KeyProblem::Rejected(e.to_string()))?;
                Ok((Secret::Rsa(key), bits))
            } else if info.algorithm == der::OID_ED25519 {
                // OpenSSL writes PKCS#8 v1 (no public key); ring's strict parser wants v2.
                let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der_bytes)
                    .map_err(|e| KeyProblem::Rejected(e.to_string()))?;
                Ok((Secret::Ed25519(key), 256))
            } else {
                Err(KeyProblem::UnsupportedType(algorithm_name(info.algorithm)))
            }
        }
        PrivateKeyDer::Sec1(_) => Err(KeyProblem::UnsupportedType(
            "EC (SEC1 \"EC PRIVATE KEY\")".into(),
        )),
        _ => Err(KeyProblem::UnsupportedType("unknown PEM key kind".into())),
    }
}

fn rsa_bits(pkcs1: &[u8]) -> Result<usize, KeyProblem> {
    let bits = der::rsa_modulus_bits(pkcs1)
        .ok_or_else(|| KeyProblem::Malformed("not an RSAPrivateKey".into()))?;
    if bits < 1024 {
        Err(KeyProblem::RsaTooShort(bits))
    } else if bits > 4096 {
        Err(KeyProblem::RsaSizeUnsupported(bits))
    } else {
        Ok(bits)
    }
}

fn rsa_from_pkcs1(pkcs1: &[u8]) -> Result<(Secret, usize), KeyProblem> {
    let bits = rsa_bits(pkcs1)?;
    if bits < RECOMMENDED_RSA_BITS {
        return Ok((Secret::ShortRsa(ShortRsaKey::from_pkcs1(pkcs1)?), bits));
    }
    let key = RsaKeyPair::from_der(pkcs1).map_err(|e| KeyProblem::Rejected(e.to_string()))?;
    Ok((Secret::Rsa(key), bits))
}

fn algorithm_name(oid: &[u8]) -> String {
    let dotted = der::oid_to_string(oid);
    let name = match dotted.as_str() {
        "1.2.840.10045.2.1" => "EC (ECDSA)",
        "1.3.101.113" => "Ed448",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.2.840.113549.1.1.10" => "RSA-PSS",
        "1.2.840.10040.4.1" => "DSA",
        _ => return format!("with OID {dotted}"),
    };
    format!("{name} (OID {dotted})")
}

/// The keys a message may be signed with, in PowerMTA's search order: the virtual MTA's
/// `domain-key`s first, then the global ones, each in configuration order.
///
/// Exists because key choice is "first match wins" over that combined list, and a parent
/// domain's key (or `*`) may sign for subdomains.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<Arc<DkimKey>>,
}

impl KeyRing {
    /// An empty ring (signs nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// The ring for one virtual MTA: its own keys, then the global keys. Keys are shared
    /// (`Arc`) because the global keys appear in every vmta's ring.
    pub fn layered(
        vmta_keys: impl IntoIterator<Item = Arc<DkimKey>>,
        global_keys: impl IntoIterator<Item = Arc<DkimKey>>,
    ) -> Self {
        KeyRing {
            keys: vmta_keys.into_iter().chain(global_keys).collect(),
        }
    }

    /// Appends a key at the end of the search order.
    pub fn push(&mut self, key: Arc<DkimKey>) {
        self.keys.push(key);
    }

    /// The first key whose domain equals or is a parent of `identity_domain` (`*` matches
    /// anything), or `None`: PowerMTA then sends the message unsigned.
    ///
    /// `identity_domain` is usually [`crate::signing_identity_domain`]'s answer; a full
    /// address (`user@domain`) is accepted too.
    pub fn select(&self, identity_domain: &str) -> Option<&DkimKey> {
        self.keys
            .iter()
            .map(Arc::as_ref)
            .find(|k| k.matches(identity_domain))
    }

    /// The keys in search order.
    pub fn iter(&self) -> impl Iterator<Item = &DkimKey> {
        self.keys.iter().map(Arc::as_ref)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring has no key (no message will be signed).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl FromIterator<Arc<DkimKey>> for KeyRing {
    fn from_iter<I: IntoIterator<Item = Arc<DkimKey>>>(iter: I) -> Self {
        KeyRing {
            keys: iter.into_iter().collect(),
        }
    }
}

/// Where test fixtures live, shared by the unit tests.
#[cfg(test)]
pub(crate) fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEL: &str = "mypmta";
    const DOM: &str = "pmta.signalsdemo.trymsys.net";
    const RSA_PEM: &str = "mypmta.pmta.signalsdemo.trymsys.net.pem";

    fn problem(r: Result<DkimKey, DkimError>) -> (std::path::PathBuf, KeyProblem, String) {
        match r {
            Err(e @ DkimError::BadKey { .. }) => {
                let msg = e.to_string();
                let DkimError::BadKey { file, problem } = e else {
                    unreachable!()
                };
                (file, problem, msg)
            }
            other => panic!("expected BadKey, got {other:?}"),
        }
    }

    fn published_p() -> String {
        let txt = std::fs::read_to_string(fixture("mypmta.dkim-dns.txt")).unwrap();
        let quoted = txt.split('"').nth(1).unwrap();
        quoted.to_string()
    }

    #[test]
    fn fixture_rsa_key_loads_and_matches_published_record() {
        let key = DkimKey::load(SEL, DOM, fixture(RSA_PEM)).unwrap();
        assert_eq!(key.algorithm(), Algorithm::RsaSha256);
        assert_eq!(key.bits(), 2048);
        assert_eq!(key.selector(), SEL);
        assert_eq!(key.domain(), Some(DOM));
        assert_eq!(key.dns_record(), published_p());
        assert_eq!(
            key.dns_name(DOM),
            "mypmta._domainkey.pmta.signalsdemo.trymsys.net"
        );
        // Debug must not leak the key.
        let dbg = format!("{key:?}");
        assert!(dbg.contains("mypmta") && !dbg.contains("MII"), "{dbg}");
    }

    #[test]
    fn pkcs1_form_of_the_same_key_loads() {
        let key = DkimKey::load(SEL, DOM, fixture("mypmta.pkcs1.pem")).unwrap();
        assert_eq!(key.dns_record(), published_p());
    }

    #[test]
    fn short_rsa_keys_load_in_both_forms_and_are_flagged() {
        let record = std::fs::read_to_string(fixture("rsa1024.dkim-record.txt")).unwrap();
        for file in ["rsa1024.pem", "rsa1024.pkcs1.pem"] {
            let key = DkimKey::load("old", DOM, fixture(file)).unwrap();
            assert_eq!(key.algorithm(), Algorithm::RsaSha256, "{file}");
            assert_eq!(key.bits(), 1024, "{file}");
            assert!(key.below_recommended_size(), "{file}");
            // The public key petrel derives is the one openssl wrote for the same key.
            assert_eq!(key.dns_record(), record.trim(), "{file}");
        }
        let odd = DkimKey::load("odd", DOM, fixture("rsa1100.pem")).unwrap();
        assert_eq!(odd.bits(), 1100);
        let record = std::fs::read_to_string(fixture("rsa1100.dkim-record.txt")).unwrap();
        assert_eq!(odd.dns_record(), record.trim());

        let full = DkimKey::load(SEL, DOM, fixture(RSA_PEM)).unwrap();
        assert!(!full.below_recommended_size());
        let ed = DkimKey::load("ed", DOM, fixture("ed25519-openssl.pem")).unwrap();
        assert!(!ed.below_recommended_size());
    }

    #[test]
    fn inconsistent_short_rsa_key_is_rejected() {
        // Swap one byte of the private exponent: the components no longer fit together.
        let pem = std::fs::read_to_string(fixture("rsa1024.pkcs1.pem")).unwrap();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut der = STANDARD.decode(b64).unwrap();
        let c = der::rsa_components(&der).unwrap();
        let d_at = c.d.as_ptr() as usize - der.as_ptr() as usize;
        der[d_at + 10] ^= 0x55;
        let broken = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
            STANDARD.encode(&der)
        );
        let (_, p, _) = problem(DkimKey::from_pem(SEL, DOM, broken.as_bytes(), "broken"));
        assert!(matches!(p, KeyProblem::Rejected(_)), "{p:?}");
    }

    #[test]
    fn openssl_ed25519_key_loads() {
        let key = DkimKey::load("ed", "Example.COM.", fixture("ed25519-openssl.pem")).unwrap();
        assert_eq!(key.algorithm(), Algorithm::Ed25519Sha256);
        assert_eq!(key.domain(), Some("example.com"));
        let p = std::fs::read_to_string(fixture("ed25519-openssl.pub.txt")).unwrap();
        assert_eq!(
            key.dns_record(),
            format!("v=DKIM1; k=ed25519; p={}", p.trim())
        );
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let (file, p, msg) = problem(DkimKey::load(SEL, DOM, fixture("mypmta.dkim-dns.txt")));
        assert_eq!(p, KeyProblem::NotPem);
        assert!(file.ends_with("mypmta.dkim-dns.txt"));
        assert!(
            msg.contains("mypmta.dkim-dns.txt") && msg.contains("not a PEM"),
            "{msg}"
        );

        let (_, p, msg) = problem(DkimKey::load(SEL, DOM, fixture("public-key.pem")));
        assert_eq!(p, KeyProblem::NoPrivateKey("PUBLIC KEY".into()));
        assert!(msg.contains("public-key.pem"), "{msg}");

        let (_, p, _) = problem(DkimKey::load(SEL, DOM, fixture("encrypted.pem")));
        assert_eq!(p, KeyProblem::Encrypted);

        let (_, p, msg) = problem(DkimKey::load(SEL, DOM, fixture("ec-p256.pem")));
        assert!(
            matches!(p, KeyProblem::UnsupportedType(ref t) if t.contains("EC")),
            "{p:?}"
        );
        assert!(msg.contains("unsupported key type"), "{msg}");

        let (_, p, _) = problem(DkimKey::load(SEL, DOM, fixture("ec-sec1.pem")));
        assert!(matches!(p, KeyProblem::UnsupportedType(_)), "{p:?}");

        let (_, p, msg) = problem(DkimKey::load(SEL, DOM, fixture("rsa512.pem")));
        assert_eq!(p, KeyProblem::RsaTooShort(512));
        assert!(msg.contains("shorter than 1024 bits"), "{msg}");

        let (_, p, _) = problem(DkimKey::load("bad selector", DOM, fixture(RSA_PEM)));
        assert!(matches!(p, KeyProblem::BadSelector(_)));
        let (_, p, _) = problem(DkimKey::load(SEL, "exa mple.com", fixture(RSA_PEM)));
        assert!(matches!(p, KeyProblem::BadDomain(_)));

        let garbled = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let (_, p, _) = problem(DkimKey::from_pem(SEL, DOM, garbled, "X-DKIM-Key header"));
        assert!(matches!(p, KeyProblem::Malformed(_)), "{p:?}");

        match DkimKey::load(SEL, DOM, fixture("does-not-exist.pem")) {
            Err(e @ DkimError::ReadKey { .. }) => {
                assert!(e.to_string().contains("does-not-exist.pem"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    fn key(domain: &str, selector: &str) -> Arc<DkimKey> {
        Arc::new(DkimKey::load(selector, domain, fixture("ed25519-openssl.pem")).unwrap())
    }

    #[test]
    fn select_first_match_parent_domains_and_star() {
        let ring = KeyRing::layered(
            [key("mail.example.com", "vmta"), key("example.org", "vmta2")],
            [
                key("example.com", "global"),
                key("*", "star"),
                key("example.org", "late"),
            ],
        );
        let sel = |d: &str| ring.select(d).map(DkimKey::selector);
        assert_eq!(sel("mail.example.com"), Some("vmta"));
        assert_eq!(sel("MAIL.Example.com."), Some("vmta"));
        assert_eq!(sel("a.mail.example.com"), Some("vmta"));
        assert_eq!(sel("example.com"), Some("global"));
        assert_eq!(sel("news.example.com"), Some("global"));
        assert_eq!(sel("user@news.example.com"), Some("global"));
        // vmta keys are searched before global keys.
        assert_eq!(sel("example.org"), Some("vmta2"));
        // A suffix that is not at a label boundary is not a parent.
        assert_eq!(sel("badexample.com"), Some("star"));
        assert_eq!(sel("anything.test"), Some("star"));

        let no_star = KeyRing::from_iter([key("example.com", "only")]);
        assert!(no_star.select("example.net").is_none());
        assert!(no_star.select("com").is_none());
        assert!(KeyRing::new().select("example.com").is_none());
        assert_eq!(ring.len(), 5);
    }
}
