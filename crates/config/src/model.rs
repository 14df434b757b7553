//! The typed, immutable configuration model.
//!
//! Everything here is already parsed and validated: no raw directive strings survive the
//! loader. Consumers (listener, spool, delivery engine, management API) read these types
//! and never see the configuration language itself.

use crate::values::{Cidr, DataRate, DomainPattern, Rate};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

mod daemon;
mod signals;

pub use daemon::*;
pub use signals::*;

/// Where something was defined, for messages that point back at the config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

/// Declares a pair of structs: `$settings` where every field is optional (what one block
/// of the file says) and `$effective` with every field filled in (defaults applied).
/// Merging is "a later, more specific block overrides field by field".
macro_rules! settings {
    (
        $(#[$sm:meta])* $settings:ident,
        $(#[$em:meta])* $effective:ident,
        { $( $(#[$fm:meta])* $field:ident : $ty:ty = $default:expr, $name:literal; )* }
    ) => {
        $(#[$sm])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $settings {
            $( $(#[$fm])* pub $field: Option<$ty>, )*
        }

        $(#[$em])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $effective {
            $( $(#[$fm])* pub $field: $ty, )*
        }

        impl Default for $effective {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl $settings {
            /// Directive names that map to a field of this struct.
            #[allow(dead_code)]
            pub(crate) const NAMES: &'static [&'static str] = &[$($name),*];

            /// Stores a typed value under its directive name; false if the name is not a field.
            pub(crate) fn set(&mut self, name: &str, v: crate::directives::Value) -> bool {
                match name {
                    $( $name => {
                        if let Some(x) = <$ty as crate::directives::FromValue>::from_value(v) {
                            self.$field = Some(x);
                        }
                        true
                    } )*
                    _ => false,
                }
            }

            /// Writes every field that is set here onto `onto`.
            pub fn apply_to(&self, onto: &mut $effective) {
                $( if let Some(x) = &self.$field { onto.$field = x.clone(); } )*
            }

            /// Copies every field that is set in `other` into `self` (other wins).
            pub fn merge_from(&mut self, other: &Self) {
                $( if other.$field.is_some() { self.$field = other.$field.clone(); } )*
            }
        }
    };
}

settings! {
    /// What one `<source>` block (or the global level) says about inbound policy; unset
    /// fields inherit. Exists so blocks can be merged general → specific at load time.
    SourceSettings,
    /// The fully resolved inbound policy for one SMTP session, with PowerMTA's defaults
    /// filled in. Exists so the listener's hot path reads plain fields and never consults
    /// the configuration rules. Obtain it with [`crate::Config::source_for_ip`] and
    /// [`crate::Config::source_with_named`].
    SourcePolicy,
    {
        /// false → refuse the session with `521 <host> does not accept mail from you`.
        smtp_service: bool = true, "smtp-service";
        /// Relay to any domain (not just relay domains).
        always_allow_relaying: bool = false, "always-allow-relaying";
        /// AUTH is required before MAIL FROM.
        require_auth: bool = false, "require-auth";
        /// AUTH is advertised and accepted.
        allow_auth: bool = true, "allow-auth";
        /// Maximum failed AUTH attempts per window; `None` = unlimited.
        smtp_max_auth_failure_rate: Option<Rate> = None, "smtp-max-auth-failure-rate";
        /// Allow PLAIN/LOGIN outside TLS.
        allow_unencrypted_plain_auth: bool = false, "allow-unencrypted-plain-auth";
        /// Advertise STARTTLS.
        allow_starttls: bool = false, "allow-starttls";
        /// Refuse AUTH until STARTTLS has completed.
        require_starttls_before_auth: bool = false, "require-starttls-before-auth";
        /// Log connect/disconnect lines.
        log_connections: bool = false, "log-connections";
        /// Log the SMTP dialogue.
        log_commands: bool = false, "log-commands";
        /// Hex-dump every byte received.
        log_data: bool = false, "log-data";
        /// Log TLS handshakes (planned).
        log_tls: bool = false, "log-tls";
        /// VirtualMTA or pool used when nothing else selects one.
        default_virtual_mta: Option<String> = None, "default-virtual-mta";
        /// Honour the `X-Virtual-MTA` header.
        process_x_virtual_mta: bool = false, "process-x-virtual-mta";
        /// Keep `X-Virtual-MTA` in the delivered message.
        retain_x_virtual_mta: bool = false, "retain-x-virtual-mta";
        /// An empty `X-Virtual-MTA` selects `{default}` (planned).
        allow_empty_x_virtual_mta: bool = false, "allow-empty-x-virtual-mta";
        /// Reject mail naming an unknown VirtualMTA (planned).
        reject_invalid_virtual_mta: bool = true, "reject-invalid-virtual-mta";
        /// Honour the `X-Job` header (sets the job id).
        process_x_job: bool = false, "process-x-job";
        /// Keep `X-Job` in the delivered message.
        retain_x_job: bool = false, "retain-x-job";
        /// Alternative header carrying the job id (planned).
        jobid_header: Option<String> = None, "jobid-header";
        /// Prefix added to job ids; `{auth}` means the AUTH user (planned).
        jobid_prefix: Option<String> = None, "jobid-prefix";
        /// Honour `X-Envid` (planned).
        process_x_envid: bool = false, "process-x-envid";
        /// `<pattern-list>` used for VirtualMTA selection (planned).
        pattern_list: Option<String> = None, "pattern-list";
        /// `<rewrite-list>` applied to MAIL FROM.
        rewrite_list: Option<String> = None, "rewrite-list";
        /// Add petrel's Received header.
        add_received_header: bool = true, "add-received-header";
        /// Leave client name and IP out of the Received header.
        hide_message_source: bool = false, "hide-message-source";
        /// Add a Message-ID header when missing.
        add_message_id_header: bool = false, "add-message-id-header";
        /// Headers removed at delivery (planned).
        remove_header: Vec<String> = Vec::new(), "remove-header";
        /// Largest accepted message in bytes; `None` = unlimited.
        max_message_size: Option<u64> = None, "max-message-size";
        /// Maximum Received headers before the message is refused as looping (planned).
        max_message_hops: u32 = 100, "max-message-hops";
        /// Maximum recipients per message; `None` = unlimited.
        max_rcpt_per_message: Option<u32> = None, "max-rcpt-per-message";
        /// Allow the XMRG mailmerge extensions (planned).
        allow_mailmerge: bool = false, "allow-mailmerge";
        /// Inactivity timeout while waiting for a command.
        smtp_command_timeout: Duration = Duration::from_secs(600), "smtp-command-timeout";
        /// Inactivity timeout while receiving DATA.
        smtp_data_timeout: Duration = Duration::from_secs(600), "smtp-data-timeout";
        /// Advertise and accept BDAT (planned).
        allow_chunking: bool = true, "allow-chunking";
        /// Advertise and accept SMTPUTF8.
        allow_smtputf8: bool = true, "allow-smtputf8";
    }
}

/// The key of a `<source>` block.
///
/// Exists because a source is either matched by client address or referenced by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKey {
    /// `<source 10/8>`: applies to clients inside the network.
    Cidr(Cidr),
    /// `<source {auth}>`, `<source mta1>`: applies only when referenced.
    Named(String),
}

/// One `<source>` block as written.
///
/// Exists so the blocks stay inspectable (for the management UI); resolution uses
/// precomputed data built from them.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRule {
    /// Address network or name.
    pub key: SourceKey,
    /// Settings given in the block.
    pub settings: SourceSettings,
    /// Where the block starts.
    pub origin: Origin,
}

/// An inbound SMTP listener.
///
/// Exists so the server knows which sockets to bind and which named source overrides the
/// address-based policy on each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Address and port to bind.
    pub addr: SocketAddr,
    /// Named `<source>` applied on top of the client-IP policy.
    pub source: Option<String>,
    /// Implicit TLS on connect (SMTPS); planned.
    pub immediate_tls: bool,
    /// Wait for a free slot instead of refusing with 421; planned.
    pub await_slot: bool,
    /// Where it was declared (line 0 for the implicit default listener).
    pub origin: Origin,
}

/// An SMTP AUTH account (`<smtp-user NAME>`).
///
/// Exists so the listener can verify AUTH PLAIN/LOGIN credentials and pick the source
/// that applies after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUser {
    /// The user name as written (compared exactly).
    pub name: String,
    /// The plaintext password from the config file.
    pub password: String,
    /// Named source to apply after AUTH; `None` means `{auth}`.
    pub source: Option<String>,
    /// Where the block starts.
    pub origin: Origin,
}

/// A certificate + key file for TLS.
///
/// Exists so TLS setup gets an existing, textually validated PEM path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCertificate {
    /// PEM file holding the certificate chain and the private key (resolved path).
    pub path: PathBuf,
    /// Password for an encrypted key, if given.
    pub password: Option<String>,
}

/// Inbound TLS settings (`smtp-server-tls-*`).
///
/// Exists so the listener can build its rustls config. Only TLS 1.2 and 1.3 can be enabled;
/// the older switches exist for compatibility and are always false.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// Certificate for STARTTLS; without it STARTTLS cannot be offered.
    pub certificate: Option<TlsCertificate>,
    /// CA file to verify client certificates (planned).
    pub ca_file: Option<PathBuf>,
    /// Always false (rustls has no SSLv3).
    pub allow_sslv3: bool,
    /// Always false (rustls has no TLS 1.0).
    pub allow_tlsv1: bool,
    /// Always false (rustls has no TLS 1.1; PowerMTA's default is true).
    pub allow_tlsv1_1: bool,
    /// TLS 1.2 (default true).
    pub allow_tlsv1_2: bool,
    /// TLS 1.3 (default true).
    pub allow_tlsv1_3: bool,
}

impl Default for ServerTls {
    fn default() -> Self {
        ServerTls {
            certificate: None,
            ca_file: None,
            allow_sslv3: false,
            allow_tlsv1: false,
            allow_tlsv1_1: false,
            allow_tlsv1_2: true,
            allow_tlsv1_3: true,
        }
    }
}

/// Left-hand side of a `mail-from` rewrite rule.
///
/// Exists so rewriting is a match on a typed pattern, validated at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrPattern {
    /// `a@x.com`
    Exact {
        /// The local part.
        local: String,
        /// The domain (lower-case).
        domain: String,
    },
    /// `a@*`: this local part at any domain.
    LocalAtAny(String),
    /// `*@x.com`: any local part at this domain.
    AnyAtDomain(String),
    /// `*@*`: any non-empty address.
    Any,
    /// `<>`: the null sender.
    Null,
}

/// Right-hand side of a `mail-from` rewrite rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrTarget {
    /// `a@x.com`
    Exact {
        /// The local part.
        local: String,
        /// The domain (lower-case).
        domain: String,
    },
    /// `a@*`: new local part, keep the source domain.
    KeepDomain(String),
    /// `*@x.com`: keep the source local part, new domain.
    KeepLocal(String),
    /// `<>`
    Null,
}

/// One rule of a `<rewrite-list>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewriteRule {
    /// `mail-from SOURCE TARGET`: rewrite the envelope sender.
    MailFrom {
        /// What to match.
        from: AddrPattern,
        /// What to write.
        to: AddrTarget,
    },
    /// `from-domain PATTERN DOMAIN`: rewrite the From header's domain (planned).
    FromDomain {
        /// Domains to rewrite.
        from: DomainPattern,
        /// The new domain.
        to: String,
    },
}

