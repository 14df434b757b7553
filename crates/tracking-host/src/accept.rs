//! The accept loop for plain HTTP and HTTPS: accept, TLS handshake when configured, then
//! HTTP/1.1 with hyper, every step with a time limit.
//!
//! `axum::serve` takes only plain listeners and sets no header-read limit, so a client could
//! hold a connection (and its task) forever by sending a request head one byte at a time.
//! This loop is the small one `axum::serve` would have been plus those limits: each
//! connection runs on its own task, the router sees the TCP peer address as
//! `ConnectInfo<SocketAddr>`, and shutdown stops accepting, then lets requests in progress
//! finish.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

/// A client that has not finished the TLS handshake by then is dropped, so idle sockets
/// cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` (over TLS when `tls` is given) until `shutdown` completes.
/// A request head that has not fully arrived within `header_read_timeout` closes the
/// connection.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Taken before the task starts, so shutdown also waits for handshakes in progress.
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                serve_http(tcp, peer, app, header_read_timeout, watcher).await;
                return;
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => serve_http(stream, peer, app, header_read_timeout, watcher).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tracking TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "tracking TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// HTTP/1.1 on one connection, plain or TLS, until the client closes it, a limit closes it
/// or shutdown has let its last request finish.
async fn serve_http<S>(
    stream: S,
    peer: std::net::SocketAddr,
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
        tracing::debug!(%peer, error = %e, "tracking connection ended with an error");
    }
}

/// Per-connection failures are the client's business; anything else (out of file
/// descriptors) gets a pause so the loop does not spin.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "tracking listener accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
