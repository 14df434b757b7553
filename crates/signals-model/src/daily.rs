//! The per-day counters behind the Signals API (health score, spam traps, engagement
//! cohorts), kept per UTC day and facet. Signals work "from injections" (spec §4.4): rates
//! are shares of the day's injections, and the behaviour of a cohort (did its messages get
//! opened, unsubscribed, complained about) is counted on the day of the *injection*, once
//! per message, so `p_14d_eng` reads "of the messages injected to recently engaged
//! recipients that day, the share that engaged".

use crate::bounce::{self, Category};
use crate::cohort::Cohort;
use crate::counters::EventFacts;
use crate::traps::TrapType;
use crate::types::EventType;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// Signals counters of one day and facet value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Daily {
    /// injection events.
    pub injections: i64,
    /// in-band and out-of-band bounces of the Hard category.
    pub hard_bounces: i64,
    /// ... of the Block category.
    pub block_bounces: i64,
    /// ... of every other category (soft, undetermined, admin).
    pub other_bounces: i64,
    /// delays on the first attempt.
    pub transient_failures: i64,
    /// spam complaints.
    pub complaints: i64,
    /// link and list unsubscribes.
    pub unsubscribes: i64,
    /// injections to the operator's recycled traps.
    pub trap_recycled: i64,
    /// injections to typo domains / typo traps.
    pub trap_typo: i64,
    /// injections to parked domains.
    pub trap_parked: i64,
    /// recipients refused because they are suppressed (petrel's policy rejections).
    pub suppression_hits: i64,
    /// injections to role accounts or typo domains.
    pub list_quality_hits: i64,
    /// injections per cohort, in [`Cohort::ALL`] order.
    pub cohort: [i64; 5],
    /// messages injected that day, per cohort, that were later opened or clicked.
    pub engaged: [i64; 5],
    /// ... that were later unsubscribed.
    pub unsubscribed: [i64; 5],
    /// ... that were later complained about.
    pub complained: [i64; 5],
}

impl Daily {
    /// Column names in [`Daily::to_vec`] order.
    pub fn names() -> Vec<String> {
        let mut v: Vec<String> = [
            "injections",
            "hard_bounces",
            "block_bounces",
            "other_bounces",
            "transient_failures",
            "complaints",
            "unsubscribes",
            "trap_recycled",
            "trap_typo",
            "trap_parked",
            "suppression_hits",
            "list_quality_hits",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for prefix in ["c", "eng", "unsub", "fbl"] {
            for c in Cohort::ALL {
                v.push(format!("{prefix}_{}", c.key()));
            }
        }
        v
    }

    /// The values in [`Daily::names`] order.
    pub fn to_vec(&self) -> Vec<i64> {
        let mut v = vec![
            self.injections,
            self.hard_bounces,
            self.block_bounces,
            self.other_bounces,
            self.transient_failures,
            self.complaints,
            self.unsubscribes,
            self.trap_recycled,
            self.trap_typo,
            self.trap_parked,
            self.suppression_hits,
            self.list_quality_hits,
        ];
        for a in [
            self.cohort,
            self.engaged,
            self.unsubscribed,
            self.complained,
        ] {
            v.extend(a);
        }
        v
    }

    /// Builds from values in [`Daily::names`] order.
    pub fn from_slice(v: &[i64]) -> Daily {
        let g = |i: usize| v.get(i).copied().unwrap_or(0);
        let arr = |start: usize| {
            [
                g(start),
                g(start + 1),
                g(start + 2),
                g(start + 3),
                g(start + 4),
            ]
        };
        Daily {
            injections: g(0),
            hard_bounces: g(1),
            block_bounces: g(2),
            other_bounces: g(3),
            transient_failures: g(4),
            complaints: g(5),
            unsubscribes: g(6),
            trap_recycled: g(7),
            trap_typo: g(8),
            trap_parked: g(9),
            suppression_hits: g(10),
            list_quality_hits: g(11),
            cohort: arr(12),
            engaged: arr(17),
            unsubscribed: arr(22),
            complained: arr(27),
        }
    }

    /// Adds `o` field by field.
    pub fn add(&mut self, o: &Daily) {
        let mut v = self.to_vec();
        for (a, b) in v.iter_mut().zip(o.to_vec()) {
            *a += b;
        }
        *self = Daily::from_slice(&v);
    }

    /// True when every counter is 0.
    pub fn is_zero(&self) -> bool {
        self.to_vec().iter().all(|v| *v == 0)
    }

    /// Trap hits of every type.
    pub fn trap_hits(&self) -> i64 {
        self.trap_recycled + self.trap_typo + self.trap_parked
    }

    /// Messages injected that day that engaged, over all cohorts.
    pub fn engaged_total(&self) -> i64 {
        self.engaged.iter().sum()
    }
}

/// What an injection is, for the Signals counters: computed at ingest by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectionFacts {
    /// The recipient's cohort at injection time.
    pub cohort: Cohort,
    /// A trap hit, if the recipient is one.
    pub trap: Option<TrapType>,
    /// A role account or typo domain.
    pub list_quality_hit: bool,
}

