//! The single table of every directive and section petrel knows.
//!
//! One table drives three things so they can never drift apart: validation (is this
//! keyword allowed here, what type is its value), "did you mean" suggestions for typos,
//! and the "accepted but not acted on yet" warnings for directives that are still planned.

pub(crate) use crate::directive_value::{parse_kind, split_list, FromValue, Value};

/// Section bit flags (a directive lists the sections it is valid in).
pub(crate) mod sec {
    pub const G: u32 = 1 << 0;
    pub const SRC: u32 = 1 << 1;
    pub const LST: u32 = 1 << 2;
    pub const USR: u32 = 1 << 3;
    pub const SGRP: u32 = 1 << 4;
    pub const VMTA: u32 = 1 << 5;
    pub const POOL: u32 = 1 << 6;
    pub const DOM: u32 = 1 << 7;
    pub const ACCT: u32 = 1 << 8;
    pub const SPOOL: u32 = 1 << 9;
    pub const SIG: u32 = 1 << 10;
    pub const SIGF: u32 = 1 << 11;
    pub const BP: u32 = 1 << 12;
    pub const FBL: u32 = 1 << 13;
    pub const ADDR: u32 = 1 << 14;
    pub const EMAILP: u32 = 1 << 15;
    pub const PAT: u32 = 1 << 16;
    pub const SPAT: u32 = 1 << 17;
    pub const RW: u32 = 1 << 18;
    pub const DKL: u32 = 1 << 19;
    pub const BCP: u32 = 1 << 20;
    pub const MXR: u32 = 1 << 21;
    pub const ALIAS: u32 = 1 << 22;
    pub const DNS: u32 = 1 << 23;
    pub const PROXY: u32 = 1 << 24;
    pub const TAPI: u32 = 1 << 25;
    pub const SIGSVC: u32 = 1 << 26;
}
use sec::*;

/// Whether petrel acts on a directive yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Parsed and used by the running server.
    Active,
    /// Parsed and validated, but not used yet: a warning says so.
    Planned,
    /// Accepted for compatibility, deprecated by PowerMTA; the string says what replaces it.
    Deprecated(&'static str),
}

/// When a change to a directive takes effect in a running daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Apply {
    /// On `reload`: every part reads the new configuration for its next session,
    /// connection or message.
    Reload,
    /// Only after a restart: it sets up something the daemon builds once (a bound socket,
    /// an open file or database, a key loaded at start, the uploader).
    Restart,
}

/// What a directive's value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Duration,
    DurationOrNever,
    DurationList,
    Size,
    SizeLimit,
    Rate,
    DataRate,
    Int(u32, u32),
    IntLimit,
    Port,
    Text,
    TextOrEmpty,
    Word,
    WordOrEmpty,
    List,
    Path,
    Email,
    Domain,
    Choice(&'static [&'static str]),
    CidrInt,
    CidrRate,
    CidrDataRate,
    DailyLimits,
    SmtpHosts,
    DeliveryType,
    DkimSign,
    NoMx,
    /// Parsed by the section builder itself.
    Custom,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Directive {
    pub name: &'static str,
    pub sections: u32,
    pub kind: Kind,
    pub status: Status,
    pub apply: Apply,
}

const fn d(name: &'static str, sections: u32, kind: Kind, status: Status) -> Directive {
    Directive {
        name,
        sections,
        kind,
        status,
        apply: Apply::Reload,
    }
}

/// A directive (or section) whose changes need a restart.
const fn restart(d: Directive) -> Directive {
    Directive {
        apply: Apply::Restart,
        ..d
    }
}

use Kind as K;
use Status::{Active as A, Planned as P};

const INT: Kind = K::Int(0, u32::MAX);
const BOOL: Kind = K::Bool;

