//! The control writer: queues I2C packets for the DAQ and writes them as CONTRAST → GAMMA →
//! SHARPNESS SET_CURs, one word per call, a settle delay after each.
//!
//! * **Coalescing**: a packet whose [`CoalesceKey`] matches a packet still waiting
//!   replaces it in place — last write wins, first-queued order is kept.
//! * **Settle**: after every SET_CUR the writer waits `settle_ns` (default 200 µs; the FX3
//!   control endpoint loses a write that follows the previous one too closely).
//! * **Queue bound**: the DAQ keeps committed packets in a 64-slot ring without an overflow
//!   check and runs them only at end of frame, so the writer commits at most
//!   `max_packets_per_frame` packets between two [`ControlWriter::end_of_frame`] calls.
//!
//! The writer never sleeps: [`ControlWriter::poll`] is handed the current monotonic time,
//! performs at most one write, and says when it next wants to run ([`Wake`]).

use std::collections::VecDeque;

use super::DAQ_QUEUE_SLOTS;
use super::packet::{CoalesceKey, KeyedPacket};
use super::uvc::{PuSelector, UvcControl, UvcError};

/// Default pause after each SET_CUR (QT2's libuvc backend; the reference asks for ≥ 100 µs).
pub const DEFAULT_SETTLE_NS: u64 = 200_000;

/// Default per-frame packet budget. The host learns of a frame some time after the DAQ's
/// end of frame, so one DAQ frame interval can overlap two of the writer's; two budgets of
/// 31 (62) still stay below the 64-slot ring, which loses everything at 64 pending.
pub const DEFAULT_MAX_PACKETS_PER_FRAME: usize = DAQ_QUEUE_SLOTS / 2 - 1;

/// Default number of packets that may wait in the writer.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;

/// Writer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// Pause after every SET_CUR, nanoseconds.
    pub settle_ns: u64,
    /// Packets committed between two frames at most (1..=63).
    pub max_packets_per_frame: usize,
    /// Packets that may wait in the writer (after coalescing).
    pub queue_capacity: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            settle_ns: DEFAULT_SETTLE_NS,
            max_packets_per_frame: DEFAULT_MAX_PACKETS_PER_FRAME,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

/// What went wrong in the writer.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// A configuration the DAQ cannot work with.
    #[error("control writer: {0}")]
    Config(String),
    /// More distinct packets waiting than the writer holds.
    #[error("control writer queue is full ({capacity} packets waiting)")]
    QueueFull {
        /// The configured capacity.
        capacity: usize,
    },
    /// A SET_CUR failed; the packet it belonged to was dropped (the firmware restarts
    /// assembly at the next CONTRAST write).
    #[error("writing {selector:?} = 0x{value:04X} failed: {source}")]
    Write {
        /// The control being written.
        selector: PuSelector,
        /// The word.
        value: u16,
        /// The transfer error.
        source: UvcError,
    },
}

/// When the writer wants to run next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// At this monotonic time (ns): the settle delay ends then.
    At(u64),
    /// After the next [`ControlWriter::end_of_frame`]: this frame's budget is spent.
    NextFrame,
    /// Nothing to write until something is queued.
    Idle,
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// SET_CUR writes performed.
    pub words_written: u64,
    /// Packets fully written (committed to the DAQ ring).
    pub packets_committed: u64,
    /// Packets replaced by a newer one with the same key before being sent.
    pub packets_coalesced: u64,
    /// Packets dropped by [`ControlWriter::clear`] or a failed write.
    pub packets_dropped: u64,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    writes: [(PuSelector, u16); 3],
    next: usize,
}

/// Queues packets and writes them to a [`UvcControl`] under the DAQ's timing rules.
#[derive(Debug)]
pub struct ControlWriter {
    config: WriterConfig,
    pending: VecDeque<KeyedPacket>,
    in_flight: Option<InFlight>,
    ready_at: u64,
    hold_until: u64,
    committed_this_frame: usize,
    stats: WriterStats,
}

