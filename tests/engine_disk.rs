//! The disk guard on a real small filesystem (a tmpfs in a private mount namespace, as
//! `disk_full.rs`): a session does not begin below `[recording] min_free_mb` (the error names
//! the directory and both numbers, no file is left), and a running one is stopped cleanly once
//! the free space falls below `stop_free_mb`, the reason in the file's notes. Where mount
//! namespaces are refused the tests say `SKIPPED:` and pass without running.

mod common;

use std::path::Path;

use common::*;

/// A raw RGB behavior camera that fills a few MB a second.
const CONFIG: &str = r#"
[session]
description = "disk guard test"

[[source]]
kind = "synthetic-behavior"
name = "BehaviorCam0"
width = 320
height = 240
fps = 60.0
compression = { codec = "none" }

[recording]
flush_interval_s = 0.25
GUARD
"#;

fn config(dir: &Path, guard: &str) -> std::path::PathBuf {
    let path = dir.join("disk_guard.toml");
    std::fs::write(&path, CONFIG.replace("GUARD", guard)).unwrap();
    path
}

fn skip() {
    eprintln!("SKIPPED: cannot mount a tmpfs in a private mount namespace on this machine");
}

#[test]
fn a_session_does_not_begin_below_min_free_mb() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "min_free_mb = 100\nstop_free_mb = 10");
    let args = ["run", "--duration", "5", "--config", cfg.to_str().unwrap()];
    let Some(run) = run_on_small_fs("48m", &args, dir.path()) else {
        return skip();
    };
    let context = format!("stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_ne!(run.code, 0, "{context}");
    assert!(run.stderr.contains("min_free_mb = 100 MB"), "{context}");
    assert!(
        run.stderr.contains(" MB free"),
        "names the free space: {context}"
    );
    assert!(
        run.stderr.contains("/mnt"),
        "names the directory: {context}"
    );
    assert!(run.files.is_empty(), "no session file: {:?}", run.listing);
}

#[test]
fn a_running_session_stops_cleanly_below_stop_free_mb() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "min_free_mb = 24\nstop_free_mb = 16");
    let args = [
        "run",
        "--duration",
        "60",
        "--json",
        "--config",
        cfg.to_str().unwrap(),
    ];
    let Some(run) = run_on_small_fs("48m", &args, dir.path()) else {
        return skip();
    };
    let context = format!("stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, 0, "a clean stop: {context}");
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).expect(&context);
    assert!(summary["recording_error"].is_null(), "{context}");
    assert!(
        summary["duration_s"].as_f64().unwrap() < 30.0,
        "stopped by the guard, not the duration: {context}"
    );
    assert_eq!(run.files.len(), 1, "{context}");
    let notes: String = python_json(
        "import h5py, json, sys; print(json.dumps(h5py.File(sys.argv[1], 'r')['general/notes'][()].decode()))",
        &run.files[0],
    );
    assert!(
        notes.contains("below [recording] stop_free_mb = 16 MB"),
        "the notes say why: {notes}"
    );
    let report = check_session(&run.files[0], false);
    assert_valid_nwb(&report);
}
