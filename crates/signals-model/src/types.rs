//! What each event type counts as. The names themselves (SparkPost's ingest names such as
//! `reception` or `inband`, and the public ones its reports show, `injection`, `bounce`, …)
//! live in `petrel-event-types`, the one table the emitter and the ingest validation read
//! too; this module only says which metric a type feeds.

use petrel_event_types as names;

/// The public name of an ingest or public type name, if known (from the shared table).
pub use petrel_event_types::public_name;

/// A public event type that the analytics count. Types that exist but feed no metric
/// (relay and A/B events) are [`EventType::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `injection` (ingest `reception`).
    Injection,
    /// `delivery`.
    Delivery,
    /// `bounce` (ingest `inband`): permanent failure in the SMTP session.
    Bounce,
    /// `delay` (ingest `tempfail`).
    Delay,
    /// `out_of_band` (ingest `outofband`): a DSN after a delivery.
    OutOfBand,
    /// `spam_complaint` (ingest `feedback`).
    SpamComplaint,
    /// `policy_rejection` (ingest `rejection`).
    PolicyRejection,
    /// `generation_rejection` (ingest `gen_rejection`).
    GenerationRejection,
    /// `generation_failure` (ingest `gen_fail`).
    GenerationFailure,
    /// `initial_open` (top pixel) and `amp_initial_open`.
    InitialOpen,
    /// `open` (bottom pixel) and `amp_open`.
    Open,
    /// `click` and `amp_click`.
    Click,
    /// `list_unsubscribe` (ingest `list`).
    ListUnsubscribe,
    /// `link_unsubscribe` (ingest `link`): a link marked `data-msys-unsubscribe="1"`.
    LinkUnsubscribe,
    /// A known type no metric counts (relay, A/B test events).
    Other,
}

/// The shared table's types and what each counts as; a known type not listed here (relay
/// and A/B test events) counts as [`EventType::Other`].
const COUNTED_AS: &[(&names::EventType, EventType)] = &[
    (&names::RECEPTION, EventType::Injection),
    (&names::DELIVERY, EventType::Delivery),
    (&names::INBAND, EventType::Bounce),
    (&names::TEMPFAIL, EventType::Delay),
    (&names::OUTOFBAND, EventType::OutOfBand),
    (&names::FEEDBACK, EventType::SpamComplaint),
    (&names::REJECTION, EventType::PolicyRejection),
    (&names::GEN_REJECTION, EventType::GenerationRejection),
    (&names::GEN_FAIL, EventType::GenerationFailure),
    (&names::INITIAL_OPEN, EventType::InitialOpen),
    (&names::AMP_INITIAL_OPEN, EventType::InitialOpen),
    (&names::OPEN, EventType::Open),
    (&names::AMP_OPEN, EventType::Open),
    (&names::CLICK, EventType::Click),
    (&names::AMP_CLICK, EventType::Click),
    (&names::LIST_UNSUBSCRIBE, EventType::ListUnsubscribe),
    (&names::LINK_UNSUBSCRIBE, EventType::LinkUnsubscribe),
];

impl EventType {
    /// The type of an ingest or public name, if known.
    pub fn parse(name: &str) -> Option<EventType> {
        let public = public_name(name)?;
        Some(
            COUNTED_AS
                .iter()
                .find(|(t, _)| t.public == public)
                .map_or(EventType::Other, |(_, counted)| *counted),
        )
    }

    /// Opens and clicks: the events that make a recipient "engaged".
    pub fn is_engagement(self) -> bool {
        matches!(
            self,
            EventType::InitialOpen | EventType::Open | EventType::Click
        )
    }

    /// Unsubscribes of either kind.
    pub fn is_unsubscribe(self) -> bool {
        matches!(
            self,
            EventType::ListUnsubscribe | EventType::LinkUnsubscribe
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_and_public_names_meet() {
        assert_eq!(public_name("reception"), Some("injection"));
        assert_eq!(public_name("link"), Some("link_unsubscribe"));
        assert_eq!(EventType::parse("link"), Some(EventType::LinkUnsubscribe));
        assert_eq!(EventType::parse("amp_click"), Some(EventType::Click));
        assert_eq!(EventType::parse("inband"), Some(EventType::Bounce));
        assert_eq!(EventType::parse("bounce"), Some(EventType::Bounce));
        assert_eq!(EventType::parse("relay_delivery"), Some(EventType::Other));
        assert_eq!(EventType::parse("banana"), None);
    }

    #[test]
    fn every_type_of_the_shared_table_is_counted() {
        for t in names::EVENT_TYPES {
            let ingest = EventType::parse(t.ingest);
            assert!(
                ingest.is_some_and(|k| k != EventType::Other),
                "{}",
                t.ingest
            );
            assert_eq!(EventType::parse(t.public), ingest, "{}", t.public);
        }
        for public in names::PUBLIC_ONLY {
            assert!(EventType::parse(public).is_some(), "{public}");
        }
    }
}
