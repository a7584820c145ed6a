//! Frame pacing and fault injection shared by the synthetic sources.
//!
//! Device frame `k` is due at `t0 + k / fps`, where `t0` is the monotonic time of the first
//! request. The schedule decides which device frame is delivered next, applies the
//! [`FaultPlan`] (dropped frames, stalls, disconnections) and, in realtime pacing, sleeps
//! until the frame is due. In fast pacing nothing sleeps and time is virtual: a frame's
//! stamps are its due time.
//!
//! Faults fire when the schedule reaches their frame number; a fault whose frame was already
//! skipped (lost in an earlier stall or disconnection) never fires.
//!
//! Every realtime sleep watches the session's [`CaptureStop`]: a stop ends the wait for a
//! frame (however far away it is due: a long stall, a rate of 0.001 fps) within one poll slice.

use crate::clock::monotonic_ns;
use crate::config::source::{FaultPlan, Pacing, TimedFault};
use crate::source::{CaptureStop, SourceError};

/// Longest `reconnect` sleeps before reporting that the device is still gone.
const RECONNECT_POLL_NS: u64 = 5_000_000;

/// The device frame to deliver next and when it was due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Device frame number (0-based, before the counter wraps).
    pub frame: u64,
    /// Monotonic time the frame was due (virtual time in fast pacing).
    pub due_ns: u64,
    /// When the frame was actually ready: in realtime pacing the monotonic time the wait for
    /// it ended (so, like a driver timestamp, it carries the host's scheduling jitter); in fast
    /// pacing the due time.
    pub capture_ns: u64,
}

/// An ongoing injected disconnection.
#[derive(Debug, Clone, Copy)]
struct Outage {
    frame: u64,
    since_ns: u64,
    ms: u64,
}

/// Pacing and fault state of one synthetic source.
#[derive(Debug)]
pub(crate) struct FrameSchedule {
    device: String,
    fps: f64,
    pacing: Pacing,
    t0: Option<u64>,
    next: u64,
    drops: Vec<u64>,
    stalls: Vec<TimedFault>,
    disconnects: Vec<TimedFault>,
    cursor: [usize; 3],
    outage: Option<Outage>,
    stop: CaptureStop,
}

impl FrameSchedule {
    /// A schedule for `device` (used in error messages) at `fps` frames per second.
    pub(crate) fn new(device: &str, fps: f64, pacing: Pacing, plan: &FaultPlan) -> Self {
        assert!(
            fps.is_finite() && fps > 0.0,
            "frame rate must be positive, got {fps}"
        );
        let mut drops = plan.drop_frames.clone();
        drops.sort_unstable();
        drops.dedup();
        let mut stalls = plan.stall.clone();
        stalls.sort_by_key(|f| f.at_frame);
        let mut disconnects = plan.disconnect.clone();
        disconnects.sort_by_key(|f| f.at_frame);
        Self {
            device: device.to_owned(),
            fps,
            pacing,
            t0: None,
            next: 0,
            drops,
            stalls,
            disconnects,
            cursor: [0; 3],
            outage: None,
            stop: CaptureStop::default(),
        }
    }

    /// The stop that ends a realtime wait early.
    pub(crate) fn watch_stop(&mut self, stop: CaptureStop) {
        self.stop = stop;
    }

    /// Sleeps until `deadline_ns` unless the stop comes first.
    fn sleep_until_ns(&self, deadline_ns: u64) -> Result<(), SourceError> {
        self.stop
            .sleep_until_ns(deadline_ns)
            .map_err(|_| SourceError::Stopped)
    }

    /// Nominal time of device frame `k` from the start, nanoseconds.
    pub(crate) fn offset_ns(&self, k: u64) -> u64 {
        nominal_time_ns(k, self.fps)
    }

    /// The first device frame due at or after `offset_ns` from the start.
    fn first_due_at_or_after(&self, offset_ns: u64) -> u64 {
        let mut k = (offset_ns as f64 * self.fps * 1e-9).ceil() as u64;
        while k > 0 && self.offset_ns(k - 1) >= offset_ns {
            k -= 1;
        }
        while self.offset_ns(k) < offset_ns {
            k += 1;
        }
        k
    }

    fn disconnected(&self, o: &Outage) -> SourceError {
        SourceError::Disconnected {
            device: self.device.clone(),
            reason: format!(
                "injected fault: disconnected at device frame {} for {} ms",
                o.frame, o.ms
            ),
        }
    }

