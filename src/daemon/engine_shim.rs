//! TEMPORARY adapter: the Engine API of the contract (`pipeline::engine::Engine`) over today's
//! [`RunningSession`], so the control plane runs end to end before the engine branch lands.
//! It is deleted when `pipeline::engine` and `pipeline::controls` are on main.
//!
//! What it cannot do: a live state without recording (`begin` opens the devices and starts
//! recording at once; `end` closes them), and live controls other than notes (LED, EWL, gain,
//! arm/disarm, pulses answer "not available"). Notes are kept and written into the session
//! file's notes when the session ends, each with its time and origin.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use crate::config::LoadedConfig;
use crate::pipeline::{RunOptions, RunningSession, SessionSummary};
use crate::stats::DropCause;

/// Whether this engine has a live state (devices open, nothing recorded). The shim has not.
pub const LIVE_AVAILABLE: bool = false;

/// How to open the engine.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Overrides `[recording].output_dir`.
    pub output_dir: Option<PathBuf>,
    /// Set to abandon a set-up in progress.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// What a session is started with; every field overrides the config's `[session]`.
#[derive(Debug, Clone, Default)]
pub struct SessionRequest {
    /// Subject id.
    pub subject: Option<String>,
    /// Session description.
    pub description: Option<String>,
    /// Notes written into the file.
    pub notes: Option<String>,
    /// Experimenters.
    pub experimenter: Option<Vec<String>>,
    /// End the session after this many seconds.
    pub duration_s: Option<f64>,
}

/// A session that began.
#[derive(Debug, Clone, Serialize)]
pub struct SessionStarted {
    /// Session name.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// Wall-clock start, RFC 3339.
    pub start_wall: String,
}

/// Why a session did not begin.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    /// A session is already recording.
    #[error("a session is already recording")]
    AlreadyRecording,
    /// A request field is not usable.
    #[error("{field}: {why}")]
    Invalid {
        /// The field.
        field: String,
        /// Why, in words.
        why: String,
    },
    /// The set-up failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Why a live control was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// This build has no live controls.
    #[error("live controls are not available in this build yet ({0})")]
    NotAvailable(&'static str),
    /// No session is recording.
    #[error("no session is recording")]
    NotRecording,
}

/// A control that was applied.
#[derive(Debug, Clone, Serialize)]
pub struct ControlApplied {
    /// What was done, in words.
    pub applied: String,
}

/// Cheap handle to the live controls.
#[derive(Clone)]
pub struct LiveControls {
    notes: Arc<Mutex<Vec<String>>>,
    started: Option<Instant>,
}

impl LiveControls {
    /// Sets a stream control.
    pub fn set(&self, _: &str, _: &str, _: f64, _: &str) -> Result<ControlApplied, ControlError> {
        Err(ControlError::NotAvailable("stream controls"))
    }
    /// Arms or disarms a rule.
    pub fn arm(&self, _: &str, _: bool, _: &str) -> Result<ControlApplied, ControlError> {
        Err(ControlError::NotAvailable("arming rules"))
    }
    /// A manual pulse.
    pub fn pulse(&self, _: &str, _: f64, _: &str) -> Result<ControlApplied, ControlError> {
        Err(ControlError::NotAvailable("manual pulses"))
    }
    /// Adds a note to the running session, with its time and origin.
    pub fn note(&self, text: &str, origin: &str) -> Result<ControlApplied, ControlError> {
        let started = self.started.ok_or(ControlError::NotRecording)?;
        let at = started.elapsed().as_secs_f64();
        let line = format!("[{at:.3} s, {origin}] {text}");
        self.notes.lock().expect("notes").push(line.clone());
        Ok(ControlApplied { applied: line })
    }
}

/// Something that happened in the data plane.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EngineEvent {
    /// A trigger was decided and handed to the stimulator link (the `n`-th of the session).
    Trigger {
        /// 1-based number of the trigger in the session.
        n: u64,
    },
    /// Frames were lost.
    Drops {
        /// Stream.
        stream: String,
        /// Cause label.
        cause: String,
        /// Frames lost since the last report.
        frames: u64,
    },
    /// Something failed.
    Fault {
        /// What, in words.
        what: String,
    },
}

