//! The one typed event that every stage of petrel emits, and its SparkPost ingest form.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use petrel_event_types::{self as types, EventType};

use crate::redact::redact_reason;

/// What happened to a message. One variant per SparkPost ingest type petrel produces, so a
/// stage cannot invent a type SparkPost would reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The message was accepted for a recipient (ingest `reception`, public `injection`).
    Reception,
    /// The remote MTA accepted it (`delivery`).
    Delivery,
    /// Permanent failure in the SMTP session (ingest `inband`, public `bounce`).
    Bounce,
    /// Temporary failure, will retry (ingest `tempfail`, public `delay`).
    Delay,
    /// petrel refused it at injection (ingest `rejection`, public `policy_rejection`).
    PolicyRejection,
    /// Asynchronous bounce (DSN) after a delivery (ingest `outofband`).
    OutOfBand,
    /// ARF/FBL complaint (ingest `feedback`, public `spam_complaint`).
    SpamComplaint,
    /// Top-of-body pixel fetched.
    InitialOpen,
    /// Bottom-of-body pixel fetched.
    Open,
    /// Tracked link followed.
    Click,
    /// A link marked `data-msys-unsubscribe="1"` followed (ingest `link`, public
    /// `link_unsubscribe`); recorded next to the link's `click`.
    LinkUnsubscribe,
}

impl EventKind {
    /// This kind's row in the shared type-name table, which petrel's Signals service reads
    /// too.
    pub fn names(self) -> &'static EventType {
        match self {
            EventKind::Reception => &types::RECEPTION,
            EventKind::Delivery => &types::DELIVERY,
            EventKind::Bounce => &types::INBAND,
            EventKind::Delay => &types::TEMPFAIL,
            EventKind::PolicyRejection => &types::REJECTION,
            EventKind::OutOfBand => &types::OUTOFBAND,
            EventKind::SpamComplaint => &types::FEEDBACK,
            EventKind::InitialOpen => &types::INITIAL_OPEN,
            EventKind::Open => &types::OPEN,
            EventKind::Click => &types::CLICK,
            EventKind::LinkUnsubscribe => &types::LINK_UNSUBSCRIBE,
        }
    }

    /// The `type` value SparkPost's ingest API expects (spec §2.1); ingest uses the MTA's
    /// internal names, not the public ones.
    pub fn ingest_type(self) -> &'static str {
        self.names().ingest
    }

    /// The name the Events API, webhooks and reports show, for petrel's own views.
    pub fn public_type(self) -> &'static str {
        self.names().public
    }

    /// The envelope grouping key: engagement events are `track_event`, unsubscribes
    /// `unsubscribe_event`, the rest `message_event`; SparkPost drops lines with the wrong
    /// grouping.
    pub fn grouping(self) -> &'static str {
        self.names().grouping
    }
}

/// How recipient addresses leave petrel (`privacy-policy`): kept, or replaced by a hash so
/// the analytics service never sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Privacy {
    /// `retain`: send `rcpt_to` / `raw_rcpt_to`.
    #[default]
    Retain,
    /// `sha1`: send `rcpt_hash` (lower-case hex SHA-1 of the lower-cased address) and
    /// `rcpt_domain` instead; SparkPost rejects either one without the other.
    Sha1,
}

