//! The live controls inside the data plane: [`LiveControls`], the handle through which the
//! control plane (the daemon's API, `behavd ctl`) changes a running rig — a Miniscope's LED,
//! EWL, gain or frame rate, a rule's arm state, a manual test pulse, a note — without ever
//! making a data-plane thread wait.
//!
//! - Miniscope controls are checked here against the device catalog's range or choices, then
//!   queued in the stream's bounded lock-free [`StreamInbox`]; the capture thread applies them
//!   between two frames and answers when it did.
//! - Rule arm flags are atomics the rules thread reads at every decision ([`RuleArming`]).
//! - Manual pulses go into the output's link thread through their own bounded queue
//!   ([`crate::stim::manual`]), through the same daemon-side limits and firmware as a rule's
//!   trigger, and are recorded in the trigger table under the rule `manual`.
//! - While a session records, every change (refused ones too, with why) becomes a row of
//!   `acquisition/ControlChanges` through the bounded [`ControlLog`]; a full log refuses the
//!   change before it is made, so nothing made while recording is missing from the file.
//!
//! Every call is synchronous and may wait (for the capture thread's answer, for a pulse's
//! acknowledgement): call it from a blocking thread, not from an async task.

mod error;
mod pulse;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use error::ControlError;

use crate::clock::monotonic_ns;
use crate::config::output::OutputLimits;
use crate::record::control_log::{ControlChange, ControlLog, Reservation};
use crate::reply::Reply;
use crate::rules::RuleArming;
use crate::source::live::{ControlRequest, INBOX_SLOTS, LiveControl, LiveControlKind, StreamInbox};
use crate::stim::link::LinkWaker;
use crate::stim::manual::ManualPulses;

/// Rows of control changes that may wait for the recorder.
pub const CONTROL_LOG_ROWS: usize = 256;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 10_000;
/// How long a claimed change is waited for past its deadline.
const GRACE: Duration = Duration::from_secs(1);

/// One stream's live controls, as its capture thread offers them.
#[derive(Clone)]
pub struct StreamControls {
    /// Stream name.
    pub name: String,
    /// What the source can change (empty: none).
    pub controls: Vec<LiveControl>,
    /// The capture thread's inbox.
    pub inbox: Arc<StreamInbox>,
    /// Nominal time between frames (changes are applied between two frames).
    pub frame_period_ns: u64,
}

/// Where one output's manual test pulses go.
#[derive(Clone)]
pub struct PulseTarget {
    /// Output name.
    pub name: String,
    /// Its link thread's manual-pulse queue and waker (None: the logging sink, no link).
    pub link: Option<(Arc<ManualPulses>, Arc<LinkWaker>)>,
    /// Its daemon-side limits (None without a link).
    pub limits: Option<OutputLimits>,
}

/// What [`LiveControls`] is built from.
pub struct LiveControlsSetup {
    /// Every stream, in config order.
    pub streams: Vec<StreamControls>,
    /// The rules' names (in rule order) and their arm flags; None without rules.
    pub rules: Option<(Vec<String>, Arc<RuleArming>)>,
    /// The outputs the rules name, by output id.
    pub outputs: Vec<PulseTarget>,
    /// The ring to the recorder.
    pub log: Arc<ControlLog>,
}

/// A change that was made.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ControlApplied {
    /// The stream, rule, output, or `session`.
    pub target: String,
    /// The control, `armed`, `pulse` or `note`.
    pub name: String,
    /// The value (1/0 for armed, ms for a pulse, NaN for a note).
    pub value: f64,
    /// When it took effect (CLOCK_MONOTONIC ns): a Miniscope control when the capture thread
    /// applied it between two frames (the DAQ executes it at its next end of frame), a pulse
    /// when it was handed to the link.
    pub applied_ns: u64,
    /// The same instant in seconds from the recording session's start (None: not recording).
    pub session_s: Option<f64>,
    /// What came of it, in words.
    pub result: String,
    /// Whether it is in the session file (only changes made while recording are).
    pub recorded: bool,
}

/// The live controls of a running rig (cheap to clone; Send + Sync).
#[derive(Clone)]
pub struct LiveControls {
    inner: Arc<Inner>,
}

