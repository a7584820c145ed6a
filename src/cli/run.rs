//! `behavd run`: record a session until the duration ends or a signal arrives.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use behavd::config::LoadedConfig;
use behavd::pipeline::{RunOptions, RunningSession, SessionSummary, SetupInterrupted};
use behavd::stats::DropCause;

use super::progress::Progress;

/// Runs a session from `config` (or the demo rig) and prints its summary.
pub fn run(
    config: Option<&Path>,
    duration: Option<f64>,
    output: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let loaded = match config {
        Some(path) => LoadedConfig::from_file(path)?,
        None => LoadedConfig::demo(),
    };
    if let Some(d) = duration {
        anyhow::ensure!(
            d > 0.0 && d.is_finite(),
            "--duration must be a positive number of seconds, not {d}"
        );
    }
    let stop = super::signals::install()?;
    let options = RunOptions {
        output_dir: output,
        cancel: Some(Arc::clone(&stop)),
    };
    let session = match RunningSession::start(&loaded, &options) {
        Ok(session) => session,
        Err(e) if e.downcast_ref::<SetupInterrupted>().is_some() => {
            eprintln!("behavd: {e}");
            return Ok(ExitCode::from(SETUP_INTERRUPTED_STATUS));
        }
        Err(e) => return Err(e),
    };
    let interactive = std::io::stderr().is_terminal() && !json;
    let mut progress = Progress::new(loaded.config.source.len());
    let started = Instant::now();
    let reason = loop {
        if stop.load(Ordering::Relaxed) {
            break "stopped by signal".to_string();
        }
        if let Some(d) = duration
            && started.elapsed().as_secs_f64() >= d
        {
            break format!("duration of {d} s reached");
        }
        // A failed recorder, every source stopped, or the disk below `stop_free_mb`.
        if let Some(why) = session.end_due() {
            break why;
        }
        if interactive {
            progress.draw(&session);
        }
        let tick = match duration {
            Some(d) => {
                Duration::from_secs_f64((d - started.elapsed().as_secs_f64()).clamp(0.0, 0.25))
            }
            None => Duration::from_millis(250),
        };
        std::thread::park_timeout(tick);
    };
    if interactive {
        progress.draw(&session);
        progress.finish();
    }
    tracing::info!(%reason, "stopping session");
    let summary = session
        .stop(&reason)
        .context("session did not close cleanly")?;
    // The file is finalized: from here on a closed stdout (`behavd run | true`) ends the
    // process quietly, as it does for the other subcommands (see `super::quiet_broken_pipe`).
    super::quiet_broken_pipe();
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    if let Some(e) = &summary.recording_error {
        eprintln!("error: recording failed: {e}");
    }
    let failed =
        summary.streams.iter().any(|s| s.failure.is_some()) || summary.recording_error.is_some();
    Ok(if failed {
        ExitCode::FAILURE
    } else if summary.closed_loop.degraded.is_some() {
        ExitCode::from(DEGRADED_EXIT)
    } else {
        ExitCode::SUCCESS
    })
}

/// Exit status when a signal interrupted the set-up (nothing recorded, no file written).
const SETUP_INTERRUPTED_STATUS: u8 = 130;

/// Exit code of a run that completed degraded: a stimulator output was not connected at the
/// start (an optional one) or was lost during the session (docs/config.md, `[[output]]`).
pub const DEGRADED_EXIT: u8 = 3;

fn print_summary(s: &SessionSummary) {
    println!(
        "session file: {} ({:.1} MB)",
        s.path.display(),
        s.file_bytes as f64 / 1e6
    );
    println!("duration:     {:.2} s", s.duration_s);
    if let Some(e) = &s.recording_error {
        println!("recording failed: {e}");
    }
    println!(
        "{:<16} {:>9} {:>9} {:>8}  {:>8}  dropped by cause",
        "stream", "captured", "recorded", "dropped", "fps"
    );
    for stream in &s.streams {
        let causes = DropCause::ALL
            .iter()
            .map(|c| format!("{} {}", c.label(), stream.stats.dropped[*c as usize]))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "{:<16} {:>9} {:>9} {:>8}  {:>8.2}  {causes}",
            stream.name,
            stream.stats.captured,
            stream.frames_in_file,
            stream.stats.dropped_total(),
            stream.achieved_fps
        );
        if let Some(failure) = &stream.failure {
            println!("{:<16} capture failed: {failure}", "");
        }
    }
    if s.gap_rows > 0 {
        println!("{} gap(s) recorded in intervals/FrameGaps", s.gap_rows);
    }
    let l = &s.closed_loop;
    if !l.producers.is_empty() {
        println!(
            "{:<16} {:>9} {:>8} {:>8}  {:>24}  {:>24}",
            "model/signal",
            "frames",
            "per s",
            "skipped",
            "inference p50/p99/max ms",
            "capture→output p50/p99 ms"
        );
        for p in &l.producers {
            println!(
                "{:<16} {:>9} {:>8.2} {:>8}  {:>8.2}/{:>6.2}/{:>8.2}  {:>15.2}/{:>8.2}",
                p.name,
                p.processed,
                p.rate_hz,
                p.skipped,
                p.inference.p50_ms,
                p.inference.p99_ms,
                p.inference.max_ms,
                p.capture_to_output.p50_ms,
                p.capture_to_output.p99_ms
            );
        }
    }
    for r in &l.rules {
        let score = match (r.precision, r.recall) {
            (Some(p), Some(rc)) => format!(
                "precision {p:.3} ({} of {}), recall {rc:.3} of {} bouts",
                r.true_positives,
                r.true_positives + r.false_positives,
                r.bouts
            ),
            (Some(p), None) => format!("precision {p:.3}"),
            (None, Some(rc)) => format!("recall {rc:.3} of {} bouts", r.bouts),
            (None, None) => "no ground truth to score against".into(),
        };
        println!(
            "rule {:<11} {:>4} triggers ({} refractory, {} rate-limited); {score}",
            r.name, r.triggers, r.suppressed_refractory, r.suppressed_rate
        );
    }
    for o in &l.outputs {
        println!("{o}");
    }
    if let Some(why) = &l.degraded {
        println!("DEGRADED RUN: {why} (exit code {DEGRADED_EXIT})");
    }
    if !l.rules.is_empty() {
        println!(
            "triggers: {} sent, {} in file; frame capture → decision {}; daemon overhead {}",
            l.triggers_sent, l.triggers_in_file, l.capture_to_decision, l.overhead
        );
    }
}
