//! Precomputed lookups and effective-settings resolution.
//!
//! Exists so the hot paths (a new SMTP connection, every RCPT TO) do almost no work:
//! the source policy for every distinct `<source>` network is merged once at load time,
//! and a lookup is a short scan for the most specific containing network plus a clone.

use crate::config::{Config, ConfigData};
use crate::model::*;
use crate::tree::base_dir;
use crate::values::{canonical_ip, Cidr, DomainPattern};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub(crate) struct Index {
    /// Per family: (network, fully merged policy), most specific first.
    v4: Vec<(Cidr, SourcePolicy)>,
    v6: Vec<(Cidr, SourcePolicy)>,
    /// Policy when no network of that family contains the client.
    v4_default: SourcePolicy,
    v6_default: SourcePolicy,
    /// Named sources (lower-case name → merged settings).
    named: HashMap<String, SourceSettings>,
    relay_exact: HashSet<String>,
    relay_patterns: Vec<DomainPattern>,
    users: HashMap<String, usize>,
    pub(crate) spool_dirs: Vec<SpoolDir>,
    /// Some `<domain>` block sets `queue-to` (checked once here, not per message).
    uses_queue_to: bool,
    /// Whose turn it is in each pool (same order as `pools`): the one piece of runtime
    /// state in a loaded configuration, kept here so the listener picks members without a
    /// lock. A reload starts every pool over at its first member.
    pool_turns: Vec<AtomicUsize>,
}

/// A v4 `0/0` source also covers IPv6 clients (it is the "everyone" rule in practice).
fn is_universal(c: &Cidr) -> bool {
    c.prefix_len() == 0 && c.network().is_ipv4()
}

impl Index {
    pub(crate) fn build(d: &ConfigData) -> Index {
        let mut base = SourcePolicy::default();
        d.global_source.apply_to(&mut base);

        // merge blocks with identical keys, in file order
        let mut nets: Vec<(Cidr, SourceSettings)> = Vec::new();
        let mut named: HashMap<String, SourceSettings> = HashMap::new();
        for r in &d.sources {
            match &r.key {
                SourceKey::Cidr(c) => match nets.iter_mut().find(|(n, _)| n == c) {
                    Some((_, s)) => s.merge_from(&r.settings),
                    None => nets.push((*c, r.settings.clone())),
                },
                SourceKey::Named(n) => named
                    .entry(n.to_lowercase())
                    .or_default()
                    .merge_from(&r.settings),
            }
        }

        let chain_policy = |target: &Cidr, v6: bool| -> SourcePolicy {
            let mut chain: Vec<&(Cidr, SourceSettings)> = nets
                .iter()
                .filter(|(n, _)| {
                    (v6 && is_universal(n))
                        || (n.network().is_ipv6() == v6 && n.contains_net(target))
                })
                .collect();
            // general → specific; the v4 0/0 goes before a v6 ::/0
            chain.sort_by_key(|(n, _)| (!is_universal(n), n.prefix_len()));
            let mut p = base.clone();
            for (_, s) in chain {
                s.apply_to(&mut p);
            }
            p
        };

        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (n, _) in &nets {
            if n.network().is_ipv4() {
                v4.push((*n, chain_policy(n, false)));
            } else {
                v6.push((*n, chain_policy(n, true)));
            }
        }
        v4.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        v6.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));

        let mut v6_default = base.clone();
        for (n, s) in &nets {
            if is_universal(n) {
                s.apply_to(&mut v6_default);
            }
        }
        let v4_default = base;

        let mut relay_exact = HashSet::new();
        let mut relay_patterns = Vec::new();
        for h in d
            .host_name
            .iter()
            .chain(d.virtual_mtas.iter().flat_map(|v| v.host_name.iter()))
        {
            relay_exact.insert(h.trim_end_matches('.').to_lowercase());
        }
        for p in &d.relay_domains {
            match p {
                DomainPattern::Exact(x) => {
                    relay_exact.insert(x.clone());
                }
                other => relay_patterns.push(other.clone()),
            }
        }

        let users = d
            .smtp_users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name.clone(), i))
            .collect();

        let spool_dirs = if d.spools.is_empty() {
            vec![SpoolDir {
                path: base_dir(&d.config_file).join("var").join("spool"),
                priority: 1,
                min_free_space: 0,
                deliver_only: false,
                origin: Origin {
                    file: d.config_file.clone(),
                    line: 0,
                },
            }]
        } else {
            d.spools.clone()
        };

        let sets_queue_to = |blocks: &[DomainBlock]| {
            blocks
                .iter()
                .any(|b| matches!(&b.settings.queue_to, Some(Some(q)) if !q.is_empty()))
        };
        let uses_queue_to = sets_queue_to(&d.domains)
            || d.virtual_mtas.iter().any(|v| sets_queue_to(&v.domains))
            || d.pools.iter().any(|p| sets_queue_to(&p.domains));
        Index {
            v4,
            v6,
            v4_default,
            v6_default,
            named,
            relay_exact,
            relay_patterns,
            users,
            spool_dirs,
            uses_queue_to,
            pool_turns: d.pools.iter().map(|_| AtomicUsize::new(0)).collect(),
        }
    }
}

