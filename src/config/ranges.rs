//! The allowed range of every numeric key (docs/config.md, "Ranges"): values outside them
//! would hang set-up (a million neurons, a billion warm-up runs, a disc of radius 1e9), abort
//! on allocation, or make no sense, so they are refused when the config is loaded.

use super::source::{FaultPlan, SourceConfig};
use super::validate::Problems;
use super::{ModelConfig, OutputConfig, RigConfig, RuleConfig, SignalConfig};

/// Most ROIs in one signal group.
pub const MAX_ROIS: usize = 256;
/// Largest ROI radius, pixels.
pub const MAX_ROI_RADIUS: f64 = 512.0;
/// Most simulated neurons.
pub const MAX_NEURONS: u32 = 1000;
/// Most warm-up runs of a model.
pub const MAX_WARMUP_RUNS: u32 = 10_000;

/// The lower end of a range.
#[derive(Clone, Copy)]
enum Low {
    /// The value may equal it.
    AtLeast(f64),
    /// The value must exceed it.
    Above(f64),
}

impl Problems<'_> {
    /// `value` must be finite, within `low` and at most `high` (`unit` follows the numbers).
    fn float(&mut self, key: impl Into<String>, value: f64, low: Low, high: f64, unit: &str) {
        let fits = value.is_finite()
            && value <= high
            && match low {
                Low::AtLeast(l) => value >= l,
                Low::Above(l) => value > l,
            };
        if !fits {
            let unit = if unit.is_empty() {
                String::new()
            } else {
                format!(" {unit}")
            };
            let need = match low {
                Low::AtLeast(l) => format!("between {l} and {high}{unit}"),
                Low::Above(l) => format!("greater than {l} and at most {high}{unit}"),
            };
            self.error(key, format!("is {value}; must be {need}"));
        }
    }

    /// `value` must be in `low..=high`.
    fn int(&mut self, key: impl Into<String>, value: i128, low: i128, high: i128, unit: &str) {
        if !(low..=high).contains(&value) {
            let unit = if unit.is_empty() {
                String::new()
            } else {
                format!(" {unit}")
            };
            self.error(key, format!("is {value}; must be {low}–{high}{unit}"));
        }
    }

    /// A list may hold at most `max` entries (and at least `min`).
    fn count(&mut self, key: impl Into<String>, len: usize, min: usize, max: usize, what: &str) {
        if len < min || len > max {
            self.error(key, format!("has {len} {what}; {min} to {max} are allowed"));
        }
    }
}

/// Checks every numeric key of `config` against its range.
pub(super) fn check(config: &RigConfig, p: &mut Problems) {
    let imaging = &config.session.imaging;
    p.float(
        "session.imaging.excitation_nm",
        imaging.excitation_nm as f64,
        Low::AtLeast(200.0),
        2000.0,
        "nm",
    );
    p.float(
        "session.imaging.emission_nm",
        imaging.emission_nm as f64,
        Low::AtLeast(200.0),
        2000.0,
        "nm",
    );
    let r = &config.recording;
    p.float(
        "recording.flush_interval_s",
        r.flush_interval_s,
        Low::Above(0.0),
        60.0,
        "s",
    );
    p.float(
        "recording.ring_seconds",
        r.ring_seconds,
        Low::AtLeast(0.1),
        120.0,
        "s",
    );
    p.int(
        "recording.compress_threads",
        r.compress_threads as i128,
        0,
        64,
        "threads",
    );
    for (i, s) in config.source.iter().enumerate() {
        source(&format!("source[{i}]"), s, p);
    }
    for (i, m) in config.model.iter().enumerate() {
        model(&format!("model[{i}]"), m, p);
    }
    for (i, s) in config.signal.iter().enumerate() {
        signal(&format!("signal[{i}]"), s, p);
    }
    for (i, rule) in config.rule.iter().enumerate() {
        rule_ranges(&format!("rule[{i}]"), rule, p);
    }
    for (i, o) in config.output.iter().enumerate() {
        output(&format!("output[{i}]"), o, p);
    }
}

