//! `http-access CIDR LEVEL` evaluation.

use std::net::IpAddr;

/// What a client may do, in increasing order (PowerMTA's levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccessLevel {
    /// Nothing.
    None,
    /// Read-only views.
    Monitor,
    /// Views plus commands (reload, pause, …).
    Operator,
    /// Everything, including configuration changes.
    Admin,
}

/// One `http-access` line, already parsed: a network and the level it grants.
#[derive(Clone, Debug)]
pub struct AccessRule {
    /// Network address.
    pub network: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// Level granted.
    pub level: AccessLevel,
}

impl AccessRule {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let p = u32::from(self.prefix.min(32));
                let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let p = u32::from(self.prefix.min(128));
                let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            (IpAddr::V6(_), IpAddr::V4(a)) => self.contains(IpAddr::V6(a.to_ipv6_mapped())),
            (IpAddr::V4(_), IpAddr::V6(a)) => match a.to_ipv4_mapped() {
                Some(v4) => self.contains(IpAddr::V4(v4)),
                None => false,
            },
        }
    }
}

/// The level an endpoint needs. Reading views needs `monitor`, changing anything
/// `operator`; so does reading a message's content (`/messageBody`): bodies are the most
/// private thing petrel holds, and PowerMTA's monitor level is for status views (its
/// operator may see the configuration, with its passwords and keys, which is the same
/// trust).
pub fn needed_for(method: &axum::http::Method, path: &str) -> AccessLevel {
    if method == axum::http::Method::GET && path != "/messageBody" {
        AccessLevel::Monitor
    } else {
        AccessLevel::Operator
    }
}

/// The level for `ip`: the first rule that matches; without rules, loopback gets operator
/// access (so the local CLI works out of the box) and everyone else none.
pub fn level_for(rules: &[AccessRule], ip: IpAddr) -> AccessLevel {
    if rules.is_empty() {
        let loopback = match ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback())
            }
        };
        return if loopback {
            AccessLevel::Operator
        } else {
            AccessLevel::None
        };
    }
    rules
        .iter()
        .find(|r| r.contains(ip))
        .map_or(AccessLevel::None, |r| r.level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_wins_and_default_is_loopback() {
        let rules = vec![
            AccessRule {
                network: "127.0.0.2".parse().unwrap(),
                prefix: 32,
                level: AccessLevel::None,
            },
            AccessRule {
                network: "127.0.0.0".parse().unwrap(),
                prefix: 8,
                level: AccessLevel::Admin,
            },
        ];
        assert_eq!(
            level_for(&rules, "127.0.0.2".parse().unwrap()),
            AccessLevel::None
        );
        assert_eq!(
            level_for(&rules, "127.0.0.1".parse().unwrap()),
            AccessLevel::Admin
        );
        assert_eq!(
            level_for(&rules, "10.0.0.1".parse().unwrap()),
            AccessLevel::None
        );
        assert_eq!(
            level_for(&[], "127.0.0.1".parse().unwrap()),
            AccessLevel::Operator
        );
        assert_eq!(
            level_for(&[], "192.0.2.1".parse().unwrap()),
            AccessLevel::None
        );
    }
}
