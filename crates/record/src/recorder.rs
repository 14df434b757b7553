//! The recorder: the one place outcomes go, handing each to every sink.

use std::sync::Arc;

use petrel_config::Config;

use crate::outcome::Outcome;
use crate::sinks::{Counters, CountersSnapshot};

/// Writes outcomes somewhere: an accounting file, the Signals event spool, counters.
///
/// A sink must not block for long (it runs on the delivery path): the accounting writer and
/// the event spool queue what they are given for their own threads.
pub trait Sink: Send + Sync {
    /// Writes `outcome`, projected as this sink needs. `config` is the configuration the
    /// stage that saw the outcome acted under.
    fn write(&self, config: &Config, outcome: &Outcome<'_>);
}

/// The daemon's recorder: every outcome goes to every sink, so the accounting files, the
/// Signals events and the counters are written from the same value. The counters are always
/// kept; the other sinks are the daemon's choice. Cheap to clone.
#[derive(Clone, Default)]
pub struct Recorder {
    counters: Arc<Counters>,
    sinks: Arc<Vec<Arc<dyn Sink>>>,
}

impl Recorder {
    /// A recorder counting every outcome and writing it to `sinks`, in order. Without sinks
    /// it only counts (tests, minimal configurations).
    pub fn new(sinks: Vec<Arc<dyn Sink>>) -> Recorder {
        Recorder {
            counters: Arc::default(),
            sinks: Arc::new(sinks),
        }
    }

    /// Records one outcome in every sink.
    pub fn record(&self, config: &Config, outcome: &Outcome<'_>) {
        self.counters.write(config, outcome);
        for sink in self.sinks.iter() {
            sink.write(config, outcome);
        }
    }

    /// The counters of every outcome recorded so far.
    pub fn counters(&self) -> CountersSnapshot {
        self.counters.snapshot()
    }
}
