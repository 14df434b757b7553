//! petrel-dkim: DKIM signing for petrel's outbound mail.
//!
//! PowerMTA signs every outbound message whose `<domain>` says `dkim-sign yes` and for which
//! a matching `domain-key` exists. This crate does that job and nothing else: it loads the
//! private keys ([`DkimKey`]), picks the key for a message the way PowerMTA does
//! ([`KeyRing::select`], [`signing_identity_domain`]) and computes the `DKIM-Signature`
//! header field ([`sign`]) with relaxed/relaxed canonicalization (RFC 6376) and RSA-SHA256
//! or Ed25519-SHA256 (RFC 8463).
//!
//! It is written directly on `ring` (already linked through rustls) instead of pulling in
//! a full DKIM/DNS stack, because signing needs no DNS and no verification. `ring` refuses
//! RSA keys under 2048 bits, which RFC 8301 still allows; those are signed with RustCrypto's
//! constant-time `rsa` crate (`short_rsa`), so a sender's existing 1024-bit key keeps working.
//!
//! Everything except [`DkimKey::load`] is a pure function of its arguments: no clock, no
//! files, no network. The caller passes the current time, so tests are deterministic.
//!
//! Signing must be the very last change made to a message: any header or body edit made
//! after [`sign`] (tracking rewrite, header removal, `include-headers-from`) breaks the
//! signature at the receiver.

mod canon;
mod der;
mod error;
mod key;
mod short_rsa;
mod sign;

pub use error::{DkimError, KeyProblem};
pub use key::{Algorithm, DkimKey, KeyRing, RECOMMENDED_RSA_BITS};
pub use sign::{
    sign, signing_identity_domain, SignOptions, ALWAYS_SIGNED_HEADERS, NEVER_SIGNED_HEADERS,
};
