//! `behavd check`: validate a config and print the resolved rig — in words, or as JSON with
//! `--json` — with every error located (file, line, column, key).

use std::path::Path;
use std::process::ExitCode;

use behavd::config::memory::{POOL_SHARE, PoolBudget, bytes_in_words};
use behavd::config::stim_check::channel_count;
use behavd::config::{ConfigError, ConfigWarning, LoadedConfig};
use behavd::pipeline::closed_loop::{ClosedLoopPlan, Feed};
use behavd::record::loop_records::OutputKind;
use serde_json::{Value, json};

use super::check_words as words;

/// Validates `path` and prints the rig; an invalid config prints its errors and exits 1.
pub fn check(path: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let review = LoadedConfig::review_file(path);
    let mut errors = review.errors;
    let mut warnings = review.warnings;
    let mut plan = None;
    let mut budget = None;
    if let Some(loaded) = &review.loaded {
        warnings.extend(port_warnings(loaded));
        let pools = PoolBudget::of(&loaded.config);
        if let Err(e) = pools.check() {
            errors.push(loaded.invalid("recording.ring_seconds", e.to_string()));
        }
        budget = Some(pools);
        match ClosedLoopPlan::prepare(loaded, false) {
            Ok(p) => plan = Some(p),
            Err(e) => errors.push(loaded.invalid(&e.key, e.message)),
        }
    }
    let origin = path.display().to_string();
    let loaded = review.loaded.as_ref().filter(|_| errors.is_empty());
    if as_json {
        let report = json_report(
            &origin,
            loaded,
            plan.as_ref(),
            budget.as_ref(),
            &errors,
            &warnings,
        );
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for e in &errors {
            eprintln!("error: {e}");
        }
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        if let (Some(loaded), Some(budget)) = (loaded, &budget) {
            print_rig(loaded, plan.as_ref(), budget);
        }
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A port path that does not exist now (it may be plugged in later).
fn port_warnings(loaded: &LoadedConfig) -> Vec<ConfigWarning> {
    loaded
        .config
        .output
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            o.port != "emulated" && !o.port.starts_with("usb:") && !Path::new(&o.port).exists()
        })
        .map(|(i, o)| {
            loaded.warning(
                &format!("output[{i}].port"),
                format!(
                    "output `{}`: port {} does not exist now (it may be plugged in later; `behavd devices` lists the ports there are)",
                    o.name, o.port
                ),
            )
        })
        .collect()
}

fn print_rig(loaded: &LoadedConfig, plan: Option<&ClosedLoopPlan>, budget: &PoolBudget) {
    let c = &loaded.config;
    println!("{}: OK", loaded.origin);
    let s = &c.session;
    println!(
        "session: subject {} ({}), rig {}, lab \"{}\"{}",
        s.subject.id,
        s.subject.species,
        s.rig,
        s.lab,
        s.name
            .as_ref()
            .map(|n| format!(", file {n}.nwb"))
            .unwrap_or_default()
    );
    println!("sources:");
    for (s, pool) in c.source.iter().zip(&budget.streams) {
        let (w, h) = s.size();
        let (kind, detail) = words::source_detail(s);
        println!(
            "  {:<14} {kind:<20} {w}x{h} @ {} fps, {detail}, stored {}; frame pool {} frames of {}",
            s.name(),
            s.fps(),
            words::compression(s.compression().unwrap_or(&c.recording.compression)),
            pool.slots,
            bytes_in_words(&(pool.frame_bytes as u64))
        );
    }
    let r = &c.recording;
    println!(
        "recording: into {}, flush every {} s, rings of {} s, {} compression threads",
        r.output_dir.display(),
        r.flush_interval_s,
        r.ring_seconds,
        r.compress_threads
    );
    let limit = budget
        .limit_bytes()
        .zip(budget.available_bytes)
        .map(|(l, a)| {
            format!(
                " of {} allowed ({:.0} % of {} available)",
                bytes_in_words(&l),
                POOL_SHARE * 100.0,
                bytes_in_words(&a)
            )
        })
        .unwrap_or_else(|| " (this machine's free memory is unknown)".into());
    println!(
        "memory: frame pools take {}{limit}",
        bytes_in_words(&budget.total_bytes)
    );
    if let Some(plan) = plan.filter(|p| !p.is_empty()) {
        println!("closed loop:");
        for p in &plan.producers {
            println!(
                "  {:<14} {}, reading {}: {} values ({})",
                p.name,
                p.description,
                feed(plan, &p.feed),
                p.kind.width(),
                describe_kind(&p.kind)
            );
        }
        for r in &c.rule {
            println!(
                "  rule {} when {}{} -> {}",
                r.name,
                r.when,
                words::debounce(r),
                words::rule_trigger(r)
            );
        }
    }
    if !c.output.is_empty() {
        println!("outputs:");
        for o in &c.output {
            println!("  {:<14} {}", o.name, words::output_link(o));
            println!(
                "  {:<14} limits: {}",
                "",
                words::limits(&o.limits, o.protocol)
            );
        }
    }
}

