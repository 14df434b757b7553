//! Typed value parsers for the PowerMTA configuration language.
//!
//! Each directive's value is turned into one of these types by the loader, so nothing
//! downstream ever re-parses a string. The parsers are public so tools (and tests) can use
//! exactly the same rules as the loader.

use crate::error::ValueError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

/// Parses a BOOLEAN: `yes`, `no`, `true`, `false` in any case.
///
/// Exists because PowerMTA configs mix `yes`/`true` freely and both must mean the same.
pub fn parse_bool(s: &str) -> Result<bool, ValueError> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(ValueError::new(format!(
            "`{s}` is not a boolean (yes/no/true/false)"
        ))),
    }
}

/// Parses a TIME-INTERVAL such as `4d12h`, `10m`, `1w2d`, `300s` (a bare number is seconds).
/// petrel also accepts `ms` (milliseconds), e.g. `200ms` or `1s500ms`.
///
/// Exists because every timeout, retry and expiry directive shares this syntax.
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let bad = || {
        ValueError::new(format!(
            "`{s}` is not a time interval (e.g. 30s, 10m, 4d12h, 1w2d, 200ms)"
        ))
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = t.parse().map_err(|_| bad())?;
        return Ok(Duration::from_secs(n));
    }
    let mut secs: u64 = 0;
    let mut millis: u64 = 0;
    let mut num: Option<u64> = None;
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(d) = c.to_digit(10) {
            let n = num.unwrap_or(0);
            num = Some(
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d)))
                    .ok_or_else(bad)?,
            );
            continue;
        }
        let lc = c.to_ascii_lowercase();
        if lc == 'm' && chars.peek().is_some_and(|n| n.eq_ignore_ascii_case(&'s')) {
            chars.next();
            let n = num.take().ok_or_else(bad)?;
            millis = millis.checked_add(n).ok_or_else(bad)?;
            continue;
        }
        let unit: u64 = match lc {
            'w' => 7 * 86_400,
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n = num.take().ok_or_else(bad)?;
        secs = n
            .checked_mul(unit)
            .and_then(|v| v.checked_add(secs))
            .ok_or_else(bad)?;
    }
    if num.is_some() {
        // trailing number without unit, e.g. "1h30"
        return Err(bad());
    }
    Duration::from_secs(secs)
        .checked_add(Duration::from_millis(millis))
        .ok_or_else(bad)
}

/// Parses a TIME-INTERVAL that may also be `never`; `never` gives `None`.
///
/// Exists for directives such as `notify-of-delay-every` or `delete-after` where "never"
/// is a legal setting distinct from any interval.
pub fn parse_duration_or_never(s: &str) -> Result<Option<Duration>, ValueError> {
    if s.trim().eq_ignore_ascii_case("never") {
        Ok(None)
    } else {
        parse_duration(s).map(Some)
    }
}

/// Parses a TIME-INTERVAL-LIST such as `10m,1h,4h` (at most 30 entries; spaces after
/// commas tolerated). The last entry repeats when used.
///
/// Exists for `retry-after` and `backoff-retry-after`.
pub fn parse_duration_list(s: &str) -> Result<Vec<Duration>, ValueError> {
    let items: Vec<&str> = s.split(',').map(str::trim).collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(ValueError::new(format!(
            "`{s}` is not a list of time intervals (e.g. 10m,1h,4h)"
        )));
    }
    if items.len() > 30 {
        return Err(ValueError::new(format!(
            "`{s}` has {} intervals; at most 30 are allowed",
            items.len()
        )));
    }
    items.into_iter().map(parse_duration).collect()
}

