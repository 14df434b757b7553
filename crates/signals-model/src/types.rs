//! Event type names: SparkPost's ingest API takes the MTA's internal names (`reception`,
//! `inband`, …), its reports show public ones (`injection`, `bounce`, …). This is the one
//! table that maps them (spec §2.1); everything that needs a type name goes through it.

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

/// Ingest name → public name (spec §2.1).
const INGEST_TO_PUBLIC: &[(&str, &str)] = &[
    ("reception", "injection"),
    ("delivery", "delivery"),
    ("inband", "bounce"),
    ("tempfail", "delay"),
    ("outofband", "out_of_band"),
    ("feedback", "spam_complaint"),
    ("rejection", "policy_rejection"),
    ("gen_rejection", "generation_rejection"),
    ("gen_fail", "generation_failure"),
    ("initial_open", "initial_open"),
    ("open", "open"),
    ("click", "click"),
    ("amp_initial_open", "amp_initial_open"),
    ("amp_open", "amp_open"),
    ("amp_click", "amp_click"),
    ("list", "list_unsubscribe"),
    ("link", "link_unsubscribe"),
];

/// Public names that are also accepted on ingest (SparkPost's behaviour is unconfirmed;
/// accepting them helps hand-written data), with the type each counts as.
const PUBLIC: &[(&str, EventType)] = &[
    ("injection", EventType::Injection),
    ("delivery", EventType::Delivery),
    ("bounce", EventType::Bounce),
    ("delay", EventType::Delay),
    ("out_of_band", EventType::OutOfBand),
    ("spam_complaint", EventType::SpamComplaint),
    ("policy_rejection", EventType::PolicyRejection),
    ("generation_rejection", EventType::GenerationRejection),
    ("generation_failure", EventType::GenerationFailure),
    ("initial_open", EventType::InitialOpen),
    ("amp_initial_open", EventType::InitialOpen),
    ("open", EventType::Open),
    ("amp_open", EventType::Open),
    ("click", EventType::Click),
    ("amp_click", EventType::Click),
    ("list_unsubscribe", EventType::ListUnsubscribe),
    ("link_unsubscribe", EventType::LinkUnsubscribe),
    ("relay_injection", EventType::Other),
    ("relay_rejection", EventType::Other),
    ("relay_delivery", EventType::Other),
    ("relay_tempfail", EventType::Other),
    ("relay_permfail", EventType::Other),
    ("ab_test_completed", EventType::Other),
    ("ab_test_cancelled", EventType::Other),
];

/// The public name of an ingest or public type name, if known.
pub fn public_name(name: &str) -> Option<&'static str> {
    INGEST_TO_PUBLIC
        .iter()
        .find(|(i, _)| *i == name)
        .map(|(_, p)| *p)
        .or_else(|| PUBLIC.iter().find(|(p, _)| *p == name).map(|(p, _)| *p))
}

impl EventType {
    /// The type of an ingest or public name, if known.
    pub fn parse(name: &str) -> Option<EventType> {
        let public = public_name(name)?;
        PUBLIC.iter().find(|(p, _)| *p == public).map(|(_, t)| *t)
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
        assert_eq!(EventType::parse("banana"), None);
        for (ingest, public) in INGEST_TO_PUBLIC {
            assert!(EventType::parse(ingest).is_some(), "{ingest}");
            assert!(EventType::parse(public).is_some(), "{public}");
        }
    }
}
