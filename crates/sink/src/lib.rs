//! `petrel sink`: a bouncy SMTP test destination.
//!
//! It answers mail the way real mailbox providers do — deliveries, user-unknown and
//! blocklist refusals, mailbox-full and try-again-later deferrals, slow answers, dropped
//! connections, STARTTLS demands — in Gmail-, Microsoft- and Yahoo-like words chosen by
//! recipient domain; and later it sends out-of-band bounces (RFC 3464) and complaints
//! (RFC 5965 ARF) back by SMTP, and fetches tracking pixels, links and unsubscribe links
//! over HTTP(S). What each recipient gets is chosen by a tag in its local part
//! (`ana+hard@…`) or drawn from `--mix` with a fixed `--seed`, so runs are reproducible;
//! everything it did is counted ([`Snapshot`]) and served at `--stats`.
//!
//! Built on petrel's own protocol crates (`petrel-smtp` for the server side,
//! `petrel-smtp-client` for the reports), and fast enough to stand in for Postfix's
//! `smtp-sink` in benchmarks. `docs/sink.md` is the user's page.

mod after;
mod behaviour;
mod counts;
mod http;
mod page;
mod provider;
mod reports;
mod session;
mod settings;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use behaviour::{tagged, Behaviour, Engagement, Mix, MixError, Smtp, Tag};
pub use counts::{Counts, Snapshot, Stats};
pub use provider::{refusal, Refusal, Style};
pub use reports::{arf, dsn, Original};
pub use settings::{Delays, Settings, SinkArgs, Tries, UsageError};

use crate::after::Afterwards;
use crate::session::{serve_connection, Shared};

/// Runs `petrel sink` until SIGTERM or SIGINT, then prints the summary. Exit code 2 for
/// bad arguments or configuration, 1 when the sink cannot start.
pub fn run(args: SinkArgs) -> ExitCode {
    let settings = match Settings::from_args(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("petrel sink: {e}");
            return ExitCode::from(2);
        }
    };
    let tls = match &settings.tls_certificate {
        Some(pem) => match petrel_listener::server_config(pem, true, true) {
            Ok(c) => Some(tokio_rustls::TlsAcceptor::from(c)),
            Err(e) => {
                eprintln!("petrel sink: tls-certificate {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let runtime = if settings.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.threads)
            .enable_all()
            .build()
    };
    let result = runtime
        .context("tokio runtime")
        .and_then(|rt| rt.block_on(serve(settings, tls)));
    match result {
        Ok(snapshot) => {
            print!("{}", snapshot.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("petrel sink: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Serves until a stop signal; returns the final counts.
async fn serve(
    settings: Settings,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> anyhow::Result<Snapshot> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let stats = Arc::new(Stats::default());
    if let Some(addr) = settings.stats {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("--stats: cannot listen on {addr}"))?;
        let router = http::router(stats.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(l, router).await {
                warn!("stats server: {e}");
            }
        });
    }
    let after = Afterwards::start(&settings, stats.clone())?;
    let listen = listener.local_addr()?;
    let stats_addr = settings.stats;
    let shared = Arc::new(Shared::new(settings, stats.clone(), after, tls));
    // On stderr whatever the log filter: scripts and tests wait for this line.
    eprintln!(
        "petrel sink ready on {listen}{}",
        stats_addr.map_or(String::new(), |a| format!(", stats on http://{a}/"))
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(shared.clone(), stream, peer));
                }
                Err(e) => {
                    warn!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    info!("petrel sink stopping");
    Ok(stats.snapshot())
}
