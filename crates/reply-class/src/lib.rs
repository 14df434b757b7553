//! What an SMTP reply, or a session that failed before one came, means for the sender:
//! PowerMTA's `bounceCat`, SparkPost's `bounce_class`, and whether to bounce now.
//!
//! Pure and table-driven, with no I/O: the outbound client ([`ClientError`], [`Phase`] are
//! the vocabulary it reports failures in), the delivery engine and the returned-mail parser
//! (`petrel-bounce`) all classify through this one crate, so `b` rows, `rb` rows, DSNs and
//! Signals events agree.

mod classify;
mod error;

pub use classify::{
    classify, BounceCategory, Classification, CodeRule, TextRule, BASIC_RULES, CODE_RULES,
    SUBJECT_RULES, TEXT_RULES,
};
pub use error::{dsn_diag, one_line, ClientError, Phase};
/// The reply types classification reads, so callers need not name `petrel-smtp` for them.
pub use petrel_smtp::{EnhancedCode, Reply};