fn feed(plan: &ClosedLoopPlan, feed: &Feed) -> String {
    match feed {
        Feed::Stream(s) => format!("frames of {s}"),
        Feed::Model(j) => format!("outputs of {}", plan.producers[*j].name),
    }
}

fn describe_kind(kind: &OutputKind) -> String {
    let list = |v: &[String]| {
        if v.len() > 6 {
            format!("{}, ... {}", v[..5].join(", "), v[v.len() - 1])
        } else {
            v.join(", ")
        }
    };
    match kind {
        OutputKind::Classes(l) => format!("classes {}", list(l)),
        OutputKind::Keypoints(k) => format!("keypoints {}", list(k)),
        OutputKind::Vector(n) => format!("vector of {n}"),
        OutputKind::Signals(r) => format!("ΔF/F of {}", list(r)),
    }
}

fn error_json(e: &ConfigError) -> Value {
    let (line, column) = e.position().unzip();
    json!({
        "file": e.file(),
        "line": line,
        "column": column,
        "key": e.key(),
        "message": e.reason(),
    })
}

fn json_report(
    origin: &str,
    loaded: Option<&LoadedConfig>,
    plan: Option<&ClosedLoopPlan>,
    budget: Option<&PoolBudget>,
    errors: &[ConfigError],
    warnings: &[ConfigWarning],
) -> Value {
    let mut report = json!({
        "ok": errors.is_empty(),
        "file": origin,
        "errors": errors.iter().map(error_json).collect::<Vec<_>>(),
        "warnings": warnings,
    });
    let Some(loaded) = loaded else {
        return report;
    };
    let c = &loaded.config;
    let pools = budget.map(|b| b.streams.as_slice()).unwrap_or_default();
    let streams: Vec<Value> = c
        .source
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (kind, detail) = words::source_detail(s);
            let g = s.geometry();
            json!({
                "name": s.name(),
                "kind": kind,
                "width": g.width,
                "height": g.height,
                "fps": s.fps(),
                "pixel_format": words::pixel_format(g.format),
                "stored": words::compression(s.compression().unwrap_or(&c.recording.compression)),
                "detail": detail,
                "pool": pools.get(i),
            })
        })
        .collect();
    let models: Vec<Value> = plan
        .map(|plan| {
            plan.producers
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "description": p.description,
                        "input": feed(plan, &p.feed),
                        "values": p.kind.width(),
                        "kind": describe_kind(&p.kind),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let rules: Vec<Value> = c
        .rule
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "when": r.when,
                "release": r.release,
                "for_frames": r.for_frames,
                "for_s": r.for_s,
                "refractory_s": r.refractory_s,
                "max_per_minute": r.max_per_minute,
                "output": r.trigger.output,
                "channel": r.trigger.channel,
                "pulse_width_ms": r.trigger.pulse_width_ms,
                "pulses": r.trigger.pulses,
                "period_ms": r.trigger.period_ms,
                "description": words::rule_trigger(r),
            })
        })
        .collect();
    let outputs: Vec<Value> = c
        .output
        .iter()
        .map(|o| {
            let l = &o.limits;
            json!({
                "name": o.name,
                "port": o.port,
                "protocol": o.protocol,
                "baud": o.baud_rate(),
                "channels": channel_count(o),
                "pins": o.pins,
                "limits": {
                    "max_on_ms": l.max_on_ms,
                    "max_duty": l.max_duty,
                    "duty_window_s": l.duty_window_s,
                    "refractory_s": l.refractory_s,
                    "watchdog_ms": l.watchdog_ms,
                },
                "description": format!("{}; {}", words::output_link(o), words::limits(l, o.protocol)),
            })
        })
        .collect();
    let memory = budget.map(|b| {
        json!({
            "pool_bytes": b.total_bytes,
            "available_bytes": b.available_bytes,
            "limit_bytes": b.limit_bytes(),
        })
    });
    let object = report.as_object_mut().expect("an object");
    object.insert("streams".into(), streams.into());
    object.insert("memory".into(), memory.unwrap_or(Value::Null));
    object.insert("models".into(), models.into());
    object.insert("rules".into(), rules.into());
    object.insert("outputs".into(), outputs.into());
    report
}