/// Parses a SIZE: `N` followed by `b`, `k`, `m`, `g` or `t` in either case (`1G`, `250M`,
/// `40k`), or `0`. A bare number is taken as bytes (deprecated in PowerMTA but accepted).
///
/// Exists for size limits such as `max-message-size`, `min-free-space`, `max-size`.
pub fn parse_size(s: &str) -> Result<u64, ValueError> {
    let bad = || ValueError::new(format!("`{s}` is not a size (e.g. 0, 40k, 250M, 1G)"));
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        "t" | "tb" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// Parses a SIZE that may also be `unlimited`; `unlimited` (and `0`) give `None`.
///
/// Exists for `max-message-size`, whose default is unlimited.
pub fn parse_size_limit(s: &str) -> Result<Option<u64>, ValueError> {
    if s.trim().eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let n = parse_size(s)?;
    Ok(if n == 0 { None } else { Some(n) })
}

/// A RATE: at most `count` events per `window` (`100/15m` is 100 per 15 minutes).
///
/// Exists so throttles (`max-msg-rate`, `smtp-max-auth-failure-rate`...) are numbers the
/// engine can use directly. "Unlimited" is modelled as `Option<Rate>::None` by the parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// How many events are allowed in one window (never 0).
    pub count: u32,
    /// The window length.
    pub window: Duration,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.count, self.window.as_secs())
    }
}

fn parse_rate_unit(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (mult, unit) = s.split_at(split);
    let mult: u64 = if mult.is_empty() {
        1
    } else {
        mult.parse().ok()?
    };
    if mult == 0 {
        return None;
    }
    let secs = match unit.to_ascii_lowercase().as_str() {
        "s" | "sec" | "second" | "seconds" => 1,
        "m" | "min" | "minute" | "minutes" => 60,
        "h" | "hr" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        _ => return None,
    };
    mult.checked_mul(secs)
}

/// Parses a RATE: `unlimited` | `0` | `N/[M]unit` with unit `s|sec|m|min|h|hr|d|day`.
/// `unlimited` and `0` give `None`.
///
/// Exists for every `*-rate` directive.
pub fn parse_rate(s: &str) -> Result<Option<Rate>, ValueError> {
    let bad = || {
        ValueError::new(format!(
            "`{s}` is not a rate (e.g. unlimited, 0, 1/min, 100/15m, 500/h)"
        ))
    };
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") || t == "0" {
        return Ok(None);
    }
    let (n, unit) = t.split_once('/').ok_or_else(bad)?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    if count == 0 {
        return Err(bad());
    }
    let secs = parse_rate_unit(unit.trim()).ok_or_else(bad)?;
    Ok(Some(Rate {
        count,
        window: Duration::from_secs(secs),
    }))
}

/// A DATA-RATE: at most `bytes` per `window` (`1024K/15s`).
///
/// Exists for the `*-data-volume-rate` throttles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataRate {
    /// Bytes allowed per window.
    pub bytes: u64,
    /// The window length.
    pub window: Duration,
}

/// Parses a DATA-RATE: `unlimited` | `0` | `SIZE/[M]unit`. Unlimited gives `None`.
pub fn parse_data_rate(s: &str) -> Result<Option<DataRate>, ValueError> {
    let bad = || {
        ValueError::new(format!(
            "`{s}` is not a data rate (e.g. unlimited, 1024K/15s, 2g/10h)"
        ))
    };
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") || t == "0" {
        return Ok(None);
    }
    let (n, unit) = t.split_once('/').ok_or_else(bad)?;
    let bytes = parse_size(n).map_err(|_| bad())?;
    if bytes == 0 {
        return Err(bad());
    }
    let secs = parse_rate_unit(unit.trim()).ok_or_else(bad)?;
    Ok(Some(DataRate {
        bytes,
        window: Duration::from_secs(secs),
    }))
}

/// An IPv4 or IPv6 network (`10/8`, `173.194/16`, `0/0`, `1.2.3.4`, `2001:db8::/32`, `::1`).
///
/// Exists because `<source>`, `http-access` and `smtp-source-host` match client or local
/// addresses against networks written in PowerMTA's short forms. The stored address is
/// always the network address (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Builds a network from an address and a prefix length (host bits are cleared).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, ValueError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(ValueError::new(format!(
                "prefix length /{prefix} is too long for {addr}"
            )));
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let m = mask32(prefix);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
            }
            IpAddr::V6(a) => {
                let m = mask128(prefix);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
            }
        };
        Ok(Cidr { addr, prefix })
    }

    /// The single-address network for `ip` (/32 or /128).
    pub fn host(ip: IpAddr) -> Cidr {
        Cidr {
            addr: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
        }
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length (0 for `0/0`, 32 for a single IPv4 address).
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies inside this network. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
    /// are matched as the IPv4 address they carry.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical_ip(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & mask32(self.prefix) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & mask128(self.prefix) == u128::from(n),
            _ => false,
        }
    }

    /// Whether `other` lies entirely inside this network.
    pub fn contains_net(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
}

