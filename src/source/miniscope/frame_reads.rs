//! The per-frame read-backs from the DAQ (docs/miniscope.md): which
//! controls to read, in which order, through [`UvcControl`]; and the firmware ABI query.
//!
//! [`Readback::read_frame`] does not allocate when the reads succeed (an error carries a
//! message).

use super::readback::{
    CounterSample, FrameCounter, ImuFilter, ImuSample, TriggerEdge, TriggerInput, TriggerPolarity,
    quaternion_from_ct, quaternion_from_pu_words,
};
use super::uvc::{CtSelector, PuSelector, UvcControl, UvcError};

/// Where the frame counter is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterSource {
    /// GET_CUR of CONTRAST (every firmware).
    Contrast,
    /// CT EXPOSURE_TIME_ABSOLUTE (ABI ≥ 2; not cached by Linux uvcvideo).
    CtExposure,
}

/// Where the quaternion is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImuSource {
    /// Four PU reads; can tear across an end of frame.
    FourReads,
    /// One atomic CT PANTILT_ABSOLUTE read (ABI ≥ 2).
    PanTilt,
}

/// What to read after each frame (each read costs a control transfer: read only what is
/// enabled).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadbackPlan {
    /// The frame counter, if wanted.
    pub counter: Option<CounterSource>,
    /// The quaternion, if the scope has a BNO and it is wanted.
    pub imu: Option<ImuSource>,
    /// The trigger input, with this polarity, if armed.
    pub trigger: Option<TriggerPolarity>,
    /// Norm-error limit of the quaternion filter.
    pub norm_error_limit: f32,
}

/// What one frame's read-back found; `None` where not read or the read failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameReadback {
    /// The counter reading.
    pub counter: Option<CounterSample>,
    /// The quaternion reading (check `good`).
    pub imu: Option<ImuSample>,
    /// The trigger edge this frame, if any.
    pub trigger_edge: Option<TriggerEdge>,
    /// Reads that failed this frame.
    pub failures: u32,
}

/// Per-frame read-back state for one DAQ.
#[derive(Debug, Clone)]
pub struct Readback {
    plan: ReadbackPlan,
    counter: FrameCounter,
    imu: ImuFilter,
    trigger: TriggerInput,
    last_error: Option<UvcError>,
}

impl Readback {
    /// Read-back following `plan`.
    pub fn new(plan: ReadbackPlan) -> Self {
        Self {
            plan,
            counter: FrameCounter::new(),
            imu: ImuFilter::new(plan.norm_error_limit),
            trigger: TriggerInput::new(plan.trigger.unwrap_or_default()),
            last_error: None,
        }
    }

    /// Reads what the plan asks for, in the order trigger → counter → quaternion.
    pub fn read_frame(&mut self, uvc: &mut impl UvcControl) -> FrameReadback {
        let mut out = FrameReadback {
            counter: None,
            imu: None,
            trigger_edge: None,
            failures: 0,
        };
        if self.plan.trigger.is_some() {
            match uvc.get_pu(PuSelector::Gamma) {
                Ok(level) => out.trigger_edge = self.trigger.update(level),
                Err(e) => self.fail(&mut out, e),
            }
        }
        if let Some(source) = self.plan.counter {
            match read_counter(uvc, source) {
                Ok(raw) => out.counter = Some(self.counter.observe(raw)),
                Err(e) => {
                    self.counter.observe_failure();
                    self.fail(&mut out, e);
                }
            }
        }
        if let Some(source) = self.plan.imu {
            match read_quaternion(uvc, source) {
                Ok(raw) => out.imu = Some(self.imu.update(raw)),
                Err(e) => self.fail(&mut out, e),
            }
        }
        out
    }

    fn fail(&mut self, out: &mut FrameReadback, e: UvcError) {
        out.failures += 1;
        self.last_error = Some(e);
    }

    /// The frame counter state.
    pub fn counter(&self) -> &FrameCounter {
        &self.counter
    }

    /// Mutable counter state (to reseed after a reconnect).
    pub fn counter_mut(&mut self) -> &mut FrameCounter {
        &mut self.counter
    }

    /// The quaternion filter.
    pub fn imu(&self) -> &ImuFilter {
        &self.imu
    }

    /// The most recent read error.
    pub fn last_error(&self) -> Option<&UvcError> {
        self.last_error.as_ref()
    }
}

/// Reads the 16-bit frame counter from `source`.
pub fn read_counter(uvc: &mut impl UvcControl, source: CounterSource) -> Result<u16, UvcError> {
    match source {
        CounterSource::Contrast => uvc.get_pu(PuSelector::Contrast),
        CounterSource::CtExposure => {
            let mut b = [0u8; 4];
            uvc.get_ct(CtSelector::ExposureTimeAbsolute, &mut b)?;
            Ok(u16::from_le_bytes([b[0], b[1]]))
        }
    }
}

/// Reads the quaternion words from `source`.
pub fn read_quaternion(uvc: &mut impl UvcControl, source: ImuSource) -> Result<[i16; 4], UvcError> {
    match source {
        ImuSource::FourReads => Ok(quaternion_from_pu_words(
            uvc.get_pu(PuSelector::Saturation)?,
            uvc.get_pu(PuSelector::Hue)?,
            uvc.get_pu(PuSelector::Gain)?,
            uvc.get_pu(PuSelector::Brightness)?,
        )),
        ImuSource::PanTilt => {
            let mut b = [0u8; 8];
            uvc.get_ct(CtSelector::PanTiltAbsolute, &mut b)?;
            Ok(quaternion_from_ct(&b))
        }
    }
}

/// SATURATION value that asks the firmware for its ABI version (it also clears the
/// recording bit).
pub const ABI_QUERY: u16 = 0x0002;

/// Starts an ABI query; read the answer with [`read_abi_answer`] once the write has
/// settled (≥ 100 µs later). Do this only before streaming.
pub fn start_abi_query(uvc: &mut impl UvcControl) -> Result<(), UvcError> {
    uvc.set_pu(PuSelector::Saturation, ABI_QUERY)
}

/// Reads HUE after an ABI query: `Some(2)` from ABI-2 firmware (the only answer the
/// reference knows). Older firmware answers BNO x (0 before streaming), reported as `None`;
/// poll a few times before concluding.
pub fn read_abi_answer(uvc: &mut impl UvcControl) -> Result<Option<u16>, UvcError> {
    let v = uvc.get_pu(PuSelector::Hue)?;
    Ok((v == 2).then_some(v))
}

/// Sets or clears the recording bit, which makes the sync output toggle once per frame.
pub fn set_recording(uvc: &mut impl UvcControl, recording: bool) -> Result<(), UvcError> {
    uvc.set_pu(PuSelector::Saturation, u16::from(recording))
}
