//! The additive counters a rollup row keeps, what one event adds to them, and the public
//! Metrics API metrics derived from them (spec §4.3).
//!
//! Rollups are kept per minute, hour and day (the "increments"). An event is counted in the
//! increment of its own timestamp. Unique counts (`count_unique_*`) are exact per message
//! within one increment: an open adds to `unique_rendered` only when no earlier open of the
//! same message fell in the same increment. That is why [`add_event`] takes the message's
//! earlier events, and why a unique count summed over several increments can exceed the
//! number of distinct messages (SparkPost's rollups behave the same, spec §4.2).

use crate::bounce::{self, Category};
use crate::types::EventType;

/// A rollup increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Increment {
    /// 60 s.
    Minute,
    /// 3600 s.
    Hour,
    /// 86400 s, UTC days.
    Day,
}

impl Increment {
    /// All increments, finest first.
    pub const ALL: [Increment; 3] = [Increment::Minute, Increment::Hour, Increment::Day];

    /// Length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Increment::Minute => 60,
            Increment::Hour => 3600,
            Increment::Day => 86400,
        }
    }

    /// Start of the increment holding `ts` (unix seconds, UTC).
    pub fn floor(self, ts: i64) -> i64 {
        ts.div_euclid(self.seconds()) * self.seconds()
    }

    /// A short name for table names and logs.
    pub fn name(self) -> &'static str {
        match self {
            Increment::Minute => "minute",
            Increment::Hour => "hour",
            Increment::Day => "day",
        }
    }
}

macro_rules! counters {
    ($(#[$meta:meta])* $name:ident { $($(#[$fm:meta])* $field:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$fm])* pub $field: i64,)*
        }

        impl $name {
            /// Column names, in storage order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];

            /// The values in [`Self::NAMES`] order.
            pub fn to_vec(&self) -> Vec<i64> {
                vec![$(self.$field),*]
            }

            /// Builds from values in [`Self::NAMES`] order (missing ones are 0).
            pub fn from_slice(v: &[i64]) -> Self {
                let mut it = v.iter().copied();
                $name { $($field: it.next().unwrap_or(0),)* }
            }

            /// Adds `other` field by field.
            pub fn add(&mut self, other: &Self) {
                $(self.$field += other.$field;)*
            }

            /// True when every counter is 0 (nothing to write).
            pub fn is_zero(&self) -> bool {
                true $(&& self.$field == 0)*
            }
        }
    };
}

counters!(
    /// What a Metrics rollup row sums. Every field is a plain count (or a sum of
    /// milliseconds / bytes), so rows of any increment, facet or backend add up.
    Counters {
        /// injection events.
        injected,
        /// policy_rejection events.
        policy_rejection,
        /// generation_rejection events.
        generation_rejection,
        /// generation_failure events.
        generation_failed,
        /// delivery events.
        delivered,
        /// deliveries on the first attempt (`num_retries` 0).
        delivered_first,
        /// deliveries on the second attempt (for `/attempt`).
        delivered_second,
        /// deliveries after one or more failed attempts.
        delivered_subsequent,
        /// Σ `queue_time` of first-attempt deliveries, ms.
        delivery_time_first,
        /// Σ `queue_time` of later deliveries, ms.
        delivery_time_subsequent,
        /// Σ `msg_size` of deliveries, bytes.
        msg_volume,
        /// in-band bounces, admin class excluded.
        inband_bounce,
        /// out-of-band bounces, admin class excluded.
        outofband_bounce,
        /// bounces (in-band + out-of-band) of the Hard category.
        hard_bounce,
        /// ... Soft category.
        soft_bounce,
        /// ... Block category.
        block_bounce,
        /// ... Undetermined category.
        undetermined_bounce,
        /// bounces of the Admin category (classes 25, 80).
        admin_bounce,
        /// delay events.
        delayed,
        /// delays on the first attempt.
        delayed_first,
        /// open events.
        rendered,
        /// open events not flagged as machine opens.
        nonprefetched_rendered,
        /// initial_open events.
        initial_rendered,
        /// initial_open events not flagged as machine opens.
        nonprefetched_initial_rendered,
        /// messages with ≥ 1 open in the increment.
        unique_rendered,
        /// ... counting only non-machine opens.
        nonprefetched_unique_rendered,
        /// messages with ≥ 1 initial_open in the increment.
        unique_initial_rendered,
        /// ... counting only non-machine ones.
        nonprefetched_unique_initial_rendered,
        /// messages with ≥ 1 open, initial_open or click in the increment.
        unique_confirmed_opened,
        /// ... counting only non-machine ones.
        nonprefetched_unique_confirmed_opened,
        /// click events.
        clicked,
        /// messages with ≥ 1 click in the increment.
        unique_clicked,
        /// distinct (message, link) clicks in the increment.
        raw_clicked,
        /// spam_complaint events.
        spam_complaint,
        /// link_unsubscribe + list_unsubscribe events.
        unsubscribe,
    }
);

