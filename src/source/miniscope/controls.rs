//! From control settings to I2C packets: one control change, the SERDES mode
//! packets and the whole connect ritual.

use super::catalog::{ControlDef, DeviceEntry, SliderDef, SpinBoxDef};
use super::packet::{I2cPacket, KeyedPacket, PacketError};
use super::send_command::{Protocol, SendCommandError};

/// Pause the official app makes after the SERDES packets and after the init list.
pub const CONNECT_SETTLE_MS: u64 = 500;

/// Why a control setting cannot be turned into packets.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The device has no control of that name.
    #[error("device {device} has no control {control:?}")]
    UnknownControl {
        /// Device type.
        device: String,
        /// Control asked for.
        control: String,
    },
    /// A slider value outside the control's range.
    #[error("{control} = {value} is outside {min}..={max}")]
    OutOfRange {
        /// Control name.
        control: String,
        /// Value asked for.
        value: f64,
        /// Lowest allowed.
        min: f64,
        /// Highest allowed.
        max: f64,
    },
    /// A spin-box choice that does not exist.
    #[error("{control} has no choice {label:?} (choices: {choices})")]
    UnknownChoice {
        /// Control name.
        control: String,
        /// Label asked for.
        label: String,
        /// Comma-separated labels.
        choices: String,
    },
    /// A slider value for a spin box or the reverse, or fine steps on a control without.
    #[error("{control}: {reason}")]
    WrongKind {
        /// Control name.
        control: String,
        /// What does not fit.
        reason: &'static str,
    },
    /// A control definition that contradicts itself (the built-in catalog is checked
    /// against this when parsed; hand-built definitions may not be).
    #[error("{control}: {reason}")]
    BadDefinition {
        /// Control name.
        control: String,
        /// What is inconsistent.
        reason: &'static str,
    },
    /// The catalog's template could not be rendered.
    #[error(transparent)]
    SendCommand(#[from] SendCommandError),
    /// A fixed packet was not valid.
    #[error(transparent)]
    Packet(#[from] PacketError),
}

/// A setting for one control, in the units a user config uses.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlValue {
    /// A slider position in display units (LED %, EWL −127..127).
    Slider(f64),
    /// A slider position in the control's fine-steps units (`led0FineSteps: true`).
    FineSlider(f64),
    /// A spin-box choice by label (`"Low"`, `"20FPS"`).
    Choice(String),
}

/// JavaScript's ToInt32 (what QML's `<<` applies): truncate, then wrap modulo 2^32.
fn js_to_int32(x: f64) -> i32 {
    if !x.is_finite() {
        return 0;
    }
    let m = x.trunc().rem_euclid(4_294_967_296.0);
    // m is an integer in [0, 2^32), exact in f64.
    (m as u64) as u32 as i32
}

impl SliderDef {
    /// The control's "i2c value" for display value `value`:
    /// `int32_trunc(v·scale − offset) << shift`, using the fine-steps mapping if `fine`.
    pub fn i2c_value(&self, value: f64, fine: bool) -> Result<u32, ControlError> {
        let (mut min, mut max) = (self.min, self.max);
        let (mut scale, mut offset) = (self.display_value_scale, self.display_value_offset);
        if fine {
            let f = self.fine_steps.as_ref().ok_or(ControlError::WrongKind {
                control: self.name.clone(),
                reason: "this control has no fine steps",
            })?;
            min = f.min.unwrap_or(min);
            max = f.max.unwrap_or(max);
            scale = f.display_value_scale.unwrap_or(scale);
            offset = f.display_value_offset.unwrap_or(offset);
        }
        if !(min <= value && value <= max) {
            return Err(ControlError::OutOfRange {
                control: self.name.clone(),
                value,
                min,
                max,
            });
        }
        let v = js_to_int32(value * scale - offset).wrapping_shl(self.display_value_bit_shift);
        Ok(v as u32)
    }
}

impl SpinBoxDef {
    /// Index of the choice `label`.
    pub fn index_of(&self, label: &str) -> Result<usize, ControlError> {
        self.labels
            .iter()
            .position(|l| l == label)
            .ok_or_else(|| ControlError::UnknownChoice {
                control: self.name.clone(),
                label: label.to_owned(),
                choices: self.labels.join(", "),
            })
    }

    /// The i2c value pair `(outputValues[i], outputValues2[i] or 0)` of the choice `label`.
    pub fn i2c_values(&self, label: &str) -> Result<(u32, u32), ControlError> {
        let i = self.index_of(label)?;
        let v = self.output_values.get(i).copied();
        let v2 = match &self.output_values2 {
            Some(values) => values.get(i).copied(),
            None => Some(0),
        };
        v.zip(v2).ok_or_else(|| ControlError::BadDefinition {
            control: self.name.clone(),
            reason: "outputValues/outputValues2 shorter than labels",
        })
    }
}

