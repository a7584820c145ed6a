//! One recording session: start every thread, watch it, stop it in order, summarise it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

use super::capture::{CaptureEnd, CaptureLoop};
use super::closed_loop::{ClosedLoop, ClosedLoopPlan, LoopReport};
use super::summary::{LoopSummary, loop_summary};
use crate::clock::{SessionClock, monotonic_ns};
use crate::config::LoadedConfig;
use crate::record::{RecordError, Recorder, RecorderSetup, RecordingReport, StreamSetup, finalize};
use crate::stats::{DropCause, StatsSnapshot, StreamStats};

/// Gap records a stream may queue before the recorder picks them up.
const GAP_RING: usize = 1024;

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
    stream_names: Vec<String>,
    stats: Vec<Arc<StreamStats>>,
    stop: Arc<AtomicBool>,
    captures: Vec<JoinHandle<CaptureEnd>>,
    closed_loop: ClosedLoop,
    recorder: Recorder,
    telemetry: Arc<crate::telemetry::Telemetry>,
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
    /// Creates the session file and starts the recorder and every capture thread.
    pub fn start(loaded: &LoadedConfig, options: &RunOptions) -> Result<Self> {
        let config = &loaded.config;
        crate::realtime::install(&config.realtime);
        // The frame pools' memory, against the machine's, before anything is allocated.
        crate::config::memory::PoolBudget::of(config)
            .check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", loaded.origin))?;
        let output_dir = options
            .output_dir
            .clone()
            .unwrap_or_else(|| config.recording.output_dir.clone());
        std::fs::create_dir_all(&output_dir)
            .with_context(|| format!("cannot create output directory {}", output_dir.display()))?;
        let clock = SessionClock::start_now();
        let base_name = config.session.name.clone().unwrap_or_else(|| {
            format!(
                "{}_{}",
                config.session.subject.id,
                clock.start_wall.format("%Y%m%d-%H%M%S")
            )
        });
        let (name, path) = unused_path(&output_dir, &base_name);
        let never = AtomicBool::new(false);
        let cancel = options.cancel.as_deref().unwrap_or(&never);
        let interrupted = || cancel.load(Ordering::Relaxed);
        tracing::info!(
            models = config.model.len(),
            "setting up: loading and warming up models, opening devices"
        );
        let plan = match ClosedLoopPlan::prepare_cancellable(loaded, true, cancel) {
            Ok(plan) => plan,
            Err(_) if interrupted() => return Err(SetupInterrupted.into()),
            Err(e) => {
                return Err(anyhow::anyhow!("{}: {e}", loaded.origin))
                    .context("cannot set up the closed loop");
            }
        };
        let mut mailboxes = Vec::new();

        let stop = Arc::new(AtomicBool::new(false));
        let mut streams = Vec::new();
        let mut loops = Vec::new();
        let mut stats = Vec::new();
        for source_config in &config.source {
            if interrupted() {
                return Err(SetupInterrupted.into());
            }
            let source = super::build_source(source_config)
                .with_context(|| format!("source `{}`", source_config.name()))?;
            let info = source.info().clone();
            let ring_frames =
                crate::config::memory::ring_frames(config.recording.ring_seconds, info.nominal_fps);
            // Each latest-wins consumer may hold two slots: one waiting, one being processed.
            let consumers = plan.frame_consumers(&info.name);
            let pool = crate::frame::FramePool::new(
                crate::config::memory::pool_slots(ring_frames, consumers),
                info.geometry.frame_bytes(),
            );
            let stream_mailboxes = ClosedLoop::mailboxes_for(&plan, &info.name, &pool);
            let (frames_tx, frames_rx) = rtrb::RingBuffer::new(ring_frames);
            let (gaps_tx, gaps_rx) = rtrb::RingBuffer::new(GAP_RING);
            let stream_stats = Arc::new(StreamStats::default());
            stats.push(Arc::clone(&stream_stats));
            streams.push(StreamSetup {
                info,
                compression: *source_config
                    .compression()
                    .unwrap_or(&config.recording.compression),
                ground_truth: super::has_ground_truth(source_config),
                frames: frames_rx,
                gaps: gaps_rx,
                stats: Arc::clone(&stream_stats),
            });
            loops.push(CaptureLoop {
                source,
                pool,
                recorder: frames_tx,
                gaps: gaps_tx,
                stats: stream_stats,
                stop: Arc::clone(&stop),
                mailboxes: stream_mailboxes
                    .iter()
                    .map(|(_, m)| Arc::clone(m))
                    .collect(),
            });
            mailboxes.extend(stream_mailboxes);
        }
        let (closed_loop, loop_recording) = match ClosedLoop::start(plan, mailboxes, cancel) {
            Ok(started) => started,
            Err(_) if interrupted() => return Err(SetupInterrupted.into()),
            Err(e) => return Err(e),
        };
        // The last moment nothing is written yet: the recorder creates the file.
        if interrupted() {
            closed_loop.stop();
            return Err(SetupInterrupted.into());
        }
        let stream_names: Vec<String> = streams.iter().map(|s| s.info.name.clone()).collect();
        let recorder = Recorder::start(RecorderSetup {
            path: path.clone(),
            session_name: name.clone(),
            clock,
            session: config.session.clone(),
            config_text: loaded.text.clone(),
            streams,
            flush_interval: Duration::from_secs_f64(config.recording.flush_interval_s),
            compress_threads: config.recording.compress_threads,
            outputs: loop_recording.outputs,
            triggers: loop_recording.triggers,
        });
        let recorder = match recorder {
            Ok(r) => r,
            Err(e) => {
                closed_loop.stop();
                return Err(e)
                    .with_context(|| format!("cannot start recording to {}", path.display()));
            }
        };
        let mut captures = Vec::new();
        for capture in loops {
            let name = format!("capture-{}", capture.source.info().name);
            captures.push(
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || capture.run())
                    .context("cannot start a capture thread")?,
            );
        }
        tracing::info!(path = %path.display(), "recording started");
        let mut telemetry = crate::telemetry::Telemetry::new(clock.start_mono_ns);
        for (name, s) in stream_names.iter().zip(&stats) {
            telemetry.add_stream(name, s);
        }
        closed_loop.register_telemetry(&mut telemetry);
        telemetry.set_recorder(recorder.telemetry());
        Ok(Self {
            path,
            name,
            clock,
            stream_names,
            stats,
            stop,
            captures,
            closed_loop,
            recorder,
            telemetry: Arc::new(telemetry),
        })
    }

    /// The live counters and latency histograms of every data-plane thread.
    pub fn telemetry(&self) -> &Arc<crate::telemetry::Telemetry> {
        &self.telemetry
    }

    /// Live counters of the models and signal groups: name, frames processed, frames skipped.
    pub fn live_loop_stats(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.closed_loop.stats.iter().map(|p| {
            (
                p.name.as_str(),
                p.stats.processed.load(Ordering::Relaxed),
                p.stats.skipped.load(Ordering::Relaxed),
            )
        })
    }

    /// Triggers decided and handed to the stimulator link so far.
    pub fn live_triggers(&self) -> u64 {
        self.closed_loop.triggers_sent()
    }

    /// Stream names and their live counters, in config order.
    pub fn live_stats(&self) -> impl Iterator<Item = (&str, StatsSnapshot)> {
        self.stream_names
            .iter()
            .map(String::as_str)
            .zip(self.stats.iter().map(|s| s.snapshot()))
    }

    /// Whether the recorder failed (an HDF5 error such as a full disk) or its thread ended on
    /// its own; `stop` then reports the error in the summary.
    pub fn recorder_failed(&self) -> bool {
        self.recorder.has_failed() || self.recorder.is_finished()
    }

    /// Whether every capture thread has ended on its own (all devices failed).
    pub fn all_captures_ended(&self) -> bool {
        self.captures.iter().all(JoinHandle::is_finished)
    }

    /// Stops the sources, drains the rings, closes and finalizes the file.
    pub fn stop(self, reason: &str) -> Result<SessionSummary> {
        // Stimulator outputs off first: nothing fires while the rest drains.
        self.closed_loop.halt_outputs();
        self.stop.store(true, Ordering::Relaxed);
        // A capture thread asleep in its source (pacing, a reconnection backoff) wakes now.
        for capture in &self.captures {
            capture.thread().unpark();
        }
        let duration_s = self.clock.seconds(monotonic_ns());
        let ends: Vec<CaptureEnd> = self
            .captures
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(CaptureEnd::Failed("capture thread panicked".into()))
            })
            .collect();
        let loop_report: LoopReport = self.closed_loop.stop();
        let (report, mut recording_error) = recording_outcome(self.recorder.join(), &self.stats);
        if let Some(e) = &recording_error {
            tracing::error!(error = %e, "recording failed");
        }
        let streams: Vec<StreamSummary> = self
            .stream_names
            .iter()
            .zip(&self.stats)
            .zip(ends)
            .zip(&report.frames)
            .map(|(((name, stats), end), &frames_in_file)| {
                let stats = stats.snapshot();
                StreamSummary {
                    name: name.clone(),
                    achieved_fps: stats.captured as f64 / duration_s.max(1e-9),
                    stats,
                    frames_in_file,
                    failure: match end {
                        CaptureEnd::Stopped => None,
                        CaptureEnd::Failed(why) => Some(why),
                    },
                }
            })
            .collect();
        let closed_loop = loop_summary(&loop_report, &report, duration_s);
        let mut notes = session_notes(reason, duration_s, &streams);
        if let Some(e) = &recording_error {
            notes.push_str(&failure_note(e));
        }
        notes.push_str(&closed_loop.notes());
        match finalize::finalize(&self.path, &notes) {
            Ok(done) => {
                if !done.removed.is_empty() {
                    tracing::info!(removed = ?done.removed, "pruned empty objects from the session file");
                }
                if !done.trimmed.is_empty() {
                    tracing::warn!(trimmed = ?done.trimmed, "cut datasets to the rows every part of their series holds");
                }
            }
            Err(e) => {
                let e = match crate::record::os_error_of(&e) {
                    Some(os) => format!("cannot finalize {}: {os} ({e})", self.path.display()),
                    None => format!("cannot finalize {}: {e}", self.path.display()),
                };
                tracing::error!(error = %e, "the session file was closed but not finalized");
                recording_error = Some(match recording_error {
                    Some(first) => format!("{first}; then {e}"),
                    None => e,
                });
            }
        }
        let file_bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        Ok(SessionSummary {
            path: self.path,
            file_bytes,
            duration_s,
            streams,
            gap_rows: report.gap_rows,
            closed_loop,
            recording_error,
        })
    }
}