/// What counting needs to know about one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFacts {
    /// Its type (`None`: a type no metric counts).
    pub kind: Option<EventType>,
    /// Unix seconds.
    pub ts: i64,
    /// `bounce_class`.
    pub bounce_class: Option<u16>,
    /// `num_retries`.
    pub num_retries: Option<u32>,
    /// `queue_time`, ms.
    pub queue_time_ms: Option<i64>,
    /// `msg_size`, bytes.
    pub msg_size: Option<i64>,
    /// Flagged by the tracker as a machine open/click (image proxy, link scanner).
    pub machine: bool,
    /// Click link: `target_link_name`, else `target_link_url`.
    pub link: Option<String>,
}

/// An earlier event of the same message, as [`add_event`] needs it for unique counts.
pub type Prior = EventFacts;

fn seen(history: &[Prior], inc: Increment, bucket: i64, pred: impl Fn(&Prior) -> bool) -> bool {
    history.iter().any(|p| inc.floor(p.ts) == bucket && pred(p))
}

/// What `ev` adds to the rollup row of its increment `inc`, given the earlier events of its
/// message (`history`, any order, `ev` itself not included).
pub fn add_event(ev: &EventFacts, history: &[Prior], inc: Increment) -> Counters {
    let mut c = Counters::default();
    let Some(kind) = ev.kind else { return c };
    let bucket = inc.floor(ev.ts);
    let first = ev.num_retries.unwrap_or(0) == 0;
    let is = |k: EventType| move |p: &Prior| p.kind == Some(k);
    let human = |p: &Prior| !p.machine;
    let engaged = |p: &Prior| p.kind.is_some_and(EventType::is_engagement);
    match kind {
        EventType::Injection => c.injected = 1,
        EventType::PolicyRejection => c.policy_rejection = 1,
        EventType::GenerationRejection => c.generation_rejection = 1,
        EventType::GenerationFailure => c.generation_failed = 1,
        EventType::Delivery => {
            c.delivered = 1;
            let ms = ev.queue_time_ms.unwrap_or(0);
            if first {
                c.delivered_first = 1;
                c.delivery_time_first = ms;
            } else {
                c.delivered_subsequent = 1;
                c.delivery_time_subsequent = ms;
                if ev.num_retries == Some(1) {
                    c.delivered_second = 1;
                }
            }
            c.msg_volume = ev.msg_size.unwrap_or(0);
        }
        EventType::Bounce | EventType::OutOfBand => {
            let category = bounce::class(ev.bounce_class).category;
            match category {
                Category::Admin => c.admin_bounce = 1,
                other => {
                    if kind == EventType::Bounce {
                        c.inband_bounce = 1;
                    } else {
                        c.outofband_bounce = 1;
                    }
                    match other {
                        Category::Hard => c.hard_bounce = 1,
                        Category::Soft => c.soft_bounce = 1,
                        Category::Block => c.block_bounce = 1,
                        _ => c.undetermined_bounce = 1,
                    }
                }
            }
        }
        EventType::Delay => {
            c.delayed = 1;
            if first {
                c.delayed_first = 1;
            }
        }
        EventType::Open | EventType::InitialOpen => {
            let initial = kind == EventType::InitialOpen;
            let same = is(kind);
            let new_unique = !seen(history, inc, bucket, same);
            let new_np_unique = !ev.machine && !seen(history, inc, bucket, |p| same(p) && human(p));
            let v = |b: bool| i64::from(b);
            if initial {
                c.initial_rendered = 1;
                c.nonprefetched_initial_rendered = v(!ev.machine);
                c.unique_initial_rendered = v(new_unique);
                c.nonprefetched_unique_initial_rendered = v(new_np_unique);
            } else {
                c.rendered = 1;
                c.nonprefetched_rendered = v(!ev.machine);
                c.unique_rendered = v(new_unique);
                c.nonprefetched_unique_rendered = v(new_np_unique);
            }
        }
        EventType::Click => {
            c.clicked = 1;
            c.unique_clicked = i64::from(!seen(history, inc, bucket, is(EventType::Click)));
            c.raw_clicked = i64::from(!seen(history, inc, bucket, |p| {
                p.kind == Some(EventType::Click) && p.link == ev.link
            }));
        }
        EventType::SpamComplaint => c.spam_complaint = 1,
        EventType::ListUnsubscribe | EventType::LinkUnsubscribe => c.unsubscribe = 1,
        EventType::Other => {}
    }
    if kind.is_engagement() {
        c.unique_confirmed_opened = i64::from(!seen(history, inc, bucket, engaged));
        c.nonprefetched_unique_confirmed_opened =
            i64::from(!ev.machine && !seen(history, inc, bucket, |p| engaged(p) && human(p)));
    }
    c
}

/// A public Metrics API metric: its name and how it is computed from [`Counters`].
pub struct Metric {
    /// The name in `metrics=` and in the answer.
    pub name: &'static str,
    /// Its value from summed counters.
    pub value: fn(&Counters) -> i64,
}

macro_rules! direct {
    ($name:literal, $field:ident) => {
        Metric {
            name: $name,
            value: |c| c.$field,
        }
    };
}