/// The message's injection, when an engagement, unsubscribe or complaint is counted
/// against it, and whether this is the first event of its kind for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectionRef {
    /// Injection time, unix seconds.
    pub ts: i64,
    /// Its cohort.
    pub cohort: Cohort,
}

/// The Signals counters one event adds: on its own day, and (for the first engagement,
/// unsubscribe or complaint of a message) on the day of its injection. Returns
/// `(day_start, counters)` pairs.
pub fn add_event(
    ev: &EventFacts,
    injection: Option<&InjectionFacts>,
    injected: Option<InjectionRef>,
    first_of_kind: bool,
) -> Vec<(i64, Daily)> {
    let mut out = Vec::new();
    let Some(kind) = ev.kind else { return out };
    let day = ev.ts.div_euclid(DAY) * DAY;
    let mut d = Daily::default();
    match kind {
        EventType::Injection => {
            d.injections = 1;
            if let Some(f) = injection {
                d.cohort[idx(f.cohort)] = 1;
                match f.trap {
                    Some(TrapType::Recycled) => d.trap_recycled = 1,
                    Some(TrapType::Typo) => d.trap_typo = 1,
                    Some(TrapType::Parked) => d.trap_parked = 1,
                    None => {}
                }
                d.list_quality_hits = i64::from(f.list_quality_hit);
            }
        }
        EventType::Bounce | EventType::OutOfBand => match bounce::class(ev.bounce_class).category {
            Category::Hard => d.hard_bounces = 1,
            Category::Block => d.block_bounces = 1,
            _ => d.other_bounces = 1,
        },
        EventType::Delay if ev.num_retries.unwrap_or(0) == 0 => d.transient_failures = 1,
        EventType::SpamComplaint => d.complaints = 1,
        EventType::ListUnsubscribe | EventType::LinkUnsubscribe => d.unsubscribes = 1,
        EventType::PolicyRejection => d.suppression_hits = 1,
        _ => {}
    }
    if !d.is_zero() {
        out.push((day, d));
    }
    if let (Some(inj), true) = (injected, first_of_kind) {
        let mut b = Daily::default();
        let i = idx(inj.cohort);
        if kind.is_engagement() {
            b.engaged[i] = 1;
        } else if kind.is_unsubscribe() {
            b.unsubscribed[i] = 1;
        } else if kind == EventType::SpamComplaint {
            b.complained[i] = 1;
        }
        if !b.is_zero() {
            out.push((inj.ts.div_euclid(DAY) * DAY, b));
        }
    }
    out
}

fn idx(c: Cohort) -> usize {
    Cohort::ALL.iter().position(|x| *x == c).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_line_up() {
        let mut d = Daily {
            injections: 3,
            ..Daily::default()
        };
        d.complained[4] = 7;
        assert_eq!(Daily::names().len(), d.to_vec().len());
        assert_eq!(Daily::from_slice(&d.to_vec()), d);
        assert_eq!(Daily::names()[31], "fbl_uneng");
    }

    #[test]
    fn engagement_counts_on_the_injection_day() {
        let click = EventFacts {
            kind: Some(EventType::Click),
            ts: 3 * DAY + 5,
            ..EventFacts::default()
        };
        let inj = InjectionRef {
            ts: DAY + 7,
            cohort: Cohort::Recent14,
        };
        let out = add_event(&click, None, Some(inj), true);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, DAY);
        assert_eq!(out[0].1.engaged[1], 1);
        assert!(add_event(&click, None, Some(inj), false).is_empty());
    }
}
