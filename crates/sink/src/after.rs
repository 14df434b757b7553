//! What happens to an accepted message later: out-of-band bounces and complaints sent back
//! by SMTP to `--return-to`, and opens, clicks and unsubscribes fetched over HTTP(S) from
//! loopback addresses only. Each delayed action is a task that sleeps, acts and counts;
//! [`crate::counts::Stats`] tracks how many are pending, so a test can wait until the sink
//! is done.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use petrel_smtp_client::{
    ClientOptions, Connection, RecipientSpec, Timeouts, TlsMode, Transaction,
};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::behaviour::Engagement;
use crate::counts::{AtomicCounts, Stats};
use crate::page::{html_part, page};
use crate::provider::{look, Style};
use crate::reports::{arf, dsn, Original};
use crate::settings::{Delays, Settings};

/// One recipient's accepted copy of a message, kept for what happens to it later.
pub struct Copy {
    /// The message as received.
    pub message: Arc<[u8]>,
    /// Its return path.
    pub mail_from: String,
    /// The recipient.
    pub rcpt: String,
    /// Where it came from.
    pub client: IpAddr,
    /// When it was accepted.
    pub arrival: SystemTime,
    /// The recipient's provider style.
    pub style: Style,
    /// The client address's counters.
    pub ip: Arc<AtomicCounts>,
    /// The campaign's counters, when the message has an `X-Job`.
    pub campaign: Option<Arc<AtomicCounts>>,
}

impl Copy {
    fn original(&self) -> Original<'_> {
        Original {
            message: &self.message,
            mail_from: &self.mail_from,
            rcpt: &self.rcpt,
            client: self.client,
            arrival: self.arrival,
            style: self.style,
        }
    }

    fn count(&self, stats: &Stats, field: impl Fn(&AtomicCounts) -> &std::sync::atomic::AtomicU64) {
        stats
            .scope(&self.ip, self.campaign.as_deref())
            .add(1, field);
    }
}

/// Which report a [`Report`] is, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReportKind {
    Oob,
    Fbl,
}

/// A DSN or ARF report waiting for the sender task.
struct Report {
    kind: ReportKind,
    to: String,
    from: String,
    body: Vec<u8>,
    copy: Arc<Copy>,
}

/// How an HTTP fetch went.
#[derive(Debug, PartialEq, Eq)]
enum Fetched {
    /// The server answered with this status.
    Answered(u16),
    /// Not tried (why).
    Skipped(String),
    /// Tried and failed (why).
    Failed(String),
}

/// The delayed actions of the whole sink: one per process.
pub struct Afterwards {
    stats: Arc<Stats>,
    delays: Delays,
    host_name: String,
    feedback_to: Option<String>,
    reports: Option<mpsc::UnboundedSender<Report>>,
    http: reqwest::Client,
    next_id: AtomicU64,
}

impl Afterwards {
    /// Starts the report sender (when there is a `--return-to`); must run inside the
    /// runtime.
    pub fn start(settings: &Settings, stats: Arc<Stats>) -> anyhow::Result<Arc<Afterwards>> {
        let reports = settings.return_to.map(|addr| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(send_reports(
                addr,
                settings.host_name.clone(),
                rx,
                stats.clone(),
            ));
            tx
        });
        Ok(Arc::new(Afterwards {
            stats,
            delays: settings.delays,
            host_name: settings.host_name.clone(),
            feedback_to: settings.feedback_to.clone(),
            reports,
            http: http_client(&settings.user_agent)?,
            next_id: AtomicU64::new(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(1, |d| d.as_micros() as u64),
            ),
        }))
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// After `delays.oob`, a DSN saying the mailbox does not exist goes to the copy's
    /// return path.
    pub fn bounce_later(self: &Arc<Self>, copy: Arc<Copy>) {
        let me = self.clone();
        self.stats.pending_start();
        tokio::spawn(async move {
            tokio::time::sleep(me.delays.oob).await;
            let body = dsn(&copy.original(), &me.host_name, SystemTime::now(), me.id());
            let to = copy.mail_from.clone();
            if to.is_empty() {
                me.skip(
                    &copy,
                    "out-of-band bounce of a message with a null return path",
                );
                return;
            }
            me.queue_report(Report {
                kind: ReportKind::Oob,
                to,
                from: String::new(),
                body,
                copy,
            });
        });
    }

