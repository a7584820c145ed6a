//! The closed loop's data-plane threads between capture and rules: one per model (latest-wins
//! frames or a first stage's outputs in, decoded outputs out) and one per ROI signal group.
//! Each fans its [`OutputRecord`]s out over SPSC rings to the recorder, the rules thread and
//! second-stage models. Nothing here allocates or locks per frame.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::gate::{Crossing, SessionGate};
use super::mailbox::Mailbox;
use crate::clock::monotonic_ns;
use crate::frame::Frame;
use crate::heartbeat::Heartbeat;
use crate::infer::ModelRunner;
use crate::infer::signals::RoiSignals;
use crate::record::loop_records::{MAX_VALUES, OutputRecord};

/// How long an idle worker sleeps before re-checking its stop flag.
const IDLE_WAIT: Duration = Duration::from_millis(20);

/// A thread to wake when data arrives for it (set by that thread when it starts).
#[derive(Debug, Default)]
pub struct Waker(OnceLock<Thread>);

impl Waker {
    /// Registers the calling thread.
    pub fn register(&self) {
        let _ = self.0.set(std::thread::current());
    }

    /// Wakes the registered thread, if any (a no-op syscall-free check when it is running).
    pub fn wake(&self) {
        if let Some(t) = self.0.get() {
            t.unpark();
        }
    }
}

/// A ring towards another thread, and how to wake it.
pub struct Outlet {
    /// The ring.
    pub ring: rtrb::Producer<OutputRecord>,
    /// Its consumer.
    pub waker: Arc<Waker>,
    /// Records that did not fit (the consumer was behind).
    pub lost: Arc<AtomicU64>,
}

impl Outlet {
    fn send(&mut self, record: &OutputRecord) {
        if self.ring.push(*record).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
        self.waker.wake();
    }
}

/// Live counters of one worker.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Frames processed.
    pub processed: AtomicU64,
    /// Frames of the stream not processed (latest-wins skips).
    pub skipped: AtomicU64,
    /// State resets after gaps.
    pub resets: AtomicU64,
    /// Runs that failed.
    pub errors: AtomicU64,
    /// processed, skipped, resets, errors when the session began.
    baseline: [AtomicU64; 4],
    /// Session run + decode (a model) or the ROI update (a signal group), live.
    pub inference: crate::telemetry::AtomicHistogram,
    /// Frame capture → decoded output, live.
    pub capture_to_output: crate::telemetry::AtomicHistogram,
}

/// A worker's counters over the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Frames processed.
    pub processed: u64,
    /// Frames skipped (latest-wins).
    pub skipped: u64,
    /// State resets.
    pub resets: u64,
    /// Failed runs.
    pub errors: u64,
}

impl WorkerStats {
    fn now(&self) -> [u64; 4] {
        [
            self.processed.load(Ordering::Relaxed),
            self.skipped.load(Ordering::Relaxed),
            self.resets.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        ]
    }

    /// Remembers the counters now as the session's zero.
    pub fn mark_baseline(&self) {
        for (b, v) in self.baseline.iter().zip(self.now()) {
            b.store(v, Ordering::Relaxed);
        }
    }

    /// The counters since the session began (since the start if it never did).
    pub fn session(&self) -> WorkerCounts {
        let mut d = self.now();
        for (v, b) in d.iter_mut().zip(&self.baseline) {
            *v = v.saturating_sub(b.load(Ordering::Relaxed));
        }
        WorkerCounts {
            processed: d[0],
            skipped: d[1],
            resets: d[2],
            errors: d[3],
        }
    }
}

/// What feeds a worker.
pub enum WorkerInput {
    /// Newest frames of a stream.
    Frames(Arc<Mailbox>),
    /// A first-stage model's outputs, in order.
    Upstream(rtrb::Consumer<OutputRecord>, Arc<Waker>),
}

/// Timing distributions of one worker (nanoseconds).
pub struct WorkerTimings {
    /// Frame taken → input tensor ready.
    pub preprocess: Histogram<u64>,
    /// Session run + decode.
    pub inference: Histogram<u64>,
    /// Frame capture → decoded output.
    pub capture_to_output: Histogram<u64>,
}

impl WorkerTimings {
    fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid bounds");
        Self {
            preprocess: h(),
            inference: h(),
            capture_to_output: h(),
        }
    }
}