/// A named `<rewrite-list>`.
///
/// Exists so sources (and later vmtas) can rewrite MAIL FROM, e.g. to a bounce domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteList {
    /// The list's name.
    pub name: String,
    /// Rules in file order; the first matching `mail-from` rule wins.
    pub rules: Vec<RewriteRule>,
    /// Where the list starts.
    pub origin: Origin,
}

impl RewriteList {
    /// Applies the first matching `mail-from` rule to a reverse-path (`""` is the null
    /// sender `<>`). Returns the new reverse-path (`""` for `<>`), or `None` when no rule
    /// matches. Local parts and domains compare case-insensitively.
    pub fn rewrite_mail_from(&self, addr: &str) -> Option<String> {
        let parts = addr.rsplit_once('@');
        for rule in &self.rules {
            let RewriteRule::MailFrom { from, to } = rule else {
                continue;
            };
            let hit = match (from, parts) {
                (AddrPattern::Null, _) => addr.is_empty(),
                (_, None) => false,
                (AddrPattern::Any, Some(_)) => true,
                (AddrPattern::Exact { local, domain }, Some((l, d))) => {
                    l.eq_ignore_ascii_case(local) && d.eq_ignore_ascii_case(domain)
                }
                (AddrPattern::LocalAtAny(local), Some((l, _))) => l.eq_ignore_ascii_case(local),
                (AddrPattern::AnyAtDomain(domain), Some((_, d))) => d.eq_ignore_ascii_case(domain),
            };
            if !hit {
                continue;
            }
            return Some(match (to, parts) {
                (AddrTarget::Null, _) => String::new(),
                (AddrTarget::Exact { local, domain }, _) => format!("{local}@{domain}"),
                (AddrTarget::KeepDomain(local), Some((_, d))) => format!("{local}@{d}"),
                (AddrTarget::KeepLocal(domain), Some((l, _))) => format!("{l}@{domain}"),
                // rejected at load time (`<>` cannot keep a part it does not have)
                (_, None) => continue,
            });
        }
        None
    }
}

