//! The `<signals>`, `<signals-filter>` and `<signals-service>` model: which mail produces
//! SparkPost Signals events, engagement tracking, and petrel's own Signals service.

use super::*;

/// `engagement-tracking` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngagementTracking {
    /// `false`
    Off,
    /// `true`: open/click events reach Signals from elsewhere.
    Declared,
    /// `sparkpost`: petrel rewrites HTML for open and click tracking.
    Sparkpost,
}

/// How petrel tracks opens and clicks when `engagement-tracking sparkpost` is on: its own
/// tracking host, the keys that sign tracking links, and which rewrites to make.
///
/// Exists as one value so the daemon can start the tracking host and the delivery engine can
/// rewrite messages from the same settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    /// `tracking-listener ADDRESS:PORT` (repeatable): where petrel's tracking host listens.
    pub listeners: Vec<SocketAddr>,
    /// `tracking-tls-certificate PEMFILE`: serve HTTPS on the tracking listeners.
    pub certificate: Option<TlsCertificate>,
    /// `tracking-key ID SECRET` lines in file order; the last one signs, all verify.
    pub keys: Vec<(u8, String)>,
    /// `tracking-key-file PATH`: used when no `tracking-key` is given; created with a random
    /// secret (mode 0600) when missing. Default: `tracking.key` next to `event-dir`.
    pub key_file: PathBuf,
    /// `open-tracking` (default true): add the bottom-of-body `open` pixel.
    pub open: bool,
    /// `initial-open-tracking` (default true): add the top-of-body `initial_open` pixel.
    pub initial_open: bool,
    /// `click-tracking` (default true): wrap http(s) links.
    pub click: bool,
    /// `tracking-link-expiry` (default 366d, SparkPost's): after this, links answer 404.
    pub link_expiry: Duration,
    /// `tracking-trusted-proxy IP` (repeatable): peers whose `X-Forwarded-For` /
    /// `X-Real-IP` name the client. Loopback peers are always trusted.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Tracking {
    /// The base URL of tracked links: `tracking-domain`, else the first tracking listener
    /// (`https` when a certificate is configured). `None` when neither is set.
    pub fn base_url(&self, tracking_domain: Option<&str>) -> Option<String> {
        if let Some(d) = tracking_domain {
            let d = d.trim_end_matches('/');
            return Some(if d.starts_with("http://") || d.starts_with("https://") {
                d.to_string()
            } else {
                format!("https://{d}")
            });
        }
        let l = self.listeners.first()?;
        let scheme = if self.certificate.is_some() {
            "https"
        } else {
            "http"
        };
        Some(format!("{scheme}://{l}"))
    }
}

/// `privacy-policy` inside `<signals>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalsPrivacy {
    /// Send recipients as is.
    Retain,
    /// Send SHA-1 of the lower-cased recipient.
    Sha1,
}

/// The `<signals>` block (SparkPost Signals uploads).
///
/// Exists so the event spool and the uploader are configured in one place. Whether a
/// given message produces events is decided by [`crate::ConfigData::signals_scope`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signals {
    /// 40 hex characters.
    pub api_key: String,
    /// Ingest endpoint.
    pub upload_url: String,
    /// Log every upload action.
    pub log_verbose: bool,
    /// Free-space floor for the event spool, in bytes.
    pub min_free_space: u64,
    /// Engagement tracking mode.
    pub engagement_tracking: EngagementTracking,
    /// SparkPost account number.
    pub customer_id: Option<u64>,
    /// `tracking-domain`: where tracked URLs point, as a base URL (`https://track.example.com`,
    /// `http://127.0.0.1:8098`, `https://example.com/t`). A bare host name becomes
    /// `https://HOST`. `None`: petrel's own tracking host (`tracking-listener`).
    pub tracking_domain: Option<String>,
    /// Engagement tracking settings (petrel extensions next to `engagement-tracking`).
    pub tracking: Tracking,
    /// Header copied into `custom_message_id`.
    pub custom_message_id_header: Option<String>,
    /// Honour `X-SP-Subaccount-ID`.
    pub process_x_sp_subaccount_id: bool,
    /// Keep `X-SP-Subaccount-ID`.
    pub retain_x_sp_subaccount_id: bool,
    /// Recipient privacy.
    pub privacy_policy: SignalsPrivacy,
    /// `event-dir` (petrel extension): where event files are spooled before upload
    /// (default `/var/lib/petrel/signals`; relative paths resolve against the directory
    /// of the file that names them).
    pub event_dir: PathBuf,
    /// `upload-interval` (petrel extension): the longest an event file stays open, and how
    /// often the uploader looks for closed files (default 10s; never zero).
    pub upload_interval: Duration,
    /// `upload` (petrel extension): whether to start the uploader (default true). With
    /// false, events are only spooled in `event_dir`.
    pub upload: bool,
    /// Where the block starts.
    pub origin: Origin,
}

/// A `<signals-filter NAME>` block: per Sender/From domain rules, selected by
/// `enable-signals NAME`.
///
/// Exists so a vmta, pool or the global level can send events for some sending domains
/// only, each with its own subaccount (spec §7.2 use cases 6–9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalsFilter {
    /// The name (matched case-insensitively).
    pub name: String,
    /// `sender-or-from` rules in file order. The most specific matching pattern decides;
    /// among equally specific ones the first written wins.
    pub rules: Vec<SignalsFilterRule>,
    /// Where the block starts.
    pub origin: Origin,
}

/// One `sender-or-from DOMAIN-PATTERN ACTION` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalsFilterRule {
    /// Matched against the domain of the Sender header, else of From.
    pub pattern: DomainPattern,
    /// What a match means.
    pub action: FilterAction,
}

/// The action of a [`SignalsFilterRule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterAction {
    /// `enable-signals[,subaccount=N]`
    Enable {
        /// SparkPost subaccount to tag events with (`None` = primary account).
        subaccount: Option<u64>,
    },
    /// `disable-signals`
    Disable,
}

/// The `<signals-service>` block (petrel extension): the local Signals ingest service
/// (`petrel signals serve`).
///
/// Exists so the service can be configured from the same file as the MTA, or from a file
/// that holds only this block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalsService {
    /// `listener ADDR:PORT` (required): where the HTTP service listens.
    pub listener: SocketAddr,
    /// `database PATH`: the SQLite event store (default `/var/lib/petrel/signals.db`).
    pub database: PathBuf,
    /// `event-retention`: how long raw events and batch records are kept (default 10 days).
    pub event_retention: Duration,
    /// `metrics-retention`: how long rollups and daily Signals counters are kept (default
    /// 183 days, SparkPost's 6 months).
    pub metrics_retention: Duration,
    /// `spam-trap-file PATH`: the operator's spam traps, read when the service starts.
    pub spam_trap_file: Option<PathBuf>,
    /// Where the block starts.
    pub origin: Origin,
}