    /// Schedules the copy's complaint, reading and unsubscribing.
    pub fn engage(self: &Arc<Self>, copy: Arc<Copy>, e: Engagement) {
        if e.fbl {
            let me = self.clone();
            let copy = copy.clone();
            self.stats.pending_start();
            tokio::spawn(async move {
                tokio::time::sleep(me.delays.fbl).await;
                let Some(to) = me.feedback_to.clone() else {
                    me.skip(&copy, "complaint: no --feedback-to");
                    return;
                };
                let body = arf(
                    &copy.original(),
                    &to,
                    &me.host_name,
                    SystemTime::now(),
                    me.id(),
                );
                let from = sender_of(look(copy.style).arf_from);
                me.queue_report(Report {
                    kind: ReportKind::Fbl,
                    to,
                    from,
                    body,
                    copy,
                });
            });
        }
        if e.open || e.click {
            let me = self.clone();
            let copy = copy.clone();
            self.stats.pending_start();
            tokio::spawn(async move {
                tokio::time::sleep(me.delays.open).await;
                me.read(&copy, e.click).await;
                me.stats.pending_done();
            });
        }
        if e.unsub {
            let me = self.clone();
            self.stats.pending_start();
            tokio::spawn(async move {
                tokio::time::sleep(me.delays.unsub).await;
                me.unsubscribe(&copy).await;
                me.stats.pending_done();
            });
        }
    }

    fn queue_report(&self, r: Report) {
        let copy = r.copy.clone();
        match &self.reports {
            Some(tx) => {
                if tx.send(r).is_err() {
                    self.fail(&copy, "report sender stopped");
                }
            }
            None => self.skip(&copy, "report: no --return-to"),
        }
    }

    /// Counts a skipped action and ends it.
    fn skip(&self, copy: &Copy, why: &str) {
        info!(rcpt = copy.rcpt, "skipped: {why}");
        copy.count(&self.stats, |c| &c.skipped);
        self.stats.pending_done();
    }

    /// Counts a failed action and ends it.
    fn fail(&self, copy: &Copy, why: &str) {
        warn!(rcpt = copy.rcpt, "failed: {why}");
        copy.count(&self.stats, |c| &c.failed);
        self.stats.pending_done();
    }

    /// Opens the message (fetches its images), then, for a click, follows a link.
    async fn read(&self, copy: &Copy, click: bool) {
        let Some(html) = html_part(&copy.message) else {
            info!(
                rcpt = copy.rcpt,
                "skipped: open: the message has no HTML part"
            );
            copy.count(&self.stats, |c| &c.skipped);
            return;
        };
        let p = page(&html);
        let mut answered = 0;
        for src in &p.images {
            match self.fetch(src).await {
                Fetched::Answered(_) => answered += 1,
                other => self.log_fetch(copy, "image", src, &other),
            }
        }
        if answered > 0 {
            copy.count(&self.stats, |c| &c.open);
        } else if p.images.is_empty() {
            info!(
                rcpt = copy.rcpt,
                "skipped: open: no images in the HTML part"
            );
            copy.count(&self.stats, |c| &c.skipped);
        } else {
            copy.count(&self.stats, |c| &c.failed);
        }
        if !click {
            return;
        }
        let wait = self.delays.click.saturating_sub(self.delays.open);
        tokio::time::sleep(wait).await;
        let Some(link) = p.click() else {
            info!(rcpt = copy.rcpt, "skipped: click: no link to follow");
            copy.count(&self.stats, |c| &c.skipped);
            return;
        };
        let link = link.to_string();
        self.count_fetch(copy, "click", &link, |c| &c.click).await;
    }

    /// Follows the unsubscribe link.
    async fn unsubscribe(&self, copy: &Copy) {
        let link =
            html_part(&copy.message).and_then(|h| page(&h).unsubscribe().map(str::to_string));
        let Some(link) = link else {
            info!(rcpt = copy.rcpt, "skipped: unsub: no unsubscribe link");
            copy.count(&self.stats, |c| &c.skipped);
            return;
        };
        self.count_fetch(copy, "unsub", &link, |c| &c.unsub).await;
    }

    async fn count_fetch(
        &self,
        copy: &Copy,
        what: &str,
        url: &str,
        field: impl Fn(&AtomicCounts) -> &std::sync::atomic::AtomicU64,
    ) {
        match self.fetch(url).await {
            Fetched::Answered(status) => {
                debug!(rcpt = copy.rcpt, "{what}: {url} answered {status}");
                copy.count(&self.stats, field);
            }
            other => {
                self.log_fetch(copy, what, url, &other);
                match other {
                    Fetched::Skipped(_) => copy.count(&self.stats, |c| &c.skipped),
                    _ => copy.count(&self.stats, |c| &c.failed),
                }
            }
        }
    }

    fn log_fetch(&self, copy: &Copy, what: &str, url: &str, f: &Fetched) {
        match f {
            Fetched::Skipped(why) => info!(rcpt = copy.rcpt, "skipped: {what} {url}: {why}"),
            Fetched::Failed(why) => warn!(rcpt = copy.rcpt, "failed: {what} {url}: {why}"),
            Fetched::Answered(_) => {}
        }
    }

    /// GET on a loopback URL. An answer of 400 or more counts as a failure: the tracker
    /// did not take the hit.
    async fn fetch(&self, url: &str) -> Fetched {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Fetched::Skipped("not a URL".into());
        };
        if !is_loopback(&parsed) {
            return Fetched::Skipped("not a loopback address".into());
        }
        match self.http.get(parsed).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                // Read the body as a browser would, so the server sees a complete exchange.
                let _ = r.bytes().await;
                if status >= 400 {
                    Fetched::Failed(format!("HTTP {status}"))
                } else {
                    Fetched::Answered(status)
                }
            }
            Err(e) => Fetched::Failed(e.to_string()),
        }
    }
}

