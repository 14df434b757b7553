//! The names of what happens to mail, in one place: SparkPost's event types (the name an MTA
//! uploads, the name the APIs show, the grouping key of the upload wrapper) and PowerMTA's
//! accounting record types (`d`, `b`, `t`, `tq`, `r`, `f`, `rb`, `rs`).
//!
//! The emitter (`petrel-events`), the accounting writer, the configuration (`records` in
//! `<acct-file>`) and the Signals service all read these tables, so a type petrel writes is
//! always one its own service accepts. Pure data with no dependencies, so the service and
//! the configuration can use it without pulling in the MTA's runtime.

/// One SparkPost event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// The `type` an MTA uploads to the ingest API (Momentum's internal name, spec §2.1).
    pub ingest: &'static str,
    /// The name the Events API, webhooks and reports show.
    pub public: &'static str,
    /// The key of the upload wrapper, `{"msys":{"<grouping>":{…}}}`; SparkPost drops lines
    /// with the wrong grouping.
    pub grouping: &'static str,
}

const fn t(ingest: &'static str, public: &'static str, grouping: &'static str) -> EventType {
    EventType {
        ingest,
        public,
        grouping,
    }
}

/// Message events: what happened to a message in the MTA.
pub const MESSAGE_EVENT: &str = "message_event";
/// Engagement events: opens and clicks.
pub const TRACK_EVENT: &str = "track_event";
/// Generation events (template failures; petrel produces none).
pub const GEN_EVENT: &str = "gen_event";
/// Unsubscribe events.
pub const UNSUBSCRIBE_EVENT: &str = "unsubscribe_event";

/// The message was accepted for a recipient.
pub const RECEPTION: EventType = t("reception", "injection", MESSAGE_EVENT);
/// The remote MTA accepted it.
pub const DELIVERY: EventType = t("delivery", "delivery", MESSAGE_EVENT);
/// Permanent failure in the SMTP session.
pub const INBAND: EventType = t("inband", "bounce", MESSAGE_EVENT);
/// Temporary failure; the MTA retries.
pub const TEMPFAIL: EventType = t("tempfail", "delay", MESSAGE_EVENT);
/// An asynchronous bounce (DSN) after a delivery.
pub const OUTOFBAND: EventType = t("outofband", "out_of_band", MESSAGE_EVENT);
/// An ARF/FBL complaint.
pub const FEEDBACK: EventType = t("feedback", "spam_complaint", MESSAGE_EVENT);
/// The sender platform refused the message by its own policy.
pub const REJECTION: EventType = t("rejection", "policy_rejection", MESSAGE_EVENT);
/// Generation refused (SparkPost templates).
pub const GEN_REJECTION: EventType = t("gen_rejection", "generation_rejection", GEN_EVENT);
/// Generation failed (SparkPost templates).
pub const GEN_FAIL: EventType = t("gen_fail", "generation_failure", GEN_EVENT);
/// The top-of-body pixel was fetched.
pub const INITIAL_OPEN: EventType = t("initial_open", "initial_open", TRACK_EVENT);
/// The bottom-of-body pixel was fetched.
pub const OPEN: EventType = t("open", "open", TRACK_EVENT);
/// A tracked link was followed.
pub const CLICK: EventType = t("click", "click", TRACK_EVENT);
/// AMP initial open.
pub const AMP_INITIAL_OPEN: EventType = t("amp_initial_open", "amp_initial_open", TRACK_EVENT);
/// AMP open.
pub const AMP_OPEN: EventType = t("amp_open", "amp_open", TRACK_EVENT);
/// AMP click.
pub const AMP_CLICK: EventType = t("amp_click", "amp_click", TRACK_EVENT);
/// A `List-Unsubscribe` request.
pub const LIST_UNSUBSCRIBE: EventType = t("list", "list_unsubscribe", UNSUBSCRIBE_EVENT);
/// An unsubscribe link was followed.
pub const LINK_UNSUBSCRIBE: EventType = t("link", "link_unsubscribe", UNSUBSCRIBE_EVENT);

/// Every event type an MTA may upload, with its public name (spec §2.1).
pub const EVENT_TYPES: &[EventType] = &[
    RECEPTION,
    DELIVERY,
    INBAND,
    TEMPFAIL,
    OUTOFBAND,
    FEEDBACK,
    REJECTION,
    GEN_REJECTION,
    GEN_FAIL,
    INITIAL_OPEN,
    OPEN,
    CLICK,
    AMP_INITIAL_OPEN,
    AMP_OPEN,
    AMP_CLICK,
    LIST_UNSUBSCRIBE,
    LINK_UNSUBSCRIBE,
];

