//! The DAQ device catalog: frame size, sensor, SERDES pixel clock, the controls with their
//! `sendCommand` templates, and the init commands of every DAQ-based device
//! (docs/miniscope.md).
//!
//! The catalog is data, embedded from `catalog.json`; its `sendCommand` objects follow the
//! official app's schema, see [`super::send_command`].

use serde::Deserialize;

use super::send_command::{SendCommand, TemplateByte};

/// The catalog shipped with behavd.
const BUILTIN_JSON: &str = include_str!("catalog.json");

/// Pixel clock above which the SERDES runs "10-bit high-frequency" mode, in MHz.
pub const SERDES_HIGH_FREQUENCY_ABOVE_MHZ: f64 = 50.0;

/// Why the catalog, or one of its entries, is unusable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogError {
    /// The JSON does not parse or does not match the schema; the message names the path.
    #[error("device catalog: {0}")]
    Json(String),
    /// An entry whose control definitions contradict each other.
    #[error("device {device}, control {control}: {reason}")]
    BadControl {
        /// Device type.
        device: String,
        /// Control name.
        control: String,
        /// What is wrong.
        reason: String,
    },
    /// No entry of that device type.
    #[error("no device type {name:?} in the catalog (known: {known})")]
    UnknownDevice {
        /// The name asked for.
        name: String,
        /// Comma-separated known names.
        known: String,
    },
}

/// The alternative slider mapping a user config selects with `<control>FineSteps: true`;
/// fields it leaves out keep the slider's own.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FineSteps {
    /// Lowest slider value.
    pub min: Option<f64>,
    /// Highest slider value.
    pub max: Option<f64>,
    /// Replaces `displayValueScale`.
    pub display_value_scale: Option<f64>,
    /// Replaces `displayValueOffset`.
    pub display_value_offset: Option<f64>,
}

/// A slider control (LED, EWL): display value → `trunc(v·scale − offset) << shift`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SliderDef {
    /// Control name (`led0`, `ewl`, ...).
    pub name: String,
    /// Lowest display value.
    pub min: f64,
    /// Highest display value.
    pub max: f64,
    /// Display value used when the user config gives none.
    pub start_value: f64,
    /// Multiplier from display value to i2c value.
    pub display_value_scale: f64,
    /// Subtracted after scaling.
    pub display_value_offset: f64,
    /// Left shift applied last.
    pub display_value_bit_shift: u32,
    /// The fine-steps variant, if the control has one.
    #[serde(default)]
    pub fine_steps: Option<FineSteps>,
    /// Packets sent for every value.
    pub send_command: Vec<SendCommand>,
}

/// A spin-box control (gain, frame rate): a choice among labelled register values.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SpinBoxDef {
    /// Control name (`gain`, `frameRate`).
    pub name: String,
    /// The choice names a user config uses (`"Low"`, `"20FPS"`).
    pub labels: Vec<String>,
    /// What each choice means in display units (gain ×, fps), written to metadata.
    pub display_text_values: Vec<f64>,
    /// The i2c value of each choice.
    pub output_values: Vec<u32>,
    /// The second i2c value of each choice, for templates using `value2H`/`value2L`.
    #[serde(default)]
    pub output_values2: Option<Vec<u32>>,
    /// Label used when the user config gives none.
    pub start_value: String,
    /// Packets sent for every value.
    pub send_command: Vec<SendCommand>,
}

/// A control of a catalog device.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "controlType", rename_all = "camelCase")]
pub enum ControlDef {
    /// A continuous control.
    Slider(SliderDef),
    /// A choice among fixed values.
    SpinBox(SpinBoxDef),
}

impl ControlDef {
    /// The control's name.
    pub fn name(&self) -> &str {
        match self {
            ControlDef::Slider(s) => &s.name,
            ControlDef::SpinBox(s) => &s.name,
        }
    }

    /// Its command templates.
    pub fn send_command(&self) -> &[SendCommand] {
        match self {
            ControlDef::Slider(s) => &s.send_command,
            ControlDef::SpinBox(s) => &s.send_command,
        }
    }
}

/// `frameRate` in an entry: a fixed rate, or set through the frameRate control.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum NominalFrameRate {
    /// The sensor runs at this rate.
    Fixed(f64),
    /// The string `"adjustable"`: the frameRate control sets it.
    Adjustable(Adjustable),
}

/// The literal `"adjustable"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Adjustable {
    /// `"adjustable"`.
    #[serde(rename = "adjustable")]
    Adjustable,
}

/// One DAQ-based device type. On the wire its frames are YUY2 `width × height` (2 bytes a
/// pixel, the luma byte being the 8-bit image), always negotiated at a nominal 30 fps.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceEntry {
    /// Catalog name (`Miniscope_V4_BNO`, ...), the user config's `deviceType`.
    pub device_type: String,
    /// Image sensor.
    pub sensor: String,
    /// Frame rate, fixed or adjustable.
    pub frame_rate: NominalFrameRate,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Sensor pixel clock in MHz; selects the SERDES mode.
    pub pixel_clock: f64,
    /// Whether it carries a BNO055 head-orientation sensor.
    pub head_orientation: bool,
    /// Whether the sensor is colour.
    pub is_color: bool,
    /// Whether the reference gives every value of this entry (false: see `provenance`).
    pub complete: bool,
    /// Where the values come from and what is assumed.
    pub provenance: String,
    /// Controls, in the order their start values are pushed after init.
    pub control_settings: Vec<ControlDef>,
    /// Commands sent once after every connect.
    pub initialize: Vec<SendCommand>,
}

