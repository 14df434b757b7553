//! Turns the section tree into the typed model, collecting every error and warning.
//!
//! Exists to hold all per-directive meaning in one place: section validity and value types
//! come from the directive table; this module stores values into the model and checks the
//! cross-references (pools → vmtas, sources → rewrite lists, ...).

mod delivery;
mod extras;
mod files;
mod inbound;
mod signals;

use crate::config::ConfigData;
use crate::directives::{
    closest, describe_sections, lookup, parse_kind, sec::*, section_def, section_name, split_list,
    ArgRule, Directive, Lookup, SectionDef, Status, Value, SECTIONS,
};
use crate::error::Diagnostic;
use crate::model::*;
use crate::tree::{resolve_path, Line, Loc, Node, Section};
use crate::values::{parse_bool, Cidr, DomainPattern};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefKind {
    RewriteList,
    VmtaOrPool,
    Vmta,
    NamedSource,
    SignalsFilter,
    PatternList,
    SmtpPatternList,
}

struct Ref {
    kind: RefKind,
    name: String,
    loc: Loc,
    what: &'static str,
}

pub(crate) struct Builder<'a> {
    errors: &'a mut Vec<Diagnostic>,
    warnings: &'a mut Vec<Diagnostic>,
    io: bool,
    data: ConfigData,
    refs: Vec<Ref>,
    pool_member_locs: Vec<(String, Loc)>,
    named_sources: Vec<String>,
    enable_signals: Option<EnableSignals>,
    tls_versions_loc: Option<Loc>,
}

fn origin(loc: &Loc) -> Origin {
    Origin {
        file: loc.file.as_path().to_path_buf(),
        line: loc.line,
    }
}

impl<'a> Builder<'a> {
    pub fn new(
        config_file: &Path,
        io: bool,
        errors: &'a mut Vec<Diagnostic>,
        warnings: &'a mut Vec<Diagnostic>,
    ) -> Self {
        Builder {
            errors,
            warnings,
            io,
            data: ConfigData {
                config_file: config_file.to_path_buf(),
                host_name: Vec::new(),
                postmaster: Vec::new(),
                listeners: Vec::new(),
                sources: Vec::new(),
                global_source: SourceSettings::default(),
                smtp_users: Vec::new(),
                server_tls: ServerTls::default(),
                rewrite_lists: Vec::new(),
                relay_domains: Vec::new(),
                relay_addresses: Vec::new(),
                domain_keys: Vec::new(),
                smtp_source_hosts: Vec::new(),
                virtual_mtas: Vec::new(),
                pools: Vec::new(),
                domains: Vec::new(),
                bounce_processor: None,
                feedback_loop_processor: None,
                address_lists: Vec::new(),
                signals: None,
                enable_signals: EnableSignals::Disabled,
                signals_filters: Vec::new(),
                signals_service: None,
                acct_files: Vec::new(),
                spools: Vec::new(),
                http_mgmt_port: 8080,
                suppression_database: None,
                suppress_hard_bounces: true,
                suppress_complaints: true,
                http_access: Vec::new(),
                log_file: None,
                total_max_smtp_in: 100,
                total_max_smtp_out: None,
                name_servers: Vec::new(),
                smtp_await_slot: false,
                run_as_root: true,
                pattern_lists: Vec::new(),
                smtp_pattern_lists: Vec::new(),
                bounce_category_patterns: Vec::new(),
            },
            refs: Vec::new(),
            pool_member_locs: Vec::new(),
            named_sources: Vec::new(),
            enable_signals: None,
            tls_versions_loc: None,
        }
    }

    fn err(&mut self, loc: &Loc, msg: impl Into<String>) {
        self.errors.push(loc.diag(msg));
    }

    fn warn(&mut self, loc: &Loc, msg: impl Into<String>) {
        self.warnings.push(loc.diag(msg));
    }

