//! The capture thread of one stream: device → pool slot → consumer rings, counting every loss.
//!
//! Never blocks on a consumer and never allocates: a frame that cannot get a pool slot is read
//! into a scratch buffer and dropped, a full ring drops the frame for that consumer, and every
//! run of losses becomes one [`GapRecord`] for the file.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::counter::CounterUnwrapper;
use super::gate::{Crossing, SessionGate};
use super::mailbox::Mailbox;
use crate::frame::{Frame, FrameMeta, FramePool};
use crate::heartbeat::Heartbeat;
use crate::record::GapRecord;
use crate::source::live::StreamInbox;
use crate::source::{CaptureStop, Source, SourceError};
use crate::stats::{DropCause, StreamStats};

/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Everything one capture thread owns.
pub struct CaptureLoop {
    /// The device.
    pub source: Box<dyn Source>,
    /// The stream's frame slots.
    pub pool: FramePool,
    /// Frames to the recorder (lossless by design: sized for seconds).
    pub recorder: rtrb::Producer<Frame>,
    /// Gap records to the recorder.
    pub gaps: rtrb::Producer<GapRecord>,
    /// The stream's counters.
    pub stats: Arc<StreamStats>,
    /// Set to stop capturing.
    pub stop: Arc<AtomicBool>,
    /// Latest-wins mailboxes of the stream's inference and signal consumers.
    pub mailboxes: Vec<Arc<Mailbox>>,
    /// Where the session starts: the first frame stamped from then on marks the counters'
    /// baseline, splits open loss runs and restarts the frame index at 0 (the file's row).
    pub gate: Arc<SessionGate>,
    /// This thread's progress mark.
    pub heartbeat: Arc<Heartbeat>,
    /// Live control changes from the control plane, applied between frames.
    pub controls: Arc<StreamInbox>,
}

/// A run of consecutive losses of one cause being accumulated into one gap record.
#[derive(Default)]
struct LossRun {
    current: Option<GapRecord>,
}

impl LossRun {
    fn extend(&mut self, cause: DropCause, counter: u64, time_ns: u64) {
        match &mut self.current {
            Some(run) => {
                run.frames_lost += 1;
                run.stop_ns = time_ns;
            }
            None => {
                self.current = Some(GapRecord {
                    start_ns: time_ns,
                    stop_ns: time_ns,
                    frames_lost: 1,
                    cause,
                    first_lost_counter: counter,
                })
            }
        }
    }

    fn take(&mut self) -> Option<GapRecord> {
        self.current.take()
    }
}

/// How a capture thread ended.
#[derive(Debug)]
pub enum CaptureEnd {
    /// Stopped on request.
    Stopped,
    /// The device failed in a way reconnecting cannot fix.
    Failed(String),
}

