//! The memory the frame pools of a rig will take, checked against the machine before any of
//! it is allocated (by `behavd check` and at the start of `run`): each stream's pool holds
//! `ceil(ring_seconds × fps)` frames (at least 4) for the recorder ring, [`EXTRA_POOL_SLOTS`]
//! more, and two per consumer (model or signal group reading its frames).

use super::RigConfig;

/// Frame slots beyond the recorder ring: one being filled, a few in compression.
pub const EXTRA_POOL_SLOTS: usize = 24;
/// Smallest recorder ring, frames.
pub const MIN_RING_FRAMES: usize = 4;
/// The share of the machine's available memory the frame pools may take (the rest is for the
/// models, HDF5 and compression buffers, and the system).
pub const POOL_SHARE: f64 = 0.75;

/// The pool of one stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StreamPool {
    /// Stream name.
    pub name: String,
    /// Frame slots.
    pub slots: usize,
    /// Bytes of one frame.
    pub frame_bytes: usize,
    /// Recorder ring frames among the slots.
    pub ring_frames: usize,
    /// Consumers reading the stream's frames.
    pub consumers: usize,
}

impl StreamPool {
    /// Bytes the pool takes.
    pub fn bytes(&self) -> u64 {
        self.slots as u64 * self.frame_bytes as u64
    }
}

/// Recorder ring frames of a stream at `fps` with `ring_seconds` of ring.
pub fn ring_frames(ring_seconds: f64, fps: f64) -> usize {
    let frames = (ring_seconds * fps).ceil();
    if frames.is_finite() && frames > 0.0 {
        (frames.min(usize::MAX as f64) as usize).max(MIN_RING_FRAMES)
    } else {
        MIN_RING_FRAMES
    }
}

/// Frame slots of a stream's pool.
pub fn pool_slots(ring_frames: usize, consumers: usize) -> usize {
    ring_frames
        .saturating_add(EXTRA_POOL_SLOTS)
        .saturating_add(consumers.saturating_mul(2))
}

/// How many models and signal groups read frames of `stream` directly.
pub fn frame_consumers(config: &RigConfig, stream: &str) -> usize {
    config.model.iter().filter(|m| m.source == stream).count()
        + config.signal.iter().filter(|s| s.source == stream).count()
}

/// The frame pools of a rig and the memory they would take.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PoolBudget {
    /// One per stream, in config order.
    pub streams: Vec<StreamPool>,
    /// Bytes of all pools together.
    pub total_bytes: u64,
    /// The machine's available memory (`MemAvailable` of `/proc/meminfo`), when known.
    pub available_bytes: Option<u64>,
}

/// The frame pools need more memory than the machine can give.
#[derive(Debug, thiserror::Error)]
#[error(
    "the frame pools need {} but {} may go to them ({} of {} available): {}; lower recording.ring_seconds, a frame rate or a frame size",
    bytes_in_words(.total),
    bytes_in_words(.limit),
    share_in_words(),
    bytes_in_words(.available),
    .streams
)]
pub struct MemoryError {
    /// Bytes the pools need.
    pub total: u64,
    /// Bytes they may take.
    pub limit: u64,
    /// Bytes available on the machine.
    pub available: u64,
    /// Each stream's pool, in words.
    pub streams: String,
}

fn share_in_words() -> String {
    format!("{:.0} %", POOL_SHARE * 100.0)
}

impl PoolBudget {
    /// The pools `config` asks for, with the machine's available memory.
    pub fn of(config: &RigConfig) -> Self {
        Self::with_available(config, available_memory())
    }

    /// The pools `config` asks for, against `available_bytes` of memory.
    pub fn with_available(config: &RigConfig, available_bytes: Option<u64>) -> Self {
        let streams: Vec<StreamPool> = config
            .source
            .iter()
            .map(|s| {
                let ring = ring_frames(config.recording.ring_seconds, s.fps());
                let consumers = frame_consumers(config, s.name());
                StreamPool {
                    name: s.name().to_string(),
                    slots: pool_slots(ring, consumers),
                    frame_bytes: s.geometry().frame_bytes(),
                    ring_frames: ring,
                    consumers,
                }
            })
            .collect();
        let total_bytes = streams
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.bytes()));
        Self {
            streams,
            total_bytes,
            available_bytes,
        }
    }

    /// Bytes the pools may take on this machine, when its memory is known.
    pub fn limit_bytes(&self) -> Option<u64> {
        self.available_bytes.map(|a| (a as f64 * POOL_SHARE) as u64)
    }

    /// An error naming every stream's pool when they do not fit.
    pub fn check(&self) -> Result<(), MemoryError> {
        let (Some(limit), Some(available)) = (self.limit_bytes(), self.available_bytes) else {
            return Ok(());
        };
        if self.total_bytes <= limit {
            return Ok(());
        }
        let streams = self
            .streams
            .iter()
            .map(|s| {
                format!(
                    "{} {} ({} frames of {} = {} ring + {EXTRA_POOL_SLOTS} + 2 × {} consumers)",
                    s.name,
                    bytes_in_words(&s.bytes()),
                    s.slots,
                    bytes_in_words(&(s.frame_bytes as u64)),
                    s.ring_frames,
                    s.consumers
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        Err(MemoryError {
            total: self.total_bytes,
            limit,
            available,
            streams,
        })
    }
}

/// `MemAvailable` of `/proc/meminfo` in bytes (Linux), else `None`.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&info)
}

fn parse_mem_available(info: &str) -> Option<u64> {
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// `1536` → `1.5 KiB`, `7.3e12` → `6.6 TiB`.
pub fn bytes_in_words(bytes: &u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = *bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoadedConfig;

    #[test]
    fn the_demo_pools_fit_and_match_the_session_formula() {
        let demo = LoadedConfig::demo();
        let budget = PoolBudget::with_available(&demo.config, Some(16 << 30));
        // Miniscope 608x608 gray at 30 fps, 4 s of ring: 120 + 24 + 2 × (neural + miniscope).
        let m = &budget.streams[0];
        assert_eq!((m.ring_frames, m.consumers, m.slots), (120, 2, 148));
        assert_eq!(m.frame_bytes, 608 * 608);
        // The behavior camera feeds three models.
        assert_eq!(budget.streams[1].slots, 120 + 24 + 6);
        assert!(budget.check().is_ok());
    }

    #[test]
    fn pools_over_the_machine_are_refused_naming_each_stream() {
        let text = crate::config::DEMO_CONFIG.replace("ring_seconds = 4.0", "ring_seconds = 120.0");
        let config = LoadedConfig::from_str(&text, "rig.toml").unwrap().config;
        let budget = PoolBudget::with_available(&config, Some(1 << 30));
        let err = budget.check().unwrap_err().to_string();
        assert!(
            err.contains("Miniscope") && err.contains("BehaviorCam0"),
            "{err}"
        );
        assert!(err.contains("3628 frames of 361.0 KiB"), "{err}");
        assert!(err.contains("768.0 MiB may go to them"), "{err}");
    }

    #[test]
    fn mem_available_is_read_in_kib() {
        let info = "MemTotal:       16314364 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(parse_mem_available(info), Some(8_192_000_000));
        assert_eq!(bytes_in_words(&1536), "1.5 KiB");
        assert_eq!(bytes_in_words(&12), "12 bytes");
    }
}
