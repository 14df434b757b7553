//! Why a connection or transaction could not be carried out, with the phase it happened in.

use std::fmt;
use std::io;
use std::time::Duration;

use petrel_smtp::{EnhancedCode, Reply};

/// The step of the SMTP dialogue an error happened in. The delivery engine needs it to tell
/// "no answer from host" (connect, greeting: try the next MX) from a broken transfer
/// (data, dot: the message may or may not have been delivered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// TCP connect (and binding the source address).
    Connect,
    /// Waiting for the 220 greeting.
    Greeting,
    /// EHLO (or the HELO fallback), before or after TLS.
    Ehlo,
    /// STARTTLS and the TLS handshake.
    StartTls,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// The DATA command and the message transfer.
    Data,
    /// Waiting for the reply to the final dot.
    Dot,
    /// RSET between transactions.
    Rset,
    /// QUIT.
    Quit,
}

impl Phase {
    /// The lower-case name used in log lines and diagnostics.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Greeting => "greeting",
            Phase::Ehlo => "ehlo",
            Phase::StartTls => "starttls",
            Phase::Mail => "mail",
            Phase::Rcpt => "rcpt",
            Phase::Data => "data",
            Phase::Dot => "dot",
            Phase::Rset => "rset",
            Phase::Quit => "quit",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure of the connection, as opposed to a refusal inside a transaction (those are
/// replies in [`crate::TransactionOutcome`]). After any of these but [`ClientError::Rejected`]
/// in the RSET phase, the connection is not reusable.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing arrived (or could be written) within the phase's time limit.
    #[error("{phase}: timed out after {}", fmt_duration(*after))]
    Timeout {
        /// Where it happened.
        phase: Phase,
        /// The limit that ran out.
        after: Duration,
    },
    /// The peer closed the connection.
    #[error("{phase}: connection closed by the remote host")]
    Closed {
        /// Where it happened.
        phase: Phase,
    },
    /// A socket error (refused, reset, unreachable, cannot bind the source address, …).
    #[error("{phase}: {source}")]
    Io {
        /// Where it happened.
        phase: Phase,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The peer sent something that is not an SMTP reply, or data it should not have sent.
    #[error("{phase}: protocol error: {detail}")]
    Protocol {
        /// Where it happened.
        phase: Phase,
        /// What was wrong.
        detail: String,
    },
    /// The peer refused the session: a non-2xx greeting, EHLO and HELO both refused, or
    /// STARTTLS refused while TLS is required, or RSET refused.
    #[error("{phase}: {}", one_line(reply))]
    Rejected {
        /// Where it happened.
        phase: Phase,
        /// The refusal.
        reply: Reply,
    },
    /// TLS is required but the peer does not offer STARTTLS.
    #[error("starttls: TLS required but the remote host does not offer STARTTLS")]
    TlsUnavailable,
    /// The TLS handshake failed (no common protocol or cipher, garbage instead of TLS, …).
    #[error("starttls: TLS handshake failed: {source}")]
    Tls {
        /// rustls's error, wrapped by tokio-rustls.
        #[source]
        source: io::Error,
    },
}

impl ClientError {
    /// The phase the error happened in.
    pub fn phase(&self) -> Phase {
        match self {
            ClientError::Timeout { phase, .. }
            | ClientError::Closed { phase }
            | ClientError::Io { phase, .. }
            | ClientError::Protocol { phase, .. }
            | ClientError::Rejected { phase, .. } => *phase,
            ClientError::TlsUnavailable | ClientError::Tls { .. } => Phase::StartTls,
        }
    }

    /// The peer's reply, when the error is a refusal.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            ClientError::Rejected { reply, .. } => Some(reply),
            _ => None,
        }
    }

