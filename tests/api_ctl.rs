//! `behavd ctl` against a running daemon: each command with --json and its exit status
//! (0 done, 1 error, 2 usage, 4 refused, 5 unreachable); `watch` prints the event stream.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::daemon::*;
use serde_json::Value;

fn ctl(socket: &Path, args: &[&str]) -> Output {
    common::behavd()
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn ctl_commands_with_json_and_their_exit_codes() {
    let d = Daemon::start(&emulated_rig(), &[]);
    let s = &d.socket;
    let out = ctl(s, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["state"], "idle");

    let out = ctl(
        s,
        &[
            "--json",
            "start",
            "--subject",
            "m042",
            "--experimenter",
            "Doe, Jane",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = json_of(&out);
    let path = PathBuf::from(started["path"].as_str().unwrap());
    // Refused: already recording → 4, with the daemon's error on stdout as JSON.
    let out = ctl(s, &["start", "--json"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        json_of(&out)["error"]
            .as_str()
            .unwrap()
            .contains("already recording")
    );
    // watch: the current state first, then what follows.
    let out = ctl(s, &["watch", "--json", "--count", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["kind"], "state");
    assert_eq!(lines[0]["state"], "recording");
    let out = ctl(s, &["stop", "--json", "--reason", "end of the test"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_of(&out)["path"], started["path"]);
    let notes = file_notes(&path);
    assert!(notes.contains("end of the test"), "{notes}");
    let out = ctl(s, &["stop"]);
    assert_eq!(out.status.code(), Some(4), "nothing to stop");
    let out = ctl(s, &["sessions", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["sessions"][0]["subject"], "m042");

    // config: a located error exits 1 and prints file:line.
    let bad = d.dir.path().join("bad.toml");
    std::fs::write(&bad, "[recording]\nring_seconds = \"x\"\n").unwrap();
    let out = ctl(s, &["config", "validate"]);
    assert_eq!(out.status.code(), Some(2), "usage: no file");
    let out = ctl(s, &["config", "validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:2:"), "{stderr}");
    let out = ctl(s, &["config", "load", bad.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(4), "422: not loaded");
    let out = ctl(s, &["config", "get", "--json"]);
    assert!(
        json_of(&out)["file"]
            .as_str()
            .unwrap()
            .ends_with("rig.toml")
    );

    // Usage and unreachable.
    let out = ctl(s, &["pulse", "stim"]);
    assert_eq!(out.status.code(), Some(2), "--on-ms is required");
    let out = ctl(&d.dir.path().join("nobody.sock"), &["status"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the daemon"));
    let out = common::behavd()
        .args(["ctl", "--url", "ftp://x:1", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