/// Every directive petrel accepts. Order is irrelevant; a name may appear in several rows
/// when its meaning or status differs per section.
pub(crate) const DIRECTIVES: &[Directive] = &[
    // ---- global ----
    d("include", G | SRC | DOM | VMTA | SPAT, K::Custom, A),
    d("postmaster", G, K::Email, A),
    d("host-name", G, K::Word, A),
    restart(d("smtp-listener", G, K::Custom, A)),
    d("smtp-source-host", G | VMTA, K::Custom, A),
    d("total-max-smtp-out", G, INT, P),
    restart(d("total-max-smtp-in", G, INT, A)),
    d("smtp-await-slot", G, BOOL, P),
    restart(d("spool", G, K::Path, Status::Deprecated("<spool DIR>"))),
    d("spool-delete-corrupted", G, BOOL, P),
    d(
        "spool-min-free-space",
        G,
        INT,
        Status::Deprecated("`min-free-space` in <spool>"),
    ),
    d("spool-max-recipients", G, K::Word, P),
    d("run-as-root", G, BOOL, P),
    d("smtp-server-tls-certificate", G, K::Custom, A),
    d("smtp-server-tls-ca-file", G, K::Path, P),
    d("smtp-server-tls-allow-sslv3", G, BOOL, A),
    d("smtp-server-tls-allow-tlsv1", G, BOOL, A),
    d("smtp-server-tls-allow-tlsv1.1", G, BOOL, A),
    d("smtp-server-tls-allow-tlsv1.2", G, BOOL, A),
    d("smtp-server-tls-allow-tlsv1.3", G, BOOL, A),
    d("smtp-server-tls-ciphers", G, K::Text, P),
    d("custom-dsn-from-header", G, K::Text, P),
    d("host-id", G, INT, P),
    d("domain-suffix", G, K::Word, P),
    restart(d("name-server", G, K::Custom, A)),
    d("always-allow-relaying", G, BOOL, A),
    d("max-message-size", G, K::SizeLimit, A),
    d("relay-domain", G, K::Domain, A),
    d("relay-address", G, K::Word, P),
    d("relay-debug", G, BOOL, P),
    d("domain-key", G | VMTA | POOL | DKL, K::Custom, A),
    d("invalid-virtual-mta-fallback", G, K::Word, P),
    d("include-headers-from", G | VMTA | POOL, K::Path, P),
    d("domain-macro", G, K::Text, P),
    d("alias", G | ALIAS, K::Custom, P),
    d("pickup", G, K::Custom, P),
    d("pickup-remove-dot", G, BOOL, P),
    restart(d("http-mgmt-port", G, K::Port, A)),
    // ---- <pattern-list> entries ----
    d("header", PAT, K::Custom, A),
    d("mail-from", PAT, K::Custom, A),
    d("rcpt-to", PAT, K::Custom, A),
    d("*", PAT, K::Custom, A),
    // ---- <smtp-pattern-list> ----
    d("reply", SPAT, K::Custom, A),
    // petrel extensions: the suppression list
    restart(d("suppression-database", G, K::Path, A)),
    d("suppress-hard-bounces", G, BOOL, A),
    d("suppress-complaints", G, BOOL, A),
    restart(d("http-access", G, K::Custom, A)),
    d("http-redirect-to-https", G, BOOL, P),
    d("http-csrf-protection", G, BOOL, P),
    d("http-api-key", G, K::Word, P),
    d("http-strict-transport-security-max-age", G, INT, P),
    d("http-tls-certificate", G, K::Custom, P),
    d("http-tls-ca-file", G, K::Path, P),
    d("http-tls-allow-sslv3", G, BOOL, P),
    d("http-tls-allow-tlsv1", G, BOOL, P),
    d("http-tls-allow-tlsv1.1", G, BOOL, P),
    d("http-tls-allow-tlsv1.2", G, BOOL, P),
    d("http-tls-allow-tlsv1.3", G, BOOL, P),
    d("http-tls-ciphers", G, K::Text, P),
    d("http-log-tls", G, BOOL, P),
    d("http-log-data", G, BOOL, P),
    d("http-log-requests", G, BOOL, P),
    d("http-default-max-items", G, INT, P),
    d(
        "http-default-sort-order",
        G,
        K::Choice(&["rcpt", "name", "size"]),
        P,
    ),
    restart(d("log-file", G, K::Path, A)),
    d("log-rotate", G, INT, P),
    d("log-auto-rotation", G, BOOL, P),
    d("log-file-world-readable", G, BOOL, P),
    d("mx-connection-limit", G, K::Custom, P),
    d("ip-connection-limit", G, K::CidrInt, P),
    d("use-proxy", G | VMTA, K::List, P),
    d("enable-signals", G | VMTA | POOL, K::Custom, A),
    d("thread-min-priority", G, K::Word, P),
    d("thread-max-priority", G, K::Word, P),
    d("thread-reuse", G, BOOL, P),
    d("mailmerge-expands-undefined-variables", G, BOOL, P),
    d("pmc-acct-min-free-space", G, K::Size, P),
    // ---- <source> ----
    d("smtp-service", SRC, BOOL, A),
    d("always-allow-relaying", SRC, BOOL, A),
    d("require-auth", SRC, BOOL, A),
    d("allow-auth", SRC, BOOL, A),
    d("smtp-max-auth-failure-rate", SRC, K::Rate, A),
    d("allow-unencrypted-plain-auth", SRC, BOOL, A),
    d("allow-starttls", SRC, BOOL, A),
    d("require-starttls-before-auth", SRC, BOOL, A),
    d("log-connections", SRC, BOOL, A),
    d("log-commands", SRC, BOOL, A),
    d("log-data", SRC, BOOL, A),
    d("log-tls", SRC, BOOL, P),
    d("default-virtual-mta", SRC, K::Word, A),
    d("process-x-virtual-mta", SRC, BOOL, A),
    d("retain-x-virtual-mta", SRC, BOOL, A),
    d("allow-empty-x-virtual-mta", SRC, BOOL, P),
    d("reject-invalid-virtual-mta", SRC, BOOL, P),
    d("add-x-virtual-mta-header", SRC, BOOL, P),
    d("process-x-job", SRC, BOOL, A),
    d("retain-x-job", SRC, BOOL, A),
    d("jobid-header", SRC, K::Word, P),
    d("jobid-prefix", SRC, K::Word, P),
    d("process-x-envid", SRC, BOOL, P),
    d("process-x-schedule", SRC, BOOL, P),
    d("retain-x-schedule", SRC, BOOL, P),
    d("process-x-dkim-options", SRC, BOOL, P),
    d("retain-x-dkim-options", SRC, BOOL, P),
    d("process-x-dkim-key", SRC, BOOL, P),
    d("retain-x-dkim-key", SRC, BOOL, P),
    d("pattern-list", SRC, K::Word, A),
    d("rewrite-list", SRC, K::Word, A),
    d("suppression-lists", SRC, K::List, P),
    d("verp-default", SRC, BOOL, P),
    d("allow-mailmerge", SRC, BOOL, P),
    d("always-allow-api-submission", SRC, BOOL, P),
    d("add-received-header", SRC, BOOL, A),
    d("hide-message-source", SRC, BOOL, A),
    d(
        "add-date-header",
        SRC,
        K::Choice(&["no", "yes", "override", "false", "true"]),
        P,
    ),
    d(
        "date-header-time",
        SRC,
        K::Choice(&["reception", "delivery"]),
        P,
    ),
    d("add-message-id-header", SRC, BOOL, A),
    d("remove-header", SRC, K::List, P),
    d("bcc", SRC, K::List, P),
    d("max-message-size", SRC, K::SizeLimit, A),
    d("max-message-hops", SRC, INT, P),
    d("max-rcpt-per-message", SRC, K::IntLimit, A),
    d("too-many-rcpts-fails-message", SRC, BOOL, P),
    d("accept-invalid-recipients", SRC, BOOL, P),
    d("suppress-local-dsn", SRC, BOOL, P),
    d(
        "dsn-return-default",
        SRC,
        K::Choice(&["headers", "full", "system"]),
        P,
    ),
    d("disconnect-on-transient-error", SRC, BOOL, P),
    d("smtp-command-timeout", SRC, K::Duration, A),
    d("smtp-data-timeout", SRC, K::Duration, A),
    d("allow-chunking", SRC, BOOL, P),
    d("allow-smtputf8", SRC, BOOL, A),
    d("auto-qualify-domain", SRC, BOOL, P),
    d("source-group", SRC, K::Word, P),
    d("check-dkim-inbound", SRC, BOOL, P),
    d("check-spf-inbound", SRC, BOOL, P),
    d("check-iprev-inbound", SRC, BOOL, P),
    // ---- <smtp-listener> ----
    restart(d("source", LST, K::Word, A)),
    d("source", USR, K::Word, A),
    d("await-slot", LST, BOOL, P),
    d("immediate-tls", LST, BOOL, P),
    d("tls-certificate", LST | USR, K::Custom, P),
    d("tls-allow-sslv3", LST, BOOL, P),
    d("tls-allow-tlsv1", LST, BOOL, P),
    d("tls-allow-tlsv1.1", LST, BOOL, P),
    d("tls-allow-tlsv1.2", LST, BOOL, P),
    d("tls-allow-tlsv1.3", LST, BOOL, P),
    d("tls-ciphers", LST, K::Text, P),
    d("tls-ca-file", LST, K::Path, P),
    // ---- <smtp-user> ----
    d("password", USR, K::Text, A),
    d("authentication-method", USR, K::Custom, A),
    // ---- <source-group> ----
    d("max-smtp-in", SGRP, K::IntLimit, P),
    d("reserved-smtp-in", SGRP, K::IntLimit, P),
    // ---- <virtual-mta> / <virtual-mta-pool> ----
    d("host-name", VMTA, K::Word, A),
    d("max-smtp-out", VMTA | POOL, INT, A),
    d("max-smtp-msg-rate", VMTA | POOL, K::Rate, P),
    d("max-smtp-data-volume-rate", VMTA | POOL, K::DataRate, P),
    d("cold-virtual-mta", VMTA | POOL, K::Word, P),
    d("rewrite-list", VMTA | POOL, K::Word, P),
    d("virtual-mta", POOL, K::Word, A),
    // ---- <domain> ----
    d("max-smtp-out", DOM, INT, A),
    d("backoff-max-smtp-out", DOM, INT, A),
    d("source-ip-max-smtp-out", DOM, K::CidrInt, P),
    d("max-msg-rate", DOM, K::Rate, A),
    d("backoff-max-msg-rate", DOM, K::Rate, A),
    d("source-ip-max-msg-rate", DOM, K::CidrRate, P),
    d("max-data-volume-rate", DOM, K::DataRate, P),
    d("backoff-max-data-volume-rate", DOM, K::DataRate, P),
    d("source-ip-max-data-volume-rate", DOM, K::CidrDataRate, P),
    d("max-connect-rate", DOM, K::Rate, A),
    d("backoff-max-connect-rate", DOM, K::Rate, A),
    d("source-ip-max-connect-rate", DOM, K::CidrRate, P),
    d("max-msg-per-connection", DOM, K::IntLimit, A),
    d("max-rcpt-per-transaction", DOM, K::Int(1, u32::MAX), A),
    d("max-rcpt-per-message", DOM, K::Int(1, u32::MAX), A),
    d("max-errors-per-connection", DOM, K::IntLimit, P),
    d("smtp-out-rampup-interval", DOM, K::Duration, A),
    d("connection-idle-timeout", DOM, K::Duration, A),
    d("max-cold-virtual-mta-msg", DOM, K::DailyLimits, P),
    d("queue-priority", DOM, K::Int(0, 100), P),
    d("allow-priority-interruption", DOM, BOOL, P),
    d("allow-priority-interruption-during-transfer", DOM, BOOL, P),
    d(
        "max-msg-per-hour",
        DOM,
        INT,
        Status::Deprecated("`max-msg-rate`"),
    ),
    d(
        "backoff-max-msg-per-hour",
        DOM,
        INT,
        Status::Deprecated("`backoff-max-msg-rate`"),
    ),
    d(
        "delivery-priority",
        DOM,
        INT,
        Status::Deprecated("`queue-priority`"),
    ),
    d(
        "max-smtp-out-per-source-ip",
        DOM,
        INT,
        Status::Deprecated("`source-ip-max-smtp-out`"),
    ),
    d("route", DOM, K::Text, Status::Deprecated("`smtp-hosts`")),
    d("retry-after", DOM, K::DurationList, A),
    d("backoff-retry-after", DOM, K::DurationList, A),
    d("retry-recipients-after", DOM, K::Duration, P),
    d("bounce-after", DOM, K::Duration, A),
    d("bounce-upon-no-mx", DOM, K::NoMx, A),
    d("bounce-upon-5xx-greeting", DOM, BOOL, P),
    d("bounce-upon-transfer-failure", DOM, BOOL, P),
    d("bounce-upon-pix-transfer-failure", DOM, BOOL, P),
    d("pix-bug-workaround", DOM, BOOL, P),
    d(
        "assume-delivery-upon-data-termination-timeout",
        DOM,
        BOOL,
        P,
    ),
    d("retry-upon-new-mail", DOM, BOOL, P),
    d("notify-of-delay-every", DOM, K::DurationOrNever, P),
    d("backoff-notify", DOM, K::List, P),
    d("backoff-to-normal-after", DOM, K::DurationOrNever, A),
    d("backoff-to-normal-after-delivery", DOM, BOOL, A),
    d("backoff-upon-all-sources-disabled", DOM, BOOL, P),
    d("reenable-source-ip-after", DOM, K::DurationOrNever, P),
    d("disabled-source-ip-notify", DOM, K::List, P),
    d("backoff-reroute-to-virtual-mta", DOM, K::WordOrEmpty, P),
    d("reroute-to-virtual-mta", DOM, K::WordOrEmpty, P),
    d("smtp-pattern-list", DOM, K::WordOrEmpty, A),
    d("smtp-553-means-invalid-mailbox", DOM, BOOL, P),
    d("smtp-421-means-mx-unavailable", DOM, BOOL, P),
    d("replace-smtp-421-service-response", DOM, BOOL, P),
    d("smtp-hosts", DOM, K::SmtpHosts, A),
    d("default-smtp-port", DOM, K::Port, A),
    d("queue-to", DOM, K::WordOrEmpty, A),
    d("disable-mx-rollup", DOM, BOOL, P),
    d("type", DOM, K::DeliveryType, P),
    d("discard-as-bounce", DOM, BOOL, P),
    d(
        "file-format",
        DOM,
        K::Choice(&["newfile-plain", "newfile-pickup", "append-mbox"]),
        P,
    ),
    d("file-destination", DOM, K::Text, P),
    d("command", DOM, K::Text, P),
    d("http-delivery-url", DOM, K::Word, P),
    d("http-delivery-extra-headers", DOM, K::Text, P),
    d("use-starttls", DOM, BOOL, A),
    d("require-starttls", DOM, BOOL, A),
    d("use-dane", DOM, BOOL, P),
    d("smtp-tls-ca-file", DOM, K::Path, P),
    d("smtp-tls-allow-sslv3", DOM, BOOL, P),
    d("smtp-tls-allow-tlsv1", DOM, BOOL, P),
    d("smtp-tls-allow-tlsv1.1", DOM, BOOL, P),
    d("smtp-tls-allow-tlsv1.2", DOM, BOOL, P),
    d("smtp-tls-allow-tlsv1.3", DOM, BOOL, P),
    d("smtp-tls-ciphers", DOM, K::Text, P),
    d("reuse-ssl-session", DOM, BOOL, P),
    d("log-tls", DOM, BOOL, P),
    d("auth-username", DOM, K::TextOrEmpty, P),
    d("auth-password", DOM, K::TextOrEmpty, P),
    d("use-unencrypted-plain-auth", DOM, BOOL, P),
    d("connect-timeout", DOM, K::Duration, A),
    d("smtp-greeting-timeout", DOM, K::Duration, A),
    d("data-send-timeout", DOM, K::Duration, A),
    d("smtp-data-termination-timeout", DOM, K::Duration, A),
    d("smtp-multiple-line-response-timeout", DOM, K::Duration, P),
    d("mx-connection-attempts", DOM, INT, P),
    d("smtp-client-certificate", DOM, K::TextOrEmpty, P),
    d("ignore-8bitmime", DOM, BOOL, P),
    d("ignore-chunking", DOM, BOOL, P),
    d("ignore-pipelining", DOM, BOOL, P),
    d("ignore-dsn", DOM, BOOL, P),
    d("allow-cancel-during-transfer", DOM, BOOL, P),
    d("log-connections", DOM, BOOL, P),
    d("log-commands", DOM, BOOL, P),
    d("log-data", DOM, BOOL, P),
    d("log-resolution", DOM, BOOL, P),
    d("log-transfer-failures", DOM, BOOL, P),
    d("log-disabled-ips", DOM, BOOL, P),
    d("log-messages", DOM, BOOL, P),
    d("max-events-recorded", DOM, INT, P),
    d("track-recipient-events", DOM, BOOL, P),
    d("disable-acct-records", DOM, K::List, P),
    d(
        "deliver-local-dsn",
        DOM,
        BOOL,
        Status::Deprecated("`suppress-local-dsn` in <source>"),
    ),
    d("dsn-format", DOM, K::Choice(&["standard", "plain-text"]), P),
    d("bcc-upon-delivery", DOM, K::List, P),
    d("remove-header", DOM, K::List, P),
    d("check-spf-outbound", DOM, BOOL, P),
    d("dkim-sign", DOM, K::DkimSign, A),
    d(
        "dkim-algorithm",
        DOM,
        K::Choice(&["rsa-sha1", "rsa-sha256"]),
        P,
    ),
    d(
        "dkim-headers-canon",
        DOM,
        K::Choice(&["relaxed", "simple"]),
        P,
    ),
    d("dkim-body-canon", DOM, K::Choice(&["relaxed", "simple"]), P),
    d("dkim-headers", DOM, K::List, P),
    d("dkim-identity", DOM, K::Word, P),
    d("dkim-identity-fallback", DOM, K::Word, P),
    d("dkim-add-body-limit", DOM, BOOL, P),
    d("dkim-add-timestamp", DOM, BOOL, P),
    d("dkim-expire-after", DOM, K::DurationOrNever, P),
    d("dkim-query-method", DOM, K::Word, P),
    d("dkim-disallow-adding-headers", DOM, BOOL, P),
    d("add-x-msys-api-header", DOM, BOOL, P),
    d("sparkpost-sandbox", DOM, BOOL, P),
    d("sparkpost-ip-pool", DOM, K::Word, P),
    // ---- <acct-file> ----
    restart(d("records", ACCT, K::Custom, A)),
    restart(d("record-fields", ACCT, K::Custom, A)),
    restart(d("move-to", ACCT, K::Path, A)),
    restart(d("move-interval", ACCT, K::Duration, A)),
    restart(d("max-size", ACCT, K::Size, A)),
    restart(d("delete-after", ACCT, K::DurationOrNever, A)),
    restart(d("iso-times", ACCT, BOOL, A)),
    restart(d("user-string", ACCT, K::Text, A)),
    d("map-header-to-field", ACCT, K::Custom, P),
    d("queue-filter", ACCT, K::List, P),
    d("privacy-policy", ACCT, K::Custom, P),
    d("retry-interval", ACCT, K::Duration, P),
    d("write-timeout", ACCT, K::Duration, P),
    restart(d("world-readable", ACCT, BOOL, A)),
    d("count-moved-records", ACCT, BOOL, P),
    restart(d("sync", ACCT, BOOL, A)),
    // ---- <spool> ----
    d("priority", SPOOL, K::Int(1, 100), P),
    restart(d("min-free-space", SPOOL, K::Size, A)),
    d("deliver-only", SPOOL, BOOL, P),
    d("delete-file-holders", SPOOL, BOOL, P),
    // ---- <signals> ----
    restart(d("api-key", SIG, K::Word, A)),
    restart(d("upload-url", SIG, K::Word, A)),
    restart(d("engagement-tracking", SIG, K::Custom, A)),
    d("customer-id", SIG, K::Custom, A),
    restart(d("tracking-domain", SIG, K::Word, A)),
    d("custom-message-id-header", SIG, K::Word, A),
    d("process-x-sp-subaccount-id", SIG, BOOL, A),
    d("retain-x-sp-subaccount-id", SIG, BOOL, A),
    restart(d("log-verbose", SIG, BOOL, A)),
    restart(d("min-free-space", SIG, K::Size, A)),
    restart(d("privacy-policy", SIG, K::Choice(&["retain", "sha1"]), A)),
    // petrel extensions
    restart(d("event-dir", SIG, K::Path, A)),
    restart(d("upload-interval", SIG, K::Duration, A)),
    restart(d("upload", SIG, BOOL, A)),
    restart(d("tracking-listener", SIG, K::Custom, A)),
    restart(d("tracking-tls-certificate", SIG, K::Custom, A)),
    restart(d("tracking-key", SIG, K::Custom, A)),
    restart(d("tracking-key-file", SIG, K::Path, A)),
    d("open-tracking", SIG, BOOL, A),
    d("initial-open-tracking", SIG, BOOL, A),
    d("click-tracking", SIG, BOOL, A),
    d("tracking-link-expiry", SIG, K::Duration, A),
    restart(d("tracking-trusted-proxy", SIG, K::Custom, A)),
    d("sender-or-from", SIGF, K::Custom, A),
    // ---- <signals-service> (petrel extension) ----
    restart(d("listener", SIGSVC, K::Custom, A)),
    restart(d("database", SIGSVC, K::Path, A)),
    // Read when the service starts (its retention task and trap list are built once).
    restart(d("event-retention", SIGSVC, K::Duration, A)),
    restart(d("metrics-retention", SIGSVC, K::Duration, A)),
    restart(d("spam-trap-file", SIGSVC, K::Path, A)),
    // ---- processors ----
    d("deliver-unmatched-email", BP | FBL, BOOL, A),
    d("deliver-matched-email", BP | FBL, BOOL, A),
    d("forward-unmatched-to", BP | FBL, K::Email, A),
    d("forward-errors-to", BP | FBL, K::Email, A),
    restart(d("return-path-key", BP, K::Custom, A)),
    restart(d("return-path-key-file", BP, K::Path, A)),
    d(
        "deliver-email",
        BP | FBL,
        BOOL,
        Status::Deprecated("`deliver-unmatched-email`"),
    ),
    d("address", ADDR, K::Word, A),
    d("domain", ADDR, K::Word, A),
    d("address-file", ADDR, K::Path, A),
    d("body-pattern-file", EMAILP, K::Path, P),
    d("log-match-info", EMAILP, BOOL, P),
    // ---- <rewrite-list> ----
    d("mail-from", RW, K::Custom, A),
    d("from-domain", RW, K::Custom, P),
    // ---- <dns> ----
    d("precached-domains-file", DNS, K::Path, P),
    d("precached-refresh-interval", DNS, K::Duration, P),
    d("precached-max-domains", DNS, INT, P),
];