/// What every worker shares: outlets, stop flag, counters.
pub struct WorkerOutlets {
    /// Towards the recorder.
    pub recorder: Outlet,
    /// Towards the rules thread, and second-stage models.
    pub others: Vec<Outlet>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Live counters.
    pub stats: Arc<WorkerStats>,
    /// Where the session starts (the timings and counters restart at its first frame).
    pub gate: Arc<SessionGate>,
    /// This thread's progress mark.
    pub heartbeat: Arc<Heartbeat>,
}

impl WorkerOutlets {
    /// At the first frame of the session (captured at `capture_ns`): the counters' baseline
    /// and fresh timing distributions, so both cover the session only.
    fn check_crossing(
        &self,
        crossing: &mut Crossing,
        capture_ns: u64,
        timings: &mut WorkerTimings,
    ) {
        if crossing.crossed(&self.gate, capture_ns) {
            self.stats.mark_baseline();
            timings.preprocess.reset();
            timings.inference.reset();
            timings.capture_to_output.reset();
        }
    }

    fn send(&mut self, record: &OutputRecord) {
        self.recorder.send(record);
        for o in &mut self.others {
            o.send(record);
        }
    }
}

/// One model's thread.
pub struct ModelWorker {
    /// The loaded model.
    pub runner: ModelRunner,
    /// Its input.
    pub input: WorkerInput,
    /// Where its outputs go.
    pub out: WorkerOutlets,
    /// Device-frame jump that resets the state.
    pub reset_after_gap_frames: u64,
}

fn truth_of(frame: &Frame) -> i8 {
    frame
        .meta()
        .stamp
        .ground_truth
        .map(|g| g.behavior as i8)
        .unwrap_or(-1)
}

impl ModelWorker {
    /// Runs until the stop flag is set; returns the timing distributions.
    pub fn run(mut self) -> WorkerTimings {
        crate::realtime::enter(crate::realtime::Role::Inference);
        let mut timings = WorkerTimings::new();
        let mut record = OutputRecord::default();
        let mut last: Option<(u64, u64)> = None; // (index, device counter)
        let mut crossing = Crossing::default();
        match &self.input {
            WorkerInput::Frames(m) => m.register_consumer(),
            WorkerInput::Upstream(_, w) => w.register(),
        }
        while !self.out.stop.load(Ordering::Relaxed) {
            self.out.heartbeat.beat();
            let start_ns;
            match &mut self.input {
                WorkerInput::Frames(mailbox) => {
                    let Some(frame) = mailbox.wait(IDLE_WAIT) else {
                        continue;
                    };
                    start_ns = monotonic_ns();
                    let meta = *frame.meta();
                    self.out
                        .check_crossing(&mut crossing, meta.stamp.device_time_ns, &mut timings);
                    let mut reset = last.is_none();
                    let mut skipped = 0;
                    if let Some((index, _)) = last
                        && meta.index <= index
                    {
                        // The session began: the capture thread numbers its frames from 0.
                        skipped = meta.index;
                    } else if let Some((index, counter)) = last {
                        skipped = meta.index.saturating_sub(index + 1);
                        // Frames the device lost in between (not the ones this model skipped).
                        let lost = meta
                            .device_counter
                            .saturating_sub(counter)
                            .saturating_sub(meta.index - index);
                        if lost > self.reset_after_gap_frames {
                            reset = true;
                        }
                    }
                    last = Some((meta.index, meta.device_counter));
                    if reset {
                        self.runner.reset_state();
                        self.out.stats.resets.fetch_add(1, Ordering::Relaxed);
                    }
                    self.out.stats.skipped.fetch_add(skipped, Ordering::Relaxed);
                    self.runner.load_frame(frame.pixels());
                    record.frame_index = meta.index;
                    record.capture_ns = meta.stamp.device_time_ns;
                    record.skipped = skipped.min(u32::MAX as u64) as u32;
                    record.reset = reset;
                    record.truth = truth_of(&frame);
                }
                WorkerInput::Upstream(ring, _) => {
                    let Ok(upstream) = ring.pop() else {
                        std::thread::park_timeout(IDLE_WAIT);
                        continue;
                    };
                    start_ns = monotonic_ns();
                    self.out
                        .check_crossing(&mut crossing, upstream.capture_ns, &mut timings);
                    if upstream.reset || last.is_none() {
                        self.runner.reset_state();
                        self.out.stats.resets.fetch_add(1, Ordering::Relaxed);
                    }
                    last = Some((upstream.frame_index, upstream.frame_index));
                    self.runner.load_vector(upstream.values());
                    record.frame_index = upstream.frame_index;
                    record.capture_ns = upstream.capture_ns;
                    record.skipped = upstream.skipped;
                    record.reset = upstream.reset || record.frame_index == 0;
                    record.truth = upstream.truth;
                }
            }
            let run_ns = monotonic_ns();
            if let Err(e) = self.runner.execute() {
                self.out.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(model = %self.runner.name(), error = %e, "inference failed");
                continue;
            }
            let values = self.runner.decode();
            let n = values.len().min(MAX_VALUES);
            record.values[..n].copy_from_slice(&values[..n]);
            record.len = n as u16;
            record.start_ns = start_ns;
            record.run_ns = run_ns;
            record.end_ns = monotonic_ns();
            let _ = timings.preprocess.record(run_ns - start_ns);
            let _ = timings.inference.record(record.end_ns - run_ns);
            let _ = timings
                .capture_to_output
                .record(record.end_ns.saturating_sub(record.capture_ns));
            let stats = &self.out.stats;
            stats.inference.record(record.end_ns - run_ns);
            stats
                .capture_to_output
                .record(record.end_ns.saturating_sub(record.capture_ns));
            self.out.stats.processed.fetch_add(1, Ordering::Relaxed);
            self.out.send(&record);
        }
        timings
    }
}

