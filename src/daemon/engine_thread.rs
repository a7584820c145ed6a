//! The `daemon-engine` thread: owns the engine, runs the commands the lifecycle queues in
//! order (open, begin, end, close, load), drains the engine's events to the subscribers,
//! publishes its snapshot and ends the session when it is due.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::{Value, json};

use super::error::ApiError;
use super::lifecycle::{Command, Lifecycle, Phase, TICK, View, lock};
use crate::pipeline::engine::{
    BeginError, Engine, EngineEvent, EngineOptions, SessionRequest, SessionStarted,
};

/// The engine thread's state.
pub(super) struct EngineThread {
    shared: Arc<Lifecycle>,
    options: EngineOptions,
    engine: Option<Engine>,
    buffer: Vec<EngineEvent>,
    last_disk: Instant,
}

impl EngineThread {
    pub(super) fn new(shared: Arc<Lifecycle>, options: EngineOptions) -> Self {
        Self {
            shared,
            options,
            engine: None,
            buffer: Vec::with_capacity(256),
            last_disk: Instant::now(),
        }
    }

    pub(super) fn run(mut self, commands: Receiver<Command>) {
        loop {
            match commands.recv_timeout(TICK) {
                Ok(Command::Shutdown(reason, reply)) => {
                    self.shutdown(&reason);
                    let _ = reply.send(());
                    return;
                }
                Ok(command) => self.handle(command),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.shutdown("the daemon ended");
                    return;
                }
            }
            self.tick();
        }
    }

    fn set_phase(&self, phase: Phase, f: impl FnOnce(&mut View)) {
        let mut view = lock(&self.shared.view);
        f(&mut view);
        self.shared.set_phase(&mut view, phase);
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Begin(request, origin, reply) => {
                let _ = reply.send(self.begin(request, &origin));
            }
            Command::End(reason, reply) => {
                let result = self.end(&reason);
                let ended = result.is_ok();
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
                // The stop is answered once the file is finalized, before the devices reopen.
                if ended {
                    self.back_to_live();
                }
            }
            Command::Live(reply) => {
                let result = self.open().map(|_| ());
                let phase = if result.is_ok() {
                    Phase::Live
                } else {
                    Phase::Idle
                };
                self.set_phase(phase, |_| {});
                let _ = reply.send(result);
            }
            Command::Idle(reply) => {
                if let Some(engine) = self.engine.take() {
                    close(engine);
                }
                *lock(&self.shared.controls) = None;
                *lock(&self.shared.heartbeats) = Vec::new();
                *lock(&self.shared.telemetry) = None;
                *lock(&self.shared.snapshot) = Arc::new(Value::Null);
                self.set_phase(Phase::Idle, |_| {});
                let _ = reply.send(Ok(()));
            }
            Command::Load(loaded, reply) => {
                let origin = loaded.origin.clone();
                *lock(&self.shared.config) = Arc::new(*loaded);
                self.shared
                    .events
                    .publish("config_loaded", json!({"file": origin}));
                self.shared.hooks.status(&self.shared.status_line());
                let _ = reply.send(Ok(()));
            }
            Command::Shutdown(..) => unreachable!("handled by run"),
        }
    }

    /// Opens the engine if it is not open.
    fn open(&mut self) -> Result<&mut Engine, ApiError> {
        if self.engine.is_none() {
            let config = self.shared.config();
            let engine = Engine::open(&config, &self.options).map_err(|e| {
                let why = format!("{e:#}");
                lock(&self.shared.view).last_error = Some(why.clone());
                self.shared.events.publish("fault", json!({"what": why}));
                ApiError::internal(format!("cannot open the rig: {why}"))
            })?;
            *lock(&self.shared.controls) = Some(engine.controls());
            *lock(&self.shared.heartbeats) = engine.heartbeats();
            *lock(&self.shared.telemetry) = Some(Arc::clone(engine.telemetry()));
            self.engine = Some(engine);
        }
        Ok(self.engine.as_mut().expect("opened"))
    }

    fn begin(&mut self, request: SessionRequest, origin: &str) -> Result<SessionStarted, ApiError> {
        if let Err(e) = self.open() {
            self.set_phase(Phase::Idle, |_| {});
            return Err(e);
        }
        let engine = self.engine.as_mut().expect("opened");
        match engine.begin(request) {
            Ok(started) => {
                tracing::info!(session = %started.name, path = %started.path.display(), %origin, "session started");
                *lock(&self.shared.controls) = Some(engine.controls());
                self.shared.events.publish(
                    "session_started",
                    json!({"session": started, "origin": origin}),
                );
                let s = started.clone();
                self.set_phase(Phase::Recording, |v| {
                    v.session = Some(s);
                    v.last_error = None;
                });
                Ok(started)
            }
            Err(e) => {
                let error = match e {
                    BeginError::AlreadyRecording => ApiError::conflict(e.to_string()),
                    BeginError::Invalid { field, why } => ApiError::field(field, why),
                    BeginError::LowDisk { .. } => {
                        ApiError::new(axum::http::StatusCode::INSUFFICIENT_STORAGE, e.to_string())
                    }
                    BeginError::Failed(e) => {
                        ApiError::internal(format!("the session did not start: {e}"))
                    }
                };
                // The engine stays open: live.
                let why = error.error.clone();
                self.set_phase(Phase::Live, |v| v.last_error = Some(why));
                Err(error)
            }
        }
    }

    fn end(&mut self, reason: &str) -> Result<Value, ApiError> {
        let recording = lock(&self.shared.view).session.is_some();
        let Some(engine) = self.engine.take().filter(|_| recording) else {
            let why = lock(&self.shared.view).last_error.clone();
            return Err(ApiError::conflict(match why {
                Some(why) => format!("no session is recording (the start failed: {why})"),
                None => "no session is recording".to_string(),
            }));
        };
        if lock(&self.shared.view).state != Phase::Stopping {
            self.set_phase(Phase::Stopping, |_| {});
        }
        // What happened up to the stop reaches the subscribers before the session ends.
        self.drain(&engine);
        *lock(&self.shared.controls) = None;
        tracing::info!(%reason, "stopping session");
        self.buffer.clear();
        let result = engine.end_draining(reason, &mut self.buffer);
        // The view first: a client acting on `session_ended` finds the summary in the status.
        let outcome = match &result {
            Ok(summary) => Ok(serde_json::to_value(summary).unwrap_or(Value::Null)),
            Err(e) => Err(ApiError::internal(format!(
                "the session did not close cleanly: {e:#}"
            ))),
        };
        {
            let mut view = lock(&self.shared.view);
            view.session = None;
            match &outcome {
                Ok(value) => {
                    view.last_session = Some(value.clone());
                    view.last_error = None;
                }
                Err(e) => view.last_error = Some(e.error.clone()),
            }
        }
        match &result {
            Ok(summary) => {
                for event in self.buffer.drain(..) {
                    self.shared.events.publish_engine(&event);
                }
                self.shared.events.publish(
                    "session_ended",
                    json!({"reason": reason, "path": summary.path, "duration_s": summary.duration_s,
                           "triggers_sent": summary.closed_loop.triggers_sent,
                           "recording_error": summary.recording_error}),
                );
            }
            Err(_) => {
                let why = outcome.as_ref().err().map(|e| e.error.clone());
                self.shared.events.publish("fault", json!({"what": why}));
            }
        }
        *lock(&self.shared.snapshot) = Arc::new(Value::Null);
        *lock(&self.shared.heartbeats) = Vec::new();
        *lock(&self.shared.telemetry) = None;
        // The devices reopen next ([`Self::back_to_live`]).
        self.set_phase(Phase::Starting, |_| {});
        outcome
    }

    /// After a session ended: live again (the devices reopened), or idle if they do not open.
    fn back_to_live(&mut self) {
        let phase = if self.open().is_ok() {
            Phase::Live
        } else {
            Phase::Idle
        };
        self.set_phase(phase, |_| {});
    }

    fn drain(&mut self, engine: &Engine) {
        self.buffer.clear();
        engine.drain_events(&mut self.buffer);
        for event in self.buffer.drain(..) {
            self.shared.events.publish_engine(&event);
        }
    }

    fn tick(&mut self) {
        if let Some(engine) = self.engine.take() {
            self.drain(&engine);
            let snapshot = serde_json::to_value(engine.snapshot()).unwrap_or(Value::Null);
            *lock(&self.shared.snapshot) = Arc::new(snapshot);
            let due = engine.session_end_due();
            self.engine = Some(engine);
            if let Some(why) = due
                && lock(&self.shared.view).state == Phase::Recording
                && self.end(&why).is_ok()
            {
                self.back_to_live();
            }
        }
        if self.last_disk.elapsed() >= Duration::from_secs(1) {
            self.shared.refresh_disk();
            self.last_disk = Instant::now();
        }
    }

    fn shutdown(&mut self, reason: &str) {
        if lock(&self.shared.view).session.is_some() {
            let _ = self.end(reason);
        }
        if let Some(engine) = self.engine.take() {
            close(engine);
        }
        *lock(&self.shared.controls) = None;
        *lock(&self.shared.heartbeats) = Vec::new();
        *lock(&self.shared.telemetry) = None;
        self.set_phase(Phase::Idle, |_| {});
    }
}

fn close(engine: Engine) {
    if let Err(e) = engine.close() {
        tracing::warn!(error = %format!("{e:#}"), "the engine did not close cleanly");
    }
}
