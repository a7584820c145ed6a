//! `behavd bench --realtime`: the closed loop under load with `[realtime]` off and on, side by
//! side in one process. The rig (the demo by default) gets one more rule that fires as often
//! as its output allows (it releases at once: every second behavior frame) on an emulated
//! stimulator over a real pseudo-terminal, and busy threads at normal priority (one per CPU)
//! saturate the machine on top of the rig's own inference and gzip recording. Rounds alternate off, on, off, on, … so
//! drift on a shared machine falls on both.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::config::LoadedConfig;
use crate::pipeline::summary::Percentiles;
use crate::pipeline::{RunOptions, RunningSession};

/// The rule and output the comparison adds to the rig.
const BENCH_RIG: &str = r#"

[[rule]]
name = "rt_bench_pulse"
when = "behavior.explore >= 0.0"
release = "behavior.explore >= 0.0"
refractory_s = 0.06
[rule.trigger]
output = "rt_bench"
channel = 0
pulse_width_ms = 1.0

[[output]]
name = "rt_bench"
port = "emulated"
[output.limits]
max_on_ms = 10.0
max_duty = 0.5
duty_window_s = 1.0
refractory_s = 0.05
watchdog_ms = 1000
"#;

/// One session of the comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RealtimeRun {
    /// `[realtime] enabled` in this run.
    pub realtime: bool,
    /// Round (0-based; each round is one run off and one on).
    pub round: usize,
    /// Seconds recorded.
    pub seconds: f64,
    /// Triggers decided (every rule).
    pub triggers: u64,
    /// Frame capture → rule decision, every trigger.
    pub capture_to_decision: Percentiles,
    /// Rule decision → command written to the serial port (the bench output).
    pub decision_to_write: Percentiles,
    /// Rule decision → the emulated device's acknowledged rising edge.
    pub decision_to_edge: Percentiles,
    /// Frames dropped, every stream and cause.
    pub frames_dropped: u64,
    /// Frames dropped by cause, every stream.
    pub dropped_by_cause: std::collections::BTreeMap<&'static str, u64>,
    /// Real-time settings refused so far in the process (0: everything applied).
    pub refusals: u64,
}

/// Runs `rounds` × (off, on) sessions of `seconds` each on `base` plus the bench rule, with
/// `hogs` busy threads, recording into `dir` (files removed after each run).
pub fn compare(
    base: &LoadedConfig,
    seconds: f64,
    rounds: usize,
    hogs: usize,
    dir: &Path,
) -> Result<Vec<RealtimeRun>> {
    if !base.config.model.iter().any(|m| m.name == "behavior") {
        anyhow::bail!(
            "the real-time comparison needs a model named `behavior` with an `explore` class \
             (the demo rig's); run it without --config"
        );
    }
    let text = format!("{}{BENCH_RIG}", base.text);
    let mut loaded = LoadedConfig::from_str(&text, &format!("{} + the bench rule", base.origin))
        .context("the rig with the bench rule")?;
    loaded.base_dir = base.base_dir.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let hog_threads: Vec<_> = (0..hogs)
        .map(|i| {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("bench-hog-{i}"))
                .spawn(move || hog(&stop))
        })
        .collect::<std::io::Result<_>>()?;
    let mut runs = Vec::new();
    let mut outcome = Ok(());
    'rounds: for round in 0..rounds {
        for realtime in [false, true] {
            loaded.config.realtime.enabled = realtime;
            match run_once(&loaded, seconds, dir) {
                Ok(mut run) => {
                    run.round = round;
                    run.realtime = realtime;
                    tracing::info!(?run, "real-time comparison run");
                    runs.push(run);
                }
                Err(e) => {
                    outcome = Err(e);
                    break 'rounds;
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in hog_threads {
        let _ = h.join();
    }
    crate::realtime::install(&crate::config::realtime::RealtimeConfig::default());
    outcome.map(|()| runs)
}

/// Keeps a CPU busy until `stop` (integer work the optimizer cannot drop).
fn hog(stop: &AtomicBool) {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        std::hint::black_box(x);
    }
}

fn run_once(loaded: &LoadedConfig, seconds: f64, dir: &Path) -> Result<RealtimeRun> {
    let options = RunOptions {
        output_dir: Some(dir.to_path_buf()),
        ..RunOptions::default()
    };
    let session = RunningSession::start(loaded, &options)?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < deadline && !session.recorder_failed() {
        std::thread::park_timeout(Duration::from_millis(100));
    }
    let summary = session.stop("real-time benchmark run finished")?;
    std::fs::remove_file(&summary.path).ok();
    let l = &summary.closed_loop;
    let bench = l
        .outputs
        .iter()
        .find(|o| o.name == "rt_bench")
        .context("the bench output's summary")?;
    Ok(RealtimeRun {
        realtime: false,
        round: 0,
        seconds: summary.duration_s,
        triggers: l.triggers_sent,
        capture_to_decision: l.capture_to_decision,
        decision_to_write: bench.decision_to_write,
        decision_to_edge: bench.decision_to_edge,
        frames_dropped: summary
            .streams
            .iter()
            .map(|s| s.stats.dropped_total())
            .sum(),
        dropped_by_cause: crate::stats::DropCause::ALL
            .into_iter()
            .map(|c| {
                let n = summary
                    .streams
                    .iter()
                    .map(|s| s.stats.dropped[c as usize])
                    .sum();
                (c.label(), n)
            })
            .collect(),
        refusals: crate::realtime::refusals(),
    })
}