/// Maps IPv4-mapped IPv6 addresses to plain IPv4 so one rule set serves dual-stack sockets.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl FromStr for Cidr {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Cidr, ValueError> {
        let bad = || {
            ValueError::new(format!(
                "`{s}` is not an IP address or network (e.g. 10/8, 0/0, 1.2.3.4, 2001:db8::/32)"
            ))
        };
        let t = s.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
                    return Err(bad());
                }
                (a, Some(p.parse::<u8>().map_err(|_| bad())?))
            }
            None => (t, None),
        };
        if addr.contains(':') {
            let ip: Ipv6Addr = addr.parse().map_err(|_| bad())?;
            return Cidr::new(IpAddr::V6(ip), prefix.unwrap_or(128));
        }
        // IPv4, possibly short (`10`, `173.194`) when a prefix is given.
        let parts: Vec<&str> = addr.split('.').collect();
        if parts.is_empty() || parts.len() > 4 || (prefix.is_none() && parts.len() != 4) {
            return Err(bad());
        }
        let mut octets = [0u8; 4];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            octets[i] = p.parse().map_err(|_| bad())?;
        }
        Cidr::new(IpAddr::V4(Ipv4Addr::from(octets)), prefix.unwrap_or(32))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// How specific a [`DomainPattern`] is; larger sorts later and wins.
///
/// Exists so `<domain>` blocks can be merged from general to specific regardless of their
/// order in the file (spec §1.6: exact > `*.x` / `[*.]x` > `*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Specificity(u8, u32);

/// A domain pattern as used by `<domain>`, `relay-domain` and `from-domain`.
///
/// Exists so matching rules live in one place: `*` (everything), `example.com` (exactly),
/// `*.example.com` (proper subdomains only), `[*.]example.com` (the domain and its
/// subdomains), `[ip/mask]` (IP-literal domains such as `[10.1.2.3]`), and reserved queue
/// names like `{sparkpost}` (which match no ordinary domain). Stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainPattern {
    /// `*`: every domain.
    Any,
    /// `example.com`: this domain only.
    Exact(String),
    /// `*.example.com`: proper subdomains only.
    Subdomains(String),
    /// `[*.]example.com`: the domain and all its subdomains.
    DomainAndSubdomains(String),
    /// `[10/8]`: address literals inside this network.
    IpLiteral(Cidr),
    /// `{sparkpost}`, `{bounce}`...: an internal queue, looked up by name.
    Reserved(String),
}

fn valid_domain_name(d: &str) -> bool {
    !d.is_empty()
        && !d.starts_with('.')
        && !d.contains("..")
        && d.chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.' || c == '_' || !c.is_ascii())
}

fn normalize_domain(d: &str) -> String {
    d.trim_end_matches('.').to_lowercase()
}

impl FromStr for DomainPattern {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<DomainPattern, ValueError> {
        let t = s.trim();
        let bad = || {
            ValueError::new(format!(
                "`{s}` is not a domain pattern (*, example.com, *.example.com, [*.]example.com, [10/8])"
            ))
        };
        if t == "*" {
            return Ok(DomainPattern::Any);
        }
        if t.contains('$') {
            return Err(ValueError::new(format!(
                "`{s}` uses a domain macro; domain macros are not supported yet"
            )));
        }
        if let Some(inner) = t.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            if inner.is_empty() || inner.contains(char::is_whitespace) {
                return Err(bad());
            }
            return Ok(DomainPattern::Reserved(inner.to_ascii_lowercase()));
        }
        if let Some(rest) = t.strip_prefix("[*.]") {
            let d = normalize_domain(rest);
            return if valid_domain_name(&d) {
                Ok(DomainPattern::DomainAndSubdomains(d))
            } else {
                Err(bad())
            };
        }
        if let Some(rest) = t.strip_prefix("*.") {
            let d = normalize_domain(rest);
            return if valid_domain_name(&d) {
                Ok(DomainPattern::Subdomains(d))
            } else {
                Err(bad())
            };
        }
        if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let inner = strip_ipv6_tag(inner);
            return inner
                .parse::<Cidr>()
                .map(DomainPattern::IpLiteral)
                .map_err(|_| bad());
        }
        let d = normalize_domain(t);
        if valid_domain_name(&d) {
            Ok(DomainPattern::Exact(d))
        } else {
            Err(bad())
        }
    }
}

