//! The engine's recorder thread: in standby it drains every ring (frames, gaps, model outputs,
//! triggers, link events) and discards what it takes — frame slots go back to their pool at
//! once, nothing is counted as dropped, no file exists. When a session begins it creates the
//! session file (the layout `behavd run` writes) without any thread or device restarting, and
//! records everything stamped at or after the session clock's start.
//!
//! In both states it announces triggers, drops and link changes on a bounded lock-free ring to
//! the control plane ([`RecorderEvent`]); when that ring is full the event is counted as lost,
//! never waited for.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use super::loop_records::{LinkEvent, LinkEventKind, OutputSetup, StimulatorDevice, TriggerRecord};
use super::session_file::open;
use super::writer::{RecordingReport, Session, record_session};
use super::{GapRecord, RecordError, RecorderSetup, StreamSetup, TriggerSetup};
use crate::clock::SessionClock;
use crate::clock::SessionGate;
use crate::config::SessionConfig;
use crate::heartbeat::Heartbeat;

/// How long the standby recorder sleeps when every ring is empty.
const STANDBY_WAIT: Duration = Duration::from_millis(2);

/// What the recorder announces to the control plane. Plain values (indices, not names): making
/// one allocates nothing.
#[derive(Debug, Clone, Copy)]
pub enum RecorderEvent {
    /// A trigger decision with what became of it.
    Trigger {
        /// The trigger record (rule, output, status, timing chain).
        record: TriggerRecord,
        /// Whether it is a row of the session file's trigger table.
        in_session: bool,
    },
    /// A run of lost frames of one stream.
    Drop {
        /// Stream index (config order).
        stream: usize,
        /// The gap record.
        gap: GapRecord,
    },
    /// A stimulator link connected, went down or reported a fault.
    Link {
        /// The link event.
        event: LinkEvent,
    },
}

/// The recorder's end of the event ring.
pub struct EventSink {
    /// The ring.
    pub ring: rtrb::Producer<RecorderEvent>,
    /// Events the ring had no room for.
    pub lost: Arc<AtomicU64>,
}

impl EventSink {
    fn push(&mut self, e: RecorderEvent) {
        if self.ring.push(e).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn gap(&mut self, stream: usize, gap: &GapRecord) {
        self.push(RecorderEvent::Drop { stream, gap: *gap });
    }

    pub(super) fn trigger(&mut self, record: &TriggerRecord, in_session: bool) {
        self.push(RecorderEvent::Trigger {
            record: *record,
            in_session,
        });
    }

    pub(super) fn link(&mut self, event: &LinkEvent) {
        let kind = event.kind;
        if kind == LinkEventKind::Connected as u8
            || kind == LinkEventKind::Disconnected as u8
            || kind == LinkEventKind::Fault as u8
        {
            self.push(RecorderEvent::Link { event: *event });
        }
    }
}

/// Everything the engine's recorder holds from the start: the rings and what does not change
/// between sessions.
pub struct StandbySetup {
    /// Full config text, stored in `general/data_collection`.
    pub config_text: String,
    /// The streams, in config order.
    pub streams: Vec<StreamSetup>,
    /// Time between flushes.
    pub flush_interval: Duration,
    /// Compression threads (0 = deflate on the writer thread).
    pub compress_threads: usize,
    /// Models and signal groups whose outputs to record.
    pub outputs: Vec<OutputSetup>,
    /// Rules and their triggers, when the config has rules.
    pub triggers: Option<TriggerSetup>,
    /// The session boundary (records stamped before its start are discarded).
    pub gate: Arc<SessionGate>,
    /// This thread's progress mark.
    pub heartbeat: Arc<Heartbeat>,
    /// Where events go.
    pub events: EventSink,
    /// Per link (the order of the link event rings): its last connection while in standby,
    /// written to the session's event table when one begins (None: down, or never up).
    pub last_connected: Vec<Option<LinkEvent>>,
    /// Changes made through the live controls, for each session's `acquisition/ControlChanges`.
    pub controls: Option<Arc<super::control_log::ControlLog>>,
    /// The recorder's live flush counters (kept across standby and the session).
    pub telemetry: Arc<crate::telemetry::RecorderTelemetry>,
}

/// What `begin` hands the recorder: the session's file and metadata.
pub struct BeginRecording {
    /// The session file to create.
    pub path: PathBuf,
    /// Session name (NWB `session_id`).
    pub session_name: String,
    /// The session clock; records stamped before its start are not the session's.
    pub clock: SessionClock,
    /// Session metadata (the request's overrides applied).
    pub session: SessionConfig,
    /// The stimulator outputs as they are at the start (an output down now has an outage
    /// from 0 s).
    pub devices: Option<Vec<StimulatorDevice>>,
}

type Begin = (
    BeginRecording,
    crossbeam_channel::Sender<Result<(), RecordError>>,
);

/// The engine's recorder thread.
pub struct StandbyRecorder {
    handle: JoinHandle<Result<Option<RecordingReport>, RecordError>>,
    commands: crossbeam_channel::Sender<Begin>,
    failed: Arc<AtomicBool>,
    failure: Arc<OnceLock<String>>,
    telemetry: Arc<crate::telemetry::RecorderTelemetry>,
}

impl StandbyRecorder {
    /// Starts the recorder thread in standby.
    pub fn start(setup: StandbySetup) -> Result<Self, RecordError> {
        let (tx, rx) = crossbeam_channel::bounded::<Begin>(1);
        let failed = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(OnceLock::new());
        let (flag, text) = (Arc::clone(&failed), Arc::clone(&failure));
        let telemetry = Arc::clone(&setup.telemetry);
        let handle = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || run(setup, &rx, &flag, &text))?;
        Ok(Self {
            handle,
            commands: tx,
            failed,
            failure,
            telemetry,
        })
    }

