//! What the engine announces: every trigger decided, drops, link changes, faults, the session
//! end falling due. The recorder thread queues the data-plane events on a bounded lock-free
//! ring (counting, never waiting, when it is full); the rest is derived here from counters.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::Engine;
use crate::record::loop_records::{LinkEventKind, TriggerStatus};
use crate::record::standby::RecorderEvent;

/// One thing that happened, for the control plane's event stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EngineEvent {
    /// A rule fired and its trigger was handled by the output (sent, refused, ...).
    Trigger {
        /// Rule name.
        rule: String,
        /// Output name.
        output: String,
        /// What became of it, in words.
        status: String,
        /// The status code of the file's trigger table.
        status_code: u8,
        /// Index of the frame that triggered (in its stream; the file's row when recording).
        frame_index: u64,
        /// Capture time of that frame, CLOCK_MONOTONIC ns.
        capture_ns: u64,
        /// When the rule decided, CLOCK_MONOTONIC ns.
        decision_ns: u64,
        /// Whether it is a row of the session file's trigger table.
        in_session: bool,
    },
    /// Frames of a stream were lost.
    Drop {
        /// Stream name.
        stream: String,
        /// Why (`device`, `disconnected`, `pool_exhausted`, `recorder_behind`).
        cause: String,
        /// How many.
        frames: u64,
        /// When the run of losses ended, CLOCK_MONOTONIC ns.
        at_ns: u64,
    },
    /// A stimulator link connected.
    LinkUp {
        /// Output name.
        output: String,
        /// When, CLOCK_MONOTONIC ns.
        at_ns: u64,
    },
    /// A stimulator link went down.
    LinkDown {
        /// Output name.
        output: String,
        /// When, CLOCK_MONOTONIC ns.
        at_ns: u64,
    },
    /// A stimulator reported a fault.
    LinkFault {
        /// Output name.
        output: String,
        /// Fault code (see the file's StimulatorEvents legend).
        code: i64,
        /// Channel.
        channel: i64,
    },
    /// A capture thread ended for good.
    CaptureFault {
        /// Stream name.
        stream: String,
        /// Why.
        error: String,
    },
    /// The recorder failed (a full disk, say); the file holds what was written before.
    RecorderFailed {
        /// Why.
        error: String,
    },
    /// The running session should end ([`Engine::session_end_due`]).
    SessionEndDue {
        /// Why.
        reason: String,
    },
    /// Events the control plane did not drain in time (the ring was full).
    EventsLost {
        /// How many since the previous report.
        count: u64,
    },
}

/// The control plane's side of the event ring and what it has reported already.
pub(super) struct EventState {
    ring: rtrb::Consumer<RecorderEvent>,
    lost_reported: u64,
    faults_reported: Vec<bool>,
    recorder_reported: bool,
    end_due_reported: bool,
}

impl EventState {
    pub(super) fn new(ring: rtrb::Consumer<RecorderEvent>, streams: usize) -> Self {
        Self {
            ring,
            lost_reported: 0,
            faults_reported: vec![false; streams],
            recorder_reported: false,
            end_due_reported: false,
        }
    }
}

/// Names of what the recorder's events point at by index.
pub(super) struct EventNames {
    pub(super) rules: Vec<String>,
    pub(super) outputs: Vec<String>,
    pub(super) streams: Vec<String>,
}

impl EventState {
    /// Converts what the recorder queued into events, oldest first.
    pub(super) fn drain_ring(&mut self, names: &EventNames, out: &mut Vec<EngineEvent>) {
        let name =
            |names: &[String], i: usize| names.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
        while let Ok(e) = self.ring.pop() {
            out.push(match e {
                RecorderEvent::Trigger { record, in_session } => EngineEvent::Trigger {
                    rule: name(&names.rules, record.rule as usize),
                    output: name(&names.outputs, record.output as usize),
                    status: TriggerStatus::name(record.status).to_string(),
                    status_code: record.status,
                    frame_index: record.frame_index,
                    capture_ns: record.capture_ns,
                    decision_ns: record.decision_ns,
                    in_session,
                },
                RecorderEvent::Drop { stream, gap } => EngineEvent::Drop {
                    stream: name(&names.streams, stream),
                    cause: gap.cause.label().to_string(),
                    frames: gap.frames_lost,
                    at_ns: gap.stop_ns,
                },
                RecorderEvent::Link { event } => {
                    let output = name(&names.outputs, event.output as usize);
                    let at_ns = event.received_ns;
                    if event.kind == LinkEventKind::Connected as u8 {
                        EngineEvent::LinkUp { output, at_ns }
                    } else if event.kind == LinkEventKind::Disconnected as u8 {
                        EngineEvent::LinkDown { output, at_ns }
                    } else {
                        EngineEvent::LinkFault {
                            output,
                            code: event.a,
                            channel: event.b,
                        }
                    }
                }
            });
        }
    }
}

impl Engine {
    /// Moves every event since the previous call into `out` (oldest first). Never blocks the
    /// data plane: it only reads what the recorder queued and the counters.
    pub fn drain_events(&self, out: &mut Vec<EngineEvent>) {
        let mut state = self.events.lock().unwrap_or_else(|e| e.into_inner());
        state.drain_ring(&self.names, out);
        let lost = self.events_lost.load(Ordering::Relaxed);
        if lost > state.lost_reported {
            out.push(EngineEvent::EventsLost {
                count: lost - state.lost_reported,
            });
            state.lost_reported = lost;
        }
        for (i, stats) in self.stats.iter().enumerate() {
            if !state.faults_reported[i]
                && let Some(why) = stats.failure()
            {
                state.faults_reported[i] = true;
                out.push(EngineEvent::CaptureFault {
                    stream: self.stream_names[i].clone(),
                    error: why.to_string(),
                });
            }
        }
        if !state.recorder_reported && self.recorder.has_failed() {
            state.recorder_reported = true;
            out.push(EngineEvent::RecorderFailed {
                error: self
                    .recorder
                    .failure()
                    .unwrap_or("the recorder stopped with an error")
                    .to_string(),
            });
        }
        if !state.end_due_reported
            && self.session.is_some()
            && let Some(reason) = self.session_end_due()
        {
            state.end_due_reported = true;
            out.push(EngineEvent::SessionEndDue { reason });
        }
    }
}
