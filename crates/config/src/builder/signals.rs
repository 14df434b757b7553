//! `<signals>`, `<signals-filter>` and `<signals-service>`: SparkPost Signals uploads,
//! engagement tracking and petrel's own Signals service.

use super::extras::parse_key_line;
use super::*;
use std::path::PathBuf;

/// Default `event-dir` in `<signals>`.
const DEFAULT_SIGNALS_EVENT_DIR: &str = "/var/lib/petrel/signals";
/// Default `database` in `<signals-service>`.
const DEFAULT_SIGNALS_DATABASE: &str = "/var/lib/petrel/signals.db";

/// Parses `sender-or-from DOMAIN-PATTERN ACTION`; `None` when malformed. Spaces after the
/// commas of ACTION are tolerated.
fn parse_filter_rule(l: &Line) -> Option<SignalsFilterRule> {
    let pattern = l.words.first()?.parse::<DomainPattern>().ok()?;
    if l.words.len() < 2 {
        return None;
    }
    let a = split_list(&l.words[1..].join(" "));
    let action = match a.first().map(|x| x.to_ascii_lowercase()).as_deref() {
        Some("disable-signals") if a.len() == 1 => FilterAction::Disable,
        Some("enable-signals") if a.len() <= 2 => {
            let subaccount = match a.get(1) {
                None => None,
                Some(p) => {
                    let (k, v) = p.split_once('=')?;
                    if !k.trim().eq_ignore_ascii_case("subaccount") {
                        return None;
                    }
                    Some(v.trim().parse::<u64>().ok()?)
                }
            };
            FilterAction::Enable { subaccount }
        }
        _ => return None,
    };
    Some(SignalsFilterRule { pattern, action })
}

impl Builder<'_> {
    // ------------------------------------------------------------------ signals

    pub(super) fn signals_section(&mut self, s: &Section) {
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
            tracking: Tracking {
                listeners: Vec::new(),
                certificate: None,
                keys: Vec::new(),
                key_file: PathBuf::new(),
                open: true,
                initial_open: true,
                click: true,
                link_expiry: Duration::from_secs(366 * 86_400),
                trusted_proxies: Vec::new(),
            },
            custom_message_id_header: None,
            process_x_sp_subaccount_id: false,
            retain_x_sp_subaccount_id: false,
            privacy_policy: SignalsPrivacy::Retain,
            event_dir: PathBuf::from(DEFAULT_SIGNALS_EVENT_DIR),
            upload_interval: Duration::from_secs(10),
            upload: true,
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
                ("tracking-domain", Value::Text(t)) => match check_tracking_domain(&t) {
                    Ok(()) => {
                        if is_sparkpost_tracking_host(tracking_host(&t)) {
                            self.warn(&l.loc, format!("`tracking-domain {t}` is one of SparkPost's tracking hosts: they decode only links SparkPost signed, so every link petrel wraps for it would be a dead click (no redirect, no click event). Use a name of your own (e.g. `tracking-domain track.example.com`) whose DNS points at the address of petrel's `tracking-listener`, directly or through your HTTPS proxy"));
                        }
                        sig.tracking_domain = Some(t)
                    }
                    Err(why) => self.err(&l.loc, format!("`tracking-domain`: `{t}` {why}")),
                },
                ("tracking-listener", _) => match parse_listen_addr(l) {
                    Some(a) => sig.tracking.listeners.push(a),
                    None => self.err(
                        &l.loc,
                        format!(
                            "`tracking-listener`: `{}` is not ADDRESS:PORT (e.g. 127.0.0.1:8098 or [::1]:8098; port 1-65535)",
                            l.value
                        ),
                    ),
                },
                ("tracking-tls-certificate", _) => {
                    if let Some(c) = self.certificate(l, true) {
                        sig.tracking.certificate = Some(c);
                    }
                }
                ("tracking-key", _) => match parse_key_line(l) {
                    Ok((id, secret)) => {
                        if sig.tracking.keys.iter().any(|(k, _)| *k == id) {
                            self.err(&l.loc, format!("`tracking-key`: key id {id} is given twice"));
                        } else {
                            sig.tracking.keys.push((id, secret));
                        }
                    }
                    Err(why) => self.err(&l.loc, format!("`tracking-key`: {why}")),
                },
                ("tracking-key-file", Value::Path(p)) => sig.tracking.key_file = p,
                ("open-tracking", Value::Bool(b)) => sig.tracking.open = b,
                ("initial-open-tracking", Value::Bool(b)) => sig.tracking.initial_open = b,
                ("click-tracking", Value::Bool(b)) => sig.tracking.click = b,
                ("tracking-link-expiry", Value::Duration(x)) => {
                    if x < Duration::from_secs(3600) {
                        self.err(&l.loc, "`tracking-link-expiry` must be at least 1h (links in a delivered message must keep working)");
                        continue;
                    }
                    sig.tracking.link_expiry = x;
                }
                ("tracking-trusted-proxy", _) => {
                    match (l.words.len(), l.words[0].parse::<IpAddr>()) {
                        (1, Ok(ip)) => sig.tracking.trusted_proxies.push(ip),
                        _ => self.err(
                            &l.loc,
                            format!("`tracking-trusted-proxy`: `{}` is not an IP address", l.value),
                        ),
                    }
                }
                ("custom-message-id-header", Value::Text(t)) => {
                    sig.custom_message_id_header = Some(t)
                }
                ("process-x-sp-subaccount-id", Value::Bool(b)) => {
                    sig.process_x_sp_subaccount_id = b
                }
                ("retain-x-sp-subaccount-id", Value::Bool(b)) => sig.retain_x_sp_subaccount_id = b,
                ("event-dir", Value::Path(p)) => sig.event_dir = p,
                ("upload-interval", Value::Duration(x)) => {
                    if x.is_zero() {
                        self.err(&l.loc, "`upload-interval` must be greater than zero");
                        continue;
                    }
                    sig.upload_interval = x;
                }
                ("upload", Value::Bool(b)) => sig.upload = b,
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
        if sig.tracking.key_file.as_os_str().is_empty() {
            sig.tracking.key_file = sig
                .event_dir
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("tracking.key");
        }
        if sig.engagement_tracking == EngagementTracking::Sparkpost
            && sig.tracking_domain.is_none()
            && sig.tracking.listeners.is_empty()
        {
            // PowerMTA would use SparkPost's tracking host, whose link format is SparkPost's
            // own; petrel can only track through a host it runs or one proxied to it.
            let loc = mention_loc(s, "engagement-tracking").unwrap_or_else(|| s.loc.clone());
            self.warn(&loc, "`engagement-tracking sparkpost` has no `tracking-domain` or `tracking-listener`: petrel cannot use SparkPost's tracking host, so messages are sent without tracking until one of them is set");
        }
        self.data.signals = Some(sig);
    }

    pub(super) fn signals_filter_section(&mut self, s: &Section) {
        let name = Self::arg(s).to_string();
        if self.data.signals_filter(&name).is_some() {
            self.err(
                &s.loc,
                format!("`<signals-filter {name}>` is defined more than once"),
            );
        }
        let mut rules = Vec::new();
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
            match parse_filter_rule(l) {
                Some(r) => rules.push(r),
                None => self.err(&l.loc, format!("`sender-or-from`: `{}` is not `DOMAIN-PATTERN enable-signals[,subaccount=N]` or `DOMAIN-PATTERN disable-signals`", l.value)),
            }
        }
        self.data.signals_filters.push(SignalsFilter {
            name,
            rules,
            origin: origin(&s.loc),
        });
    }

    pub(super) fn signals_service_section(&mut self, s: &Section) {
        if self.data.signals_service.is_some() {
            self.err(&s.loc, "`<signals-service>` is defined more than once");
        }
        let mut listener = None;
        let mut database = PathBuf::from(DEFAULT_SIGNALS_DATABASE);
        let mut event_retention = Duration::from_secs(10 * 86_400);
        let mut metrics_retention = Duration::from_secs(183 * 86_400);
        let mut spam_trap_file = None;
        for c in &s.children {
            let l = match c {
                Node::Line(l) => l,
                Node::Section(sub) => {
                    self.open(sub, SIGSVC);
                    continue;
                }
            };
            let Some((d, v)) = self.check(l, SIGSVC) else {
                continue;
            };
            match (d.name, v) {
                ("listener", _) => {
                    match parse_listen_addr(l) {
                        Some(a) => listener = Some(a),
                        None => self.err(
                            &l.loc,
                            format!(
                                "`listener`: `{}` is not ADDRESS:PORT (e.g. 127.0.0.1:8090 or [::1]:8090; port 1-65535)",
                                l.value
                            ),
                        ),
                    }
                }
                ("database", Value::Path(p)) => database = p,
                ("spam-trap-file", Value::Path(p)) => spam_trap_file = Some(p),
                ("event-retention" | "metrics-retention", Value::Duration(v)) => {
                    if v < Duration::from_secs(3600) {
                        self.err(&l.loc, format!("`{}`: keep data at least 1h", d.name));
                    } else if d.name == "event-retention" {
                        event_retention = v;
                    } else {
                        metrics_retention = v;
                    }
                }
                _ => {}
            }
        }
        match listener {
            Some(listener) => {
                self.data.signals_service = Some(SignalsService {
                    listener,
                    database,
                    event_retention,
                    metrics_retention,
                    spam_trap_file,
                    origin: origin(&s.loc),
                })
            }
            None if !mentions(s, "listener") => {
                self.err(
                    &s.loc,
                    "`<signals-service>` needs a `listener ADDRESS:PORT`",
                );
            }
            None => {}
        }
    }
}

