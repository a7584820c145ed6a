//! The engine behind `behavd serve`: live (devices open, frames through signals and rules,
//! nothing written, nothing dropped), then a session begun without reopening anything, holding
//! only what was captured from its start, with the datasets `behavd run` writes and a summary
//! that matches the file; every trigger of the session in the event stream; the disk guard's
//! refusal; every thread's heartbeat fresh.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use behavd::config::LoadedConfig;
use behavd::pipeline::engine::{BeginError, Engine, EngineEvent, EngineOptions, SessionRequest};
use common::*;

/// A synthetic Miniscope, an ROI signal and a rule that fires every 0.2 s (released at once,
/// active again after its refractory period) to the emulated
/// stimulator (behavd protocol on a pseudo-terminal). `EXTRA` goes into `[recording]`.
const CONFIG: &str = r#"
[session]
description = "engine test"

[session.subject]
id = "cfg-subject"

[session.imaging]
location = "CA1"

[[source]]
kind = "synthetic-miniscope"
name = "Miniscope"
width = 48
height = 48
neurons = 8
fps = 30.0
FAULTS

[recording]
flush_interval_s = 0.5
EXTRA

[daemon]
thread_deadline_s = 0.5

[[signal]]
name = "sig"
source = "Miniscope"
roi = [{ name = "c0", x = 24.0, y = 24.0, radius = 4.0 }]

[[rule]]
name = "always"
when = "sig.c0 < 1000000.0"
release = "sig.c0 > -1000000.0"
refractory_s = 0.2
[rule.trigger]
output = "stim"
channel = 0
pulse_width_ms = 2.0

[[output]]
name = "stim"
port = "emulated"
"#;

fn config(extra: &str) -> LoadedConfig {
    config_with_faults(extra, "")
}

/// With `faults` (a `faults = {...}` line) on the Miniscope.
fn config_with_faults(extra: &str, faults: &str) -> LoadedConfig {
    LoadedConfig::from_str(
        &CONFIG.replace("EXTRA", extra).replace("FAULTS", faults),
        "engine-test.toml",
    )
    .expect("the test config is valid")
}

/// One engine at a time in this process: the emulated stimulator's link is named after the
/// process and the output.
static ONE_ENGINE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_ENGINE.lock().unwrap_or_else(|e| e.into_inner())
}

fn open(loaded: &LoadedConfig, dir: &Path) -> Engine {
    Engine::open(
        loaded,
        &EngineOptions {
            output_dir: Some(dir.to_path_buf()),
            cancel: None,
        },
    )
    .expect("the engine opens")
}

/// Waits (polling, with a deadline) until `done` holds.
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

fn captured(engine: &Engine) -> u64 {
    engine.snapshot().streams[0].live.captured
}

fn nwb_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nwb"))
        .collect()
}

/// Every dataset path of a file, sorted (h5py).
fn dataset_paths(file: &Path) -> Vec<String> {
    python_json(
        r#"
import h5py, json, sys
f = h5py.File(sys.argv[1], "r")
out = []
f.visititems(lambda name, obj: out.append(name) if isinstance(obj, h5py.Dataset) else None)
print(json.dumps(sorted(out)))
"#,
        file,
    )
}

#[test]
fn live_writes_nothing_drops_nothing_and_every_heartbeat_is_fresh() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let loaded = config("");
    let engine = open(&loaded, dir.path());
    // 2 s of frames: four times the threads' 0.5 s deadline.
    wait_until("60 live frames", Duration::from_secs(20), || {
        captured(&engine) >= 60
    });
    let snap = engine.snapshot();
    assert!(!snap.recording);
    let stream = &snap.streams[0];
    assert_eq!(stream.live.dropped_total(), 0, "{stream:?}");
    assert_eq!(stream.live.recorded, 0, "nothing is recorded while live");
    assert!(stream.ring_fill < stream.ring_capacity / 2, "{stream:?}");
    assert!(snap.producers[0].processed > 0, "{:?}", snap.producers);
    // Disarmed in live: the rule fires, nothing reaches the stimulator.
    assert!(!snap.rules[0].armed);
    assert!(snap.rules[0].fired > 0, "{:?}", snap.rules);
    assert_eq!(snap.outputs[0].sent, 0, "{:?}", snap.outputs);
    assert_eq!(snap.outputs[0].link_up, Some(true));
    let names: Vec<String> = engine
        .heartbeats()
        .iter()
        .map(|h| h.name().to_string())
        .collect();
    for name in [
        "capture-Miniscope",
        "recorder",
        "signal-sig",
        "rules",
        "stim-stim",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    let now = behavd::clock::monotonic_ns();
    assert!(
        behavd::heartbeat::first_overdue(&engine.heartbeats(), now).is_none(),
        "{:?}",
        snap.threads
    );
    assert!(
        snap.threads.iter().all(|t| !t.overdue),
        "{:?}",
        snap.threads
    );
    let mut events = Vec::new();
    engine.drain_events(&mut events);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, EngineEvent::Trigger { .. })),
        "a disarmed rule sends no trigger: {events:?}"
    );
    assert!(nwb_files(dir.path()).is_empty());
    engine.close().unwrap();
    assert!(nwb_files(dir.path()).is_empty(), "closing writes nothing");
}

