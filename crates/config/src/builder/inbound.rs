//! Listeners, `<source>` blocks and `<smtp-user>` accounts.

use super::*;

impl Builder<'_> {
    // ------------------------------------------------------------------ listeners

    pub(super) fn listener_line(&mut self, l: &Line) {
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

    pub(super) fn listener_section(&mut self, s: &Section) {
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
    pub(super) fn listen_addr(&mut self, loc: &Loc, s: &str) -> Option<SocketAddr> {
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

    pub(super) fn source_section(&mut self, s: &Section) {
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

    pub(super) fn user_section(&mut self, s: &Section) {
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
}