struct Inner {
    streams: Vec<StreamControls>,
    rules: Option<(Vec<String>, Arc<RuleArming>)>,
    outputs: Vec<PulseTarget>,
    log: Arc<ControlLog>,
    next_manual: AtomicU32,
    closed: AtomicBool,
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = it.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn check_origin(origin: &str) -> Result<(), ControlError> {
    if origin.trim().is_empty() {
        return Err(ControlError::Invalid {
            field: "origin",
            why: "empty: say who makes the change (ctl, api:<peer>, ...)".into(),
        });
    }
    Ok(())
}

impl LiveControls {
    /// The handle over a running rig's parts.
    pub fn new(setup: LiveControlsSetup) -> Self {
        Self {
            inner: Arc::new(Inner {
                streams: setup.streams,
                rules: setup.rules,
                outputs: setup.outputs,
                log: setup.log,
                next_manual: AtomicU32::new(1),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// The streams and the controls each offers.
    pub fn streams(&self) -> impl Iterator<Item = (&str, &[LiveControl])> {
        self.inner
            .streams
            .iter()
            .map(|s| (s.name.as_str(), s.controls.as_slice()))
    }

    /// Each rule's name and whether it is armed.
    pub fn rules(&self) -> Vec<(String, bool)> {
        match &self.inner.rules {
            Some((names, arming)) => names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), arming.is_armed(i)))
                .collect(),
            None => Vec::new(),
        }
    }

    /// The ring to the recorder (the engine brackets recordings with its `begin`/`end`).
    pub fn log(&self) -> &Arc<ControlLog> {
        &self.inner.log
    }

    /// No more changes (the session is stopping); calls after this fail with
    /// [`ControlError::Closed`].
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    fn open(&self) -> Result<(), ControlError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(ControlError::Closed);
        }
        Ok(())
    }

    fn session_s(&self, at_ns: u64) -> Option<f64> {
        self.inner
            .log
            .recording_since()
            .map(|start| (at_ns as i128 - start as i128) as f64 * 1e-9)
    }

    /// Commits a row (when recording) and builds the answer.
    fn finish(&self, reservation: Option<Reservation<'_>>, row: ControlChange) -> ControlApplied {
        let recorded = reservation.is_some();
        let applied = ControlApplied {
            target: row.target.clone(),
            name: row.name.clone(),
            value: row.value,
            applied_ns: row.time_ns,
            session_s: self.session_s(row.time_ns),
            result: row.result.clone(),
            recorded,
        };
        if let Some(r) = reservation {
            r.commit(row);
        }
        applied
    }

