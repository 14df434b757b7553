//! `<virtual-mta>`, `<virtual-mta-pool>` and `<domain>` blocks.

use super::*;

impl Builder<'_> {
    // ------------------------------------------------------------------ vmtas

    pub(super) fn vmta_section(&mut self, s: &Section) {
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

    pub(super) fn pool_section(&mut self, s: &Section) {
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

    pub(super) fn domain_section(&mut self, s: &Section) -> Option<DomainBlock> {
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
}
