//! Where a queue's mail goes: `smtp-hosts` static routes, or the domain's MX records in
//! preference order with the implicit-MX (A/AAAA) fallback of RFC 5321 §5.1.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use petrel_config::{EffectiveDomainSettings, NoMxPolicy, SmtpHost};

/// One host to try, with the name used in logs and accounting (`dsnMta`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// MX or smtp-hosts name (or the IP literal).
    pub name: String,
    /// Address and port to connect to.
    pub addr: SocketAddr,
}

/// Why no destination could be found.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The domain does not exist (NXDOMAIN): permanent, bounce with 5.1.2.
    #[error("domain {0} does not exist")]
    NoSuchDomain(String),
    /// The domain publishes a null MX (RFC 7505, `MX 0 .`): it accepts no mail; bounce with
    /// 5.1.10.
    #[error("domain {0} does not accept mail (null MX)")]
    NullMx(String),
    /// The domain has no MX and `bounce-upon-no-mx` is set: the caller bounces (all, or the
    /// messages older than the configured age) instead of using the implicit MX alone.
    #[error("domain {0} has no MX record")]
    NoMx(String),
    /// MX hosts exist but none resolves to an address, or DNS failed: try again later.
    #[error("DNS lookup for {domain} failed: {reason}")]
    Temporary {
        /// The domain looked up.
        domain: String,
        /// What went wrong.
        reason: String,
    },
}

/// Resolves destinations; one per engine, shared by every connection task.
pub struct Router {
    resolver: TokioResolver,
}

impl Router {
    /// A router using `name_servers` (from `name-server` lines), or the system's resolvers
    /// when the list is empty.
    pub fn new(name_servers: &[SocketAddr]) -> Result<Router, RouteError> {
        let provider = TokioRuntimeProvider::default();
        let builder = if name_servers.is_empty() {
            TokioResolver::builder(provider).map_err(|e| RouteError::Temporary {
                domain: String::new(),
                reason: format!("system resolver configuration: {e}"),
            })?
        } else {
            let servers = name_servers
                .iter()
                .map(|a| {
                    let mut ns = NameServerConfig::udp_and_tcp(a.ip());
                    for c in &mut ns.connections {
                        c.port = a.port();
                    }
                    ns
                })
                .collect();
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
        };
        let resolver = builder.build().map_err(|e| RouteError::Temporary {
            domain: String::new(),
            reason: e.to_string(),
        })?;
        Ok(Router { resolver })
    }

    /// Preference levels of destinations for `domain`, best first. Hosts within a level are
    /// in the order DNS gave them.
    pub async fn route(
        &self,
        domain: &str,
        settings: &EffectiveDomainSettings,
    ) -> Result<Vec<Vec<Destination>>, RouteError> {
        let port = settings.default_smtp_port;
        if let Some(hosts) = &settings.smtp_hosts {
            let mut levels = Vec::new();
            for level in &hosts.levels {
                let mut dests = Vec::new();
                for host in level {
                    match host {
                        SmtpHost::Ip { ip, port: p } => dests.push(Destination {
                            name: format!("[{ip}]"),
                            addr: SocketAddr::new(*ip, p.unwrap_or(port)),
                        }),
                        SmtpHost::Name { name, port: p } => {
                            for ip in self.addresses(name).await? {
                                dests.push(Destination {
                                    name: name.clone(),
                                    addr: SocketAddr::new(ip, p.unwrap_or(port)),
                                });
                            }
                        }
                        SmtpHost::LookupMx(other) => {
                            for l in self.mx(other, port, NoMxPolicy::Never).await? {
                                dests.extend(l);
                            }
                        }
                    }
                }
                if !dests.is_empty() {
                    levels.push(dests);
                }
            }
            return Ok(levels);
        }
        if let Some(lit) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            let ip: IpAddr = lit
                .trim_start_matches("IPv6:")
                .parse()
                .map_err(|_| RouteError::NoSuchDomain(domain.to_string()))?;
            return Ok(vec![vec![Destination {
                name: domain.to_string(),
                addr: SocketAddr::new(ip, port),
            }]]);
        }
        self.mx(domain, port, settings.bounce_upon_no_mx).await
    }

    /// The implicit MX of RFC 5321 §5.1: the domain's own addresses. For
    /// `bounce-upon-no-mx INTERVAL`, which keeps trying them for younger messages.
    pub async fn implicit_mx(
        &self,
        domain: &str,
        port: u16,
    ) -> Result<Vec<Vec<Destination>>, RouteError> {
        let name = domain.trim_end_matches('.').to_string();
        let addrs = self.addresses(&name).await?;
        Ok(vec![addrs
            .into_iter()
            .map(|ip| Destination {
                name: name.clone(),
                addr: SocketAddr::new(ip, port),
            })
            .collect()])
    }

    async fn mx(
        &self,
        domain: &str,
        port: u16,
        no_mx: NoMxPolicy,
    ) -> Result<Vec<Vec<Destination>>, RouteError> {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let mut records: Vec<(u16, String)> = match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_utf8())),
                    _ => None,
                })
                .collect(),
            Err(e) if e.is_nx_domain() => return Err(RouteError::NoSuchDomain(domain.to_string())),
            Err(e) if e.is_no_records_found() => Vec::new(),
            Err(e) => {
                return Err(RouteError::Temporary {
                    domain: domain.to_string(),
                    reason: e.to_string(),
                })
            }
        };
        if records
            .iter()
            .any(|(_, host)| host.trim_end_matches('.').is_empty())
        {
            return Err(RouteError::NullMx(domain.to_string()));
        }
        if records.is_empty() {
            if no_mx != NoMxPolicy::Never {
                return Err(RouteError::NoMx(domain.to_string()));
            }
            // No MX: the domain itself is the implicit MX (RFC 5321 §5.1).
            return self.implicit_mx(domain, port).await;
        }
        records.sort_by_key(|(pref, _)| *pref);
        let mut levels: Vec<(u16, Vec<Destination>)> = Vec::new();
        for (pref, host) in records {
            let host = host.trim_end_matches('.').to_string();
            let addrs = match self.addresses(&host).await {
                Ok(a) => a,
                // One MX that does not resolve must not stop the others.
                Err(_) => continue,
            };
            let dests = addrs.into_iter().map(|ip| Destination {
                name: host.clone(),
                addr: SocketAddr::new(ip, port),
            });
            match levels.last_mut() {
                Some((p, l)) if *p == pref => l.extend(dests),
                _ => levels.push((pref, dests.collect())),
            }
        }
        if levels.is_empty() {
            return Err(RouteError::Temporary {
                domain: domain.to_string(),
                reason: "no MX host has an address".into(),
            });
        }
        Ok(levels.into_iter().map(|(_, l)| l).collect())
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, RouteError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(l) => Ok(l.iter().collect()),
            Err(e) if e.is_nx_domain() => Err(RouteError::NoSuchDomain(host.to_string())),
            Err(e) => Err(RouteError::Temporary {
                domain: host.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}
