//! Directives whose values are files or compound values: certificates, DKIM keys,
//! source hosts, `http-access`, `enable-signals`.

use super::*;

impl Builder<'_> {
    // ------------------------------------------------------------------ files

    /// `FILE [PASSWORD]` naming a PEM with a certificate and a private key.
    pub(super) fn certificate(&mut self, l: &Line, check: bool) -> Option<TlsCertificate> {
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
    pub(super) fn domain_key(&mut self, l: &Line) -> Option<DomainKey> {
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
        // Parse the key now, exactly as the signer will: a key petrel cannot sign with is an
        // error here (check-config, start, reload), never mail sent unsigned later.
        if self.io {
            match petrel_dkim::DkimKey::load(parts[0], parts[1], &key_file) {
                Err(e) => {
                    self.err(&l.loc, format!("`domain-key`: {e}"));
                    return None;
                }
                Ok(key) if key.below_recommended_size() => self.warn(
                    &l.loc,
                    format!(
                        "`domain-key`: `{}` is a {}-bit RSA key; petrel signs with it, but RFC 8301 recommends {} bits: publish a {}-bit key under a new selector and switch to it",
                        key_file.display(),
                        key.bits(),
                        petrel_dkim::RECOMMENDED_RSA_BITS,
                        petrel_dkim::RECOMMENDED_RSA_BITS,
                    ),
                ),
                Ok(_) => {}
            }
        }
        Some(DomainKey {
            selector: parts[0].to_string(),
            domain,
            key_file,
            origin: origin(&l.loc),
        })
    }

    pub(super) fn source_host(&mut self, l: &Line) -> Option<SourceHost> {
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

    pub(super) fn http_access(&mut self, l: &Line) {
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

    pub(super) fn enable_signals_value(&mut self, l: &Line) -> Option<EnableSignals> {
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
}