/// One `ADDRESS:PORT` word with a non-zero port.
fn parse_listen_addr(l: &Line) -> Option<SocketAddr> {
    match l.words.as_slice() {
        [w] => w.parse::<SocketAddr>().ok().filter(|a| a.port() != 0),
        _ => None,
    }
}

/// A tracking domain is a host name (optionally with a port and path prefix) or an http(s)
/// URL without query or fragment, since it becomes the start of every tracked link.
fn check_tracking_domain(t: &str) -> Result<(), &'static str> {
    let rest = without_scheme(t);
    if t.contains("://") && rest.len() == t.len() {
        return Err("is not a host name or an http(s) URL");
    }
    if tracking_host(t).is_empty() {
        return Err("has no host name");
    }
    if rest
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b"?#\"'<>`\\".contains(&b))
    {
        return Err("must be ASCII without spaces, quotes, `?` or `#`");
    }
    Ok(())
}

/// A `tracking-domain` value without its `http(s)://`.
fn without_scheme(t: &str) -> &str {
    t.strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))
        .unwrap_or(t)
}

/// The host name of a `tracking-domain` value (without scheme, port or path).
fn tracking_host(t: &str) -> &str {
    without_scheme(t).split(['/', ':']).next().unwrap_or("")
}

/// SparkPost's own tracking hosts (sparkpost-spec §5.1): `spgo.io` and every name under it
/// (`eu.spgo.io`, `v2.spgo.io`, the article's `pmta.eu.spgo.io`, …) and the Enterprise
/// `<tenant>.et.e.sparkpost.com`. Links there are decoded by SparkPost, never by petrel.
fn is_sparkpost_tracking_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    ["spgo.io", "et.e.sparkpost.com"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}
