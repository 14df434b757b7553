//! Query-string parsing for the two search endpoints, with SparkPost's defaults and limits.

use std::collections::HashMap;

use crate::event::public_type;
use crate::store::sqlite::decode_event_cursor;
use crate::store::Facet;
use crate::timefmt;

/// Filters of `GET /api/v1/events/message` after parsing. Lists are OR within a filter and
/// AND across filters, as at SparkPost.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Inclusive lower bound, unix seconds.
    pub from: i64,
    /// Exclusive upper bound, unix seconds.
    pub to: i64,
    /// Public event types.
    pub events: Vec<String>,
    /// Campaign ids (exact match).
    pub campaigns: Vec<String>,
    /// Recipient addresses (lowercased) or recipient hashes.
    pub recipients: Vec<String>,
    /// Subaccount ids.
    pub subaccounts: Vec<i64>,
    /// IP pools (exact match).
    pub ip_pools: Vec<String>,
    /// Sending IPs.
    pub sending_ips: Vec<String>,
    /// Sending domains (exact match, lowercased).
    pub sending_domains: Vec<String>,
    /// Message ids.
    pub message_ids: Vec<String>,
    /// Bounce class codes.
    pub bounce_classes: Vec<String>,
    /// Event ids.
    pub event_ids: Vec<String>,
    /// Recipient domains (keyword search, see [`EventQuery::resolve_keywords`]).
    pub recipient_domains: Vec<String>,
    /// Mailbox providers (keyword search).
    pub mailbox_providers: Vec<String>,
    /// Template ids (keyword search).
    pub templates: Vec<String>,
    /// Page size, 1..=10000.
    pub per_page: u32,
    /// Position after the last event of the previous page.
    pub cursor: Option<(i64, String)>,
    /// Set when a keyword filter matched no known value: nothing can match.
    pub impossible: bool,
}

/// True when the keyword `term` matches `value` as SparkPost's search does (spec §4.1): the
/// value is split into tokens at spaces, `-`, `_` (and `.` for domains), and the term must
/// equal the whole value or one token, ignoring case.
pub fn keyword_matches(term: &str, value: &str, domain: bool) -> bool {
    let term = term.to_lowercase();
    let value = value.to_lowercase();
    value == term
        || value
            .split(|c: char| c == ' ' || c == '-' || c == '_' || (domain && c == '.'))
            .any(|t| t == term)
}

/// Filters of `GET /api/v1/events/ingest` after parsing.
#[derive(Debug, Clone, Default)]
pub struct BatchQuery {
    /// Inclusive lower bound on the receive time, unix seconds.
    pub from: i64,
    /// Exclusive upper bound, unix seconds.
    pub to: i64,
    /// Include `success` records.
    pub success: bool,
    /// Include `error` records.
    pub error: bool,
    /// Only these `error_type`s.
    pub error_types: Vec<String>,
    /// Only these batch ids.
    pub batch_ids: Vec<String>,
    /// Page size, 1..=10000.
    pub per_page: u32,
    /// Position after the last record of the previous page.
    pub cursor: Option<i64>,
}

const DAY: i64 = 24 * 3600;

struct Params {
    map: HashMap<String, String>,
    delimiter: String,
}

impl Params {
    fn new(pairs: Vec<(String, String)>) -> Result<Self, String> {
        let map: HashMap<String, String> = pairs.into_iter().collect();
        let delimiter = map.get("delimiter").cloned().unwrap_or_else(|| ",".into());
        if delimiter.is_empty() {
            return Err("delimiter must not be empty".into());
        }
        Ok(Params { map, delimiter })
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.map
            .get(key)
            .map(|v| {
                v.split(self.delimiter.as_str())
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn time(&self, key: &str, default: i64) -> Result<i64, String> {
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => timefmt::parse_filter_time(v)
                .ok_or_else(|| format!("{key} must be in the format YYYY-MM-DDTHH:MM:ssZ")),
        }
    }

    fn range(&self) -> Result<(i64, i64), String> {
        let now = timefmt::now_secs();
        let from = self.time("from", now - DAY)?;
        let to = self.time("to", now + 1)?;
        if from >= to {
            return Err("from must be before to".into());
        }
        Ok((from, to))
    }

    fn per_page(&self) -> Result<u32, String> {
        match self.map.get("per_page") {
            None => Ok(1000),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=10000).contains(n))
                .ok_or_else(|| "per_page must be between 1 and 10000".into()),
        }
    }

