//! The long-lived engine behind `behavd serve` and `behavd run`: devices open, frames flowing
//! through models, rules and signals, the recorder in standby ("live"); a session file begins
//! and ends without any device reopened or thread restarted ("recording").
//!
//! Lifecycle: [`Engine::open`] → live; [`Engine::begin`] → recording; [`Engine::end`] finalizes
//! the file and consumes the engine (open a new one to be live again); [`Engine::close`]
//! releases the devices. All methods are synchronous and meant for a blocking thread of the
//! control plane; the data plane never waits on them.

mod begin;
mod end;
mod events;
mod snapshot;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

pub use begin::{BeginError, SessionRequest, SessionStarted};
pub use events::EngineEvent;
pub use snapshot::{
    DiskSnapshot, EngineSnapshot, HeartbeatSnapshot, OutputSnapshot, ProducerSnapshot,
    RuleSnapshot, SessionSnapshot, StreamSnapshot,
};

use super::capture::{CaptureEnd, CaptureLoop};
use super::closed_loop::{ClosedLoop, ClosedLoopPlan};
use super::controls::{CONTROL_LOG_ROWS, LiveControls, LiveControlsSetup, StreamControls};
use super::gate::{SessionGate, ThreadWatch};
use super::session::SetupInterrupted;
use crate::clock::{SessionClock, monotonic_ns};
use crate::config::{LoadedConfig, RigConfig};
use crate::heartbeat::Heartbeat;
use crate::record::StreamSetup;
use crate::record::control_log::ControlLog;
use crate::record::standby::{EventSink, StandbyRecorder, StandbySetup};
use crate::source::live::StreamInbox;
use crate::stats::StreamStats;

/// Gap records a stream may queue before the recorder picks them up.
const GAP_RING: usize = 1024;
/// Events the recorder may queue for the control plane before they are counted as lost.
const EVENT_RING: usize = 16_384;

/// How to open an engine.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Overrides `[recording].output_dir`.
    pub output_dir: Option<PathBuf>,
    /// Set (by a signal) to abandon the set-up: [`Engine::open`] then returns
    /// [`SetupInterrupted`] with every thread it started stopped again.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// The session being recorded.
struct Active {
    name: String,
    path: PathBuf,
    clock: SessionClock,
    subject: String,
    duration_s: Option<f64>,
    notes: Option<String>,
}

/// The running data plane of one rig config.
pub struct Engine {
    config: RigConfig,
    output_dir: PathBuf,
    gate: Arc<SessionGate>,
    watch: ThreadWatch,
    stream_names: Vec<String>,
    stats: Vec<Arc<StreamStats>>,
    ring_capacity: Vec<usize>,
    names: events::EventNames,
    stop: Arc<AtomicBool>,
    captures: Vec<JoinHandle<CaptureEnd>>,
    /// Capture loops not started yet ([`Engine::prepare`] until [`Engine::start_capture`]).
    pending: Vec<CaptureLoop>,
    closed_loop: ClosedLoop,
    recorder: StandbyRecorder,
    events: Mutex<events::EventState>,
    events_lost: Arc<AtomicU64>,
    session: Option<Active>,
    fps: Mutex<snapshot::FpsState>,
    opened_ns: u64,
    controls: LiveControls,
    telemetry: Arc<crate::telemetry::Telemetry>,
}

impl Engine {
    /// Opens every device, loads and warms up the models, connects the outputs and starts
    /// every thread: capture → models → rules → links, the recorder in standby. Rules are
    /// disarmed unless `[daemon] arm_in_live = true`.
    pub fn open(loaded: &LoadedConfig, options: &EngineOptions) -> Result<Self> {
        let mut engine = Self::prepare(loaded, options)?;
        engine.start_capture()?;
        Ok(engine)
    }

