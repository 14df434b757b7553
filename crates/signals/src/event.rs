//! Validation of one ingest line and its normalisation to the public (Events API) form.
//!
//! Ingest lines carry Momentum's internal type names and unix-second timestamps inside a
//! `{"msys":{"<grouping>":{…}}}` wrapper; search results are flat objects with public type
//! names, ISO-8601 times and derived facets. Doing the conversion once at ingest keeps search
//! a plain SQL read.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::Visitor;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use petrel_signals_model::counters::EventFacts;
use petrel_signals_model::traps::TrapType;
use petrel_signals_model::types::{self, EventType};

use crate::timefmt;

// The wrapper keys and the type names come from the table the emitter uses too
// (`petrel-event-types`, re-exported by the analytics model).
use petrel_event_types::GROUPINGS;

/// Maps an ingest or public type name to the public name, if known.
pub(crate) fn public_type(name: &str) -> Option<&'static str> {
    types::public_name(name)
}

/// One validated event, ready for the events table. `json` is the event object exactly as
/// uploaded (without the wrapper); the public form is computed when it is read, which keeps
/// ingest — the hot path — down to one borrowed parse.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// `event_id`.
    pub event_id: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// Public type name.
    pub event_type: &'static str,
    /// `campaign_id`.
    pub campaign_id: Option<String>,
    /// Lower-cased `rcpt_to`, else `rcpt_hash`.
    pub rcpt_to: Option<String>,
    /// `subaccount_id`.
    pub subaccount_id: Option<i64>,
    /// `ip_pool`, else `binding_group`.
    pub ip_pool: Option<String>,
    /// `sending_ip`.
    pub sending_ip: Option<String>,
    /// `sending_domain`, else the domain of `friendly_from` / `msg_from`.
    pub sending_domain: Option<String>,
    /// `message_id`.
    pub message_id: Option<String>,
    /// `bounce_class`.
    pub bounce_class: Option<String>,
    /// The event object as uploaded (enriched).
    pub json: String,
    /// The facets the analytics group by, resolved at ingest.
    pub recipient_domain: Option<String>,
    /// `mailbox_provider`, else derived from the recipient domain.
    pub mailbox_provider: Option<String>,
    /// `mailbox_provider_region`.
    pub region: Option<String>,
    /// `template_id`.
    pub template_id: Option<String>,
    /// What counting needs (type, retries, sizes, link, machine flag).
    pub facts: EventFacts,
    /// `reason` (redacted) else `raw_reason`: the key of the reason reports.
    pub reason: Option<String>,
    /// The raw recipient address (not a hash), for trap and list-quality checks.
    pub address: Option<String>,
    /// Injections only: the spam trap the recipient is, if any (set by `ingest::prepare`).
    pub trap: Option<TrapType>,
    /// Injections only: a role account or typo domain (set by `ingest::prepare`).
    pub list_quality_hit: bool,
}

/// A JSON scalar read as text: SparkPost sends most numbers as strings, clients sometimes
/// send real numbers or booleans. Objects and arrays are not scalars and fail the line.
#[derive(Debug, Default)]
struct Scalar<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or number")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Scalar<'_> {
    fn get(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !s.is_empty())
    }
    fn owned(&self) -> Option<String> {
        self.get().map(String::from)
    }
}

/// The wrapper line; the grouping's value is kept raw so it can be stored verbatim.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    msys: BTreeMap<Cow<'a, str>, &'a RawValue>,
}

/// The fields the events table indexes; every other field is skipped by the parser.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Fields<'a> {
    #[serde(borrow, rename = "type")]
    kind: Scalar<'a>,
    #[serde(borrow)]
    event_id: Scalar<'a>,
    #[serde(borrow)]
    timestamp: Scalar<'a>,
    #[serde(borrow)]
    message_id: Scalar<'a>,
    #[serde(borrow)]
    rcpt_to: Scalar<'a>,
    #[serde(borrow)]
    rcpt_hash: Scalar<'a>,
    #[serde(borrow)]
    rcpt_domain: Scalar<'a>,
    #[serde(borrow)]
    campaign_id: Scalar<'a>,
    #[serde(borrow)]
    ip_pool: Scalar<'a>,
    #[serde(borrow)]
    binding_group: Scalar<'a>,
    #[serde(borrow)]
    sending_ip: Scalar<'a>,
    #[serde(borrow)]
    sending_domain: Scalar<'a>,
    #[serde(borrow)]
    friendly_from: Scalar<'a>,
    #[serde(borrow)]
    msg_from: Scalar<'a>,
    #[serde(borrow)]
    bounce_class: Scalar<'a>,
    #[serde(borrow)]
    subaccount_id: Scalar<'a>,
    #[serde(borrow)]
    recipient_domain: Scalar<'a>,
    #[serde(borrow)]
    routing_domain: Scalar<'a>,
    #[serde(borrow)]
    mailbox_provider: Scalar<'a>,
    #[serde(borrow)]
    mailbox_provider_region: Scalar<'a>,
    #[serde(borrow)]
    template_id: Scalar<'a>,
    #[serde(borrow)]
    num_retries: Scalar<'a>,
    #[serde(borrow)]
    queue_time: Scalar<'a>,
    #[serde(borrow)]
    msg_size: Scalar<'a>,
    #[serde(borrow)]
    target_link_name: Scalar<'a>,
    #[serde(borrow)]
    target_link_url: Scalar<'a>,
    #[serde(borrow)]
    machine: Scalar<'a>,
    #[serde(borrow)]
    reason: Scalar<'a>,
    #[serde(borrow)]
    raw_reason: Scalar<'a>,
}