    /// Sets `control` of `stream` to `value` (display units: LED %, EWL −127..127; for a
    /// choice control its display value, e.g. gain 3.5 or frame rate 20). Checked against the
    /// device catalog here; applied by the capture thread between two frames; the answer says
    /// when. A failure is recorded too (while recording) and returned as an error.
    pub fn set(
        &self,
        stream: &str,
        control: &str,
        value: f64,
        origin: &str,
    ) -> Result<ControlApplied, ControlError> {
        self.open()?;
        check_origin(origin)?;
        let s = self
            .inner
            .streams
            .iter()
            .find(|s| s.name == stream)
            .ok_or_else(|| ControlError::UnknownStream {
                stream: stream.into(),
                known: names(self.inner.streams.iter().map(|s| s.name.as_str())),
            })?;
        if s.controls.is_empty() {
            return Err(ControlError::NoLiveControls {
                stream: stream.into(),
            });
        }
        let index = s
            .controls
            .iter()
            .position(|c| c.name == control)
            .ok_or_else(|| ControlError::UnknownControl {
                stream: stream.into(),
                control: control.into(),
                known: names(s.controls.iter().map(|c| c.name.as_str())),
            })?;
        let def = &s.controls[index];
        if !value.is_finite() || !def.allows(value) {
            return Err(ControlError::NotAllowed {
                stream: stream.into(),
                control: control.into(),
                value,
                allowed: def.allowed(),
            });
        }
        let label = match &def.kind {
            LiveControlKind::Choices(c) => c
                .iter()
                .find(|(_, v)| *v == value)
                .map(|(l, _)| l.clone())
                .unwrap_or_default(),
            LiveControlKind::Range { .. } => String::new(),
        };
        let reservation = self.inner.log.reserve()?;
        let reply = Arc::new(Reply::for_current_thread());
        let request = ControlRequest {
            control: index,
            value,
            reply: Arc::clone(&reply),
        };
        if s.inbox.push(request).is_err() {
            if s.inbox.is_closed() {
                return Err(ControlError::Failed {
                    target: stream.into(),
                    name: control.into(),
                    value,
                    why: "the stream's capture thread has ended".into(),
                });
            }
            return Err(ControlError::InboxFull {
                target: stream.into(),
                slots: INBOX_SLOTS,
            });
        }
        let wait = Duration::from_nanos(3 * s.frame_period_ns) + Duration::from_secs(1);
        let row = |time_ns: u64, result: String| ControlChange {
            time_ns,
            origin: origin.into(),
            target: stream.into(),
            name: control.into(),
            value,
            text: label.clone(),
            result,
        };
        match reply.wait(Instant::now() + wait, GRACE) {
            Ok(Ok(at_ns)) => Ok(self.finish(reservation, row(*at_ns, "applied".into()))),
            Ok(Err(why)) => {
                self.finish(reservation, row(monotonic_ns(), format!("failed: {why}")));
                Err(ControlError::Failed {
                    target: stream.into(),
                    name: control.into(),
                    value,
                    why: why.clone(),
                })
            }
            Err(never) => {
                let what = if never {
                    "not applied: the capture thread never took it"
                } else {
                    "the capture thread took it and may have applied it"
                };
                if !never {
                    self.finish(
                        reservation,
                        row(monotonic_ns(), format!("unanswered: {what}")),
                    );
                }
                Err(ControlError::Timeout {
                    target: stream.into(),
                    name: control.into(),
                    waited_ms: (wait + if never { Duration::ZERO } else { GRACE }).as_millis()
                        as u64,
                    what,
                })
            }
        }
    }

    /// Arms (`armed = true`) or disarms a rule: a disarmed rule is still evaluated, but what
    /// it decides is not sent. Takes effect at the rules thread's next decision.
    pub fn arm(
        &self,
        rule: &str,
        armed: bool,
        origin: &str,
    ) -> Result<ControlApplied, ControlError> {
        self.open()?;
        check_origin(origin)?;
        let unknown = |known: String| ControlError::UnknownRule {
            rule: rule.into(),
            known,
        };
        let Some((rule_names, arming)) = &self.inner.rules else {
            return Err(unknown("none: the config has no [[rule]]".into()));
        };
        let index = rule_names
            .iter()
            .position(|n| n == rule)
            .ok_or_else(|| unknown(names(rule_names.iter().map(String::as_str))))?;
        let reservation = self.inner.log.reserve()?;
        arming.set(index, armed);
        let at = monotonic_ns();
        Ok(self.finish(
            reservation,
            ControlChange {
                time_ns: at,
                origin: origin.into(),
                target: rule.into(),
                name: "armed".into(),
                value: if armed { 1.0 } else { 0.0 },
                text: String::new(),
                result: if armed { "armed" } else { "disarmed" }.into(),
            },
        ))
    }

    /// Adds a timestamped note to the recording session's file.
    pub fn note(&self, text: &str, origin: &str) -> Result<ControlApplied, ControlError> {
        self.open()?;
        check_origin(origin)?;
        if text.trim().is_empty() {
            return Err(ControlError::Invalid {
                field: "text",
                why: "an empty note".into(),
            });
        }
        let chars = text.chars().count();
        if chars > MAX_NOTE_CHARS {
            return Err(ControlError::Invalid {
                field: "text",
                why: format!("{chars} characters; at most {MAX_NOTE_CHARS}"),
            });
        }
        let reservation = self
            .inner
            .log
            .reserve()?
            .ok_or(ControlError::NotRecording)?;
        Ok(self.finish(
            Some(reservation),
            ControlChange {
                time_ns: monotonic_ns(),
                origin: origin.into(),
                target: "session".into(),
                name: "note".into(),
                value: f64::NAN,
                text: text.into(),
                result: "recorded".into(),
            },
        ))
    }
}
