//! What one stored event adds to the analytics, apart from how a backend keeps it: the facet
//! values it is counted under, its Metrics counters per increment, its reason-report counts
//! and its daily Signals counters. Everything that needs the database (the message's
//! earlier events, the recipient's state at injection) is passed in, so every backend that
//! feeds these functions the same history gives the same answers.
//!
//! The SQLite backend computes the same things in `sqlite/ingest.rs` (it predates this
//! module); the ClickHouse backend uses this one.

use petrel_signals_model::cohort::Cohort;
use petrel_signals_model::counters::{self, Counters, EventFacts, Increment};
use petrel_signals_model::daily::{self, Daily, InjectionFacts, InjectionRef};
use petrel_signals_model::types::EventType;

use super::{Dims, Facet, ReasonKind};
use crate::event::StoredEvent;

/// An earlier event of the same message, as counting and enrichment need it.
#[derive(Debug, Clone)]
pub(crate) struct Prior {
    /// Type, time, click link and machine flag (the rest stays default).
    pub facts: EventFacts,
    /// The stored JSON, for deliveries and injections (the enrichment source).
    pub json: Option<String>,
    /// The recipient's cohort when the message was injected (injections only).
    pub cohort: Option<Cohort>,
}

impl Prior {
    /// What a later event of the message needs to know about `ev`, stored with `cohort`.
    pub fn of(ev: &StoredEvent, cohort: Option<Cohort>) -> Prior {
        let kind = ev.facts.kind;
        Prior {
            facts: EventFacts {
                kind,
                ts: ev.timestamp,
                link: ev
                    .facts
                    .link
                    .clone()
                    .filter(|_| kind == Some(EventType::Click)),
                machine: ev.facts.machine,
                ..EventFacts::default()
            },
            json: matches!(kind, Some(EventType::Delivery | EventType::Injection))
                .then(|| ev.json.clone()),
            cohort,
        }
    }
}

/// True for the types whose counts or enrichment depend on the message's earlier events.
pub(crate) fn needs_history(kind: Option<EventType>) -> bool {
    kind.is_some_and(|k| {
        k.is_engagement()
            || k.is_unsubscribe()
            || matches!(k, EventType::SpamComplaint | EventType::OutOfBand)
    })
}

/// True for the types a later event of the message ever looks back at (enrichment source,
/// injection cohort, earlier engagement, unsubscribe or complaint).
pub(crate) fn kept_in_history(kind: Option<EventType>) -> bool {
    kind.is_some_and(|k| {
        k.is_engagement()
            || k.is_unsubscribe()
            || matches!(
                k,
                EventType::Injection | EventType::Delivery | EventType::SpamComplaint
            )
    })
}

/// The stored JSON of the newest delivery, else injection, of the message (the last one in
/// storage order among equally new ones).
pub(crate) fn original(history: &[Prior]) -> Option<&str> {
    let newest = |k: EventType| {
        history
            .iter()
            .filter(|p| p.facts.kind == Some(k) && p.json.is_some())
            .max_by_key(|p| p.facts.ts)
            .and_then(|p| p.json.as_deref())
    };
    newest(EventType::Delivery).or_else(|| newest(EventType::Injection))
}

/// The facet values an event is counted under.
pub(crate) fn dims_of(ev: &StoredEvent) -> Dims {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let domain = s(&ev.recipient_domain);
    Dims {
        subaccount: ev.subaccount_id.unwrap_or(0),
        campaign: s(&ev.campaign_id),
        template: s(&ev.template_id),
        ip_pool: s(&ev.ip_pool),
        sending_ip: s(&ev.sending_ip),
        sending_domain: s(&ev.sending_domain),
        mailbox_provider: s(&ev.mailbox_provider),
        region: ev.region.clone().unwrap_or_else(|| {
            if domain.is_empty() {
                String::new()
            } else {
                "Global".into()
            }
        }),
        domain,
    }
}

/// A reason-report entry: which report, the class (bounce class or rejection category),
/// the reason text (or link name) and the four counts of [`super::ReasonRow::counts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReasonAdd {
    pub kind: ReasonKind,
    pub class: i64,
    pub text: String,
    pub counts: [i64; 4],
}

