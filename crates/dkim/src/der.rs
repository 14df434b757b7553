//! Just enough DER to look inside a private key before handing it to `ring`.
//!
//! `ring` answers "rejected" for every bad key; reading the algorithm OID and the RSA modulus
//! size ourselves lets the error say *what* is wrong (an EC key, a 1024-bit RSA key…).
//! It also builds the SubjectPublicKeyInfo published in the DNS `p=` tag.

/// DER tags used here.
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const NULL: u8 = 0x05;
pub(crate) const OID: u8 = 0x06;
pub(crate) const SEQUENCE: u8 = 0x30;

/// rsaEncryption, 1.2.840.113549.1.1.1.
pub(crate) const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-Ed25519, 1.3.101.112.
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Reads one TLV: `(tag, content, rest)`. `None` when the input is not DER.
pub(crate) fn next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Reads one TLV and checks its tag.
pub(crate) fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match next(input)? {
        (t, content, rest) if t == tag => Some((content, rest)),
        _ => None,
    }
}

/// What the PKCS#8 `PrivateKeyInfo` says: the algorithm OID and the inner private key.
pub(crate) struct Pkcs8<'a> {
    pub(crate) algorithm: &'a [u8],
    pub(crate) private_key: &'a [u8],
}

/// Parses `PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING, … }`.
pub(crate) fn pkcs8(der: &[u8]) -> Option<Pkcs8<'_>> {
    let (info, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(info, INTEGER)?;
    let (alg_id, rest) = expect(rest, SEQUENCE)?;
    let (algorithm, _params) = expect(alg_id, OID)?;
    let (private_key, _) = expect(rest, OCTET_STRING)?;
    Some(Pkcs8 {
        algorithm,
        private_key,
    })
}

/// Bit length of the modulus of a PKCS#1 `RSAPrivateKey ::= SEQUENCE { version, n, … }`.
pub(crate) fn rsa_modulus_bits(pkcs1: &[u8]) -> Option<usize> {
    let (key, _) = expect(pkcs1, SEQUENCE)?;
    let (_version, rest) = expect(key, INTEGER)?;
    let (n, _) = expect(rest, INTEGER)?;
    let first = n.iter().position(|&b| b != 0)?;
    let lead = n[first].leading_zeros() as usize;
    Some((n.len() - first) * 8 - lead)
}

/// The integers of a two-prime PKCS#1 `RSAPrivateKey`, big-endian without leading zero
/// bytes: `n`, `e`, `d`, `p`, `q` (the CRT values are recomputed by the signer).
pub(crate) struct RsaComponents<'a> {
    pub(crate) n: &'a [u8],
    pub(crate) e: &'a [u8],
    pub(crate) d: &'a [u8],
    pub(crate) p: &'a [u8],
    pub(crate) q: &'a [u8],
}

/// Parses `RSAPrivateKey ::= SEQUENCE { version 0, n, e, d, p, q, … }`. `None` for anything
/// else, including multi-prime keys (version 1), which DKIM signers never produce.
pub(crate) fn rsa_components(pkcs1: &[u8]) -> Option<RsaComponents<'_>> {
    let (key, _) = expect(pkcs1, SEQUENCE)?;
    let (version, rest) = expect(key, INTEGER)?;
    if version != [0] {
        return None;
    }
    let mut rest = rest;
    let mut int = || {
        let (value, after) = expect(rest, INTEGER)?;
        rest = after;
        let first = value.iter().position(|&b| b != 0)?;
        Some(&value[first..])
    };
    Some(RsaComponents {
        n: int()?,
        e: int()?,
        d: int()?,
        p: int()?,
        q: int()?,
    })
}

/// DER of `RSAPublicKey ::= SEQUENCE { n, e }` from big-endian magnitudes, the input of
/// [`rsa_spki`].
pub(crate) fn rsa_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(n.len() + e.len() + 8);
    for magnitude in [n, e] {
        // A DER INTEGER is signed: a set top bit needs a leading zero byte.
        let mut content = Vec::with_capacity(magnitude.len() + 1);
        if magnitude.first().is_none_or(|&b| b & 0x80 != 0) {
            content.push(0);
        }
        content.extend_from_slice(magnitude);
        push_tlv(&mut body, INTEGER, &content);
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    push_tlv(&mut out, SEQUENCE, &body);
    out
}

/// Dotted form of an OID, for error messages.
pub(crate) fn oid_to_string(oid: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let (x, y) = if acc < 80 {
                    (acc / 40, acc % 40)
                } else {
                    (2, acc - 80)
                };
                parts.push(x);
                parts.push(y);
            } else {
                parts.push(acc);
            }
            acc = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Appends a DER TLV to `out`.
fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

/// Wraps a PKCS#1 `RSAPublicKey` in a `SubjectPublicKeyInfo`, the form DKIM `p=` records
/// use in practice (and every verifier accepts).
pub(crate) fn rsa_spki(rsa_public_key: &[u8]) -> Vec<u8> {
    let mut alg = Vec::new();
    push_tlv(&mut alg, OID, OID_RSA);
    push_tlv(&mut alg, NULL, &[]);
    let mut alg_seq = Vec::new();
    push_tlv(&mut alg_seq, SEQUENCE, &alg);
    let mut bits = Vec::with_capacity(rsa_public_key.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(rsa_public_key);
    push_tlv(&mut alg_seq, BIT_STRING, &bits);
    let mut spki = Vec::new();
    push_tlv(&mut spki, SEQUENCE, &alg_seq);
    spki
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_strings() {
        assert_eq!(oid_to_string(OID_RSA), "1.2.840.113549.1.1.1");
        assert_eq!(oid_to_string(OID_ED25519), "1.3.101.112");
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
            "1.2.840.10045.2.1"
        );
    }

    #[test]
    fn long_lengths_round_trip() {
        let mut out = Vec::new();
        push_tlv(&mut out, OCTET_STRING, &[7u8; 300]);
        assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (content, rest) = expect(&out, OCTET_STRING).unwrap();
        assert_eq!(content.len(), 300);
        assert!(rest.is_empty());
    }

    #[test]
    fn truncated_input_is_rejected() {
        assert!(next(&[0x30, 0x05, 0x01]).is_none());
        assert!(next(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_none());
        assert!(next(&[]).is_none());
    }
}