/// Whether a section takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgRule {
    None,
    Required,
    Optional,
}

/// One section tag.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SectionDef {
    pub tag: &'static str,
    pub bit: u32,
    pub parents: u32,
    pub arg: ArgRule,
    pub status: Status,
    /// Adding, removing or renaming the section needs a restart (what it sets up is built
    /// once); its directives say for themselves.
    pub apply: Apply,
    /// Contents are not validated line by line (regex-based lists).
    pub opaque: bool,
    /// Not implemented at all; using it is an error.
    pub unsupported: bool,
}

const fn s(tag: &'static str, bit: u32, parents: u32, arg: ArgRule, status: Status) -> SectionDef {
    SectionDef {
        tag,
        bit,
        parents,
        arg,
        status,
        apply: Apply::Reload,
        opaque: false,
        unsupported: false,
    }
}

/// A section whose presence needs a restart.
const fn restart_section(s: SectionDef) -> SectionDef {
    SectionDef {
        apply: Apply::Restart,
        ..s
    }
}

const fn opaque(tag: &'static str, bit: u32, parents: u32, arg: ArgRule) -> SectionDef {
    SectionDef {
        tag,
        bit,
        parents,
        arg,
        status: P,
        apply: Apply::Reload,
        opaque: true,
        unsupported: false,
    }
}

