//! Turns the section tree into the typed model, collecting every error and warning.
//!
//! Exists to hold all per-directive meaning in one place: section validity and value types
//! come from the directive table; this module stores values into the model and checks the
//! cross-references (pools → vmtas, sources → rewrite lists, ...).

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
                acct_files: Vec::new(),
                spools: Vec::new(),
                http_mgmt_port: 8080,
                http_access: Vec::new(),
                log_file: None,
                total_max_smtp_in: 100,
                total_max_smtp_out: None,
                smtp_await_slot: false,
                run_as_root: true,
                pattern_lists: Vec::new(),
                smtp_pattern_lists: Vec::new(),
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
            ("name-server", _) if l.words.len() != 1 || l.words[0].parse::<IpAddr>().is_err() => {
                self.err(
                    &l.loc,
                    format!("`name-server`: `{}` is not an IP address", l.value),
                );
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
                } else {
                    self.data.pattern_lists.push(n);
                }
            }
            "smtp-pattern-list" => {
                let n = Self::arg(s).to_string();
                self.data.smtp_pattern_lists.push(n);
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

    // ------------------------------------------------------------------ listeners

    fn listener_line(&mut self, l: &Line) {
        let Some(addr) = self.listen_addr(&l.loc, &l.words[0]) else {
            return;
        };
        let mut source = None;
        for w in &l.words[1..] {
            match w.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("source") && !v.is_empty() => {
                    self.reference(RefKind::NamedSource, v, &l.loc, "source");
                    source = Some(v.to_string());
                }
                _ => {
                    self.err(
                        &l.loc,
                        format!("`smtp-listener`: unexpected `{w}` (expected `source=NAME`)"),
                    );
                    return;
                }
            }
        }
        self.data.listeners.push(Listener {
            addr,
            source,
            immediate_tls: false,
            await_slot: false,
            origin: origin(&l.loc),
        });
    }

    fn listener_section(&mut self, s: &Section) {
        let Some(addr) = self.listen_addr(&s.loc, Self::arg(s)) else {
            return;
        };
        let mut lst = Listener {
            addr,
            source: None,
            immediate_tls: false,
            await_slot: false,
            origin: origin(&s.loc),
        };
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    let Some((d, v)) = self.check(l, LST) else {
                        continue;
                    };
                    match (d.name, v) {
                        ("source", Value::Text(n)) => {
                            self.reference(RefKind::NamedSource, &n, &l.loc, "source");
                            lst.source = Some(n);
                        }
                        ("await-slot", Value::Bool(b)) => lst.await_slot = b,
                        ("immediate-tls", Value::Bool(b)) => lst.immediate_tls = b,
                        ("tls-certificate", _) => {
                            self.certificate(l, false);
                        }
                        (
                            n @ ("tls-allow-sslv3" | "tls-allow-tlsv1" | "tls-allow-tlsv1.1"),
                            Value::Bool(true),
                        ) => {
                            self.err(
                                &l.loc,
                                format!("`{n} true` cannot be honoured: petrel's TLS stack (rustls) supports only TLS 1.2 and TLS 1.3"),
                            );
                        }
                        _ => {}
                    }
                }
                Node::Section(sub) => {
                    self.open(sub, LST);
                }
            }
        }
        self.data.listeners.push(lst);
    }

    /// Parses `IP:PORT`, `[v6]:PORT`, `v6:PORT`, or `0/0:PORT`.
    fn listen_addr(&mut self, loc: &Loc, s: &str) -> Option<SocketAddr> {
        let bad = |m: &str| format!("`smtp-listener`: `{s}` {m}");
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            match rest.split_once("]:") {
                Some((h, p)) => (h, p),
                None => {
                    self.err(loc, bad("is not `[IPv6]:PORT`"));
                    return None;
                }
            }
        } else {
            match s.rsplit_once(':') {
                Some(hp) => hp,
                None => {
                    self.err(
                        loc,
                        bad("has no port (expected ADDRESS:PORT, e.g. 0.0.0.0:25)"),
                    );
                    return None;
                }
            }
        };
        let port: u16 = match port.parse() {
            Ok(p) if p != 0 => p,
            _ => {
                self.err(loc, bad(&format!("has an invalid port `{port}`")));
                return None;
            }
        };
        let ip: IpAddr = if host.contains('/') {
            match host.parse::<Cidr>() {
                Ok(c) if c.prefix_len() == 0 => match c.network() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                },
                Ok(c) if c.prefix_len() == if c.network().is_ipv4() { 32 } else { 128 } => {
                    c.network()
                }
                _ => {
                    self.err(
                        loc,
                        bad(
                            "is a network range; petrel listens on one address (use 0.0.0.0 or ::)",
                        ),
                    );
                    return None;
                }
            }
        } else {
            match host.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    self.err(loc, bad("is not an IP address and port"));
                    return None;
                }
            }
        };
        if ip.is_ipv6() && !s.starts_with('[') {
            self.warn(
                loc,
                format!("`smtp-listener {s}`: read as [{ip}]:{port}; write it that way to avoid ambiguity"),
            );
        }
        Some(SocketAddr::new(ip, port))
    }

    // ------------------------------------------------------------------ sources

    fn source_section(&mut self, s: &Section) {
        let arg = Self::arg(s);
        let key = match arg.parse::<Cidr>() {
            Ok(c) => SourceKey::Cidr(c),
            Err(e) => {
                let looks_numeric = arg
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == '.' || c == '/' || c == ':');
                if looks_numeric && arg.chars().any(|c| c.is_ascii_digit()) {
                    self.err(&s.loc, format!("`<source {arg}>`: {e}"));
                    return;
                }
                if arg.contains(char::is_whitespace) {
                    self.err(
                        &s.loc,
                        format!("`<source {arg}>`: a source name cannot contain spaces"),
                    );
                    return;
                }
                let n = arg.to_lowercase();
                self.named_sources.push(n.clone());
                SourceKey::Named(n)
            }
        };
        let mut settings = SourceSettings::default();
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    let Some((d, v)) = self.check(l, SRC) else {
                        continue;
                    };
                    match d.name {
                        "rewrite-list" => {
                            if let Value::Text(n) = &v {
                                self.reference(RefKind::RewriteList, n, &l.loc, "rewrite-list");
                            }
                        }
                        "default-virtual-mta" => {
                            if let Value::Text(n) = &v {
                                if !n.eq_ignore_ascii_case("{default}")
                                    && !n.eq_ignore_ascii_case("by-smtp-source-ip")
                                {
                                    self.reference(
                                        RefKind::VmtaOrPool,
                                        n,
                                        &l.loc,
                                        "default-virtual-mta",
                                    );
                                }
                            }
                        }
                        "pattern-list" => {
                            if let Value::Text(n) = &v {
                                self.reference(RefKind::PatternList, n, &l.loc, "pattern-list");
                            }
                        }
                        _ => {}
                    }
                    settings.set(d.name, v);
                }
                Node::Section(sub) => {
                    self.open(sub, SRC);
                }
            }
        }
        self.data.sources.push(SourceRule {
            key,
            settings,
            origin: origin(&s.loc),
        });
    }

    // ------------------------------------------------------------------ users

    fn user_section(&mut self, s: &Section) {
        let name = Self::arg(s).to_string();
        if self.data.smtp_users.iter().any(|u| u.name == name) {
            self.err(
                &s.loc,
                format!("`<smtp-user {name}>` is defined more than once"),
            );
        }
        let mut password = None;
        let mut source = None;
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    let Some((d, v)) = self.check(l, USR) else {
                        continue;
                    };
                    match (d.name, v) {
                        ("password", Value::Text(p)) => password = Some(p),
                        ("source", Value::Text(n)) => {
                            self.reference(RefKind::NamedSource, &n, &l.loc, "source");
                            source = Some(n);
                        }
                        ("authentication-method", _) => {
                            let m = l.value.to_ascii_lowercase();
                            match m.as_str() {
                                "password" => {}
                                "system" | "certificate" => self.err(
                                    &l.loc,
                                    format!("`authentication-method {m}` is not supported by petrel; only `password` is"),
                                ),
                                _ => self.err(
                                    &l.loc,
                                    format!("`authentication-method`: `{}` is not one of password, system, certificate", l.value),
                                ),
                            }
                        }
                        ("tls-certificate", _) => {
                            self.certificate(l, false);
                        }
                        _ => {}
                    }
                }
                Node::Section(sub) => {
                    self.open(sub, USR);
                }
            }
        }
        let Some(password) = password else {
            if mentions(s, "password") {
                return; // the password line itself was reported
            }
            self.err(&s.loc, format!("`<smtp-user {name}>` has no `password`"));
            return;
        };
        self.data.smtp_users.push(SmtpUser {
            name,
            password,
            source,
            origin: origin(&s.loc),
        });
    }

    // ------------------------------------------------------------------ files

    /// `FILE [PASSWORD]` naming a PEM with a certificate and a private key.
    fn certificate(&mut self, l: &Line, check: bool) -> Option<TlsCertificate> {
        if l.words.len() > 2 || l.words[0].is_empty() {
            self.err(
                &l.loc,
                format!("`{}` takes a file and an optional password", l.keyword),
            );
            return None;
        }
        let path = resolve_path(&l.loc.base_dir(), &l.words[0]);
        if check && self.io {
            match std::fs::read(&path) {
                Err(e) => {
                    self.err(
                        &l.loc,
                        format!(
                            "`{}`: cannot read certificate file `{}`: {e}",
                            l.keyword,
                            path.display()
                        ),
                    );
                    return None;
                }
                Ok(b) => {
                    let t = String::from_utf8_lossy(&b);
                    if !t.contains("-----BEGIN CERTIFICATE-----") {
                        self.err(
                            &l.loc,
                            format!(
                                "`{}`: `{}` contains no `-----BEGIN CERTIFICATE-----` block",
                                l.keyword,
                                path.display()
                            ),
                        );
                        return None;
                    }
                    if !has_private_key(&t) {
                        self.err(
                            &l.loc,
                            format!("`{}`: `{}` contains no private key block (`-----BEGIN ... PRIVATE KEY-----`); put the key in the same PEM file", l.keyword, path.display()),
                        );
                        return None;
                    }
                }
            }
        }
        Some(TlsCertificate {
            path,
            password: l.words.get(1).cloned(),
        })
    }

    /// `domain-key SELECTOR,DOMAIN,FILE`.
    fn domain_key(&mut self, l: &Line) -> Option<DomainKey> {
        let parts: Vec<&str> = l.value.split(',').map(str::trim).collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
            self.err(
                &l.loc,
                format!(
                    "`domain-key`: `{}` is not `SELECTOR,DOMAIN,KEYFILE`",
                    l.value
                ),
            );
            return None;
        }
        let domain = if parts[1] == "*" {
            KeyDomain::Any
        } else {
            match parts[1].parse::<DomainPattern>() {
                Ok(DomainPattern::Exact(d)) => KeyDomain::Name(d),
                _ => {
                    self.err(
                        &l.loc,
                        format!("`domain-key`: `{}` is not a domain or `*`", parts[1]),
                    );
                    return None;
                }
            }
        };
        let key_file = resolve_path(&l.loc.base_dir(), parts[2]);
        if self.io {
            match std::fs::read(&key_file) {
                Err(e) => {
                    self.err(
                        &l.loc,
                        format!(
                            "`domain-key`: cannot read key file `{}`: {e}",
                            key_file.display()
                        ),
                    );
                    return None;
                }
                Ok(b) => {
                    if !has_private_key(&String::from_utf8_lossy(&b)) {
                        self.err(
                            &l.loc,
                            format!(
                                "`domain-key`: `{}` contains no PEM private key block",
                                key_file.display()
                            ),
                        );
                        return None;
                    }
                }
            }
        }
        Some(DomainKey {
            selector: parts[0].to_string(),
            domain,
            key_file,
            origin: origin(&l.loc),
        })
    }

    fn source_host(&mut self, l: &Line) -> Option<SourceHost> {
        if l.words.len() != 2 {
            self.err(
                &l.loc,
                "`smtp-source-host` takes an IP address (or network) and a host name",
            );
            return None;
        }
        let addr = match l.words[0].parse::<IpAddr>() {
            Ok(ip) => SourceAddr::Ip(ip),
            Err(_) => match l.words[0].parse::<Cidr>() {
                Ok(c) => SourceAddr::Cidr(c),
                Err(e) => {
                    self.err(&l.loc, format!("`smtp-source-host`: {e}"));
                    return None;
                }
            },
        };
        Some(SourceHost {
            addr,
            host_name: l.words[1].to_ascii_lowercase(),
        })
    }

    fn http_access(&mut self, l: &Line) {
        if l.words.len() != 2 {
            self.err(
                &l.loc,
                "`http-access` takes a network and a level (none, monitor, operator, admin)",
            );
            return;
        }
        let cidr = match l.words[0].parse::<Cidr>() {
            Ok(c) => c,
            Err(e) => {
                self.err(&l.loc, format!("`http-access`: {e}"));
                return;
            }
        };
        let lv = l.words[1].to_ascii_lowercase();
        let (level, deny_logs) = match lv.as_str() {
            "none" => (HttpAccessLevel::None, false),
            "monitor" => (HttpAccessLevel::Monitor, false),
            "monitor,deny-logs" => (HttpAccessLevel::Monitor, true),
            "operator" => (HttpAccessLevel::Operator, false),
            "admin" => (HttpAccessLevel::Admin, false),
            _ => {
                self.err(
                    &l.loc,
                    format!("`http-access`: `{}` is not one of none, monitor, monitor,deny-logs, operator, admin", l.words[1]),
                );
                return;
            }
        };
        self.data.http_access.push(HttpAccess {
            cidr,
            level,
            deny_logs,
        });
    }

    fn enable_signals_value(&mut self, l: &Line) -> Option<EnableSignals> {
        let parts = split_list(&l.value);
        let first = parts.first().cloned().unwrap_or_default();
        match parse_bool(&first) {
            Ok(true) => {
                let mut sub = None;
                for p in &parts[1..] {
                    match p.split_once('=') {
                        Some((k, v)) if k.trim().eq_ignore_ascii_case("subaccount") => {
                            match v.trim().parse::<u64>() {
                                Ok(n) => sub = Some(n),
                                Err(_) => {
                                    self.err(
                                        &l.loc,
                                        format!(
                                            "`enable-signals`: `{v}` is not a subaccount number"
                                        ),
                                    );
                                    return None;
                                }
                            }
                        }
                        _ => {
                            self.err(
                                &l.loc,
                                format!(
                                    "`enable-signals`: unexpected `{p}` (expected `subaccount=N`)"
                                ),
                            );
                            return None;
                        }
                    }
                }
                Some(EnableSignals::Enabled { subaccount: sub })
            }
            Ok(false) => {
                if parts.len() > 1 {
                    self.err(
                        &l.loc,
                        "`enable-signals`: a subaccount may be given only with `true`",
                    );
                    return None;
                }
                Some(EnableSignals::Disabled)
            }
            Err(_) => {
                if parts.len() != 1 || l.words.len() != 1 {
                    self.err(
                        &l.loc,
                        format!(
                            "`enable-signals`: `{}` is not true, false or a <signals-filter> name",
                            l.value
                        ),
                    );
                    return None;
                }
                self.reference(RefKind::SignalsFilter, &first, &l.loc, "enable-signals");
                Some(EnableSignals::Filter(first))
            }
        }
    }

    // ------------------------------------------------------------------ vmtas

    fn vmta_section(&mut self, s: &Section) {
        let name = Self::arg(s).to_string();
        if self
            .data
            .virtual_mtas
            .iter()
            .any(|v| v.name.eq_ignore_ascii_case(&name))
        {
            self.err(
                &s.loc,
                format!("`<virtual-mta {name}>` is defined more than once"),
            );
        }
        if name.starts_with('{') {
            self.err(&s.loc, format!("`{name}` is a reserved name"));
        }
        let mut v = VirtualMta {
            name,
            smtp_source_hosts: Vec::new(),
            host_name: Vec::new(),
            domain_keys: Vec::new(),
            rewrite_list: None,
            enable_signals: None,
            max_smtp_out: None,
            max_smtp_msg_rate: None,
            cold_virtual_mtas: Vec::new(),
            domains: Vec::new(),
            origin: origin(&s.loc),
        };
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    let Some((d, val)) = self.check(l, VMTA) else {
                        continue;
                    };
                    match (d.name, val) {
                        ("smtp-source-host", _) => {
                            if let Some(h) = self.source_host(l) {
                                v.smtp_source_hosts.push(h);
                            }
                        }
                        ("host-name", Value::Text(h)) => v.host_name.push(h.to_ascii_lowercase()),
                        ("domain-key", _) => {
                            if let Some(k) = self.domain_key(l) {
                                v.domain_keys.push(k);
                            }
                        }
                        ("rewrite-list", Value::Text(n)) => {
                            self.reference(RefKind::RewriteList, &n, &l.loc, "rewrite-list");
                            v.rewrite_list = Some(n);
                        }
                        ("enable-signals", _) => v.enable_signals = self.enable_signals_value(l),
                        ("max-smtp-out", Value::Int(n)) => v.max_smtp_out = Some(n),
                        ("max-smtp-msg-rate", Value::Rate(r)) => v.max_smtp_msg_rate = r,
                        ("cold-virtual-mta", Value::Text(n)) => {
                            self.reference(RefKind::Vmta, &n, &l.loc, "cold-virtual-mta");
                            v.cold_virtual_mtas.push(n);
                        }
                        _ => {}
                    }
                }
                Node::Section(sub) => {
                    if self.open(sub, VMTA).is_some() {
                        if let Some(b) = self.domain_section(sub) {
                            v.domains.push(b);
                        }
                    }
                }
            }
        }
        self.data.virtual_mtas.push(v);
    }

    fn pool_section(&mut self, s: &Section) {
        let name = Self::arg(s).to_string();
        if self
            .data
            .pools
            .iter()
            .any(|v| v.name.eq_ignore_ascii_case(&name))
        {
            self.err(
                &s.loc,
                format!("`<virtual-mta-pool {name}>` is defined more than once"),
            );
        }
        let mut p = VirtualMtaPool {
            name,
            members: Vec::new(),
            domains: Vec::new(),
            enable_signals: None,
            domain_keys: Vec::new(),
            rewrite_list: None,
            max_smtp_out: None,
            cold_virtual_mtas: Vec::new(),
            origin: origin(&s.loc),
        };
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    let Some((d, val)) = self.check(l, POOL) else {
                        continue;
                    };
                    match (d.name, val) {
                        ("virtual-mta", Value::Text(n)) => {
                            self.pool_member_locs.push((n.clone(), l.loc.clone()));
                            p.members.push(n);
                        }
                        ("domain-key", _) => {
                            if let Some(k) = self.domain_key(l) {
                                p.domain_keys.push(k);
                            }
                        }
                        ("rewrite-list", Value::Text(n)) => {
                            self.reference(RefKind::RewriteList, &n, &l.loc, "rewrite-list");
                            p.rewrite_list = Some(n);
                        }
                        ("enable-signals", _) => p.enable_signals = self.enable_signals_value(l),
                        ("max-smtp-out", Value::Int(n)) => p.max_smtp_out = Some(n),
                        ("cold-virtual-mta", Value::Text(n)) => {
                            self.reference(RefKind::Vmta, &n, &l.loc, "cold-virtual-mta");
                            p.cold_virtual_mtas.push(n);
                        }
                        _ => {}
                    }
                }
                Node::Section(sub) => {
                    if self.open(sub, POOL).is_some() {
                        if let Some(b) = self.domain_section(sub) {
                            p.domains.push(b);
                        }
                    }
                }
            }
        }
        if p.members.is_empty() {
            self.err(
                &s.loc,
                format!(
                    "`<virtual-mta-pool {}>` has no `virtual-mta` members",
                    p.name
                ),
            );
        }
        self.data.pools.push(p);
    }

    // ------------------------------------------------------------------ domains

    fn domain_section(&mut self, s: &Section) -> Option<DomainBlock> {
        let pattern = match Self::arg(s).parse::<DomainPattern>() {
            Ok(p) => p,
            Err(e) => {
                self.err(&s.loc, format!("`<domain>`: {e}"));
                return None;
            }
        };
        let mut settings = DomainSettings::default();
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    let Some((d, v)) = self.check(l, DOM) else {
                        continue;
                    };
                    if d.name == "smtp-pattern-list" {
                        if let Value::OptText(Some(n)) = &v {
                            self.reference(
                                RefKind::SmtpPatternList,
                                n,
                                &l.loc,
                                "smtp-pattern-list",
                            );
                        }
                    }
                    if l.keyword.starts_with("second-") {
                        continue;
                    }
                    let name = if d.name == "max-rcpt-per-message" {
                        "max-rcpt-per-transaction"
                    } else {
                        d.name
                    };
                    settings.set(name, v);
                }
                Node::Section(sub) => {
                    self.open(sub, DOM);
                }
            }
        }
        Some(DomainBlock {
            pattern,
            settings,
            origin: origin(&s.loc),
        })
    }

    // ------------------------------------------------------------------ accounting

    fn acct_section(&mut self, s: &Section) {
        let arg = Self::arg(s);
        let target = match arg.strip_prefix('|') {
            Some(cmd) if !cmd.trim().is_empty() => AcctTarget::Pipe(cmd.trim().to_string()),
            Some(_) => {
                self.err(&s.loc, "`<acct-file |…>`: the pipe command is empty");
                return;
            }
            None => AcctTarget::File(resolve_path(&s.loc.base_dir(), arg)),
        };
        let mut a = AcctFile {
            target,
            records: vec![RecordType::Delivery, RecordType::Bounce],
            record_fields: Vec::new(),
            move_to: None,
            move_interval: Duration::from_secs(86_400),
            max_size: 250 << 20,
            delete_after: Some(Duration::from_secs(8 * 86_400)),
            iso_times: true,
            user_string: None,
            world_readable: false,
            sync: false,
            origin: origin(&s.loc),
        };
        let mut records_seen = false;
        for c in &s.children {
            let l = match c {
                Node::Line(l) => l,
                Node::Section(sub) => {
                    self.open(sub, ACCT);
                    continue;
                }
            };
            let Some((d, v)) = self.check(l, ACCT) else {
                continue;
            };
            match (d.name, v) {
                ("records", _) => {
                    if records_seen {
                        self.err(&l.loc, "`records` may be set only once per <acct-file>");
                    }
                    records_seen = true;
                    let mut out = Vec::new();
                    for r in split_list(&l.value) {
                        match RecordType::parse(&r) {
                            Some(t) => out.push(t),
                            None => self.err(&l.loc, format!("`records`: `{r}` is not a record type (d, b, t, tq, r, f, rb, rs)")),
                        }
                    }
                    a.records = out;
                }
                ("record-fields", _) => {
                    let Some(t) = RecordType::parse(&l.words[0]) else {
                        self.err(
                            &l.loc,
                            format!("`record-fields`: `{}` is not a record type", l.words[0]),
                        );
                        continue;
                    };
                    let rest = l.value
                        [l.value.find(char::is_whitespace).unwrap_or(l.value.len())..]
                        .trim();
                    let fields = split_list(rest);
                    if fields.is_empty() {
                        self.err(&l.loc, "`record-fields`: field list missing");
                        continue;
                    }
                    let sel = fields
                        .into_iter()
                        .map(|f| {
                            if f == "*" {
                                FieldSelector::All
                            } else if let Some(x) = f.strip_prefix('!') {
                                FieldSelector::Exclude(x.to_string())
                            } else if let Some(h) = crate::values::strip_prefix_ci(&f, "header_")
                                .filter(|h| !h.is_empty())
                            {
                                FieldSelector::Header(h.to_string())
                            } else {
                                FieldSelector::Field(f)
                            }
                        })
                        .collect();
                    a.record_fields.push((t, sel));
                }
                ("map-header-to-field", _)
                    if l.words.len() != 3 || RecordType::parse(&l.words[0]).is_none() =>
                {
                    self.err(&l.loc, "`map-header-to-field` takes TYPE header_NAME FIELD");
                }
                ("privacy-policy", _) => {
                    let p = l.words[0].to_ascii_lowercase();
                    let ok = match p.as_str() {
                        "retain" => l.words.len() == 1,
                        "redact" => l.words.len() <= 2,
                        "siphash" | "siphash-hexkey" | "hmac-sha256" | "hmac-sha256-hexkey" => {
                            l.words.len() == 2
                        }
                        _ => false,
                    };
                    if !ok {
                        self.err(&l.loc, format!("`privacy-policy`: `{}` is not retain, redact [\"str\"], siphash \"key\", siphash-hexkey KEY, hmac-sha256 \"key\" or hmac-sha256-hexkey KEY", l.value));
                    }
                }
                ("move-to", Value::Path(p)) => a.move_to = Some(p),
                ("move-interval", Value::Duration(x)) => a.move_interval = x,
                ("max-size", Value::Size(n)) => {
                    if n < (1 << 20) {
                        self.err(&l.loc, "`max-size` must be at least 1M");
                    }
                    a.max_size = n;
                }
                ("delete-after", Value::OptDuration(x)) => a.delete_after = x,
                ("iso-times", Value::Bool(b)) => a.iso_times = b,
                ("user-string", Value::Text(t)) => a.user_string = Some(t),
                ("world-readable", Value::Bool(b)) => a.world_readable = b,
                ("sync", Value::Bool(b)) => a.sync = b,
                _ => {}
            }
        }
        self.data.acct_files.push(a);
    }

    fn spool_section(&mut self, s: &Section) {
        let mut sp = SpoolDir {
            path: resolve_path(&s.loc.base_dir(), Self::arg(s)),
            priority: 1,
            min_free_space: 0,
            deliver_only: false,
            origin: origin(&s.loc),
        };
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    let Some((d, v)) = self.check(l, SPOOL) else {
                        continue;
                    };
                    match (d.name, v) {
                        ("priority", Value::Int(n)) => sp.priority = n,
                        ("min-free-space", Value::Size(n)) => sp.min_free_space = n,
                        ("deliver-only", Value::Bool(b)) => sp.deliver_only = b,
                        _ => {}
                    }
                }
                Node::Section(sub) => {
                    self.open(sub, SPOOL);
                }
            }
        }
        self.data.spools.push(sp);
    }

    // ------------------------------------------------------------------ signals

    fn signals_section(&mut self, s: &Section) {
        if self.data.signals.is_some() {
            self.err(&s.loc, "`<signals>` is defined more than once");
        }
        let mut sig = Signals {
            api_key: String::new(),
            upload_url: "https://api.sparkpost.com/api/v1/ingest/events".to_string(),
            log_verbose: false,
            min_free_space: 20 << 20,
            engagement_tracking: EngagementTracking::Off,
            customer_id: None,
            tracking_domain: None,
            custom_message_id_header: None,
            process_x_sp_subaccount_id: false,
            retain_x_sp_subaccount_id: false,
            privacy_policy: SignalsPrivacy::Retain,
            origin: origin(&s.loc),
        };
        for c in &s.children {
            let l = match c {
                Node::Line(l) => l,
                Node::Section(sub) => {
                    self.open(sub, SIG);
                    continue;
                }
            };
            let Some((d, v)) = self.check(l, SIG) else {
                continue;
            };
            match (d.name, v) {
                ("api-key", Value::Text(k)) => {
                    if k.len() != 40 || !k.bytes().all(|b| b.is_ascii_hexdigit()) {
                        self.err(&l.loc, "`api-key` must be exactly 40 hexadecimal characters (a SparkPost API key with Incoming Events: Write)");
                    }
                    sig.api_key = k;
                }
                ("upload-url", Value::Text(u)) => {
                    if !u.starts_with("https://") && !u.starts_with("http://") {
                        self.err(&l.loc, format!("`upload-url`: `{u}` is not an http(s) URL"));
                    }
                    sig.upload_url = u;
                }
                ("log-verbose", Value::Bool(b)) => sig.log_verbose = b,
                ("min-free-space", Value::Size(n)) => sig.min_free_space = n,
                ("engagement-tracking", _) => {
                    let w = &l.words[0];
                    sig.engagement_tracking = if l.words.len() == 1
                        && w.eq_ignore_ascii_case("sparkpost")
                    {
                        EngagementTracking::Sparkpost
                    } else {
                        match (l.words.len(), parse_bool(w)) {
                            (1, Ok(true)) => EngagementTracking::Declared,
                            (1, Ok(false)) => EngagementTracking::Off,
                            _ => {
                                self.err(&l.loc, format!("`engagement-tracking`: `{}` is not true, false or sparkpost", l.value));
                                continue;
                            }
                        }
                    };
                }
                ("customer-id", _) => match (l.words.len(), l.words[0].parse::<u64>()) {
                    (1, Ok(n)) => sig.customer_id = Some(n),
                    _ => self.err(
                        &l.loc,
                        format!("`customer-id`: `{}` is not a number", l.value),
                    ),
                },
                ("tracking-domain", Value::Text(t)) => {
                    sig.tracking_domain = Some(t.to_ascii_lowercase())
                }
                ("custom-message-id-header", Value::Text(t)) => {
                    sig.custom_message_id_header = Some(t)
                }
                ("process-x-sp-subaccount-id", Value::Bool(b)) => {
                    sig.process_x_sp_subaccount_id = b
                }
                ("retain-x-sp-subaccount-id", Value::Bool(b)) => sig.retain_x_sp_subaccount_id = b,
                ("privacy-policy", Value::Choice(c)) => {
                    sig.privacy_policy = if c == "sha1" {
                        SignalsPrivacy::Sha1
                    } else {
                        SignalsPrivacy::Retain
                    }
                }
                _ => {}
            }
        }
        if sig.api_key.is_empty() && !mentions(s, "api-key") {
            self.err(&s.loc, "`<signals>` needs an `api-key`");
        }
        self.data.signals = Some(sig);
    }

    fn signals_filter_section(&mut self, s: &Section) {
        self.data.signals_filters.push(Self::arg(s).to_string());
        for c in &s.children {
            let l = match c {
                Node::Line(l) => l,
                Node::Section(sub) => {
                    self.open(sub, SIGF);
                    continue;
                }
            };
            if self.check(l, SIGF).is_none() {
                continue;
            }
            let ok = l.words.len() == 2 && l.words[0].parse::<DomainPattern>().is_ok() && {
                let a = split_list(&l.words[1]);
                match a.first().map(|x| x.to_ascii_lowercase()).as_deref() {
                    Some("disable-signals") => a.len() == 1,
                    Some("enable-signals") => a[1..].iter().all(|p| {
                        p.split_once('=').is_some_and(|(k, v)| {
                            k.eq_ignore_ascii_case("subaccount") && v.parse::<u64>().is_ok()
                        })
                    }),
                    _ => false,
                }
            };
            if !ok {
                self.err(&l.loc, format!("`sender-or-from`: `{}` is not `DOMAIN-PATTERN enable-signals[,subaccount=N]` or `DOMAIN-PATTERN disable-signals`", l.value));
            }
        }
    }

    // ------------------------------------------------------------------ processors

    fn processor_section(&mut self, s: &Section, bit: u32) -> Processor {
        let mut p = Processor {
            origin: origin(&s.loc),
            ..Processor::default()
        };
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    let Some((d, v)) = self.check(l, bit) else {
                        continue;
                    };
                    match (d.name, v) {
                        ("deliver-unmatched-email", Value::Bool(b)) => {
                            p.deliver_unmatched_email = b
                        }
                        ("deliver-matched-email", Value::Bool(b)) => p.deliver_matched_email = b,
                        ("forward-unmatched-to", Value::Text(t)) => p.forward_unmatched_to.push(t),
                        ("forward-errors-to", Value::Text(t)) => p.forward_errors_to.push(t),
                        _ => {}
                    }
                }
                Node::Section(sub) => {
                    let Some(def) = self.open(sub, bit) else {
                        continue;
                    };
                    if def.bit == ADDR {
                        let list = self.address_list(sub);
                        p.address_list.domains.extend(list.domains);
                        p.address_list.addresses.extend(list.addresses);
                        p.address_list.address_files.extend(list.address_files);
                    } else if def.bit == EMAILP {
                        for c2 in &sub.children {
                            match c2 {
                                Node::Line(l) => match self.check(l, EMAILP) {
                                    Some((_, Value::Path(f))) => p.body_pattern_files.push(f),
                                    Some((_, Value::Bool(b))) => p.log_match_info = b,
                                    _ => {}
                                },
                                Node::Section(x) => {
                                    self.open(x, EMAILP);
                                }
                            }
                        }
                    }
                }
            }
        }
        p
    }

    fn address_list(&mut self, s: &Section) -> AddressList {
        let mut a = AddressList {
            name: s.arg.clone(),
            ..AddressList::default()
        };
        for c in &s.children {
            match c {
                Node::Line(l) => {
                    let Some((d, v)) = self.check(l, ADDR) else {
                        continue;
                    };
                    match (d.name, v) {
                        ("domain", Value::Text(t)) => match t.parse::<DomainPattern>() {
                            Ok(DomainPattern::Exact(x)) => a.domains.push(x),
                            _ => self.err(&l.loc, format!("`domain`: `{t}` is not a domain name")),
                        },
                        ("address", Value::Text(t)) => a.addresses.push(
                            if t.len() >= 2 && t.starts_with('/') && t.ends_with('/') {
                                AddressEntry::Regex(t[1..t.len() - 1].to_string())
                            } else if t.contains('@') {
                                AddressEntry::Email(t)
                            } else {
                                AddressEntry::LocalPart(t)
                            },
                        ),
                        ("address-file", Value::Path(p)) => a.address_files.push(p),
                        _ => {}
                    }
                }
                Node::Section(sub) => {
                    self.open(sub, ADDR);
                }
            }
        }
        a
    }

    // ------------------------------------------------------------------ rewrite

    fn rewrite_section(&mut self, s: &Section) {
        let name = Self::arg(s).to_string();
        if self
            .data
            .rewrite_lists
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(&name))
        {
            self.err(
                &s.loc,
                format!("`<rewrite-list {name}>` is defined more than once"),
            );
        }
        let mut rules = Vec::new();
        for c in &s.children {
            let l = match c {
                Node::Line(l) => l,
                Node::Section(sub) => {
                    self.open(sub, RW);
                    continue;
                }
            };
            let Some((d, _)) = self.check(l, RW) else {
                continue;
            };
            if l.words.len() != 2 {
                self.err(&l.loc, format!("`{}` takes a source and a target", d.name));
                continue;
            }
            match d.name {
                "mail-from" => match parse_mail_from_rule(&l.words[0], &l.words[1]) {
                    Ok((from, to)) => rules.push(RewriteRule::MailFrom { from, to }),
                    Err(m) => self.err(&l.loc, format!("`mail-from`: {m}")),
                },
                _ => {
                    let from = match l.words[0].parse::<DomainPattern>() {
                        Ok(p) => p,
                        Err(e) => {
                            self.err(&l.loc, format!("`from-domain`: {e}"));
                            continue;
                        }
                    };
                    match l.words[1].parse::<DomainPattern>() {
                        Ok(DomainPattern::Exact(to)) if to.is_ascii() => {
                            rules.push(RewriteRule::FromDomain { from, to })
                        }
                        _ => self.err(
                            &l.loc,
                            format!(
                                "`from-domain`: target `{}` must be a plain ASCII domain",
                                l.words[1]
                            ),
                        ),
                    }
                }
            }
        }
        self.data.rewrite_lists.push(RewriteList {
            name,
            rules,
            origin: origin(&s.loc),
        });
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
                RefKind::SignalsFilter => (
                    self.data
                        .signals_filters
                        .iter()
                        .any(|f| f.to_lowercase() == n),
                    "<signals-filter>",
                ),
                RefKind::PatternList => (
                    self.data
                        .pattern_lists
                        .iter()
                        .any(|f| f.to_lowercase() == n),
                    "<pattern-list>",
                ),
                RefKind::SmtpPatternList => (
                    self.data
                        .smtp_pattern_lists
                        .iter()
                        .any(|f| f.to_lowercase() == n),
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
