//! The SMTP injection service: accepts connections on every `smtp-listener`, applies the
//! `<source>` policy, and answers `250` only once the spool has the message on disk.

mod auth_limit;
mod io;
mod reception;
mod session;
mod tls;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use petrel_config::{Config, LiveConfig};
use petrel_spool::Spool;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::{error, warn};

pub use reception::DEFAULT_VMTA;
pub use tls::{server_config, TlsError};

/// Counters the management API shows (`show status`).
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted since start.
    pub connections: AtomicU64,
    /// Messages acknowledged with 250 since start.
    pub messages: AtomicU64,
    /// Recipients of those messages.
    pub recipients: AtomicU64,
    /// Commands or messages refused with 4xx/5xx.
    pub rejections: AtomicU64,
}

/// Called after each message is durable (and before the 250 is sent) with its spool id: the
/// daemon uses it to hand the message to the delivery engine and to write the reception
/// accounting record. It must not block.
pub type CommitHook = Arc<dyn Fn(petrel_spool::MessageId) + Send + Sync>;

/// A message for a recipient in a `<bounce-processor>` / `<feedback-loop-processor>`
/// scope, handed to the processor instead of being queued for that recipient.
pub struct ReturnedMail<'a> {
    /// The in-scope recipient.
    pub rcpt: &'a str,
    /// The envelope sender.
    pub mail_from: &'a str,
    /// The client's address.
    pub client_ip: std::net::IpAddr,
    /// The client's HELO name.
    pub helo: &'a str,
    /// The message as received (before petrel adds its Received header).
    pub message: &'a [u8],
}

/// Processes returned mail (bounces, complaints) and returns the addresses the message is
/// to be delivered to instead (empty: consumed). Runs before the 250 is sent; it must not
/// block for long.
pub type ReturnedMailHook = Arc<dyn Fn(&ReturnedMail<'_>) -> Vec<String> + Send + Sync>;

/// What the listener hands on: every durable commit, and mail for the returned-mail
/// processor. Given when the [`Context`] is built, so no session runs without them.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Called after every durable commit.
    pub on_commit: Option<CommitHook>,
    /// The returned-mail processor. Without one, mail for processor domains is queued like
    /// any other.
    pub on_returned: Option<ReturnedMailHook>,
}

/// Everything sessions share. Each session reads the daemon's [`LiveConfig`] once, when it
/// starts, so a reload applies to new sessions without touching those in flight.
pub struct Context {
    config: LiveConfig,
    hooks: Hooks,
    /// The TLS acceptor and the configuration generation it was built for.
    tls: Mutex<(u64, Option<TlsAcceptor>)>,
    /// The durable spool messages go to.
    pub spool: Spool,
    /// Traffic counters.
    pub stats: Stats,
    auth_failures: auth_limit::AuthFailures,
    slots: Arc<Semaphore>,
}

impl Context {
    /// Builds the shared state; fails when the TLS certificate cannot be loaded.
    pub fn new(config: LiveConfig, spool: Spool, hooks: Hooks) -> Result<Arc<Self>, TlsError> {
        let generation = config.generation();
        let current = config.get();
        let tls = build_tls(&current)?;
        // `total-max-smtp-in` is read once: the number of sessions is fixed at start.
        let slots = Arc::new(Semaphore::new(current.total_max_smtp_in as usize));
        Ok(Arc::new(Context {
            config,
            hooks,
            tls: Mutex::new((generation, tls)),
            spool,
            stats: Stats::default(),
            auth_failures: Default::default(),
            slots,
        }))
    }

    /// The configuration new sessions use.
    pub fn config(&self) -> Arc<Config> {
        self.config.get()
    }

    pub(crate) fn returned_mail_hook(&self) -> Option<&ReturnedMailHook> {
        self.hooks.on_returned.as_ref()
    }

    pub(crate) fn committed(&self, id: petrel_spool::MessageId) {
        if let Some(hook) = &self.hooks.on_commit {
            hook(id);
        }
    }

    /// The TLS acceptor of the current configuration, rebuilt once after a reload. If the
    /// certificate cannot be loaded then (it changed after the reload checked it), the
    /// previous acceptor stays and the error is logged.
    fn tls_acceptor(&self) -> Option<TlsAcceptor> {
        let generation = self.config.generation();
        let mut tls = self.tls.lock().unwrap_or_else(|e| e.into_inner());
        if tls.0 != generation {
            tls.0 = generation;
            match build_tls(&self.config.get()) {
                Ok(acceptor) => tls.1 = acceptor,
                Err(e) => error!(target: "petrel::smtp", "TLS settings not reloaded: {e}"),
            }
        }
        tls.1.clone()
    }
}

/// Checks that `config`'s TLS settings load, so a reload can refuse a configuration whose
/// certificate is missing or broken before any session uses it.
pub fn check_tls(config: &Config) -> Result<(), TlsError> {
    build_tls(config).map(|_| ())
}

fn build_tls(config: &Config) -> Result<Option<TlsAcceptor>, TlsError> {
    let Some(tls) = &config.server_tls.certificate else {
        return Ok(None);
    };
    let cfg = server_config(
        &tls.path,
        config.server_tls.allow_tlsv1_2,
        config.server_tls.allow_tlsv1_3,
    )?;
    Ok(Some(TlsAcceptor::from(cfg)))
}

/// A bound listening socket and the named `<source>` it applies, if any.
pub struct BoundListener {
    /// The socket.
    pub listener: TcpListener,
    /// `source=NAME` of the `smtp-listener` line.
    pub source: Option<String>,
}

/// Binds every configured `smtp-listener`; an address that cannot be bound is an error that
/// names it, so the operator sees which line failed.
pub async fn bind_all(config: &Config) -> std::io::Result<Vec<BoundListener>> {
    let mut out = Vec::new();
    for l in config.listeners() {
        let listener = TcpListener::bind(l.addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", l.addr))
        })?;
        out.push(BoundListener {
            listener,
            source: l.source.clone(),
        });
    }
    Ok(out)
}

/// Accepts connections on every listener until the task is dropped.
pub async fn serve(ctx: Arc<Context>, listeners: Vec<BoundListener>) {
    let mut tasks = Vec::new();
    for l in listeners {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(accept_loop(ctx, l)));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn accept_loop(ctx: Arc<Context>, l: BoundListener) {
    loop {
        let (stream, peer) = match l.listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                error!(target: "petrel::smtp", "accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        ctx.stats
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let permit = match ctx.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                tokio::spawn(refuse_busy(ctx.clone(), stream, peer));
                continue;
            }
        };
        let session = session::Session::new(ctx.clone(), peer, l.source.clone());
        tokio::spawn(async move {
            session.run(stream).await;
            drop(permit);
        });
    }
}

/// PowerMTA answers a connection over `total-max-smtp-in` with a 421 greeting and closes.
async fn refuse_busy(ctx: Arc<Context>, mut stream: tokio::net::TcpStream, peer: SocketAddr) {
    use tokio::io::AsyncWriteExt;
    let host = ctx.config().primary_host_name().to_string();
    warn!(target: "petrel::smtp", "{peer} refused: total-max-smtp-in reached");
    let reply = format!("421 4.3.2 {host} too many connections, try again later\r\n");
    let _ = stream.write_all(reply.as_bytes()).await;
}