    /// The recorder's live flush counters.
    pub fn telemetry(&self) -> &Arc<crate::telemetry::RecorderTelemetry> {
        &self.telemetry
    }

    /// Creates the session file and starts recording; returns once the file exists (or could
    /// not be created: the recorder then stays in standby, nothing removed from its rings).
    pub fn begin(&self, begin: BeginRecording) -> Result<(), RecordError> {
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        let gone = || RecordError::Stopped("the recorder thread has ended".into());
        self.commands.send((begin, reply_tx)).map_err(|_| gone())?;
        reply_rx.recv().map_err(|_| gone())?
    }

    /// Whether the thread has ended (before every producer is gone, that means it failed).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Whether a write failed (set at once; the thread then closes the file and ends).
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Why recording failed, once it has.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Waits until every producer has gone. `Ok(None)`: no session was recorded; otherwise
    /// as [`super::Recorder::join`].
    pub fn join(self) -> Result<Option<RecordingReport>, RecordError> {
        self.handle.join().expect("recorder thread panicked")
    }
}

fn run(
    mut s: StandbySetup,
    commands: &crossbeam_channel::Receiver<Begin>,
    failed: &AtomicBool,
    failure: &OnceLock<String>,
) -> Result<Option<RecordingReport>, RecordError> {
    crate::realtime::enter(crate::realtime::Role::Recorder);
    loop {
        s.heartbeat.beat();
        if let Ok((begin, reply)) = commands.try_recv() {
            // What is still queued from before the start goes first (the last connection of
            // each link among it).
            discard(&mut s);
            match start_session(s, begin) {
                Ok(session) => {
                    let _ = reply.send(Ok(()));
                    return record_session(session, failed, failure).map(Some);
                }
                Err((e, back)) => {
                    tracing::error!(error = %e, "cannot create the session file; staying live");
                    let _ = reply.send(Err(e));
                    s = *back;
                    continue;
                }
            }
        }
        let progressed = discard(&mut s);
        if all_gone(&s) {
            return Ok(None);
        }
        if !progressed {
            std::thread::park_timeout(STANDBY_WAIT);
        }
    }
}

