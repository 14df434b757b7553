//! Enhanced status codes (RFC 3463) and the text gloss PowerMTA writes after them.

use std::fmt;
use std::str::FromStr;

/// An RFC 3463 enhanced status code such as `5.1.1`.
///
/// Exists so the delivery code hands accounting a parsed code (never free text) and the
/// writer alone decides how it is rendered: `5.1.1 (bad destination mailbox address)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject (0–7 in RFC 3463: address, mailbox, mail system, network, …).
    pub subject: u16,
    /// The detail within the subject.
    pub detail: u16,
}

/// Why a string is not an enhanced status code.
///
/// Exists so a caller parsing a remote reply can tell "no code" from a malformed one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an enhanced status code (class.subject.detail, class 2, 4 or 5)")]
pub struct ParseStatusError(pub String);

impl EnhancedStatus {
    /// Builds a code from its three parts.
    ///
    /// Exists for callers that synthesise a status (e.g. `4.4.7` on expiry).
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        EnhancedStatus {
            class,
            subject,
            detail,
        }
    }

    /// The text PowerMTA puts in parentheses after the code in `dsnStatus`.
    ///
    /// Exists because accounting consumers (and PowerMTA parsers) expect the gloss, e.g.
    /// `bad destination mailbox address` for `5.1.1`. An unregistered detail falls back to the
    /// subject's `X.Y.0` text; an unknown subject to `undefined status`.
    pub fn gloss(&self) -> &'static str {
        if self.class == 2 && self.subject == 0 && self.detail == 0 {
            return "success";
        }
        lookup(self.subject, self.detail)
            .or_else(|| lookup(self.subject, 0))
            .unwrap_or("undefined status")
    }

    /// `5.1.1 (bad destination mailbox address)`: the `dsnStatus` column's text.
    ///
    /// Exists so every writer renders the column the same way.
    pub fn with_gloss(&self) -> String {
        format!("{self} ({})", self.gloss())
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl FromStr for EnhancedStatus {
    type Err = ParseStatusError;

    /// Parses `class.subject.detail` (RFC 3463: class 2/4/5, subject and detail 1–3 digits).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseStatusError(s.to_string());
        let mut parts = s.trim().split('.');
        let (Some(c), Some(sub), Some(det), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        let num = |p: &str| -> Option<u16> {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                p.parse().ok()
            }
        };
        let class = match c {
            "2" => 2,
            "4" => 4,
            "5" => 5,
            _ => return Err(err()),
        };
        Ok(EnhancedStatus {
            class,
            subject: num(sub).ok_or_else(err)?,
            detail: num(det).ok_or_else(err)?,
        })
    }
}

