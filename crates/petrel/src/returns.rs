//! Returned mail in the daemon: the keys that sign VERP return paths, and the bounce /
//! feedback-loop processor the SMTP listener hands in-scope mail to.

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use anyhow::Result;
use petrel_config::Config;
use petrel_listener::{Context, ReturnedMail};
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

/// Installs the processor in the listener when the configuration has a bounce or
/// feedback-loop processor. It reads the listener's current configuration for every message,
/// so `reload` applies to it.
pub fn install(
    ctx: &Arc<Context>,
    config: &Config,
    keys: Option<Arc<ReturnPathKeys>>,
    recorder: Recorder,
    suppression: Option<Arc<SuppressionList>>,
) -> Option<Arc<ReturnsProcessor>> {
    if config.bounce_processor.is_none() && config.feedback_loop_processor.is_none() {
        return None;
    }
    let processor = Arc::new(ReturnsProcessor::new(
        keys.map(|k| (*k).clone()),
        recorder,
        suppression,
    ));
    let weak: Weak<Context> = Arc::downgrade(ctx);
    let p = processor.clone();
    ctx.set_returned_mail_hook(Arc::new(move |m: &ReturnedMail<'_>| {
        let Some(ctx) = weak.upgrade() else {
            return Vec::new();
        };
        let config = ctx.config();
        p.process(
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
    }));
    Some(processor)
}