#[test]
fn a_session_begun_after_live_seconds_holds_only_its_own_frames_and_every_trigger() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // Two device frames lost while live, three in the session (begun near frame 47; it lasts
    // 2 s, past frame 100).
    let loaded = config_with_faults("", "faults = { drop_frames = [10, 11, 80, 81, 82] }");
    let mut engine = open(&loaded, dir.path());
    wait_until("45 live frames", Duration::from_secs(20), || {
        captured(&engine) >= 45
    });
    let mut events = Vec::new();
    engine.drain_events(&mut events);
    let live_before = captured(&engine);
    let started = engine
        .begin(SessionRequest {
            subject: Some("m042".into()),
            notes: Some("begun by the engine test".into()),
            ..SessionRequest::default()
        })
        .expect("the session begins");
    assert!(started.path.exists());
    assert!(matches!(
        engine.begin(SessionRequest::default()),
        Err(BeginError::AlreadyRecording)
    ));
    assert!(engine.snapshot().rules[0].armed, "armed for the session");
    let mut in_session_events = 0;
    wait_until("2 s of session", Duration::from_secs(20), || {
        engine.drain_events(&mut events);
        engine
            .snapshot()
            .session
            .is_some_and(|s| s.elapsed_s >= 2.0)
    });
    let summary = engine
        .end_draining("stopped by the engine test", &mut events)
        .expect("the session ends");
    let mut dropped_events = Vec::new();
    for e in &events {
        match e {
            EngineEvent::Trigger { in_session, .. } => in_session_events += *in_session as usize,
            EngineEvent::Drop {
                stream,
                cause,
                frames,
                ..
            } => {
                dropped_events.push((stream.as_str(), cause.as_str(), *frames));
            }
            _ => {}
        }
    }
    assert_eq!(
        dropped_events,
        [("Miniscope", "device", 2), ("Miniscope", "device", 3)],
        "the live and the session drops, as events"
    );
    let s = &summary.streams[0];
    // Every frame the session captured is in the file or counted as dropped, and none of the
    // live seconds before it is: the session lost the three device frames of its own time.
    assert_eq!(s.stats.dropped_total(), 3, "{s:?}");
    assert_eq!(s.stats.dropped[0], 3, "device drops: {s:?}");
    assert_eq!(s.frames_in_file, s.stats.captured, "{s:?}");
    assert_eq!(s.stats.recorded, s.frames_in_file);
    let file = &summary.path;
    let timestamps = read_dataset_f64(file, "acquisition/Miniscope/timestamps");
    assert_eq!(timestamps.len() as u64, s.frames_in_file);
    assert!(
        (0.0..0.2).contains(&timestamps[0]),
        "the first frame is the session's: {}",
        timestamps[0]
    );
    assert!(timestamps.windows(2).all(|w| w[1] > w[0]));
    let counters = read_dataset_u64(file, "acquisition/MiniscopeDAQFrameNumber/data");
    // The synthetic device counts from 0 when capture starts: the session's first frame
    // comes after the live ones.
    assert!(
        counters[0] + 1 >= live_before,
        "the device counter goes on from the {live_before} live frames: {}",
        counters[0]
    );
    let jumps: Vec<u64> = counters
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&d| d != 1)
        .collect();
    assert_eq!(jumps, [4], "one jump over the three lost frames");
    assert_eq!(summary.gap_rows, 1);
    let gaps: serde_json::Value = python_json(
        r#"
import h5py, json, sys
t = h5py.File(sys.argv[1], "r")["intervals/FrameGaps"]
print(json.dumps({k: [float(x) for x in t[k][:]] for k in ["start_time", "stop_time", "frames_lost", "first_lost_counter"]}))
"#,
        file,
    );
    assert_eq!(gaps["frames_lost"], serde_json::json!([3.0]), "{gaps}");
    assert_eq!(
        gaps["first_lost_counter"],
        serde_json::json!([80.0]),
        "{gaps}"
    );
    let (start, stop) = (
        gaps["start_time"][0].as_f64().unwrap(),
        gaps["stop_time"][0].as_f64().unwrap(),
    );
    assert!(0.0 < start && start < stop, "{gaps}");
    // Triggers: the rule's, the file's and the event stream's agree.
    let rule = &summary.closed_loop.rules[0];
    assert!(rule.triggers >= 5, "{rule:?}");
    assert_eq!(summary.closed_loop.triggers_in_file as u64, rule.triggers);
    assert_eq!(in_session_events as u64, rule.triggers, "{events:?}");
    let meta: serde_json::Value = python_json(
        r#"
import h5py, json, sys
f = h5py.File(sys.argv[1], "r")
print(json.dumps({
    "subject": f["general/subject/subject_id"][()].decode(),
    "notes": f["general/notes"][()].decode(),
    "triggers": int(f["intervals/StimulusTriggers/id"].shape[0]),
    "frame_index0": int(f["processing/ophys/sig_FrameIndex/data"][0]),
}))
"#,
        file,
    );
    assert_eq!(meta["subject"], "m042");
    let notes = meta["notes"].as_str().unwrap();
    assert!(notes.starts_with("begun by the engine test"), "{notes}");
    assert!(notes.contains("stopped by the engine test"), "{notes}");
    assert_eq!(meta["triggers"].as_u64(), Some(rule.triggers));
    assert!(
        meta["frame_index0"].as_u64().unwrap() < 5,
        "the signal's frame index is the file's row: {meta}"
    );

    // The same config through `behavd run`: the same datasets.
    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, &loaded.text).unwrap();
    let run_dir = dir.path().join("run");
    run_ok(
        behavd()
            .args(["run", "--config"])
            .arg(&cfg)
            .args(["--duration", "1.5", "-o"])
            .arg(&run_dir),
    );
    let run_file = only_session_file(&run_dir);
    assert_eq!(dataset_paths(file), dataset_paths(&run_file));
    let report = check_session(file, false);
    assert_valid_nwb(&report);
}