/// The domain half of a `domain-key` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyDomain {
    /// `*`: any signing domain.
    Any,
    /// A specific domain (lower-case).
    Name(String),
}

/// A DKIM signing key (`domain-key SELECTOR,DOMAIN,FILE`).
///
/// Exists so the signer can pick a key by domain; the key file was checked to exist and
/// to contain a PEM private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainKey {
    /// The DKIM selector (`s=`).
    pub selector: String,
    /// The domain the key signs for.
    pub domain: KeyDomain,
    /// PEM private key file (resolved path).
    pub key_file: PathBuf,
    /// Where it was declared.
    pub origin: Origin,
}

/// Outbound source address with its EHLO name (`smtp-source-host IP|CIDR HOST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHost {
    /// One address, or every local address in a network.
    pub addr: SourceAddr,
    /// Name used in EHLO from that address.
    pub host_name: String,
}

/// The address part of [`SourceHost`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAddr {
    /// A single address.
    Ip(IpAddr),
    /// Every local address inside the network.
    Cidr(Cidr),
}

/// `enable-signals` value.
///
/// Exists because the setting is either a switch (with an optional subaccount) or the
/// name of a `<signals-filter>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnableSignals {
    /// `true[,subaccount=N]`
    Enabled {
        /// SparkPost subaccount to tag events with.
        subaccount: Option<u64>,
    },
    /// `false`
    Disabled,
    /// The name of a `<signals-filter>`.
    Filter(String),
}

