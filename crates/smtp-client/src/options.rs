//! What the caller decides per connection: EHLO name, source address, TLS mode, timeouts.
//!
//! The client has no policy of its own; the delivery engine fills these from the queue's
//! `<domain>` settings (`use-starttls`, `require-starttls`, `connect-timeout`, …).

use std::net::IpAddr;
use std::time::Duration;

/// How STARTTLS is used. Opportunistic MX TLS (RFC 3207 without verification) is the
/// PowerMTA default, so the certificate is never checked in either TLS mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Never send STARTTLS (`use-starttls false`).
    Off,
    /// Use STARTTLS when offered; carry on in plaintext when it is not offered, when the
    /// server refuses it, or (on a fresh connection) when the handshake fails
    /// (`use-starttls true`, the default).
    #[default]
    Opportunistic,
    /// Fail the connection (a transient error) unless TLS is established
    /// (`require-starttls true`).
    Required,
}

/// Per-phase time limits. Each limit covers one wait, so a slow but progressing peer is not
/// cut off by a total deadline, while a silent one is detected in every phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect (`connect-timeout`, default 2 minutes).
    pub connect: Duration,
    /// Waiting for the 220 greeting (`smtp-greeting-timeout`, default 5 minutes).
    pub greeting: Duration,
    /// Waiting for the reply to EHLO, STARTTLS (and the TLS handshake), MAIL, RCPT, DATA,
    /// RSET and QUIT, and writing those commands. PowerMTA has no directive for it; 5 minutes
    /// is RFC 5321 §4.5.3.2's figure for MAIL and RCPT.
    pub command: Duration,
    /// Longest stall while writing the message: each write of a chunk must finish within it
    /// (`data-send-timeout`, default 3 minutes).
    pub data_send: Duration,
    /// Waiting for the reply to the final dot (`smtp-data-termination-timeout`, default
    /// 10 minutes; RFC 5321 asks for at least 10).
    pub data_termination: Duration,
}

impl Default for Timeouts {
    /// PowerMTA's defaults.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(120),
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            data_send: Duration::from_secs(180),
            data_termination: Duration::from_secs(600),
        }
    }
}

/// Everything [`crate::Connection::open`] needs besides the address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// The name sent in EHLO/HELO (the virtual MTA's `smtp-source-host` name).
    pub ehlo_name: String,
    /// Local address to bind before connecting, so mail leaves from the virtual MTA's IP.
    /// `None` lets the kernel choose.
    pub source_ip: Option<IpAddr>,
    /// STARTTLS policy.
    pub starttls: TlsMode,
    /// Per-phase time limits.
    pub timeouts: Timeouts,
}

impl ClientOptions {
    /// Options with PowerMTA's defaults (opportunistic TLS, default timeouts, no binding).
    pub fn new(ehlo_name: impl Into<String>) -> Self {
        ClientOptions {
            ehlo_name: ehlo_name.into(),
            source_ip: None,
            starttls: TlsMode::default(),
            timeouts: Timeouts::default(),
        }
    }
}
