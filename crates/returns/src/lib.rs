//! petrel-returns: the bounce and feedback-loop processor.
//!
//! PowerMTA's `<bounce-processor>` and `<feedback-loop-processor>` take mail for their
//! `<address-list>` domains on port 25, read it as a delivery report or a complaint, and log
//! `rb` / `rs` / `f` accounting rows; with Signals, SparkPost sees `out_of_band` and
//! `spam_complaint` events. petrel does the same and more:
//!
//! * `petrel_verp::ReturnPathKeys` signs the return path of each recipient's copy when the MAIL FROM is
//!   one of the bounce processor's domains (VERP), so a bounce names exactly the copy it is
//!   about, subaccount included — PowerMTA relies on the report's content only.
//! * [`ReturnsProcessor::process`] parses one received message with `petrel-bounce`,
//!   attributes it, writes the rows and events, suppresses hard-bounced and complaining
//!   recipients, and says whether the message itself goes on to `postmaster` (or the
//!   `forward-*-to` addresses), per `deliver-matched-email` / `deliver-unmatched-email`.
//!
//! The SMTP listener calls it; the events it writes are thin, and the Signals service
//! completes them with the campaign, pool and sending IP of the delivery (enrichment).

mod process;

pub use process::{Decision, Kind, ReturnedMail, ReturnsProcessor, Stats};
