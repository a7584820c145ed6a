//! `behavd check`: validate a config and print the resolved rig.

use std::path::Path;
use std::process::ExitCode;

use behavd::config::{Compression, LoadedConfig, SourceConfig};

/// Validates `path` and prints the rig; invalid configs print the error and exit 1.
pub fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let loaded = match LoadedConfig::from_file(path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
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
    Ok(ExitCode::SUCCESS)
}

fn describe(c: &Compression) -> String {
    match c {
        Compression::None => "uncompressed".into(),
        Compression::Gzip { level } => format!("gzip level {level}"),
    }
}
