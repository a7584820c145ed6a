//! `behavd check`: validate a config and print the resolved rig.

use std::path::Path;
use std::process::ExitCode;

use behavd::config::{Compression, LoadedConfig, SourceConfig};
use behavd::pipeline::closed_loop::{ClosedLoopPlan, Feed};
use behavd::record::loop_records::OutputKind;

/// Validates `path` and prints the rig; invalid configs print the error and exit 1.
pub fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let loaded = match LoadedConfig::from_file(path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let plan = match ClosedLoopPlan::prepare(&loaded, false) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {}", loaded.invalid(&e.key, e.message));
            return Ok(ExitCode::FAILURE);
        }
    };
    let c = &loaded.config;
    println!("{}: OK", loaded.origin);
    println!(
        "session: subject {} ({}), rig {}, lab {:?}",
        c.session.subject.id, c.session.subject.species, c.session.rig, c.session.lab
    );
    println!("sources:");
    for s in &c.source {
        let (w, h) = s.size();
        let compression = s.compression().unwrap_or(&c.recording.compression);
        let (kind, detail) = match s {
            SourceConfig::SyntheticMiniscope(m) => (
                "synthetic-miniscope",
                format!(
                    "{} neurons, seed {}, pacing {:?}",
                    m.neurons, m.seed, m.pacing
                ),
            ),
            SourceConfig::SyntheticBehavior(b) => (
                "synthetic-behavior",
                format!(
                    "{:?}, seed {}, pacing {:?}",
                    b.pixel_format, b.seed, b.pacing
                ),
            ),
            SourceConfig::V4l2(v) => (
                "v4l2",
                format!(
                    "device {}, {:?} → {:?}, {} buffers{}",
                    v.device,
                    v.format,
                    v.pixel_format,
                    v.buffers,
                    if v.controls.is_empty() {
                        String::new()
                    } else {
                        format!(", controls {:?}", v.controls)
                    }
                ),
            ),
            SourceConfig::Miniscope(m) => (
                "miniscope",
                format!(
                    "DAQ {}, {}, IMU {}, trigger {:?}, controls {:?}",
                    m.device, m.device_type, m.imu, m.trigger, m.controls
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
        };
        println!(
            "  {:<14} {kind:<20} {w}x{h} @ {} fps, {detail}, stored {}",
            s.name(),
            s.fps(),
            describe(compression)
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
    if !plan.is_empty() {
        println!("closed loop:");
        for p in &plan.producers {
            let feed = match &p.feed {
                Feed::Stream(s) => format!("frames of {s}"),
                Feed::Model(j) => format!("outputs of {}", plan.producers[*j].name),
            };
            println!(
                "  {:<14} {} on {feed}: {} values ({})",
                p.name,
                p.description,
                p.kind.width(),
                describe_kind(&p.kind)
            );
        }
        for r in &c.rule {
            println!(
                "  rule {:<9} when {} -> {} channel {}",
                r.name, r.when, r.trigger.output, r.trigger.channel
            );
        }
    }
    Ok(ExitCode::SUCCESS)
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

fn describe(c: &Compression) -> String {
    match c {
        Compression::None => "uncompressed".into(),
        Compression::Gzip { level } => format!("gzip level {level}"),
    }
}