/// A `<virtual-mta NAME>`.
///
/// Exists so submission can select it by name now, and delivery can use its source IPs,
/// names, keys and `<domain>` overrides later.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualMta {
    /// The name.
    pub name: String,
    /// Source IPs and EHLO names (replace the global list when non-empty).
    pub smtp_source_hosts: Vec<SourceHost>,
    /// Host names overriding the global `host-name`.
    pub host_name: Vec<String>,
    /// Keys searched before the global ones.
    pub domain_keys: Vec<DomainKey>,
    /// `<rewrite-list>` applied to this vmta's mail.
    pub rewrite_list: Option<String>,
    /// Per-vmta Signals switch (wins over pool and global).
    pub enable_signals: Option<EnableSignals>,
    /// Cap on connections across all of this vmta's queues.
    pub max_smtp_out: Option<u32>,
    /// Message rate across all of this vmta's queues.
    pub max_smtp_msg_rate: Option<Rate>,
    /// Cold vmtas (round-robin) for warm-up.
    pub cold_virtual_mtas: Vec<String>,
    /// `<domain>` blocks that apply only to this vmta's queues.
    pub domains: Vec<DomainBlock>,
    /// Where the block starts.
    pub origin: Origin,
}

/// A `<virtual-mta-pool NAME>`.
///
/// Exists so a pool name can be selected like a vmta and spread over its members.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualMtaPool {
    /// The name (shares the namespace with vmtas).
    pub name: String,
    /// Member vmta names, in order.
    pub members: Vec<String>,
    /// `<domain>` blocks applying to all members.
    pub domains: Vec<DomainBlock>,
    /// Pool-level Signals switch.
    pub enable_signals: Option<EnableSignals>,
    /// Keys for the members.
    pub domain_keys: Vec<DomainKey>,
    /// `<rewrite-list>` for the pool's mail.
    pub rewrite_list: Option<String>,
    /// Connection cap for the pool.
    pub max_smtp_out: Option<u32>,
    /// Cold vmtas.
    pub cold_virtual_mtas: Vec<String>,
    /// Where the block starts.
    pub origin: Origin,
}

