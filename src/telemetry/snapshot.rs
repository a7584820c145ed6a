//! [`TelemetrySnapshot`]: a serializable copy of every counter of a [`Telemetry`] registry.

use std::sync::atomic::Ordering;

use super::{HistogramSnapshot, Telemetry};
use crate::stats::{DropCause, StatsSnapshot};

/// Every counter and histogram at one moment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TelemetrySnapshot {
    /// Seconds since the registry was created (the loop started).
    pub elapsed_s: f64,
    /// Per stream, in config order.
    pub streams: Vec<StreamSnapshot>,
    /// Per model and signal group (models first, config order).
    pub producers: Vec<ProducerSnapshot>,
    /// Per rule, in config order (empty without rules).
    pub rules: Vec<RuleSnapshot>,
    /// Frame capture → trigger decision, over every rule's firings (None without rules).
    pub capture_to_decision: Option<HistogramSnapshot>,
    /// Triggers that did not fit in the ring to their output.
    pub triggers_lost: u64,
    /// Triggers handed to an output (any output, the logging sink included).
    pub triggers_sent: u64,
    /// Per output the rules name.
    pub outputs: Vec<OutputSnapshot>,
    /// The recorder (None while none runs).
    pub recorder: Option<RecorderSnapshot>,
}

/// One stream.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StreamSnapshot {
    /// Stream name.
    pub name: String,
    /// Captured, recorded, bytes, reconnects and drops by cause.
    pub stats: StatsSnapshot,
    /// Frames per second over the last second (0 when frames stopped).
    pub fps: f64,
    /// Frames waiting in the recorder ring.
    pub ring_used: u64,
    /// The recorder ring's capacity, frames.
    pub ring_capacity: u64,
}

impl StreamSnapshot {
    /// Share of the recorder ring in use, 0–1.
    pub fn ring_fill(&self) -> f64 {
        if self.ring_capacity == 0 {
            0.0
        } else {
            self.ring_used as f64 / self.ring_capacity as f64
        }
    }

    /// Frames lost for `cause`.
    pub fn dropped(&self, cause: DropCause) -> u64 {
        self.stats.dropped[cause as usize]
    }
}

/// One model or signal group.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ProducerSnapshot {
    /// Its name (the rule variable group).
    pub name: String,
    /// The stream its frames come from.
    pub stream: String,
    /// "model" or "signal".
    pub kind: &'static str,
    /// Frames (or first-stage outputs) processed.
    pub processed: u64,
    /// Frames skipped (latest-wins).
    pub skipped: u64,
    /// State resets after gaps.
    pub resets: u64,
    /// Failed runs.
    pub errors: u64,
    /// Session run + decode (a model), or the ROI update (a signal group).
    pub inference: HistogramSnapshot,
    /// Frame capture → decoded output.
    pub capture_to_output: HistogramSnapshot,
}

/// One rule.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RuleSnapshot {
    /// Rule name.
    pub name: String,
    /// Times it fired.
    pub fired: u64,
}

/// One output's triggers, by what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TriggerCounts {
    /// Written to the port (then acked, nacked or unacked; host-timed on Firmata).
    pub sent: u64,
    /// Every pulse acknowledged by the device.
    pub acked: u64,
    /// Refused by the device.
    pub nacked: u64,
    /// Written but never (fully) acknowledged.
    pub unacked: u64,
    /// Refused by behavd's limits (never written).
    pub blocked: u64,
    /// The link was down (never written).
    pub link_down: u64,
    /// Too old to write (never written).
    pub stale: u64,
    /// Decided while the session was stopping (never written).
    pub stopping: u64,
}

impl TriggerCounts {
    /// `(status label, count)` pairs, in a fixed order.
    pub fn by_status(&self) -> [(&'static str, u64); 8] {
        [
            ("sent", self.sent),
            ("acked", self.acked),
            ("nacked", self.nacked),
            ("unacked", self.unacked),
            ("blocked", self.blocked),
            ("link_down", self.link_down),
            ("stale", self.stale),
            ("stopping", self.stopping),
        ]
    }
}

/// One output.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OutputSnapshot {
    /// Output name.
    pub name: String,
    /// Whether the serial link is connected (None for the logging sink).
    pub up: Option<bool>,
    /// Successful (re)connections.
    pub connects: u64,
    /// Times the link went down after being up.
    pub disconnects: u64,
    /// Triggers by status.
    pub triggers: TriggerCounts,
    /// Rule decision → command written to the port.
    pub decision_to_write: HistogramSnapshot,
    /// Clock-sync PING → PONG round trips.
    pub round_trip: HistogramSnapshot,
    /// RMS residual of the device clock fit, µs (None until fitted, or host-timed).
    pub clock_residual_us: Option<f64>,
}

