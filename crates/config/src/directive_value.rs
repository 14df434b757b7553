//! A directive line's value, typed by the [`Kind`] its row in the directive table gives:
//! the check every line goes through before a section builder stores it in the model.

use crate::directives::Kind;
use crate::model::{DeliveryType, DkimSign, NoMxPolicy, SmtpHost, SmtpHosts};
use crate::tree::{resolve_path, Line};
use crate::values::{
    parse_bool, parse_data_rate, parse_duration, parse_duration_list, parse_duration_or_never,
    parse_rate, parse_size, parse_size_limit, Cidr, DataRate, DomainPattern, Rate,
};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A directive value after type checking.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Duration(Duration),
    OptDuration(Option<Duration>),
    Durations(Vec<Duration>),
    Size(u64),
    SizeLimit(Option<u64>),
    Rate(Option<Rate>),
    DataRate(Option<DataRate>),
    Int(u32),
    IntLimit(Option<u32>),
    Port(u16),
    Text(String),
    OptText(Option<String>),
    List(Vec<String>),
    Path(PathBuf),
    Domain(DomainPattern),
    Choice(&'static str),
    SmtpHosts(Option<SmtpHosts>),
    DeliveryType(DeliveryType),
    DkimSign(DkimSign),
    NoMx(NoMxPolicy),
}

/// Converts a typed [`Value`] into a model field type.
pub(crate) trait FromValue: Sized {
    fn from_value(v: Value) -> Option<Self>;
}

macro_rules! from_value {
    ($t:ty, $($pat:pat => $e:expr),+) => {
        impl FromValue for $t {
            fn from_value(v: Value) -> Option<Self> {
                match v { $($pat => Some($e),)+ _ => None }
            }
        }
    };
}
from_value!(bool, Value::Bool(b) => b);
from_value!(Duration, Value::Duration(d) => d);
from_value!(Option<Duration>, Value::OptDuration(d) => d);
from_value!(Vec<Duration>, Value::Durations(d) => d);
from_value!(u64, Value::Size(n) => n);
from_value!(Option<u64>, Value::SizeLimit(n) => n);
from_value!(Option<Rate>, Value::Rate(r) => r);
from_value!(Option<DataRate>, Value::DataRate(r) => r);
from_value!(u32, Value::Int(n) => n);
from_value!(Option<u32>, Value::IntLimit(n) => n);
from_value!(u16, Value::Port(n) => n);
from_value!(String, Value::Text(s) => s);
from_value!(Option<String>, Value::OptText(s) => s, Value::Text(s) => Some(s));
from_value!(Vec<String>, Value::List(l) => l);
from_value!(PathBuf, Value::Path(p) => p);
from_value!(Option<SmtpHosts>, Value::SmtpHosts(h) => h);
from_value!(DeliveryType, Value::DeliveryType(t) => t);
from_value!(DkimSign, Value::DkimSign(t) => t);
from_value!(NoMxPolicy, Value::NoMx(t) => t);

