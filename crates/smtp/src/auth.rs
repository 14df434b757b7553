//! SASL helpers for AUTH PLAIN and AUTH LOGIN (RFC 4954, RFC 4616).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use thiserror::Error;

/// Why a SASL response could not be read; the session answers `501 5.5.2`.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    /// Not valid base64.
    #[error("cannot decode base64 response")]
    Base64,
    /// Decoded, but not of the mechanism's form.
    #[error("malformed SASL response")]
    Malformed,
    /// The client sent `*` to cancel the exchange (`501 5.0.0`).
    #[error("authentication cancelled")]
    Cancelled,
}

/// The three fields of a PLAIN response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainCredentials {
    /// Authorization identity (often empty).
    pub authzid: String,
    /// Authentication identity: the user name checked against `<smtp-user>`.
    pub authcid: String,
    /// The password.
    pub password: String,
}

/// Decodes one base64 line of a SASL exchange; `*` cancels, `=` is the empty response.
pub fn decode_base64_line(line: &str) -> Result<Vec<u8>, AuthError> {
    let line = line.trim();
    if line == "*" {
        return Err(AuthError::Cancelled);
    }
    if line == "=" || line.is_empty() {
        return Ok(Vec::new());
    }
    STANDARD.decode(line).map_err(|_| AuthError::Base64)
}

/// Parses a decoded PLAIN response: `authzid NUL authcid NUL password`.
pub fn parse_plain_response(decoded: &[u8]) -> Result<PlainCredentials, AuthError> {
    let mut parts = decoded.split(|&b| b == 0);
    let (Some(z), Some(c), Some(p), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| AuthError::Malformed);
    let creds = PlainCredentials {
        authzid: text(z)?,
        authcid: text(c)?,
        password: text(p)?,
    };
    if creds.authcid.is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(creds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_round_trip() {
        let d = decode_base64_line("AHVzZXIAcGFzcw==").unwrap();
        let c = parse_plain_response(&d).unwrap();
        assert_eq!(c.authcid, "user");
        assert_eq!(c.password, "pass");
        assert_eq!(c.authzid, "");
    }

    #[test]
    fn bad_inputs() {
        assert_eq!(decode_base64_line("*"), Err(AuthError::Cancelled));
        assert_eq!(decode_base64_line("!!!"), Err(AuthError::Base64));
        assert_eq!(parse_plain_response(b"nouser"), Err(AuthError::Malformed));
        assert_eq!(parse_plain_response(b"\0\0pw"), Err(AuthError::Malformed));
    }
}