/// Live state of the engine (atomics only).
#[derive(Debug, Clone, Serialize)]
pub struct EngineSnapshot {
    /// Whether a session is recording.
    pub recording: bool,
    /// The running session.
    pub session: Option<SessionSnapshot>,
    /// Per stream.
    pub streams: Vec<StreamSnapshot>,
    /// Per model or signal group.
    pub producers: Vec<ProducerSnapshot>,
    /// Triggers handed to the links.
    pub triggers_sent: u64,
}

/// The running session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionSnapshot {
    /// Name.
    pub name: String,
    /// File.
    pub path: PathBuf,
    /// Seconds since it began.
    pub elapsed_s: f64,
    /// Subject id.
    pub subject: String,
}

/// One stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSnapshot {
    /// Name.
    pub name: String,
    /// Counters since the devices opened (the shim opens them with the session).
    pub live: crate::stats::StatsSnapshot,
    /// Counters of the running session.
    pub session: Option<crate::stats::StatsSnapshot>,
    /// Frames captured per second since the session began.
    pub fps: f64,
}

/// One model or signal group.
#[derive(Debug, Clone, Serialize)]
pub struct ProducerSnapshot {
    /// Name.
    pub name: String,
    /// Frames processed.
    pub processed: u64,
    /// Frames skipped.
    pub skipped: u64,
}

struct Running {
    session: RunningSession,
    started: Instant,
    duration_s: Option<f64>,
    subject: String,
    start_notes: Option<String>,
    triggers_seen: Cell<u64>,
    dropped_seen: RefCell<Vec<[u64; 4]>>,
}

/// The engine.
pub struct Engine {
    loaded: LoadedConfig,
    options: EngineOptions,
    running: Option<Running>,
    notes: Arc<Mutex<Vec<String>>>,
}

impl Engine {
    /// Opens the engine (the shim opens nothing until `begin`).
    pub fn open(loaded: &LoadedConfig, options: &EngineOptions) -> anyhow::Result<Engine> {
        Ok(Engine {
            loaded: loaded.clone(),
            options: options.clone(),
            running: None,
            notes: Arc::default(),
        })
    }

    /// Opens the devices and starts recording a session.
    pub fn begin(&mut self, request: SessionRequest) -> Result<SessionStarted, BeginError> {
        if self.running.is_some() {
            return Err(BeginError::AlreadyRecording);
        }
        let mut loaded = self.loaded.clone();
        let session = &mut loaded.config.session;
        if let Some(subject) = request.subject {
            if let Some(problem) =
                crate::config::names::file_name_problem(&subject, crate::config::names::MAX_NAME)
            {
                return Err(BeginError::Invalid {
                    field: "subject".into(),
                    why: format!("the subject id {problem}"),
                });
            }
            session.subject.id = subject;
        }
        if let Some(d) = request.description {
            session.description = d;
        }
        if let Some(e) = request.experimenter {
            session.experimenter = e;
        }
        let subject = session.subject.id.clone();
        let options = RunOptions {
            output_dir: self.options.output_dir.clone(),
            cancel: self.options.cancel.clone(),
        };
        let started = Instant::now();
        let session = RunningSession::start(&loaded, &options)?;
        let start_wall = session.clock.start_wall.to_rfc3339();
        let streams = session.live_stats().count();
        let started_at = SessionStarted {
            name: session.name.clone(),
            path: session.path.clone(),
            start_wall,
        };
        self.notes.lock().expect("notes").clear();
        self.running = Some(Running {
            session,
            started,
            duration_s: request.duration_s,
            subject,
            start_notes: request.notes,
            triggers_seen: Cell::new(0),
            dropped_seen: RefCell::new(vec![[0; 4]; streams]),
        });
        Ok(started_at)
    }

