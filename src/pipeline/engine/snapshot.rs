//! The engine's state for the control plane, read from atomics only (no lock the data plane
//! takes). Extend by adding fields: the telemetry part (histograms, extra counters) joins here.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::Engine;
use crate::clock::monotonic_ns;
use crate::stats::StatsSnapshot;

/// Everything the status of a rig shows.
#[derive(Debug, Clone, Serialize)]
pub struct EngineSnapshot {
    /// Whether a session is being recorded.
    pub recording: bool,
    /// The session, while recording.
    pub session: Option<SessionSnapshot>,
    /// Seconds since the engine opened.
    pub live_s: f64,
    /// Per stream, in config order.
    pub streams: Vec<StreamSnapshot>,
    /// Per model and signal group.
    pub producers: Vec<ProducerSnapshot>,
    /// Per rule.
    pub rules: Vec<RuleSnapshot>,
    /// Per stimulator output.
    pub outputs: Vec<OutputSnapshot>,
    /// Whether the recorder failed, and why.
    pub recorder_failure: Option<String>,
    /// The output directory's filesystem.
    pub disk: DiskSnapshot,
    /// Per data-plane thread.
    pub threads: Vec<HeartbeatSnapshot>,
    /// Events lost because the control plane drained too slowly.
    pub events_lost: u64,
}

/// The running session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionSnapshot {
    /// Session name.
    pub name: String,
    /// The session file.
    pub path: std::path::PathBuf,
    /// Seconds since it began.
    pub elapsed_s: f64,
    /// Subject id.
    pub subject: String,
    /// Its planned duration, if any.
    pub duration_s: Option<f64>,
}

/// One stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSnapshot {
    /// Stream name.
    pub name: String,
    /// Counters since the engine opened (captured, recorded, dropped by cause, ...).
    pub live: StatsSnapshot,
    /// Counters since the session began, while recording.
    pub session: Option<StatsSnapshot>,
    /// Frames captured per second, over the time since the previous snapshot (≥ 0.5 s).
    pub fps: f64,
    /// Frames waiting in the recorder's ring.
    pub ring_fill: u64,
    /// The ring's size in frames.
    pub ring_capacity: u64,
    /// Why capture ended, if it did.
    pub failure: Option<String>,
}

/// One model or signal group.
#[derive(Debug, Clone, Serialize)]
pub struct ProducerSnapshot {
    /// Name.
    pub name: String,
    /// Frames processed since the engine opened.
    pub processed: u64,
    /// Frames skipped (latest-wins) since the engine opened.
    pub skipped: u64,
    /// Failed runs.
    pub errors: u64,
}

/// One rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleSnapshot {
    /// Rule name.
    pub name: String,
    /// Whether its triggers go to the stimulator.
    pub armed: bool,
    /// Fires since the engine opened (armed or not).
    pub fired: u64,
}

/// One stimulator output.
#[derive(Debug, Clone, Serialize)]
pub struct OutputSnapshot {
    /// Output name.
    pub name: String,
    /// Port (or "logging sink").
    pub port: String,
    /// Whether the link is connected (None for the logging sink).
    pub link_up: Option<bool>,
    /// Commands written to the port.
    pub sent: u64,
    /// Trains acknowledged.
    pub acked: u64,
    /// Refused by the device.
    pub nacked: u64,
    /// Blocked by behavd's limits.
    pub blocked: u64,
    /// Met a down link.
    pub link_down: u64,
    /// Not written in time.
    pub stale: u64,
    /// Ping/pong samples accepted into the clock fit.
    pub sync_samples: u64,
    /// (Re)connections.
    pub connects: u64,
}

/// Free space where sessions go.
#[derive(Debug, Clone, Serialize)]
pub struct DiskSnapshot {
    /// The output directory.
    pub dir: std::path::PathBuf,
    /// Bytes free (None if it could not be read).
    pub free_bytes: Option<u64>,
    /// `[recording] min_free_mb` in bytes.
    pub min_free_bytes: u64,
    /// `[recording] stop_free_mb` in bytes.
    pub stop_free_bytes: u64,
}

/// One data-plane thread's heartbeat.
#[derive(Debug, Clone, Serialize)]
pub struct HeartbeatSnapshot {
    /// Thread name.
    pub name: String,
    /// Seconds since it last beat.
    pub silent_s: f64,
    /// Whether that is past its deadline.
    pub overdue: bool,
}

/// The previous snapshot's capture counts, for the frame rates.
pub(super) struct FpsState {
    last_ns: u64,
    captured: Vec<u64>,
    fps: Vec<f64>,
}

