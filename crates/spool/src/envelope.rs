//! The envelope stored with every message, and the message id.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use petrel_smtp::Notify;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Identifies a spooled message for its whole life: the listener logs it, the delivery
/// engine removes it by it, the management API shows it.
///
/// Ids are unique across restarts and increase with arrival: a new spool seeds the counter
/// with `unix milliseconds << 16`, and recovery never hands out an id at or below one it
/// found on disk. Displayed (and serialized) as 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

impl MessageId {
    /// The raw number, for callers that store ids in their own formats.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Why a string is not a message id (ids are exactly 16 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid message id {0:?}: expected 16 hex digits")]
pub struct ParseMessageIdError(pub String);

impl FromStr for MessageId {
    type Err = ParseMessageIdError;

    /// Parses the 16-hex-digit form that [`fmt::Display`] writes, so ids typed by an
    /// operator or found in a log line can be looked up.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseMessageIdError(s.to_owned()));
        }
        u64::from_str_radix(s, 16)
            .map(MessageId)
            .map_err(|_| ParseMessageIdError(s.to_owned()))
    }
}

impl Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// DSN `RET=` parameter (RFC 3461): how much of the message a bounce should carry.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Ret {
    /// Return the whole message in a bounce.
    Full,
    /// Return only the headers.
    Hdrs,
}

/// One `RCPT TO`, with the DSN parameters that must survive until the delivery or bounce.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The address as received (without angle brackets).
    pub address: String,
    /// DSN `NOTIFY=` flags as received (`None`: no NOTIFY parameter). Stored as the
    /// parameter's text (`"SUCCESS,FAILURE"`), parsed once here.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "notify_text::serialize",
        deserialize_with = "notify_text::deserialize"
    )]
    pub notify: Option<Vec<Notify>>,
    /// DSN `ORCPT=` value as received, e.g. `"rfc822;user@example.com"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<String>,
    /// Runtime state kept by the spool: true once `recipient_done` was made durable for
    /// this recipient. Ignored on commit (the spool stores every recipient as pending) and
    /// never written into the message record; it is rebuilt from `RecipientDone` records.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
}

impl Recipient {
    /// A pending recipient without DSN parameters: the common case.
    pub fn new(address: impl Into<String>) -> Recipient {
        Recipient {
            address: address.into(),
            notify: None,
            orcpt: None,
            done: false,
        }
    }

    /// The part after the last `@`, lowercased: the key that queues and summaries group
    /// by. An address without `@` (e.g. `postmaster`) has the empty domain.
    pub fn domain(&self) -> String {
        match self.address.rfind('@') {
            Some(at) => self.address[at + 1..].to_ascii_lowercase(),
            None => String::new(),
        }
    }
}

/// Everything about a message except its content: what the SMTP transaction said, plus
/// the routing (virtual MTA, job) decided before the 250. Stored as JSON in the record so
/// an operator can read a segment with `strings`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Reverse path; `""` for the null sender `<>` (bounces).
    pub mail_from: String,
    /// Recipients in `RCPT TO` order; `recipient_done` indexes into this list.
    pub recipients: Vec<Recipient>,
    /// Virtual MTA (or pool) name; [`Envelope::DEFAULT_VMTA`] when none was chosen.
    pub vmta: String,
    /// PowerMTA job id (`X-Job`), for accounting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// DSN `ENVID=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_id: Option<String>,
    /// DSN `RET=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<Ret>,
    /// `SMTPUTF8` was given on `MAIL FROM`.
    #[serde(default)]
    pub smtputf8: bool,
    /// `BODY=8BITMIME` was given on `MAIL FROM`.
    #[serde(default)]
    pub body_8bit: bool,
    /// The authenticated submitter, if the session used AUTH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_user: Option<String>,
    /// The injecting client's IP address, for accounting (`rcvSourceIp`, `srcMta`), events
    /// (`remote_addr`) and abuse handling. Stored as `client_addr`; spools that stored
    /// `ip:port` there read back as the IP.
    #[serde(
        rename = "client_addr",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_ip"
    )]
    pub client_ip: Option<IpAddr>,
    /// The name the client gave in HELO/EHLO, for accounting (`srcMta`: `HELO-name (ip)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_helo: Option<String>,
    /// When the listener accepted the message (drives expiry and `bounce-after`).
    pub received_at_unix_ms: u64,
    /// What the listener read from the headers for the event stream, so delivery events
    /// need not re-read the body.
    #[serde(default, skip_serializing_if = "MessageFacts::is_empty")]
    pub facts: MessageFacts,
}