    /// Ends the running session (file finalized) and closes the engine.
    pub fn end(self, reason: &str) -> anyhow::Result<SessionSummary> {
        let running = self.running.context("no session is recording")?;
        let mut reason = reason.to_string();
        if let Some(n) = running.start_notes.as_deref().filter(|n| !n.is_empty()) {
            reason.push_str(&format!(". Notes at start: {n}"));
        }
        let notes = self.notes.lock().expect("notes").clone();
        if !notes.is_empty() {
            reason.push_str(&format!(". Notes: {}", notes.join("; ")));
        }
        running.session.stop(&reason)
    }

    /// Closes the engine (devices released).
    pub fn close(self) {
        if let Some(running) = self.running {
            let _ = running.session.stop("engine closed");
        }
    }

    /// Why the running session should end now.
    pub fn session_end_due(&self) -> Option<String> {
        let r = self.running.as_ref()?;
        if let Some(d) = r.duration_s
            && r.started.elapsed().as_secs_f64() >= d
        {
            return Some(format!("duration of {d} s reached"));
        }
        if r.session.recorder_failed() {
            return Some("the recorder stopped with an error".into());
        }
        if r.session.all_captures_ended() {
            return Some("every source stopped".into());
        }
        None
    }

    /// The live state.
    pub fn snapshot(&self) -> EngineSnapshot {
        let Some(r) = &self.running else {
            return EngineSnapshot {
                recording: false,
                session: None,
                streams: Vec::new(),
                producers: Vec::new(),
                triggers_sent: 0,
            };
        };
        let elapsed_s = r.started.elapsed().as_secs_f64();
        EngineSnapshot {
            recording: true,
            session: Some(SessionSnapshot {
                name: r.session.name.clone(),
                path: r.session.path.clone(),
                elapsed_s,
                subject: r.subject.clone(),
            }),
            streams: r
                .session
                .live_stats()
                .map(|(name, stats)| StreamSnapshot {
                    name: name.to_string(),
                    fps: stats.captured as f64 / elapsed_s.max(1e-9),
                    live: stats,
                    session: Some(stats),
                })
                .collect(),
            producers: r
                .session
                .live_loop_stats()
                .map(|(name, processed, skipped)| ProducerSnapshot {
                    name: name.to_string(),
                    processed,
                    skipped,
                })
                .collect(),
            triggers_sent: r.session.live_triggers(),
        }
    }

    /// One progress mark per data-plane thread (the shim has none to offer).
    pub fn heartbeats(&self) -> Vec<Arc<crate::heartbeat::Heartbeat>> {
        Vec::new()
    }

    /// The live controls.
    pub fn controls(&self) -> LiveControls {
        LiveControls {
            notes: Arc::clone(&self.notes),
            started: self.running.as_ref().map(|r| r.started),
        }
    }

    /// Moves what happened since the last call into `out`.
    pub fn drain_events(&self, out: &mut Vec<EngineEvent>) {
        let Some(r) = &self.running else { return };
        let triggers = r.session.live_triggers();
        for n in r.triggers_seen.get() + 1..=triggers {
            out.push(EngineEvent::Trigger { n });
        }
        r.triggers_seen.set(triggers.max(r.triggers_seen.get()));
        let mut seen = r.dropped_seen.borrow_mut();
        for ((name, stats), seen) in r.session.live_stats().zip(seen.iter_mut()) {
            for cause in DropCause::ALL {
                let i = cause as usize;
                if stats.dropped[i] > seen[i] {
                    out.push(EngineEvent::Drops {
                        stream: name.to_string(),
                        cause: cause.label().to_string(),
                        frames: stats.dropped[i] - seen[i],
                    });
                    seen[i] = stats.dropped[i];
                }
            }
        }
    }

    /// Trigger events the session's end revealed (triggers decided after the last drain): the
    /// shim's stand-in for the events the real engine drains at its end.
    pub fn trailing_triggers(summary: &SessionSummary, drained: u64, out: &mut Vec<EngineEvent>) {
        for n in drained + 1..=summary.closed_loop.triggers_sent {
            out.push(EngineEvent::Trigger { n });
        }
    }
}
