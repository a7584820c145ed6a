//! Live controls of a stream (a Miniscope's LED, EWL, gain, frame rate): what a source offers
//! ([`LiveControl`]), and the bounded lock-free inbox through which the control plane asks the
//! capture thread to apply a change between two frames ([`StreamInbox`]).
//!
//! Requests are checked against the control's range or choices by the caller before they are
//! queued; the capture thread only claims each request, applies it through
//! [`super::Source::apply_control`] and answers when it did (CLOCK_MONOTONIC ns) or why it
//! could not. A request carries no string: the control is an index into the source's list.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_queue::ArrayQueue;

use super::Source;
use crate::clock::monotonic_ns;
use crate::reply::Reply;

/// Changes one stream may have queued.
pub const INBOX_SLOTS: usize = 16;

/// What values a live control takes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum LiveControlKind {
    /// Any number in `min..=max` (display units: LED %, EWL −127..127).
    Range {
        /// Lowest value.
        min: f64,
        /// Highest value.
        max: f64,
    },
    /// One of these (label, display value) choices, asked for by its display value (gain ×,
    /// frames per second).
    Choices(Vec<(String, f64)>),
}

/// One control a source can change while it runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveControl {
    /// Control name (the device catalog's: `led0`, `ewl`, `gain`, `frameRate`).
    pub name: String,
    /// Its values.
    pub kind: LiveControlKind,
}

impl LiveControl {
    /// The allowed values in words, for error messages (`0..=100`, `Low (1), High (3.5)`).
    pub fn allowed(&self) -> String {
        match &self.kind {
            LiveControlKind::Range { min, max } => format!("{min}..={max}"),
            LiveControlKind::Choices(c) => c
                .iter()
                .map(|(label, v)| format!("{v} ({label})"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Whether `value` is allowed.
    pub fn allows(&self, value: f64) -> bool {
        match &self.kind {
            LiveControlKind::Range { min, max } => *min <= value && value <= *max,
            LiveControlKind::Choices(c) => c.iter().any(|(_, v)| *v == value),
        }
    }
}

/// The capture thread's answer: when the change was applied (CLOCK_MONOTONIC ns), or why not.
pub type ControlAnswer = Result<u64, String>;

/// One change on its way to a capture thread.
pub struct ControlRequest {
    /// Index into the source's [`Source::live_controls`].
    pub control: usize,
    /// The value, already checked against the control.
    pub value: f64,
    /// Where the answer goes.
    pub reply: Arc<Reply<ControlAnswer>>,
}

/// The bounded inbox of one stream's capture thread.
pub struct StreamInbox {
    queue: ArrayQueue<ControlRequest>,
    closed: AtomicBool,
}

impl Default for StreamInbox {
    fn default() -> Self {
        Self {
            queue: ArrayQueue::new(INBOX_SLOTS),
            closed: AtomicBool::new(false),
        }
    }
}

impl StreamInbox {
    /// Queues a request; gives it back when the inbox is full or the capture thread has ended.
    pub fn push(&self, request: ControlRequest) -> Result<(), ControlRequest> {
        if self.is_closed() {
            return Err(request);
        }
        self.queue.push(request)?;
        // The capture thread may have ended between the check and the push: answer for it.
        if self.is_closed() {
            self.refuse_all("the capture thread has ended");
        }
        Ok(())
    }

    /// Whether the capture thread has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Capture thread, between frames: applies every queued change. One atomic load when
    /// there is none; allocates nothing unless a device refuses (its reason).
    pub fn serve(&self, source: &mut dyn Source) {
        while let Some(request) = self.queue.pop() {
            if !request.reply.claim() {
                continue;
            }
            let answer = source
                .apply_control(request.control, request.value)
                .map(|()| monotonic_ns());
            if let Err(why) = &answer {
                tracing::warn!(stream = %source.info().name, control = request.control, value = request.value, error = %why, "live control change failed");
            }
            request.reply.fill(answer);
        }
    }

    /// Capture thread, at its end: later requests are refused at once, queued ones answered.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.refuse_all("the capture thread has ended");
    }

    fn refuse_all(&self, why: &str) {
        while let Some(request) = self.queue.pop() {
            if request.reply.claim() {
                request.reply.fill(Err(why.to_string()));
            }
        }
    }
}