    /// [`open`](Self::open) but for the capture threads: everything else runs, the sources
    /// are open and deliver nothing yet. `behavd run` begins its session before starting
    /// capture, so the file holds every frame from the first; then [`Self::start_capture`].
    pub fn prepare(loaded: &LoadedConfig, options: &EngineOptions) -> Result<Self> {
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
        let gate = SessionGate::new();
        let watch = ThreadWatch::new(Arc::clone(&gate), config.daemon.thread_deadline());
        let stop = Arc::new(AtomicBool::new(false));
        let mut mailboxes = Vec::new();
        let mut streams = Vec::new();
        let mut loops = Vec::new();
        let mut stats = Vec::new();
        let mut ring_capacity = Vec::new();
        let mut stream_controls = Vec::new();
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
            ring_capacity.push(ring_frames);
            let inbox = Arc::new(StreamInbox::default());
            stream_controls.push(StreamControls {
                name: info.name.clone(),
                controls: source.live_controls(),
                inbox: Arc::clone(&inbox),
                frame_period_ns: (1e9 / info.nominal_fps.max(0.01)) as u64,
            });
            loops.push(CaptureLoop {
                controls: inbox,
                heartbeat: watch.heartbeat(&format!("capture-{}", info.name)),
                source,
                pool,
                recorder: frames_tx,
                gaps: gaps_tx,
                stats: Arc::clone(&stream_stats),
                stop: Arc::clone(&stop),
                mailboxes: stream_mailboxes
                    .iter()
                    .map(|(_, m)| Arc::clone(m))
                    .collect(),
                gate: Arc::clone(&gate),
            });
            streams.push(StreamSetup {
                info,
                compression: *source_config
                    .compression()
                    .unwrap_or(&config.recording.compression),
                ground_truth: super::has_ground_truth(source_config),
                frames: frames_rx,
                gaps: gaps_rx,
                stats: stream_stats,
            });
            mailboxes.extend(stream_mailboxes);
        }
        let (closed_loop, loop_recording) =
            match ClosedLoop::start(plan, mailboxes, cancel, &watch, config.daemon.arm_in_live) {
                Ok(started) => started,
                Err(_) if interrupted() => return Err(SetupInterrupted.into()),
                Err(e) => return Err(e),
            };
        let output_names = loop_recording
            .triggers
            .as_ref()
            .map_or_else(Vec::new, |t| t.outputs.clone());
        let stream_names: Vec<String> = streams.iter().map(|s| s.info.name.clone()).collect();
        let stream_names_for_events = stream_names.clone();
        let links = loop_recording
            .triggers
            .as_ref()
            .map_or(0, |t| t.events.len());
        // Live controls: their changes are recorded only while a session records.
        let control_log = Arc::new(ControlLog::new(CONTROL_LOG_ROWS));
        let controls = LiveControls::new(LiveControlsSetup {
            streams: stream_controls,
            rules: (!closed_loop.rule_names.is_empty()).then(|| {
                (
                    closed_loop.rule_names.clone(),
                    Arc::clone(&closed_loop.arming),
                )
            }),
            outputs: closed_loop.pulse_targets(),
            log: Arc::clone(&control_log),
        });
        let (events_tx, events_rx) = rtrb::RingBuffer::new(EVENT_RING);
        let events_lost = Arc::new(AtomicU64::new(0));
        let recorder = StandbyRecorder::start(StandbySetup {
            config_text: loaded.text.clone(),
            streams,
            flush_interval: std::time::Duration::from_secs_f64(config.recording.flush_interval_s),
            compress_threads: config.recording.compress_threads,
            outputs: loop_recording.outputs,
            triggers: loop_recording.triggers,
            gate: Arc::clone(&gate),
            heartbeat: watch.heartbeat("recorder"),
            events: EventSink {
                ring: events_tx,
                lost: Arc::clone(&events_lost),
            },
            last_connected: vec![None; links],
            controls: Some(control_log),
            telemetry: Arc::default(),
        });
        let recorder = match recorder {
            Ok(r) => r,
            Err(e) => {
                closed_loop.halt_outputs();
                closed_loop.stop();
                return Err(e).context("cannot start the recorder thread");
            }
        };
        let n = stats.len();
        let mut telemetry = crate::telemetry::Telemetry::new(monotonic_ns());
        for (name, s) in stream_names.iter().zip(&stats) {
            telemetry.add_stream(name, s);
        }
        closed_loop.register_telemetry(&mut telemetry);
        telemetry.set_recorder(recorder.telemetry());
        Ok(Self {
            telemetry: Arc::new(telemetry),
            config: config.clone(),
            output_dir,
            gate,
            watch,
            stream_names,
            stats,
            ring_capacity,
            names: events::EventNames {
                rules: closed_loop.rule_names.clone(),
                outputs: output_names,
                streams: stream_names_for_events,
            },
            stop,
            captures: Vec::new(),
            pending: loops,
            closed_loop,
            recorder,
            events: Mutex::new(events::EventState::new(events_rx, n)),
            events_lost,
            session: None,
            fps: Mutex::new(snapshot::FpsState::new(n)),
            opened_ns: monotonic_ns(),
            controls,
        })
    }

    /// Starts the capture threads of a [`prepare`](Self::prepare)d engine (no-op once
    /// started). On failure the engine is closed.
    pub fn start_capture(&mut self) -> Result<()> {
        for capture in std::mem::take(&mut self.pending) {
            let name = format!("capture-{}", capture.source.info().name);
            match std::thread::Builder::new()
                .name(name)
                .spawn(move || capture.run())
            {
                Ok(h) => self.captures.push(h),
                Err(e) => {
                    // The engine cannot run with a stream missing: stop what started.
                    self.stop.store(true, Ordering::Relaxed);
                    return Err(e).context("cannot start a capture thread");
                }
            }
        }
        tracing::info!(
            streams = self.captures.len(),
            "live: devices open, frames flowing"
        );
        Ok(())
    }

    /// One heartbeat per data-plane thread (each capture, the recorder, each inference and
    /// signal worker, the rules, each stimulator link), each beaten every time round its loop.
    pub fn heartbeats(&self) -> Vec<Arc<Heartbeat>> {
        self.watch.heartbeats()
    }

    /// The live controls (Miniscope controls, rule arming, manual pulses, notes); what they
    /// change while a session records lands in its `acquisition/ControlChanges`.
    pub fn controls(&self) -> LiveControls {
        self.controls.clone()
    }

    /// The live counters and latency histograms of every data-plane thread.
    pub fn telemetry(&self) -> &Arc<crate::telemetry::Telemetry> {
        &self.telemetry
    }

    /// Whether a session is being recorded.
    pub fn is_recording(&self) -> bool {
        self.session.is_some()
    }

    /// The session file being written, if any.
    pub fn session_path(&self) -> Option<&std::path::Path> {
        self.session.as_ref().map(|s| s.path.as_path())
    }

    /// The session's name, if any.
    pub fn session_name(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.name.as_str())
    }

    /// The session's clock, if any.
    pub fn session_clock(&self) -> Option<SessionClock> {
        self.session.as_ref().map(|s| s.clock)
    }

    /// The rules' arm switches (rule `i` is the config's `rule[i]`).
    pub fn arming(&self) -> &Arc<super::gate::RuleArming> {
        &self.closed_loop.arming
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

    /// Stream names and their live counters since the engine opened, in config order.
    pub fn live_stats(&self) -> impl Iterator<Item = (&str, crate::stats::StatsSnapshot)> {
        self.stream_names
            .iter()
            .map(String::as_str)
            .zip(self.stats.iter().map(|s| s.snapshot()))
    }

    /// Whether the recorder failed (an HDF5 error such as a full disk) or its thread ended.
    pub fn recorder_failed(&self) -> bool {
        self.recorder.has_failed() || self.recorder.is_finished()
    }

    /// Whether every capture thread has ended on its own (all devices failed).
    pub fn all_captures_ended(&self) -> bool {
        !self.captures.is_empty() && self.captures.iter().all(JoinHandle::is_finished)
    }

    /// Live → idle: outputs off, every thread stopped, devices released. A session still
    /// recording is ended first (its file finalized), so nothing recorded is lost.
    pub fn close(self) -> Result<()> {
        if self.session.is_some() {
            self.end("the engine was closed").map(drop)
        } else {
            let stopped = self.stop_threads();
            match stopped.recording {
                Ok(None) => Ok(()),
                Ok(Some(_)) => Ok(()),
                Err(e) => Err(e).context("the recorder thread failed while live"),
            }
        }
    }

    /// Halts the outputs, then stops and joins every thread in order: capture, models, rules,
    /// links, recorder.
    fn stop_threads(self) -> Stopped {
        // No live change starts from here on.
        self.controls.close();
        // Stimulator outputs off first: nothing fires while the rest drains.
        self.closed_loop.halt_outputs();
        self.stop.store(true, Ordering::Relaxed);
        // A capture thread asleep in its source (pacing, a reconnection backoff) wakes now.
        for capture in &self.captures {
            capture.thread().unpark();
        }
        let ended_ns = monotonic_ns();
        // Loops never started: their sources close here.
        drop(self.pending);
        let ends: Vec<CaptureEnd> = self
            .captures
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(CaptureEnd::Failed("capture thread panicked".into()))
            })
            .collect();
        let loop_report = self.closed_loop.stop();
        let recording = self.recorder.join();
        self.controls.log().end();
        Stopped {
            ends,
            loop_report,
            recording,
            ended_ns,
            session: self.session,
            stats: self.stats,
            stream_names: self.stream_names,
            events: self.events.into_inner().unwrap_or_else(|e| e.into_inner()),
            names: self.names,
        }
    }
}

/// What is left once every thread has stopped.
struct Stopped {
    ends: Vec<CaptureEnd>,
    loop_report: super::closed_loop::LoopReport,
    recording: Result<Option<crate::record::RecordingReport>, crate::record::RecordError>,
    ended_ns: u64,
    session: Option<Active>,
    stats: Vec<Arc<StreamStats>>,
    stream_names: Vec<String>,
    events: events::EventState,
    names: events::EventNames,
}

#[cfg(test)]
mod tests {
    /// The control plane moves the engine to a blocking thread: it must be `Send`.
    #[test]
    fn the_engine_is_send() {
        fn send<T: Send>() {}
        send::<super::Engine>();
        send::<super::EngineSnapshot>();
        send::<super::EngineEvent>();
    }
}