/// Subject.detail → gloss. Texts are the IANA "SMTP Enhanced Status Codes" titles in lower
/// case, except where PowerMTA's own wording is known from real files (`0.0`, `1.2`, `7.1`).
const TABLE: &[(u16, u16, &str)] = &[
    (0, 0, "undefined status"),
    (1, 0, "other address status"),
    (1, 1, "bad destination mailbox address"),
    (1, 2, "bad destination system: no such domain"),
    (1, 3, "bad destination mailbox address syntax"),
    (1, 4, "destination mailbox address ambiguous"),
    (1, 5, "destination address valid"),
    (1, 6, "destination mailbox has moved, no forwarding address"),
    (1, 7, "bad sender's mailbox address syntax"),
    (1, 8, "bad sender's system address"),
    (1, 9, "message relayed to non-compliant mailer"),
    (1, 10, "recipient address has null mx"),
    (2, 0, "other or undefined mailbox status"),
    (2, 1, "mailbox disabled, not accepting messages"),
    (2, 2, "mailbox full"),
    (2, 3, "message length exceeds administrative limit"),
    (2, 4, "mailing list expansion problem"),
    (3, 0, "other or undefined mail system status"),
    (3, 1, "mail system full"),
    (3, 2, "system not accepting network messages"),
    (3, 3, "system not capable of selected features"),
    (3, 4, "message too big for system"),
    (3, 5, "system incorrectly configured"),
    (4, 0, "other or undefined network or routing status"),
    (4, 1, "no answer from host"),
    (4, 2, "bad connection"),
    (4, 3, "directory server failure"),
    (4, 4, "unable to route"),
    (4, 5, "mail system congestion"),
    (4, 6, "routing loop detected"),
    (4, 7, "delivery time expired"),
    (5, 0, "other or undefined protocol status"),
    (5, 1, "invalid command"),
    (5, 2, "syntax error"),
    (5, 3, "too many recipients"),
    (5, 4, "invalid command arguments"),
    (5, 5, "wrong protocol version"),
    (5, 6, "authentication exchange line is too long"),
    (6, 0, "other or undefined media error"),
    (6, 1, "media not supported"),
    (6, 2, "conversion required and prohibited"),
    (6, 3, "conversion required but not supported"),
    (6, 4, "conversion with loss performed"),
    (6, 5, "conversion failed"),
    (6, 6, "message content not available"),
    (
        6,
        7,
        "non-ascii addresses not permitted for that sender/recipient",
    ),
    (
        6,
        8,
        "utf-8 string reply is required, but not permitted by the smtp client",
    ),
    (
        6,
        9,
        "utf-8 header message cannot be transferred to one or more recipients",
    ),
    (7, 0, "other or undefined security status"),
    (7, 1, "delivery not authorized"),
    (7, 2, "mailing list expansion prohibited"),
    (7, 3, "security conversion required but not possible"),
    (7, 4, "security features not supported"),
    (7, 5, "cryptographic failure"),
    (7, 6, "cryptographic algorithm not supported"),
    (7, 7, "message integrity failure"),
    (7, 8, "authentication credentials invalid"),
    (7, 9, "authentication mechanism is too weak"),
    (7, 10, "encryption needed"),
    (
        7,
        11,
        "encryption required for requested authentication mechanism",
    ),
    (7, 12, "a password transition is needed"),
    (7, 13, "user account disabled"),
    (7, 14, "trust relationship required"),
    (7, 20, "no passing dkim signature found"),
    (7, 21, "no acceptable dkim signature found"),
    (7, 22, "no valid author-matched dkim signature found"),
    (7, 23, "spf validation failed"),
    (7, 24, "spf validation error"),
    (7, 25, "reverse dns validation failed"),
    (7, 26, "multiple authentication checks failed"),
    (7, 27, "sender address has null mx"),
];

fn lookup(subject: u16, detail: u16) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(s, d, _)| *s == subject && *d == detail)
        .map(|(_, _, g)| *g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(code: &str) -> String {
        code.parse::<EnhancedStatus>().unwrap().with_gloss()
    }

    #[test]
    fn glosses_of_common_codes_match_powermta() {
        assert_eq!(g("2.0.0"), "2.0.0 (success)");
        assert_eq!(g("4.4.1"), "4.4.1 (no answer from host)");
        assert_eq!(g("5.1.1"), "5.1.1 (bad destination mailbox address)");
        assert_eq!(g("5.1.2"), "5.1.2 (bad destination system: no such domain)");
        assert_eq!(g("5.7.1"), "5.7.1 (delivery not authorized)");
        assert_eq!(g("4.7.0"), "4.7.0 (other or undefined security status)");
        assert_eq!(g("5.0.0"), "5.0.0 (undefined status)");
        assert_eq!(g("4.0.0"), "4.0.0 (undefined status)");
        assert_eq!(g("4.4.7"), "4.4.7 (delivery time expired)");
        assert_eq!(g("5.2.2"), "5.2.2 (mailbox full)");
        assert_eq!(g("4.2.2"), "4.2.2 (mailbox full)");
        assert_eq!(g("5.3.0"), "5.3.0 (other or undefined mail system status)");
        assert_eq!(g("5.4.4"), "5.4.4 (unable to route)");
        assert_eq!(g("4.4.2"), "4.4.2 (bad connection)");
        assert_eq!(g("5.5.2"), "5.5.2 (syntax error)");
        assert_eq!(g("2.1.5"), "2.1.5 (destination address valid)");
    }

    #[test]
    fn unknown_details_fall_back_to_subject_then_undefined() {
        assert_eq!(g("5.7.99"), "5.7.99 (other or undefined security status)");
        assert_eq!(g("5.9.1"), "5.9.1 (undefined status)");
    }

    #[test]
    fn parse_rejects_malformed_codes() {
        for bad in ["", "5.1", "5.1.1.1", "3.1.1", "5.a.1", "5.1.1234", "5..1"] {
            assert!(bad.parse::<EnhancedStatus>().is_err(), "{bad}");
        }
        assert_eq!(
            " 5.1.10 ".parse::<EnhancedStatus>().unwrap(),
            EnhancedStatus::new(5, 1, 10)
        );
    }
}