/// One message event (DESIGN.md principle 1): the delivery engine, listener, bounce and FBL
/// processors and the tracker fill the fields they know; the Signals spool, accounting and
/// management views are all derived from it, so they cannot disagree.
///
/// Fields that are not always known are `Option`; `None` is left out of the JSON.
/// Build one with [`Event::new`] and struct-update syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Unique per event, below 2^63 (sent as a decimal string); see [`next_event_id`].
    pub event_id: u64,
    /// Per-recipient id shared by every event of that recipient's message.
    pub message_id: String,
    /// The sender's own id for the message (`custom-message-id-header`), ≤ 512 ASCII bytes.
    pub custom_message_id: Option<String>,
    /// When it happened (sent as unix seconds).
    pub timestamp: SystemTime,
    /// Recipient, lower-cased.
    pub rcpt_to: Option<String>,
    /// Recipient exactly as given in RCPT TO.
    pub raw_rcpt_to: Option<String>,
    /// Envelope MAIL FROM (PowerMTA `orig`).
    pub msg_from: Option<String>,
    /// Header From address.
    pub friendly_from: Option<String>,
    /// Subject header.
    pub subject: Option<String>,
    /// Local source IP used (PowerMTA `dlvSourceIp` / the vmta's `smtp-source-host`).
    pub sending_ip: Option<IpAddr>,
    /// Virtual MTA pool (`vmtaPool`); sent as `binding_group`, which SparkPost shows as IP Pool.
    pub ip_pool: Option<String>,
    /// Virtual MTA name (`vmta`); SparkPost's fallback for Sending IP.
    pub binding: Option<String>,
    /// Campaign (`X-Job` / `jobId`).
    pub campaign_id: Option<String>,
    /// Subaccount, 0 = primary account.
    pub subaccount_id: u64,
    /// SparkPost account id (`customer-id`); derived by SparkPost from the key when absent.
    pub customer_id: Option<u64>,
    /// Domain petrel routed to (normally the recipient domain).
    pub routing_domain: Option<String>,
    /// Domain of the Sender, else From header.
    pub sending_domain: Option<String>,
    /// Domain of the recipient.
    pub recipient_domain: Option<String>,
    /// Receiving provider classification, when petrel knows it.
    pub mailbox_provider: Option<String>,
    /// Message size in bytes.
    pub msg_size: Option<u64>,
    /// Failed attempts before this one.
    pub num_retries: Option<u32>,
    /// Injection → this event.
    pub queue_time: Option<Duration>,
    /// When the message was injected.
    pub injection_time: Option<SystemTime>,
    /// How it was delivered (`esmtp`, `smtp`).
    pub delv_method: Option<String>,
    /// How it was received (`esmtp`, `smtp`, `rest`).
    pub recv_method: Option<String>,
    /// SparkPost bounce class (spec §3.1).
    pub bounce_class: Option<u16>,
    /// SMTP basic code, e.g. 550.
    pub error_code: Option<u16>,
    /// Verbatim remote response; `reason` is derived from it by [`redact_reason`].
    pub raw_reason: Option<String>,
    /// Remote MX address (delivery) or HTTP client address (engagement).
    pub ip_address: Option<IpAddr>,
    /// `1` TLS used, `0` not offered, `-1` negotiation failed.
    pub outbound_tls: Option<i8>,
    /// Client that injected (policy rejection).
    pub remote_addr: Option<IpAddr>,
    /// ARF feedback type (spam complaint), e.g. `abuse`.
    pub fbtype: Option<String>,
    /// Who sent the complaint.
    pub report_by: Option<String>,
    /// Where the complaint was sent.
    pub report_to: Option<String>,
    /// Per-message tracking flags, needed by SparkPost's Health Score.
    pub open_tracking: Option<bool>,
    /// See `open_tracking`.
    pub click_tracking: Option<bool>,
    /// See `open_tracking`.
    pub initial_pixel: Option<bool>,
    /// Per-recipient metadata object.
    pub rcpt_meta: Option<serde_json::Value>,
    /// Recipient tags.
    pub rcpt_tags: Vec<String>,
    /// Original URL of a clicked link.
    pub target_link_url: Option<String>,
    /// Link name of a clicked link.
    pub target_link_name: Option<String>,
    /// User-Agent of an open or click.
    pub user_agent: Option<String>,
    /// Geo lookup object of an open or click.
    pub geo_ip: Option<serde_json::Value>,
    /// Why the tracker thinks an open or click was made by a machine (an image proxy such as
    /// Apple Mail Privacy Protection, or a corporate link scanner), e.g. `image-proxy`.
    /// Such hits are flagged rather than dropped: the request really happened, and only the
    /// reader of the data can decide whether to count it. Sent as `machine` (SparkPost ignores
    /// unknown fields; petrel's Signals service stores the line as is).
    pub machine: Option<String>,
}

