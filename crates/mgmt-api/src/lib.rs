//! The management API's requests and responses as types, shared by the server
//! (`petrel-mgmt`) and its client (the `petrel` CLI), as KumoMTA's `kumo-api-types` is: a
//! field renamed on one side is a compile error on the other, not a blank column.
//!
//! Shapes follow PowerMTA's JSON where it has them: answers are wrapped in
//! `{"data": {…}}` ([`Data`]) and use its names (`rcp`, `msg`, `kb`, `jobId`); errors are
//! `{"error": "…"}` ([`ErrorBody`]) with an HTTP status. The suppression endpoints answer
//! without the wrapper, as SparkPost's suppression API does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The endpoints, by path.
pub mod paths {
    /// `GET`: [`crate::Status`].
    pub const STATUS: &str = "/status";
    /// `GET`: every counter in Prometheus's text format.
    pub const METRICS: &str = "/metrics";
    /// `GET`: [`crate::Queues`].
    pub const QUEUES: &str = "/queues";
    /// `GET`: [`crate::Domains`].
    pub const DOMAINS: &str = "/domains";
    /// `GET` with [`crate::MessagesQuery`]: [`crate::Messages`].
    pub const MESSAGES: &str = "/messages";
    /// `GET` with [`crate::BodyQuery`]: the spooled message (`message/rfc822`).
    pub const MESSAGE_BODY: &str = "/messageBody";
    /// `GET`: [`crate::Jobs`].
    pub const JOBS: &str = "/jobs";
    /// `GET`: [`crate::Vmtas`].
    pub const VMTAS: &str = "/vmtas";
    /// `GET`: [`crate::Access`], what `http-access` lets the asking client do.
    pub const ACCESS: &str = "/access";
    /// `POST`: [`crate::ReloadResult`].
    pub const RELOAD: &str = "/reload";
    /// `GET`: [`crate::ReloadResult`] of the daemon's configuration file, not applied.
    pub const CHECK_CONFIG: &str = "/checkConfig";
    /// `POST` with [`crate::QueueArg`]: [`crate::CommandResult`].
    pub const PAUSE_QUEUE: &str = "/pauseQueue";
    /// `POST` with [`crate::QueueArg`]: [`crate::CommandResult`].
    pub const RESUME_QUEUE: &str = "/resumeQueue";
    /// `POST` with [`crate::JobArg`]: [`crate::CommandResult`].
    pub const PAUSE_JOB: &str = "/pauseJob";
    /// `POST` with [`crate::JobArg`]: [`crate::CommandResult`].
    pub const RESUME_JOB: &str = "/resumeJob";
    /// `POST` with [`crate::QueueArg`]: [`crate::CommandResult`].
    pub const SCHEDULE: &str = "/schedule";
    /// `POST` with [`crate::ModeArgs`]: [`crate::CommandResult`].
    pub const SET_QUEUE_MODE: &str = "/setQueueMode";
    /// `POST` with [`crate::DeleteArgs`]: [`crate::CommandResult`].
    pub const DELETE: &str = "/delete";
    /// `GET` with [`crate::SuppressionQuery`]: [`crate::Suppressions`]; `POST` with
    /// [`crate::NewSuppression`]: [`crate::Added`]; `DELETE` with
    /// [`crate::RemoveSuppression`]: [`crate::Removed`].
    pub const SUPPRESSIONS: &str = "/suppressions";
}

/// PowerMTA's answer wrapper, `{"data": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Data<T> {
    /// The answer.
    pub data: T,
}

/// An error answer's body, with a 4xx or 5xx status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
}

/// `/status`: the daemon and its counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// `running`.
    pub status: String,
    /// Name and version.
    pub product: Product,
    /// The first `host-name`.
    #[serde(rename = "hostName")]
    pub host_name: String,
    /// When the daemon started (unix seconds).
    #[serde(rename = "startupTime")]
    pub startup_time: u64,
    /// Seconds since then.
    #[serde(rename = "uptimeSeconds")]
    pub uptime_seconds: u64,
    /// Mail accepted.
    pub traffic: Traffic,
    /// Connections accepted.
    pub conn: Conn,
    /// Commands or messages refused with 4xx/5xx.
    pub rejections: u64,
    /// The spool's state.
    pub spool: SpoolCounts,
    /// The delivery engine's counters, when it runs.
    pub delivery: Option<DeliveryCounts>,
    /// Every section of `/metrics` as `{"section": {"name": value}}`.
    pub counters: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Name and version of the software.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// `petrel`.
    pub name: String,
    /// The crate version.
    pub version: String,
}

/// PowerMTA's `traffic` object: `{"total": {"in": {"msg", "rcp"}}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Since start.
    pub total: TrafficTotal,
}

/// See [`Traffic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficTotal {
    /// Accepted for delivery.
    #[serde(rename = "in")]
    pub inbound: MsgRcp,
}

