//! SMTP command parsing (RFC 5321 §4.1 with the ESMTP parameters petrel advertises).

use thiserror::Error;

/// Longest command line accepted, CRLF included. RFC 5321 §4.5.3.1.4 sets 512 octets and lets
/// extensions add to it; SIZE, BODY, SMTPUTF8, RET, ENVID, NOTIFY and ORCPT together fit well
/// inside 1,000, which is also the text-line limit, so one figure serves both.
pub const MAX_COMMAND_LINE: usize = 1000;

/// A parsed SMTP command. Addresses are kept as written (without angle brackets); case and
/// policy decisions belong to the session, not the parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `HELO domain`.
    Helo(String),
    /// `EHLO domain-or-address-literal`.
    Ehlo(String),
    /// `MAIL FROM:<reverse-path> [params]`; an empty address is the null sender.
    Mail {
        /// The reverse path without brackets ("" for `<>`).
        address: String,
        /// ESMTP parameters.
        params: MailParams,
    },
    /// `RCPT TO:<forward-path> [params]`.
    Rcpt {
        /// The forward path without brackets (source route removed).
        address: String,
        /// ESMTP parameters.
        params: RcptParams,
    },
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030).
    Bdat {
        /// Octets in this chunk.
        size: u64,
        /// Whether this is the final chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP [string]`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy(String),
    /// `EXPN string`.
    Expn(String),
    /// `HELP [topic]`.
    Help,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH mechanism [initial-response]`.
    Auth {
        /// Mechanism name, upper-cased.
        mechanism: String,
        /// The initial response (`=` means an empty one), still base64.
        initial: Option<String>,
    },
}

/// `BODY=` values of RFC 6152 / RFC 3030.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyType {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
    /// `BODY=BINARYMIME`.
    BinaryMime,
}

/// DSN `RET=` (RFC 3461 §4.3): how much of the message a bounce returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// Return the full message.
    Full,
    /// Return the headers only.
    Hdrs,
}

/// DSN `NOTIFY=` values (RFC 3461 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// `NEVER` (alone).
    Never,
    /// `SUCCESS`.
    Success,
    /// `FAILURE`.
    Failure,
    /// `DELAY`.
    Delay,
}

/// Parameters of `MAIL FROM`, kept on the envelope for the delivery engine and DSNs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=` declared by the client.
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: Option<BodyType>,
    /// `SMTPUTF8` present.
    pub smtputf8: bool,
    /// `RET=`.
    pub ret: Option<Ret>,
    /// `ENVID=` (xtext-decoded).
    pub envid: Option<String>,
    /// `AUTH=` (RFC 4954 §5), kept as given.
    pub auth: Option<String>,
}

/// Parameters of `RCPT TO`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RcptParams {
    /// `NOTIFY=` list.
    pub notify: Option<Vec<Notify>>,
    /// `ORCPT=` as written (`rfc822;user@example.com`, xtext-decoded).
    pub orcpt: Option<String>,
}