/// The recorder.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RecorderSnapshot {
    /// Frame bytes written, every stream (uncompressed sizes).
    pub bytes_written: u64,
    /// Successful flushes.
    pub flushes: u64,
    /// Seconds since the last successful flush (since the loop started when none yet).
    pub flush_lag_s: f64,
    /// Duration of each flush.
    pub flush: HistogramSnapshot,
}

pub(super) fn take(t: &Telemetry, now_ns: u64) -> TelemetrySnapshot {
    let streams: Vec<StreamSnapshot> = t
        .streams
        .iter()
        .map(|s| {
            let (ring_used, ring_capacity) = s.stats.live().ring();
            StreamSnapshot {
                name: s.name.clone(),
                stats: s.stats.snapshot(),
                fps: s.stats.live().fps(now_ns),
                ring_used,
                ring_capacity,
            }
        })
        .collect();
    let producers = t
        .producers
        .iter()
        .map(|p| {
            let r = Ordering::Relaxed;
            ProducerSnapshot {
                name: p.name.clone(),
                stream: p.stream.clone(),
                kind: p.kind,
                processed: p.stats.processed.load(r),
                skipped: p.stats.skipped.load(r),
                resets: p.stats.resets.load(r),
                errors: p.stats.errors.load(r),
                inference: p.stats.inference.snapshot(),
                capture_to_output: p.stats.capture_to_output.snapshot(),
            }
        })
        .collect();
    let rules = t
        .rules
        .as_ref()
        .map(|r| {
            r.names
                .iter()
                .zip(r.fired_counts())
                .map(|(name, fired)| RuleSnapshot {
                    name: name.clone(),
                    fired,
                })
                .collect()
        })
        .unwrap_or_default();
    let outputs = t
        .outputs
        .iter()
        .map(|o| match &o.link {
            None => OutputSnapshot {
                name: o.name.clone(),
                ..OutputSnapshot::default()
            },
            Some(l) => {
                let r = Ordering::Relaxed;
                OutputSnapshot {
                    name: o.name.clone(),
                    up: Some(l.up.load(r)),
                    connects: l.connects.load(r),
                    disconnects: l.disconnects.load(r),
                    triggers: TriggerCounts {
                        sent: l.sent.load(r),
                        acked: l.acked.load(r),
                        nacked: l.nacked.load(r),
                        unacked: l.unacked.load(r),
                        blocked: l.blocked.load(r),
                        link_down: l.link_down.load(r),
                        stale: l.stale.load(r),
                        stopping: l.stopping.load(r),
                    },
                    decision_to_write: l.telemetry.decision_to_write.snapshot(),
                    round_trip: l.telemetry.round_trip.snapshot(),
                    clock_residual_us: l.telemetry.residual_us(),
                }
            }
        })
        .collect();
    let recorder = t.recorder.as_ref().map(|r| RecorderSnapshot {
        bytes_written: streams.iter().map(|s| s.stats.bytes_recorded).sum(),
        flushes: r.flushes(),
        flush_lag_s: now_ns.saturating_sub(r.last_flush_ns().unwrap_or(t.started_ns)) as f64 / 1e9,
        flush: r.flush.snapshot(),
    });
    TelemetrySnapshot {
        elapsed_s: now_ns.saturating_sub(t.started_ns) as f64 / 1e9,
        streams,
        producers,
        rules,
        capture_to_decision: t.rules.as_ref().map(|r| r.capture_to_decision.snapshot()),
        triggers_lost: t
            .rules
            .as_ref()
            .map_or(0, |r| r.triggers_lost.load(Ordering::Relaxed)),
        triggers_sent: t
            .triggers_sent
            .as_ref()
            .map_or(0, |s| s.load(Ordering::Relaxed)),
        outputs,
        recorder,
    }
}
