//! The loaded configuration: plain data plus indexes precomputed at load time.

use crate::model::*;
use crate::resolve::Index;
use crate::values::DomainPattern;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything the configuration says, fully typed.
///
/// Exists as the read-only view behind [`Config`]: fields are public for reading, but a
/// `Config` only hands out `&ConfigData`, so a loaded configuration cannot be changed
/// (reload means loading a new one).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigData {
    /// The main configuration file (as given to `load`/`parse_str`).
    pub config_file: PathBuf,
    /// `host-name` values; the first is the main name. Defaults to the OS host name.
    pub host_name: Vec<String>,
    /// `postmaster` addresses.
    pub postmaster: Vec<String>,
    /// Listeners; an implicit `0.0.0.0:25` when none is configured.
    pub listeners: Vec<Listener>,
    /// `<source>` blocks in file order.
    pub sources: Vec<SourceRule>,
    /// Source settings given at global level (`always-allow-relaying`, `max-message-size`),
    /// the base under every `<source>`.
    pub global_source: SourceSettings,
    /// `<smtp-user>` accounts.
    pub smtp_users: Vec<SmtpUser>,
    /// Inbound TLS.
    pub server_tls: ServerTls,
    /// `<rewrite-list>`s.
    pub rewrite_lists: Vec<RewriteList>,
    /// `relay-domain` patterns.
    pub relay_domains: Vec<DomainPattern>,
    /// `relay-address` entries (planned).
    pub relay_addresses: Vec<String>,
    /// Global `domain-key`s in order (first match wins).
    pub domain_keys: Vec<DomainKey>,
    /// Global `smtp-source-host`s.
    pub smtp_source_hosts: Vec<SourceHost>,
    /// `<virtual-mta>`s.
    pub virtual_mtas: Vec<VirtualMta>,
    /// `<virtual-mta-pool>`s.
    pub pools: Vec<VirtualMtaPool>,
    /// Global `<domain>` blocks.
    pub domains: Vec<DomainBlock>,
    /// `<bounce-processor>`.
    pub bounce_processor: Option<Processor>,
    /// `<feedback-loop-processor>`.
    pub feedback_loop_processor: Option<Processor>,
    /// Named global `<address-list>`s.
    pub address_lists: Vec<AddressList>,
    /// `<signals>`.
    pub signals: Option<Signals>,
    /// Global `enable-signals` (default: enabled iff `<signals>` exists).
    pub enable_signals: EnableSignals,
    /// `<signals-filter>`s in file order.
    pub signals_filters: Vec<SignalsFilter>,
    /// `<signals-service>` (petrel extension).
    pub signals_service: Option<SignalsService>,
    /// `<acct-file>`s.
    pub acct_files: Vec<AcctFile>,
    /// Configured `<spool>`s (see [`Config::spool_dirs`] for the effective list).
    pub spools: Vec<SpoolDir>,
    /// `http-mgmt-port` (default 8080; 0 = off).
    pub http_mgmt_port: u16,
    /// `suppression-database` (petrel extension): the SQLite file of the suppression list;
    /// `None` means `suppression.db` beside the spool directory.
    pub suppression_database: Option<PathBuf>,
    /// `suppress-hard-bounces` (petrel extension, default yes): add recipients whose mail
    /// hard-bounced (in-band or by an attributed bounce report) to the suppression list.
    pub suppress_hard_bounces: bool,
    /// `suppress-complaints` (petrel extension, default yes): add recipients who complained
    /// through a feedback loop to the suppression list.
    pub suppress_complaints: bool,
    /// `http-access` in order (first match wins; default: no access).
    pub http_access: Vec<HttpAccess>,
    /// `log-file`.
    pub log_file: Option<PathBuf>,
    /// `total-max-smtp-in` (default 100).
    pub total_max_smtp_in: u32,
    /// `total-max-smtp-out` (planned).
    pub total_max_smtp_out: Option<u32>,
    /// `name-server IP[:PORT]` lines: the DNS servers for MX and address lookups, used in
    /// turn; empty means the system's resolvers. A port is petrel's extension (for a
    /// resolver on a non-standard port, as tests use).
    pub name_servers: Vec<std::net::SocketAddr>,
    /// `smtp-await-slot` (planned).
    pub smtp_await_slot: bool,
    /// `run-as-root` (planned).
    pub run_as_root: bool,
    /// `<pattern-list>`s in file order.
    pub pattern_lists: Vec<PatternList>,
    /// `<bounce-category-patterns>`: `/regex/ category` lines in order; the first match on an
    /// SMTP reply names its `bounceCat`, before petrel's built-in rules.
    pub bounce_category_patterns: Vec<(Pattern, String)>,
    /// `<smtp-pattern-list>`s in file order.
    pub smtp_pattern_lists: Vec<SmtpPatternList>,
}