/// One host in `smtp-hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpHost {
    /// A host name, optionally with a port.
    Name {
        /// Host name (lower-case).
        name: String,
        /// Port, when not the default.
        port: Option<u16>,
    },
    /// `[ip]` or `[IPv6:ip]`, optionally with a port.
    Ip {
        /// The address.
        ip: IpAddr,
        /// Port, when not the default.
        port: Option<u16>,
    },
    /// `lookup-mx:other.domain`: use that domain's MX records.
    LookupMx(String),
}

/// Parsed `smtp-hosts`: levels tried in order, hosts within a level round-robin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpHosts {
    /// Preference levels (semicolon-separated), each a comma-separated host list.
    pub levels: Vec<Vec<SmtpHost>>,
}

/// Queue delivery method (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryType {
    /// Normal SMTP delivery.
    Smtp,
    /// Pipe to a command.
    Pipe,
    /// Write to files.
    File,
    /// Drop (accounted as delivered).
    Discard,
    /// JSON webhook.
    HttpDelivery,
}

/// `dkim-sign` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimSign {
    /// Never sign.
    No,
    /// Sign when a matching key exists.
    Yes,
    /// Sign only when the message carries X-DKIM-Options.
    IfXDkimOptionsPresent,
}

/// `bounce-upon-no-mx` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMxPolicy {
    /// `false`/`never`: fall back to A/AAAA and keep retrying.
    Never,
    /// `true`: bounce at once.
    Immediately,
    /// Bounce messages older than this; try A/AAAA meanwhile.
    After(Duration),
}