fn source(at: &str, s: &SourceConfig, p: &mut Problems) {
    match s {
        SourceConfig::SyntheticMiniscope(m) => {
            p.int(
                format!("{at}.neurons"),
                m.neurons as i128,
                1,
                MAX_NEURONS as i128,
                "neurons",
            );
            faults(at, &m.faults, p);
        }
        SourceConfig::SyntheticBehavior(b) => faults(at, &b.faults, p),
        SourceConfig::V4l2(v) => {
            if let Some(bpl) = v.bytesperline {
                p.int(
                    format!("{at}.bytesperline"),
                    bpl as i128,
                    1,
                    131_072,
                    "bytes",
                );
            }
            p.int(
                format!("{at}.stall_periods"),
                v.stall_periods as i128,
                1,
                10_000,
                "frame periods",
            );
        }
        SourceConfig::Miniscope(_) | SourceConfig::Nokhwa(_) => {}
    }
}

fn faults(at: &str, f: &FaultPlan, p: &mut Problems) {
    p.count(
        format!("{at}.faults.drop_frames"),
        f.drop_frames.len(),
        0,
        100_000,
        "frames",
    );
    for (name, list) in [("stall", &f.stall), ("disconnect", &f.disconnect)] {
        p.count(format!("{at}.faults.{name}"), list.len(), 0, 1000, "faults");
        for (j, fault) in list.iter().enumerate().take(1000) {
            p.int(
                format!("{at}.faults.{name}[{j}].ms"),
                fault.ms as i128,
                0,
                600_000,
                "ms",
            );
        }
    }
}

fn model(at: &str, m: &ModelConfig, p: &mut Problems) {
    p.int(format!("{at}.threads"), m.threads as i128, 0, 64, "threads");
    p.int(
        format!("{at}.reset_after_gap_frames"),
        m.reset_after_gap_frames as i128,
        1,
        1_000_000,
        "frames",
    );
    p.int(
        format!("{at}.warmup_runs"),
        m.warmup_runs as i128,
        0,
        MAX_WARMUP_RUNS as i128,
        "runs",
    );
    let input = &m.input;
    if let Some([x, y, w, h]) = input.crop {
        for (name, v, low) in [("x", x, 0), ("y", y, 0), ("width", w, 1), ("height", h, 1)] {
            if !(low..=8192).contains(&v) {
                p.error(
                    format!("{at}.input.crop"),
                    format!("crop {name} is {v}; must be {low}–8192 pixels"),
                );
            }
        }
    }
    if let Some([w, h]) = input.resize
        && !((1..=8192).contains(&w) && (1..=8192).contains(&h))
    {
        p.error(
            format!("{at}.input.resize"),
            format!("{w}x{h} is not a network input size between 1x1 and 8192x8192"),
        );
    }
    p.float(
        format!("{at}.input.scale"),
        input.scale.abs() as f64,
        Low::Above(0.0),
        1e6,
        "(absolute value)",
    );
    p.count(format!("{at}.input.mean"), input.mean.len(), 0, 3, "values");
    p.count(format!("{at}.input.std"), input.std.len(), 0, 3, "values");
    if let Some(v) = input.mean.iter().find(|v| !v.is_finite() || v.abs() > 1e6) {
        p.error(
            format!("{at}.input.mean"),
            format!("{v} is not a finite number of at most 1e6"),
        );
    }
    if let Some(v) = input
        .std
        .iter()
        .find(|v| !v.is_finite() || v.abs() < 1e-6 || v.abs() > 1e6)
    {
        p.error(
            format!("{at}.input.std"),
            format!("{v} cannot divide: each std must be finite, between 1e-6 and 1e6"),
        );
    }
    p.int(
        format!("{at}.input.frames"),
        input.frames as i128,
        1,
        64,
        "frames",
    );
}

