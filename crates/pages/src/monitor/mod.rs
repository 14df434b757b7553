//! The MTA monitor on the management port, after PowerMTA's web monitor: status and
//! counters at `/`, queues (`/ui/queues`), domains, virtual MTAs and pools, jobs. Pause,
//! resume and retry-now buttons appear only for clients whose `http-access` level lets them
//! run commands, and the command itself goes through the management API, which checks that
//! level again; a read-only client that forges the form is refused there.
//!
//! The pages read only the management API's JSON endpoints, as the answer types of
//! `petrel-mgmt-api` (a field renamed there breaks this build, not a column), in-process
//! with the client's own address and `Host` (so `http-access` judges the person, not the
//! page). The bar links to the Signals pages, and each job to its campaign there.
//!
//! Commands are same-origin POST forms carrying a token tied to the client's address and
//! checked with the request's `Origin`: another site cannot make a trusted browser pause a
//! queue.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use petrel_mgmt_api::{self as mgmt, paths, Data};
use ring::rand::SecureRandom as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::api::{base_url, Client, Credential, Failure};
use crate::format;
use crate::web::{self, qs, Chrome, NavItem};

/// What the monitor needs to know beyond the API.
#[derive(Debug, Clone, Default)]
pub struct MonitorOptions {
    /// The Signals service's listener, for the link to its pages (none: no link).
    pub signals: Option<SocketAddr>,
}

#[derive(Clone)]
struct Monitor {
    api: Router,
    signals: Option<SocketAddr>,
    /// Keys the command tokens; new at every start.
    key: Arc<ring::hmac::Key>,
}

/// The management API's router with the monitor's pages added at `/` and under `/ui/`.
/// `api` keeps answering its own paths unchanged; the pages call it in-process.
pub fn with_monitor(api: Router, options: MonitorOptions) -> Router {
    let mut secret = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut secret)
        .expect("the OS random generator works");
    let state = Monitor {
        api: api.clone(),
        signals: options.signals,
        key: Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret)),
    };
    let pages = Router::new()
        .route("/", get(overview))
        .route("/ui", get(overview))
        .route("/ui/queues", get(queues))
        .route("/ui/domains", get(domains))
        .route("/ui/vmtas", get(vmtas))
        .route("/ui/jobs", get(jobs))
        .route("/ui/command", post(command))
        .merge(crate::assets::routes())
        .with_state(state)
        .layer(middleware::from_fn(web::headers));
    pages.merge(api)
}

const NAV: &[(&str, &str)] = &[
    ("Status", "/"),
    ("Queues", "/ui/queues"),
    ("Domains", "/ui/domains"),
    ("Virtual MTAs", "/ui/vmtas"),
    ("Jobs", "/ui/jobs"),
];

/// One page view: the client's address, its API client and what `http-access` allows it.
struct View {
    api: Client,
    peer: SocketAddr,
    base: String,
    control: bool,
    level: String,
    token: String,
    /// The Signals service's pages, `http://host:port` (none: not configured).
    signals: Option<String>,
}

impl Monitor {
    /// Asks the API what this client may do; a client without access gets the API's 403.
    async fn view(&self, peer: SocketAddr, headers: &HeaderMap) -> Result<View, Response> {
        let mut api = Client::new(self.api.clone(), Credential::Peer(peer), headers);
        let base = base_url(headers);
        let host = base.trim_start_matches("http://").to_string();
        let access = match api.get_as::<Data<mgmt::Access>>(paths::ACCESS).await {
            Ok(a) => a.data,
            Err(f) => {
                let mut c = Chrome::bare("No access", "MTA monitor", "/");
                c.calls = api.call_views(&base);
                return Err(failure_page(c, f));
            }
        };
        let signals = self.signals.map(|a| {
            if a.ip().is_unspecified() {
                // Listening everywhere: the same host name the monitor was reached by.
                let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
                format!("http://{name}:{}", a.port())
            } else {
                format!("http://{a}")
            }
        });
        Ok(View {
            control: access.control,
            level: access.level,
            token: token(&self.key, peer),
            api,
            peer,
            base,
            signals,
        })
    }
}

