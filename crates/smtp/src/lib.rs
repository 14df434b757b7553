//! SMTP protocol pieces with no I/O and no policy.
//!
//! The listener feeds bytes in and gets typed values out; everything here is pure so it can be
//! unit-tested and fuzzed on its own. Parsing follows RFC 5321 (commands, replies), RFC 1870
//! (SIZE), RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 3461 (DSN parameters), RFC 4954
//! (AUTH) and RFC 3030 (BDAT).

mod auth;
mod command;
mod data;
mod reply;
mod reply_parse;

pub use auth::{decode_base64_line, parse_plain_response, AuthError, PlainCredentials};
pub use command::{
    parse_command, BodyType, Command, CommandError, MailParams, Notify, RcptParams, Ret,
    MAX_COMMAND_LINE,
};
pub use data::{DataEnd, DataReader};
pub use reply::{EnhancedCode, Reply};
pub use reply_parse::{parse_reply, ReplyError, MAX_REPLY_BYTES, MAX_REPLY_LINE};
