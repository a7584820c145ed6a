//! Live telemetry of the data plane: the counters and lock-free latency histograms its threads
//! bump (per stream, per model or signal group, per rule, per output, the recorder), gathered
//! in one [`Telemetry`] registry and copied into a serializable [`TelemetrySnapshot`].
//!
//! Data-plane side: no tokio, no lock, nothing allocated when recording. The registry only
//! holds `Arc`s to the atomics each thread already owns; a snapshot reads them with relaxed
//! loads (each value on its own; a snapshot is consistent enough for monitoring, not exact
//! across counters). The control plane (`crate::daemon::metrics`) renders snapshots.

mod histogram;
mod link;
mod parts;
mod snapshot;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub use histogram::{AtomicHistogram, BOUNDS_NS, BUCKETS, HistogramSnapshot};
pub use link::LinkTelemetry;
pub use parts::{RecorderTelemetry, RulesTelemetry, StreamLive};
pub use snapshot::{
    OutputSnapshot, ProducerSnapshot, RecorderSnapshot, RuleSnapshot, StreamSnapshot,
    TelemetrySnapshot, TriggerCounts,
};

use crate::pipeline::workers::WorkerStats;
use crate::stats::StreamStats;
use crate::stim::link::LinkStats;

/// One stream's counters.
struct StreamEntry {
    name: String,
    stats: Arc<StreamStats>,
}

/// One model's or signal group's counters.
struct ProducerEntry {
    name: String,
    stream: String,
    kind: &'static str,
    stats: Arc<WorkerStats>,
}

/// One output's counters (`link` None for the logging sink).
struct OutputEntry {
    name: String,
    link: Option<Arc<LinkStats>>,
}

/// Every live counter of a running closed loop and recorder, by name.
pub struct Telemetry {
    started_ns: u64,
    streams: Vec<StreamEntry>,
    producers: Vec<ProducerEntry>,
    rules: Option<Arc<RulesTelemetry>>,
    outputs: Vec<OutputEntry>,
    triggers_sent: Option<Arc<AtomicU64>>,
    recorder: Option<Arc<RecorderTelemetry>>,
}

impl Telemetry {
    /// An empty registry whose elapsed time counts from `started_ns` (monotonic).
    pub fn new(started_ns: u64) -> Self {
        Self {
            started_ns,
            streams: Vec::new(),
            producers: Vec::new(),
            rules: None,
            outputs: Vec::new(),
            triggers_sent: None,
            recorder: None,
        }
    }

    /// Adds a stream's counters.
    pub fn add_stream(&mut self, name: &str, stats: &Arc<StreamStats>) {
        self.streams.push(StreamEntry {
            name: name.to_string(),
            stats: Arc::clone(stats),
        });
    }

    /// Adds a model's (`kind` "model") or signal group's (`kind` "signal") counters.
    pub fn add_producer(
        &mut self,
        name: &str,
        stream: &str,
        kind: &'static str,
        stats: &Arc<WorkerStats>,
    ) {
        self.producers.push(ProducerEntry {
            name: name.to_string(),
            stream: stream.to_string(),
            kind,
            stats: Arc::clone(stats),
        });
    }

    /// Sets the rules thread's counters.
    pub fn set_rules(&mut self, rules: &Arc<RulesTelemetry>) {
        self.rules = Some(Arc::clone(rules));
    }

    /// Adds an output: a serial link's counters, or None for the logging sink.
    pub fn add_output(&mut self, name: &str, link: Option<&Arc<LinkStats>>) {
        self.outputs.push(OutputEntry {
            name: name.to_string(),
            link: link.cloned(),
        });
    }

    /// Sets the session-wide count of triggers handed to an output.
    pub fn set_triggers_sent(&mut self, sent: &Arc<AtomicU64>) {
        self.triggers_sent = Some(Arc::clone(sent));
    }

    /// Sets (or replaces, when a new recorder starts) the recorder's counters.
    pub fn set_recorder(&mut self, recorder: &Arc<RecorderTelemetry>) {
        self.recorder = Some(Arc::clone(recorder));
    }

    /// Copies every counter and histogram now.
    pub fn snapshot(&self) -> TelemetrySnapshot {
        snapshot::take(self, crate::clock::monotonic_ns())
    }
}