settings! {
    /// What one `<domain>` block says; unset fields inherit. Exists so blocks from the
    /// global, pool and vmta levels can be merged by specificity.
    DomainSettings,
    /// Effective per-queue delivery settings with PowerMTA defaults (spec §2.6). Exists so
    /// the delivery engine reads plain values. Obtain with [`crate::Config::domain_settings`].
    EffectiveDomainSettings,
    {
        /// Concurrent connections for the queue.
        max_smtp_out: u32 = 20, "max-smtp-out";
        /// Concurrent connections while in backoff.
        backoff_max_smtp_out: u32 = 20, "backoff-max-smtp-out";
        /// Recipients attempted per window; `None` = unlimited.
        max_msg_rate: Option<Rate> = None, "max-msg-rate";
        /// Rate while in backoff; `None` = same as `max_msg_rate`.
        backoff_max_msg_rate: Option<Rate> = None, "backoff-max-msg-rate";
        /// New connections per window; `None` = unlimited.
        max_connect_rate: Option<Rate> = None, "max-connect-rate";
        /// New connections per window in backoff; `None` = same as `max_connect_rate`.
        backoff_max_connect_rate: Option<Rate> = None, "backoff-max-connect-rate";
        /// Bytes delivered per window; `None` = unlimited.
        max_data_volume_rate: Option<DataRate> = None, "max-data-volume-rate";
        /// Messages per connection before reconnecting; `None` = unlimited.
        max_msg_per_connection: Option<u32> = None, "max-msg-per-connection";
        /// Recipients per transaction (alias `max-rcpt-per-message` in `<domain>`).
        max_rcpt_per_transaction: u32 = 1000, "max-rcpt-per-transaction";
        /// Recipient errors before disconnecting; `None` = unlimited.
        max_errors_per_connection: Option<u32> = None, "max-errors-per-connection";
        /// Minimum gap between opening connections.
        smtp_out_rampup_interval: Duration = Duration::ZERO, "smtp-out-rampup-interval";
        /// Keep idle connections this long.
        connection_idle_timeout: Duration = Duration::ZERO, "connection-idle-timeout";
        /// Queue priority 0–100.
        queue_priority: u32 = 50, "queue-priority";
        /// Retry schedule; the last entry repeats.
        retry_after: Vec<Duration> = vec![Duration::from_secs(600)], "retry-after";
        /// Retry schedule in backoff mode.
        backoff_retry_after: Vec<Duration> = vec![Duration::from_secs(3600)], "backoff-retry-after";
        /// Leave backoff mode automatically after this long in it; `None` = only by a
        /// `mode=normal` reply pattern, a delivery (with `backoff-to-normal-after-delivery`)
        /// or the operator.
        backoff_to_normal_after: Option<Duration> = None, "backoff-to-normal-after";
        /// Leave backoff mode on the first successful delivery.
        backoff_to_normal_after_delivery: bool = false, "backoff-to-normal-after-delivery";
        /// Minimum wait before retrying a 4xx recipient.
        retry_recipients_after: Duration = Duration::from_secs(600), "retry-recipients-after";
        /// Maximum time in queue before bouncing.
        bounce_after: Duration = Duration::from_secs(4 * 86_400 + 12 * 3_600), "bounce-after";
        /// What to do for domains without MX.
        bounce_upon_no_mx: NoMxPolicy = NoMxPolicy::Never, "bounce-upon-no-mx";
        /// Bounce on a 5xx greeting.
        bounce_upon_5xx_greeting: bool = true, "bounce-upon-5xx-greeting";
        /// Bounce when the connection breaks during DATA.
        bounce_upon_transfer_failure: bool = false, "bounce-upon-transfer-failure";
        /// How often delay DSNs are sent; `None` = never.
        notify_of_delay_every: Option<Duration> = Some(Duration::from_secs(4 * 3600)), "notify-of-delay-every";
        /// Name of the `<smtp-pattern-list>`.
        smtp_pattern_list: Option<String> = None, "smtp-pattern-list";
        /// Explicit routing; `None` = DNS MX.
        smtp_hosts: Option<SmtpHosts> = None, "smtp-hosts";
        /// Port used for MX hosts.
        default_smtp_port: u16 = 25, "default-smtp-port";
        /// Merge into another queue.
        queue_to: Option<String> = None, "queue-to";
        /// Delivery method.
        delivery_type: DeliveryType = DeliveryType::Smtp, "type";
        /// Opportunistic STARTTLS.
        use_starttls: bool = true, "use-starttls";
        /// Fail (transiently) without TLS.
        require_starttls: bool = false, "require-starttls";
        /// Honour DANE.
        use_dane: bool = true, "use-dane";
        /// Outbound AUTH user.
        auth_username: Option<String> = None, "auth-username";
        /// Outbound AUTH password.
        auth_password: Option<String> = None, "auth-password";
        /// Allow PLAIN/LOGIN without TLS outbound.
        use_unencrypted_plain_auth: bool = false, "use-unencrypted-plain-auth";
        /// TCP connect timeout.
        connect_timeout: Duration = Duration::from_secs(120), "connect-timeout";
        /// Wait for the 220 greeting.
        smtp_greeting_timeout: Duration = Duration::from_secs(300), "smtp-greeting-timeout";
        /// Timeout while sending DATA.
        data_send_timeout: Duration = Duration::from_secs(180), "data-send-timeout";
        /// Wait for the reply to the final dot.
        smtp_data_termination_timeout: Duration = Duration::from_secs(600), "smtp-data-termination-timeout";
        /// Do not use 8BITMIME.
        ignore_8bitmime: bool = false, "ignore-8bitmime";
        /// Do not use CHUNKING.
        ignore_chunking: bool = false, "ignore-chunking";
        /// Do not use PIPELINING.
        ignore_pipelining: bool = false, "ignore-pipelining";
        /// Do not use DSN.
        ignore_dsn: bool = false, "ignore-dsn";
        /// Log outbound connections.
        log_connections: bool = false, "log-connections";
        /// Log outbound SMTP dialogue.
        log_commands: bool = false, "log-commands";
        /// Log outbound data.
        log_data: bool = false, "log-data";
        /// Log DNS resolution.
        log_resolution: bool = false, "log-resolution";
        /// Log transfer failures.
        log_transfer_failures: bool = false, "log-transfer-failures";
        /// Log outbound TLS.
        log_tls: bool = false, "log-tls";
        /// Headers removed at delivery.
        remove_header: Vec<String> = Vec::new(), "remove-header";
        /// Addresses that get a BCC of each delivered message.
        bcc_upon_delivery: Vec<String> = Vec::new(), "bcc-upon-delivery";
        /// DKIM signing.
        dkim_sign: DkimSign = DkimSign::No, "dkim-sign";
    }
}