fn domain_of(addr: &str) -> Option<String> {
    addr.rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

fn recipient_domain_of(f: &Fields<'_>) -> Option<String> {
    f.rcpt_to
        .get()
        .and_then(domain_of)
        .or_else(|| f.rcpt_domain.get().map(|d| d.to_ascii_lowercase()))
        .or_else(|| f.recipient_domain.get().map(|d| d.to_ascii_lowercase()))
        .or_else(|| f.routing_domain.get().map(|d| d.to_ascii_lowercase()))
}

fn sending_domain_of(f: &Fields<'_>) -> Option<String> {
    f.sending_domain
        .get()
        .map(|d| d.to_ascii_lowercase())
        .or_else(|| f.friendly_from.get().and_then(domain_of))
        .or_else(|| f.msg_from.get().and_then(domain_of))
}

/// Validates one NDJSON line and extracts the indexed fields. The error text is what the
/// batch record's `error_message` reports for the first failed line.
pub(crate) fn parse_line(line: &[u8]) -> Result<StoredEvent, String> {
    let text = std::str::from_utf8(line).map_err(|_| "line is not UTF-8".to_string())?;
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            format!("missing or malformed msys wrapper: {e}")
        } else {
            format!("invalid JSON: {e}")
        }
    })?;
    if env.msys.len() != 1 {
        return Err("msys must hold exactly one event grouping".into());
    }
    let Some((grouping, raw)) = env.msys.into_iter().next() else {
        return Err("empty msys wrapper".into());
    };
    if !GROUPINGS.contains(&grouping.as_ref()) {
        return Err(format!("unknown event grouping {grouping}"));
    }
    let f: Fields<'_> = serde_json::from_str(raw.get())
        .map_err(|e| format!("{grouping} is not a valid event object: {e}"))?;
    let raw_type = f.kind.get().ok_or("missing type")?;
    let event_type = public_type(raw_type).ok_or_else(|| format!("unknown type {raw_type}"))?;
    let event_id = f.event_id.owned().ok_or("missing event_id")?;
    let timestamp: i64 = f
        .timestamp
        .get()
        .ok_or("missing timestamp")?
        .split('.')
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("timestamp is not unix seconds")?;
    let message_id = f.message_id.owned();
    if message_id.is_none() && grouping != "gen_event" {
        return Err("missing message_id".into());
    }
    match (f.rcpt_hash.get().is_some(), f.rcpt_domain.get().is_some()) {
        (true, false) => return Err("Missing rcpt_domain on event with rcpt_hash".into()),
        (false, true) => return Err("Missing rcpt_hash on event with rcpt_domain".into()),
        _ => {}
    }
    let address = f.rcpt_to.get().map(|r| r.to_ascii_lowercase());
    let recipient_domain = recipient_domain_of(&f);
    let mailbox_provider = f.mailbox_provider.owned().or_else(|| {
        recipient_domain
            .as_deref()
            .map(|d| petrel_events::mailbox_provider(d).to_string())
    });
    let num = |s: &Scalar<'_>| {
        s.get()
            .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
    };
    let facts = EventFacts {
        kind: EventType::parse(raw_type).filter(|k| *k != EventType::Other),
        ts: timestamp,
        bounce_class: f.bounce_class.get().and_then(|b| b.parse().ok()),
        num_retries: num(&f.num_retries).and_then(|n| u32::try_from(n).ok()),
        queue_time_ms: num(&f.queue_time),
        msg_size: num(&f.msg_size),
        machine: f.machine.get().is_some_and(|m| m != "false" && m != "0"),
        link: f
            .target_link_name
            .owned()
            .or_else(|| f.target_link_url.owned()),
    };
    Ok(StoredEvent {
        recipient_domain,
        mailbox_provider,
        region: f.mailbox_provider_region.owned(),
        template_id: f.template_id.owned(),
        facts,
        reason: f.reason.owned().or_else(|| f.raw_reason.owned()),
        address,
        trap: None,
        list_quality_hit: false,
        event_id,
        timestamp,
        event_type,
        campaign_id: f.campaign_id.owned(),
        rcpt_to: f
            .rcpt_to
            .get()
            .map(|r| r.to_ascii_lowercase())
            .or_else(|| f.rcpt_hash.owned()),
        subaccount_id: f.subaccount_id.get().and_then(|s| s.parse().ok()),
        ip_pool: f.ip_pool.owned().or_else(|| f.binding_group.owned()),
        sending_ip: f.sending_ip.owned(),
        sending_domain: sending_domain_of(&f),
        message_id,
        bounce_class: f.bounce_class.owned(),
        json: raw.get().to_string(),
    })
}