fn strip_ipv6_tag(s: &str) -> &str {
    strip_prefix_ci(s, "ipv6:").unwrap_or(s)
}

/// `s` without an ASCII `prefix` compared case-insensitively (safe on any UTF-8 input).
pub(crate) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn ends_with_label(domain: &str, suffix: &str) -> bool {
    domain.len() > suffix.len()
        && domain.ends_with(suffix)
        && domain.as_bytes()[domain.len() - suffix.len() - 1] == b'.'
}

impl DomainPattern {
    /// Whether `domain` (case-insensitive, trailing dot ignored) matches this pattern.
    /// Address literals must be written bracketed, e.g. `[10.1.2.3]` or `[IPv6:::1]`.
    pub fn matches(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.');
        let lowered;
        let d = if d.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
            lowered = d.to_lowercase();
            lowered.as_str()
        } else {
            d
        };
        match self {
            DomainPattern::Any => true,
            DomainPattern::Exact(x) => d == x,
            DomainPattern::Subdomains(x) => ends_with_label(d, x),
            DomainPattern::DomainAndSubdomains(x) => d == x || ends_with_label(d, x),
            DomainPattern::IpLiteral(c) => d
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| strip_ipv6_tag(r).parse::<IpAddr>().ok())
                .is_some_and(|ip| c.contains(ip)),
            DomainPattern::Reserved(x) => d
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .is_some_and(|r| r == x),
        }
    }

    /// How specific this pattern is; a more specific matching pattern overrides a less
    /// specific one. Exact > `*.x` > `[*.]x` > `*`; among suffix patterns, the longer
    /// suffix wins.
    pub fn specificity(&self) -> Specificity {
        match self {
            DomainPattern::Any => Specificity(0, 0),
            DomainPattern::DomainAndSubdomains(x) => Specificity(1, label_count(x) * 2),
            DomainPattern::Subdomains(x) => Specificity(1, label_count(x) * 2 + 1),
            DomainPattern::IpLiteral(c) => Specificity(1, u32::from(c.prefix_len()) * 2),
            DomainPattern::Exact(_) => Specificity(2, 0),
            DomainPattern::Reserved(_) => Specificity(3, 0),
        }
    }
}