/// The packets that set `control` of `device` to `value`, in catalog order. SPI commands
/// are skipped, as the official app skips them.
pub fn control_packets(
    device: &DeviceEntry,
    control: &str,
    value: &ControlValue,
) -> Result<Vec<KeyedPacket>, ControlError> {
    let def = device
        .control(control)
        .ok_or_else(|| ControlError::UnknownControl {
            device: device.device_type.clone(),
            control: control.to_owned(),
        })?;
    let (v, v2) = match (def, value) {
        (ControlDef::Slider(s), ControlValue::Slider(x)) => (s.i2c_value(*x, false)?, 0),
        (ControlDef::Slider(s), ControlValue::FineSlider(x)) => (s.i2c_value(*x, true)?, 0),
        (ControlDef::SpinBox(s), ControlValue::Choice(label)) => s.i2c_values(label)?,
        (ControlDef::Slider(_), ControlValue::Choice(_)) => {
            return Err(ControlError::WrongKind {
                control: control.to_owned(),
                reason: "a slider takes a number, not a choice",
            });
        }
        (ControlDef::SpinBox(_), _) => {
            return Err(ControlError::WrongKind {
                control: control.to_owned(),
                reason: "a spin box takes a choice label, not a number",
            });
        }
    };
    def.send_command()
        .iter()
        .filter(|c| c.protocol == Protocol::I2c)
        .map(|c| c.render(v, v2).map_err(ControlError::from))
        .collect()
}

/// The control's start value from the catalog.
pub fn start_value(def: &ControlDef) -> ControlValue {
    match def {
        ControlDef::Slider(s) => ControlValue::Slider(s.start_value),
        ControlDef::SpinBox(s) => ControlValue::Choice(s.start_value.clone()),
    }
}

/// The SERDES mode packets, deserializer first: `[C0 1F 10] [B0 05 20]` for the
/// 12-bit low-frequency mode (pixel clock ≤ 50 MHz), `[C0 1F 11] [B0 05 21]` for 10-bit
/// high-frequency.
pub fn serdes_mode_packets(high_frequency: bool) -> Result<[KeyedPacket; 2], PacketError> {
    let m = u8::from(high_frequency);
    Ok([
        KeyedPacket::constant(I2cPacket::new(&[0xC0, 0x1F, 0x10 | m])?),
        KeyedPacket::constant(I2cPacket::new(&[0xB0, 0x05, 0x20 | m])?),
    ])
}

/// The device's `initialize` list as packets, in order.
pub fn init_packets(device: &DeviceEntry) -> Result<Vec<KeyedPacket>, ControlError> {
    device
        .initialize
        .iter()
        .filter(|c| c.protocol == Protocol::I2c)
        .map(|c| c.render(0, 0).map_err(ControlError::from))
        .collect()
}

/// One step of the connect ritual, for whoever drives the device and the writer.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectStep {
    /// Drop whatever the writer still holds from before (the official app does this
    /// before the SERDES packets).
    ClearQueue,
    /// Queue these packets on the control writer, in order.
    Send(Vec<KeyedPacket>),
    /// Wait this long after the previous packets have been written.
    WaitMs(u64),
    /// Negotiate YUY2 at this size (UVC frame descriptor `frame_index`) and start streaming.
    NegotiateFormat {
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
        /// The DAQ's frame-descriptor index for that size, if it has one.
        frame_index: Option<u8>,
    },
}

/// The connect (and reconnect) ritual (docs/miniscope.md): clear, SERDES mode, wait, negotiate the
/// format, init list, wait, then **every** control's value — `values` where it names the
/// control, else the catalog start value. Unlike the official app, behavd re-sends the
/// control values on reconnect too, so a headstage that rebooted gets its settings back.
pub fn connect_sequence(
    device: &DeviceEntry,
    values: &[(&str, ControlValue)],
) -> Result<Vec<ConnectStep>, ControlError> {
    for (name, _) in values {
        if device.control(name).is_none() {
            return Err(ControlError::UnknownControl {
                device: device.device_type.clone(),
                control: (*name).to_owned(),
            });
        }
    }
    let mut controls = Vec::new();
    for def in &device.control_settings {
        let value = values
            .iter()
            .find(|(n, _)| *n == def.name())
            .map_or_else(|| start_value(def), |(_, v)| v.clone());
        controls.extend(control_packets(device, def.name(), &value)?);
    }
    Ok(vec![
        ConnectStep::ClearQueue,
        ConnectStep::Send(serdes_mode_packets(device.serdes_high_frequency())?.to_vec()),
        ConnectStep::WaitMs(CONNECT_SETTLE_MS),
        ConnectStep::NegotiateFormat {
            width: device.width,
            height: device.height,
            frame_index: device.uvc_frame_index(),
        },
        ConnectStep::Send(init_packets(device)?),
        ConnectStep::WaitMs(CONNECT_SETTLE_MS),
        ConnectStep::Send(controls),
    ])
}

/// The packets that turn every LED of the device off (its LED controls at 0 %), for
/// shutdown (`20 01 FF` and `58 00 72 FF` on a V4).
pub fn leds_off_packets(device: &DeviceEntry) -> Result<Vec<KeyedPacket>, ControlError> {
    let mut out = Vec::new();
    for def in &device.control_settings {
        if let ControlDef::Slider(s) = def
            && s.name.starts_with("led")
        {
            out.extend(control_packets(
                device,
                &s.name,
                &ControlValue::Slider(s.min),
            )?);
        }
    }
    Ok(out)
}