/// Converts a stored event to SparkPost's public (Events API) form: public type name,
/// ISO-8601 `timestamp` and `injection_time`, `ip_pool`, derived `recipient_domain` / `sending_domain`, and
/// `subaccount_id` as a string.
pub(crate) fn public_form(stored: &str) -> Value {
    let Ok(Value::Object(mut ev)) = serde_json::from_str::<Value>(stored) else {
        return Value::Null;
    };
    let (sending_domain, recipient_domain) = match serde_json::from_str::<Fields<'_>>(stored) {
        Ok(f) => (sending_domain_of(&f), recipient_domain_of(&f)),
        Err(_) => (None, None),
    };
    let text = |ev: &Map<String, Value>, k: &str| -> Option<String> {
        match ev.get(k)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    if let Some(t) = text(&ev, "type").and_then(|t| public_type(&t)) {
        ev.insert("type".into(), Value::String(t.into()));
    }
    if let Some(id) = text(&ev, "event_id") {
        ev.insert("event_id".into(), Value::String(id));
    }
    // Ingest carries unix seconds; the Events API shows ISO-8601 (spec §2.5, §4.1).
    for key in ["timestamp", "injection_time"] {
        if let Some(ts) = text(&ev, key).and_then(|t| t.split('.').next()?.parse().ok()) {
            ev.insert(key.into(), Value::String(timefmt::iso(ts)));
        }
    }
    if let Some(r) = text(&ev, "rcpt_to") {
        ev.insert("rcpt_to".into(), Value::String(r.to_ascii_lowercase()));
    }
    if !ev.contains_key("ip_pool") {
        if let Some(p) = text(&ev, "binding_group") {
            ev.insert("ip_pool".into(), Value::String(p));
        }
    }
    if let Some(d) = recipient_domain {
        ev.insert("recipient_domain".into(), Value::String(d));
    }
    if let Some(d) = sending_domain {
        ev.insert("sending_domain".into(), Value::String(d));
    }
    if let Some(s) = text(&ev, "subaccount_id") {
        ev.insert("subaccount_id".into(), Value::String(s));
    }
    Value::Object(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_a_bounce() {
        let line = br#"{"msys":{"message_event":{"type":"inband","event_id":"7","message_id":"m","timestamp":"1767225611","rcpt_to":"Gone@Example.org","friendly_from":"news@example.com","binding_group":"warm","subaccount_id":0,"bounce_class":"10"}}}"#;
        let ev = parse_line(line).unwrap();
        assert_eq!(ev.event_type, "bounce");
        assert_eq!(ev.rcpt_to.as_deref(), Some("gone@example.org"));
        assert_eq!(ev.ip_pool.as_deref(), Some("warm"));
        assert_eq!(ev.sending_domain.as_deref(), Some("example.com"));
        assert_eq!(ev.subaccount_id, Some(0));
        let v = public_form(&ev.json);
        assert_eq!(v["type"], "bounce");
        assert_eq!(v["ip_pool"], "warm");
        assert_eq!(v["timestamp"], "2026-01-01T00:00:11.000+00:00");
        assert_eq!(v["recipient_domain"], "example.org");
        assert_eq!(v["subaccount_id"], "0");
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(parse_line(b"{}").is_err());
        assert!(parse_line(b"not json").is_err());
        assert!(parse_line(br#"{"msys":{"banana":{"type":"delivery"}}}"#).is_err());
        let half = br#"{"msys":{"message_event":{"type":"delivery","event_id":"1","message_id":"m","timestamp":"1","rcpt_hash":"x"}}}"#;
        assert_eq!(
            parse_line(half).unwrap_err(),
            "Missing rcpt_domain on event with rcpt_hash"
        );
    }
}