/// Why a command line was refused. Each variant maps to one RFC 5321 reply so the session
/// answers consistently.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CommandError {
    /// The verb is not one petrel knows (`500 5.5.1`).
    #[error("command unrecognized")]
    Unknown,
    /// The line is longer than [`MAX_COMMAND_LINE`] (`500 5.5.2`).
    #[error("line too long")]
    LineTooLong,
    /// The command is known but its arguments are malformed (`501 5.5.4`).
    #[error("syntax error in parameters or arguments: {0}")]
    Syntax(&'static str),
    /// An address is malformed (`501 5.1.3` for MAIL/RCPT).
    #[error("bad address syntax")]
    BadAddress,
    /// An ESMTP parameter petrel does not implement (`555 5.5.4`).
    #[error("unsupported parameter {0}")]
    UnsupportedParam(String),
    /// A parameter is known but its value is wrong (`501 5.5.4`).
    #[error("bad value for parameter {0}")]
    BadParam(&'static str),
    /// Bytes that are not text in a command (`500 5.5.2`).
    #[error("invalid characters in command")]
    NotText,
}

/// Parses one command line. `line` may end with CRLF or LF; anything after is ignored.
pub fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    if line.len() > MAX_COMMAND_LINE {
        return Err(CommandError::LineTooLong);
    }
    let line = strip_eol(line);
    let line = std::str::from_utf8(line).map_err(|_| CommandError::NotText)?;
    if line.bytes().any(|b| b == 0 || (b < 32 && b != b'\t')) {
        return Err(CommandError::NotText);
    }
    let (verb, rest) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i + 1..].trim()),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    match verb.as_str() {
        "HELO" | "EHLO" => {
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err(CommandError::Syntax("a domain name is required"));
            }
            Ok(if verb == "HELO" {
                Command::Helo(rest.to_string())
            } else {
                Command::Ehlo(rest.to_string())
            })
        }
        "MAIL" => {
            let rest = strip_prefix_ci(rest, "FROM:")
                .ok_or(CommandError::Syntax("use MAIL FROM:<address>"))?;
            let (address, params) = split_path(rest)?;
            let params = parse_mail_params(params)?;
            if !address.is_empty() {
                check_mailbox(&address)?;
            }
            Ok(Command::Mail { address, params })
        }
        "RCPT" => {
            let rest = strip_prefix_ci(rest, "TO:")
                .ok_or(CommandError::Syntax("use RCPT TO:<address>"))?;
            let (address, params) = split_path(rest)?;
            if address.is_empty() {
                return Err(CommandError::BadAddress);
            }
            if !address.eq_ignore_ascii_case("postmaster") {
                check_mailbox(&address)?;
            }
            let params = parse_rcpt_params(params)?;
            Ok(Command::Rcpt { address, params })
        }
        "DATA" => no_args(rest, Command::Data),
        "RSET" => no_args(rest, Command::Rset),
        "QUIT" => no_args(rest, Command::Quit),
        "STARTTLS" => no_args(rest, Command::StartTls),
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" => Ok(Command::Vrfy(rest.to_string())),
        "EXPN" => Ok(Command::Expn(rest.to_string())),
        "BDAT" => {
            let mut parts = rest.split_ascii_whitespace();
            let size = parts
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(CommandError::Syntax("BDAT needs a chunk size"))?;
            let last = match parts.next() {
                None => false,
                Some(s) if s.eq_ignore_ascii_case("LAST") => true,
                Some(_) => return Err(CommandError::Syntax("BDAT size [LAST]")),
            };
            if parts.next().is_some() {
                return Err(CommandError::Syntax("BDAT size [LAST]"));
            }
            Ok(Command::Bdat { size, last })
        }
        "AUTH" => {
            let mut parts = rest.split_ascii_whitespace();
            let mechanism = parts
                .next()
                .ok_or(CommandError::Syntax("AUTH needs a mechanism"))?
                .to_ascii_uppercase();
            let initial = parts.next().map(str::to_string);
            if parts.next().is_some() {
                return Err(CommandError::Syntax("AUTH mechanism [initial-response]"));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        _ => Err(CommandError::Unknown),
    }
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn no_args(rest: &str, cmd: Command) -> Result<Command, CommandError> {
    if rest.is_empty() {
        Ok(cmd)
    } else {
        Err(CommandError::Syntax("this command takes no arguments"))
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // `get` rather than slicing: the cut may fall inside a multi-byte character.
    match (s.get(..prefix.len()), s.get(prefix.len()..)) {
        (Some(head), Some(rest)) if head.eq_ignore_ascii_case(prefix) => Some(rest.trim_start()),
        _ => None,
    }
}

/// Splits `<path> params` into the address (brackets and source route removed) and the rest.
/// A path without brackets is accepted, as Postfix does, when it holds no spaces.
fn split_path(s: &str) -> Result<(String, &str), CommandError> {
    let (path, rest) = if let Some(inner) = s.strip_prefix('<') {
        let end = find_path_end(inner).ok_or(CommandError::BadAddress)?;
        (&inner[..end], &inner[end + 1..])
    } else {
        match s.find(' ') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        }
    };
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(CommandError::BadAddress);
    }
    // Source route `@a,@b:user@domain` (RFC 5321 §4.1.2): accepted and dropped.
    let path = match path.strip_prefix('@') {
        Some(_) => path
            .find(':')
            .map(|i| &path[i + 1..])
            .ok_or(CommandError::BadAddress)?,
        None => path,
    };
    Ok((path.to_string(), rest.trim()))
}

