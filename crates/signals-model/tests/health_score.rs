//! The Health Score's published properties: monotone in every bad count, and calibrated so
//! a clean engaged list is "good" and a dirty one "bad".

use petrel_signals_model::daily::Daily;
use petrel_signals_model::health::{score, DayInput};
use proptest::prelude::*;

fn day(injections: i64) -> Daily {
    Daily {
        injections,
        ..Daily::default()
    }
}

/// 10,000 injections: 0.2 % hard, 0.1 % block, 1 % first-attempt delays, 0.2 % other
/// bounces, 0.02 % complaints, 0.1 % unsubscribes, 0.5 % role/typo addresses; 5 % new
/// and 60 % recently engaged recipients, 10 % unengaged; 30 % of the previous three days'
/// messages were opened or clicked.
fn clean_engaged() -> DayInput {
    let mut d = day(10_000);
    d.hard_bounces = 20;
    d.block_bounces = 10;
    d.transient_failures = 100;
    d.other_bounces = 20;
    d.complaints = 2;
    d.unsubscribes = 10;
    d.list_quality_hits = 50;
    d.cohort = [500, 6_000, 1_500, 1_000, 1_000];
    DayInput {
        day: d,
        prev_injections: 30_000,
        prev_engaged: 9_000,
    }
}

#[test]
fn a_clean_engaged_list_scores_good() {
    let s = score(&clean_engaged()).unwrap();
    assert!(s.health_score >= 0.8, "{s:#?}");
    assert_eq!(s.weights.len(), 12);
}

#[test]
fn five_percent_hard_bounces_and_point_three_percent_complaints_score_bad() {
    // Even with perfect engagement and nothing else wrong.
    let mut input = clean_engaged();
    input.day.hard_bounces = 500;
    input.day.complaints = 30;
    input.day.cohort = [0, 10_000, 0, 0, 0];
    input.prev_engaged = input.prev_injections;
    let s = score(&input).unwrap();
    assert!(s.health_score < 0.55, "{s:#?}");
    let hard = s
        .weights
        .iter()
        .find(|w| w.weight_type == "Hard Bounces")
        .unwrap();
    assert!((hard.weight_value - 0.05).abs() < 1e-12);
    assert!(hard.weight < 0.0);
}

#[test]
fn no_injections_no_score() {
    assert!(score(&DayInput::default()).is_none());
}

fn any_input() -> impl Strategy<Value = DayInput> {
    (
        1i64..50_000,
        prop::collection::vec(0i64..5_000, 17),
        0i64..100_000,
        0i64..100_000,
    )
        .prop_map(|(inj, v, pi, pe)| {
            let mut d = day(inj);
            d.hard_bounces = v[0];
            d.block_bounces = v[1];
            d.other_bounces = v[2];
            d.transient_failures = v[3];
            d.complaints = v[4];
            d.unsubscribes = v[5];
            d.trap_recycled = v[6];
            d.trap_typo = v[7];
            d.trap_parked = v[8];
            d.suppression_hits = v[9];
            d.list_quality_hits = v[10];
            d.cohort = [v[11], v[12], v[13], v[14], v[15]];
            DayInput {
                day: d,
                prev_injections: pi,
                prev_engaged: pe.min(pi),
            }
        })
}

proptest! {
    #[test]
    fn more_bad_events_never_raise_the_score(input in any_input(), extra in 1i64..10_000, which in 0usize..6) {
        let before = score(&input).unwrap().health_score;
        let mut worse = input;
        match which {
            0 => worse.day.hard_bounces += extra,
            1 => worse.day.block_bounces += extra,
            2 => worse.day.complaints += extra,
            3 => worse.day.trap_recycled += extra,
            4 => worse.day.trap_typo += extra,
            _ => worse.day.unsubscribes += extra,
        }
        let after = score(&worse).unwrap().health_score;
        prop_assert!(after <= before, "{which}: {before} -> {after}");
        prop_assert!((0.0..=1.0).contains(&after));
    }

    #[test]
    fn weights_explain_the_score(input in any_input()) {
        let s = score(&input).unwrap();
        let sum: f64 = s.weights.iter().map(|w| w.weight).sum();
        let expected = (petrel_signals_model::health::BASELINE + sum).clamp(0.0, 1.0);
        prop_assert!((s.health_score - expected).abs() < 1e-12);
        for w in &s.weights {
            prop_assert!((0.0..=1.0).contains(&w.weight_value));
        }
    }
}
