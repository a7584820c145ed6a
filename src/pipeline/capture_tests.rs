//! The capture loop's loss accounting, driven by a scripted device.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::*;
use crate::frame::{CaptureStamp, FrameGeometry, PixelFormat};
use crate::source::{StreamInfo, StreamKind};

/// What the scripted device does on each `next_frame` call.
enum Step {
    Frame(u64),
    Disconnect,
}

struct ScriptedSource {
    info: StreamInfo,
    steps: VecDeque<Step>,
    failed_reconnects_left: u32,
}

impl ScriptedSource {
    fn new(counter_bits: u32, steps: Vec<Step>) -> Self {
        Self {
            info: StreamInfo {
                name: "Cam".into(),
                kind: StreamKind::BehaviorCamera,
                geometry: FrameGeometry {
                    width: 4,
                    height: 2,
                    format: PixelFormat::Gray8,
                },
                nominal_fps: 30.0,
                counter_bits,
                device_description: "scripted".into(),
            },
            steps: steps.into(),
            failed_reconnects_left: 2,
        }
    }
}

impl Source for ScriptedSource {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn next_frame(&mut self, pixels: &mut [u8]) -> Result<crate::frame::CaptureStamp, SourceError> {
        match self.steps.pop_front() {
            Some(Step::Frame(counter)) => {
                pixels.fill(counter as u8);
                Ok(CaptureStamp {
                    raw_counter: counter,
                    device_time_ns: 1_000 + counter * 33_000_000,
                    host_time_ns: 2_000 + counter * 33_000_000,
                    ..CaptureStamp::default()
                })
            }
            Some(Step::Disconnect) => Err(SourceError::Disconnected {
                device: "scripted".into(),
                reason: "unplugged".into(),
            }),
            None => Err(SourceError::Stopped),
        }
    }

    fn watch_stop(&mut self, _stop: crate::source::CaptureStop) {}

    fn reconnect(&mut self) -> Result<(), SourceError> {
        if self.failed_reconnects_left > 0 {
            self.failed_reconnects_left -= 1;
            return Err(SourceError::Disconnected {
                device: "scripted".into(),
                reason: "still gone".into(),
            });
        }
        Ok(())
    }
}

struct Harness {
    frames: rtrb::Consumer<Frame>,
    gaps: rtrb::Consumer<GapRecord>,
    stats: Arc<StreamStats>,
    pool: FramePool,
}

fn run(source: ScriptedSource, pool_slots: usize, ring: usize) -> (CaptureEnd, Harness) {
    let pool = FramePool::new(pool_slots, source.info.geometry.frame_bytes());
    let (frames_tx, frames_rx) = rtrb::RingBuffer::new(ring);
    let (gaps_tx, gaps_rx) = rtrb::RingBuffer::new(16);
    let stats = Arc::new(StreamStats::default());
    let end = CaptureLoop {
        source: Box::new(source),
        pool: pool.clone(),
        recorder: frames_tx,
        gaps: gaps_tx,
        stats: Arc::clone(&stats),
        stop: Arc::new(AtomicBool::new(false)),
        mailboxes: Vec::new(),
        gate: open_gate(),
        heartbeat: crate::heartbeat::Heartbeat::new(
            "capture-test",
            std::time::Duration::from_secs(5),
        ),
        controls: Default::default(),
    }
    .run();
    (
        end,
        Harness {
            frames: frames_rx,
            gaps: gaps_rx,
            stats,
            pool,
        },
    )
}

fn drain<T>(consumer: &mut rtrb::Consumer<T>) -> Vec<T> {
    std::iter::from_fn(|| consumer.pop().ok()).collect()
}

#[test]
fn a_full_recorder_ring_drops_and_counts_without_blocking() {
    let steps = (0..6).map(Step::Frame).collect();
    let (end, mut h) = run(ScriptedSource::new(32, steps), 16, 2);
    assert!(
        matches!(end, CaptureEnd::Stopped),
        "the loop returned instead of blocking"
    );
    let s = h.stats.snapshot();
    assert_eq!(s.captured, 6);
    assert_eq!(s.dropped[DropCause::RecorderBehind as usize], 4);
    let kept: Vec<u64> = drain(&mut h.frames)
        .iter()
        .map(|f| f.meta().device_counter)
        .collect();
    assert_eq!(
        kept,
        [0, 1],
        "the ring keeps the oldest frames; later ones are lost"
    );
    let gaps = drain(&mut h.gaps);
    assert_eq!(gaps.len(), 1, "one run of losses is one gap: {gaps:?}");
    assert_eq!(gaps[0].cause, DropCause::RecorderBehind);
    assert_eq!((gaps[0].first_lost_counter, gaps[0].frames_lost), (2, 4));
    assert_eq!(
        gaps[0].start_ns,
        1_000 + 2 * 33_000_000,
        "starts at the first lost frame"
    );
    assert_eq!(
        gaps[0].stop_ns,
        1_000 + 5 * 33_000_000,
        "stops at the last lost frame"
    );
}

#[test]
fn an_exhausted_pool_drops_with_its_own_cause() {
    let steps = (0..4).map(Step::Frame).collect();
    let (_, mut h) = run(ScriptedSource::new(32, steps), 1, 8);
    let s = h.stats.snapshot();
    assert_eq!(s.dropped[DropCause::PoolExhausted as usize], 3);
    assert_eq!(s.dropped[DropCause::RecorderBehind as usize], 0);
    let frames = drain(&mut h.frames);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].pixels(), &[0; 8]);
    let gaps = drain(&mut h.gaps);
    assert_eq!(gaps.len(), 1);
    assert_eq!(
        (
            gaps[0].cause,
            gaps[0].first_lost_counter,
            gaps[0].frames_lost
        ),
        (DropCause::PoolExhausted, 1, 3)
    );
    drop(frames);
    assert_eq!(h.pool.available(), 1, "the slot came back");
}

