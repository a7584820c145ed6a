//! Rules against the outputs they drive, before anything runs: every `trigger.output` is an
//! `[[output]]`, its channel exists, and its pulse width, train and rate fit the output's
//! `max_on_ms`, duty cap and refractory period — so a trigger is never dropped or blocked at
//! run time for a reason the file already shows.

use super::output::{OutputConfig, OutputProtocol};
use super::validate::Problems;
use super::{RigConfig, RuleConfig};

/// Channels of an output without `pins` (device channels 0 and 1).
pub const DEFAULT_CHANNELS: usize = 2;

/// The channels an output has: one per `pins` entry, else [`DEFAULT_CHANNELS`].
pub fn channel_count(o: &OutputConfig) -> usize {
    if o.pins.is_empty() {
        DEFAULT_CHANNELS
    } else {
        o.pins.len()
    }
}

/// On-time of one train, ms.
fn train_on_ms(r: &RuleConfig) -> f64 {
    r.trigger.pulse_width_ms * r.trigger.pulses.max(1) as f64
}

/// Most trains of rule `r` whose start can fall inside one duty window of `o` (`None`: no
/// bound — the rule has neither a refractory period nor a rate limit, nor has the output).
fn trains_per_window(r: &RuleConfig, o: &OutputConfig) -> Option<f64> {
    let window = o.limits.duty_window_s;
    let spacing = r.refractory_s.max(o.limits.refractory_s);
    // (A hair below the quotient, so 1 / 0.1 counts 10 windows' worth, not 11.)
    let by_spacing = (spacing > 0.0).then(|| (window / spacing - 1e-9).ceil().max(1.0));
    let by_rate = r
        .max_per_minute
        .map(|m| m as f64 * (window / 60.0).ceil().max(1.0));
    match (by_spacing, by_rate) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Checks every rule's trigger against its output.
pub(super) fn check(config: &RigConfig, p: &mut Problems) {
    for (i, o) in config.output.iter().enumerate() {
        output_pins(i, o, p);
    }
    for (i, r) in config.rule.iter().enumerate() {
        let at = format!("rule[{i}].trigger");
        let t = &r.trigger;
        let Some(o) = config.output.iter().find(|o| o.name == t.output) else {
            let names: Vec<&str> = config.output.iter().map(|o| o.name.as_str()).collect();
            let have = if names.is_empty() {
                "the config has no [[output]]; add one (port = \"emulated\" runs behavd's \
                 emulated stimulator when no device is attached)"
                    .to_string()
            } else {
                let near = crate::rules::expr::nearest(&t.output, names.iter().copied())
                    .map(|n| format!("did you mean `{n}`? "))
                    .unwrap_or_default();
                format!("{near}outputs: {}", names.join(", "))
            };
            p.error(
                format!("{at}.output"),
                format!(
                    "`{}` is not the name of an [[output]], so its triggers would go nowhere; {have}",
                    t.output
                ),
            );
            continue;
        };
        let channels = channel_count(o);
        if t.channel as usize >= channels {
            let how = if o.pins.is_empty() {
                "without `pins` it has channels 0 and 1".to_string()
            } else {
                format!("its pins = {:?} give channels 0–{}", o.pins, channels - 1)
            };
            p.error(
                format!("{at}.channel"),
                format!(
                    "channel {} does not exist on output `{}`: {how}",
                    t.channel, o.name
                ),
            );
        }
        fits_limits(i, r, o, p);
    }
    shared_channels(config, p);
}

fn output_pins(i: usize, o: &OutputConfig, p: &mut Problems) {
    let at = format!("output[{i}]");
    if o.protocol == OutputProtocol::Firmata {
        if o.pins.is_empty() {
            p.error(
                format!("{at}.pins"),
                "a Firmata output needs the Arduino pin of each channel, e.g. pins = [9, 10]",
            );
        } else if let Some(pin) = o.pins.iter().find(|&&pin| !(2..=127).contains(&pin)) {
            p.error(
                format!("{at}.pins"),
                format!(
                    "pin {pin} cannot be a Firmata output (0 and 1 are the board's serial port; Firmata pins go up to 127)"
                ),
            );
        }
    }
    if let Some((a, pin)) = o
        .pins
        .iter()
        .enumerate()
        .find(|(a, pin)| o.pins[..*a].contains(pin))
    {
        p.error(
            format!("{at}.pins"),
            format!("pin {pin} is given twice (channel {a} and an earlier one)"),
        );
    }
}

/// Pulse width against `max_on_ms`, one train and the rule's worst-case rate against the duty
/// cap, the rule's spacing against the output's refractory period.
fn fits_limits(i: usize, r: &RuleConfig, o: &OutputConfig, p: &mut Problems) {
    let at = format!("rule[{i}]");
    let (t, l) = (&r.trigger, &o.limits);
    let numbers_ok = [
        t.pulse_width_ms,
        l.max_on_ms,
        l.max_duty,
        l.duty_window_s,
        l.refractory_s,
        r.refractory_s,
    ]
    .iter()
    .all(|v| v.is_finite() && *v >= 0.0);
    if !numbers_ok {
        return; // the ranges already name the bad number
    }
    if t.pulse_width_ms > l.max_on_ms {
        p.error(
            format!("{at}.trigger.pulse_width_ms"),
            format!(
                "a {} ms pulse is longer than output `{}` allows (limits.max_on_ms = {} ms); every trigger would be refused",
                t.pulse_width_ms, o.name, l.max_on_ms
            ),
        );
        return;
    }
    let budget_ms = l.max_duty * l.duty_window_s * 1000.0;
    let on_ms = train_on_ms(r);
    if on_ms > budget_ms {
        p.error(
            format!("{at}.trigger.pulses"),
            format!(
                "one train is on for {on_ms} ms ({} × {} ms), more than output `{}` allows in {} s (limits.max_duty {} → {budget_ms} ms); every trigger would be refused",
                t.pulses, t.pulse_width_ms, o.name, l.duty_window_s, l.max_duty
            ),
        );
        return;
    }
    if r.refractory_s < l.refractory_s {
        p.error(
            format!("{at}.refractory_s"),
            format!(
                "is {} s, shorter than output `{}`'s limits.refractory_s ({} s): triggers closer than that would be refused at run time; set refractory_s = {} or more",
                r.refractory_s, o.name, l.refractory_s, l.refractory_s
            ),
        );
        return;
    }
    let trains = trains_per_window(r, o);
    let fits = trains.is_some_and(|n| n * on_ms <= budget_ms);
    if !fits {
        // Fewest trains per window the duty cap allows, and the spacing that keeps to it.
        let allowed = (budget_ms / on_ms).floor().max(1.0);
        let spacing = l.duty_window_s / allowed;
        let now = match trains {
            Some(n) => format!("up to {n} trains ({} ms on)", n * on_ms),
            None => "any number of trains (no refractory_s, no max_per_minute)".into(),
        };
        p.error(
            format!("{at}.refractory_s"),
            format!(
                "this rule can start {now} within output `{}`'s {} s duty window, over its max_duty budget of {budget_ms} ms; triggers would be refused at run time; set refractory_s = {} or more",
                o.name,
                l.duty_window_s,
                round_up(spacing)
            ),
        );
    }
}

/// `x` rounded up to 3 decimals, for a suggestion that is sure to fit.
fn round_up(x: f64) -> f64 {
    (x * 1000.0).ceil() / 1000.0
}

/// Several rules on one channel of one output share its refractory period and duty budget:
/// they may refuse each other's triggers unless their conditions exclude each other.
fn shared_channels(config: &RigConfig, p: &mut Problems) {
    for (i, r) in config.rule.iter().enumerate() {
        if let Some(j) = config.rule[..i].iter().position(|q| {
            q.trigger.output == r.trigger.output && q.trigger.channel == r.trigger.channel
        }) {
            p.warn(
                format!("rule[{i}].trigger.channel"),
                format!(
                    "rule `{}` drives channel {} of output `{}` like rule `{}`: their triggers share its refractory period and duty budget and may refuse each other",
                    r.name, r.trigger.channel, r.trigger.output, config.rule[j].name
                ),
            );
        }
    }
}