fn label_count(d: &str) -> u32 {
    u32::try_from(d.split('.').count()).unwrap_or(u32::MAX / 4)
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Any => write!(f, "*"),
            DomainPattern::Exact(x) => write!(f, "{x}"),
            DomainPattern::Subdomains(x) => write!(f, "*.{x}"),
            DomainPattern::DomainAndSubdomains(x) => write!(f, "[*.]{x}"),
            DomainPattern::IpLiteral(c) => write!(f, "[{c}]"),
            DomainPattern::Reserved(x) => write!(f, "{{{x}}}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn booleans() {
        for s in ["yes", "YES", "true", "True"] {
            assert!(parse_bool(s).unwrap());
        }
        for s in ["no", "No", "false", "FALSE"] {
            assert!(!parse_bool(s).unwrap());
        }
        let e = parse_bool("maybe").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`maybe` is not a boolean (yes/no/true/false)"
        );
        assert!(parse_bool("").is_err());
        assert!(parse_bool("1").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("4d12h").unwrap(),
            secs(4 * 86400 + 12 * 3600)
        );
        assert_eq!(parse_duration("10m").unwrap(), secs(600));
        assert_eq!(parse_duration("1w2d").unwrap(), secs(9 * 86400));
        assert_eq!(parse_duration("300s").unwrap(), secs(300));
        assert_eq!(parse_duration("600").unwrap(), secs(600));
        assert_eq!(parse_duration("0").unwrap(), secs(0));
        assert_eq!(parse_duration("1H30M").unwrap(), secs(5400));
        // milliseconds (petrel extension)
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("200MS").unwrap(), Duration::from_millis(200));
        assert_eq!(
            parse_duration("1s500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_duration("1m5ms").unwrap(),
            Duration::from_millis(60_005)
        );
        assert_eq!(
            parse_duration("2500ms").unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(parse_duration("0ms").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1m30s").unwrap(), secs(90));
        for bad in [
            "",
            "h",
            "10x",
            "1h30",
            "-1m",
            "1.5h",
            "never",
            "99999999999999999999w",
            "ms",
            "5mss",
            "5msx",
            "1.5ms",
            "99999999999999999999ms",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration_or_never("never").unwrap(), None);
        assert_eq!(parse_duration_or_never("NEVER").unwrap(), None);
        assert_eq!(parse_duration_or_never("1d").unwrap(), Some(secs(86400)));
    }

    #[test]
    fn duration_lists() {
        assert_eq!(
            parse_duration_list("10m,1h").unwrap(),
            vec![secs(600), secs(3600)]
        );
        assert_eq!(
            parse_duration_list("10m, 10m, 1h,4h").unwrap(),
            vec![secs(600), secs(600), secs(3600), secs(14400)]
        );
        assert_eq!(parse_duration_list("5m").unwrap(), vec![secs(300)]);
        assert!(parse_duration_list("10m,,1h").is_err());
        assert!(parse_duration_list("10m,").is_err());
        assert!(parse_duration_list("10m,xx").is_err());
        let long = vec!["1m"; 31].join(",");
        assert!(parse_duration_list(&long).is_err());
        let ok = vec!["1m"; 30].join(",");
        assert_eq!(parse_duration_list(&ok).unwrap().len(), 30);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("250M").unwrap(), 250 << 20);
        assert_eq!(parse_size("40k").unwrap(), 40 << 10);
        assert_eq!(parse_size("40K").unwrap(), 40 << 10);
        assert_eq!(parse_size("2t").unwrap(), 2 << 40);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("512b").unwrap(), 512);
        for bad in [
            "",
            "G",
            "1X",
            "-1",
            "1.5M",
            "unlimited",
            "99999999999999999999t",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size_limit("unlimited").unwrap(), None);
        assert_eq!(parse_size_limit("0").unwrap(), None);
        assert_eq!(parse_size_limit("10M").unwrap(), Some(10 << 20));
        assert!(parse_size_limit("lots").is_err());
    }

    #[test]
    fn rates() {
        let r = |c, s| {
            Some(Rate {
                count: c,
                window: secs(s),
            })
        };
        assert_eq!(parse_rate("1/min").unwrap(), r(1, 60));
        assert_eq!(parse_rate("100/15m").unwrap(), r(100, 900));
        assert_eq!(parse_rate("83/5s").unwrap(), r(83, 5));
        assert_eq!(parse_rate("5/min").unwrap(), r(5, 60));
        assert_eq!(parse_rate("500/h").unwrap(), r(500, 3600));
        assert_eq!(parse_rate("3/5m").unwrap(), r(3, 300));
        assert_eq!(parse_rate("10/day").unwrap(), r(10, 86400));
        assert_eq!(parse_rate("10/2hr").unwrap(), r(10, 7200));
        assert_eq!(parse_rate("unlimited").unwrap(), None);
        assert_eq!(parse_rate("0").unwrap(), None);
        for bad in [
            "", "5", "0/min", "5/", "5/x", "/min", "5/0m", "a/min", "5/min/2",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn data_rates() {
        assert_eq!(
            parse_data_rate("1024K/15s").unwrap(),
            Some(DataRate {
                bytes: 1024 << 10,
                window: secs(15)
            })
        );
        assert_eq!(
            parse_data_rate("2g/10h").unwrap(),
            Some(DataRate {
                bytes: 2 << 30,
                window: secs(36000)
            })
        );
        assert_eq!(parse_data_rate("unlimited").unwrap(), None);
        assert!(parse_data_rate("0/h").is_err());
        assert!(parse_data_rate("1k").is_err());
    }

    #[test]
    fn cidrs() {
        let c: Cidr = "10/8".parse().unwrap();
        assert_eq!(c.prefix_len(), 8);
        assert!(c.contains("10.200.1.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let all: Cidr = "0/0".parse().unwrap();
        assert_eq!(all.prefix_len(), 0);
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let g: Cidr = "173.194/16".parse().unwrap();
        assert_eq!(g.network(), "173.194.0.0".parse::<IpAddr>().unwrap());
        assert!(g.contains("173.194.4.5".parse().unwrap()));
        assert!(!g.contains("173.195.4.5".parse().unwrap()));
        let h: Cidr = "1.2.3.4".parse().unwrap();
        assert_eq!(h.prefix_len(), 32);
        assert!(h.contains("1.2.3.4".parse().unwrap()));
        assert!(h.contains("::ffff:1.2.3.4".parse().unwrap()));
        assert!(!h.contains("1.2.3.5".parse().unwrap()));
        let l: Cidr = "::1".parse().unwrap();
        assert_eq!(l.prefix_len(), 128);
        assert!(l.contains("::1".parse().unwrap()));
        let d: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(d.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!d.contains("2001:db9::5".parse().unwrap()));
        let masked: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(masked, c);
        assert!(c.contains_net(&"10.1/16".parse().unwrap()));
        assert!(!c.contains_net(&all));
        assert_eq!(c.to_string(), "10.0.0.0/8");
        for bad in [
            "",
            "10",
            "1.2.3",
            "1.2.3.4/33",
            "::1/129",
            "300/8",
            "1.2.3.4.5/32",
            "a.b.c.d",
            "10/",
            "10/x",
            "1..2/8",
            ":::/8",
            "1.2.3.4/-1",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn domain_patterns() {
        let p = |s: &str| s.parse::<DomainPattern>().unwrap();
        assert!(p("*").matches("anything.example"));
        assert!(p("example.com").matches("EXAMPLE.com"));
        assert!(p("example.com").matches("example.com."));
        assert!(!p("example.com").matches("a.example.com"));
        assert!(p("*.example.com").matches("a.example.com"));
        assert!(p("*.example.com").matches("b.a.Example.com"));
        assert!(!p("*.example.com").matches("example.com"));
        assert!(!p("*.example.com").matches("badexample.com"));
        assert!(p("[*.]example.com").matches("example.com"));
        assert!(p("[*.]example.com").matches("x.example.com"));
        assert!(!p("[*.]example.com").matches("xexample.com"));
        assert!(p("[10/8]").matches("[10.2.3.4]"));
        assert!(!p("[10/8]").matches("[11.2.3.4]"));
        assert!(!p("[10/8]").matches("10.2.3.4"));
        assert!(p("[0/0]").matches("[1.2.3.4]"));
        assert!(p("[2001:db8::/32]").matches("[IPv6:2001:db8::1]"));
        assert!(p("Bücher.DE").matches("bücher.de"));
        assert!(p("bücher.de").matches("BÜCHER.de"));
        assert_eq!(
            p("{sparkpost}"),
            DomainPattern::Reserved("sparkpost".into())
        );
        assert!(!p("{sparkpost}").matches("sparkpost"));
        assert!(p("{sparkpost}").matches("{SparkPost}"));
        for bad in [
            "",
            "a b",
            "*.",
            "[*.]",
            "[nope]",
            "yahoo.$tld",
            "a..b",
            "{}",
            "*x.com",
        ] {
            assert!(bad.parse::<DomainPattern>().is_err(), "{bad}");
        }
        assert_eq!(p("[*.]Example.COM").to_string(), "[*.]example.com");
        assert!("[ipv6é:1]".parse::<DomainPattern>().is_err());
        assert_eq!(strip_prefix_ci("IPv6:x", "ipv6:"), Some("x"));
        assert_eq!(strip_prefix_ci("ipvé", "ipv6:"), None);
    }

    #[test]
    fn domain_specificity() {
        let s = |x: &str| x.parse::<DomainPattern>().unwrap().specificity();
        assert!(s("example.com") > s("*.example.com"));
        assert!(s("*.example.com") > s("[*.]example.com"));
        assert!(s("[*.]example.com") > s("*"));
        assert!(s("*.a.example.com") > s("*.example.com"));
        assert!(s("[*.]a.example.com") > s("*.example.com"));
        assert!(s("example.com") > s("*.a.b.c.example.com"));
    }
}
