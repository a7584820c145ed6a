//! `kind = "miniscope"`: a UCLA Miniscope through its DAQ (V4L2 + the DAQ's I²C-over-UVC
//! control channel).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `kind = "miniscope"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiniscopeConfig {
    /// Stream name (NWB object name). Default `Miniscope`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Which DAQ: `auto` (the first V4L2 node whose USB id is 04b4:00f9), `/dev/videoN`, a
    /// `/dev/v4l/by-id/...` link, `card:<card name>` or `usb:<serial>`. Default `auto`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Catalog entry of the headstage (`Miniscope_V4_BNO`, `Miniscope_V4`, `Miniscope_V3`,
    /// `Minicam-Mono-XGA`, ...; `behavd devices` and docs/miniscope.md list them). Default
    /// `Miniscope_V4_BNO`.
    #[serde(default = "default_device_type")]
    pub device_type: String,
    /// Control values by catalog name: numbers for sliders (`led0 = 10.0` %, `ewl = 0`),
    /// labels for choices (`gain = "Low"`, `frameRate = "20FPS"`). Controls not named keep the
    /// catalog's start value. Changeable while running through the control plane.
    #[serde(default)]
    pub controls: BTreeMap<String, ControlSetting>,
    /// Read the BNO055 head orientation every frame (devices with one). Default true.
    #[serde(default = "default_true")]
    pub imu: bool,
    /// The DAQ's trigger input: `off`, `active_high` or `active_low`. Default `off`.
    #[serde(default)]
    pub trigger: TriggerSetting,
    /// Kernel buffers of the V4L2 stream (2–32). Default 8.
    #[serde(default = "default_buffers")]
    pub buffers: u32,
    /// Compression override for this stream (else `[recording].compression`).
    #[serde(default)]
    pub compression: Option<super::Compression>,
}

/// A control value as written in the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ControlSetting {
    /// A slider position in display units.
    Number(f64),
    /// A choice by label.
    Label(String),
}

/// The trigger input setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerSetting {
    /// Not read.
    #[default]
    Off,
    /// Active when the input reads high.
    ActiveHigh,
    /// Active when the input reads low.
    ActiveLow,
}

fn default_name() -> String {
    "Miniscope".into()
}
fn default_device() -> String {
    "auto".into()
}
fn default_device_type() -> String {
    "Miniscope_V4_BNO".into()
}
fn default_true() -> bool {
    true
}
fn default_buffers() -> u32 {
    8
}

impl MiniscopeConfig {
    /// The catalog entry of `device_type`.
    pub fn device_entry(
        &self,
    ) -> Result<crate::source::miniscope::DeviceEntry, crate::source::miniscope::CatalogError> {
        crate::source::miniscope::catalog::builtin_catalog()
            .and_then(|c| c.device(&self.device_type).cloned())
    }

    /// Frame size from the catalog (0×0 for an unknown device type, which
    /// [`MiniscopeConfig::problem`] reports).
    pub fn size(&self) -> (u32, u32) {
        self.device_entry().map_or((0, 0), |d| (d.width, d.height))
    }

    /// Frame rate: the `frameRate` control's label (`"20FPS"` → 20), else the catalog's start
    /// value, else 30 (a fixed-rate sensor).
    pub fn fps(&self) -> f64 {
        let label = match self.controls.get("frameRate") {
            Some(ControlSetting::Label(l)) => Some(l.clone()),
            _ => self.device_entry().ok().and_then(|d| {
                d.control("frameRate").map(
                    |c| match crate::source::miniscope::controls::start_value(c) {
                        crate::source::miniscope::ControlValue::Choice(l) => l,
                        _ => String::new(),
                    },
                )
            }),
        };
        label
            .and_then(|l| l.trim_end_matches("FPS").trim().parse().ok())
            .unwrap_or(30.0)
    }

    /// The control values in the control plane's terms.
    pub fn control_values(&self) -> Vec<(String, crate::source::miniscope::ControlValue)> {
        use crate::source::miniscope::ControlValue;
        self.controls
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    ControlSetting::Number(x) => ControlValue::Slider(*x),
                    ControlSetting::Label(l) => ControlValue::Choice(l.clone()),
                };
                (k.clone(), value)
            })
            .collect()
    }

    /// What is wrong with this entry, as (key, reason), if anything: an unknown device type,
    /// an unknown control or an impossible value (checked against the catalog).
    pub fn problem(&self) -> Option<(String, String)> {
        if self.device.trim().is_empty() {
            return Some((
                "device".into(),
                "is empty: give auto, /dev/videoN, a /dev/v4l/by-id path, card:<name> or usb:<serial>"
                    .into(),
            ));
        }
        let device = match self.device_entry() {
            Ok(d) => d,
            Err(e) => return Some(("device_type".into(), e.to_string())),
        };
        for (name, value) in self.control_values() {
            if let Err(e) = crate::source::miniscope::control_packets(&device, &name, &value) {
                return Some((format!("controls.{name}"), e.to_string()));
            }
        }
        if !(2..=32).contains(&self.buffers) {
            return Some(("buffers".into(), format!("{} is not 2–32", self.buffers)));
        }
        None
    }
}