#[test]
fn counter_jumps_and_disconnections_become_gaps_with_their_cause() {
    let steps = vec![
        Step::Frame(65533),
        Step::Frame(65534),
        Step::Frame(1), // 65535 and 0 lost across the 16-bit wrap
        Step::Frame(2),
        Step::Disconnect,
        Step::Frame(10), // 3..=9 lost while unplugged
    ];
    let (_, mut h) = run(ScriptedSource::new(16, steps), 16, 16);
    let s = h.stats.snapshot();
    assert_eq!(s.captured, 5);
    assert_eq!(s.dropped[DropCause::Device as usize], 2);
    assert_eq!(s.dropped[DropCause::Disconnected as usize], 7);
    assert_eq!(s.reconnects, 1);
    let counters: Vec<u64> = drain(&mut h.frames)
        .iter()
        .map(|f| f.meta().device_counter)
        .collect();
    assert_eq!(counters, [65533, 65534, 65537, 65538, 65546]);
    let gaps = drain(&mut h.gaps);
    assert_eq!(gaps.len(), 2);
    assert_eq!(
        (
            gaps[0].cause,
            gaps[0].first_lost_counter,
            gaps[0].frames_lost
        ),
        (DropCause::Device, 65535, 2)
    );
    assert_eq!(
        (
            gaps[1].cause,
            gaps[1].first_lost_counter,
            gaps[1].frames_lost
        ),
        (DropCause::Disconnected, 65539, 7)
    );
    assert_eq!(
        gaps[1].start_ns,
        1_000 + 2 * 33_000_000,
        "from the last good frame"
    );
    assert_eq!(
        gaps[1].stop_ns,
        1_000 + 10 * 33_000_000,
        "to the next good frame"
    );
}

#[test]
fn frame_indices_count_delivered_frames_strictly() {
    let steps = vec![Step::Frame(5), Step::Frame(9), Step::Frame(10)];
    let (_, mut h) = run(ScriptedSource::new(32, steps), 16, 16);
    let indices: Vec<u64> = drain(&mut h.frames)
        .iter()
        .map(|f| f.meta().index)
        .collect();
    assert_eq!(indices, [0, 1, 2]);
}

/// A device that delivers one frame, then never another (a stalled camera): it blocks the way
/// a source must, on the stop it was handed, and records whether it was shut down.
struct StalledSource {
    info: StreamInfo,
    stop: crate::source::CaptureStop,
    delivered: bool,
    shut_down: Arc<AtomicBool>,
}

impl Source for StalledSource {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn watch_stop(&mut self, stop: crate::source::CaptureStop) {
        self.stop = stop;
    }

    fn next_frame(&mut self, _pixels: &mut [u8]) -> Result<CaptureStamp, SourceError> {
        if !self.delivered {
            self.delivered = true;
            return Ok(CaptureStamp::default());
        }
        let an_hour = crate::clock::monotonic_ns() + 3_600_000_000_000;
        self.stop
            .sleep_until_ns(an_hour)
            .map_err(|_| SourceError::Stopped)?;
        panic!("the stall outlasted the test");
    }

    fn reconnect(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    fn shutdown(&mut self) {
        self.shut_down
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_stop_ends_capture_from_a_stalled_device_and_shuts_it_down() {
    let info = ScriptedSource::new(32, Vec::new()).info;
    let shut_down = Arc::new(AtomicBool::new(false));
    let source = StalledSource {
        info: info.clone(),
        stop: Default::default(),
        delivered: false,
        shut_down: Arc::clone(&shut_down),
    };
    let pool = FramePool::new(4, info.geometry.frame_bytes());
    let (frames_tx, mut frames_rx) = rtrb::RingBuffer::new(4);
    let (gaps_tx, _gaps_rx) = rtrb::RingBuffer::new(4);
    let stop = Arc::new(AtomicBool::new(false));
    let capture = CaptureLoop {
        source: Box::new(source),
        pool,
        recorder: frames_tx,
        gaps: gaps_tx,
        stats: Arc::new(StreamStats::default()),
        stop: Arc::clone(&stop),
        mailboxes: Vec::new(),
        gate: open_gate(),
        heartbeat: crate::heartbeat::Heartbeat::new(
            "capture-test",
            std::time::Duration::from_secs(5),
        ),
        controls: Default::default(),
    };
    let thread = std::thread::spawn(move || capture.run());
    // Wait until the one frame is through: the thread is then blocked in the stall.
    while frames_rx.is_empty() {
        std::thread::yield_now();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    thread.thread().unpark();
    let end = thread.join().expect("capture thread ends");
    assert!(matches!(end, CaptureEnd::Stopped), "{end:?}");
    assert!(
        shut_down.load(std::sync::atomic::Ordering::Relaxed),
        "the source was shut down after a stop seen inside next_frame"
    );
    assert_eq!(drain(&mut frames_rx).len(), 1);
}

/// A gate open since the clock's zero: every frame is the session's (what `behavd run` sees).
fn open_gate() -> Arc<crate::pipeline::gate::SessionGate> {
    let gate = crate::pipeline::gate::SessionGate::new();
    gate.open_at(0);
    gate
}