/// Every metric of spec §4.3 petrel's events can feed, in SparkPost's order.
pub const METRICS: &[Metric] = &[
    Metric {
        name: "count_targeted",
        value: |c| c.injected + c.policy_rejection + c.generation_rejection + c.generation_failed,
    },
    direct!("count_injected", injected),
    Metric {
        name: "count_rejected",
        value: |c| c.policy_rejection + c.generation_rejection + c.generation_failed,
    },
    direct!("count_policy_rejection", policy_rejection),
    direct!("count_generation_rejection", generation_rejection),
    direct!("count_generation_failed", generation_failed),
    Metric {
        name: "count_sent",
        value: |c| c.delivered + c.inband_bounce,
    },
    direct!("count_delivered", delivered),
    direct!("count_delivered_first", delivered_first),
    direct!("count_delivered_subsequent", delivered_subsequent),
    Metric {
        name: "count_accepted",
        value: |c| (c.delivered - c.outofband_bounce).max(0),
    },
    Metric {
        name: "count_bounce",
        value: |c| c.inband_bounce + c.outofband_bounce,
    },
    direct!("count_inband_bounce", inband_bounce),
    direct!("count_outofband_bounce", outofband_bounce),
    direct!("count_hard_bounce", hard_bounce),
    direct!("count_soft_bounce", soft_bounce),
    direct!("count_block_bounce", block_bounce),
    direct!("count_admin_bounce", admin_bounce),
    direct!("count_undetermined_bounce", undetermined_bounce),
    direct!("count_delayed", delayed),
    direct!("count_delayed_first", delayed_first),
    direct!("total_delivery_time_first", delivery_time_first),
    direct!("total_delivery_time_subsequent", delivery_time_subsequent),
    direct!("total_msg_volume", msg_volume),
    direct!("count_rendered", rendered),
    direct!("count_nonprefetched_rendered", nonprefetched_rendered),
    direct!("count_initial_rendered", initial_rendered),
    direct!(
        "count_nonprefetched_initial_rendered",
        nonprefetched_initial_rendered
    ),
    direct!("count_unique_rendered", unique_rendered),
    direct!(
        "count_nonprefetched_unique_rendered",
        nonprefetched_unique_rendered
    ),
    direct!("count_unique_initial_rendered", unique_initial_rendered),
    direct!(
        "count_nonprefetched_unique_initial_rendered",
        nonprefetched_unique_initial_rendered
    ),
    direct!("count_unique_confirmed_opened", unique_confirmed_opened),
    direct!(
        "count_nonprefetched_unique_confirmed_opened",
        nonprefetched_unique_confirmed_opened
    ),
    direct!("count_clicked", clicked),
    direct!("count_unique_clicked", unique_clicked),
    direct!("count_raw_clicked", raw_clicked),
    direct!("count_spam_complaint", spam_complaint),
    direct!("count_unsubscribe", unsubscribe),
];

/// The metric with this name.
pub fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventType, ts: i64) -> EventFacts {
        EventFacts {
            kind: Some(kind),
            ts,
            ..EventFacts::default()
        }
    }

    #[test]
    fn uniques_are_per_increment() {
        let first = ev(EventType::Open, 1_000_020);
        let second = ev(EventType::Open, 1_000_200);
        let history = vec![first.clone()];
        // Different minutes: unique again in the minute rollup, not in the hour rollup.
        assert_eq!(
            add_event(&second, &history, Increment::Minute).unique_rendered,
            1
        );
        assert_eq!(
            add_event(&second, &history, Increment::Hour).unique_rendered,
            0
        );
        assert_eq!(
            add_event(&first, &[], Increment::Hour).unique_confirmed_opened,
            1
        );
        // A click after an open is a unique click but not a new confirmed open.
        let click = EventFacts {
            link: Some("hero".into()),
            ..ev(EventType::Click, 1_000_030)
        };
        let c = add_event(&click, &history, Increment::Hour);
        assert_eq!((c.clicked, c.unique_clicked, c.raw_clicked), (1, 1, 1));
        assert_eq!(c.unique_confirmed_opened, 0);
        let again = add_event(&click, &[first, click.clone()], Increment::Hour);
        assert_eq!((again.unique_clicked, again.raw_clicked), (0, 0));
    }

    #[test]
    fn bounces_by_category_and_derived_metrics() {
        let hard = EventFacts {
            bounce_class: Some(10),
            ..ev(EventType::Bounce, 0)
        };
        let admin = EventFacts {
            bounce_class: Some(25),
            ..ev(EventType::Bounce, 0)
        };
        let mut sum = add_event(&hard, &[], Increment::Day);
        sum.add(&add_event(&admin, &[], Increment::Day));
        sum.add(&add_event(&ev(EventType::Delivery, 0), &[], Increment::Day));
        sum.add(&add_event(
            &EventFacts {
                bounce_class: Some(10),
                ..ev(EventType::OutOfBand, 0)
            },
            &[],
            Increment::Day,
        ));
        let m = |n: &str| (metric(n).unwrap().value)(&sum);
        assert_eq!(m("count_bounce"), 2);
        assert_eq!(m("count_hard_bounce"), 2);
        assert_eq!(m("count_admin_bounce"), 1);
        assert_eq!(m("count_sent"), 2);
        assert_eq!(m("count_accepted"), 0);
    }
}
