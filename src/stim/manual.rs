//! Manual test pulses: a bounded lock-free queue from the control plane into one output's link
//! thread, beside the rules thread's ring. A manual pulse goes through exactly what a rule's
//! trigger goes through (the daemon-side limits, staleness, the link state, the firmware and
//! its acknowledgement) and is recorded in the trigger table like one; its final outcome is
//! answered to the waiting caller through its [`Reply`].

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::record::loop_records::TriggerRecord;
use crate::reply::Reply;

/// Manual pulses one output may have queued or in flight at once.
pub const MANUAL_PULSES: usize = 8;

/// What became of a manual pulse.
#[derive(Debug, Clone, Copy)]
pub struct PulseOutcome {
    /// The trigger as recorded (status, sequence number, times, acknowledgement).
    pub record: TriggerRecord,
    /// The daemon-side limit that blocked it (status "blocked"), if one did.
    pub blocked_by: Option<&'static str>,
}

/// One manual pulse on its way to the link thread.
pub struct ManualPulse {
    /// The command (its `manual` field is non-zero).
    pub record: TriggerRecord,
    /// Where its outcome goes.
    pub reply: Arc<Reply<PulseOutcome>>,
}

/// The control plane's queue of manual pulses for one output.
pub struct ManualPulses {
    queue: ArrayQueue<ManualPulse>,
}

impl Default for ManualPulses {
    fn default() -> Self {
        Self {
            queue: ArrayQueue::new(MANUAL_PULSES),
        }
    }
}

impl ManualPulses {
    /// Queues a pulse; false when the queue is full (the pulse is then dropped, unsent).
    pub fn push(&self, pulse: ManualPulse) -> bool {
        self.queue.push(pulse).is_ok()
    }
}

/// The link thread's end: the queue and the replies of the pulses it has taken and not yet
/// finished (a fixed capacity: nothing allocates in the link thread).
pub struct ManualInbox {
    queue: Arc<ManualPulses>,
    waiting: Vec<(u32, Arc<Reply<PulseOutcome>>)>,
}

impl ManualInbox {
    /// The link's end of `queue`.
    pub fn new(queue: Arc<ManualPulses>) -> Self {
        Self {
            queue,
            waiting: Vec::with_capacity(MANUAL_PULSES),
        }
    }

    /// The next manual pulse the caller still waits for, if there is room to track one more.
    pub fn take(&mut self) -> Option<TriggerRecord> {
        while self.waiting.len() < self.waiting.capacity() {
            let pulse = self.queue.queue.pop()?;
            if pulse.reply.claim() {
                self.waiting.push((pulse.record.manual, pulse.reply));
                return Some(pulse.record);
            }
            // The caller gave up before the link saw it: it is never sent.
        }
        None
    }

    /// Answers the caller of a finished manual trigger (no-op for a rule's trigger).
    pub fn finish(&mut self, record: &TriggerRecord, blocked_by: Option<&'static str>) {
        if record.manual == 0 {
            return;
        }
        if let Some(i) = self.waiting.iter().position(|(id, _)| *id == record.manual) {
            let (_, reply) = self.waiting.swap_remove(i);
            reply.fill(PulseOutcome {
                record: *record,
                blocked_by,
            });
        }
    }
}