/// What a `<pattern-list>` entry looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternSubject {
    /// `header NAME /re/`: the first header field of that name.
    Header(String, Pattern),
    /// `mail-from /re/`: the envelope sender.
    MailFrom(Pattern),
    /// `rcpt-to /re/`: any envelope recipient (the first that matches decides for the whole
    /// message).
    RcptTo(Pattern),
    /// `*`: always (a catch-all, last in a list).
    Any,
}

/// One `<pattern-list>` entry: what to look at and the virtual MTA (or pool) it selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternEntry {
    /// The test.
    pub subject: PatternSubject,
    /// `virtual-mta=NAME`: a vmta or a pool (checked to exist when loading).
    pub virtual_mta: Option<String>,
}

/// A `<pattern-list NAME>`, selected by `pattern-list NAME` in `<source>`: chooses the
/// virtual MTA (or pool) of a message from its sender, recipients or headers. First match
/// wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternList {
    /// The name (compared case-insensitively).
    pub name: String,
    /// Entries in file order.
    pub entries: Vec<PatternEntry>,
}

impl PatternList {
    /// The virtual MTA of the first entry that matches: `header(name)` gives a header's
    /// value, `mail_from` and `rcpts` are the envelope. Entries without `virtual-mta=` match
    /// but select nothing (PowerMTA's other results are not acted on yet).
    pub fn virtual_mta<'a, 'r>(
        &self,
        header: impl Fn(&str) -> Option<String>,
        mail_from: &str,
        rcpts: impl Iterator<Item = &'r str> + Clone,
    ) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| match &e.subject {
                PatternSubject::Header(name, p) => header(name).is_some_and(|v| p.is_match(&v)),
                PatternSubject::MailFrom(p) => p.is_match(mail_from),
                PatternSubject::RcptTo(p) => rcpts.clone().any(|r| p.is_match(r)),
                PatternSubject::Any => true,
            })
            .and_then(|e| e.virtual_mta.as_deref())
    }
}

/// A queue's delivery mode (PowerMTA): `backoff` replaces the limits and the retry schedule
/// with their `backoff-*` forms, so a throttling receiver gets fewer, slower attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMode {
    /// The normal limits.
    Normal,
    /// The `backoff-*` limits.
    Backoff,
}

/// What a matching `reply` line of an `<smtp-pattern-list>` does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyActions {
    /// `mode=backoff` / `mode=normal`: switch the queue's mode.
    pub mode: Option<QueueMode>,
    /// `defer-queue`: put the queue into retry mode now (the connection is closed).
    pub defer_queue: bool,
    /// `bounce-queue`: bounce every recipient waiting in the queue.
    pub bounce_queue: bool,
    /// `bounce-rcpt`: a 4xx reply to RCPT bounces that recipient instead of deferring it.
    pub bounce_rcpt: bool,
    /// `skip-mx` (parsed; not acted on yet: petrel already moves to the next MX when a
    /// host refuses the connection or greets with an error).
    pub skip_mx: bool,
    /// `disable-source-ip` (parsed; not acted on yet).
    pub disable_source_ip: bool,
    /// `reenable-after=INTERVAL` (parsed; not acted on yet).
    pub reenable_after: Option<Duration>,
}

/// One `reply /regex/ ACTIONS` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRule {
    /// Matched case-insensitively against the whole reply, code included
    /// (`421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred`).
    pub pattern: Pattern,
    /// What to do on a match.
    pub actions: ReplyActions,
}

/// An `<smtp-pattern-list NAME>`: how a queue reacts to what receivers answer. The first
/// matching rule wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpPatternList {
    /// The name `smtp-pattern-list` in `<domain>` refers to (compared case-insensitively).
    pub name: String,
    /// The rules in file order.
    pub rules: Vec<ReplyRule>,
}

impl SmtpPatternList {
    /// The actions of the first rule matching `reply`, if any.
    pub fn actions_for(&self, reply: &str) -> Option<&ReplyActions> {
        self.rules
            .iter()
            .find(|r| r.pattern.is_match(reply))
            .map(|r| &r.actions)
    }
}