/// Header facts taken once at reception for Signals events (`friendly_from`, `subject`,
/// `sending_domain`, subaccount, custom message id). Absent in spools written before they
/// existed, hence every field is optional.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageFacts {
    /// The address in the From header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Domain of the Sender header, else of the From header, lower-cased: what
    /// `<signals-filter>` rules and Signals' "sending domain" look at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_domain: Option<String>,
    /// The Subject header (unfolded, at most 512 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `X-SP-Subaccount-ID`, when the header was present and numeric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subaccount: Option<u64>,
    /// The value of the `custom-message-id-header` header (at most 512 ASCII bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_message_id: Option<String>,
    /// petrel wrote this message itself (a DSN): it is delivered like any other but produces
    /// no Signals events, which describe the sender's mail.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generated: bool,
}

impl MessageFacts {
    /// True when nothing was recorded (keeps old-style records byte-identical).
    pub fn is_empty(&self) -> bool {
        *self == MessageFacts::default()
    }
}

/// `NOTIFY=` flags as the parameter's text: what the spool stores, so records written before
/// the flags were typed read back unchanged. Unknown words are skipped, not an error: a
/// spooled message must always load.
mod notify_text {
    use super::*;

    fn name(n: Notify) -> &'static str {
        match n {
            Notify::Never => "NEVER",
            Notify::Success => "SUCCESS",
            Notify::Failure => "FAILURE",
            Notify::Delay => "DELAY",
        }
    }

    pub fn serialize<S: Serializer>(v: &Option<Vec<Notify>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(list) => {
                let text: Vec<&str> = list.iter().map(|n| name(*n)).collect();
                s.serialize_str(&text.join(","))
            }
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Notify>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        Ok(text.map(|t| {
            t.split(',')
                .filter_map(|v| match v.trim().to_ascii_uppercase().as_str() {
                    "NEVER" => Some(Notify::Never),
                    "SUCCESS" => Some(Notify::Success),
                    "FAILURE" => Some(Notify::Failure),
                    "DELAY" => Some(Notify::Delay),
                    _ => None,
                })
                .collect()
        }))
    }
}

/// The client address as stored: an IP, or (older spools) `ip:port`; anything else reads
/// as unknown rather than failing the record.
fn lenient_ip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    Ok(text.and_then(|t| {
        t.parse::<IpAddr>()
            .ok()
            .or_else(|| t.parse::<SocketAddr>().ok().map(|a| a.ip()))
    }))
}

impl Envelope {
    /// The virtual MTA name PowerMTA uses when no `<virtual-mta>` was selected.
    pub const DEFAULT_VMTA: &'static str = "{default}";

    /// Recipients not yet marked done.
    pub fn pending_recipients(&self) -> usize {
        self.recipients.iter().filter(|r| !r.done).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_display_and_parse_roundtrip() {
        let id = MessageId(0x00ab_cdef_0123_4567);
        assert_eq!(id.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<MessageId>().unwrap(), id);
        assert_eq!("00ABCDEF01234567".parse::<MessageId>().unwrap(), id);
        assert!("abc".parse::<MessageId>().is_err());
        assert!("+0abcdef01234567".parse::<MessageId>().is_err());
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"00abcdef01234567\"");
    }

    #[test]
    fn envelope_json_omits_runtime_done_flag() {
        let env = Envelope {
            mail_from: String::new(),
            recipients: vec![Recipient::new("A@Example.COM")],
            vmta: Envelope::DEFAULT_VMTA.into(),
            job_id: None,
            env_id: None,
            ret: Some(Ret::Hdrs),
            smtputf8: false,
            body_8bit: true,
            auth_user: None,
            client_ip: None,
            client_helo: None,
            received_at_unix_ms: 1,
            facts: Default::default(),
        };
        let json = serde_json::to_string(&env).unwrap();
        assert!(!json.contains("done"), "{json}");
        assert!(json.contains("\"HDRS\""), "{json}");
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, env);
        assert_eq!(env.recipients[0].domain(), "example.com");
        assert_eq!(Recipient::new("postmaster").domain(), "");
    }

    #[test]
    fn notify_flags_and_client_ip_keep_their_stored_text() {
        let mut env: Envelope = serde_json::from_str(
            r#"{"mail_from":"a@b","recipients":[{"address":"c@d","notify":"success,FAILURE,bogus"}],
                "vmta":"{default}","client_addr":"127.0.0.1:40000","received_at_unix_ms":1}"#,
        )
        .unwrap();
        assert_eq!(
            env.recipients[0].notify,
            Some(vec![Notify::Success, Notify::Failure])
        );
        assert_eq!(env.client_ip, Some("127.0.0.1".parse().unwrap()));
        env.client_ip = Some("::1".parse().unwrap());
        let json = serde_json::to_string(&env).unwrap();
        assert!(json.contains(r#""notify":"SUCCESS,FAILURE""#), "{json}");
        assert!(json.contains(r#""client_addr":"::1""#), "{json}");
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);
        let garbled: Envelope = serde_json::from_str(
            r#"{"mail_from":"","recipients":[],"vmta":"v","client_addr":"nowhere","received_at_unix_ms":1}"#,
        )
        .unwrap();
        assert_eq!(garbled.client_ip, None);
    }
}
