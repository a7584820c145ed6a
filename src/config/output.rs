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
    /// How long the session start waits for the link to connect (port opened, device greeted),
    /// s. Default 5 (an Uno resets when its port is opened and boots in about 2 s). When it
    /// expires the session fails, unless the output is `optional`.
    #[serde(default = "default_startup_wait")]
    pub startup_wait_s: f64,
    /// Whether the session may run without this output: when it has not connected within
    /// `startup_wait_s`, behavd warns, records an outage from the session start and keeps
    /// trying; the run is reported as degraded. Default false (the session fails).
    #[serde(default)]
    pub optional: bool,
    /// Oldest a trigger may be when it is written to the port, ms after the rule decided. A
    /// trigger that cannot be written in time (link connecting, outage) is recorded as stale and
    /// never sent. Default 20.
    #[serde(default = "default_max_trigger_age")]
    pub max_trigger_age_ms: f64,
}

impl OutputConfig {
    /// `startup_wait_s` as a duration (negative or non-finite values count as 0).
    pub fn startup_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.startup_wait_s.clamp(0.0, 3600.0))
    }

    /// `max_trigger_age_ms` in nanoseconds (negative or non-finite values count as 0).
    pub fn max_trigger_age_ns(&self) -> u64 {
        (self.max_trigger_age_ms.clamp(0.0, 3_600_000.0) * 1e6) as u64
    }

    /// Why the configured port cannot be a stimulator right now, for `behavd check` (a warning:
    /// the device may be plugged in later), or None. `emulated` is always fine.
    pub fn port_warning(&self) -> Option<String> {
        if self.port == "emulated" {
            return None;
        }
        if self.port.starts_with("usb:") {
            return crate::stim::ports::resolve_port(&self.port)
                .is_none()
                .then(|| {
                    format!(
                        "output `{}`: no serial port with USB serial number `{}` is plugged in now",
                        self.name,
                        &self.port[4..]
                    )
                });
        }
        if self.port.is_empty() {
            return Some(format!("output `{}`: port is empty", self.name));
        }
        match std::fs::metadata(&self.port) {
            Err(e) => Some(format!(
                "output `{}`: port {} does not exist now ({e}); the session will wait {} s for it",
                self.name, self.port, self.startup_wait_s
            )),
            Ok(m) if m.is_file() || m.is_dir() => Some(format!(
                "output `{}`: port {} is a {}, not a serial device",
                self.name,
                self.port,
                if m.is_dir() {
                    "directory"
                } else {
                    "regular file"
                }
            )),
            Ok(_) => None,
        }
    }

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

fn default_startup_wait() -> f64 {
    5.0
}
fn default_max_trigger_age() -> f64 {
    20.0
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