fn reason_of(ev: &StoredEvent, c: &Counters) -> Option<ReasonAdd> {
    let kind = ev.facts.kind?;
    let reason = || ev.reason.clone().unwrap_or_default();
    let add = |kind, class, text, counts| {
        Some(ReasonAdd {
            kind,
            class,
            text,
            counts,
        })
    };
    match kind {
        EventType::Bounce | EventType::OutOfBand => add(
            ReasonKind::Bounce,
            i64::from(petrel_signals_model::bounce::class(ev.facts.bounce_class).code),
            reason(),
            [c.inband_bounce, c.outofband_bounce, c.admin_bounce, 0],
        ),
        EventType::Delay => add(
            ReasonKind::Delay,
            0,
            reason(),
            [c.delayed, c.delayed_first, 0, 0],
        ),
        EventType::PolicyRejection => add(ReasonKind::Rejection, 1, reason(), [1, 0, 0, 0]),
        EventType::GenerationRejection => add(ReasonKind::Rejection, 2, reason(), [1, 0, 0, 0]),
        EventType::GenerationFailure => add(ReasonKind::Rejection, 3, reason(), [1, 0, 0, 0]),
        EventType::Click => add(
            ReasonKind::Link,
            0,
            ev.facts.link.clone().unwrap_or_else(|| "Raw URL".into()),
            [c.clicked, c.raw_clicked, 0, 0],
        ),
        _ => None,
    }
}

/// Everything one new event adds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Adds {
    /// Metrics counters per increment, in [`Increment::ALL`] order (zero: nothing to add).
    pub metrics: [Counters; 3],
    /// Reason-report counts per increment (only non-zero ones).
    pub reasons: [Option<ReasonAdd>; 3],
    /// Daily Signals counters: `(day start, counters)`.
    pub daily: Vec<(i64, Daily)>,
}

/// What the new event `ev` adds, given its message's earlier events (`prior`, storage order)
/// and, for an injection, the recipient's cohort at that moment. `None` for types no
/// metric counts.
pub(crate) fn count(ev: &StoredEvent, prior: &[Prior], cohort_now: Option<Cohort>) -> Option<Adds> {
    ev.facts.kind?;
    let prior_facts: Vec<EventFacts> = prior.iter().map(|p| p.facts.clone()).collect();
    let mut adds = Adds::default();
    for (i, inc) in Increment::ALL.into_iter().enumerate() {
        let c = counters::add_event(&ev.facts, &prior_facts, inc);
        adds.reasons[i] = reason_of(ev, &c).filter(|r| r.counts.iter().any(|v| *v != 0));
        adds.metrics[i] = c;
    }
    let injection_facts = cohort_now.map(|c| InjectionFacts {
        cohort: c,
        trap: ev.trap,
        list_quality_hit: ev.list_quality_hit,
    });
    let injected = prior
        .iter()
        .filter(|p| p.facts.kind == Some(EventType::Injection))
        .find_map(|p| {
            p.cohort.map(|c| InjectionRef {
                ts: p.facts.ts,
                cohort: c,
            })
        });
    adds.daily = daily::add_event(&ev.facts, injection_facts.as_ref(), injected, &prior_facts);
    Some(adds)
}

/// A subset of the facets that a family of rollup tables keys by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Cube {
    /// Every facet.
    Full,
    /// Subaccount, campaign, template, IP pool, sending IP, sending domain.
    Sender,
    /// Subaccount, recipient domain, mailbox provider, region.
    Recipient,
    /// The Signals facets: subaccount, campaign, IP pool, sending domain, mailbox provider.
    Signals,
    /// One facet alone (a group-by of one facet reads a row per value, not per tuple).
    One(Facet),
    /// No facet: one row per bucket (summaries and time series without a filter).
    Total,
}

impl Cube {
    /// A small stable number for storage.
    pub fn code(self) -> u8 {
        match self {
            Cube::Full => 0,
            Cube::Sender => 1,
            Cube::Recipient => 2,
            Cube::Signals => 3,
            Cube::Total => 9,
            Cube::One(f) => 10 + f.code() as u8,
        }
    }