/// Type-checks a directive's value according to its kind.
pub(crate) fn parse_kind(kind: Kind, line: &Line) -> Result<Value, String> {
    let kw = &line.keyword;
    if line.words.is_empty() {
        return Err(format!("`{kw}`: argument missing"));
    }
    let one = || -> Result<&str, String> {
        if line.words.len() == 1 {
            Ok(line.words[0].as_str())
        } else {
            Err(format!("`{kw}` takes a single value, got `{}`", line.value))
        }
    };
    let nonempty = |s: &str| -> Result<(), String> {
        if s.is_empty() {
            Err(format!("`{kw}`: empty value not allowed"))
        } else {
            Ok(())
        }
    };
    let e = |r: crate::error::ValueError| format!("`{kw}`: {r}");
    Ok(match kind {
        Kind::Custom => Value::None,
        Kind::Bool => Value::Bool(parse_bool(one()?).map_err(e)?),
        Kind::Duration => Value::Duration(parse_duration(one()?).map_err(e)?),
        Kind::DurationOrNever => Value::OptDuration(parse_duration_or_never(one()?).map_err(e)?),
        Kind::DurationList => Value::Durations(parse_duration_list(&line.value).map_err(e)?),
        Kind::Size => Value::Size(parse_size(one()?).map_err(e)?),
        Kind::SizeLimit => Value::SizeLimit(parse_size_limit(one()?).map_err(e)?),
        Kind::Rate => Value::Rate(parse_rate(one()?).map_err(e)?),
        Kind::DataRate => Value::DataRate(parse_data_rate(one()?).map_err(e)?),
        Kind::Int(min, max) => {
            let s = one()?;
            let n: u32 = s
                .parse()
                .map_err(|_| format!("`{kw}`: `{s}` is not a whole number"))?;
            if n < min || n > max {
                return Err(format!("`{kw}`: {n} is out of range ({min}..={max})"));
            }
            Value::Int(n)
        }
        Kind::IntLimit => {
            let s = one()?;
            if s.eq_ignore_ascii_case("unlimited") {
                Value::IntLimit(None)
            } else {
                let n: u32 = s
                    .parse()
                    .map_err(|_| format!("`{kw}`: `{s}` is not a whole number or `unlimited`"))?;
                Value::IntLimit(if n == 0 { None } else { Some(n) })
            }
        }
        Kind::Port => {
            let s = one()?;
            Value::Port(
                s.parse()
                    .map_err(|_| format!("`{kw}`: `{s}` is not a port number (0-65535)"))?,
            )
        }
        Kind::Text => {
            nonempty(&line.value)?;
            Value::Text(line.value.clone())
        }
        Kind::TextOrEmpty => Value::OptText(if line.value.is_empty() {
            None
        } else {
            Some(line.value.clone())
        }),
        Kind::Word => {
            let s = one()?;
            nonempty(s)?;
            Value::Text(s.to_string())
        }
        Kind::WordOrEmpty => {
            let s = one()?;
            Value::OptText(if s.is_empty() {
                None
            } else {
                Some(s.to_string())
            })
        }
        Kind::List => Value::List(split_list(&line.value)),
        Kind::Path => {
            let s = one()?;
            nonempty(s)?;
            Value::Path(resolve_path(&line.loc.base_dir(), s))
        }
        Kind::Email => {
            let s = one()?;
            if !s.contains('@') || s.starts_with('@') || s.ends_with('@') {
                return Err(format!("`{kw}`: `{s}` is not an email address"));
            }
            Value::Text(s.to_string())
        }
        Kind::Domain => Value::Domain(one()?.parse().map_err(e)?),
        Kind::Choice(opts) => {
            let s = one()?.to_ascii_lowercase();
            match opts.iter().find(|o| **o == s) {
                Some(o) => Value::Choice(o),
                None => {
                    return Err(format!(
                        "`{kw}`: `{}` is not one of {}",
                        line.words[0],
                        opts.join(", ")
                    ))
                }
            }
        }
        Kind::CidrInt | Kind::CidrRate | Kind::CidrDataRate => {
            if line.words.len() != 2 {
                return Err(format!(
                    "`{kw}` takes a network and a limit, e.g. `{kw} 10/8 5`"
                ));
            }
            line.words[0].parse::<Cidr>().map_err(e)?;
            let v = &line.words[1];
            match kind {
                Kind::CidrInt => {
                    if !v.eq_ignore_ascii_case("unlimited") {
                        v.parse::<u32>()
                            .map_err(|_| format!("`{kw}`: `{v}` is not a whole number"))?;
                    }
                }
                Kind::CidrRate => {
                    parse_rate(v).map_err(e)?;
                }
                _ => {
                    parse_data_rate(v).map_err(e)?;
                }
            }
            Value::None
        }
        Kind::DailyLimits => {
            for item in split_list(&line.value) {
                let ok = item.split_once('/').is_some_and(|(n, u)| {
                    n.parse::<u32>().is_ok()
                        && matches!(u.to_ascii_lowercase().as_str(), "d" | "day")
                });
                if !ok {
                    return Err(format!(
                        "`{kw}`: `{item}` is not a daily limit (e.g. 1/day,2/day)"
                    ));
                }
            }
            Value::None
        }
        Kind::SmtpHosts => Value::SmtpHosts(parse_smtp_hosts(&line.value).map_err(e)?),
        Kind::DeliveryType => Value::DeliveryType(match one()?.to_ascii_lowercase().as_str() {
            "smtp" => DeliveryType::Smtp,
            "pipe" => DeliveryType::Pipe,
            "file" => DeliveryType::File,
            "discard" => DeliveryType::Discard,
            "http-delivery" => DeliveryType::HttpDelivery,
            other => {
                return Err(format!(
                    "`{kw}`: `{other}` is not one of smtp, pipe, file, discard, http-delivery"
                ))
            }
        }),
        Kind::DkimSign => {
            let s = one()?;
            Value::DkimSign(if s.eq_ignore_ascii_case("if-x-dkim-options-present") {
                DkimSign::IfXDkimOptionsPresent
            } else if parse_bool(s).map_err(|_| {
                format!("`{kw}`: `{s}` is not one of yes, no, if-x-dkim-options-present")
            })? {
                DkimSign::Yes
            } else {
                DkimSign::No
            })
        }
        Kind::NoMx => {
            let s = one()?;
            Value::NoMx(if let Ok(b) = parse_bool(s) {
                if b {
                    NoMxPolicy::Immediately
                } else {
                    NoMxPolicy::Never
                }
            } else {
                match parse_duration_or_never(s) {
                    Ok(None) => NoMxPolicy::Never,
                    Ok(Some(d)) => NoMxPolicy::After(d),
                    Err(_) => {
                        return Err(format!(
                            "`{kw}`: `{s}` is not true, false, never or a time interval"
                        ))
                    }
                }
            })
        }
    })
}

