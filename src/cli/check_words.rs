//! The rig `behavd check` describes, in plain words (no Rust debug text): sources, outputs
//! and their safety limits, rules.

use behavd::config::output::{OutputLimits, OutputProtocol};
use behavd::config::rule::RuleConfig;
use behavd::config::source::{ControlSetting, MiniscopeConfig, Pacing, TriggerSetting, V4l2Format};
use behavd::config::{Compression, OutputConfig, SourceConfig};
use behavd::frame::PixelFormat;

/// `gray8` → "8-bit gray".
pub fn pixel_format(f: PixelFormat) -> &'static str {
    match f {
        PixelFormat::Gray8 => "8-bit gray",
        PixelFormat::Rgb8 => "8-bit RGB",
    }
}

/// Stored compression in words.
pub fn compression(c: &Compression) -> String {
    match c {
        Compression::None => "uncompressed".into(),
        Compression::Gzip { level } => format!("gzip level {level}"),
    }
}

fn pacing(p: Pacing) -> &'static str {
    match p {
        Pacing::Realtime => "real-time pacing",
        Pacing::Fast => "as fast as possible",
    }
}

fn v4l2_format(f: V4l2Format) -> &'static str {
    match f {
        V4l2Format::Grey => "GREY (8-bit gray)",
        V4l2Format::Yuyv => "YUYV (4:2:2)",
        V4l2Format::Mjpeg => "MJPEG",
    }
}

fn trigger_input(t: TriggerSetting) -> &'static str {
    match t {
        TriggerSetting::Off => "trigger input off",
        TriggerSetting::ActiveHigh => "trigger input active high",
        TriggerSetting::ActiveLow => "trigger input active low",
    }
}

/// The kind of a source and what is particular to it.
pub fn source_detail(s: &SourceConfig) -> (&'static str, String) {
    match s {
        SourceConfig::SyntheticMiniscope(m) => (
            "synthetic-miniscope",
            format!(
                "{} neurons, seed {}, {}",
                m.neurons,
                m.seed,
                pacing(m.pacing)
            ),
        ),
        SourceConfig::SyntheticBehavior(b) => (
            "synthetic-behavior",
            format!(
                "{}, seed {}, {}",
                pixel_format(b.pixel_format),
                b.seed,
                pacing(b.pacing)
            ),
        ),
        SourceConfig::V4l2(v) => {
            let controls = v
                .controls
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>();
            (
                "v4l2",
                format!(
                    "device {}, captures {}, stores {}, {} buffers{}",
                    v.device,
                    v4l2_format(v.format),
                    pixel_format(v.pixel_format),
                    v.buffers,
                    if controls.is_empty() {
                        String::new()
                    } else {
                        format!(", controls {}", controls.join(", "))
                    }
                ),
            )
        }
        SourceConfig::Miniscope(m) => (
            "miniscope",
            format!(
                "DAQ {}, {}, IMU {}, {}{}",
                m.device,
                m.device_type,
                if m.imu { "on" } else { "off" },
                trigger_input(m.trigger),
                if m.controls.is_empty() {
                    String::new()
                } else {
                    format!(", controls {}", miniscope_controls(m))
                }
            ),
        ),
        SourceConfig::Nokhwa(n) => (
            "nokhwa",
            format!(
                "camera {}{}",
                n.device,
                if cfg!(feature = "nokhwa") {
                    ""
                } else {
                    " (this build lacks the nokhwa feature)"
                }
            ),
        ),
    }
}

/// Where an output is and how it is spoken to.
pub fn output_link(o: &OutputConfig) -> String {
    let protocol = match o.protocol {
        OutputProtocol::Behavd => "behavd protocol",
        OutputProtocol::Firmata => "StandardFirmata",
    };
    let port = if o.port == "emulated" {
        match o.protocol {
            OutputProtocol::Behavd => "behavd's emulated stimulator".to_string(),
            OutputProtocol::Firmata => "behavd's emulated Firmata board".to_string(),
        }
    } else {
        format!("port {}", o.port)
    };
    let channels = if o.pins.is_empty() {
        "channels 0 and 1".to_string()
    } else {
        let pin = match o.protocol {
            OutputProtocol::Firmata => "pin",
            OutputProtocol::Behavd => "device channel",
        };
        o.pins
            .iter()
            .enumerate()
            .map(|(c, p)| format!("channel {c} → {pin} {p}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("{port}, {protocol} at {} baud, {channels}", o.baud_rate())
}

/// The safety limits of an output in words.
pub fn limits(l: &OutputLimits, protocol: OutputProtocol) -> String {
    let watchdog = match (protocol, l.watchdog_ms) {
        (OutputProtocol::Firmata, _) => "no device watchdog (StandardFirmata has none)".into(),
        (_, 0) => "device watchdog off".to_string(),
        (_, ms) => format!("the device turns every channel off after {ms} ms without contact"),
    };
    let refractory = if l.refractory_s > 0.0 {
        format!("at least {} s between trains on a channel", l.refractory_s)
    } else {
        "no refractory period".into()
    };
    format!(
        "a pulse lasts at most {} ms; a channel is on at most {} % of any {} s; {refractory}; {watchdog}",
        l.max_on_ms,
        l.max_duty * 100.0,
        l.duty_window_s
    )
}

/// What a rule sends and how often, in words.
pub fn rule_trigger(r: &RuleConfig) -> String {
    let t = &r.trigger;
    let train = match (t.pulses, t.period_ms) {
        (1, _) => format!("one {} ms pulse", t.pulse_width_ms),
        (n, Some(p)) => format!("{n} pulses of {} ms every {p} ms", t.pulse_width_ms),
        (n, None) => format!("{n} pulses of {} ms", t.pulse_width_ms),
    };
    let mut rate = Vec::new();
    if r.refractory_s > 0.0 {
        rate.push(format!("at least {} s apart", r.refractory_s));
    }
    if let Some(m) = r.max_per_minute {
        rate.push(format!("at most {m} per minute"));
    }
    let rate = if rate.is_empty() {
        String::new()
    } else {
        format!(", {}", rate.join(", "))
    };
    format!("output {} channel {}: {train}{rate}", t.output, t.channel)
}

/// How long a rule's condition must hold.
pub fn debounce(r: &RuleConfig) -> String {
    match (r.for_frames, r.for_s) {
        (Some(n), _) if n > 1 => format!(" for {n} frames"),
        (_, Some(s)) if s > 0.0 => format!(" for {s} s"),
        _ => String::new(),
    }
}

/// A Miniscope's control settings as `name = value`.
fn miniscope_controls(m: &MiniscopeConfig) -> String {
    m.controls
        .iter()
        .map(|(k, v)| match v {
            ControlSetting::Number(x) => format!("{k} = {x}"),
            ControlSetting::Label(l) => format!("{k} = {l}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
