//! `behavd bench`: measurements of the data plane on this machine, with percentiles.
//!
//! The same quantities as the criterion benches in `benches/`, packaged so a rig operator can
//! measure a rig PC without a Rust toolchain.

pub mod inference;
pub mod realtime;
pub mod stim;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::clock::{SessionClock, monotonic_ns};
use crate::config::source::{FaultPlan, Pacing, SyntheticBehaviorConfig, SyntheticMiniscopeConfig};
use crate::config::{Compression, SessionConfig};
use crate::frame::{Frame, FrameMeta, FramePool, PixelFormat};
use crate::record::{Recorder, RecorderSetup, StreamSetup};
use crate::source::Source;
use crate::source::synthetic::{SyntheticBehaviorCamera, SyntheticMiniscope};
use crate::stats::StreamStats;

/// Percentiles of a latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Latency {
    /// Samples.
    pub samples: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Maximum.
    pub max_us: f64,
}

impl Latency {
    pub(crate) fn from_ns(h: &Histogram<u64>) -> Self {
        Self {
            samples: h.len(),
            p50_us: h.value_at_quantile(0.5) as f64 / 1e3,
            p99_us: h.value_at_quantile(0.99) as f64 / 1e3,
            max_us: h.max() as f64 / 1e3,
        }
    }
}

/// A per-process scratch directory under the system temp dir (`behavd-bench-<tag>-<pid>`).
pub fn scratch_dir(tag: &str) -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("behavd-bench-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// A 608×608 synthetic Miniscope in fast pacing.
pub fn miniscope_source() -> SyntheticMiniscope {
    SyntheticMiniscope::new(&SyntheticMiniscopeConfig {
        name: "Miniscope".into(),
        fps: 30.0,
        width: 608,
        height: 608,
        neurons: 120,
        seed: 1,
        counter_start: 0,
        pacing: Pacing::Fast,
        compression: None,
        faults: FaultPlan::default(),
    })
}

/// A synthetic behavior camera in fast pacing.
pub fn behavior_source(
    width: u32,
    height: u32,
    pixel_format: PixelFormat,
) -> SyntheticBehaviorCamera {
    SyntheticBehaviorCamera::new(&SyntheticBehaviorConfig {
        name: "BehaviorCam0".into(),
        fps: 30.0,
        width,
        height,
        pixel_format,
        seed: 1,
        pacing: Pacing::Fast,
        compression: None,
        faults: FaultPlan::default(),
    })
}

/// Time to render one frame of `source`, over `frames` frames.
pub fn render_cost(source: &mut dyn Source, frames: usize) -> Latency {
    let mut buf = vec![0u8; source.info().geometry.frame_bytes()];
    let mut h = histogram();
    for _ in 0..frames {
        let t = monotonic_ns();
        source
            .next_frame(&mut buf)
            .expect("synthetic sources do not fail");
        h.saturating_record(monotonic_ns() - t);
    }
    Latency::from_ns(&h)
}

/// One-way handoff latency of a frame handle through an SPSC ring between two threads
/// (half of a ping-pong round trip), over `iterations` round trips.
pub fn ring_latency(iterations: usize) -> Latency {
    let pool = FramePool::new(8, 64);
    let (mut to_echo, mut echo_rx) = rtrb::RingBuffer::<Frame>::new(4);
    let (mut echo_tx, mut back) = rtrb::RingBuffer::<Frame>::new(4);
    let echo = std::thread::spawn(move || {
        for _ in 0..iterations {
            let frame = loop {
                if let Ok(f) = echo_rx.pop() {
                    break f;
                }
                std::hint::spin_loop();
            };
            while echo_tx.push(frame.clone()).is_err() {}
        }
    });
    let mut h = histogram();
    for i in 0..iterations {
        let frame = pool.try_acquire().expect("slots return").freeze(FrameMeta {
            index: i as u64,
            ..FrameMeta::default()
        });
        let t = monotonic_ns();
        while to_echo.push(frame.clone()).is_err() {}
        drop(frame);
        while back.pop().is_err() {
            std::hint::spin_loop();
        }
        h.saturating_record((monotonic_ns() - t) / 2);
    }
    echo.join().expect("echo thread");
    Latency::from_ns(&h)
}

/// One timed recording of pre-rendered frames.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RecorderRun {
    /// Wall time from the first frame handed over to the file closed.
    pub seconds: f64,
    /// Uncompressed megabytes per second.
    pub mb_per_s: f64,
    /// Raw bytes / file bytes.
    pub compression_ratio: f64,
}

/// Writes `frames` pre-rendered frames of `source` through the real recorder (SWMR file,
/// flush policy, compression pool) into a file in `dir`, and times it.
pub fn recorder_throughput(
    source: &mut dyn Source,
    frames: usize,
    compression: Compression,
    compress_threads: usize,
    dir: &std::path::Path,
) -> anyhow::Result<RecorderRun> {
    let info = source.info().clone();
    let bytes = info.geometry.frame_bytes();
    let rendered: Vec<Vec<u8>> = (0..32)
        .map(|_| {
            let mut buf = vec![0; bytes];
            source.next_frame(&mut buf).map(|_| buf)
        })
        .collect::<Result<_, _>>()?;
    let path = dir.join(format!("bench-{}.nwb", uuid::Uuid::new_v4()));
    let pool = FramePool::new(frames + 32, bytes);
    let (mut tx, rx) = rtrb::RingBuffer::new(frames + 1);
    let (gaps_tx, gaps_rx) = rtrb::RingBuffer::new(4);
    let recorder = Recorder::start(RecorderSetup {
        path: path.clone(),
        session_name: "bench".into(),
        clock: SessionClock::start_now(),
        session: SessionConfig::default(),
        config_text: String::new(),
        streams: vec![StreamSetup {
            info,
            compression,
            ground_truth: false,
            frames: rx,
            gaps: gaps_rx,
            stats: Arc::new(StreamStats::default()),
        }],
        flush_interval: Duration::from_secs(1),
        compress_threads,
        outputs: Vec::new(),
        triggers: None,
        controls: None,
    })?;
    let start = Instant::now();
    for i in 0..frames {
        let mut slot = pool.try_acquire().expect("pool sized for every frame");
        slot.pixels_mut()
            .copy_from_slice(&rendered[i % rendered.len()]);
        let frame = slot.freeze(FrameMeta {
            index: i as u64,
            device_counter: i as u64,
            ..FrameMeta::default()
        });
        if tx.push(frame).is_err() {
            anyhow::bail!("ring sized for every frame");
        }
    }
    drop((tx, gaps_tx));
    recorder.join()?;
    let seconds = start.elapsed().as_secs_f64();
    let file_bytes = std::fs::metadata(&path)?.len() as f64;
    std::fs::remove_file(&path)?;
    let raw = (frames * bytes) as f64;
    Ok(RecorderRun {
        seconds,
        mb_per_s: raw / seconds / 1e6,
        compression_ratio: raw / file_bytes,
    })
}
