//! How petrel names one recipient's copy of a message to the outside world, so whatever
//! comes back can be matched to it without a lookup:
//!
//! * [`recipient_message_id`]: the Signals `message_id` every event of that recipient
//!   carries (delivery, bounce, open, click, out-of-band bounce, complaint);
//! * [`ReturnPathKeys`]: the signed VERP return path of that copy, which a bounce is sent
//!   back to.
//!
//! The delivery engine writes both and the bounce processor reads them back; neither
//! depends on the other, both depend on this small pure crate.

mod keys;
mod message_id;

pub use keys::{ReturnPathKeys, Verified};
pub use message_id::{parse_recipient_message_id, recipient_message_id};
