//! The lifecycle idle → live → recording → live → idle, over the engine, and the one place the
//! service manager hears about it ([`ServiceHooks`]: ready, status line changed, stopping).
//!
//! Engine calls are synchronous and may take seconds (opening devices, warming models,
//! finalizing a file): they run on one plain thread, `daemon-engine`, which owns the engine and
//! takes commands in order. The HTTP handlers never wait on it for a read: the state, the
//! latest snapshot and the config are published here, under locks only the control plane takes.
//! Transitions are decided under the state lock, so two concurrent starts give exactly one
//! session and the other an immediate 409.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::pipeline::controls::LiveControls;
use crate::pipeline::engine::{EngineOptions, SessionRequest, SessionStarted};

use super::error::ApiError;
use super::events::EventHub;
use crate::config::LoadedConfig;
use crate::heartbeat::Heartbeat;

/// How often the engine thread drains events, publishes a snapshot and checks whether the
/// session should end.
pub(super) const TICK: Duration = Duration::from_millis(50);

/// Where the daemon is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Nothing open.
    Idle,
    /// Opening devices or beginning a session.
    Starting,
    /// Devices open, frames flowing, nothing recorded.
    Live,
    /// A session file is being written.
    Recording,
    /// Ending a session or closing devices.
    Stopping,
}

impl Phase {
    /// The lower-case name used in the API.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Starting => "starting",
            Phase::Live => "live",
            Phase::Recording => "recording",
            Phase::Stopping => "stopping",
        }
    }
}

/// What the service manager is told (systemd's `READY=1`, `STATUS=`, `STOPPING=1`). Every call
/// comes from here; the default methods do nothing.
pub trait ServiceHooks: Send + Sync {
    /// The rig is loaded and the API is listening.
    fn ready(&self, _status: &str) {}
    /// The one-line status changed.
    fn status(&self, _status: &str) {}
    /// The daemon is stopping (the session, if any, is being finalized).
    fn stopping(&self) {}
    /// Where the service watchdog reads the data-plane heartbeats to check
    /// ([`Lifecycle::heartbeats`]); given once, when the lifecycle has started.
    fn watch(&self, _source: crate::daemon::watchdog::HeartbeatSource) {}
}

/// Hooks that only log.
pub struct LogHooks;

impl ServiceHooks for LogHooks {
    fn ready(&self, status: &str) {
        tracing::info!(%status, "ready");
    }
    fn stopping(&self) {
        tracing::info!("stopping");
    }
}

/// The published state the handlers read.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// Lifecycle phase.
    pub state: Phase,
    /// When it was entered, RFC 3339.
    pub since: String,
    /// The running session.
    pub session: Option<SessionStarted>,
    /// The last session's summary.
    pub last_session: Option<Value>,
    /// The last failure of a lifecycle step, in words.
    pub last_error: Option<String>,
}

pub(super) enum Command {
    Begin(
        SessionRequest,
        String,
        oneshot::Sender<Result<SessionStarted, ApiError>>,
    ),
    End(String, Option<oneshot::Sender<Result<Value, ApiError>>>),
    Live(oneshot::Sender<Result<(), ApiError>>),
    Idle(oneshot::Sender<Result<(), ApiError>>),
    Load(Box<LoadedConfig>, oneshot::Sender<Result<(), ApiError>>),
    Shutdown(String, oneshot::Sender<()>),
}

