//! `behavd bench`: measure the data plane on this machine.

use std::process::ExitCode;

use behavd::bench::{self, Latency};
use behavd::config::output::OutputProtocol;
use behavd::config::{Compression, LoadedConfig};
use behavd::frame::PixelFormat;
use behavd::pipeline::{RunOptions, RunningSession};

/// Runs every measurement and prints a table (or JSON).
pub fn bench(
    quick: bool,
    json: bool,
    config: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
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
    let dir = bench::scratch_dir("run")?;
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
    for protocol in [OutputProtocol::Behavd, OutputProtocol::Firmata] {
        let l = bench::stim::link_latency(protocol, if quick { 50 } else { 300 })?;
        if !json {
            let p = |l: &Latency| {
                format!(
                    "p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
                    l.p50_us, l.p99_us, l.max_us
                )
            };
            println!(
                "stimulator link ({}, emulated device over a pty): decision → serial write {}; decision → device edge {}; clock-sync residual {}",
                l.protocol,
                p(&l.decision_to_write),
                l.decision_to_edge
                    .as_ref()
                    .map_or("n/a (host-timed)".into(), p),
                l.sync_residual_us
                    .map_or("n/a".into(), |r| format!("{r:.1} µs"))
            );
        }
        results.insert(
            format!("stimulator link {}", l.protocol),
            serde_json::to_value(&l)?,
        );
    }
    let loaded = match config {
        Some(path) => LoadedConfig::from_file(path)?,
        None => LoadedConfig::demo(),
    };
    for m in bench::inference::model_overhead(&loaded, if quick { 100 } else { 500 })? {
        if !json {
            println!(
                "model {:<12} ({}) preprocess p50 {:>7.1} µs p99 {:>7.1} µs | behavd run p50 {:>8.1} µs p99 {:>8.1} µs | session.run p50 {:>8.1} µs p99 {:>8.1} µs | ratio {:.3}",
                m.name,
                m.provider,
                m.preprocess.p50_us,
                m.preprocess.p99_us,
                m.behavd_run.p50_us,
                m.behavd_run.p99_us,
                m.session_run.p50_us,
                m.session_run.p99_us,
                m.overhead_ratio_p50
            );
        }
        results.insert(format!("model {}", m.name), serde_json::to_value(&m)?);
    }
    if !loaded.config.rule.is_empty() {
        let seconds = if quick { 10.0 } else { 60.0 };
        let summary = closed_loop_run(&loaded, seconds, &dir)?;
        let l = &summary.closed_loop;
        if !json {
            println!(
                "closed loop, {seconds} s at full rate: {} triggers; capture→decision {}; daemon overhead {}",
                l.triggers_sent, l.capture_to_decision, l.overhead
            );
            for p in &l.producers {
                println!(
                    "  {:<12} {:>6.2}/s, skipped {}, capture→output {}",
                    p.name, p.rate_hz, p.skipped, p.capture_to_output
                );
            }
        }
        results.insert("closed loop".into(), serde_json::to_value(l)?);
        std::fs::remove_file(&summary.path).ok();
    }
    std::fs::remove_dir(&dir).ok();
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `behavd bench --realtime`: the closed loop under load with `[realtime]` off and on.
pub fn realtime(
    quick: bool,
    json: bool,
    config: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let loaded = match config {
        Some(path) => LoadedConfig::from_file(path)?,
        None => LoadedConfig::demo(),
    };
    let (seconds, rounds) = if quick { (10.0, 1) } else { (30.0, 2) };
    let hogs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let dir = bench::scratch_dir("realtime")?;
    if !json {
        println!(
            "closed loop under load ({hogs} busy threads + the rig's inference and recording), \
             [realtime] off and on, {rounds} round(s) of {seconds} s each"
        );
    }
    let runs = bench::realtime::compare(&loaded, seconds, rounds, hogs, &dir)?;
    std::fs::remove_dir(&dir).ok();
    if json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &runs {
        println!(
            "[realtime] {:<3} round {}: {} triggers, {} frames dropped | capture → decision {} | \
             decision → serial write {} | decision → device edge {}{}",
            if r.realtime { "on" } else { "off" },
            r.round + 1,
            r.triggers,
            r.frames_dropped,
            r.capture_to_decision,
            r.decision_to_write,
            r.decision_to_edge,
            if r.realtime && r.refusals > 0 {
                " (real-time settings were refused: normal scheduling)"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the rig for `seconds` (recording into `dir`) and returns its summary.
fn closed_loop_run(
    loaded: &LoadedConfig,
    seconds: f64,
    dir: &std::path::Path,
) -> anyhow::Result<behavd::pipeline::SessionSummary> {
    let options = RunOptions {
        output_dir: Some(dir.to_path_buf()),
        ..RunOptions::default()
    };
    let session = RunningSession::start(loaded, &options)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    while std::time::Instant::now() < deadline && !session.recorder_failed() {
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
    session.stop("benchmark finished")
}
