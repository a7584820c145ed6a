//! Live per-stream counters shared lock-free between the capture thread, the recorder and
//! whoever displays progress.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a frame never reached the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum DropCause {
    /// The device skipped it: its frame counter jumped.
    Device = 0,
    /// The device was disconnected while it fell due.
    Disconnected = 1,
    /// Every frame slot of the stream was still in use.
    PoolExhausted = 2,
    /// The recorder's ring was full (the writer fell behind).
    RecorderBehind = 3,
}

impl DropCause {
    /// All causes in code order.
    pub const ALL: [DropCause; 4] = [
        DropCause::Device,
        DropCause::Disconnected,
        DropCause::PoolExhausted,
        DropCause::RecorderBehind,
    ];

    /// Stable snake_case name.
    pub fn label(self) -> &'static str {
        match self {
            DropCause::Device => "device",
            DropCause::Disconnected => "disconnected",
            DropCause::PoolExhausted => "pool_exhausted",
            DropCause::RecorderBehind => "recorder_behind",
        }
    }

    /// The cause with this code, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(code as usize).copied()
    }
}

/// Counters of one stream. All relaxed atomics: they are statistics, not synchronisation.
#[derive(Debug, Default)]
pub struct StreamStats {
    captured: AtomicU64,
    recorded: AtomicU64,
    bytes_recorded: AtomicU64,
    reconnects: AtomicU64,
    gaps_unrecorded: AtomicU64,
    dropped: [AtomicU64; 4],
    /// The counters when the session began (see [`StreamStats::mark_baseline`]).
    baseline: [AtomicU64; 9],
    /// Why capture ended for good, once it has (set once by the capture thread).
    failure: std::sync::OnceLock<String>,
    live: crate::telemetry::StreamLive,
}

/// A consistent-enough copy of a stream's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    /// Frames delivered by the device.
    pub captured: u64,
    /// Frames written to the file.
    pub recorded: u64,
    /// Uncompressed bytes of frames written.
    pub bytes_recorded: u64,
    /// Successful reconnections after a disconnect.
    pub reconnects: u64,
    /// Gap records that could not be queued to the recorder (their drops are still counted).
    pub gaps_unrecorded: u64,
    /// Frames lost, by [`DropCause`] code (serialized as an object keyed by the cause's label).
    #[serde(serialize_with = "serialize_by_cause")]
    pub dropped: [u64; 4],
}

/// Writes per-cause counts as `{"device": n, "disconnected": n, ...}`.
fn serialize_by_cause<S: serde::Serializer>(dropped: &[u64; 4], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(dropped.len()))?;
    for cause in DropCause::ALL {
        map.serialize_entry(cause.label(), &dropped[cause as usize])?;
    }
    map.end()
}

impl StatsSnapshot {
    fn to_array(self) -> [u64; 9] {
        let d = self.dropped;
        [
            self.captured,
            self.recorded,
            self.bytes_recorded,
            self.reconnects,
            self.gaps_unrecorded,
            d[0],
            d[1],
            d[2],
            d[3],
        ]
    }

    fn from_array(a: [u64; 9]) -> Self {
        Self {
            captured: a[0],
            recorded: a[1],
            bytes_recorded: a[2],
            reconnects: a[3],
            gaps_unrecorded: a[4],
            dropped: [a[5], a[6], a[7], a[8]],
        }
    }

    /// Frames lost for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

impl StreamStats {
    /// Counts a frame the device delivered.
    pub fn add_captured(&self) {
        self.captured.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts a frame written to the file.
    pub fn add_recorded(&self, bytes: u64) {
        self.recorded.fetch_add(1, Ordering::Relaxed);
        self.bytes_recorded.fetch_add(bytes, Ordering::Relaxed);
    }
    /// Counts `frames` lost for `cause`.
    pub fn add_dropped(&self, cause: DropCause, frames: u64) {
        self.dropped[cause as usize].fetch_add(frames, Ordering::Relaxed);
    }
    /// Counts a successful reconnection.
    pub fn add_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts a gap record that could not be queued.
    pub fn add_gap_unrecorded(&self) {
        self.gaps_unrecorded.fetch_add(1, Ordering::Relaxed);
    }
    /// Records why capture ended for good (the first reason wins).
    pub fn set_failure(&self, why: String) {
        let _ = self.failure.set(why);
    }
    /// Why capture ended for good, if it has.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }
    /// Remembers the counters now as the session's zero (the capture thread calls it at the
    /// first frame of the session, before counting that frame).
    pub fn mark_baseline(&self) {
        let now = self.snapshot().to_array();
        for (b, v) in self.baseline.iter().zip(now) {
            b.store(v, Ordering::Relaxed);
        }
    }
    /// The counters since [`mark_baseline`](Self::mark_baseline) (all of them if never marked).
    pub fn session_snapshot(&self) -> StatsSnapshot {
        let now = self.snapshot().to_array();
        let mut out = [0u64; 9];
        for ((o, v), b) in out.iter_mut().zip(now).zip(&self.baseline) {
            *o = v.saturating_sub(b.load(Ordering::Relaxed));
        }
        StatsSnapshot::from_array(out)
    }
    /// The frame rate and recorder-ring fill the capture thread keeps up to date.
    pub fn live(&self) -> &crate::telemetry::StreamLive {
        &self.live
    }
    /// Copies the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            captured: self.captured.load(Ordering::Relaxed),
            recorded: self.recorded.load(Ordering::Relaxed),
            bytes_recorded: self.bytes_recorded.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            gaps_unrecorded: self.gaps_unrecorded.load(Ordering::Relaxed),
            dropped: std::array::from_fn(|i| self.dropped[i].load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_serialize_labelled_by_cause() {
        let stats = StreamStats::default();
        stats.add_dropped(DropCause::Disconnected, 7);
        stats.add_dropped(DropCause::RecorderBehind, 2);
        let json = serde_json::to_value(stats.snapshot()).unwrap();
        assert_eq!(
            json["dropped"],
            serde_json::json!({"device": 0, "disconnected": 7, "pool_exhausted": 0, "recorder_behind": 2})
        );
    }

    #[test]
    fn the_session_snapshot_counts_from_the_baseline() {
        let stats = StreamStats::default();
        stats.add_captured();
        stats.add_dropped(DropCause::Device, 3);
        stats.mark_baseline();
        stats.add_captured();
        stats.add_recorded(10);
        let s = stats.session_snapshot();
        assert_eq!((s.captured, s.recorded, s.dropped_total()), (1, 1, 0));
        assert_eq!(stats.snapshot().captured, 2);
    }
}