/// The wrapper keys SparkPost accepts on ingest (spec §1.3).
pub const GROUPINGS: &[&str] = &[
    MESSAGE_EVENT,
    TRACK_EVENT,
    GEN_EVENT,
    "adaptive_event",
    UNSUBSCRIBE_EVENT,
    "relay_event",
    "ab_test_event",
];

/// Public names accepted on ingest as well as the ingest names (SparkPost's behaviour is
/// unconfirmed; accepting them costs nothing and helps hand-written test data). Besides the
/// public names of [`EVENT_TYPES`] these are the relay and A/B test types, which have no
/// separate ingest name.
pub const PUBLIC_ONLY: &[&str] = &[
    "injection",
    "bounce",
    "delay",
    "out_of_band",
    "spam_complaint",
    "policy_rejection",
    "generation_rejection",
    "generation_failure",
    "list_unsubscribe",
    "link_unsubscribe",
    "relay_injection",
    "relay_rejection",
    "relay_delivery",
    "relay_tempfail",
    "relay_permfail",
    "ab_test_completed",
    "ab_test_cancelled",
];

/// The public name of an ingest or public type name, if it is a known type.
pub fn public_name(name: &str) -> Option<&'static str> {
    EVENT_TYPES
        .iter()
        .find(|t| t.ingest == name)
        .map(|t| t.public)
        .or_else(|| PUBLIC_ONLY.iter().find(|p| **p == name).copied())
}

/// PowerMTA accounting record types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// `d` delivery
    Delivery,
    /// `b` bounce
    Bounce,
    /// `t` transient
    Transient,
    /// `tq` transient-queue
    TransientQueue,
    /// `r` receipt
    Receipt,
    /// `f` feedback-loop
    FeedbackLoop,
    /// `rb` remote-bounce
    RemoteBounce,
    /// `rs` remote-status
    RemoteStatus,
}

impl RecordType {
    /// Parses a record type name (`d`, `delivery`, `tq`, ...).
    pub fn parse(s: &str) -> Option<RecordType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "d" | "delivery" => RecordType::Delivery,
            "b" | "bounce" => RecordType::Bounce,
            "t" | "transient" => RecordType::Transient,
            "tq" | "transient-queue" => RecordType::TransientQueue,
            "r" | "receipt" => RecordType::Receipt,
            "f" | "feedback-loop" => RecordType::FeedbackLoop,
            "rb" | "remote-bounce" => RecordType::RemoteBounce,
            "rs" | "remote-status" => RecordType::RemoteStatus,
            _ => return None,
        })
    }

    /// The short name written in an accounting row's first column (`d`, `b`, `tq`, …).
    pub fn code(self) -> &'static str {
        match self {
            RecordType::Delivery => "d",
            RecordType::Bounce => "b",
            RecordType::Transient => "t",
            RecordType::TransientQueue => "tq",
            RecordType::Receipt => "r",
            RecordType::FeedbackLoop => "f",
            RecordType::RemoteBounce => "rb",
            RecordType::RemoteStatus => "rs",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_maps_to_its_public_name() {
        for (i, a) in EVENT_TYPES.iter().enumerate() {
            assert!(GROUPINGS.contains(&a.grouping), "{a:?}");
            assert_eq!(public_name(a.ingest), Some(a.public));
            assert_eq!(public_name(a.public), Some(a.public), "{a:?}");
            for b in &EVENT_TYPES[i + 1..] {
                assert!(a.ingest != b.ingest && a.public != b.public, "{a:?} {b:?}");
            }
        }
        assert_eq!(public_name("inband"), Some("bounce"));
        assert_eq!(public_name("relay_delivery"), Some("relay_delivery"));
        assert_eq!(public_name("nope"), None);
    }

    #[test]
    fn record_codes_parse_back() {
        for t in [
            RecordType::Delivery,
            RecordType::Bounce,
            RecordType::Transient,
            RecordType::TransientQueue,
            RecordType::Receipt,
            RecordType::FeedbackLoop,
            RecordType::RemoteBounce,
            RecordType::RemoteStatus,
        ] {
            assert_eq!(RecordType::parse(t.code()), Some(t));
        }
        assert_eq!(
            RecordType::parse("transient-queue"),
            Some(RecordType::TransientQueue)
        );
        assert_eq!(RecordType::parse("x"), None);
    }
}
