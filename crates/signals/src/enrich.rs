//! Enrichment: engagement, complaint and out-of-band events arrive thin (a tracking link or
//! a returned message names only the message and recipient); the campaign, IP pool, sending
//! IP, subaccount and the rest are copied from the stored injection or delivery event with
//! the same `message_id`, as SparkPost does (spec §2.5). That is what puts an open into the
//! right campaign report.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::event::StoredEvent;

/// Public types that SparkPost enriches from the original message.
const ENRICHED_TYPES: &[&str] = &[
    "open",
    "initial_open",
    "click",
    "amp_open",
    "amp_initial_open",
    "amp_click",
    "out_of_band",
    "spam_complaint",
    "list_unsubscribe",
    "link_unsubscribe",
];

/// Ingest field names copied when the thin event lacks them (spec §2.5's list, in the
/// ingest spelling petrel stores).
const COPIED: &[&str] = &[
    "campaign_id",
    "subject",
    "ip_pool",
    "binding_group",
    "binding",
    "sending_ip",
    "rcpt_meta",
    "rcpt_tags",
    "routing_domain",
    "sending_domain",
    "recipient_domain",
    "mailbox_provider",
    "template_id",
    "template_version",
    "transmission_id",
    "friendly_from",
    "msg_from",
    "injection_time",
    "msg_size",
    "customer_id",
    "custom_message_id",
    "open_tracking",
    "click_tracking",
    "initial_pixel",
    "recv_method",
];

/// A JSON value as uploaded, kept as its text: enrichment copies values verbatim.
type Fields = BTreeMap<String, Box<RawValue>>;

fn is_blank(v: Option<&RawValue>) -> bool {
    v.is_none_or(|v| matches!(v.get().trim(), "null" | "\"\""))
}

/// A subaccount of 0 (or none) on a thin event means "not known to the sender of the event":
/// the tracker cannot know it; the original's wins.
fn subaccount_unknown(v: Option<&RawValue>) -> bool {
    v.is_none_or(|v| matches!(v.get().trim(), "null" | "\"\"" | "0" | "\"0\""))
}

/// True for the types SparkPost enriches from the original message.
pub(crate) fn is_enriched(ev: &StoredEvent) -> bool {
    ENRICHED_TYPES.contains(&ev.event_type)
}

/// Fills `ev` from `original` (the JSON of the newest stored delivery, else injection, of
/// its message) when `ev` is a type SparkPost enriches. Fields the event brings are kept.
/// Values are copied as their JSON text, without building a document tree.
pub(crate) fn enrich(ev: &mut StoredEvent, original: Option<&str>) {
    if !is_enriched(ev) {
        return;
    }
    let Some(original) = original else { return };
    let (Ok(orig), Ok(mut own)) = (
        serde_json::from_str::<Fields>(original),
        serde_json::from_str::<Fields>(&ev.json),
    ) else {
        return;
    };
    let mut changed = false;
    for key in COPIED {
        if is_blank(own.get(*key).map(|v| &**v)) {
            if let Some(v) = orig.get(*key).filter(|v| !is_blank(Some(v))) {
                own.insert((*key).to_string(), v.clone());
                changed = true;
            }
        }
    }
    let sub = "subaccount_id";
    if subaccount_unknown(own.get(sub).map(|v| &**v))
        && !subaccount_unknown(orig.get(sub).map(|v| &**v))
    {
        if let Some(v) = orig.get(sub) {
            own.insert(sub.into(), v.clone());
            changed = true;
        }
    }
    if changed {
        refresh_facets(ev, &own);
    }
}

/// The part of a stored delivery's or injection's JSON that [`enrich`] reads as the
/// original: the copied fields and the subaccount, as a JSON object of their texts.
/// `enrich(ev, Some(&source_fields(j)))` does exactly what `enrich(ev, Some(j))` does; the
/// ClickHouse store keeps this beside each message's history instead of looking the whole
/// event up again.
pub(crate) fn source_fields(json: &str) -> String {
    let Ok(orig) = serde_json::from_str::<Fields>(json) else {
        // Unparseable originals enrich nothing; keep the text so that stays so.
        return json.to_string();
    };
    let mut out = String::with_capacity(json.len());
    out.push('{');
    for (k, v) in orig
        .iter()
        .filter(|(k, _)| COPIED.contains(&k.as_str()) || k.as_str() == "subaccount_id")
    {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k).unwrap_or_default());
        out.push(':');
        out.push_str(v.get());
    }
    out.push('}');
    out
}

/// Re-reads the indexed columns from the enriched object, with the same derivations as at
/// ingest (e.g. `sending_domain` from `friendly_from` when absent).
fn refresh_facets(ev: &mut StoredEvent, obj: &Fields) {
    let mut line = String::with_capacity(ev.json.len() * 2 + 32);
    line.push_str("{\"msys\":{\"message_event\":{");
    for (i, (k, v)) in obj.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&serde_json::to_string(k).unwrap_or_default());
        line.push(':');
        line.push_str(v.get());
    }
    line.push_str("}}}");
    if let Ok(fresh) = crate::event::parse_line(line.as_bytes()) {
        *ev = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_line;

    fn event(wrapper: &str, fields: &str) -> StoredEvent {
        let line = format!(r#"{{"msys":{{"{wrapper}":{{{fields}}}}}}}"#);
        parse_line(line.as_bytes()).expect("valid event")
    }

    #[test]
    fn the_source_fields_enrich_as_the_whole_original() {
        let original = event(
            "message_event",
            r#""type":"delivery","event_id":"1","message_id":"m1","timestamp":"1785715200",
            "rcpt_to":"a@gmail.com","campaign_id":"spring","subaccount_id":7,
            "ip_pool":"pool-1","sending_ip":"10.0.0.1","friendly_from":"news@brand.example",
            "num_retries":"0","queue_time":"5000","raw_reason":"250 ok","subject":"Hi \"you\"""#,
        );
        let source = source_fields(&original.json);
        assert!(source.len() < original.json.len(), "{source}");
        assert!(!source.contains("queue_time"), "{source}");
        let thin_events = [
            (
                "track_event",
                r#""type":"open","event_id":"2","message_id":"m1","timestamp":"1785716200","rcpt_to":"a@gmail.com","subaccount_id":0"#,
            ),
            (
                "track_event",
                r#""type":"click","event_id":"3","message_id":"m1","timestamp":"1785716300","rcpt_to":"a@gmail.com","campaign_id":"own""#,
            ),
            (
                "message_event",
                r#""type":"outofband","event_id":"4","message_id":"m1","timestamp":"1785716400","rcpt_to":"a@gmail.com","bounce_class":"10""#,
            ),
        ];
        for (wrapper, thin) in thin_events {
            let (mut a, mut b) = (event(wrapper, thin), event(wrapper, thin));
            assert!(is_enriched(&a), "{thin}");
            enrich(&mut a, Some(&original.json));
            enrich(&mut b, Some(&source));
            assert_eq!(a.json, b.json);
            assert_ne!(a.json, event(wrapper, thin).json, "{thin} was enriched");
            assert_eq!(a.campaign_id, b.campaign_id);
            assert_eq!(a.subaccount_id, b.subaccount_id);
            assert_eq!(a.ip_pool, b.ip_pool);
        }
        assert_eq!(source_fields("not json"), "not json");
    }
}
