//! The ESMTP extensions a server advertised in its EHLO reply.

use petrel_smtp::Reply;

/// What the peer offered, parsed once per EHLO. The transaction code looks here before it
/// adds a parameter, because a server may reject a MAIL command carrying a parameter of an
/// extension it did not advertise (RFC 5321 §4.1.1.11).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// `PIPELINING` (RFC 2920): MAIL, RCPT and DATA may go out in one write.
    pub pipelining: bool,
    /// `SIZE [n]` (RFC 1870). `Some(0)` means advertised without a fixed limit.
    pub size: Option<u64>,
    /// `8BITMIME` (RFC 6152).
    pub eight_bit_mime: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `STARTTLS` (RFC 3207).
    pub starttls: bool,
    /// `DSN` (RFC 3461): NOTIFY, ORCPT, RET and ENVID may be passed on.
    pub dsn: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub enhanced_status_codes: bool,
    /// `CHUNKING` (RFC 3030). Parsed for accounting; the client sends with DATA.
    pub chunking: bool,
    /// Every keyword as advertised, upper-cased, in order (for `dlvEsmtpAvailable`).
    pub keywords: Vec<String>,
}

impl Extensions {
    /// Parses an EHLO reply. The first line is the server's name and greeting text; each
    /// further line is `KEYWORD [params]`. Unknown keywords are kept in [`Self::keywords`]
    /// only. A HELO session has no extensions at all: use `Extensions::default()`.
    pub fn from_ehlo(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let keyword = keyword.to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => {
                    ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0));
                }
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "STARTTLS" => ext.starttls = true,
                "DSN" => ext.dsn = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                "CHUNKING" => ext.chunking = true,
                _ => {}
            }
            ext.keywords.push(keyword);
        }
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_postfix_style_ehlo_reply() {
        let reply = Reply::multiline(
            250,
            [
                "mx.example.com",
                "PIPELINING",
                "SIZE 10240000",
                "VRFY",
                "ETRN",
                "STARTTLS",
                "ENHANCEDSTATUSCODES",
                "8BITMIME",
                "DSN",
                "SMTPUTF8",
                "CHUNKING",
            ]
            .map(String::from)
            .to_vec(),
        );
        let ext = Extensions::from_ehlo(&reply);
        assert!(ext.pipelining && ext.eight_bit_mime && ext.smtputf8 && ext.starttls);
        assert!(ext.dsn && ext.enhanced_status_codes && ext.chunking);
        assert_eq!(ext.size, Some(10_240_000));
        assert_eq!(ext.keywords.len(), 10);
        assert_eq!(ext.keywords[3], "ETRN");
    }

    #[test]
    fn size_without_number_lowercase_and_empty_lines() {
        let reply = Reply::multiline(
            250,
            ["hi", "size", "pipelining", "", "AUTH PLAIN LOGIN"]
                .map(String::from)
                .to_vec(),
        );
        let ext = Extensions::from_ehlo(&reply);
        assert_eq!(ext.size, Some(0));
        assert!(ext.pipelining);
        assert!(!ext.starttls && !ext.dsn);
        assert_eq!(ext.keywords, ["SIZE", "PIPELINING", "AUTH"]);
    }

    #[test]
    fn greeting_line_is_not_a_keyword() {
        let reply = Reply::plain(250, "PIPELINING");
        assert_eq!(Extensions::from_ehlo(&reply), Extensions::default());
    }
}