    /// The next device frame to deliver, after applying faults; in realtime pacing this
    /// sleeps until the frame is due. Fails while the device is disconnected.
    pub(crate) fn next_slot(&mut self) -> Result<Slot, SourceError> {
        let t0 = *self.t0.get_or_insert_with(monotonic_ns);
        if let Some(o) = &self.outage {
            return Err(self.disconnected(o));
        }
        loop {
            let k = self.next;
            let due_ns = t0 + self.offset_ns(k);
            let [d, s, c] = &mut self.cursor;
            skip_before(&self.drops, d, k, |&f| f);
            skip_before(&self.stalls, s, k, |f| f.at_frame);
            skip_before(&self.disconnects, c, k, |f| f.at_frame);
            if let Some(fault) = self.disconnects.get(*c).filter(|f| f.at_frame == k) {
                *c += 1;
                if self.pacing == Pacing::Realtime {
                    self.sleep_until_ns(due_ns)?;
                }
                let o = Outage {
                    frame: k,
                    since_ns: due_ns,
                    ms: fault.ms,
                };
                self.outage = Some(o);
                return Err(self.disconnected(&o));
            }
            if let Some(fault) = self.stalls.get(*s).filter(|f| f.at_frame == k) {
                *s += 1;
                // Frames falling due before the stall ends are lost; realtime sleeps the
                // stall away while waiting for the first frame after it.
                let end = self.offset_ns(k) + fault.ms * 1_000_000;
                self.next = self.first_due_at_or_after(end);
                continue;
            }
            if self.drops.get(*d) == Some(&k) {
                *d += 1;
                self.next = k + 1;
                continue;
            }
            self.next = k + 1;
            let capture_ns = match self.pacing {
                Pacing::Realtime => {
                    // A stop during the wait leaves frame k undelivered and next again.
                    if let Err(e) = self.sleep_until_ns(due_ns) {
                        self.next = k;
                        return Err(e);
                    }
                    monotonic_ns()
                }
                Pacing::Fast => due_ns,
            };
            return Ok(Slot {
                frame: k,
                due_ns,
                capture_ns,
            });
        }
    }

    /// Host time to stamp on a frame once it is rendered.
    pub(crate) fn host_time_ns(&self, slot: &Slot) -> u64 {
        match self.pacing {
            Pacing::Realtime => monotonic_ns(),
            Pacing::Fast => slot.due_ns,
        }
    }

    /// Tries to end a disconnection: fails until its duration has passed (fast pacing jumps
    /// virtual time instead). Frames resume with the first one due after that moment.
    pub(crate) fn reconnect(&mut self) -> Result<(), SourceError> {
        let Some(o) = self.outage else {
            return Ok(());
        };
        let t0 = self.t0.unwrap_or(o.since_ns);
        let back_ns = o.since_ns + o.ms * 1_000_000;
        let resume_at = match self.pacing {
            Pacing::Fast => back_ns,
            Pacing::Realtime => {
                let now = monotonic_ns();
                if now < back_ns {
                    self.sleep_until_ns(now + (back_ns - now).min(RECONNECT_POLL_NS))?;
                }
                let now = monotonic_ns();
                if now < back_ns {
                    return Err(self.disconnected(&o));
                }
                now
            }
        };
        self.next = self.first_due_at_or_after(resume_at - t0).max(o.frame + 1);
        self.outage = None;
        Ok(())
    }
}

/// Nominal time of frame `k` at `fps`, nanoseconds from the stream start.
///
/// Computed as one correctly rounded division, so `k` at 30 fps and `2k` at 60 fps give the
/// same instant.
pub(crate) fn nominal_time_ns(k: u64, fps: f64) -> u64 {
    (k as f64 * 1e9 / fps).round() as u64
}