/// One ROI signal group's thread.
pub struct SignalWorker {
    /// The ROIs.
    pub signals: RoiSignals,
    /// Newest frames of the stream.
    pub mailbox: Arc<Mailbox>,
    /// Where its rows go.
    pub out: WorkerOutlets,
    /// Device frames lost in a row that restart the baselines.
    pub reset_after_gap_frames: u64,
}

impl SignalWorker {
    /// Runs until the stop flag is set.
    pub fn run(mut self) -> WorkerTimings {
        crate::realtime::enter(crate::realtime::Role::Inference);
        let mut timings = WorkerTimings::new();
        let mut record = OutputRecord::default();
        let mut last: Option<(u64, u64)> = None;
        let n = self.signals.names().len().min(MAX_VALUES);
        let mut crossing = Crossing::default();
        self.mailbox.register_consumer();
        while !self.out.stop.load(Ordering::Relaxed) {
            self.out.heartbeat.beat();
            let Some(frame) = self.mailbox.wait(IDLE_WAIT) else {
                continue;
            };
            let start_ns = monotonic_ns();
            let meta = *frame.meta();
            self.out
                .check_crossing(&mut crossing, meta.stamp.device_time_ns, &mut timings);
            // At the session start the capture thread numbers its frames from 0 again.
            let renumbered = last.is_some_and(|(l, _)| meta.index <= l);
            let skipped = match last {
                Some(_) if renumbered => meta.index,
                Some((l, _)) => meta.index.saturating_sub(l + 1),
                None => 0,
            };
            if let Some((index, counter)) = last.filter(|_| !renumbered) {
                let lost = meta
                    .device_counter
                    .saturating_sub(counter)
                    .saturating_sub(meta.index - index);
                if lost > self.reset_after_gap_frames {
                    self.signals.reset();
                    self.out.stats.resets.fetch_add(1, Ordering::Relaxed);
                }
            }
            last = Some((meta.index, meta.device_counter));
            self.signals.update(
                frame.pixels(),
                meta.stamp.device_time_ns,
                &mut record.values[..n],
            );
            record.len = n as u16;
            record.frame_index = meta.index;
            record.capture_ns = meta.stamp.device_time_ns;
            record.start_ns = start_ns;
            record.run_ns = start_ns;
            record.end_ns = monotonic_ns();
            record.skipped = skipped as u32;
            record.truth = truth_of(&frame);
            let _ = timings.inference.record(record.end_ns - start_ns);
            let _ = timings
                .capture_to_output
                .record(record.end_ns.saturating_sub(record.capture_ns));
            let stats = &self.out.stats;
            stats.inference.record(record.end_ns - start_ns);
            stats
                .capture_to_output
                .record(record.end_ns.saturating_sub(record.capture_ns));
            self.out.stats.processed.fetch_add(1, Ordering::Relaxed);
            self.out.stats.skipped.fetch_add(skipped, Ordering::Relaxed);
            self.out.send(&record);
        }
        timings
    }
}