    fn reference(&mut self, kind: RefKind, name: &str, loc: &Loc, what: &'static str) {
        self.refs.push(Ref {
            kind,
            name: name.to_string(),
            loc: loc.clone(),
            what,
        });
    }

    /// Validates a directive line for a section: known, allowed here, well-typed.
    fn check(&mut self, l: &Line, bit: u32) -> Option<(&'static Directive, Value)> {
        if l.broken {
            return None;
        }
        match lookup(&l.keyword, bit) {
            Lookup::Found(d) => match parse_kind(d.kind, l) {
                Ok(v) => {
                    match d.status {
                        Status::Active => {}
                        Status::Planned => self.warn(
                            &l.loc,
                            format!("`{}` is accepted but not acted on yet (planned)", l.keyword),
                        ),
                        Status::Deprecated(instead) => {
                            let tail = if d.name == "spool" {
                                ""
                            } else {
                                "; it is accepted but not acted on yet (planned)"
                            };
                            self.warn(
                                &l.loc,
                                format!("`{}` is deprecated, use {instead}{tail}", l.keyword),
                            )
                        }
                    }
                    Some((d, v))
                }
                Err(m) => {
                    self.err(&l.loc, m);
                    None
                }
            },
            Lookup::WrongSection { allowed } => {
                self.err(
                    &l.loc,
                    format!(
                        "`{}` is not allowed in {}; it belongs in {}",
                        l.keyword,
                        section_name(bit),
                        describe_sections(allowed)
                    ),
                );
                None
            }
            Lookup::Unknown { suggestion } => {
                let mut m = format!("unknown directive `{}` in {}", l.keyword, section_name(bit));
                if let Some(s) = suggestion {
                    m.push_str(&format!("; did you mean `{s}`?"));
                }
                self.err(&l.loc, m);
                None
            }
        }
    }

