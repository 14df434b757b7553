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