/// Finds the closing `>` of a path, skipping quoted local parts.
fn find_path_end(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// A light RFC 5321 mailbox check: `local@domain`, non-empty parts, a domain made of labels or
/// an address literal. Non-ASCII is allowed here; SMTPUTF8 policy is the session's call.
fn check_mailbox(addr: &str) -> Result<(), CommandError> {
    let at = addr.rfind('@').ok_or(CommandError::BadAddress)?;
    let (local, domain) = (&addr[..at], &addr[at + 1..]);
    if local.is_empty() || domain.is_empty() || local.len() > 64 || domain.len() > 255 {
        return Err(CommandError::BadAddress);
    }
    if addr.contains(char::is_whitespace) && !local.starts_with('"') {
        return Err(CommandError::BadAddress);
    }
    if domain.starts_with('[') {
        return if domain.ends_with(']') {
            Ok(())
        } else {
            Err(CommandError::BadAddress)
        };
    }
    for label in domain.split('.') {
        if label.is_empty()
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || !c.is_ascii())
        {
            return Err(CommandError::BadAddress);
        }
    }
    Ok(())
}

fn params(s: &str) -> impl Iterator<Item = (String, Option<&str>)> {
    s.split_ascii_whitespace().map(|p| match p.split_once('=') {
        Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
        None => (p.to_ascii_uppercase(), None),
    })
}

fn parse_mail_params(s: &str) -> Result<MailParams, CommandError> {
    let mut out = MailParams::default();
    for (key, value) in params(s) {
        match (key.as_str(), value) {
            ("SIZE", Some(v)) => {
                out.size = Some(v.parse().map_err(|_| CommandError::BadParam("SIZE"))?)
            }
            ("BODY", Some(v)) => {
                out.body = Some(match v.to_ascii_uppercase().as_str() {
                    "7BIT" => BodyType::SevenBit,
                    "8BITMIME" => BodyType::EightBitMime,
                    "BINARYMIME" => BodyType::BinaryMime,
                    _ => return Err(CommandError::BadParam("BODY")),
                })
            }
            ("SMTPUTF8", None) => out.smtputf8 = true,
            ("RET", Some(v)) => {
                out.ret = Some(match v.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Hdrs,
                    _ => return Err(CommandError::BadParam("RET")),
                })
            }
            ("ENVID", Some(v)) => {
                out.envid = Some(xtext_decode(v).ok_or(CommandError::BadParam("ENVID"))?)
            }
            ("AUTH", Some(v)) => out.auth = Some(v.to_string()),
            ("SIZE" | "BODY" | "RET" | "ENVID" | "AUTH", None) => {
                return Err(CommandError::BadParam("parameter needs a value"))
            }
            _ => return Err(CommandError::UnsupportedParam(key)),
        }
    }
    Ok(out)
}

fn parse_rcpt_params(s: &str) -> Result<RcptParams, CommandError> {
    let mut out = RcptParams::default();
    for (key, value) in params(s) {
        match (key.as_str(), value) {
            ("NOTIFY", Some(v)) => {
                let mut list = Vec::new();
                for item in v.split(',') {
                    list.push(match item.to_ascii_uppercase().as_str() {
                        "NEVER" => Notify::Never,
                        "SUCCESS" => Notify::Success,
                        "FAILURE" => Notify::Failure,
                        "DELAY" => Notify::Delay,
                        _ => return Err(CommandError::BadParam("NOTIFY")),
                    });
                }
                if list.contains(&Notify::Never) && list.len() > 1 {
                    return Err(CommandError::BadParam("NOTIFY"));
                }
                out.notify = Some(list);
            }
            ("ORCPT", Some(v)) => {
                let decoded = xtext_decode(v).ok_or(CommandError::BadParam("ORCPT"))?;
                if !decoded.contains(';') {
                    return Err(CommandError::BadParam("ORCPT"));
                }
                out.orcpt = Some(decoded);
            }
            ("NOTIFY" | "ORCPT", None) => {
                return Err(CommandError::BadParam("parameter needs a value"))
            }
            _ => return Err(CommandError::UnsupportedParam(key)),
        }
    }
    Ok(out)
}

