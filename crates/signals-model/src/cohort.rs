//! Engagement-recency cohorts (spec §4.4): which group a recipient belongs to when a message
//! is injected for them, from when they were first mailed and when they last opened or
//! clicked.

/// Seconds in a day.
const DAY: i64 = 86_400;

/// An engagement-recency cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cohort {
    /// First mailed within the last 7 days and never engaged (`c_new`).
    New,
    /// Last engaged within 14 days (`c_14d`).
    Recent14,
    /// Last engaged 14–90 days ago (`c_90d`).
    Recent90,
    /// Last engaged 90–365 days ago (`c_365d`).
    Recent365,
    /// Mailed for more than 7 days and never engaged, or last engaged over 365 days ago
    /// (`c_uneng`).
    Unengaged,
}

impl Cohort {
    /// All cohorts in SparkPost's order.
    pub const ALL: [Cohort; 5] = [
        Cohort::New,
        Cohort::Recent14,
        Cohort::Recent90,
        Cohort::Recent365,
        Cohort::Unengaged,
    ];

    /// The key in API names: `new`, `14d`, `90d`, `365d`, `uneng`.
    pub fn key(self) -> &'static str {
        match self {
            Cohort::New => "new",
            Cohort::Recent14 => "14d",
            Cohort::Recent90 => "90d",
            Cohort::Recent365 => "365d",
            Cohort::Unengaged => "uneng",
        }
    }

    /// A small stable number for storage.
    pub fn code(self) -> i64 {
        match self {
            Cohort::New => 0,
            Cohort::Recent14 => 1,
            Cohort::Recent90 => 2,
            Cohort::Recent365 => 3,
            Cohort::Unengaged => 4,
        }
    }

    /// The cohort stored as [`Cohort::code`].
    pub fn from_code(code: i64) -> Option<Cohort> {
        Cohort::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// What the service remembers of one recipient (by address, or by `rcpt_hash` under
/// `privacy-policy sha1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecipientState {
    /// Earliest injection seen, unix seconds.
    pub first_mailed: Option<i64>,
    /// Latest open, initial open or click seen, unix seconds.
    pub last_engaged: Option<i64>,
}

/// The cohort of a recipient whose message is injected at `at`. Engagement recorded after
/// `at` (events that arrived out of order) does not count.
pub fn classify(state: RecipientState, at: i64) -> Cohort {
    match state.last_engaged.filter(|e| *e <= at) {
        Some(e) => {
            let age = at - e;
            if age <= 14 * DAY {
                Cohort::Recent14
            } else if age <= 90 * DAY {
                Cohort::Recent90
            } else if age <= 365 * DAY {
                Cohort::Recent365
            } else {
                Cohort::Unengaged
            }
        }
        None => match state.first_mailed.filter(|f| *f <= at) {
            Some(f) if at - f > 7 * DAY => Cohort::Unengaged,
            _ => Cohort::New,
        },
    }
}

/// The state after an injection at `at`.
pub fn after_injection(state: RecipientState, at: i64) -> RecipientState {
    RecipientState {
        first_mailed: Some(state.first_mailed.map_or(at, |f| f.min(at))),
        ..state
    }
}

/// The state after an open or click at `at`.
pub fn after_engagement(state: RecipientState, at: i64) -> RecipientState {
    RecipientState {
        last_engaged: Some(state.last_engaged.map_or(at, |e| e.max(at))),
        ..state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cohort_rules() {
        let t = 1_000 * DAY;
        let s = |f: Option<i64>, e: Option<i64>| RecipientState {
            first_mailed: f,
            last_engaged: e,
        };
        assert_eq!(classify(s(None, None), t), Cohort::New);
        assert_eq!(classify(s(Some(t - 6 * DAY), None), t), Cohort::New);
        assert_eq!(classify(s(Some(t - 8 * DAY), None), t), Cohort::Unengaged);
        assert_eq!(classify(s(Some(0), Some(t - DAY)), t), Cohort::Recent14);
        assert_eq!(
            classify(s(Some(0), Some(t - 30 * DAY)), t),
            Cohort::Recent90
        );
        assert_eq!(
            classify(s(Some(0), Some(t - 200 * DAY)), t),
            Cohort::Recent365
        );
        assert_eq!(
            classify(s(Some(0), Some(t - 400 * DAY)), t),
            Cohort::Unengaged
        );
        // An engagement after the injection does not count for it.
        assert_eq!(classify(s(Some(t), Some(t + 10)), t), Cohort::New);
        let st = after_engagement(after_injection(RecipientState::default(), t), t + 5);
        assert_eq!(st.first_mailed, Some(t));
        assert_eq!(after_injection(st, t - 5).first_mailed, Some(t - 5));
        assert_eq!(after_engagement(st, t).last_engaged, Some(t + 5));
    }
}