/// The lifecycle: the published state, and the queue to the engine thread.
pub struct Lifecycle {
    pub(super) view: Mutex<View>,
    pub(super) snapshot: Mutex<Arc<Value>>,
    pub(super) config: Mutex<Arc<LoadedConfig>>,
    pub(super) controls: Mutex<Option<LiveControls>>,
    pub(super) heartbeats: Mutex<Vec<Arc<Heartbeat>>>,
    pub(super) telemetry: Mutex<Option<Arc<crate::telemetry::Telemetry>>>,
    disk_free: AtomicU64,
    commands: Sender<Command>,
    pub(super) hooks: Arc<dyn ServiceHooks>,
    /// The event stream.
    pub events: EventHub,
    /// When the daemon started.
    pub started: Instant,
    /// Where session files go.
    pub output_dir: PathBuf,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn engine_gone() -> ApiError {
    ApiError::internal("the engine thread has stopped")
}

impl Lifecycle {
    /// Starts the engine thread (idle: nothing opened yet).
    pub fn start(
        loaded: LoadedConfig,
        options: EngineOptions,
        hooks: Arc<dyn ServiceHooks>,
    ) -> anyhow::Result<(Arc<Lifecycle>, JoinHandle<()>)> {
        let output_dir = options
            .output_dir
            .clone()
            .unwrap_or_else(|| loaded.config.recording.output_dir.clone());
        let (tx, rx) = crossbeam_channel::unbounded();
        let lifecycle = Arc::new(Lifecycle {
            view: Mutex::new(View {
                state: Phase::Idle,
                since: now(),
                session: None,
                last_session: None,
                last_error: None,
            }),
            snapshot: Mutex::new(Arc::new(Value::Null)),
            config: Mutex::new(Arc::new(loaded)),
            controls: Mutex::new(None),
            heartbeats: Mutex::new(Vec::new()),
            telemetry: Mutex::new(None),
            disk_free: AtomicU64::new(u64::MAX),
            commands: tx,
            hooks,
            events: EventHub::default(),
            started: Instant::now(),
            output_dir,
        });
        lifecycle.refresh_disk();
        let thread = Arc::clone(&lifecycle);
        let handle = std::thread::Builder::new()
            .name("daemon-engine".into())
            .spawn(move || super::engine_thread::EngineThread::new(thread, options).run(rx))?;
        Ok((lifecycle, handle))
    }

    /// The published state.
    pub fn view(&self) -> View {
        lock(&self.view).clone()
    }

    /// The latest engine snapshot (`null` while idle).
    pub fn snapshot(&self) -> Arc<Value> {
        Arc::clone(&lock(&self.snapshot))
    }

    /// The config in use.
    pub fn config(&self) -> Arc<LoadedConfig> {
        Arc::clone(&lock(&self.config))
    }

    /// The progress marks of the open engine's data-plane threads (empty while idle): what the
    /// service watchdog checks with [`crate::heartbeat::first_overdue`].
    pub fn heartbeats(&self) -> Vec<Arc<Heartbeat>> {
        lock(&self.heartbeats).clone()
    }

    /// The open engine's live counters and histograms (None while idle): `GET /metrics`.
    pub fn telemetry(&self) -> Option<Arc<crate::telemetry::Telemetry>> {
        lock(&self.telemetry).clone()
    }

    /// Free bytes on the output directory's filesystem, as of the last tick.
    pub fn disk_free(&self) -> Option<u64> {
        Some(self.disk_free.load(Ordering::Relaxed)).filter(|&b| b != u64::MAX)
    }

    /// The one-line status (systemd's `STATUS=`, `ctl status`'s first line).
    pub fn status_line(&self) -> String {
        status_line(&self.view(), &self.config().origin)
    }

    /// Tells the service manager the daemon is ready.
    pub fn ready(&self) {
        self.hooks.ready(&self.status_line());
    }

    pub(super) fn set_phase(&self, view: &mut View, phase: Phase) {
        let previous = view.state;
        view.state = phase;
        view.since = now();
        self.events.publish(
            "state",
            json!({"state": phase, "previous": previous, "session": view.session}),
        );
        self.hooks.status(&status_line(view, &self.config().origin));
    }

    fn send(&self, command: Command) -> Result<(), ApiError> {
        self.commands.send(command).map_err(|_| engine_gone())
    }

    /// Starts a session (from idle or live). Exactly one of concurrent starts is accepted; the
    /// others get 409 at once.
    pub fn begin(
        &self,
        request: SessionRequest,
        origin: String,
    ) -> Result<oneshot::Receiver<Result<SessionStarted, ApiError>>, ApiError> {
        let mut view = lock(&self.view);
        match view.state {
            Phase::Idle | Phase::Live => {}
            Phase::Recording => {
                let name = view.session.as_ref().map(|s| s.name.as_str()).unwrap_or("");
                return Err(ApiError::conflict(format!(
                    "a session is already recording ({name}); stop it first"
                )));
            }
            other => {
                return Err(ApiError::conflict(format!(
                    "cannot start a session while {}",
                    other.name()
                )));
            }
        }
        let (tx, rx) = oneshot::channel();
        self.send(Command::Begin(request, origin, tx))?;
        self.set_phase(&mut view, Phase::Starting);
        Ok(rx)
    }