impl DeviceEntry {
    /// The control called `name`.
    pub fn control(&self, name: &str) -> Option<&ControlDef> {
        self.control_settings.iter().find(|c| c.name() == name)
    }

    /// Whether the SERDES must run its 10-bit high-frequency mode (pixel clock > 50 MHz).
    pub fn serdes_high_frequency(&self) -> bool {
        self.pixel_clock > SERDES_HIGH_FREQUENCY_ABOVE_MHZ
    }

    /// Bytes of one raw YUY2 frame as the DAQ sends it.
    pub fn wire_frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * 2
    }

    /// The index of the DAQ's UVC frame descriptor for this size, if it has one.
    pub fn uvc_frame_index(&self) -> Option<u8> {
        uvc_frame_index(self.width, self.height)
    }

    fn validate(&self) -> Result<(), CatalogError> {
        let bad = |control: &str, reason: String| CatalogError::BadControl {
            device: self.device_type.clone(),
            control: control.to_owned(),
            reason,
        };
        for (i, c) in self.control_settings.iter().enumerate() {
            if self.control_settings[..i]
                .iter()
                .any(|d| d.name() == c.name())
            {
                return Err(bad(c.name(), "defined twice".into()));
            }
            if c.send_command().is_empty() {
                return Err(bad(c.name(), "no sendCommand".into()));
            }
            match c {
                ControlDef::Slider(s) => {
                    if !(s.min <= s.start_value && s.start_value <= s.max) {
                        return Err(bad(
                            &s.name,
                            format!("startValue {} outside {}..={}", s.start_value, s.min, s.max),
                        ));
                    }
                    if s.send_command.iter().any(SendCommand::uses_value2) {
                        return Err(bad(&s.name, "a slider has no second value".into()));
                    }
                }
                ControlDef::SpinBox(s) => {
                    let n = s.labels.len();
                    if n == 0 || s.display_text_values.len() != n || s.output_values.len() != n {
                        return Err(bad(&s.name, "labels, displayTextValues and outputValues must be equally long and not empty".into()));
                    }
                    let needs2 = s.send_command.iter().any(SendCommand::uses_value2);
                    match &s.output_values2 {
                        Some(v2) if v2.len() != n => {
                            return Err(bad(
                                &s.name,
                                "outputValues2 must be as long as outputValues".into(),
                            ));
                        }
                        None if needs2 => {
                            return Err(bad(
                                &s.name,
                                "value2 placeholders need outputValues2".into(),
                            ));
                        }
                        _ => {}
                    }
                    if !s.labels.contains(&s.start_value) {
                        return Err(bad(
                            &s.name,
                            format!("startValue {:?} is not a label", s.start_value),
                        ));
                    }
                }
            }
        }
        if self
            .initialize
            .iter()
            .any(|c| c.bytes.iter().any(|b| matches!(b, TemplateByte::Value(_))))
        {
            return Err(bad(
                "initialize",
                "init commands cannot carry a value".into(),
            ));
        }
        Ok(())
    }
}

/// The UVC frame-descriptor index the DAQ firmware gives a frame size.
pub fn uvc_frame_index(width: u32, height: u32) -> Option<u8> {
    const SIZES: [(u32, u32); 9] = [
        (608, 608),
        (2592, 1944),
        (1296, 972),
        (752, 480),
        (1024, 768),
        (800, 800),
        (1000, 1000),
        (1500, 1500),
        (1800, 1800),
    ];
    SIZES
        .iter()
        .position(|&s| s == (width, height))
        .map(|i| i as u8 + 1)
}

/// A set of device entries.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Catalog {
    /// Entries in file order.
    pub devices: Vec<DeviceEntry>,
}

/// The built-in catalog, parsed once per process.
pub fn builtin_catalog() -> Result<&'static Catalog, CatalogError> {
    static CATALOG: std::sync::OnceLock<Result<Catalog, CatalogError>> = std::sync::OnceLock::new();
    CATALOG
        .get_or_init(Catalog::builtin)
        .as_ref()
        .map_err(Clone::clone)
}

impl Catalog {
    /// The catalog shipped with behavd.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Catalog::from_json(BUILTIN_JSON)
    }

    /// Parses and checks a catalog (keys containing `COMMENT` at the top level are ignored).
    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let catalog: Catalog = serde_path_to_error::deserialize(de)
            .map_err(|e| CatalogError::Json(format!("at {}: {}", e.path(), e.inner())))?;
        for d in &catalog.devices {
            d.validate()?;
        }
        Ok(catalog)
    }

    /// The entry for `device_type`.
    pub fn device(&self, device_type: &str) -> Result<&DeviceEntry, CatalogError> {
        self.devices
            .iter()
            .find(|d| d.device_type == device_type)
            .ok_or_else(|| CatalogError::UnknownDevice {
                name: device_type.to_owned(),
                known: self
                    .devices
                    .iter()
                    .map(|d| d.device_type.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}