    /// Validates a nested section tag against its parent; `None` means skip its contents.
    fn open(&mut self, s: &Section, parent: u32) -> Option<&'static SectionDef> {
        let Some(def) = section_def(&s.tag) else {
            let cands = SECTIONS
                .iter()
                .filter(|d| d.parents & parent != 0 && !d.unsupported)
                .map(|d| d.tag);
            let mut m = format!("unknown section `<{}>` in {}", s.tag, section_name(parent));
            if let Some(c) = closest(&s.tag, cands) {
                m.push_str(&format!("; did you mean `<{c}>`?"));
            }
            self.err(&s.loc, m);
            return None;
        };
        if def.unsupported {
            self.err(
                &s.loc,
                format!(
                    "`<{}>` (HTTP submission API) is not supported by petrel",
                    s.tag
                ),
            );
            return None;
        }
        if def.parents & parent == 0 {
            self.err(
                &s.loc,
                format!(
                    "`<{}>` is not allowed in {}; it belongs in {}",
                    s.tag,
                    section_name(parent),
                    describe_sections(def.parents)
                ),
            );
            return None;
        }
        match (def.arg, &s.arg) {
            (ArgRule::Required, None) => {
                self.err(&s.loc, format!("`<{}>`: argument missing", s.tag));
                return None;
            }
            (ArgRule::None, Some(a)) => {
                self.err(
                    &s.loc,
                    format!("`<{}>` takes no argument, got `{a}`", s.tag),
                );
                return None;
            }
            _ => {}
        }
        if let Status::Deprecated(instead) = def.status {
            self.warn(
                &s.loc,
                format!("`<{}>` is deprecated, use {instead}", s.tag),
            );
        }
        if def.opaque {
            self.warn(
                &s.loc,
                format!(
                    "`<{}>` is accepted but not acted on yet (planned); its contents are not checked",
                    s.tag
                ),
            );
        }
        Some(def)
    }

    fn arg(s: &Section) -> &str {
        s.arg.as_deref().unwrap_or("")
    }

    // ------------------------------------------------------------------ global

    pub fn build(mut self, nodes: &[Node]) -> ConfigData {
        for n in nodes {
            match n {
                Node::Line(l) => self.global_line(l),
                Node::Section(s) => self.global_section(s),
            }
        }
        self.finish();
        self.data
    }

    fn global_line(&mut self, l: &Line) {
        let Some((d, v)) = self.check(l, G) else {
            return;
        };
        let dd = &mut self.data;
        match (d.name, v) {
            ("postmaster", Value::Text(s)) => dd.postmaster.push(s),
            ("host-name", Value::Text(s)) => dd.host_name.push(s.to_ascii_lowercase()),
            ("smtp-listener", _) => self.listener_line(l),
            ("smtp-source-host", _) => {
                if let Some(h) = self.source_host(l) {
                    self.data.smtp_source_hosts.push(h);
                }
            }
            ("total-max-smtp-out", Value::Int(n)) => dd.total_max_smtp_out = Some(n),
            ("total-max-smtp-in", Value::Int(n)) => dd.total_max_smtp_in = n,
            ("smtp-await-slot", Value::Bool(b)) => dd.smtp_await_slot = b,
            ("spool", Value::Path(p)) => dd.spools.push(SpoolDir {
                path: p,
                priority: 1,
                min_free_space: 0,
                deliver_only: false,
                origin: origin(&l.loc),
            }),
            ("run-as-root", Value::Bool(b)) => dd.run_as_root = b,
            ("smtp-server-tls-certificate", _) => {
                if let Some(c) = self.certificate(l, true) {
                    self.data.server_tls.certificate = Some(c);
                }
            }
            ("smtp-server-tls-ca-file", Value::Path(p)) => dd.server_tls.ca_file = Some(p),
            (
                n @ ("smtp-server-tls-allow-sslv3"
                | "smtp-server-tls-allow-tlsv1"
                | "smtp-server-tls-allow-tlsv1.1"),
                Value::Bool(true),
            ) => {
                let v = &n["smtp-server-tls-allow-".len()..];
                self.err(
                    &l.loc,
                    format!(
                        "`{n} true` cannot be honoured: petrel's TLS stack (rustls) supports only TLS 1.2 and TLS 1.3; remove the line or set it to false (no {v})"
                    ),
                );
            }
            ("smtp-server-tls-allow-tlsv1.2", Value::Bool(b)) => {
                dd.server_tls.allow_tlsv1_2 = b;
                self.tls_versions_loc = Some(l.loc.clone());
            }
            ("smtp-server-tls-allow-tlsv1.3", Value::Bool(b)) => {
                dd.server_tls.allow_tlsv1_3 = b;
                self.tls_versions_loc = Some(l.loc.clone());
            }
            ("name-server", _) => {
                let word = l.words.first().map(String::as_str).unwrap_or("");
                let addr = word
                    .parse::<IpAddr>()
                    .map(|ip| std::net::SocketAddr::new(ip, 53))
                    .or_else(|_| word.parse::<std::net::SocketAddr>());
                match addr {
                    Ok(a) if l.words.len() == 1 => dd.name_servers.push(a),
                    _ => self.err(
                        &l.loc,
                        format!(
                            "`name-server`: `{}` is not an IP address (or IP:PORT, [IPv6]:PORT)",
                            l.value
                        ),
                    ),
                }
            }
            (n @ ("always-allow-relaying" | "max-message-size"), v) => {
                dd.global_source.set(n, v);
            }
            ("relay-domain", Value::Domain(p)) => dd.relay_domains.push(p),
            ("relay-address", Value::Text(s)) => dd.relay_addresses.push(s),
            ("domain-key", _) => {
                if let Some(k) = self.domain_key(l) {
                    self.data.domain_keys.push(k);
                }
            }
            ("alias", _) if l.words.len() < 2 => {
                self.err(&l.loc, "`alias` takes a source and one or more targets");
            }
            ("pickup", _) if l.words.len() != 2 => {
                self.err(
                    &l.loc,
                    "`pickup` takes a directory and a bad-mail directory",
                );
            }
            ("http-mgmt-port", Value::Port(p)) => dd.http_mgmt_port = p,
            ("suppression-database", Value::Path(p)) => dd.suppression_database = Some(p),
            ("suppress-hard-bounces", Value::Bool(b)) => dd.suppress_hard_bounces = b,
            ("suppress-complaints", Value::Bool(b)) => dd.suppress_complaints = b,
            ("http-access", _) => self.http_access(l),
            ("http-tls-certificate", _) => {
                self.certificate(l, false);
            }
            ("log-file", Value::Path(p)) => dd.log_file = Some(p),
            ("mx-connection-limit", _)
                if l.words.len() != 2 || l.words[1].parse::<u32>().is_err() =>
            {
                self.err(
                    &l.loc,
                    "`mx-connection-limit` takes an MX pattern and a number",
                );
            }
            ("enable-signals", _) => {
                if let Some(e) = self.enable_signals_value(l) {
                    self.enable_signals = Some(e);
                }
            }
            _ => {}
        }
    }

    fn global_section(&mut self, s: &Section) {
        let Some(def) = self.open(s, G) else { return };
        match def.tag {
            "source" => self.source_section(s),
            "smtp-listener" => self.listener_section(s),
            "smtp-user" => self.user_section(s),
            "source-group" => self.simple_section(s, SGRP),
            "virtual-mta" => self.vmta_section(s),
            "virtual-mta-pool" => self.pool_section(s),
            "domain" => {
                if let Some(b) = self.domain_section(s) {
                    self.data.domains.push(b);
                }
            }
            "acct-file" => self.acct_section(s),
            "spool" => self.spool_section(s),
            "signals" | "sparkpost-analytics" => self.signals_section(s),
            "signals-filter" => self.signals_filter_section(s),
            "bounce-category-patterns" => self.bounce_category_section(s),
            "signals-service" => self.signals_service_section(s),
            "bounce-processor" => {
                let p = self.processor_section(s, BP);
                if self.data.bounce_processor.is_some() {
                    self.err(&s.loc, "`<bounce-processor>` is defined more than once");
                }
                self.data.bounce_processor = Some(p);
            }
            "feedback-loop-processor" => {
                let p = self.processor_section(s, FBL);
                if self.data.feedback_loop_processor.is_some() {
                    self.err(
                        &s.loc,
                        "`<feedback-loop-processor>` is defined more than once",
                    );
                }
                self.data.feedback_loop_processor = Some(p);
            }
            "address-list" => {
                if s.arg.is_none() {
                    self.err(&s.loc, "a global `<address-list>` needs a name");
                    return;
                }
                let l = self.address_list(s);
                self.data.address_lists.push(l);
            }
            "pattern-list" => {
                let n = Self::arg(s).to_string();
                if n.is_empty() {
                    self.err(&s.loc, "a global `<pattern-list>` needs a name");
                } else if self.data.pattern_list(&n).is_some() {
                    self.err(&s.loc, format!("`<pattern-list {n}>` is defined twice"));
                } else {
                    let list = self.pattern_list_section(s, n);
                    self.data.pattern_lists.push(list);
                }
            }
            "smtp-pattern-list" => {
                let list = self.smtp_pattern_list_section(s);
                if self.data.smtp_pattern_list(&list.name).is_some() {
                    self.err(
                        &s.loc,
                        format!("`<smtp-pattern-list {}>` is defined twice", list.name),
                    );
                } else {
                    self.data.smtp_pattern_lists.push(list);
                }
            }
            "rewrite-list" => self.rewrite_section(s),
            "domain-key-list" => {
                for c in &s.children {
                    match c {
                        Node::Line(l) => {
                            if self.check(l, DKL).is_some() {
                                self.domain_key(l);
                            }
                        }
                        Node::Section(sub) => {
                            self.open(sub, DKL);
                        }
                    }
                }
            }
            "dns" => self.simple_section(s, DNS),
            // opaque sections: structure only
            _ => {}
        }
    }

    /// A section whose directives are validated but not stored.
    fn simple_section(&mut self, s: &Section, bit: u32) {
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    self.check(l, bit);
                }
                Node::Section(sub) => {
                    self.open(sub, bit);
                }
            }
        }
    }

    // ------------------------------------------------------------------ cross-checks

    fn finish(&mut self) {
        // defaults
        if self.data.host_name.is_empty() {
            self.data.host_name.push(if self.io {
                os_host_name()
            } else {
                "localhost".to_string()
            });
        }
        if self.data.listeners.is_empty() {
            self.data.listeners.push(Listener {
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 25),
                source: None,
                immediate_tls: false,
                await_slot: false,
                origin: Origin {
                    file: self.data.config_file.clone(),
                    line: 0,
                },
            });
        }
        self.data.enable_signals = match self.enable_signals.take() {
            Some(e) => e,
            None if self.data.signals.is_some() => EnableSignals::Enabled { subaccount: None },
            None => EnableSignals::Disabled,
        };
        if let Some(loc) = self.tls_versions_loc.clone() {
            let t = &self.data.server_tls;
            if !t.allow_tlsv1_2 && !t.allow_tlsv1_3 {
                self.err(
                    &loc,
                    "both TLS 1.2 and TLS 1.3 are disabled, so no TLS version is left for STARTTLS",
                );
            }
        }

        // vmta / pool namespace
        let vmta_names: Vec<String> = self
            .data
            .virtual_mtas
            .iter()
            .map(|v| v.name.to_lowercase())
            .collect();
        let pool_names: Vec<String> = self
            .data
            .pools
            .iter()
            .map(|p| p.name.to_lowercase())
            .collect();
        for p in &self.data.pools {
            if vmta_names.contains(&p.name.to_lowercase()) {
                let loc = Loc {
                    file: std::sync::Arc::new(p.origin.file.clone()),
                    line: p.origin.line,
                };
                self.errors.push(loc.diag(format!(
                    "`<virtual-mta-pool {}>` has the same name as a <virtual-mta>; pools and VirtualMTAs share one namespace",
                    p.name
                )));
            }
        }
        for (m, loc) in std::mem::take(&mut self.pool_member_locs) {
            if !vmta_names.contains(&m.to_lowercase()) {
                let hint = if pool_names.contains(&m.to_lowercase()) {
                    " (pools cannot contain pools)"
                } else {
                    ""
                };
                self.err(
                    &loc,
                    format!("`virtual-mta {m}`: no <virtual-mta {m}> is defined{hint}"),
                );
            }
        }
        // a vmta may sit in at most one pool that has <domain> blocks
        for v in &self.data.virtual_mtas {
            let pools: Vec<&VirtualMtaPool> = self
                .data
                .pools
                .iter()
                .filter(|p| {
                    !p.domains.is_empty()
                        && p.members.iter().any(|m| m.eq_ignore_ascii_case(&v.name))
                })
                .collect();
            if pools.len() > 1 {
                let loc = Loc {
                    file: std::sync::Arc::new(pools[1].origin.file.clone()),
                    line: pools[1].origin.line,
                };
                self.errors.push(loc.diag(format!(
                    "<virtual-mta {}> is a member of more than one pool with <domain> blocks ({} and {})",
                    v.name, pools[0].name, pools[1].name
                )));
            }
        }

        for r in std::mem::take(&mut self.refs) {
            let n = r.name.to_lowercase();
            let (ok, what) = match r.kind {
                RefKind::RewriteList => (
                    self.data
                        .rewrite_lists
                        .iter()
                        .any(|l| l.name.to_lowercase() == n),
                    "<rewrite-list>",
                ),
                RefKind::VmtaOrPool => (
                    vmta_names.contains(&n) || pool_names.contains(&n),
                    "<virtual-mta> or <virtual-mta-pool>",
                ),
                RefKind::Vmta => (vmta_names.contains(&n), "<virtual-mta>"),
                RefKind::NamedSource => (self.named_sources.contains(&n), "named <source>"),
                RefKind::SignalsFilter => {
                    (self.data.signals_filter(&n).is_some(), "<signals-filter>")
                }
                RefKind::PatternList => (self.data.pattern_list(&n).is_some(), "<pattern-list>"),
                RefKind::SmtpPatternList => (
                    self.data.smtp_pattern_list(&n).is_some(),
                    "<smtp-pattern-list>",
                ),
            };
            if !ok {
                self.err(
                    &r.loc,
                    format!(
                        "`{} {}`: no {what} named `{}` is defined",
                        r.what, r.name, r.name
                    ),
                );
            }
        }
    }
}

