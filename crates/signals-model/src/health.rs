//! petrel's Health Score: a published, explainable daily score in [0, 1].
//!
//! SparkPost's score is a proprietary model over all its senders; petrel's is a formula
//! anyone can check, built from the same twelve components (spec §4.4). Each component has
//! a raw rate `r` (its `weight_value`: a share of the day's injections) and contributes
//!
//! ```text
//! weight = sign × M × (1 − e^(−r / S))
//! ```
//!
//! where `M` is the component's largest possible effect and `S` the rate at which it has
//! taken 63 % of it (saturation: the first percent of hard bounces hurts far more than the
//! tenth). The score is
//!
//! ```text
//! health_score = clamp(BASELINE + Σ weight, 0, 1)
//! ```
//!
//! Every penalty is a non-decreasing function of its own count, and the components are
//! independent, so more hard bounces, blocks, complaints, trap hits or unsubscribes never
//! raise the score (property-tested in `tests/health_score.rs`). Calibration: a clean,
//! engaged list scores ≥ 0.8 and a list with 5 % hard bounces and 0.3 % complaints scores
//! < 0.55 whatever its engagement (also tested). Bands as in SparkPost's UI: < 0.55 bad,
//! 0.55–0.8 needs improvement, ≥ 0.8 good.

use crate::daily::Daily;

/// The score with no evidence either way.
pub const BASELINE: f64 = 0.70;

/// One component: name, direction, largest effect, saturation rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Component {
    /// `weight_type` as SparkPost's API names it.
    pub name: &'static str,
    /// +1 raises the score, −1 lowers it.
    pub sign: f64,
    /// `M`: the most this component can move the score.
    pub max_effect: f64,
    /// `S`: the rate at which 63 % of `M` is reached.
    pub saturation: f64,
    /// How the raw rate is computed (for the documentation and the API).
    pub rate: &'static str,
}

const fn comp(
    name: &'static str,
    sign: f64,
    max_effect: f64,
    saturation: f64,
    rate: &'static str,
) -> Component {
    Component {
        name,
        sign,
        max_effect,
        saturation,
        rate,
    }
}

/// The twelve components, in SparkPost's order.
pub const COMPONENTS: [Component; 12] = [
    comp(
        "List Quality",
        -1.0,
        0.10,
        0.02,
        "injections to role accounts or typo domains / injections",
    ),
    comp(
        "Hard Bounces",
        -1.0,
        0.30,
        0.02,
        "hard bounces / injections",
    ),
    comp(
        "Block Bounces",
        -1.0,
        0.20,
        0.02,
        "block bounces / injections",
    ),
    comp(
        "Complaints",
        -1.0,
        0.30,
        0.001,
        "spam complaints / injections",
    ),
    comp(
        "Transient Failures",
        -1.0,
        0.05,
        0.10,
        "first-attempt delays / injections",
    ),
    comp(
        "Other bounces",
        -1.0,
        0.05,
        0.05,
        "soft, undetermined and admin bounces / injections",
    ),
    comp(
        "eng cohorts: new, 14-day",
        1.0,
        0.15,
        0.30,
        "injections to new or 14-day-engaged recipients / injections",
    ),
    comp(
        "eng cohorts: unengaged",
        -1.0,
        0.10,
        0.20,
        "injections to never or not-for-a-year engaged recipients / injections",
    ),
    comp(
        "Spam Trap Hits",
        -1.0,
        0.20,
        0.002,
        "recycled and typo trap hits / injections (parked domains carry no weight)",
    ),
    comp(
        "Suppression Hits",
        -1.0,
        0.05,
        0.05,
        "suppressed recipients / (injections + suppressed recipients)",
    ),
    comp(
        "Historical Engagement",
        1.0,
        0.20,
        0.15,
        "messages injected in the 3 previous days that were opened or clicked / their injections",
    ),
    comp(
        "Unsubscribes",
        -1.0,
        0.10,
        0.005,
        "unsubscribes / injections",
    ),
];

/// What the score of one day needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DayInput {
    /// The day's counters.
    pub day: Daily,
    /// Injections of the three previous days.
    pub prev_injections: i64,
    /// Of those, messages that were opened or clicked.
    pub prev_engaged: i64,
}

/// One component's part in a score: SparkPost's `weights[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    /// `weight_type`.
    pub weight_type: &'static str,
    /// `weight`: signed contribution to the score.
    pub weight: f64,
    /// `weight_value`: the raw rate.
    pub weight_value: f64,
}

/// A day's score with its explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// In [0, 1].
    pub health_score: f64,
    /// One entry per component, in [`COMPONENTS`] order.
    pub weights: Vec<Weight>,
}

fn share(n: i64, d: i64) -> f64 {
    if d <= 0 {
        0.0
    } else {
        (n.max(0) as f64 / d as f64).min(1.0)
    }
}

/// The raw rates of the twelve components, in [`COMPONENTS`] order.
pub fn rates(input: &DayInput) -> [f64; 12] {
    let d = &input.day;
    let inj = d.injections;
    [
        share(d.list_quality_hits, inj),
        share(d.hard_bounces, inj),
        share(d.block_bounces, inj),
        share(d.complaints, inj),
        share(d.transient_failures, inj),
        share(d.other_bounces, inj),
        share(d.cohort[0] + d.cohort[1], inj),
        share(d.cohort[4], inj),
        share(d.trap_recycled + d.trap_typo, inj),
        share(d.suppression_hits, inj + d.suppression_hits),
        share(input.prev_engaged, input.prev_injections),
        share(d.unsubscribes, inj),
    ]
}

/// The score of a day, or `None` for a day without injections (nothing to judge).
pub fn score(input: &DayInput) -> Option<Score> {
    if input.day.injections <= 0 {
        return None;
    }
    let weights: Vec<Weight> = COMPONENTS
        .iter()
        .zip(rates(input))
        .map(|(c, r)| Weight {
            weight_type: c.name,
            weight: c.sign * c.max_effect * (1.0 - (-r / c.saturation).exp()),
            weight_value: r,
        })
        .collect();
    let total = BASELINE + weights.iter().map(|w| w.weight).sum::<f64>();
    Some(Score {
        health_score: total.clamp(0.0, 1.0),
        weights,
    })
}