/// Messages and their recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgRcp {
    /// Messages.
    pub msg: u64,
    /// Recipients.
    pub rcp: u64,
}

/// PowerMTA's `conn` object: `{"smtpIn": {"total"}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conn {
    /// Inbound SMTP.
    #[serde(rename = "smtpIn")]
    pub smtp_in: ConnTotal,
}

/// See [`Conn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnTotal {
    /// Connections accepted since start.
    pub total: u64,
}

/// The spool's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SpoolCounts {
    /// Messages in the spool.
    pub messages: u64,
    /// Recipients not yet delivered or bounced.
    pub recipients: u64,
    /// Body bytes of the messages in the spool.
    pub bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// Size of the segment files.
    pub disk_bytes: u64,
    /// Zero-filled space prepared ahead of writes.
    pub preallocated_bytes: u64,
    /// `fdatasync` calls.
    pub fsyncs: u64,
    /// Records appended.
    pub records_written: u64,
}

/// The delivery engine's counters since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeliveryCounts {
    /// Recipients delivered.
    pub delivered: u64,
    /// Recipients bounced (in-band, expired, suppressed, deleted).
    pub bounced: u64,
    /// Temporary failures.
    pub deferred: u64,
    /// Outbound connections opened.
    pub connections: u64,
    /// DSNs generated.
    pub dsns: u64,
}

/// `/queues`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queues {
    /// Queues with waiting recipients, paused or in backoff mode.
    pub queues: Vec<QueueRow>,
    /// How many matched when a client cut the list (`pmta show queues --maxitems`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// A queue's mode: which limits and retry schedule apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The normal limits.
    Normal,
    /// The `backoff-*` limits.
    Backoff,
}

/// One queue: a domain and the virtual MTA sending to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueRow {
    /// `domain/vmta`.
    pub queue: String,
    /// The queue's domain (a `queue-to` target gathers other domains' recipients).
    pub domain: String,
    /// The virtual MTA (a pool's member, never the pool).
    pub vmta: String,
    /// Recipients waiting.
    pub rcp: u64,
    /// Messages with a recipient waiting here.
    pub msg: u64,
    /// Their size, in KiB (rounded up).
    pub kb: u64,
    /// Connections open.
    pub conn: u32,
    /// Paused by an operator.
    pub paused: bool,
    /// Normal or backoff mode.
    pub mode: Mode,
    /// In backoff mode since (unix seconds).
    #[serde(rename = "backoffSince")]
    pub backoff_since: Option<u64>,
    /// In retry mode (no host was reached).
    pub retry: bool,
    /// Retry mode ends (unix seconds).
    #[serde(rename = "retryUntil")]
    pub retry_until: Option<u64>,
    /// The last error seen.
    #[serde(rename = "lastError")]
    pub last_error: Option<String>,
}

/// `/domains`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domains {
    /// Recipient domains with waiting recipients, most first.
    pub domains: Vec<DomainRow>,
    /// How many matched when a client cut the list (`pmta show domains --maxitems`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// One recipient domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRow {
    /// The domain.
    pub domain: String,
    /// Recipients waiting.
    pub rcp: u64,
    /// Messages with a recipient waiting.
    pub msg: u64,
    /// Their size, in KiB (rounded up).
    pub kb: u64,
}

/// `/messages` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesQuery {
    /// At most this many (default 100, at most 100000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only messages of this job.
    #[serde(default, rename = "jobId", skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// `/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Messages {
    /// Spooled messages, oldest first.
    pub messages: Vec<MessageRow>,
}

/// One spooled message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRow {
    /// Its spool id.
    pub id: String,
    /// The envelope sender.
    pub orig: String,
    /// Recipients not yet delivered or bounced.
    pub rcpts: Vec<String>,
    /// The virtual MTA or pool it was sent to.
    pub vmta: String,
    /// `X-Job`.
    #[serde(rename = "jobId")]
    pub job_id: Option<String>,
    /// DSN `ENVID`.
    #[serde(rename = "envId")]
    pub env_id: Option<String>,
    /// The SMTP AUTH user that submitted it.
    #[serde(rename = "authUser")]
    pub auth_user: Option<String>,
    /// When it was accepted (unix milliseconds).
    #[serde(rename = "receivedAtUnixMs")]
    pub received_at_unix_ms: u64,
}

/// `/messageBody` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyQuery {
    /// The spool id (16 hex digits).
    pub id: String,
}

/// `/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jobs {
    /// Jobs with waiting mail, most recipients first.
    pub jobs: Vec<JobRow>,
    /// How many matched when a client cut the list (`pmta show jobs --maxitems`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// One job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRow {
    /// The job id.
    pub job: String,
    /// Recipients waiting.
    pub recipients: u64,
    /// Paused by `pause job`.
    pub paused: bool,
}