impl Config {
    /// The inbound policy for a client address: every `<source>` network containing `ip`
    /// merged from general to specific (the most specific wins per setting), over the
    /// global-level settings and PowerMTA's defaults. IPv4-mapped IPv6 addresses are
    /// treated as IPv4; a `<source 0/0>` also applies to IPv6 clients.
    ///
    /// Precomputed at load: this is one scan of the distinct networks plus a clone.
    pub fn source_for_ip(&self, ip: IpAddr) -> SourcePolicy {
        let ip = canonical_ip(ip);
        let (table, default) = if ip.is_ipv4() {
            (&self.index.v4, &self.index.v4_default)
        } else {
            (&self.index.v6, &self.index.v6_default)
        };
        table
            .iter()
            .find(|(n, _)| n.contains(ip))
            .map(|(_, p)| p)
            .unwrap_or(default)
            .clone()
    }

    /// Overlays the named `<source NAME>` (e.g. a listener's `source=NAME`, a user's
    /// `source`, or `{auth}`) on `base`: every setting the named source gives wins.
    /// An unknown name returns `base` unchanged (load-time checks reject dangling names).
    pub fn source_with_named(&self, base: &SourcePolicy, name: &str) -> SourcePolicy {
        let mut p = base.clone();
        let found = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.index.named.get(&name.to_lowercase())
        } else {
            self.index.named.get(name)
        };
        if let Some(s) = found {
            s.apply_to(&mut p);
        }
        p
    }

    /// The policy after a successful AUTH as `user`: the user's own `source`, or
    /// `<source {auth}>` when the user names none.
    pub fn source_after_auth(&self, base: &SourcePolicy, user: &str) -> SourcePolicy {
        let named = self
            .smtp_user(user)
            .and_then(|u| u.source.as_deref())
            .unwrap_or("{auth}");
        self.source_with_named(base, named)
    }

    /// Whether a named `<source>` exists.
    pub fn has_named_source(&self, name: &str) -> bool {
        self.index.named.contains_key(&name.to_lowercase())
    }

    /// The `<smtp-user>` with this exact name.
    pub fn smtp_user(&self, name: &str) -> Option<&SmtpUser> {
        self.index
            .users
            .get(name)
            .map(|&i| &self.data.smtp_users[i])
    }

    /// The processor whose `<address-list>` holds `rcpt`: the feedback-loop processor first
    /// (its reports are the rarer, more specific kind), then the bounce processor. Mail for
    /// such a recipient is accepted from anyone and processed, never relayed.
    pub fn returned_mail_processor(&self, rcpt: &str) -> Option<&Processor> {
        [&self.feedback_loop_processor, &self.bounce_processor]
            .into_iter()
            .flatten()
            .find(|p| p.address_list.contains(rcpt))
    }

    /// Whether any client may send mail to `domain`: it matches a `relay-domain` pattern or
    /// is one of the host names (global or vmta `host-name`).
    pub fn is_relay_domain(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.');
        let hit = if d.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
            self.index.relay_exact.contains(&d.to_lowercase())
        } else {
            self.index.relay_exact.contains(d)
        };
        hit || self.index.relay_patterns.iter().any(|p| p.matches(d))
    }

    /// The member of pool `name` that sends the next message: the members in turn, one
    /// message each (spec §2.7). `None` when `name` is not a pool.
    pub fn next_pool_member(&self, name: &str) -> Option<&str> {
        let (i, pool) = self
            .data
            .pools
            .iter()
            .enumerate()
            .find(|(_, p)| p.name.eq_ignore_ascii_case(name))?;
        let n = self
            .index
            .pool_turns
            .get(i)?
            .fetch_add(1, Ordering::Relaxed);
        pool.members
            .get(n % pool.members.len().max(1))
            .map(String::as_str)
    }

    /// The member of pool `name` for the message numbered `seed`, the same every time:
    /// for a message that has no member yet (spooled by an older petrel) or whose member a
    /// reload removed, so all its queues, and every restart under the same configuration,
    /// agree. `None` when `name` is not a pool.
    pub fn pool_member_for(&self, name: &str, seed: u64) -> Option<&str> {
        let members = &self.pool(name)?.members;
        let n = members.len().max(1) as u64;
        members.get((seed % n) as usize).map(String::as_str)
    }

    /// Whether any `<domain>` block (global, pool or vmta) sets `queue-to`; when none does,
    /// the delivery engine skips the per-recipient lookup.
    pub fn uses_queue_to(&self) -> bool {
        self.index.uses_queue_to
    }

    /// The queue a recipient domain's mail joins: `queue-to` when set for (`domain`, `vmta`),
    /// else the domain itself (lower-case).
    pub fn queue_domain(&self, domain: &str, vmta: &str) -> String {
        self.domain_settings(domain, vmta)
            .queue_to
            .filter(|q| !q.is_empty())
            .map(|q| q.to_ascii_lowercase())
            .unwrap_or_else(|| domain.to_ascii_lowercase())
    }

    /// Effective delivery settings for the queue `domain/vmta` (spec §1.6): global
    /// `<domain>` blocks, then those of the pool the vmta belongs to, then the vmta's own,
    /// each level merged from general to specific pattern, over PowerMTA's defaults.
    /// `vmta` may be `{default}` (global only) or a pool name (global + pool).
    pub fn domain_settings(&self, domain: &str, vmta: &str) -> EffectiveDomainSettings {
        let mut merged = DomainSettings::default();
        merge_level(&self.data.domains, domain, &mut merged);
        let v = self.virtual_mta(vmta);
        let pool = match v {
            Some(v) => {
                let mut pools = self
                    .data
                    .pools
                    .iter()
                    .filter(|p| p.members.iter().any(|m| m.eq_ignore_ascii_case(&v.name)));
                let first = pools.clone().find(|p| !p.domains.is_empty());
                first.or_else(|| pools.next())
            }
            None => self.pool(vmta),
        };
        if let Some(p) = pool {
            merge_level(&p.domains, domain, &mut merged);
        }
        if let Some(v) = v {
            merge_level(&v.domains, domain, &mut merged);
        }
        let mut eff = EffectiveDomainSettings::default();
        merged.apply_to(&mut eff);
        if merged.backoff_max_msg_rate.is_none() {
            eff.backoff_max_msg_rate = eff.max_msg_rate;
        }
        if merged.backoff_max_connect_rate.is_none() {
            eff.backoff_max_connect_rate = eff.max_connect_rate;
        }
        eff
    }
}

fn merge_level(blocks: &[DomainBlock], domain: &str, into: &mut DomainSettings) {
    let mut hits: Vec<&DomainBlock> = blocks
        .iter()
        .filter(|b| b.pattern.matches(domain))
        .collect();
    hits.sort_by_key(|b| b.pattern.specificity()); // stable: file order within a rank
    for b in hits {
        into.merge_from(&b.settings);
    }
}
