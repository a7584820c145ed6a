//! A Miniscope's live controls: what its catalog entry offers (LED and EWL sliders, gain and
//! frame-rate choices where the entry has them) as [`LiveControl`]s, and applying one from the
//! capture thread through the scope's coalescing control writer.

use super::catalog::{ControlDef, DeviceEntry};
use super::controls::ControlValue;
use super::scope::{ScopeControl, ScopeError};
use crate::source::live::{LiveControl, LiveControlKind};

/// The entry's controls in catalog order: a slider's display range, a spin box's choices
/// with their display values (gain ×, frames per second).
pub fn live_controls_of(device: &DeviceEntry) -> Vec<LiveControl> {
    device
        .control_settings
        .iter()
        .map(|def| LiveControl {
            name: def.name().to_string(),
            kind: match def {
                ControlDef::Slider(s) => LiveControlKind::Range {
                    min: s.min,
                    max: s.max,
                },
                ControlDef::SpinBox(s) => LiveControlKind::Choices(
                    s.labels
                        .iter()
                        .cloned()
                        .zip(s.display_text_values.iter().copied())
                        .collect(),
                ),
            },
        })
        .collect()
}

impl ScopeControl {
    /// The device's live controls (see [`live_controls_of`]).
    pub fn live_controls(&self) -> Vec<LiveControl> {
        live_controls_of(self.device())
    }

    /// Applies live control `index` (into [`ScopeControl::live_controls`]) = `value`: queues
    /// its packets on the writer, which writes them at its next turns; the DAQ executes them
    /// at its next end of frame. A frame-rate change also becomes the rate the reboot
    /// detection expects.
    pub fn apply_live(&mut self, index: usize, value: f64) -> Result<(), ScopeError> {
        let device = self.device();
        let def = device.control_settings.get(index).ok_or_else(|| {
            super::ControlError::UnknownControl {
                device: device.device_type.clone(),
                control: format!("#{index}"),
            }
        })?;
        let name = def.name().to_string();
        let (setting, fps) = match def {
            ControlDef::Slider(_) => (ControlValue::Slider(value), None),
            ControlDef::SpinBox(s) => {
                let i = s
                    .display_text_values
                    .iter()
                    .position(|v| *v == value)
                    .ok_or_else(|| super::ControlError::UnknownChoice {
                        control: name.clone(),
                        label: value.to_string(),
                        choices: s.labels.join(", "),
                    })?;
                let fps = (s.name == "frameRate").then_some(value);
                (ControlValue::Choice(s.labels[i].clone()), fps)
            }
        };
        self.set_control(&name, setting)?;
        if let Some(fps) = fps {
            self.set_expected_fps(fps);
        }
        Ok(())
    }
}
