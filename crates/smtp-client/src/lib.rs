//! Outbound SMTP: one session with a remote MX, reused for many transactions.
//!
//! The delivery engine picks the MX, the source IP, the TLS mode and the timeouts; this crate
//! only speaks the protocol (RFC 5321 with PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN and
//! STARTTLS) and reports what happened, per phase and per recipient. It has no policy of its
//! own; what a reply or a failure means (bounce category and class) is `petrel-reply-class`.
//!
//! Protocol pieces (extension parsing, command building, dot-stuffing) are pure modules;
//! `connection.rs` is the only one doing I/O. `docs/outbound-smtp.md` describes the whole
//! dialogue.

mod connection;
mod dot;
mod envelope;
mod extensions;
mod options;
mod tls;

pub use connection::Connection;
pub use envelope::{RecipientSpec, Transaction, TransactionNote, TransactionOutcome};
pub use extensions::Extensions;
pub use options::{ClientOptions, Timeouts, TlsMode};
pub use petrel_reply_class::{dsn_diag, ClientError, Phase};
pub use petrel_smtp::{EnhancedCode, Notify, Reply, Ret};
pub use tls::TlsInfo;