    /// Ends the running session (file finalized). While a session is starting the stop is
    /// queued behind the start: the session starts, then ends, and this answers with its summary.
    pub fn end(
        &self,
        reason: String,
    ) -> Result<oneshot::Receiver<Result<Value, ApiError>>, ApiError> {
        let mut view = lock(&self.view);
        match view.state {
            Phase::Recording => self.set_phase(&mut view, Phase::Stopping),
            Phase::Starting if view.session.is_none() => {}
            Phase::Stopping => return Err(ApiError::conflict("the session is already stopping")),
            other => {
                return Err(ApiError::conflict(format!(
                    "no session is recording (the daemon is {})",
                    other.name()
                )));
            }
        }
        let (tx, rx) = oneshot::channel();
        self.send(Command::End(reason, Some(tx)))?;
        Ok(rx)
    }

    /// Idle → live: devices open, nothing recorded.
    pub fn live(&self) -> Result<oneshot::Receiver<Result<(), ApiError>>, ApiError> {
        let mut view = lock(&self.view);
        let (tx, rx) = oneshot::channel();
        match view.state {
            Phase::Live => {
                let _ = tx.send(Ok(()));
                return Ok(rx);
            }
            Phase::Idle => {}
            other => {
                return Err(ApiError::conflict(format!(
                    "cannot go live while {}",
                    other.name()
                )));
            }
        }
        self.send(Command::Live(tx))?;
        self.set_phase(&mut view, Phase::Starting);
        Ok(rx)
    }

    /// Live → idle: devices released.
    pub fn idle(&self) -> Result<oneshot::Receiver<Result<(), ApiError>>, ApiError> {
        let mut view = lock(&self.view);
        let (tx, rx) = oneshot::channel();
        match view.state {
            Phase::Idle => {
                let _ = tx.send(Ok(()));
                return Ok(rx);
            }
            Phase::Live => {}
            Phase::Recording => {
                return Err(ApiError::conflict(
                    "a session is recording; stop it before going idle",
                ));
            }
            other => {
                return Err(ApiError::conflict(format!(
                    "cannot go idle while {}",
                    other.name()
                )));
            }
        }
        self.send(Command::Idle(tx))?;
        self.set_phase(&mut view, Phase::Stopping);
        Ok(rx)
    }

    /// Replaces the config (only while idle).
    pub fn load(
        &self,
        loaded: LoadedConfig,
    ) -> Result<oneshot::Receiver<Result<(), ApiError>>, ApiError> {
        let view = lock(&self.view);
        if view.state != Phase::Idle {
            return Err(ApiError::conflict(format!(
                "a config can be loaded only while idle (the daemon is {})",
                view.state.name()
            )));
        }
        let (tx, rx) = oneshot::channel();
        self.send(Command::Load(Box::new(loaded), tx))?;
        Ok(rx)
    }

    /// The live controls, while live or recording.
    pub fn controls(&self) -> Result<LiveControls, ApiError> {
        let state = lock(&self.view).state;
        match (state, lock(&self.controls).clone()) {
            (Phase::Live | Phase::Recording, Some(c)) => Ok(c),
            _ => Err(ApiError::conflict(format!(
                "no live controls while {} (go live or start a session)",
                state.name()
            ))),
        }
    }

    /// Ends the running session (if any), closes the engine and stops the engine thread.
    pub fn shutdown(&self, reason: String) -> oneshot::Receiver<()> {
        self.hooks.stopping();
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Shutdown(reason, tx));
        rx
    }

    pub(super) fn refresh_disk(&self) {
        let free = free_bytes(&self.output_dir);
        self.disk_free
            .store(free.unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

fn now() -> String {
    chrono::Local::now().to_rfc3339()
}

/// The one-line status of `view`.
pub fn status_line(view: &View, config: &str) -> String {
    match (&view.state, &view.session) {
        (Phase::Recording, Some(s)) => format!("recording {} into {}", s.name, s.path.display()),
        (state, _) => format!("{} (config {config})", state.name()),
    }
}

/// Free bytes for an unprivileged writer on the filesystem holding `dir` (its nearest existing
/// ancestor), or None when it cannot be asked.
pub fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let mut path = dir;
    while !path.exists() {
        path = path.parent()?;
    }
    let path = if path.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        path
    };
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a statvfs struct to fill.
    if unsafe { libc::statvfs(c.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}