/// `dir/name.nwb`, or `dir/name-2.nwb`, ... if that exists already.
fn unused_path(dir: &Path, base: &str) -> (String, PathBuf) {
    let mut name = base.to_string();
    let mut n = 1;
    loop {
        let path = dir.join(format!("{name}.nwb"));
        if !path.exists() {
            return (name, path);
        }
        n += 1;
        name = format!("{base}-{n}");
    }
}

/// The recorder's report and why it failed, if it did. A recorder that could not even close
/// the file reports no counts: the stream counters stand in for them.
fn recording_outcome(
    joined: Result<RecordingReport, RecordError>,
    stats: &[Arc<StreamStats>],
) -> (RecordingReport, Option<String>) {
    match joined {
        Ok(report) => {
            let failure = report.failure.clone();
            (report, failure)
        }
        Err(e) => {
            let report = RecordingReport {
                path: PathBuf::new(),
                frames: stats.iter().map(|s| s.snapshot().recorded).collect(),
                gap_rows: 0,
                output_rows: Vec::new(),
                trigger_rows: 0,
                failure: None,
            };
            (
                report,
                Some(format!(
                    "{e}; the file could not be closed and holds what was flushed before"
                )),
            )
        }
    }
}

/// The notes' paragraph on a failed recording.
fn failure_note(error: &str) -> String {
    format!(
        "Recording failed: {error}. This file holds what was written before the failure, every \
         dataset of a series or table cut to the same number of rows; frames captured after it \
         are not in the file.\n"
    )
}

fn session_notes(reason: &str, duration_s: f64, streams: &[StreamSummary]) -> String {
    let mut notes = format!("Session stopped: {reason}. Duration {duration_s:.3} s.\n");
    for s in streams {
        let drops = DropCause::ALL
            .iter()
            .map(|c| format!("{} {}", c.label(), s.stats.dropped[*c as usize]))
            .collect::<Vec<_>>()
            .join(", ");
        notes.push_str(&format!(
            "{}: captured {}, recorded {}, dropped {} ({drops}), {:.2} fps{}.\n",
            s.name,
            s.stats.captured,
            s.frames_in_file,
            s.stats.dropped_total(),
            s.achieved_fps,
            s.failure
                .as_ref()
                .map(|f| format!(", capture failed: {f}"))
                .unwrap_or_default()
        ));
    }
    notes
}