/// Moves `cursor` past the entries of `list` (sorted by `key`) before frame `k`.
fn skip_before<T>(list: &[T], cursor: &mut usize, k: u64, key: impl Fn(&T) -> u64) {
    while list.get(*cursor).is_some_and(|f| key(f) < k) {
        *cursor += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(plan: FaultPlan) -> FrameSchedule {
        FrameSchedule::new("test", 30.0, Pacing::Fast, &plan)
    }

    /// Delivered frame numbers, with `None` for each error, reconnecting after every error.
    fn run(s: &mut FrameSchedule, n: usize) -> Vec<Option<u64>> {
        (0..n)
            .map(|_| match s.next_slot() {
                Ok(slot) => Some(slot.frame),
                Err(_) => {
                    s.reconnect().expect("fast reconnect succeeds at once");
                    None
                }
            })
            .collect()
    }

    #[test]
    fn nominal_times_agree_across_rates() {
        for k in 0..10_000u64 {
            assert_eq!(nominal_time_ns(k, 30.0), nominal_time_ns(2 * k, 60.0));
        }
        assert_eq!(nominal_time_ns(30, 30.0), 1_000_000_000);
    }

    #[test]
    fn first_due_at_or_after_is_exact() {
        let s = fast(FaultPlan::default());
        assert_eq!(s.first_due_at_or_after(0), 0);
        assert_eq!(s.first_due_at_or_after(1), 1);
        assert_eq!(s.first_due_at_or_after(1_000_000_000), 30);
        assert_eq!(s.first_due_at_or_after(1_000_000_001), 31);
    }

    #[test]
    fn fast_stamps_are_virtual_due_times() {
        let mut s = fast(FaultPlan::default());
        let a = s.next_slot().unwrap();
        let b = s.next_slot().unwrap();
        assert_eq!(b.due_ns - a.due_ns, 33_333_333);
        assert_eq!(s.host_time_ns(&b), b.due_ns);
    }

    #[test]
    fn stall_and_disconnect_at_skipped_frames_never_fire() {
        let plan = FaultPlan {
            drop_frames: vec![],
            stall: vec![TimedFault {
                at_frame: 2,
                ms: 100,
            }],
            disconnect: vec![TimedFault {
                at_frame: 4,
                ms: 100,
            }],
        };
        // The stall at frame 2 loses frames 2..=4 (due before 166.7 ms), so the disconnect
        // scheduled at frame 4 is skipped.
        let got = run(&mut fast(plan), 4);
        assert_eq!(got, vec![Some(0), Some(1), Some(5), Some(6)]);
    }

    /// A stop ends the wait for a frame due far in the future (a very low rate, a long
    /// stall) at once, and the frame is still the next one afterwards.
    #[test]
    fn a_stop_ends_realtime_waits_for_far_frames() {
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut slow = FrameSchedule::new("slow", 0.001, Pacing::Realtime, &FaultPlan::default());
        slow.watch_stop(CaptureStop::new(std::sync::Arc::clone(&flag)));
        assert_eq!(slow.next_slot().unwrap().frame, 0, "frame 0 is due at once");
        let plan = FaultPlan {
            stall: vec![TimedFault {
                at_frame: 1,
                ms: 3_600_000,
            }],
            ..FaultPlan::default()
        };
        let mut stalled = FrameSchedule::new("stalled", 1e6, Pacing::Realtime, &plan);
        stalled.watch_stop(CaptureStop::new(std::sync::Arc::clone(&flag)));
        assert_eq!(stalled.next_slot().unwrap().frame, 0);
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
        // Frame 1 of `slow` is due in 1000 s, the first frame after the stall in an hour.
        assert!(matches!(slow.next_slot(), Err(SourceError::Stopped)));
        assert!(matches!(slow.next_slot(), Err(SourceError::Stopped)));
        assert!(matches!(stalled.next_slot(), Err(SourceError::Stopped)));
        assert_eq!(slow.next, 1, "the undelivered frame is still next");
    }

    #[test]
    fn realtime_stamps_and_zero_length_outage() {
        // At a million frames per second every due time has passed by the time it is asked
        // for, so this exercises the realtime path without sleeping.
        let plan = FaultPlan {
            drop_frames: vec![1],
            stall: vec![],
            disconnect: vec![TimedFault { at_frame: 3, ms: 0 }],
        };
        let mut s = FrameSchedule::new("rt", 1e6, Pacing::Realtime, &plan);
        let a = s.next_slot().unwrap();
        let b = s.next_slot().unwrap();
        assert_eq!((a.frame, b.frame), (0, 2));
        assert_eq!(b.due_ns - a.due_ns, 2_000);
        assert!(
            s.host_time_ns(&b) >= b.due_ns,
            "host time precedes the due time"
        );
        assert!(matches!(
            s.next_slot(),
            Err(SourceError::Disconnected { .. })
        ));
        s.reconnect().expect("a zero-length outage is over at once");
        let c = s.next_slot().unwrap();
        assert!(c.frame > 3 && c.due_ns >= a.due_ns + 4_000);
    }
}