/// `/vmtas`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vmtas {
    /// Every virtual MTA, configured or with queues.
    pub vmtas: Vec<VmtaRow>,
    /// The configured `<virtual-mta-pool>`s (the monitor lists them under the MTAs).
    #[serde(default)]
    pub pools: Vec<PoolRow>,
    /// How many matched when a client cut the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// One virtual MTA pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRow {
    /// Its name.
    pub name: String,
    /// Its member virtual MTAs, in configured order.
    pub members: Vec<String>,
}

/// `/access`: the asking client's `http-access` level, so a page shows command buttons
/// only to those who may use them (the commands themselves are checked on every call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// The client's address as the server saw it.
    pub client: String,
    /// `monitor`, `operator` or `admin`.
    pub level: String,
    /// Whether the client may run commands (pause, resume, schedule, …).
    pub control: bool,
}

/// One virtual MTA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmtaRow {
    /// Its name.
    pub name: String,
    /// Queues with work.
    pub domains: u64,
    /// Recipients waiting.
    pub recipients: u64,
    /// Connections open.
    pub connections: u64,
}

/// A queue pattern parameter (`pauseQueue`, `resumeQueue`, `schedule`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueArg {
    /// `DOMAIN[/VMTA]`, `*` wildcards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// `setQueueMode` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeArgs {
    /// `DOMAIN[/VMTA]`, `*` wildcards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// `backoff` or `normal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// A job parameter (`pauseJob`, `resumeJob`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobArg {
    /// The job id.
    #[serde(default, rename = "jobId", skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// `delete` parameters: a queue pattern, a job, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteArgs {
    /// `DOMAIN[/VMTA]`, `*` wildcards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The job id.
    #[serde(default, rename = "jobId", skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// For a person (`2 queue(s) paused.`).
    pub result: String,
    /// Queues the pattern matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<usize>,
    /// Recipients deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<usize>,
}

/// What `reload` did, or (`checkConfig`) would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadResult {
    /// For a person (`Configuration reloaded.`).
    pub result: String,
    /// The file the daemon reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Changed settings that take effect only after a restart (`smtp-listener`,
    /// `<acct-file /var/log/acct.csv> records`, …).
    #[serde(default, rename = "restartNeeded")]
    pub restart_needed: Vec<String>,
}

/// `GET /suppressions` parameters. Values are text so a bad one gets a clear 400.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionQuery {
    /// Only this subaccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subaccount: Option<String>,
    /// Only this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Only this reason (`hard_bounce`, `spam_complaint`, `manual`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// At most this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// `GET /suppressions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppressions {
    /// Newest first.
    pub results: Vec<SuppressionRow>,
    /// Every match, so a caller can tell when `limit` cut the list.
    pub total: u64,
}

/// One suppressed address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionRow {
    /// The address.
    pub address: String,
    /// The subaccount whose mail to it is suppressed.
    pub subaccount: u64,
    /// `hard_bounce`, `spam_complaint` or `manual`.
    pub reason: String,
    /// Why, for a person.
    pub description: String,
    /// When (RFC 3339).
    pub created: String,
}

/// `POST /suppressions` body. Unknown fields are refused so a misspelt `subaccount` does
/// not silently suppress for the main account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSuppression {
    /// The address.
    pub address: String,
    /// The subaccount (0 = the main account).
    #[serde(default)]
    pub subaccount: u64,
    /// A note for other operators.
    #[serde(default)]
    pub description: String,
}

/// `POST /suppressions` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Added {
    /// False when the address was already suppressed (the entry was refreshed).
    pub added: bool,
}

/// `DELETE /suppressions` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveSuppression {
    /// The address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The subaccount (0 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subaccount: Option<String>,
}

/// `DELETE /suppressions` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// Always true (a missing entry is a 404).
    pub removed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_powermtas() {
        let row = QueueRow {
            queue: "gmail.com/mta1".into(),
            domain: "gmail.com".into(),
            vmta: "mta1".into(),
            rcp: 3,
            msg: 2,
            kb: 1,
            conn: 0,
            paused: false,
            mode: Mode::Backoff,
            backoff_since: Some(5),
            retry: false,
            retry_until: None,
            last_error: None,
        };
        let v = serde_json::to_value(Data { data: row }).unwrap();
        assert_eq!(v["data"]["mode"], "backoff");
        assert_eq!(v["data"]["backoffSince"], 5);
        assert_eq!(v["data"]["retryUntil"], serde_json::Value::Null);
        let m: MessagesQuery = serde_json::from_str(r#"{"jobId":"j"}"#).unwrap();
        assert_eq!(m.job_id.as_deref(), Some("j"));
        assert!(
            serde_json::from_str::<NewSuppression>(r#"{"address":"a","subacount":1}"#).is_err()
        );
    }
}