#[test]
fn begin_is_refused_below_min_free_mb_naming_the_directory_and_both_numbers() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // 10^9 MB: more than any disk here holds; the stop level below it.
    let loaded = config("min_free_mb = 1000000000\nstop_free_mb = 1");
    let mut engine = open(&loaded, dir.path());
    match engine.begin(SessionRequest::default()) {
        Err(BeginError::LowDisk {
            free_bytes,
            needed_bytes,
            dir: at,
        }) => {
            assert_eq!(needed_bytes, 1_000_000_000 * 1_000_000);
            assert!(free_bytes < needed_bytes);
            assert_eq!(at, dir.path());
        }
        other => panic!("expected LowDisk, got {other:?}"),
    }
    assert!(!engine.is_recording());
    assert!(nwb_files(dir.path()).is_empty());
    // Still live: a bad request is named, and the engine closes cleanly.
    match engine.begin(SessionRequest {
        duration_s: Some(f64::NAN),
        ..SessionRequest::default()
    }) {
        Err(BeginError::Invalid { field, .. }) => assert_eq!(field, "duration_s"),
        other => panic!("{other:?}"),
    }
    engine.close().unwrap();
}

#[test]
fn stop_free_mb_not_below_min_free_mb_is_refused_at_load_naming_the_key() {
    let text = CONFIG
        .replace("EXTRA", "min_free_mb = 100\nstop_free_mb = 200")
        .replace("FAULTS", "");
    let e = LoadedConfig::from_str(&text, "engine-test.toml").unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("recording.stop_free_mb"), "{shown}");
    assert!(shown.contains("engine-test.toml"), "{shown}");
}
