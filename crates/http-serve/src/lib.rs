//! The accept loop of petrel's HTTP listeners (the tracking host, the management API and the
//! Signals service): accept, admit within the listener's caps, TLS handshake when configured,
//! then HTTP/1.1 with hyper, every step with a time limit.
//!
//! `axum::serve` takes only plain listeners, caps nothing and sets no header-read limit: 21,000
//! idle connections to the tracking host once used every file descriptor of the process, and
//! SMTP injection and the management API stopped answering. Here each listener has a cap on its
//! connections in total and per client IP; the internet-facing listeners also draw on one
//! [`SharedBudget`] of descriptors, sized so the rest of the process keeps a reserve; and a
//! connection that does not send a whole request head within the header-read limit is closed,
//! which covers the wait between requests on a kept-alive connection too (hyper starts that
//! timer whenever it waits for a head). A connection over a cap gets `503` (plain HTTP) and is
//! closed at once. Each connection runs on its own task, the router sees the TCP peer address
//! as `ConnectInfo<SocketAddr>`, and shutdown stops accepting, then lets requests in progress
//! finish.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

/// A client that has not finished the TLS handshake by then is dropped, so idle sockets
/// cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connection over a cap reads before it is closed (plain HTTP only).
const OVER_CAP: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 44\r\n\r\n{\"error\":\"too many connections, try later\"}";

/// The caps of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once on this listener.
    pub max_connections: usize,
    /// Connections open at once from one client IP address.
    pub max_connections_per_ip: usize,
    /// A client must send a whole request head within this time (also the longest a
    /// kept-alive connection may wait for its next request), or the connection is closed.
    pub header_read_timeout: Duration,
}

/// Descriptors shared by several listeners, so that together they can never take the ones
/// the spool, SMTP and the management API need.
#[derive(Debug, Clone)]
pub struct SharedBudget(Arc<Semaphore>);

impl SharedBudget {
    /// A budget of `descriptors` connections.
    pub fn new(descriptors: usize) -> Self {
        SharedBudget(Arc::new(Semaphore::new(descriptors)))
    }
}

/// A listener's caps and the connections they currently count, shared with its tasks.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    slots: Arc<Semaphore>,
    shared: Option<SharedBudget>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    refused: AtomicU64,
}

impl Gate {
    /// A gate with `limits`, drawing also on `shared` when given.
    pub fn new(limits: Limits, shared: Option<SharedBudget>) -> Arc<Self> {
        Arc::new(Gate {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            shared,
            per_ip: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        })
    }

    /// Connections refused for a cap since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Admits a connection from `ip`, or says which cap it is over.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, &'static str> {
        {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = per_ip.entry(ip).or_insert(0);
            if *n >= self.limits.max_connections_per_ip {
                return Err("per-IP");
            }
            *n += 1;
        }
        // From here on the admission gives the per-IP count back when dropped.
        let mut admission = Admission {
            gate: self.clone(),
            ip,
            _slot: None,
            _shared: None,
        };
        admission._slot = Some(
            self.slots
                .clone()
                .try_acquire_owned()
                .map_err(|_| "listener")?,
        );
        if let Some(shared) = &self.shared {
            admission._shared = Some(
                shared
                    .0
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| "descriptor budget")?,
            );
        }
        Ok(admission)
    }
}

/// One admitted connection; dropping it frees its place under every cap.
struct Admission {
    gate: Arc<Gate>,
    ip: IpAddr,
    _slot: Option<OwnedSemaphorePermit>,
    _shared: Option<OwnedSemaphorePermit>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut per_ip = self.gate.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` (over TLS when `tls` is given) within `gate`'s caps until
/// `shutdown` completes. `what` names the listener in log lines.
pub async fn serve(
    what: &'static str,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    gate: Arc<Gate>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let header_read_timeout = gate.limits.header_read_timeout;
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    accept_error(what, e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let admission = match gate.admit(peer.ip()) {
            Ok(a) => a,
            Err(cap) => {
                refuse(what, &gate, tcp, peer, cap, acceptor.is_none());
                continue;
            }
        };
        // Taken before the task starts, so shutdown also waits for handshakes in progress.
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _admission = admission;
            let Some(acceptor) = acceptor else {
                serve_http(what, tcp, peer, app, header_read_timeout, watcher).await;
                return;
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    serve_http(what, stream, peer, app, header_read_timeout, watcher).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "{what}: TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "{what}: TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Closes a connection over a cap: a plain-HTTP client first reads a `503` if the socket
/// takes it at once (never waiting on a client that does not read).
fn refuse(what: &str, gate: &Gate, tcp: TcpStream, peer: SocketAddr, cap: &str, plain: bool) {
    let refused = gate.refused.fetch_add(1, Ordering::Relaxed) + 1;
    if plain {
        let _ = tcp.try_write(OVER_CAP);
    }
    // One line for the first refusal and then every 1,000th, so a flood does not flood the log.
    if refused == 1 || refused.is_multiple_of(1000) {
        tracing::warn!(%peer, "{what}: connection over the {cap} cap closed ({refused} so far)");
    } else {
        tracing::debug!(%peer, "{what}: connection over the {cap} cap closed");
    }
}

/// HTTP/1.1 on one connection, plain or TLS, until the client closes it, a limit closes it
/// or shutdown has let its last request finish.
async fn serve_http<S>(
    what: &str,
    stream: S,
    peer: SocketAddr,
    app: Router,
    header_read_timeout: Duration,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        // A Router is always ready, so calling it without `poll_ready` is fine.
        app.clone().call(req)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "{what}: connection ended with an error");
    }
}

/// Per-connection failures are the client's business; anything else (out of file
/// descriptors) gets a pause so the loop does not spin.
async fn accept_error(what: &str, e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "{what}: accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize) -> Limits {
        Limits {
            max_connections: total,
            max_connections_per_ip: per_ip,
            header_read_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn caps_count_per_ip_total_and_shared_and_free_on_drop() {
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let shared = SharedBudget::new(3);
        let gate = Gate::new(limits(10, 2), Some(shared.clone()));
        let other = Gate::new(limits(10, 10), Some(shared));
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).err(), Some("per-IP"));
        let _b1 = gate.admit(b).unwrap();
        // The shared budget (3) is spent: another listener is refused too.
        assert_eq!(other.admit(b).err(), Some("descriptor budget"));
        drop(a1);
        let _a3 = gate.admit(a).unwrap();
        // A refusal for the shared budget gave its per-IP place back.
        assert_eq!(gate.per_ip.lock().unwrap().get(&b), Some(&1));

        let small = Gate::new(limits(1, 5), None);
        let _x = small.admit(a).unwrap();
        assert_eq!(small.admit(b).err(), Some("listener"));
        assert!(!small.per_ip.lock().unwrap().contains_key(&b));
    }
}