impl CaptureLoop {
    /// Runs until `stop` is set or the device fails for good.
    pub fn run(mut self) -> CaptureEnd {
        crate::realtime::enter(crate::realtime::Role::Capture);
        let info = self.source.info().clone();
        let mut scratch = vec![0u8; info.geometry.frame_bytes()];
        let mut counter = CounterUnwrapper::new(info.counter_bits);
        let mut last: Option<(u64, u64)> = None;
        let mut disconnected_since_last = false;
        let mut index = 0u64;
        let mut pool_run = LossRun::default();
        let mut behind_run = LossRun::default();
        let mut crossing = Crossing::default();
        // Every blocking wait of the source watches the stop, so a stalled device cannot hold
        // the stop back (see `crate::source::stop`).
        self.source
            .watch_stop(CaptureStop::new(Arc::clone(&self.stop)));
        let end = loop {
            self.heartbeat.beat();
            self.controls.serve(&mut *self.source);
            if self.stop.load(Ordering::Relaxed) {
                self.source.shutdown();
                break CaptureEnd::Stopped;
            }
            let mut slot = self.pool.try_acquire();
            let pixels = match &mut slot {
                Some(s) => s.pixels_mut(),
                None => &mut scratch[..],
            };
            let stamp = match self.source.next_frame(pixels) {
                Ok(stamp) => stamp,
                Err(SourceError::Disconnected { device, reason }) => {
                    tracing::warn!(stream = %info.name, %device, %reason, "device disconnected; reconnecting");
                    disconnected_since_last = true;
                    if !self.reconnect(&info.name) {
                        break CaptureEnd::Stopped;
                    }
                    continue;
                }
                Err(SourceError::Stopped) => {
                    self.source.shutdown();
                    break CaptureEnd::Stopped;
                }
                Err(e @ SourceError::Fatal { .. }) => {
                    tracing::error!(stream = %info.name, error = %e, "capture failed");
                    self.stats.set_failure(e.to_string());
                    break CaptureEnd::Failed(e.to_string());
                }
            };
            if crossing.crossed(&self.gate, stamp.device_time_ns) {
                // Losses before the session are not the session's: their runs end here.
                for gap in [pool_run.take(), behind_run.take()].into_iter().flatten() {
                    self.push_gap(gap);
                }
                self.stats.mark_baseline();
                index = 0;
            }
            let device_counter = counter.unwrap(stamp.raw_counter);
            if let Some((prev_counter, prev_time)) = last
                && device_counter > prev_counter + 1
            {
                let cause = if disconnected_since_last {
                    DropCause::Disconnected
                } else {
                    DropCause::Device
                };
                let lost = device_counter - prev_counter - 1;
                self.stats.add_dropped(cause, lost);
                self.push_gap(GapRecord {
                    start_ns: prev_time,
                    stop_ns: stamp.device_time_ns,
                    frames_lost: lost,
                    cause,
                    first_lost_counter: prev_counter + 1,
                });
            }
            disconnected_since_last = false;
            last = Some((device_counter, stamp.device_time_ns));
            self.stats.add_captured();
            let Some(slot) = slot else {
                self.stats.add_dropped(DropCause::PoolExhausted, 1);
                pool_run.extend(
                    DropCause::PoolExhausted,
                    device_counter,
                    stamp.device_time_ns,
                );
                continue;
            };
            if let Some(gap) = pool_run.take() {
                self.push_gap(gap);
            }
            let frame = slot.freeze(FrameMeta {
                index,
                device_counter,
                stamp,
            });
            index += 1;
            for mailbox in &self.mailboxes {
                mailbox.publish(frame.clone());
            }
            match self.recorder.push(frame) {
                Ok(()) => {
                    if let Some(gap) = behind_run.take() {
                        self.push_gap(gap);
                    }
                }
                Err(rtrb::PushError::Full(_frame)) => {
                    self.stats.add_dropped(DropCause::RecorderBehind, 1);
                    behind_run.extend(
                        DropCause::RecorderBehind,
                        device_counter,
                        stamp.device_time_ns,
                    );
                }
            }
            let capacity = self.recorder.buffer().capacity();
            self.stats.live().frame(
                crate::clock::monotonic_ns(),
                capacity - self.recorder.slots(),
                capacity,
            );
        };
        self.controls.close();
        for gap in [pool_run.take(), behind_run.take()].into_iter().flatten() {
            self.push_gap(gap);
        }
        end
    }

    fn push_gap(&mut self, gap: GapRecord) {
        if self.gaps.push(gap).is_err() {
            self.stats.add_gap_unrecorded();
        }
    }

    /// Retries with exponential backoff until the device is back (true) or stop is set (false).
    fn reconnect(&mut self, name: &str) -> bool {
        let mut backoff = Duration::from_millis(10);
        loop {
            self.heartbeat.beat();
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            match self.source.reconnect() {
                Ok(()) => {
                    self.stats.add_reconnect();
                    tracing::info!(stream = %name, "device reconnected");
                    return true;
                }
                Err(e) => tracing::debug!(stream = %name, error = %e, "reconnect failed"),
            }
            std::thread::park_timeout(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
#[path = "capture_tests.rs"]
mod tests;