impl ConfigData {
    /// The `bounceCat` a `<bounce-category-patterns>` line gives `reply` (one line, code
    /// included), if any.
    pub fn bounce_category_for(&self, reply: &str) -> Option<&str> {
        self.bounce_category_patterns
            .iter()
            .find(|(p, _)| p.is_match(reply))
            .map(|(_, c)| c.as_str())
    }

    /// The `<pattern-list>` called `name` (case-insensitive).
    pub fn pattern_list(&self, name: &str) -> Option<&PatternList> {
        self.pattern_lists
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
    }

    /// The `<smtp-pattern-list>` called `name` (case-insensitive).
    pub fn smtp_pattern_list(&self, name: &str) -> Option<&SmtpPatternList> {
        self.smtp_pattern_lists
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
    }

    /// Decides whether events for a message sent through `vmta` (and selected via `pool`,
    /// if any) with this Sender/From domain go to Signals: `None` means no events,
    /// `Some(n)` means events tagged with subaccount `n` (0 = the primary account).
    ///
    /// - Without a `<signals>` block there are never events.
    /// - The effective `enable-signals` is the vmta's if `vmta` names a `<virtual-mta>`
    ///   that sets one; else the pool's: `pool` if it names a pool that sets one, else
    ///   the first `<virtual-mta-pool>` (in file order) that lists `vmta` as a member and
    ///   sets one; else the global value (which defaults to enabled when `<signals>`
    ///   exists). `vmta` may be `{default}` or any name that is not a vmta; then only the
    ///   pool and global levels apply.
    /// - `true[,subaccount=N]` gives `Some(N)` (`Some(0)` without a subaccount); `false`
    ///   gives `None`.
    /// - A `<signals-filter>` name: the most specific `sender-or-from` pattern matching
    ///   `sending_domain` decides (equally specific: the first written);
    ///   `enable-signals[,subaccount=N]` gives `Some(N)` (or `Some(0)`),
    ///   `disable-signals` gives `None`. No matching rule, or no (or an empty)
    ///   `sending_domain`, gives `None`.
    ///
    /// A subaccount from an `X-SP-Subaccount-ID` header (with
    /// `process-x-sp-subaccount-id true`) is not considered here; the caller applies it
    /// over the returned value.
    pub fn signals_scope(
        &self,
        vmta: &str,
        pool: Option<&str>,
        sending_domain: Option<&str>,
    ) -> Option<u64> {
        self.signals.as_ref()?;
        let from_vmta = self
            .virtual_mtas
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(vmta))
            .and_then(|v| v.enable_signals.as_ref());
        let from_named_pool = || {
            pool.and_then(|p| {
                self.pools
                    .iter()
                    .find(|x| x.name.eq_ignore_ascii_case(p))
                    .and_then(|x| x.enable_signals.as_ref())
            })
        };
        let from_member_pool = || {
            self.pools
                .iter()
                .filter(|p| p.members.iter().any(|m| m.eq_ignore_ascii_case(vmta)))
                .find_map(|p| p.enable_signals.as_ref())
        };
        let setting = from_vmta
            .or_else(from_named_pool)
            .or_else(from_member_pool)
            .unwrap_or(&self.enable_signals);
        match setting {
            EnableSignals::Enabled { subaccount } => Some(subaccount.unwrap_or(0)),
            EnableSignals::Disabled => None,
            EnableSignals::Filter(name) => {
                let domain = sending_domain.map(str::trim).filter(|d| !d.is_empty())?;
                let filter = self.signals_filter(name)?;
                let mut best: Option<&SignalsFilterRule> = None;
                for r in &filter.rules {
                    if r.pattern.matches(domain)
                        && best.is_none_or(|b| r.pattern.specificity() > b.pattern.specificity())
                    {
                        best = Some(r);
                    }
                }
                match best?.action {
                    FilterAction::Enable { subaccount } => Some(subaccount.unwrap_or(0)),
                    FilterAction::Disable => None,
                }
            }
        }
    }

    /// The `<signals-filter>` with this name.
    pub fn signals_filter(&self, name: &str) -> Option<&SignalsFilter> {
        self.signals_filters
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// A loaded, validated, immutable configuration.
///
/// Exists as the one object every subsystem receives. Cloning is cheap (shared), reading
/// goes through `Deref` to [`ConfigData`], and the lookups the hot paths need
/// ([`Config::source_for_ip`], [`Config::is_relay_domain`], ...) use indexes built once at
/// load time.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) data: Arc<ConfigData>,
    pub(crate) index: Arc<Index>,
    /// Where the restart-only settings stand, to tell what a reload cannot apply.
    pub(crate) restart: Arc<crate::restart::Fingerprint>,
}

