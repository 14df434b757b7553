//! File descriptors: the process's limit is raised to what the system allows, and the
//! internet-facing HTTP listeners (tracking host, Signals service) share a budget that leaves
//! a reserve for everything else.
//!
//! 21,000 idle connections to the tracking host once used all 20,000 descriptors; the SMTP
//! listener and the management API then failed every `accept` ("Too many open files"). The
//! budget keeps `total-max-smtp-in`, the management API's cap and a reserve (spool segments,
//! accounting and event files, outbound connections, DNS) out of the flood's reach.

use petrel_config::Config;
use petrel_http_serve::SharedBudget;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tracing::{info, warn};

/// The fewest descriptors kept back for the spool, files and outbound connections.
const MIN_RESERVE: u64 = 256;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and says so; returns the soft limit in
/// effect afterwards.
pub fn raise_limit() -> u64 {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let soft = current.unwrap_or(u64::MAX);
    if current == maximum {
        info!("open-file limit {} (already the hard limit)", show(current));
        return soft;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: maximum,
            maximum,
        },
    ) {
        Ok(()) => {
            info!(
                "open-file limit raised from {} to the hard limit {}",
                show(current),
                show(maximum)
            );
            maximum.unwrap_or(u64::MAX)
        }
        Err(e) => {
            warn!(
                "open-file limit stays {} (raising it to the hard limit {} failed: {e})",
                show(current),
                show(maximum)
            );
            soft
        }
    }
}

fn show(limit: Option<u64>) -> String {
    limit.map_or("unlimited".to_string(), |n| n.to_string())
}

/// What the tracking host and the Signals service may hold together under a limit of
/// `limit` descriptors: the limit less the reserve (a tenth, at least 256), SMTP's sessions
/// and the management API's connections.
pub fn public_budget(config: &Config, limit: u64) -> usize {
    let reserve = (limit / 10).max(MIN_RESERVE);
    let mgmt = if config.http_mgmt_port == 0 {
        0
    } else {
        u64::from(config.http_mgmt_limits.max_connections)
    };
    let budget = limit
        .saturating_sub(reserve)
        .saturating_sub(u64::from(config.total_max_smtp_in))
        .saturating_sub(mgmt)
        .max(1);
    usize::try_from(budget).unwrap_or(usize::MAX)
}

/// The shared budget for `config` under `limit`, logged with what it leaves aside.
pub fn shared_budget(config: &Config, limit: u64) -> SharedBudget {
    let budget = public_budget(config, limit);
    let wanted: u64 = config.signals.as_ref().map_or(0, |s| {
        s.tracking.listeners.len() as u64 * u64::from(s.tracking.limits.max_connections)
    }) + config
        .signals_service
        .as_ref()
        .map_or(0, |s| u64::from(s.limits.max_connections));
    if wanted > budget as u64 {
        warn!(
            "the tracking host and the Signals service may hold {wanted} connections by their caps, \
             but share {budget} descriptors (open-file limit {limit}, less the reserve, \
             total-max-smtp-in and the management API's cap); raise the hard limit (LimitNOFILE) \
             or lower the caps"
        );
    }
    SharedBudget::new(budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_the_reserve_smtp_and_management_aside() {
        let config = petrel_config::parse_str("total-max-smtp-in 100\n", "t.conf".as_ref())
            .unwrap()
            .config;
        // 20,000: a reserve of 2,000, 100 SMTP sessions, 64 management connections.
        assert_eq!(public_budget(&config, 20_000), 20_000 - 2_000 - 100 - 64);
        // A small limit keeps at least 256 back.
        assert_eq!(public_budget(&config, 1_024), 1_024 - 256 - 100 - 64);
        assert_eq!(public_budget(&config, 100), 1);
    }
}