const fn unsupported(tag: &'static str) -> SectionDef {
    SectionDef {
        tag,
        bit: TAPI,
        parents: G,
        arg: ArgRule::Optional,
        status: P,
        apply: Apply::Reload,
        opaque: true,
        unsupported: true,
    }
}

use ArgRule::{None as NoArg, Optional as OptArg, Required as ReqArg};

/// Every section tag petrel accepts.
pub(crate) const SECTIONS: &[SectionDef] = &[
    s("source", SRC, G, ReqArg, A),
    restart_section(s("smtp-listener", LST, G, ReqArg, A)),
    s("smtp-user", USR, G, ReqArg, A),
    s("source-group", SGRP, G, ReqArg, P),
    s("virtual-mta", VMTA, G, ReqArg, A),
    s("virtual-mta-pool", POOL, G, ReqArg, A),
    s("domain", DOM, G | VMTA | POOL, ReqArg, P),
    restart_section(s("acct-file", ACCT, G, ReqArg, P)),
    restart_section(s("spool", SPOOL, G, ReqArg, A)),
    restart_section(s("signals", SIG, G, NoArg, A)),
    restart_section(s(
        "sparkpost-analytics",
        SIG,
        G,
        NoArg,
        Status::Deprecated("<signals>"),
    )),
    s("signals-filter", SIGF, G, ReqArg, A),
    restart_section(s("signals-service", SIGSVC, G, NoArg, A)),
    restart_section(s("bounce-processor", BP, G, NoArg, A)),
    restart_section(s("feedback-loop-processor", FBL, G, NoArg, A)),
    s("address-list", ADDR, G | BP | FBL, OptArg, A),
    s("email-patterns", EMAILP, BP | FBL, NoArg, P),
    s("pattern-list", PAT, G | PAT, OptArg, A),
    s("smtp-pattern-list", SPAT, G, ReqArg, A),
    s("rewrite-list", RW, G, ReqArg, A),
    s("domain-key-list", DKL, G, ReqArg, P),
    s("bounce-category-patterns", BCP, G, NoArg, A),
    opaque("mx-rollup-list", MXR, G, NoArg),
    opaque("aliases", ALIAS, G, NoArg),
    s("dns", DNS, G, NoArg, P),
    opaque("proxy", PROXY, G, ReqArg),
    unsupported("transmissions-api"),
    unsupported("transmissions-api-listener"),
];