/// Splits a comma list, tolerating spaces after commas; `""` gives an empty list.
pub(crate) fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses `smtp-hosts`: `h1, h2; [10.1.1.1]:2525; lookup-mx:other.domain`. Commas separate
/// hosts of one level, semicolons separate levels. `""` gives `None` (use DNS MX).
pub(crate) fn parse_smtp_hosts(v: &str) -> Result<Option<SmtpHosts>, crate::error::ValueError> {
    use crate::error::ValueError;
    if v.trim().is_empty() {
        return Ok(None);
    }
    let mut levels = Vec::new();
    for level in v.split(';') {
        let mut hosts = Vec::new();
        for h in level.split(',') {
            let h = h.trim();
            if h.is_empty() {
                return Err(ValueError::new(format!("`{v}` has an empty host entry")));
            }
            hosts.push(parse_smtp_host(h)?);
        }
        levels.push(hosts);
    }
    Ok(Some(SmtpHosts { levels }))
}

fn parse_smtp_host(h: &str) -> Result<SmtpHost, crate::error::ValueError> {
    use crate::error::ValueError;
    let bad = || {
        ValueError::new(format!(
            "`{h}` is not a host (name[:port], [ip][:port], lookup-mx:domain)"
        ))
    };
    let port_of = |p: &str| -> Result<u16, ValueError> {
        p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)
    };
    if let Some(dom) = crate::values::strip_prefix_ci(h, "lookup-mx:") {
        let dom = dom.trim();
        if dom.is_empty() || dom.contains(char::is_whitespace) {
            return Err(bad());
        }
        return Ok(SmtpHost::LookupMx(dom.to_ascii_lowercase()));
    }
    if let Some(rest) = h.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or_else(bad)?;
        let inner = crate::values::strip_prefix_ci(inner, "ipv6:").unwrap_or(inner);
        let ip: IpAddr = inner.parse().map_err(|_| bad())?;
        let port = match after {
            "" => None,
            p => Some(port_of(p.strip_prefix(':').ok_or_else(bad)?)?),
        };
        return Ok(SmtpHost::Ip { ip, port });
    }
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) => (n, Some(port_of(p)?)),
        None => (h, None),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err(bad());
    }
    Ok(SmtpHost::Name {
        name: name.to_ascii_lowercase(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_hosts() {
        let h = parse_smtp_hosts("h1, h2; [10.1.1.1]:2525; lookup-mx:other.example")
            .unwrap()
            .unwrap();
        assert_eq!(h.levels.len(), 3);
        assert_eq!(
            h.levels[0],
            vec![
                SmtpHost::Name {
                    name: "h1".into(),
                    port: None
                },
                SmtpHost::Name {
                    name: "h2".into(),
                    port: None
                },
            ]
        );
        assert_eq!(
            h.levels[1],
            vec![SmtpHost::Ip {
                ip: "10.1.1.1".parse().unwrap(),
                port: Some(2525)
            }]
        );
        assert_eq!(
            h.levels[2],
            vec![SmtpHost::LookupMx("other.example".into())]
        );
        let h = parse_smtp_hosts("[IPv6:2001:db8::1]:25, mx.example.com:587")
            .unwrap()
            .unwrap();
        assert_eq!(h.levels[0].len(), 2);
        assert_eq!(parse_smtp_hosts("").unwrap(), None);
        for bad in [
            "h1,,h2",
            "[1.2.3]:25",
            "h1:0",
            "h1:x",
            "[::1]x",
            "a b",
            "lookup-mx:",
        ] {
            assert!(parse_smtp_hosts(bad).is_err(), "{bad}");
        }
    }
}