impl Monitor {
    /// The view of a page and the API's answer at `path`, or the page explaining why not.
    async fn read<T: DeserializeOwned>(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
        path: &str,
        (title, current): (&str, &str),
    ) -> Result<(View, T), Response> {
        let mut v = self.view(peer, headers).await?;
        match v.api.get_as::<Data<T>>(path).await {
            Ok(resp) => Ok((v, resp.data)),
            Err(f) => Err(failure_page(v.chrome(title, current), f)),
        }
    }
}

impl View {
    fn chrome(&self, title: &str, current: &str) -> Chrome {
        let mut c = Chrome::bare(title, "MTA monitor", "/");
        c.nav = NAV
            .iter()
            .map(|(label, href)| NavItem {
                label,
                href: href.to_string(),
                current: *href == current,
            })
            .collect();
        if let Some(s) = &self.signals {
            c.aside
                .push(("Signals →".into(), format!("{s}/signals/health-score")));
        }
        c.calls = self.api.call_views(&self.base);
        c
    }

    /// A campaign's Health Score page on the Signals service (a job is a campaign there).
    fn campaign_link(&self, job: &str) -> Option<String> {
        let s = self.signals.as_ref()?;
        Some(format!(
            "{s}/signals/health-score/campaign_id/{}",
            web::path_segment(job)
        ))
    }

    /// What the access note under each heading says.
    fn access_note(&self) -> String {
        if self.control {
            format!(
                "Your address {} has {} access: you may pause, resume and retry queues and jobs.",
                self.peer.ip(),
                self.level
            )
        } else {
            format!(
                "Your address {} has {} access: you can look, not change (an http-access line \
                 granting operator or admin allows commands).",
                self.peer.ip(),
                self.level
            )
        }
    }
}

fn failure_page(chrome: Chrome, f: Failure) -> Response {
    let heading = match f.status {
        StatusCode::FORBIDDEN => "Your address may not do this",
        StatusCode::SERVICE_UNAVAILABLE => "The delivery engine is not running",
        StatusCode::BAD_REQUEST => "The command was not valid",
        _ => "The management API could not answer",
    };
    web::error_page(
        chrome,
        f.status,
        heading,
        f.message,
        Some(("Status".into(), "/".into())),
    )
}

