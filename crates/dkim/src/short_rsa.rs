//! RSA keys of 1024 to 2047 bits, which `ring` refuses to sign with.
//!
//! RFC 8301 lets signers use 1024-bit keys (it only recommends 2048), and many senders still
//! publish them. Refusing them would send their mail unsigned, so these keys are signed with
//! RustCrypto's `rsa` 0.10 instead: pure Rust, built on `crypto-bigint`'s constant-time
//! Montgomery arithmetic, with base, exponent and CRT-modulus blinding from the system RNG
//! and a fault check (the signature is verified with the public exponent before it is
//! returned). Keys of 2048 bits and more keep using `ring`. `docs/dkim.md` explains the
//! choice.
//!
//! Only the private-key operation of RSASSA-PKCS1-v1_5 is used: no decryption and no
//! depadding of attacker-chosen input, which is where the remaining RSA side-channel
//! advisories of the `rsa` crate (RUSTSEC-2023-0071, the Marvin attack) live.

use ring::digest;
use rsa::{BoxedUint, Pkcs1v15Sign, PrivateKey};

use crate::der;
use crate::error::{DkimError, KeyProblem};

/// A parsed 1024–2047-bit RSA private key and its public key (for the DNS record).
pub(crate) struct ShortRsaKey {
    key: PrivateKey,
    /// DER `RSAPublicKey` (n, e).
    public: Vec<u8>,
}

impl ShortRsaKey {
    /// Builds the key from a PKCS#1 `RSAPrivateKey` (also the inside of a PKCS#8 RSA key).
    /// The caller has already checked the modulus size.
    pub(crate) fn from_pkcs1(pkcs1: &[u8]) -> Result<Self, KeyProblem> {
        let c = der::rsa_components(pkcs1)
            .ok_or_else(|| KeyProblem::Malformed("not a two-prime PKCS#1 RSAPrivateKey".into()))?;
        let rejected = |what: &str| KeyProblem::Rejected(format!("RSA key: {what}"));
        // Every secret value gets the modulus' width, as the crate's own PKCS#1 decoder does,
        // so no limb count depends on the size of a secret number.
        let width = bits_of(c.n);
        let int = |bytes: &[u8], bits: u32| {
            BoxedUint::from_be_slice(bytes, bits).map_err(|_| rejected("integer out of range"))
        };
        let key = PrivateKey::from_components(
            int(c.n, width)?,
            int(c.e, bits_of(c.e))?,
            int(c.d, width)?,
            vec![int(c.p, width)?, int(c.q, width)?],
        )
        .map_err(|e| rejected(&e.to_string()))?;
        Ok(ShortRsaKey {
            key,
            public: der::rsa_public_key(c.n, c.e),
        })
    }

    /// DER `RSAPublicKey`, for the `p=` tag of the DNS record.
    pub(crate) fn public_key_der(&self) -> &[u8] {
        &self.public
    }

    /// `RSASSA-PKCS1-v1_5` with SHA-256 over `data` (RFC 6376 `rsa-sha256`).
    pub(crate) fn sign(&self, data: &[u8]) -> Result<Vec<u8>, DkimError> {
        let hash = digest::digest(&digest::SHA256, data);
        // `sign` blinds with the operating system's RNG (the crate's `getrandom` feature).
        self.key
            .sign(Pkcs1v15Sign::new::<rsa::sha2::Sha256>(), hash.as_ref())
            .map_err(|_| DkimError::Signing)
    }
}

/// Whole bytes times eight: the precision `BoxedUint` is given for a big-endian magnitude.
fn bits_of(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.len()).unwrap_or(u32::MAX / 8) * 8
}