/// The address inside a `Name <address>` header value.
fn sender_of(from: &str) -> String {
    match (from.rfind('<'), from.rfind('>')) {
        (Some(s), Some(e)) if s < e => from[s + 1..e].to_string(),
        _ => from.trim().to_string(),
    }
}

/// `127.0.0.0/8`, `::1` and `localhost` only: the sink never sends traffic elsewhere.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// A browser-like client: its User-Agent, no proxy from the environment, any certificate
/// (tracking hosts on loopback use test certificates), and redirects followed only while
/// they stay on loopback.
fn http_client(user_agent: &str) -> anyhow::Result<reqwest::Client> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 10 {
            attempt.error("too many redirects")
        } else if is_loopback(attempt.url()) {
            attempt.follow()
        } else {
            info!(
                "not following a redirect to {}: not a loopback address",
                attempt.url()
            );
            attempt.stop()
        }
    });
    Ok(reqwest::Client::builder()
        .user_agent(user_agent)
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .redirect(policy)
        .timeout(Duration::from_secs(20))
        .build()?)
}

/// Sends the reports one after another over one reused connection to `addr`, with a few
/// retries for temporary failures; counts each as sent or failed.
async fn send_reports(
    addr: SocketAddr,
    host_name: String,
    mut rx: mpsc::UnboundedReceiver<Report>,
    stats: Arc<Stats>,
) {
    let mut opts = ClientOptions::new(host_name.clone());
    opts.starttls = TlsMode::Off;
    opts.timeouts = Timeouts {
        connect: Duration::from_secs(10),
        greeting: Duration::from_secs(30),
        command: Duration::from_secs(30),
        data_send: Duration::from_secs(30),
        data_termination: Duration::from_secs(60),
    };
    let mut conn: Option<Connection> = None;
    while let Some(r) = rx.recv().await {
        match deliver(&mut conn, addr, &host_name, &opts, &r).await {
            Ok(()) => {
                debug!(rcpt = r.copy.rcpt, "{:?} report sent to <{}>", r.kind, r.to);
                match r.kind {
                    ReportKind::Oob => r.copy.count(&stats, |c| &c.oob),
                    ReportKind::Fbl => r.copy.count(&stats, |c| &c.fbl),
                }
            }
            Err(e) => {
                warn!(
                    rcpt = r.copy.rcpt,
                    "failed: {:?} report to <{}> via {addr}: {e}", r.kind, r.to
                );
                r.copy.count(&stats, |c| &c.failed);
            }
        }
        stats.pending_done();
    }
}

/// One report, up to five attempts: a broken or closed connection is replaced, a 4xx is
/// retried after a pause, a 5xx is final.
async fn deliver(
    conn: &mut Option<Connection>,
    addr: SocketAddr,
    host_name: &str,
    opts: &ClientOptions,
    r: &Report,
) -> Result<(), String> {
    let rcpts = [RecipientSpec::new(&r.to)];
    let txn = Transaction {
        mail_from: &r.from,
        recipients: &rcpts,
        ret: None,
        envid: None,
        smtputf8: false,
        body_8bit: !r.body.is_ascii(),
        size: r.body.len() as u64,
    };
    let mut last = String::new();
    for attempt in 0..5u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
        }
        if !conn.as_ref().is_some_and(Connection::is_reusable) {
            *conn = match Connection::open(addr, host_name, opts).await {
                Ok(c) => Some(c),
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
        }
        let Some(c) = conn.as_mut() else { continue };
        match c.send(&txn, &r.body).await {
            Ok(out) if out.delivered(0) => return Ok(()),
            Ok(out) => {
                let reply = out.recipient_reply(0);
                last = reply.to_string();
                if reply.code >= 500 {
                    return Err(last);
                }
            }
            Err(e) => {
                last = e.to_string();
                *conn = None;
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls() {
        let ok = |u: &str| is_loopback(&reqwest::Url::parse(u).unwrap());
        assert!(ok("http://127.0.0.1:8098/o/x"));
        assert!(ok("https://127.3.2.1/c/x"));
        assert!(ok("http://[::1]:80/"));
        assert!(ok("http://localhost:9/"));
        assert!(!ok("https://brand.example/landing"));
        assert!(!ok("http://10.0.0.1/"));
        assert!(!ok("http://127.0.0.1.nip.io/"));
        assert!(!ok("http://[::ffff:10.0.0.1]/"));
    }

    #[test]
    fn sender_addresses() {
        assert_eq!(sender_of("Feedback <fbl@x.example>"), "fbl@x.example");
        assert_eq!(
            sender_of("MAILER-DAEMON@yahoo.com"),
            "MAILER-DAEMON@yahoo.com"
        );
    }
}
