//! Decoding the DAQ's read-backs on the host (docs/miniscope.md): the 16-bit
//! frame counter unwrapped with drop detection, the BNO055 quaternion with its norm filter,
//! and the trigger input with edge detection. Plain integers and fixed arrays only: nothing
//! here allocates. [`super::frame_reads`] does the per-frame control reads.

/// LSBs per quaternion unit in the BNO055's output (2^14).
pub const QUATERNION_LSB_PER_UNIT: f32 = 16384.0;

/// A quaternion sample is good if `| |q| − 1 |` is below this (the official app's limit).
pub const DEFAULT_NORM_ERROR_LIMIT: f32 = 0.05;

/// One reading of the DAQ frame counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterSample {
    /// The 16 bits as read.
    pub raw: u16,
    /// The counter unwrapped to 64 bits (the first reading seeds it with its raw value).
    pub unwrapped: u64,
    /// Frames the DAQ counted between the previous reading and this one that were not
    /// read: `delta − 1` (0 for the first reading and for a repeat).
    pub gap: u64,
    /// The counter did not move since the previous reading (a stale read, e.g. a cached
    /// control on Linux uvcvideo, or read jitter).
    pub repeated: bool,
}

/// Unwraps the 16-bit DAQ frame counter and detects drops, assuming fewer than 65 536
/// frames pass between two readings.
#[derive(Debug, Clone, Default)]
pub struct FrameCounter {
    last_raw: Option<u16>,
    unwrapped: u64,
    seeded: bool,
    seed: u64,
    readings: u64,
    dropped_before_reseed: u64,
    gaps_total: u64,
    repeats: u64,
    failures: u64,
}

impl FrameCounter {
    /// A counter that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next reading.
    pub fn observe(&mut self, raw: u16) -> CounterSample {
        let (gap, repeated) = match self.last_raw {
            None => {
                self.unwrapped = if self.seeded {
                    // After a reseed: the first value above the last one that matches raw.
                    let base = self.unwrapped + 1;
                    base + u64::from(raw.wrapping_sub(base as u16))
                } else {
                    u64::from(raw)
                };
                self.seeded = true;
                self.seed = self.unwrapped;
                self.readings = 0;
                (0, false)
            }
            Some(last) => {
                let delta = u64::from(raw.wrapping_sub(last));
                self.unwrapped += delta;
                (delta.saturating_sub(1), delta == 0)
            }
        };
        self.last_raw = Some(raw);
        self.readings += 1;
        self.gaps_total += gap;
        self.repeats += u64::from(repeated);
        CounterSample {
            raw,
            unwrapped: self.unwrapped,
            gap,
            repeated,
        }
    }

    /// Notes a failed read (the frame gets no counter; the next reading spans the gap).
    pub fn observe_failure(&mut self) {
        self.failures += 1;
    }

    /// Forgets the last reading after a reconnect: the DAQ may have restarted its count,
    /// so the next reading seeds again. The gap across the reconnect is unknown and not
    /// counted; the unwrapped value stays increasing (the next one is the first value above
    /// the last that agrees with the raw reading in its low 16 bits).
    pub fn reseed(&mut self) {
        self.dropped_before_reseed = self.net_dropped();
        self.last_raw = None;
    }

    /// Sum of all per-reading gaps (jitter in when the counter is read can add a gap of 1
    /// followed by a repeat; see [`Self::net_dropped`]).
    pub fn gaps_total(&self) -> u64 {
        self.gaps_total
    }

    /// Frames the DAQ counted since the seed minus readings since the seed: drops net of
    /// read jitter, as the official app estimates them (0 if reads outnumber frames).
    pub fn net_dropped(&self) -> u64 {
        let segment = if self.last_raw.is_some() {
            (self.unwrapped - self.seed).saturating_sub(self.readings.saturating_sub(1))
        } else {
            0
        };
        self.dropped_before_reseed + segment
    }

    /// Readings that repeated the previous value.
    pub fn repeats(&self) -> u64 {
        self.repeats
    }

    /// Failed reads.
    pub fn failures(&self) -> u64 {
        self.failures
    }
}

/// A unit quaternion (w, x, y, z) as the BNO055 reports head orientation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Quaternion {
    /// Real part.
    pub w: f32,
    /// i component.
    pub x: f32,
    /// j component.
    pub y: f32,
    /// k component.
    pub z: f32,
}

