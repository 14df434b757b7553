//! One outbound connection of a queue: find the destination (MX, `smtp-hosts`, the domain's
//! own address), open a session from the vmta's source address, then carry the queue's work
//! over it until the queue is empty for `connection-idle-timeout`, a limit is reached or the
//! session breaks.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use petrel_config::{Config, EffectiveDomainSettings, NoMxPolicy, SourceAddr};
use petrel_smtp_client::{ClientOptions, Connection, Timeouts, TlsMode};
use tracing::debug;

use crate::engine::Inner;
use crate::outcome::{self, Rules};
use crate::queue::{Next, QueueKey};
use crate::route::RouteError;
use crate::settle::{apply_queue_action, bounce_older, bounce_queue, queue_failure};
use crate::transaction::{deliver_taken, Flow};

impl Inner {
    /// `max-msg-rate`: recipients attempted per window, shared by every connection of the
    /// queue. Waits until the current window has room (a batch larger than the whole
    /// allowance goes alone at the start of a window).
    pub(crate) async fn wait_for_rate(&self, key: &QueueKey, rate: petrel_config::Rate, n: u32) {
        loop {
            let wait = {
                let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
                let now = tokio::time::Instant::now();
                let (start, used) = rates.entry(key.clone()).or_insert((now, 0));
                if now.duration_since(*start) >= rate.window {
                    *start = now;
                    *used = 0;
                }
                if *used == 0 || *used + n <= rate.count {
                    *used += n;
                    return;
                }
                (*start + rate.window).saturating_duration_since(now)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Source IP and EHLO name for a vmta: its `smtp-source-host` lines (round-robin), else
    /// the global ones, else the OS's choice and the first `host-name`.
    pub(crate) fn source_for(&self, config: &Config, vmta: &str) -> (Option<IpAddr>, String) {
        let ips: Vec<(IpAddr, &str)> = config
            .source_hosts_for(vmta)
            .iter()
            .filter_map(|h| match h.addr {
                SourceAddr::Ip(ip) => Some((ip, h.host_name.as_str())),
                SourceAddr::Cidr(_) => None,
            })
            .collect();
        if ips.is_empty() {
            let name = config
                .virtual_mta(vmta)
                .and_then(|v| v.host_name.first().cloned())
                .unwrap_or_else(|| config.primary_host_name().to_string());
            return (None, name);
        }
        let mut rr = self.source_rr.lock().unwrap_or_else(|e| e.into_inner());
        let n = rr.entry(vmta.to_string()).or_default();
        let (ip, name) = ips[*n % ips.len()];
        *n += 1;
        (Some(ip), name.to_string())
    }
}

/// The client's settings for a queue: its source address and EHLO name, STARTTLS mode
/// (`use-starttls`, `require-starttls`) and timeouts.
fn client_options(
    settings: &EffectiveDomainSettings,
    source_ip: Option<IpAddr>,
    ehlo: String,
) -> ClientOptions {
    ClientOptions {
        ehlo_name: ehlo,
        source_ip,
        starttls: if settings.require_starttls {
            TlsMode::Required
        } else if settings.use_starttls {
            TlsMode::Opportunistic
        } else {
            TlsMode::Off
        },
        timeouts: Timeouts {
            connect: settings.connect_timeout,
            greeting: settings.smtp_greeting_timeout,
            command: settings.smtp_greeting_timeout,
            data_send: settings.data_send_timeout,
            data_termination: settings.smtp_data_termination_timeout,
        },
    }
}

/// Runs one connection of `key` and gives its slot back when it ends.
pub(crate) async fn connection_task(inner: Arc<Inner>, key: QueueKey) {
    if run_connection(&inner, &key).await == Slot::Held {
        inner.lock_queues().connection_delta(&key, false);
    }
    inner.wake.notify_one();
}

/// Whether a finished connection still counts against its queue's connection limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Still counted: release it.
    Held,
    /// Already released (the backoff limit closed the connection).
    Released,
}

/// Routes, connects and carries work; says whether the connection slot is still held.
async fn run_connection(inner: &Arc<Inner>, key: &QueueKey) -> Slot {
    let config = inner.config();
    let settings = config.domain_settings(&key.domain, &key.vmta);
    let now = inner.clock.now();
    let levels = match inner.router.route(&key.domain, &settings).await {
        Ok(l) if !l.is_empty() => l,
        Ok(_) => {
            let e = RouteError::Temporary {
                domain: key.domain.clone(),
                reason: "no destination".into(),
            };
            queue_failure(inner, key, &settings, None, &e.to_string(), "4.4.4").await;
            return Slot::Held;
        }
        Err(RouteError::NoSuchDomain(d)) => {
            bounce_queue(inner, key, &settings, &outcome::no_such_domain(&d)).await;
            return Slot::Held;
        }
        Err(RouteError::NullMx(d)) => {
            bounce_queue(inner, key, &settings, &outcome::null_mx(&d)).await;
            return Slot::Held;
        }
        Err(RouteError::NoMx(d)) => {
            let fate = outcome::no_mx(&d);
            let NoMxPolicy::After(age) = settings.bounce_upon_no_mx else {
                bounce_queue(inner, key, &settings, &fate).await;
                return Slot::Held;
            };
            // Older messages bounce; younger ones still try the domain's own address.
            bounce_older(inner, key, &settings, now, age, &fate).await;
            match inner
                .router
                .implicit_mx(&key.domain, settings.default_smtp_port)
                .await
            {
                Ok(l) if l.iter().any(|level| !level.is_empty()) => l,
                Ok(_) => {
                    let e = format!("{d} has no MX and no address");
                    queue_failure(inner, key, &settings, None, &e, "4.4.4").await;
                    return Slot::Held;
                }
                Err(e) => {
                    queue_failure(inner, key, &settings, None, &e.to_string(), "4.4.3").await;
                    return Slot::Held;
                }
            }
        }
        Err(e) => {
            queue_failure(inner, key, &settings, None, &e.to_string(), "4.4.3").await;
            return Slot::Held;
        }
    };
    let (source_ip, ehlo) = inner.source_for(&config, &key.vmta);
    let opts = client_options(&settings, source_ip, ehlo);
    let rules = Rules::new(&config, &settings);
    let mut opened = None;
    'levels: for level in &levels {
        for dest in level {
            match Connection::open(dest.addr, &dest.name, &opts).await {
                Ok(c) => {
                    opened = Some((c, dest.clone()));
                    break 'levels;
                }
                Err(e) => {
                    debug!("{key}: {} ({}): {e}", dest.name, dest.addr);
                    inner.record_queue_failure(key, Some(dest), &e.to_string(), "4.4.1", now);
                    // A refusing greeting ("421 too many connections") can match the
                    // queue's reply patterns too.
                    let mut action = outcome::refused(&rules, &e);
                    inner.apply_modes(key, std::mem::take(&mut action.modes));
                    if action.stops() {
                        apply_queue_action(inner, key, &settings, action).await;
                        return Slot::Held;
                    }
                }
            }
        }
    }
    let Some((mut conn, dest)) = opened else {
        let last = levels.last().and_then(|l| l.last()).cloned();
        queue_failure(
            inner,
            key,
            &settings,
            last.as_ref(),
            "no MX host accepted a connection",
            "4.4.1",
        )
        .await;
        return Slot::Held;
    };
    let mut sent = 0u32;
    // An idle connection waits this long for more mail before QUIT: reconnecting costs a
    // TCP handshake, a greeting, EHLO and maybe TLS per message.
    let idle = if settings.connection_idle_timeout.is_zero() {
        IDLE_GRACE
    } else {
        settings.connection_idle_timeout
    };
    let notifier = inner.idle_notifier(key);
    let mut slot = Slot::Held;
    loop {
        let now = inner.clock.now();
        let next = inner
            .lock_queues()
            .next_for_connection(key, now, settings.backoff_max_smtp_out);
        let (work, backoff) = match next {
            Next::Work { work, backoff } => (work, backoff),
            Next::Empty => {
                if tokio::time::timeout(idle, notifier.notified())
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            Next::Held => break,
            Next::Released => {
                slot = Slot::Released;
                break;
            }
        };
        let rate = if backoff {
            settings.backoff_max_msg_rate
        } else {
            settings.max_msg_rate
        };
        if let Some(rate) = rate {
            inner
                .wait_for_rate(key, rate, work.rcpts.len() as u32)
                .await;
        }
        let flow = deliver_taken(inner, &mut conn, &dest, key, &settings, work).await;
        sent += 1;
        match flow {
            Flow::Continue => {}
            Flow::Lost => return slot,
            Flow::Stop => break,
        }
        if settings.max_msg_per_connection.is_some_and(|m| sent >= m) {
            break;
        }
    }
    conn.quit().await;
    slot
}

/// How long a connection stays open without work when `connection-idle-timeout` is 0.
const IDLE_GRACE: Duration = Duration::from_secs(2);