/// The command token of a client: HMAC of its address under the process's key. A page
/// from this monitor carries it; a page elsewhere cannot read it.
fn token(key: &ring::hmac::Key, peer: SocketAddr) -> String {
    ring::hmac::sign(key, peer.ip().to_string().as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn token_ok(key: &ring::hmac::Key, peer: SocketAddr, given: &str) -> bool {
    let bytes: Option<Vec<u8>> = (0..given.len())
        .step_by(2)
        .map(|i| {
            given
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    bytes.is_some_and(|b| ring::hmac::verify(key, peer.ip().to_string().as_bytes(), &b).is_ok())
}

/// Seconds since the epoch now.
fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// `in 4 min` / `3 min ago`, and the time itself (`14:05:09 UTC`).
fn when(t: i64) -> (String, String) {
    let d = t - now();
    let abs = jiff::Timestamp::from_second(t)
        .map(|ts| ts.strftime("%H:%M:%S UTC").to_string())
        .unwrap_or_default();
    let span = |s: i64| {
        if s < 90 {
            format!("{s} s")
        } else if s < 5400 {
            format!("{} min", s / 60)
        } else {
            format!("{:.1} h", s as f64 / 3600.0)
        }
    };
    let relative = if d >= 0 {
        format!("in {}", span(d))
    } else {
        format!("{} ago", span(-d))
    };
    (relative, abs)
}

/// `3 d 4 h`, `5 h 2 min`, `4 min`.
fn uptime(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min {} s", secs % 60)
    }
}

/// A count with thousands separators.
fn n(v: impl Into<u64>) -> String {
    format::int(i64::try_from(v.into()).unwrap_or(i64::MAX))
}

/// KiB as the API counts them, as a size for people.
fn kib(kb: u64) -> String {
    format::bytes(kb as f64 * 1024.0)
}

/// A queue row.
struct QueueRow {
    pub name: String,
    pub domain: String,
    pub vmta: String,
    pub recipients: String,
    pub messages: String,
    pub size: String,
    pub connections: String,
    pub backoff: bool,
    pub paused: bool,
    pub error: String,
    /// When retry mode ends: relative, and the time itself.
    pub retry: Option<(String, String)>,
}

fn queue_rows(queues: Vec<mgmt::QueueRow>, filter: &str) -> Vec<QueueRow> {
    let f = filter.to_lowercase();
    queues
        .into_iter()
        .filter(|q| f.is_empty() || q.queue.to_lowercase().contains(&f))
        .map(|q| QueueRow {
            recipients: n(q.rcp),
            messages: n(q.msg),
            size: kib(q.kb),
            connections: n(q.conn),
            backoff: q.mode == mgmt::Mode::Backoff,
            paused: q.paused,
            error: q.last_error.unwrap_or_default(),
            retry: q
                .retry_until
                .map(|t| when(i64::try_from(t).unwrap_or(i64::MAX))),
            name: q.queue,
            domain: q.domain,
            vmta: q.vmta,
        })
        .collect()
}

/// A stat at the top of the status page.
struct Stat {
    pub label: &'static str,
    pub value: String,
}

/// One counter section of `/status`.
struct Section {
    pub name: String,
    pub rows: Vec<(String, String)>,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    done: Option<String>,
    target: Option<String>,
    matched: Option<String>,
    q: Option<String>,
}

/// The sentence confirming a command, built from fixed words and the target.
fn done_note(q: &PageQuery) -> Option<String> {
    let target = q.target.as_deref().unwrap_or("");
    let matched = q.matched.as_deref().unwrap_or("");
    let what = match q.done.as_deref()? {
        "pause" => format!("Paused {matched} queue(s) matching {target}."),
        "resume" => format!("Resumed {matched} queue(s) matching {target}."),
        "schedule" => format!("Scheduled {matched} queue(s) matching {target} for a retry now."),
        "pause-job" => format!("Paused job {target}."),
        "resume-job" => format!("Resumed job {target}."),
        _ => return None,
    };
    Some(what)
}

#[derive(Template)]
#[template(path = "monitor/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    host_name: String,
    version: String,
    started: String,
    up: String,
    stats: Vec<Stat>,
    sections: Vec<Section>,
    queues: Vec<QueueRow>,
    queue_count: usize,
    v: View,
    done: Option<String>,
}

async fn overview(
    State(m): State<Monitor>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let mut v = match m.view(peer, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let status = match v.api.get_as::<Data<mgmt::Status>>(paths::STATUS).await {
        Ok(s) => s.data,
        Err(f) => return failure_page(v.chrome("Status", "/"), f),
    };
    let queues = match v.api.get_as::<Data<mgmt::Queues>>(paths::QUEUES).await {
        Ok(q) => q.data.queues,
        Err(f) => return failure_page(v.chrome("Status", "/"), f),
    };
    let delivery = status.delivery.unwrap_or_default();
    let spool = status.spool;
    let stat = |label, value| Stat { label, value };
    let stats = vec![
        stat("Messages in", n(status.traffic.total.inbound.msg)),
        stat("Recipients in", n(status.traffic.total.inbound.rcp)),
        stat("Delivered", n(delivery.delivered)),
        stat("Bounced", n(delivery.bounced)),
        stat("Deferrals", n(delivery.deferred)),
        stat("Recipients queued", n(spool.recipients)),
        stat("Messages in spool", n(spool.messages)),
        stat("Spool size", format::bytes(spool.bytes as f64)),
        stat("Connections in", n(status.conn.smtp_in.total)),
        stat("Commands refused", n(status.rejections)),
    ];
    let sections = status
        .counters
        .into_iter()
        .map(|(name, values)| Section {
            name,
            rows: values.into_iter().map(|(k, x)| (k, n(x))).collect(),
        })
        .collect();
    let all = queue_rows(queues, "");
    let started = i64::try_from(status.startup_time).unwrap_or(0);
    let page = OverviewPage {
        chrome: v.chrome("Status", "/"),
        host_name: status.host_name,
        version: status.product.version,
        started: jiff::Timestamp::from_second(started)
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default(),
        up: uptime(i64::try_from(status.uptime_seconds).unwrap_or(0)),
        stats,
        sections,
        queue_count: all.len(),
        queues: all.into_iter().take(10).collect(),
        done: done_note(&q),
        v,
    };
    web::html(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "monitor/queues.html")]
struct QueuesPage {
    chrome: Chrome,
    queues: Vec<QueueRow>,
    filter: String,
    v: View,
    done: Option<String>,
}

async fn queues(
    State(m): State<Monitor>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let (v, resp) = match m
        .read::<mgmt::Queues>(peer, &headers, paths::QUEUES, ("Queues", "/ui/queues"))
        .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let filter = q.q.clone().unwrap_or_default();
    let page = QueuesPage {
        chrome: v.chrome("Queues", "/ui/queues"),
        queues: queue_rows(resp.queues, &filter),
        filter,
        done: done_note(&q),
        v,
    };
    web::html(StatusCode::OK, &page)
}

/// A second table under the first: title, headings (text, numeric) and rows.
type ExtraTable = (String, Vec<(&'static str, bool)>, Vec<Vec<String>>);

#[derive(Template)]
#[template(path = "monitor/table.html")]
struct TablePage {
    chrome: Chrome,
    heading: &'static str,
    about: String,
    headings: Vec<(&'static str, bool)>,
    rows: Vec<Vec<String>>,
    empty: &'static str,
    extra: Option<ExtraTable>,
}

async fn domains(
    State(m): State<Monitor>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let (v, resp) = match m
        .read::<mgmt::Domains>(peer, &headers, paths::DOMAINS, ("Domains", "/ui/domains"))
        .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let rows = resp
        .domains
        .into_iter()
        .map(|d| vec![d.domain, n(d.rcp), n(d.msg), kib(d.kb)])
        .collect();
    let page = TablePage {
        chrome: v.chrome("Domains", "/ui/domains"),
        heading: "Domains",
        about: "Recipients waiting per destination domain, over every virtual MTA.".into(),
        headings: vec![
            ("Domain", false),
            ("Recipients", true),
            ("Messages", true),
            ("Size", true),
        ],
        rows,
        empty: "No mail is waiting for any domain.",
        extra: None,
    };
    web::html(StatusCode::OK, &page)
}

async fn vmtas(
    State(m): State<Monitor>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let (v, resp) = match m
        .read::<mgmt::Vmtas>(peer, &headers, paths::VMTAS, ("Virtual MTAs", "/ui/vmtas"))
        .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let rows = resp
        .vmtas
        .into_iter()
        .map(|x| vec![x.name, n(x.domains), n(x.recipients), n(x.connections)])
        .collect();
    let pools: Vec<Vec<String>> = resp
        .pools
        .into_iter()
        .map(|p| vec![p.name, p.members.join(", ")])
        .collect();
    let page = TablePage {
        chrome: v.chrome("Virtual MTAs", "/ui/vmtas"),
        heading: "Virtual MTAs",
        about: "Each virtual MTA with the queues (destination domains) it has work for.".into(),
        headings: vec![
            ("Virtual MTA", false),
            ("Queues", true),
            ("Recipients", true),
            ("Connections", true),
        ],
        rows,
        empty: "No virtual MTA is configured or busy.",
        extra: Some((
            "Pools".into(),
            vec![("Pool", false), ("Members", false)],
            pools,
        )),
    };
    web::html(StatusCode::OK, &page)
}

/// A job row.
struct JobRow {
    pub job: String,
    pub recipients: String,
    pub paused: bool,
    /// Its campaign's Health Score page.
    pub signals: Option<String>,
}

#[derive(Template)]
#[template(path = "monitor/jobs.html")]
struct JobsPage {
    chrome: Chrome,
    jobs: Vec<JobRow>,
    v: View,
    done: Option<String>,
}

async fn jobs(
    State(m): State<Monitor>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let (v, resp) = match m
        .read::<mgmt::Jobs>(peer, &headers, paths::JOBS, ("Jobs", "/ui/jobs"))
        .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let jobs = resp
        .jobs
        .into_iter()
        .map(|j| JobRow {
            signals: v.campaign_link(&j.job),
            job: j.job,
            recipients: n(j.recipients),
            paused: j.paused,
        })
        .collect();
    let page = JobsPage {
        chrome: v.chrome("Jobs", "/ui/jobs"),
        jobs,
        done: done_note(&q),
        v,
    };
    web::html(StatusCode::OK, &page)
}

#[derive(Deserialize)]
struct CommandForm {
    token: String,
    action: String,
    target: String,
    back: Option<String>,
}

/// `POST /ui/command`: a button of the monitor. Checks the origin and the token, then asks
/// the management API (which applies `http-access`) and returns to the page it came from.
async fn command(
    State(m): State<Monitor>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<CommandForm>,
) -> Response {
    let chrome = || Chrome::bare("Command refused", "MTA monitor", "/");
    if !web::same_origin(&headers) || !token_ok(&m.key, peer, &f.token) {
        return web::error_page(
            chrome(),
            StatusCode::FORBIDDEN,
            "This command did not come from the monitor's own page",
            "Commands are accepted only from a page of this monitor (a form on another site, \
             or a page from before a restart, is refused). Open the page again and retry.",
            Some(("Queues".into(), "/ui/queues".into())),
        );
    }
    let (path, param) = match f.action.as_str() {
        "pause" => (paths::PAUSE_QUEUE, "queue"),
        "resume" => (paths::RESUME_QUEUE, "queue"),
        "schedule" => (paths::SCHEDULE, "queue"),
        "pause-job" => (paths::PAUSE_JOB, "jobId"),
        "resume-job" => (paths::RESUME_JOB, "jobId"),
        other => {
            return web::error_page(
                chrome(),
                StatusCode::BAD_REQUEST,
                "Unknown command",
                format!("“{other}” is not a command of the monitor."),
                None,
            )
        }
    };
    let mut api = Client::new(m.api.clone(), Credential::Peer(peer), &headers);
    let target = f.target.trim();
    let asked = format!("{path}?{}", qs([(param, target)]));
    match api.post_as::<Data<mgmt::CommandResult>>(&asked).await {
        Ok(resp) => {
            let back = f
                .back
                .as_deref()
                .filter(|b| b.starts_with('/') && !b.starts_with("//"))
                .unwrap_or("/ui/queues");
            let back = back.split('?').next().unwrap_or("/ui/queues");
            let matched = resp.data.matched.map(|m| m.to_string()).unwrap_or_default();
            let to = format!(
                "{back}?{}",
                qs([
                    ("done", f.action.as_str()),
                    ("target", target),
                    ("matched", matched.as_str()),
                ])
            );
            (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
        }
        Err(fail) => {
            let mut c = chrome();
            c.calls = api.call_views(&base_url(&headers));
            failure_page(c, fail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_belong_to_one_address() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k");
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:5000".parse().unwrap();
        let t = token(&key, a);
        assert!(token_ok(&key, a, &t));
        // Another port of the same client is the same person; another address is not.
        assert!(token_ok(&key, "127.0.0.1:6000".parse().unwrap(), &t));
        assert!(!token_ok(&key, b, &t));
        assert!(!token_ok(&key, a, "00"));
        assert!(!token_ok(&key, a, "zz"));
    }

    #[test]
    fn confirmations_are_fixed_sentences() {
        let q = PageQuery {
            done: Some("pause".into()),
            target: Some("gmail.com/*".into()),
            matched: Some("2".into()),
            q: None,
        };
        assert_eq!(
            done_note(&q).unwrap(),
            "Paused 2 queue(s) matching gmail.com/*."
        );
        let q = PageQuery {
            done: Some("<b>hi</b>".into()),
            ..PageQuery::default()
        };
        assert_eq!(done_note(&q), None);
        assert_eq!(uptime(3 * 86_400 + 4 * 3600), "3 d 4 h");
    }
}
