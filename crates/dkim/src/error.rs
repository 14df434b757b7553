//! Typed errors, so the caller can tell a bad key file (config problem, report at load)
//! from a message that cannot be signed (log and send unsigned, or defer).

use std::path::PathBuf;

/// Why a key could not be loaded or a message could not be signed.
///
/// Key errors always name the file, because the operator has to go and fix that file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DkimError {
    /// The key file could not be read at all (missing, permissions…).
    #[error("DKIM key {}: cannot read the file: {err}", file.display())]
    ReadKey {
        /// The key file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        err: std::io::Error,
    },
    /// The key file was read but its content (or the selector/domain given with it) is unusable.
    #[error("DKIM key {}: {problem}", file.display())]
    BadKey {
        /// The key file (or a label such as `X-DKIM-Key header` for keys not from a file).
        file: PathBuf,
        /// What is wrong.
        problem: KeyProblem,
    },
    /// The key is for `*` and the message has no Sender/From domain (and no identity was
    /// given) to use as `d=`.
    #[error("cannot choose the DKIM signing domain: the key is for `*` and the message has no Sender or From address with a domain")]
    NoSigningDomain,
    /// The signing domain derived from the message for a `*` key is not a valid DNS name.
    #[error("cannot sign for domain {0:?}: not a valid ASCII domain name (d= must be an A-label domain)")]
    BadSigningDomain(String),
    /// The `i=` identity is malformed.
    #[error("invalid DKIM identity {0:?}: expected user@domain, @domain or domain")]
    BadIdentity(String),
    /// RFC 6376 §3.5: the `i=` domain must be the `d=` domain or a subdomain of it.
    #[error(
        "DKIM identity {identity:?} is not in the signing domain {domain} or one of its subdomains"
    )]
    IdentityOutsideDomain {
        /// The identity (`i=`).
        identity: String,
        /// The signing domain (`d=`).
        domain: String,
    },
    /// A `dkim-headers` entry is not a header field name.
    #[error("dkim-headers entry {0:?} is not a header field name")]
    BadHeaderName(String),
    /// A `/regex/` `dkim-headers` entry: petrel does not support header patterns.
    #[error("dkim-headers entry {0:?} is a /regex/ pattern; petrel only supports header names")]
    HeaderPattern(String),
    /// RFC 6376 §5.4: the From header field MUST be signed, so a message without one cannot be.
    #[error("the message has no From header field; RFC 6376 requires From to be signed")]
    NoFrom,
    /// The crypto library refused to sign (should not happen with a key that loaded).
    #[error("the signing operation failed")]
    Signing,
}

/// What is wrong with a key file's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// No `-----BEGIN` line at all.
    #[error("not a PEM file (no \"-----BEGIN\" line)")]
    NotPem,
    /// PEM, but the sections found are not private keys (e.g. a certificate or public key).
    #[error("the PEM file holds no private key (found: {0})")]
    NoPrivateKey(String),
    /// `ENCRYPTED PRIVATE KEY`: petrel has no passphrase to decrypt it.
    #[error(
        "the private key is encrypted; store it unencrypted (openssl pkey -in KEY -out KEY.pem)"
    )]
    Encrypted,
    /// The PEM structure or the DER inside it is broken.
    #[error("malformed key: {0}")]
    Malformed(String),
    /// A valid key of a type DKIM cannot sign with (EC P-256, Ed448, RSA-PSS…).
    #[error("unsupported key type {0}; DKIM signs with RSA (rsa-sha256) or Ed25519 (ed25519-sha256) keys")]
    UnsupportedType(String),
    /// RFC 8301 §3.2: signers MUST use RSA keys of at least 1024 bits.
    #[error("RSA key is {0} bits; RFC 8301 forbids DKIM keys shorter than 1024 bits")]
    RsaTooShort(usize),
    /// Above 4096 bits: RFC 8301 verifiers need only handle keys up to 4096 bits, so such a
    /// signature may be ignored by receivers.
    #[error("RSA key is {0} bits; petrel signs with RSA keys of 1024 to 4096 bits (RFC 8301 verifiers need not check larger ones; 2048 is recommended)")]
    RsaSizeUnsupported(usize),
    /// The crypto library rejected the key (inconsistent components, public exponent below
    /// 65537 for `ring`…).
    #[error("key rejected by the crypto library: {0}")]
    Rejected(String),
    /// The selector given in `domain-key` is not a valid selector.
    #[error(
        "invalid selector {0:?}: expected dot-separated labels of letters, digits, '-' or '_'"
    )]
    BadSelector(String),
    /// The domain given in `domain-key` is not a valid domain or `*`.
    #[error("invalid domain {0:?}: expected an ASCII domain name or *")]
    BadDomain(String),
}