impl Event {
    /// An event with only the required identity set, so each stage names just what it knows.
    pub fn new(
        kind: EventKind,
        event_id: u64,
        message_id: impl Into<String>,
        timestamp: SystemTime,
    ) -> Self {
        Event {
            kind,
            event_id,
            message_id: message_id.into(),
            custom_message_id: None,
            timestamp,
            rcpt_to: None,
            raw_rcpt_to: None,
            msg_from: None,
            friendly_from: None,
            subject: None,
            sending_ip: None,
            ip_pool: None,
            binding: None,
            campaign_id: None,
            subaccount_id: 0,
            customer_id: None,
            routing_domain: None,
            sending_domain: None,
            recipient_domain: None,
            mailbox_provider: None,
            msg_size: None,
            num_retries: None,
            queue_time: None,
            injection_time: None,
            delv_method: None,
            recv_method: None,
            bounce_class: None,
            error_code: None,
            raw_reason: None,
            ip_address: None,
            outbound_tls: None,
            remote_addr: None,
            fbtype: None,
            report_by: None,
            report_to: None,
            open_tracking: None,
            click_tracking: None,
            initial_pixel: None,
            rcpt_meta: None,
            rcpt_tags: Vec::new(),
            target_link_url: None,
            target_link_name: None,
            user_agent: None,
            geo_ip: None,
            machine: None,
        }
    }

    /// `reason`: `raw_reason` with addresses and IPv4 addresses masked, as SparkPost shows it.
    pub fn reason(&self) -> Option<String> {
        self.raw_reason.as_deref().map(redact_reason)
    }

    /// The line SparkPost's ingest API takes (`{"msys":{"message_event":{…}}}`), recipients
    /// kept (`privacy-policy retain`). No trailing newline.
    pub fn to_ingest_json(&self) -> String {
        self.to_ingest_json_with(Privacy::Retain)
    }

    /// The ingest line under the given `privacy-policy`.
    pub fn to_ingest_json_with(&self, privacy: Privacy) -> String {
        let mut w = JsonObj::new(self.kind.grouping());
        w.str("type", self.kind.ingest_type());
        w.str("event_id", &self.event_id.to_string());
        w.str("message_id", &self.message_id);
        w.opt_str("custom_message_id", self.custom_message_id.as_deref());
        w.str("timestamp", &unix_secs(self.timestamp).to_string());
        w.opt_str("recv_method", self.recv_method.as_deref());
        w.opt_str("delv_method", self.delv_method.as_deref());
        match privacy {
            Privacy::Retain => {
                w.opt_str("rcpt_to", self.rcpt_to.as_deref());
                w.opt_str("raw_rcpt_to", self.raw_rcpt_to.as_deref());
            }
            Privacy::Sha1 => {
                let addr = self.rcpt_to.as_deref().or(self.raw_rcpt_to.as_deref());
                if let Some(addr) = addr {
                    let lower = addr.to_ascii_lowercase();
                    w.str("rcpt_hash", &sha1_hex(&lower));
                    let domain = lower.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
                    w.str("rcpt_domain", domain);
                }
            }
        }
        w.opt_str("routing_domain", self.routing_domain.as_deref());
        w.opt_str("msg_from", self.msg_from.as_deref());
        w.opt_str("friendly_from", self.friendly_from.as_deref());
        w.opt_str("subject", self.subject.as_deref());
        w.opt_num_str("msg_size", self.msg_size);
        w.opt_num_str("num_retries", self.num_retries.map(u64::from));
        w.opt_num_str("queue_time", self.queue_time.map(|d| d.as_millis() as u64));
        w.opt_num_str("injection_time", self.injection_time.map(unix_secs));
        w.opt_str("binding", self.binding.as_deref());
        w.opt_str("binding_group", self.ip_pool.as_deref());
        w.opt_str(
            "sending_ip",
            self.sending_ip.map(|ip| ip.to_string()).as_deref(),
        );
        w.opt_str(
            "ip_address",
            self.ip_address.map(|ip| ip.to_string()).as_deref(),
        );
        w.opt_str(
            "outbound_tls",
            self.outbound_tls.map(|t| t.to_string()).as_deref(),
        );
        w.opt_str(
            "remote_addr",
            self.remote_addr.map(|ip| ip.to_string()).as_deref(),
        );
        w.opt_num_str("bounce_class", self.bounce_class.map(u64::from));
        w.opt_num_str("error_code", self.error_code.map(u64::from));
        w.opt_str("raw_reason", self.raw_reason.as_deref());
        w.opt_str("reason", self.reason().as_deref());
        w.opt_str("fbtype", self.fbtype.as_deref());
        w.opt_str("report_by", self.report_by.as_deref());
        w.opt_str("report_to", self.report_to.as_deref());
        w.opt_str("campaign_id", self.campaign_id.as_deref());
        w.opt_str("sending_domain", self.sending_domain.as_deref());
        w.opt_str("recipient_domain", self.recipient_domain.as_deref());
        w.opt_str("mailbox_provider", self.mailbox_provider.as_deref());
        w.opt_num_str("customer_id", self.customer_id);
        w.opt_str("target_link_url", self.target_link_url.as_deref());
        w.opt_str("target_link_name", self.target_link_name.as_deref());
        w.opt_str("user_agent", self.user_agent.as_deref());
        w.opt_str("machine", self.machine.as_deref());
        w.opt_value("geo_ip", self.geo_ip.as_ref());
        w.raw("subaccount_id", &self.subaccount_id.to_string());
        w.opt_bool("open_tracking", self.open_tracking);
        w.opt_bool("click_tracking", self.click_tracking);
        w.opt_bool("initial_pixel", self.initial_pixel);
        w.opt_value("rcpt_meta", self.rcpt_meta.as_ref());
        if !self.rcpt_tags.is_empty() {
            w.raw(
                "rcpt_tags",
                &serde_json::to_string(&self.rcpt_tags).unwrap_or_default(),
            );
        }
        w.finish()
    }
}