impl ControlWriter {
    /// A writer with `config`; fails if the budget is 0 or would overrun the DAQ ring.
    pub fn new(config: WriterConfig) -> Result<Self, WriterError> {
        if !(1..DAQ_QUEUE_SLOTS).contains(&config.max_packets_per_frame) {
            return Err(WriterError::Config(format!(
                "max_packets_per_frame {} must be 1..={} (the DAQ ring has {DAQ_QUEUE_SLOTS} slots)",
                config.max_packets_per_frame,
                DAQ_QUEUE_SLOTS - 1
            )));
        }
        if config.queue_capacity == 0 {
            return Err(WriterError::Config(
                "queue_capacity must be at least 1".into(),
            ));
        }
        Ok(Self {
            config,
            pending: VecDeque::with_capacity(config.queue_capacity),
            in_flight: None,
            ready_at: 0,
            hold_until: 0,
            committed_this_frame: 0,
            stats: WriterStats::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &WriterConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// Packets waiting (not counting one being written).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing waits and no packet is half written.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.in_flight.is_none()
    }

    /// Packets committed since the last end of frame.
    pub fn committed_this_frame(&self) -> usize {
        self.committed_this_frame
    }

    /// Queues `packet`. If a packet with the same key is still waiting it is replaced in
    /// place (returns `true`); a packet already being written is not touched.
    pub fn enqueue(&mut self, packet: KeyedPacket) -> Result<bool, WriterError> {
        if let Some(slot) = self.pending.iter_mut().find(|p| p.key == packet.key) {
            *slot = packet;
            self.stats.packets_coalesced += 1;
            return Ok(true);
        }
        if self.pending.len() >= self.config.queue_capacity {
            return Err(WriterError::QueueFull {
                capacity: self.config.queue_capacity,
            });
        }
        self.pending.push_back(packet);
        Ok(false)
    }

    /// Queues every packet of `packets`, in order.
    pub fn enqueue_all<'a>(
        &mut self,
        packets: impl IntoIterator<Item = &'a KeyedPacket>,
    ) -> Result<(), WriterError> {
        for p in packets {
            self.enqueue(*p)?;
        }
        Ok(())
    }

    /// Whether a packet with `key` is waiting.
    pub fn is_pending(&self, key: &CoalesceKey) -> bool {
        self.pending.iter().any(|p| p.key == *key)
    }

    /// Drops everything waiting, and abandons a half-written packet (the next CONTRAST
    /// write restarts the firmware's assembly).
    pub fn clear(&mut self) {
        let dropped = self.pending.len() + usize::from(self.in_flight.is_some());
        self.stats.packets_dropped += dropped as u64;
        self.pending.clear();
        self.in_flight = None;
    }

    /// Starts over on a freshly opened device: [`Self::clear`], and the frame budget is
    /// full again (a newly enumerated DAQ has an empty ring).
    pub fn new_connection(&mut self) {
        self.clear();
        self.committed_this_frame = 0;
        self.hold_until = 0;
    }

    /// When the last SET_CUR has settled: another write (of any control) is safe from then.
    pub fn settled_at(&self) -> u64 {
        self.ready_at
    }

    /// Writes nothing before `t_ns` (the connect ritual's 500 ms pauses).
    pub fn hold_until(&mut self, t_ns: u64) {
        self.hold_until = self.hold_until.max(t_ns);
    }

    /// A frame arrived: the DAQ has run (and emptied) its queue, the budget is full again.
    pub fn end_of_frame(&mut self) {
        self.committed_this_frame = 0;
    }

    fn budget_spent(&self) -> bool {
        self.committed_this_frame >= self.config.max_packets_per_frame
    }

    /// When the writer next wants to run, without writing.
    pub fn next_wake(&self) -> Wake {
        if self.in_flight.is_none() {
            if self.pending.is_empty() {
                return Wake::Idle;
            }
            if self.budget_spent() {
                return Wake::NextFrame;
            }
        }
        Wake::At(self.ready_at.max(self.hold_until))
    }

    /// Performs the next SET_CUR if it is due at `now_ns` and returns when to run next.
    /// At most one write per call, so the settle delay always separates two writes.
    pub fn poll(&mut self, now_ns: u64, uvc: &mut impl UvcControl) -> Result<Wake, WriterError> {
        match self.next_wake() {
            Wake::At(t) if t <= now_ns => {}
            other => return Ok(other),
        }
        let flight = match self.in_flight.as_mut() {
            Some(f) => f,
            None => {
                let Some(next) = self.pending.pop_front() else {
                    return Ok(Wake::Idle);
                };
                self.in_flight.insert(InFlight {
                    writes: next.packet.pack().writes(),
                    next: 0,
                })
            }
        };
        let (selector, value) = flight.writes[flight.next];
        flight.next += 1;
        let done = flight.next == flight.writes.len();
        self.ready_at = now_ns.saturating_add(self.config.settle_ns);
        if let Err(source) = uvc.set_pu(selector, value) {
            self.in_flight = None;
            self.stats.packets_dropped += 1;
            return Err(WriterError::Write {
                selector,
                value,
                source,
            });
        }
        self.stats.words_written += 1;
        if done {
            self.in_flight = None;
            self.committed_this_frame += 1;
            self.stats.packets_committed += 1;
        }
        Ok(self.next_wake())
    }
}