/// Whether a section has a line with this keyword (even one that failed to parse).
fn mentions(s: &Section, keyword: &str) -> bool {
    s.children
        .iter()
        .any(|c| matches!(c, Node::Line(l) if l.keyword == keyword))
}

/// Where `keyword` is first written directly inside `s`, for messages about that line.
fn mention_loc(s: &Section, keyword: &str) -> Option<Loc> {
    s.children.iter().find_map(|c| match c {
        Node::Line(l) if l.keyword == keyword => Some(l.loc.clone()),
        _ => None,
    })
}

fn has_private_key(t: &str) -> bool {
    t.lines().any(|l| {
        let l = l.trim();
        l.starts_with("-----BEGIN ") && l.ends_with("PRIVATE KEY-----")
    })
}

/// The OS host name, or `localhost`.
fn os_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn split_addr(s: &str) -> Result<(&str, &str), String> {
    match s.rsplit_once('@') {
        Some((l, d)) if !l.is_empty() && !d.is_empty() => Ok((l, d)),
        _ => Err(format!(
            "`{s}` is not an address (a@x.com, a@*, *@x.com, *@*, <>)"
        )),
    }
}

/// Validates one `mail-from SOURCE TARGET` rule (spec §2.8.1).
pub(crate) fn parse_mail_from_rule(
    src: &str,
    dst: &str,
) -> Result<(AddrPattern, AddrTarget), String> {
    let from = if src == "<>" {
        AddrPattern::Null
    } else {
        let (l, d) = split_addr(src)?;
        match (l == "*", d == "*") {
            (true, true) => AddrPattern::Any,
            (true, false) => AddrPattern::AnyAtDomain(d.to_ascii_lowercase()),
            (false, true) => AddrPattern::LocalAtAny(l.to_string()),
            (false, false) => AddrPattern::Exact {
                local: l.to_string(),
                domain: d.to_ascii_lowercase(),
            },
        }
    };
    if !dst.is_ascii() {
        return Err(format!("target `{dst}` must be ASCII"));
    }
    let to = if dst == "<>" {
        AddrTarget::Null
    } else {
        let (l, d) = split_addr(dst)?;
        match (l == "*", d == "*") {
            (true, true) => {
                return Err(format!("target `{dst}` must name a local part or a domain"))
            }
            (true, false) => AddrTarget::KeepLocal(d.to_ascii_lowercase()),
            (false, true) => AddrTarget::KeepDomain(l.to_string()),
            (false, false) => AddrTarget::Exact {
                local: l.to_string(),
                domain: d.to_ascii_lowercase(),
            },
        }
    };
    if from == AddrPattern::Null
        && matches!(to, AddrTarget::KeepLocal(_) | AddrTarget::KeepDomain(_))
    {
        return Err(format!(
            "`<>` has no local part or domain to keep, so `<> {dst}` is invalid"
        ));
    }
    Ok((from, to))
}