/// One decoded quaternion reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImuSample {
    /// The four int16 words as read (w, x, y, z).
    pub raw: [i16; 4],
    /// `raw / 16384`.
    pub quaternion: Quaternion,
    /// `| |raw| / 16384 − 1 |`.
    pub norm_error: f32,
    /// `norm_error` below the filter's limit.
    pub good: bool,
}

/// Decodes int16 quaternion words and judges them against `limit`.
pub fn decode_quaternion(raw: [i16; 4], limit: f32) -> ImuSample {
    let [w, x, y, z] = raw.map(|v| f32::from(v) / QUATERNION_LSB_PER_UNIT);
    let norm_error = ((w * w + x * x + y * y + z * z).sqrt() - 1.0).abs();
    ImuSample {
        raw,
        quaternion: Quaternion { w, x, y, z },
        norm_error,
        good: norm_error < limit,
    }
}

/// The quaternion from the four legacy PU reads (SATURATION, HUE, GAIN, BRIGHTNESS), each
/// an int16 bit pattern.
pub fn quaternion_from_pu_words(w: u16, x: u16, y: u16, z: u16) -> [i16; 4] {
    [w, x, y, z].map(|v| v as i16)
}

/// The quaternion from the 8-byte CT PANTILT_ABSOLUTE read (w, x, y, z little-endian).
pub fn quaternion_from_ct(bytes: &[u8; 8]) -> [i16; 4] {
    [0, 1, 2, 3].map(|i| i16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]))
}

/// The quaternion from V4L2's pan/tilt pair: pan = w | x << 16, tilt = y | z << 16.
pub fn quaternion_from_pan_tilt(pan: i32, tilt: i32) -> [i16; 4] {
    [
        pan as i16,
        (pan >> 16) as i16,
        tilt as i16,
        (tilt >> 16) as i16,
    ]
}

/// Keeps the last good quaternion; bad samples are counted and do not replace it.
#[derive(Debug, Clone)]
pub struct ImuFilter {
    limit: f32,
    last_good: Option<ImuSample>,
    rejected: u64,
}

impl ImuFilter {
    /// A filter accepting samples whose norm error is below `limit`.
    pub fn new(limit: f32) -> Self {
        Self {
            limit,
            last_good: None,
            rejected: 0,
        }
    }

    /// Judges a reading; returns the decoded sample (good or not).
    pub fn update(&mut self, raw: [i16; 4]) -> ImuSample {
        let s = decode_quaternion(raw, self.limit);
        if s.good {
            self.last_good = Some(s);
        } else {
            self.rejected += 1;
        }
        s
    }

    /// The orientation to use now: the last good quaternion and its norm error, or
    /// (0, 0, 0, 0) with error 1 before the first good one (as the official app does).
    pub fn current(&self) -> (Quaternion, f32) {
        self.last_good.map_or((Quaternion::default(), 1.0), |s| {
            (s.quaternion, s.norm_error)
        })
    }

    /// Samples rejected so far.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }
}

/// Which electrical level at the DAQ's trigger input means "record".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TriggerPolarity {
    /// High (raw level 1) means record; the firmware's raw level, pull-down idle = 0.
    #[default]
    ActiveHigh,
    /// Low means record (for an inverting input buffer, which the reference could not rule
    /// out).
    ActiveLow,
}

/// A change of the trigger input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerEdge {
    /// Became active: start recording.
    Start,
    /// Became inactive: stop recording.
    Stop,
}

/// Edge detector on the per-frame trigger reading; the first reading only primes it.
#[derive(Debug, Clone, Default)]
pub struct TriggerInput {
    polarity: TriggerPolarity,
    active: Option<bool>,
}

impl TriggerInput {
    /// A detector with `polarity`.
    pub fn new(polarity: TriggerPolarity) -> Self {
        Self {
            polarity,
            active: None,
        }
    }

    /// Takes a raw GAMMA reading (non-zero = high) and reports an edge, if any. A failed
    /// read should simply not be passed in: it is ignored, not taken as low.
    pub fn update(&mut self, raw_level: u16) -> Option<TriggerEdge> {
        let high = raw_level != 0;
        let active = high == (self.polarity == TriggerPolarity::ActiveHigh);
        let before = self.active.replace(active)?;
        match (before, active) {
            (false, true) => Some(TriggerEdge::Start),
            (true, false) => Some(TriggerEdge::Stop),
            _ => None,
        }
    }

    /// Whether the input is active, once primed.
    pub fn is_active(&self) -> Option<bool> {
        self.active
    }
}
