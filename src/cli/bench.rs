//! `behavd bench`: measure the data plane on this machine.

use std::process::ExitCode;

use behavd::bench::{self, Latency};
use behavd::config::Compression;
use behavd::frame::PixelFormat;

/// Runs every measurement and prints a table (or JSON).
pub fn bench(quick: bool, json: bool) -> anyhow::Result<ExitCode> {
    let n = if quick { 60 } else { 300 };
    let mut results = serde_json::Map::new();
    let mut latency = |name: &str, l: Latency| {
        if !json {
            println!(
                "{name:<42} p50 {:>9.2} µs   p99 {:>9.2} µs   max {:>9.2} µs   ({} samples)",
                l.p50_us, l.p99_us, l.max_us, l.samples
            );
        }
        results.insert(name.into(), serde_json::to_value(l).expect("serialisable"));
    };
    latency(
        "render synthetic Miniscope 608x608",
        bench::render_cost(&mut bench::miniscope_source(), n),
    );
    latency(
        "render synthetic behavior 640x480 gray",
        bench::render_cost(&mut bench::behavior_source(640, 480, PixelFormat::Gray8), n),
    );
    latency(
        "render synthetic behavior 1280x720 rgb",
        bench::render_cost(&mut bench::behavior_source(1280, 720, PixelFormat::Rgb8), n),
    );
    latency(
        "ring handoff (one way)",
        bench::ring_latency(if quick { 10_000 } else { 100_000 }),
    );
    let dir = tempfile_dir()?;
    for (label, compression, threads) in [
        ("none", Compression::None, 0),
        (
            "gzip 1, on the writer thread",
            Compression::Gzip { level: 1 },
            0,
        ),
        ("gzip 1, 1 worker", Compression::Gzip { level: 1 }, 1),
        ("gzip 1, 2 workers", Compression::Gzip { level: 1 }, 2),
    ] {
        let run = bench::recorder_throughput(
            &mut bench::miniscope_source(),
            n,
            compression,
            threads,
            &dir,
        )?;
        let name = format!("recorder 608x608, {label}");
        if !json {
            println!(
                "{name:<42} {:>8.1} MB/s   ratio {:.2}",
                run.mb_per_s, run.compression_ratio
            );
        }
        results.insert(name, serde_json::to_value(run)?);
    }
    std::fs::remove_dir(&dir).ok();
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("behavd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
