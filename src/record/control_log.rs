//! The ring of control changes (live controls, rule arming, manual pulses, notes) from the
//! control plane to the recorder, which writes them to `acquisition/ControlChanges`.
//!
//! Bounded and lock-free. A caller first *reserves* a place (a full ring is an error for the
//! caller, never a wait), then carries the change out, then commits the row with its result
//! into the reserved place, which cannot fail. Only changes made while a session records are
//! kept: [`ControlLog::begin`] and [`ControlLog::end`] bracket the recording.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;

/// One row of `acquisition/ControlChanges`.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlChange {
    /// When it took effect (or was refused), CLOCK_MONOTONIC ns.
    pub time_ns: u64,
    /// Who asked (`ctl`, `api:<peer>`, ...).
    pub origin: String,
    /// What it was applied to: a stream, a rule, an output, or `session` for a note.
    pub target: String,
    /// What was changed: the control's name, `armed`, `pulse`, `note`.
    pub name: String,
    /// The number asked for (control value, 1/0 for armed, on time in ms; NaN for a note).
    pub value: f64,
    /// Text: a note's text, a choice's label, a pulse's channel and status.
    pub text: String,
    /// What came of it: `applied`, `refused: <why>`, `acknowledged`, `blocked: <limit>`.
    pub result: String,
}

/// The ring could not take another change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ring of control changes to the recorder is full ({capacity} rows waiting)")]
pub struct ControlLogFull {
    /// The ring's capacity.
    pub capacity: usize,
}

/// The ring (shared in an `Arc` by the control plane's handles and the recorder).
pub struct ControlLog {
    queue: ArrayQueue<ControlChange>,
    /// Places reserved or filled, not yet taken by the recorder.
    used: AtomicUsize,
    /// CLOCK_MONOTONIC ns of the recording session's start; 0 while nothing records.
    session_start_ns: AtomicU64,
}

/// A reserved place in the ring.
#[must_use = "a reservation holds a place in the ring until committed or dropped"]
pub struct Reservation<'a> {
    log: &'a ControlLog,
    committed: bool,
}

impl Reservation<'_> {
    /// Puts the row in its place (never fails: the place was reserved).
    pub fn commit(mut self, change: ControlChange) {
        let pushed = self.log.queue.push(change);
        debug_assert!(pushed.is_ok(), "a reserved place is always free");
        self.committed = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.log.used.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl ControlLog {
    /// A ring of `capacity` rows, not recording.
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: ArrayQueue::new(capacity.max(1)),
            used: AtomicUsize::new(0),
            session_start_ns: AtomicU64::new(0),
        }
    }

    /// A session records from `start_ns` (its clock's CLOCK_MONOTONIC start) on.
    pub fn begin(&self, start_ns: u64) {
        self.session_start_ns
            .store(start_ns.max(1), Ordering::Release);
    }

    /// Nothing records any more: later changes are not kept.
    pub fn end(&self) {
        self.session_start_ns.store(0, Ordering::Release);
    }

    /// The recording session's start, if one records.
    pub fn recording_since(&self) -> Option<u64> {
        match self.session_start_ns.load(Ordering::Acquire) {
            0 => None,
            t => Some(t),
        }
    }

    /// A place for one row, when a session records (`Ok(None)` when none does).
    pub fn reserve(&self) -> Result<Option<Reservation<'_>>, ControlLogFull> {
        if self.recording_since().is_none() {
            return Ok(None);
        }
        let capacity = self.queue.capacity();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            })
            .map_err(|_| ControlLogFull { capacity })?;
        Ok(Some(Reservation {
            log: self,
            committed: false,
        }))
    }

    /// Recorder: the next row.
    pub fn pop(&self) -> Option<ControlChange> {
        let change = self.queue.pop()?;
        self.used.fetch_sub(1, Ordering::AcqRel);
        Some(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u64) -> ControlChange {
        ControlChange {
            time_ns: n,
            origin: "test".into(),
            target: "session".into(),
            name: "note".into(),
            value: n as f64,
            text: format!("note {n}"),
            result: "recorded".into(),
        }
    }

    #[test]
    fn nothing_is_kept_while_not_recording() {
        let log = ControlLog::new(2);
        assert!(log.reserve().unwrap().is_none());
        log.begin(5);
        log.reserve().unwrap().unwrap().commit(row(1));
        log.end();
        assert!(log.reserve().unwrap().is_none());
        assert_eq!(log.pop(), Some(row(1)));
        assert_eq!(log.pop(), None);
    }

    /// A full ring refuses at once (reservations count, dropped ones give their place back).
    #[test]
    fn a_full_ring_refuses_instead_of_waiting() {
        let log = ControlLog::new(2);
        log.begin(1);
        let a = log.reserve().unwrap().unwrap();
        log.reserve().unwrap().unwrap().commit(row(2));
        let err = log.reserve().err().expect("full");
        assert_eq!(err.capacity, 2);
        assert!(err.to_string().contains("full"), "{err}");
        drop(a);
        log.reserve().unwrap().unwrap().commit(row(3));
        assert!(log.reserve().is_err());
        assert_eq!(log.pop(), Some(row(2)));
        assert!(log.reserve().unwrap().is_some());
    }
}