/// A fresh event id: unique decimal below 2^63, as SparkPost requires.
///
/// Seeded once from the wall clock in nanoseconds and then counted up, so ids stay unique
/// within a process and across restarts unless more than one event per nanosecond was
/// produced on average; no random source is needed on the hot path.
pub fn next_event_id() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    seed.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed)) & (u64::MAX >> 1)
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn sha1_hex(s: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, s.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends a JSON string literal: the escaping serde_json does, written straight into the
/// line so an event costs one allocation, not one per field.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends `"key":value` pairs in a fixed order.
struct JsonObj {
    out: String,
    first: bool,
}

impl JsonObj {
    fn new(grouping: &str) -> Self {
        let mut out = String::with_capacity(512);
        out.push_str("{\"msys\":{\"");
        out.push_str(grouping);
        out.push_str("\":{");
        JsonObj { out, first: true }
    }

    fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.push_str(json);
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_string(&mut self.out, value);
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    fn opt_num_str(&mut self, key: &str, value: Option<u64>) {
        if let Some(v) = value {
            use std::fmt::Write as _;
            self.key(key);
            let _ = write!(self.out, "\"{v}\"");
        }
    }

    fn opt_bool(&mut self, key: &str, value: Option<bool>) {
        if let Some(v) = value {
            self.raw(key, if v { "true" } else { "false" });
        }
    }

    fn opt_value(&mut self, key: &str, value: Option<&serde_json::Value>) {
        if let Some(v) = value {
            self.raw(key, &v.to_string());
        }
    }

    fn finish(mut self) -> String {
        self.out.push_str("}}}");
        self.out
    }
}

#[cfg(test)]
mod machine_tests {
    use super::{Event, EventKind};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn machine_flag_is_written_when_set_and_absent_otherwise() {
        let at = UNIX_EPOCH + Duration::from_secs(1_767_226_000);
        let human = Event::new(EventKind::Open, 7, "00ab", at);
        assert!(!human.to_ingest_json().contains("machine"));
        let proxy = Event {
            user_agent: Some("GoogleImageProxy".into()),
            machine: Some("image-proxy".into()),
            ..human
        };
        let line = proxy.to_ingest_json();
        assert!(
            line.contains(r#""user_agent":"GoogleImageProxy","machine":"image-proxy""#),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["msys"]["track_event"]["machine"], "image-proxy");
    }
}

#[cfg(test)]
mod escape_tests {
    use super::push_json_string;

    #[test]
    fn escaping_matches_serde_json() {
        let mut samples: Vec<String> = (0u8..0x80).map(|b| format!("a{}b", b as char)).collect();
        samples.push("Ünïcødé ✉ \u{7f} \u{2028} \"q\" \\ end".into());
        samples.push(String::new());
        for s in samples {
            let mut out = String::new();
            push_json_string(&mut out, &s);
            assert_eq!(out, serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }
}
