//! petrel-tracking: the building blocks of engagement (open and click) tracking.
//!
//! PowerMTA with Signals `engagement-tracking` rewrites the HTML of outgoing mail: a hidden
//! pixel at the top of the body (`initial_open`), one at the bottom (`open`), and every
//! `http(s)` link replaced by a link to the tracking host (`click`). This crate does the
//! rewriting and the tokens those URLs carry; the tracking HTTP host and the daemon wiring
//! are built on top of it elsewhere.
//!
//! * [`TokenKeys`] signs and verifies [`TokenData`]: the token names the message, the
//!   recipient, the action and (for clicks) the exact target URL, protected by a truncated
//!   HMAC-SHA256 with key rotation. The tracker needs no database and cannot be abused as an
//!   open redirector.
//! * [`rewrite_message`] walks the MIME structure of a raw message, rewrites every
//!   `text/html` part with `lol_html` (decoding and re-encoding quoted-printable and base64)
//!   and leaves every other byte of the message as it was.
//!
//! Everything here is a pure function of its arguments: no clock, no files, no network.
//! Rewriting must happen before DKIM signing, since it changes the body.
//!
//! See `docs/tracking.md` for the token format, the URL layout and the exact rules.

mod html;
mod mime;
mod rewrite;
mod token;
mod transfer;

pub use html::{MAX_LINK_NAME_LEN, MAX_TARGET_LEN};
pub use rewrite::{rewrite_message, RewriteError, RewriteOptions, Rewritten};
pub use token::{Action, KeyError, TokenData, TokenError, TokenKeys, MIN_SECRET_LEN};
