//! Stopping a session from outside: SIGTERM closes the file cleanly; a writer killed with
//! SIGKILL still leaves a file that reads as NWB up to its last flush (SWMR).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use common::*;

/// Starts the demo rig and returns once the recorder has flushed frames of every stream.
fn start_and_wait_for_frames(dir: &std::path::Path) -> Child {
    let mut child = behavd()
        .args(["run", "--output"])
        .arg(dir)
        .env("RUST_LOG", "info,behavd::record=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines
            .next()
            .expect("behavd exited before flushing frames")
            .unwrap();
        // e.g. `... flushed session file frames=[12, 12] gaps=0`
        if let Some(frames) = line.split("frames=[").nth(1) {
            let counts: Vec<u64> = frames
                .split(']')
                .next()
                .unwrap()
                .split(", ")
                .map(|n| n.parse().unwrap())
                .collect();
            if counts.iter().all(|&n| n > 0) {
                break;
            }
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn sigterm_stops_cleanly_and_leaves_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_and_wait_for_frames(dir.path());
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let file = only_session_file(dir.path());
    let report = check_session(&file, false);
    assert_eq!(report["pynwb"]["ok"], true, "{:#}", report["pynwb"]);
    assert_eq!(
        report["validator"]["errors"].as_array().map(Vec::len),
        Some(0)
    );
    for name in ["Miniscope", "BehaviorCam0"] {
        let series = image_series(&report, name);
        assert!(series["frames"].as_u64().unwrap() > 0, "{name} has frames");
        assert_eq!(
            series["timestamps"], series["frames"],
            "{name}: drained to the last frame"
        );
    }
}

#[test]
fn a_killed_writer_leaves_a_readable_file_up_to_the_last_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_and_wait_for_frames(dir.path());
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let file = only_session_file(dir.path());
    let report = check_session(&file, true);
    assert_eq!(
        report["pynwb"]["ok"], true,
        "SWMR read of a crashed file: {:#}",
        report["pynwb"]
    );
    for name in ["Miniscope", "BehaviorCam0"] {
        let series = image_series(&report, name);
        assert!(
            series["timestamps"].as_u64().unwrap() > 0,
            "{name}: flushed frames survive"
        );
    }
    let out = run_ok(behavd().arg("inspect").arg(&file));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("still open for writing"), "{text}");
}
