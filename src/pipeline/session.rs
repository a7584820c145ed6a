//! One recording session in the foreground (`behavd run`): an [`Engine`] opened and begun at
//! once, ended when the run stops.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use super::engine::{BeginError, Engine, EngineOptions, SessionRequest};
use super::summary::LoopSummary;
use crate::clock::SessionClock;
use crate::config::LoadedConfig;
use crate::stats::StatsSnapshot;

/// How to run a session.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides `[recording].output_dir`.
    pub output_dir: Option<PathBuf>,
    /// Set (by a signal) to abandon the set-up: [`RunningSession::start`] then returns
    /// [`SetupInterrupted`] before the session file is created.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// The set-up (model loading and warm-up, devices, outputs) was interrupted before the session
/// file was created: nothing was recorded and no file was written.
#[derive(Debug, thiserror::Error)]
#[error("set-up interrupted: nothing was recorded and no session file was written")]
pub struct SetupInterrupted;

/// A session whose threads are running.
pub struct RunningSession {
    /// The session file being written.
    pub path: PathBuf,
    /// Session name.
    pub name: String,
    /// Session clock.
    pub clock: SessionClock,
    engine: Engine,
}

/// Per-stream outcome of a session.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamSummary {
    /// Stream name.
    pub name: String,
    /// Final counters.
    pub stats: StatsSnapshot,
    /// Frames written to the file (from the recorder).
    pub frames_in_file: u64,
    /// Frames captured per second of session.
    pub achieved_fps: f64,
    /// Why capture ended early, if it did.
    pub failure: Option<String>,
}

/// The outcome of a session.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionSummary {
    /// The session file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub file_bytes: u64,
    /// Seconds from session start to stop.
    pub duration_s: f64,
    /// Per stream.
    pub streams: Vec<StreamSummary>,
    /// Gap rows in the file.
    pub gap_rows: usize,
    /// Models, signals, rules and triggers.
    pub closed_loop: LoopSummary,
    /// Why recording failed (a full disk, say), in words; the file then holds what was written
    /// before, with equal lengths, and its notes say why it stopped.
    pub recording_error: Option<String>,
}

impl RunningSession {
    /// Prepares the engine (devices, models, outputs, every thread but capture), begins the
    /// session, then starts capturing: the file holds every frame from the first.
    pub fn start(loaded: &LoadedConfig, options: &RunOptions) -> Result<Self> {
        let mut engine = Engine::prepare(
            loaded,
            &EngineOptions {
                output_dir: options.output_dir.clone(),
                cancel: options.cancel.clone(),
            },
        )?;
        // The last moment nothing is written yet: begin creates the file.
        if options
            .cancel
            .as_deref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            engine.close()?;
            return Err(SetupInterrupted.into());
        }
        match engine.begin(SessionRequest::default()) {
            Ok(started) => {
                if let Err(e) = engine.start_capture() {
                    let _ = engine.end("a capture thread could not be started");
                    return Err(e);
                }
                let clock = engine.session_clock().expect("the session began");
                Ok(Self {
                    path: started.path,
                    name: started.name,
                    clock,
                    engine,
                })
            }
            Err(e) => {
                let _ = engine.close();
                Err(match e {
                    BeginError::Failed(why) => anyhow::anyhow!(why),
                    other => anyhow::Error::new(other),
                })
            }
        }
    }

    /// The engine underneath (snapshot, events, heartbeats).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The live controls (Miniscope controls, rule arming, manual pulses, notes).
    pub fn controls(&self) -> super::controls::LiveControls {
        self.engine.controls()
    }

    /// The live counters and latency histograms of every data-plane thread.
    pub fn telemetry(&self) -> &Arc<crate::telemetry::Telemetry> {
        self.engine.telemetry()
    }

    /// Live counters of the models and signal groups: name, frames processed, frames skipped.
    pub fn live_loop_stats(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.engine.live_loop_stats()
    }

    /// Triggers decided and handed to the stimulator link so far.
    pub fn live_triggers(&self) -> u64 {
        self.engine.live_triggers()
    }

    /// Stream names and their live counters, in config order.
    pub fn live_stats(&self) -> impl Iterator<Item = (&str, StatsSnapshot)> {
        self.engine.live_stats()
    }

    /// Whether the recorder failed (an HDF5 error such as a full disk) or its thread ended on
    /// its own; `stop` then reports the error in the summary.
    pub fn recorder_failed(&self) -> bool {
        self.engine.recorder_failed()
    }

    /// Whether every capture thread has ended on its own (all devices failed).
    pub fn all_captures_ended(&self) -> bool {
        self.engine.all_captures_ended()
    }

    /// Why the session should end now, if it should (disk below `[recording] stop_free_mb`,
    /// the recorder failed, every capture ended).
    pub fn end_due(&self) -> Option<String> {
        self.engine.session_end_due()
    }

    /// Stops the sources, drains the rings, closes and finalizes the file.
    pub fn stop(self, reason: &str) -> Result<SessionSummary> {
        self.engine.end(reason)
    }
}