    fn cursor(&self) -> Option<&str> {
        self.map
            .get("cursor")
            .map(String::as_str)
            .filter(|c| *c != "initial")
    }
}

impl EventQuery {
    /// Parses the query pairs; the error text goes into the 400 answer.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, String> {
        let p = Params::new(pairs)?;
        let (from, to) = p.range()?;
        let mut events = Vec::new();
        for e in p.list("events") {
            events.push(
                public_type(&e)
                    .ok_or_else(|| format!("unknown event type {e}"))?
                    .to_string(),
            );
        }
        let mut subaccounts = Vec::new();
        for s in p.list("subaccounts") {
            subaccounts.push(
                s.parse()
                    .map_err(|_| format!("subaccounts: {s} is not an integer"))?,
            );
        }
        let mut message_ids = p.list("message_ids");
        message_ids.extend(p.list("messages"));
        let cursor = match p.cursor() {
            None => None,
            Some(c) => Some(decode_event_cursor(c).ok_or("invalid cursor")?),
        };
        Ok(EventQuery {
            from,
            to,
            events,
            campaigns: p.list("campaigns"),
            recipients: p
                .list("recipients")
                .into_iter()
                .map(|r| {
                    if r.contains('@') {
                        r.to_ascii_lowercase()
                    } else {
                        r
                    }
                })
                .collect(),
            subaccounts,
            ip_pools: p.list("ip_pools"),
            sending_ips: p.list("sending_ips"),
            sending_domains: p
                .list("sending_domains")
                .into_iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            message_ids,
            bounce_classes: p.list("bounce_classes"),
            event_ids: p.list("event_ids"),
            recipient_domains: p.list("recipient_domains"),
            mailbox_providers: p.list("mailbox_providers"),
            templates: p.list("templates"),
            per_page: p.per_page()?,
            cursor,
            impossible: false,
        })
    }

    /// Replaces the keyword terms of `campaigns`, `ip_pools`, `sending_domains`,
    /// `recipient_domains`, `mailbox_providers` and `templates` by the known values they
    /// match (`values` lists what the store has seen of a facet), so the search itself is
    /// an exact, indexed match.
    pub fn resolve_keywords<E>(
        &mut self,
        mut values: impl FnMut(Facet) -> Result<Vec<String>, E>,
    ) -> Result<(), E> {
        let lists: [(&mut Vec<String>, Facet, bool); 6] = [
            (&mut self.campaigns, Facet::Campaign, false),
            (&mut self.ip_pools, Facet::IpPool, false),
            (&mut self.sending_domains, Facet::SendingDomain, true),
            (&mut self.recipient_domains, Facet::Domain, true),
            (&mut self.mailbox_providers, Facet::MailboxProvider, false),
            (&mut self.templates, Facet::Template, false),
        ];
        for (list, facet, domain) in lists {
            if list.is_empty() {
                continue;
            }
            let known = values(facet)?;
            let matched: Vec<String> = known
                .into_iter()
                .filter(|v| list.iter().any(|t| keyword_matches(t, v, domain)))
                .collect();
            if matched.is_empty() {
                self.impossible = true;
            }
            *list = matched;
        }
        Ok(())
    }
}

impl BatchQuery {
    /// Parses the query pairs; the error text goes into the 400 answer.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, String> {
        let p = Params::new(pairs)?;
        let (from, to) = p.range()?;
        let kinds = p.list("events");
        for k in &kinds {
            if k != "success" && k != "error" {
                return Err(format!("events: {k} is not success or error"));
            }
        }
        let cursor = match p.cursor() {
            None => None,
            Some(c) => Some(c.parse().map_err(|_| "invalid cursor")?),
        };
        Ok(BatchQuery {
            from,
            to,
            success: kinds.is_empty() || kinds.iter().any(|k| k == "success"),
            error: kinds.is_empty() || kinds.iter().any(|k| k == "error"),
            error_types: p.list("error_types"),
            batch_ids: p.list("batch_ids"),
            per_page: p.per_page()?,
            cursor,
        })
    }
}