    /// Every cube whose facet tuples are kept, each at its [`Cube::index`].
    pub const KEPT: [Cube; 14] = {
        let f = Facet::ALL;
        [
            Cube::Full,
            Cube::Sender,
            Cube::Recipient,
            Cube::Signals,
            Cube::Total,
            Cube::One(f[0]),
            Cube::One(f[1]),
            Cube::One(f[2]),
            Cube::One(f[3]),
            Cube::One(f[4]),
            Cube::One(f[5]),
            Cube::One(f[6]),
            Cube::One(f[7]),
            Cube::One(f[8]),
        ]
    };

    /// The position in [`Cube::KEPT`].
    pub fn index(self) -> usize {
        match self {
            Cube::Full => 0,
            Cube::Sender => 1,
            Cube::Recipient => 2,
            Cube::Signals => 3,
            Cube::Total => 4,
            Cube::One(f) => 5 + f.code(),
        }
    }

    /// The facets this cube keeps.
    pub fn has(self, f: Facet) -> bool {
        match self {
            Cube::Full => true,
            Cube::Sender => !f.is_recipient_side(),
            Cube::Recipient => matches!(
                f,
                Facet::Subaccount | Facet::Domain | Facet::MailboxProvider | Facet::Region
            ),
            Cube::Signals => matches!(
                f,
                Facet::Subaccount
                    | Facet::Campaign
                    | Facet::IpPool
                    | Facet::SendingDomain
                    | Facet::MailboxProvider
            ),
            Cube::One(g) => f == g,
            Cube::Total => false,
        }
    }

    /// `d` with the facets this cube does not keep blanked.
    pub fn project(self, d: &Dims) -> Dims {
        let keep = |f: Facet, v: &String| {
            if self.has(f) {
                v.clone()
            } else {
                String::new()
            }
        };
        Dims {
            subaccount: if self.has(Facet::Subaccount) {
                d.subaccount
            } else {
                0
            },
            campaign: keep(Facet::Campaign, &d.campaign),
            template: keep(Facet::Template, &d.template),
            ip_pool: keep(Facet::IpPool, &d.ip_pool),
            sending_ip: keep(Facet::SendingIp, &d.sending_ip),
            sending_domain: keep(Facet::SendingDomain, &d.sending_domain),
            domain: keep(Facet::Domain, &d.domain),
            mailbox_provider: keep(Facet::MailboxProvider, &d.mailbox_provider),
            region: keep(Facet::Region, &d.region),
        }
    }
}

/// The Metrics rollups kept: (cube, increment). The recipient and one-facet cubes have no
/// minute table: minute queries cover at most 48 hours and read the sender or full cube
/// instead (as SQLite's narrow and recipient tables, see `sqlite/catalog.rs`).
pub(crate) const METRIC_TABLES: [(Cube, Increment); 29] = {
    let f = Facet::ALL;
    let (m, h, d) = (Increment::Minute, Increment::Hour, Increment::Day);
    [
        (Cube::Full, m),
        (Cube::Full, h),
        (Cube::Full, d),
        (Cube::Sender, m),
        (Cube::Sender, h),
        (Cube::Sender, d),
        (Cube::Recipient, h),
        (Cube::Recipient, d),
        (Cube::Total, m),
        (Cube::Total, h),
        (Cube::Total, d),
        (Cube::One(f[0]), h),
        (Cube::One(f[0]), d),
        (Cube::One(f[1]), h),
        (Cube::One(f[1]), d),
        (Cube::One(f[2]), h),
        (Cube::One(f[2]), d),
        (Cube::One(f[3]), h),
        (Cube::One(f[3]), d),
        (Cube::One(f[4]), h),
        (Cube::One(f[4]), d),
        (Cube::One(f[5]), h),
        (Cube::One(f[5]), d),
        (Cube::One(f[6]), h),
        (Cube::One(f[6]), d),
        (Cube::One(f[7]), h),
        (Cube::One(f[7]), d),
        (Cube::One(f[8]), h),
        (Cube::One(f[8]), d),
    ]
};

/// The smallest cube holding every facet in `needed` at this increment.
pub(crate) fn cube_for(needed: &[Facet], inc: Increment) -> Cube {
    let mut candidates = vec![Cube::Total];
    candidates.extend(needed.first().map(|f| Cube::One(*f)));
    candidates.extend([Cube::Sender, Cube::Recipient]);
    for cube in candidates {
        if METRIC_TABLES.contains(&(cube, inc)) && needed.iter().all(|f| cube.has(*f)) {
            return cube;
        }
    }
    Cube::Full
}