fn signal(at: &str, s: &SignalConfig, p: &mut Problems) {
    p.float(
        format!("{at}.baseline_s"),
        s.baseline_s,
        Low::Above(0.0),
        3600.0,
        "s",
    );
    if s.roi.is_empty() {
        p.error(
            format!("{at}.roi"),
            "holds no ROI; give at least one { name, x, y, radius }",
        );
    }
    p.count(format!("{at}.roi"), s.roi.len(), 0, MAX_ROIS, "ROIs");
    for (j, roi) in s.roi.iter().enumerate().take(MAX_ROIS) {
        let key = format!("{at}.roi[{j}]");
        for (name, v) in [("x", roi.x), ("y", roi.y)] {
            p.float(
                format!("{key}.{name}"),
                v as f64,
                Low::AtLeast(-8192.0),
                16384.0,
                "pixels",
            );
        }
        p.float(
            format!("{key}.radius"),
            roi.radius as f64,
            Low::Above(0.0),
            MAX_ROI_RADIUS,
            "pixels",
        );
    }
}

fn rule_ranges(at: &str, r: &RuleConfig, p: &mut Problems) {
    if let Some(n) = r.for_frames {
        p.int(format!("{at}.for_frames"), n as i128, 1, 10_000, "frames");
    }
    if let Some(s) = r.for_s {
        p.float(format!("{at}.for_s"), s, Low::AtLeast(0.0), 3600.0, "s");
    }
    p.float(
        format!("{at}.refractory_s"),
        r.refractory_s,
        Low::AtLeast(0.0),
        3600.0,
        "s",
    );
    if let Some(n) = r.max_per_minute {
        p.int(
            format!("{at}.max_per_minute"),
            n as i128,
            1,
            6000,
            "triggers",
        );
    }
    for (key, text) in [("when", Some(&r.when)), ("release", r.release.as_ref())] {
        if let Some(text) = text
            && let Err(e) = crate::rules::expr::check_text(text)
        {
            p.error(format!("{at}.{key}"), e.to_string());
        }
    }
    let t = &r.trigger;
    p.float(
        format!("{at}.trigger.pulse_width_ms"),
        t.pulse_width_ms,
        Low::Above(0.0),
        10_000.0,
        "ms",
    );
    p.int(
        format!("{at}.trigger.pulses"),
        t.pulses as i128,
        1,
        1000,
        "pulses",
    );
    if let Some(period) = t.period_ms {
        p.float(
            format!("{at}.trigger.period_ms"),
            period,
            Low::Above(0.0),
            60_000.0,
            "ms",
        );
        if period.is_finite() && t.pulse_width_ms.is_finite() && period <= t.pulse_width_ms {
            p.error(
                format!("{at}.trigger.period_ms"),
                format!(
                    "is {period} ms; must be greater than pulse_width_ms ({} ms)",
                    t.pulse_width_ms
                ),
            );
        }
    } else if t.pulses > 1 {
        p.error(
            format!("{at}.trigger.period_ms"),
            format!("is required for a train of {} pulses", t.pulses),
        );
    }
}

fn output(at: &str, o: &OutputConfig, p: &mut Problems) {
    if let Some(baud) = o.baud {
        p.int(format!("{at}.baud"), baud as i128, 300, 4_000_000, "baud");
    }
    p.count(format!("{at}.pins"), o.pins.len(), 0, 64, "pins");
    let l = &o.limits;
    let key = |k: &str| format!("{at}.limits.{k}");
    p.float(
        key("max_on_ms"),
        l.max_on_ms,
        Low::Above(0.0),
        60_000.0,
        "ms",
    );
    p.float(key("max_duty"), l.max_duty, Low::Above(0.0), 1.0, "");
    p.float(
        key("duty_window_s"),
        l.duty_window_s,
        Low::Above(0.0),
        3600.0,
        "s",
    );
    p.float(
        key("refractory_s"),
        l.refractory_s,
        Low::AtLeast(0.0),
        3600.0,
        "s",
    );
    p.int(key("watchdog_ms"), l.watchdog_ms as i128, 0, 60_000, "ms");
}