impl Deref for Config {
    type Target = ConfigData;
    fn deref(&self) -> &ConfigData {
        &self.data
    }
}

impl Config {
    pub(crate) fn new(data: ConfigData, restart: crate::restart::Fingerprint) -> Config {
        let index = Index::build(&data);
        Config {
            data: Arc::new(data),
            index: Arc::new(index),
            restart: Arc::new(restart),
        }
    }

    /// The spool directories to use: the configured `<spool>`s, or `./var/spool` next to
    /// the configuration file when none is configured.
    pub fn spool_dirs(&self) -> &[SpoolDir] {
        &self.index.spool_dirs
    }

    /// The main host name (greeting and EHLO).
    pub fn primary_host_name(&self) -> &str {
        self.data
            .host_name
            .first()
            .map(String::as_str)
            .unwrap_or("localhost")
    }

    /// The `<rewrite-list>` with this name.
    pub fn rewrite_list(&self, name: &str) -> Option<&RewriteList> {
        self.data
            .rewrite_lists
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }

    /// The `<virtual-mta>` with this name.
    pub fn virtual_mta(&self, name: &str) -> Option<&VirtualMta> {
        self.data
            .virtual_mtas
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
    }

    /// The `<virtual-mta-pool>` with this name.
    pub fn pool(&self, name: &str) -> Option<&VirtualMtaPool> {
        self.data
            .pools
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
    }

    /// The listeners to bind (never empty: an implicit `0.0.0.0:25` when none is
    /// configured).
    pub fn listeners(&self) -> &[Listener] {
        &self.data.listeners
    }

    /// The first spool directory (see [`Config::spool_dirs`]); what a single-spool
    /// server uses.
    pub fn spool_dir(&self) -> &Path {
        self.index
            .spool_dirs
            .first()
            .map(|s| s.path.as_path())
            .unwrap_or_else(|| Path::new("var/spool"))
    }

    /// `min-free-space` of the first spool directory, in bytes.
    pub fn spool_min_free_space(&self) -> u64 {
        self.index
            .spool_dirs
            .first()
            .map(|s| s.min_free_space)
            .unwrap_or(0)
    }

    /// Checks AUTH credentials. `Some(source)` when `user` exists with this password
    /// (`source` is the user's named source, `None` meaning `{auth}`); `None` otherwise.
    /// The comparison does not stop at the first differing byte.
    pub fn check_smtp_password(&self, user: &str, password: &str) -> Option<Option<String>> {
        let u = self.smtp_user(user)?;
        if constant_time_eq(u.password.as_bytes(), password.as_bytes()) {
            Some(u.source.clone())
        } else {
            None
        }
    }

    /// Applies the named `<rewrite-list>` to a reverse-path (`""` = `<>`); `None` when the
    /// list does not exist or no rule matches.
    pub fn rewrite_mail_from(&self, list: &str, addr: &str) -> Option<String> {
        self.rewrite_list(list)?.rewrite_mail_from(addr)
    }

    /// The `smtp-source-host` lines a vmta sends from: its own when it has any, else the
    /// global ones. Delivery picks among them; Signals reports the first as `sending_ip`
    /// when no connection was made.
    pub fn source_hosts_for(&self, vmta: &str) -> &[SourceHost] {
        self.virtual_mta(vmta)
            .map(|v| v.smtp_source_hosts.as_slice())
            .filter(|h| !h.is_empty())
            .unwrap_or(self.smtp_source_hosts.as_slice())
    }

    /// Same as [`Config::is_selectable_vmta`]; the name the listener uses.
    pub fn virtual_mta_exists(&self, name: &str) -> bool {
        self.is_selectable_vmta(name)
    }

    /// Whether a submission may select `name` (a vmta, a pool, or `{default}`).
    pub fn is_selectable_vmta(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("{default}")
            || self.virtual_mta(name).is_some()
            || self.pool(name).is_some()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}