/// Builds the session's recorder from the standby one; gives it back when the file cannot be
/// created.
fn start_session(
    s: StandbySetup,
    begin: BeginRecording,
) -> Result<Session, (RecordError, Box<StandbySetup>)> {
    let StandbySetup {
        config_text,
        streams,
        flush_interval,
        compress_threads,
        outputs,
        mut triggers,
        gate,
        heartbeat,
        events,
        last_connected,
        controls,
        telemetry,
    } = s;
    if let (Some(t), Some(devices)) = (&mut triggers, begin.devices) {
        t.devices = devices;
    }
    let setup = RecorderSetup {
        path: begin.path,
        session_name: begin.session_name,
        clock: begin.clock,
        session: begin.session,
        config_text,
        streams,
        flush_interval,
        compress_threads,
        outputs,
        triggers,
        controls,
    };
    match open(setup) {
        Ok(mut session) => {
            session.events = Some(events);
            session.heartbeat = Some(heartbeat);
            session.telemetry = telemetry;
            // When each link that is up now connected (before the session: a negative time).
            for e in last_connected.iter().flatten() {
                session.record_link_event(e);
            }
            Ok(session)
        }
        Err((e, setup)) => {
            let setup = *setup;
            Err((
                e,
                Box::new(StandbySetup {
                    config_text: setup.config_text,
                    streams: setup.streams,
                    flush_interval: setup.flush_interval,
                    compress_threads: setup.compress_threads,
                    outputs: setup.outputs,
                    triggers: setup.triggers,
                    gate,
                    heartbeat,
                    events,
                    last_connected,
                    controls: setup.controls,
                    telemetry,
                }),
            ))
        }
    }
}

/// Takes and discards what is stamped before the session start (everything while none has
/// begun); a record stamped from the start on stays in its ring for the session's file, whose
/// `begin` is then already queued (the gate opens after it is sent). Returns whether anything
/// was taken.
fn discard(s: &mut StandbySetup) -> bool {
    let start = s.gate.start_ns();
    let mut progressed = false;
    for (i, stream) in s.streams.iter_mut().enumerate() {
        while let Ok(frame) = stream.frames.peek() {
            if frame.meta().stamp.device_time_ns >= start {
                break;
            }
            drop(stream.frames.pop());
            progressed = true;
        }
        while let Ok(gap) = stream.gaps.peek() {
            if gap.stop_ns >= start {
                break;
            }
            let gap = *gap;
            let _ = stream.gaps.pop();
            s.events.gap(i, &gap);
            progressed = true;
        }
    }
    for output in &mut s.outputs {
        while let Ok(r) = output.records.peek() {
            if r.capture_ns >= start {
                break;
            }
            let _ = output.records.pop();
            progressed = true;
        }
    }
    if let Some(t) = &mut s.triggers {
        for ring in &mut t.records {
            while let Ok(r) = ring.peek() {
                if r.capture_ns >= start {
                    break;
                }
                let r = *r;
                let _ = ring.pop();
                s.events.trigger(&r, false);
                progressed = true;
            }
        }
        for (i, ring) in t.events.iter_mut().enumerate() {
            while let Ok(e) = ring.peek() {
                if e.received_ns >= start {
                    break;
                }
                let e = *e;
                let _ = ring.pop();
                s.events.link(&e);
                if let Some(last) = s.last_connected.get_mut(i) {
                    if e.kind == LinkEventKind::Connected as u8 {
                        *last = Some(e);
                    } else if e.kind == LinkEventKind::Disconnected as u8 {
                        *last = None;
                    }
                }
                progressed = true;
            }
        }
    }
    progressed
}

/// Whether every producer has gone and nothing is left to take.
fn all_gone(s: &StandbySetup) -> bool {
    s.streams.iter().all(|st| {
        st.frames.is_abandoned()
            && st.frames.is_empty()
            && st.gaps.is_abandoned()
            && st.gaps.is_empty()
    }) && s
        .outputs
        .iter()
        .all(|o| o.records.is_abandoned() && o.records.is_empty())
        && s.triggers.as_ref().is_none_or(|t| {
            t.records.iter().all(|r| r.is_abandoned() && r.is_empty())
                && t.events.iter().all(|r| r.is_abandoned() && r.is_empty())
        })
}