impl FpsState {
    pub(super) fn new(streams: usize) -> Self {
        Self {
            last_ns: monotonic_ns(),
            captured: vec![0; streams],
            fps: vec![0.0; streams],
        }
    }

    fn update(&mut self, now_ns: u64, captured: &[u64]) -> Vec<f64> {
        let dt = now_ns.saturating_sub(self.last_ns) as f64 * 1e-9;
        if dt >= 0.5 {
            for ((fps, last), &now) in self.fps.iter_mut().zip(&mut self.captured).zip(captured) {
                *fps = now.saturating_sub(*last) as f64 / dt;
                *last = now;
            }
            self.last_ns = now_ns;
        }
        self.fps.clone()
    }
}

impl Engine {
    /// The engine's state now.
    pub fn snapshot(&self) -> EngineSnapshot {
        let now = monotonic_ns();
        let live: Vec<StatsSnapshot> = self.stats.iter().map(|s| s.snapshot()).collect();
        let captured: Vec<u64> = live.iter().map(|s| s.captured).collect();
        let fps = self
            .fps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(now, &captured);
        let recording = self.session.is_some();
        let streams = self
            .stream_names
            .iter()
            .enumerate()
            .map(|(i, name)| StreamSnapshot {
                name: name.clone(),
                live: live[i],
                session: recording.then(|| self.stats[i].session_snapshot()),
                fps: fps[i],
                ring_fill: self.stats[i].live().ring().0,
                ring_capacity: self.ring_capacity[i] as u64,
                failure: self.stats[i].failure().map(str::to_string),
            })
            .collect();
        let producers = self
            .closed_loop
            .stats
            .iter()
            .map(|p| ProducerSnapshot {
                name: p.name.clone(),
                processed: p.stats.processed.load(Ordering::Relaxed),
                skipped: p.stats.skipped.load(Ordering::Relaxed),
                errors: p.stats.errors.load(Ordering::Relaxed),
            })
            .collect();
        let arming = &self.closed_loop.arming;
        let rules = self
            .closed_loop
            .rule_names
            .iter()
            .enumerate()
            .map(|(i, name)| RuleSnapshot {
                name: name.clone(),
                armed: arming.is_armed(i),
                fired: arming.fired(i),
            })
            .collect();
        let outputs = self
            .closed_loop
            .links()
            .into_iter()
            .map(|(name, port, stats)| {
                let get =
                    |f: fn(&crate::stim::link::LinkStats) -> &std::sync::atomic::AtomicU64| {
                        stats.map_or(0, |s| f(s).load(Ordering::Relaxed))
                    };
                OutputSnapshot {
                    name: name.to_string(),
                    port: port.to_string(),
                    link_up: stats.map(|s| s.up.load(Ordering::Relaxed)),
                    sent: get(|s| &s.sent),
                    acked: get(|s| &s.acked),
                    nacked: get(|s| &s.nacked),
                    blocked: get(|s| &s.blocked),
                    link_down: get(|s| &s.link_down),
                    stale: get(|s| &s.stale),
                    sync_samples: get(|s| &s.sync_samples),
                    connects: get(|s| &s.connects),
                }
            })
            .collect();
        let threads = self
            .watch
            .heartbeats()
            .iter()
            .map(|h| HeartbeatSnapshot {
                name: h.name().to_string(),
                silent_s: now.saturating_sub(h.last_ns()) as f64 * 1e-9,
                overdue: h.overdue(now).is_some(),
            })
            .collect();
        EngineSnapshot {
            recording,
            session: self.session.as_ref().map(|s| SessionSnapshot {
                name: s.name.clone(),
                path: s.path.clone(),
                elapsed_s: s.clock.seconds(now),
                subject: s.subject.clone(),
                duration_s: s.duration_s,
            }),
            live_s: now.saturating_sub(self.opened_ns) as f64 * 1e-9,
            streams,
            producers,
            rules,
            outputs,
            recorder_failure: self.recorder.has_failed().then(|| {
                self.recorder
                    .failure()
                    .unwrap_or("the recorder stopped with an error")
                    .to_string()
            }),
            disk: DiskSnapshot {
                dir: self.output_dir.clone(),
                free_bytes: crate::fsutil::free_bytes(&self.output_dir).ok(),
                min_free_bytes: self.config.recording.min_free_mb * 1_000_000,
                stop_free_bytes: self.config.recording.stop_free_mb * 1_000_000,
            },
            threads,
            events_lost: self.events_lost.load(Ordering::Relaxed),
        }
    }
}
