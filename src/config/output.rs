//! `[[output]]`: a stimulator the rules' triggers go to, over a serial link.

use serde::{Deserialize, Serialize};

/// One stimulator output device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Output name (rules send to it with `trigger.output = "<name>"`).
    pub name: String,
    /// Where the device is: a path (`/dev/ttyACM0`, `/dev/serial/by-id/...`), `usb:<serial
    /// number>` (the USB serial number, stable across re-plugging), or `emulated` (behavd's
    /// built-in emulation of the reference firmware on a pseudo-terminal).
    pub port: String,
    /// Wire protocol: `behavd` (the reference firmware, device-timestamped acknowledgements)
    /// or `firmata` (an unmodified Arduino running StandardFirmata; host-timed pulses, no
    /// acknowledgement). Default `behavd`.
    #[serde(default)]
    pub protocol: OutputProtocol,
    /// Baud rate. Default 115200 for the behavd protocol, 57600 (StandardFirmata's rate) for
    /// Firmata; see [`OutputConfig::baud_rate`].
    #[serde(default)]
    pub baud: Option<u32>,
    /// Channel → device pin (Firmata: the Arduino pin number to drive; behavd protocol: the
    /// firmware's channel number). Default: channel i is device channel i.
    #[serde(default)]
    pub pins: Vec<u8>,
    /// Safety limits, enforced by behavd before anything reaches the wire and (behavd
    /// protocol) sent to the firmware, which enforces them again.
    #[serde(default)]
    pub limits: OutputLimits,
}

impl OutputConfig {
    /// The configured baud rate, or the protocol's default.
    pub fn baud_rate(&self) -> u32 {
        self.baud.unwrap_or(match self.protocol {
            OutputProtocol::Behavd => 115_200,
            OutputProtocol::Firmata => 57_600,
        })
    }
}

/// Wire protocol of an output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputProtocol {
    /// behavd's own protocol (firmware-interface/PROTOCOL.md).
    #[default]
    Behavd,
    /// StandardFirmata.
    Firmata,
}

/// `[output.limits]`: what no trigger may exceed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputLimits {
    /// Longest a channel may stay on, ms. Default 1000.
    #[serde(default = "default_max_on")]
    pub max_on_ms: f64,
    /// Highest fraction of time a channel may be on over `duty_window_s`. Default 0.5.
    #[serde(default = "default_max_duty")]
    pub max_duty: f64,
    /// Window of the duty-cycle limit, s. Default 1.
    #[serde(default = "default_duty_window")]
    pub duty_window_s: f64,
    /// Shortest time between two trains on one channel (rising edges), s. Default 0.
    #[serde(default)]
    pub refractory_s: f64,
    /// The device turns every output off when it hears nothing from behavd for this long, ms
    /// (behavd protocol). Default 1000.
    #[serde(default = "default_watchdog")]
    pub watchdog_ms: u32,
}

impl Default for OutputLimits {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

fn default_max_on() -> f64 {
    1000.0
}
fn default_max_duty() -> f64 {
    0.5
}
fn default_duty_window() -> f64 {
    1.0
}
fn default_watchdog() -> u32 {
    1000
}
