//! Returned mail in the daemon: the keys that sign VERP return paths, and the bounce /
//! feedback-loop processor the SMTP listener hands in-scope mail to.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use petrel_config::{Config, LiveConfig};
use petrel_listener::{ReturnedMail, ReturnedMailHook};
use petrel_record::Recorder;
use petrel_returns::ReturnsProcessor;
use petrel_suppression::SuppressionList;
use petrel_verp::ReturnPathKeys;

use crate::keys;

/// The VERP keys, when a `<bounce-processor>` exists (only its domains get VERP return
/// paths): `return-path-key` lines, else `return-path-key-file`, else `return-path.key`
/// beside the spool, created on first start.
pub fn load_keys(config: &Config) -> Result<Option<Arc<ReturnPathKeys>>> {
    let Some(bp) = &config.bounce_processor else {
        return Ok(None);
    };
    let file = bp
        .return_path_key_file
        .clone()
        .unwrap_or_else(|| default_key_file(config));
    let pairs = keys::configured_or_file(&bp.return_path_keys, &file)?;
    Ok(ReturnPathKeys::new(&pairs).map(Arc::new))
}

fn default_key_file(config: &Config) -> PathBuf {
    config
        .spool_dir()
        .parent()
        .map(|d| d.join("return-path.key"))
        .unwrap_or_else(|| PathBuf::from("return-path.key"))
}

/// The processor, when the configuration has a bounce or feedback-loop processor.
pub fn processor(
    config: &Config,
    keys: Option<Arc<ReturnPathKeys>>,
    recorder: Recorder,
    suppression: Option<Arc<SuppressionList>>,
) -> Option<Arc<ReturnsProcessor>> {
    if config.bounce_processor.is_none() && config.feedback_loop_processor.is_none() {
        return None;
    }
    Some(Arc::new(ReturnsProcessor::new(
        keys.map(|k| (*k).clone()),
        recorder,
        suppression,
    )))
}

/// The listener's hook for in-scope mail: it reads the current configuration for every
/// message, so `reload` applies to it.
pub fn hook(processor: Arc<ReturnsProcessor>, live: LiveConfig) -> ReturnedMailHook {
    Arc::new(move |m: &ReturnedMail<'_>| {
        let config = live.get();
        processor
            .process(
                &config,
                &petrel_returns::ReturnedMail {
                    rcpt: m.rcpt,
                    mail_from: m.mail_from,
                    client_ip: Some(m.client_ip),
                    helo: m.helo,
                    message: m.message,
                },
            )
            .deliver_to
    })
}