/// Looks up a section tag.
pub(crate) fn section_def(tag: &str) -> Option<&'static SectionDef> {
    SECTIONS.iter().find(|s| s.tag == tag)
}

/// Printable name of the section(s) in a bit set, e.g. "global level, <virtual-mta>".
pub(crate) fn describe_sections(bits: u32) -> String {
    let mut parts = Vec::new();
    if bits & G != 0 {
        parts.push("global level".to_string());
    }
    for sd in SECTIONS {
        if bits & sd.bit != 0 && !sd.unsupported && sd.tag != "sparkpost-analytics" {
            let t = format!("<{}>", sd.tag);
            if !parts.contains(&t) {
                parts.push(t);
            }
        }
    }
    parts.join(", ")
}

/// Printable name of one section bit.
pub(crate) fn section_name(bit: u32) -> String {
    if bit == G {
        return "global level".to_string();
    }
    SECTIONS
        .iter()
        .find(|s| s.bit == bit)
        .map(|s| format!("<{}>", s.tag))
        .unwrap_or_else(|| "this section".to_string())
}

/// Outcome of looking a keyword up for a given section.
pub(crate) enum Lookup {
    Found(&'static Directive),
    WrongSection { allowed: u32 },
    Unknown { suggestion: Option<&'static str> },
}

/// Finds the directive row for `name` valid in `section`.
pub(crate) fn lookup(name: &str, section: u32) -> Lookup {
    // `second-dkim-*` mirrors every `dkim-*` directive for a second signature.
    let base = match name.strip_prefix("second-") {
        Some(rest) if rest.starts_with("dkim-") => rest,
        _ => name,
    };
    if let Some(d) = DIRECTIVES
        .iter()
        .find(|d| d.name == base && d.sections & section != 0)
    {
        return Lookup::Found(d);
    }
    let allowed = DIRECTIVES
        .iter()
        .filter(|d| d.name == base)
        .fold(0u32, |acc, d| acc | d.sections);
    if allowed != 0 {
        return Lookup::WrongSection { allowed };
    }
    let candidates = DIRECTIVES
        .iter()
        .filter(|d| d.sections & section != 0)
        .map(|d| d.name);
    Lookup::Unknown {
        suggestion: closest(name, candidates),
    }
}

/// The candidate closest to `name` by edit distance, when it is close enough to be a typo.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = std::cmp::max(2, name.chars().count() / 4);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let dist = edit_distance(name, c);
        if dist <= limit && best.is_none_or(|(b, _)| dist < b) {
            best = Some((dist, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance (characters).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 200 || b.len() > 200 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_no_duplicate_rows_per_section() {
        for (i, a) in DIRECTIVES.iter().enumerate() {
            for b in &DIRECTIVES[i + 1..] {
                assert!(
                    !(a.name == b.name && a.sections & b.sections != 0),
                    "duplicate row for {}",
                    a.name
                );
            }
        }
    }

    #[test]
    fn suggestions() {
        assert!(matches!(
            lookup("max-smtp-outt", sec::DOM),
            Lookup::Unknown {
                suggestion: Some("max-smtp-out")
            }
        ));
        assert!(matches!(
            lookup("smtp-servise", sec::SRC),
            Lookup::Unknown {
                suggestion: Some("smtp-service")
            }
        ));
        assert!(matches!(
            lookup("zzzzzz", sec::SRC),
            Lookup::Unknown { suggestion: None }
        ));
        assert!(matches!(
            lookup("max-smtp-out", sec::SRC),
            Lookup::WrongSection { .. }
        ));
        assert!(matches!(
            lookup("second-dkim-sign", sec::DOM),
            Lookup::Found(_)
        ));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