/// A `<domain PATTERN>` block.
///
/// Exists so per-queue settings can be resolved by specificity within each level.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainBlock {
    /// Which domains the block applies to.
    pub pattern: DomainPattern,
    /// What the block sets.
    pub settings: DomainSettings,
    /// Where the block starts.
    pub origin: Origin,
}

/// One entry of an `<address-list>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressEntry {
    /// A full address.
    Email(String),
    /// A bare local part.
    LocalPart(String),
    /// `/regex/`, matched case-insensitively against the whole address.
    Regex(Pattern),
}

/// A compiled `/regex/` of the configuration (address-list entries, `<smtp-pattern-list>`
/// replies), case-insensitive as in PowerMTA (`(?-i)` inside turns that off). Compiled when
/// the configuration is loaded, so a bad pattern is a `file:line` error rather than a
/// surprise at the first message.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: regex::Regex,
}

impl Pattern {
    /// Compiles `source` (the text between the slashes), case-insensitively.
    pub fn new(source: &str) -> Result<Self, String> {
        if source.is_empty() {
            return Err("`//` is an empty pattern, which would match everything".into());
        }
        regex::RegexBuilder::new(source)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map(|regex| Pattern {
                source: source.to_string(),
                regex,
            })
            .map_err(|e| format!("`/{source}/` is not a valid regular expression: {e}"))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

/// An `<address-list>` (named at global level, unnamed inside processors).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressList {
    /// The name, for global suppression lists.
    pub name: Option<String>,
    /// `domain` entries (lower-case).
    pub domains: Vec<String>,
    /// `address` entries, then the entries of every `address-file` (read at load and reload).
    pub addresses: Vec<AddressEntry>,
    /// `address-file` entries (resolved paths).
    pub address_files: Vec<PathBuf>,
}

impl AddressList {
    /// Whether `address` is in the list: its domain is a `domain` entry, it equals an
    /// `address` entry (a full address, or a bare local part at any domain), or a `/regex/`
    /// entry matches it; case-insensitive.
    pub fn contains(&self, address: &str) -> bool {
        let Some((local, domain)) = address.rsplit_once('@') else {
            return false;
        };
        let domain = domain.trim_end_matches('.');
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
            || self.addresses.iter().any(|e| match e {
                AddressEntry::Email(a) => a.eq_ignore_ascii_case(address),
                AddressEntry::LocalPart(l) => l.eq_ignore_ascii_case(local),
                AddressEntry::Regex(r) => r.is_match(address),
            })
    }
}

/// `<bounce-processor>` / `<feedback-loop-processor>` settings.
///
/// Exists so inbound DSNs and ARF reports for the listed domains are turned into
/// out-of-band and complaint events instead of being relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processor {
    /// Deliver in-scope mail that is not a recognised report.
    pub deliver_unmatched_email: bool,
    /// Also deliver recognised reports.
    pub deliver_matched_email: bool,
    /// Forward unrecognised mail here.
    pub forward_unmatched_to: Vec<String>,
    /// Forward mail that failed to parse here.
    pub forward_errors_to: Vec<String>,
    /// Scope: recipient domains/addresses examined.
    pub address_list: AddressList,
    /// `body-pattern-file` entries from `<email-patterns>`.
    pub body_pattern_files: Vec<PathBuf>,
    /// `log-match-info`.
    pub log_match_info: bool,
    /// `return-path-key ID SECRET` lines (petrel extension, `<bounce-processor>`): HMAC keys
    /// that sign VERP return paths; the last one signs, all verify.
    pub return_path_keys: Vec<(u8, String)>,
    /// `return-path-key-file PATH` (petrel extension): used without `return-path-key`;
    /// created with a random key when missing. Default: `return-path.key` next to the spool.
    pub return_path_key_file: Option<PathBuf>,
    /// Where the block starts.
    pub origin: Origin,
}

impl Default for Processor {
    fn default() -> Self {
        Processor {
            deliver_unmatched_email: true,
            deliver_matched_email: false,
            forward_unmatched_to: Vec::new(),
            forward_errors_to: Vec::new(),
            address_list: AddressList::default(),
            body_pattern_files: Vec::new(),
            log_match_info: false,
            return_path_keys: Vec::new(),
            return_path_key_file: None,
            origin: Origin::default(),
        }
    }
}