    /// True when the host never answered: the connection failed or the greeting did not
    /// come. The delivery engine moves on to the next MX (bounceCat `no-answer-from-host`).
    pub fn is_no_answer(&self) -> bool {
        matches!(
            self,
            ClientError::Timeout {
                phase: Phase::Connect | Phase::Greeting,
                ..
            } | ClientError::Closed {
                phase: Phase::Connect | Phase::Greeting
            } | ClientError::Io {
                phase: Phase::Connect | Phase::Greeting,
                ..
            }
        )
    }

    /// The RFC 3463 status for accounting (`dsnStatus`): the reply's own when the peer
    /// refused, else what the failure means (4.4.1 no answer, 4.4.2 bad connection,
    /// 4.5.0 protocol error, 4.7.5 TLS failure, 4.7.10 TLS required).
    pub fn status(&self) -> EnhancedCode {
        match self {
            ClientError::Rejected { reply, .. } => {
                reply
                    .enhanced
                    .unwrap_or(EnhancedCode((reply.code / 100).clamp(2, 5) as u8, 0, 0))
            }
            _ if self.is_no_answer() => EnhancedCode(4, 4, 1),
            ClientError::Protocol { .. } => EnhancedCode(4, 5, 0),
            ClientError::Tls { .. } => EnhancedCode(4, 7, 5),
            ClientError::TlsUnavailable => EnhancedCode(4, 7, 10),
            _ => EnhancedCode(4, 4, 2),
        }
    }

    /// The diagnostic for accounting and DSNs (`dsnDiag`): `smtp;` and the reply on one line
    /// when the peer refused (RFC 3464 diagnostic type `smtp`), else `x-petrel;` and the
    /// phase and cause, since no reply exists to quote.
    pub fn diag(&self) -> String {
        match self {
            ClientError::Rejected { reply, .. } => dsn_diag(reply),
            other => format!("x-petrel;{other}"),
        }
    }
}

/// A reply as a `dsnDiag` value: `smtp;550 5.1.1 text`, multi-line replies joined by spaces.
pub fn dsn_diag(reply: &Reply) -> String {
    format!("smtp;{}", one_line(reply))
}

/// The reply on one line: code, enhanced code, text lines joined by a space.
pub fn one_line(reply: &Reply) -> String {
    let mut s = reply.code.to_string();
    if let Some(e) = reply.enhanced {
        s.push(' ');
        s.push_str(&e.to_string());
    }
    for line in &reply.lines {
        if !line.is_empty() {
            s.push(' ');
            s.push_str(line);
        }
    }
    s
}

/// `300ms`, `2s`, `2.5s`, `5m` (whole minutes).
fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_diag() {
        let e = ClientError::Timeout {
            phase: Phase::Greeting,
            after: Duration::from_millis(300),
        };
        assert_eq!(e.to_string(), "greeting: timed out after 300ms");
        assert_eq!(e.diag(), "x-petrel;greeting: timed out after 300ms");
        assert!(e.is_no_answer());
        assert_eq!(e.status(), EnhancedCode(4, 4, 1));

        let e = ClientError::Rejected {
            phase: Phase::Greeting,
            reply: Reply::multiline(554, vec!["go away".into(), "really".into()]),
        };
        assert_eq!(e.to_string(), "greeting: 554 go away really");
        assert_eq!(e.diag(), "smtp;554 go away really");
        assert_eq!(e.status(), EnhancedCode(5, 0, 0));
        assert!(!e.is_no_answer());

        let e = ClientError::Closed { phase: Phase::Dot };
        assert_eq!(e.status(), EnhancedCode(4, 4, 2));
        assert_eq!(e.phase(), Phase::Dot);
        assert_eq!(
            ClientError::Timeout {
                phase: Phase::Connect,
                after: Duration::from_secs(120)
            }
            .to_string(),
            "connect: timed out after 2m"
        );
        assert_eq!(
            dsn_diag(&Reply::new(550, (5, 1, 1), "no such user")),
            "smtp;550 5.1.1 no such user"
        );
    }
}