/// Decodes RFC 3461 xtext (`+HH` escapes).
fn xtext_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'+' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_with_every_parameter() {
        let c = parse_command(
            b"MAIL FROM:<a@b.example> SIZE=5000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B1\r\n",
        )
        .unwrap();
        assert_eq!(
            c,
            Command::Mail {
                address: "a@b.example".into(),
                params: MailParams {
                    size: Some(5000),
                    body: Some(BodyType::EightBitMime),
                    smtputf8: true,
                    ret: Some(Ret::Hdrs),
                    envid: Some("QQ+1".into()),
                    auth: None
                }
            }
        );
    }

    #[test]
    fn null_sender_and_case_insensitive_verb() {
        assert_eq!(
            parse_command(b"mail from:<>\r\n").unwrap(),
            Command::Mail {
                address: String::new(),
                params: MailParams::default()
            }
        );
    }

    #[test]
    fn rcpt_with_dsn_parameters_and_source_route() {
        let c = parse_command(
            b"RCPT TO:<@relay.example:joe@x.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;joe+40x.example\r\n",
        )
        .unwrap();
        assert_eq!(
            c,
            Command::Rcpt {
                address: "joe@x.example".into(),
                params: RcptParams {
                    notify: Some(vec![Notify::Success, Notify::Failure]),
                    orcpt: Some("rfc822;joe@x.example".into())
                }
            }
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse_command(b"FOO\r\n"), Err(CommandError::Unknown));
        assert_eq!(
            parse_command(b"RCPT TO:<>\r\n"),
            Err(CommandError::BadAddress)
        );
        assert_eq!(
            parse_command(b"RCPT TO:<no-at-sign>\r\n"),
            Err(CommandError::BadAddress)
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b> XFOO=1\r\n"),
            Err(CommandError::UnsupportedParam("XFOO".into()))
        );
        assert_eq!(
            parse_command(b"RCPT TO:<a@b> NOTIFY=NEVER,DELAY\r\n"),
            Err(CommandError::BadParam("NOTIFY"))
        );
        assert!(matches!(
            parse_command(b"DATA x\r\n"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            parse_command(b"HELO\r\n"),
            Err(CommandError::Syntax(_))
        ));
        let long = vec![b'A'; MAX_COMMAND_LINE + 1];
        assert_eq!(parse_command(&long), Err(CommandError::LineTooLong));
        assert_eq!(parse_command(b"NOOP \x00\r\n"), Err(CommandError::NotText));
    }

    #[test]
    fn multibyte_character_where_the_keyword_ends_is_a_syntax_error() {
        // Found by cargo-fuzz: slicing "TO\u{1bd}" at byte 3 used to panic.
        let line = "RCPT TO\u{1bd}@le:j@x.example>\r\n";
        assert!(matches!(
            parse_command(line.as_bytes()),
            Err(CommandError::Syntax(_))
        ));
        let line = "MAIL FROM\u{e9}<a@b>\r\n";
        assert!(matches!(
            parse_command(line.as_bytes()),
            Err(CommandError::Syntax(_))
        ));
    }

    #[test]
    fn postmaster_without_domain_is_allowed() {
        assert!(parse_command(b"RCPT TO:<Postmaster>\r\n").is_ok());
    }

    #[test]
    fn bdat_and_auth() {
        assert_eq!(
            parse_command(b"BDAT 100 LAST\r\n").unwrap(),
            Command::Bdat {
                size: 100,
                last: true
            }
        );
        assert_eq!(
            parse_command(b"AUTH plain AGZvbwBiYXI=\r\n").unwrap(),
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGZvbwBiYXI=".into())
            }
        );
    }

    #[test]
    fn quoted_local_part_with_bracket() {
        let c = parse_command(b"MAIL FROM:<\"odd>name\"@x.example>\r\n").unwrap();
        assert!(matches!(c, Command::Mail { address, .. } if address == "\"odd>name\"@x.example"));
    }
}
