//! A full disk, for real: `behavd run` on a small tmpfs in a private mount namespace. The run
//! names the cause in words, still prints its summary and exits non-zero; the file is closed
//! with every per-frame dataset of a series at the same length, its notes say why it stopped,
//! and h5py, pynwb and `behavd inspect` read it. A filesystem too small for the file at all
//! leaves no file that cannot be opened.
//!
//! Needs `unshare(1)` and the right to mount a tmpfs in a new mount namespace (root, or user
//! namespaces); where neither is allowed the tests say so on stderr and pass without running.

mod common;

use std::path::Path;

use common::*;

/// Two small streams, the behavior camera stored raw so the disk fills in a second or two.
const CONFIG: &str = r#"
[session]
description = "disk full test"

[[source]]
kind = "synthetic-miniscope"
name = "Miniscope"
width = 96
height = 96
neurons = 10
fps = 30.0

[[source]]
kind = "synthetic-behavior"
name = "BehaviorCam0"
width = 160
height = 120
fps = 60.0
compression = { codec = "none" }

[recording]
flush_interval_s = 0.5
compress_threads = THREADS
# The disk guard off: this test is about what a full disk does to a running session.
min_free_mb = 0
stop_free_mb = 0
"#;

const NO_SPACE: &str = "No space left on device";

fn config(dir: &Path, threads: usize) -> std::path::PathBuf {
    let path = dir.join(format!("disk_full_{threads}.toml"));
    std::fs::write(&path, CONFIG.replace("THREADS", &threads.to_string())).unwrap();
    path
}

/// Rows of every per-frame dataset of each stream, and the notes, read with h5py.
fn lengths_and_notes(file: &Path) -> serde_json::Value {
    let code = r#"
import h5py, json, sys
f = h5py.File(sys.argv[1], "r")
out = {"notes": f["general/notes"][()].decode(), "streams": {}}
for s in ["Miniscope", "BehaviorCam0"]:
    rows = {}
    for name, g in f["acquisition"].items():
        if name.startswith(s) and isinstance(g, h5py.Group) and "data" in g and "timestamps" in g:
            rows[name + "/data"] = g["data"].shape[0]
    rows[s + "/timestamps"] = f["acquisition/" + s + "/timestamps"].shape[0]
    f["acquisition/" + s + "/data"][-1]  # the last frame is really there
    out["streams"][s] = rows
print(json.dumps(out))
"#;
    python_json(code, file)
}

fn skip() {
    eprintln!("SKIPPED: cannot mount a tmpfs in a private mount namespace on this machine");
}

#[test]
fn a_full_disk_closes_the_file_with_equal_lengths_and_names_the_cause() {
    // Both storage paths: deflate on worker threads (direct chunk writes) and on the writer.
    for (threads, json) in [(2, false), (0, true)] {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), threads);
        let size = format!("{}k", (behavd::record::RESERVE_BYTES >> 10) + 2048);
        let mut args = vec!["run", "--duration", "60", "--config"];
        args.push(config.to_str().unwrap());
        if json {
            args.push("--json");
        }
        let Some(run) = run_on_small_fs(&size, &args, dir.path()) else {
            return skip();
        };
        let context = format!(
            "compress_threads={threads}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        assert_ne!(run.code, 0, "a failed recording exits non-zero: {context}");
        assert!(
            run.stderr.contains("error: recording failed: ") && run.stderr.contains(NO_SPACE),
            "stderr names the cause: {context}"
        );
        assert!(
            !run.stderr.contains("H5Dwrite_chunk failed"),
            "no bare HDF5 call name as the cause: {context}"
        );
        assert_eq!(run.files.len(), 1, "one session file: {context}");
        assert_eq!(
            run.listing.len(),
            1,
            "only the session file is left (the held-back space was released): {:?}",
            run.listing
        );
        let file = &run.files[0];
        let in_file = lengths_and_notes(file);
        let summary_frames: Vec<(String, u64)> = if json {
            let summary: serde_json::Value = serde_json::from_str(&run.stdout)
                .unwrap_or_else(|e| panic!("summary JSON ({e}): {context}"));
            assert!(
                summary["recording_error"]
                    .as_str()
                    .is_some_and(|e| e.contains(NO_SPACE)),
                "the summary carries the cause: {context}"
            );
            summary["streams"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let stats = &s["stats"];
                    let dropped = &stats["dropped"];
                    let in_file = s["frames_in_file"].as_u64().unwrap();
                    // Every frame captured is in the file or counted as lost.
                    assert_eq!(
                        stats["captured"].as_u64().unwrap(),
                        in_file
                            + dropped["pool_exhausted"].as_u64().unwrap()
                            + dropped["recorder_behind"].as_u64().unwrap(),
                        "{}: captured = in file + dropped: {context}",
                        s["name"]
                    );
                    (s["name"].as_str().unwrap().to_string(), in_file)
                })
                .collect()
        } else {
            assert!(
                run.stdout.contains("recording failed: ") && run.stdout.contains(NO_SPACE),
                "the printed summary names the cause: {context}"
            );
            assert!(run.stdout.contains("session file: "), "{context}");
            Vec::new()
        };
        for (stream, rows) in in_file["streams"].as_object().unwrap() {
            let rows = rows.as_object().unwrap();
            let lengths: Vec<u64> = rows.values().map(|v| v.as_u64().unwrap()).collect();
            assert!(
                lengths.windows(2).all(|w| w[0] == w[1]) && lengths[0] > 0,
                "{stream}: every per-frame dataset has the same, non-zero length: {rows:?}"
            );
            if let Some((_, n)) = summary_frames.iter().find(|(s, _)| s == stream) {
                assert_eq!(
                    *n, lengths[0],
                    "{stream}: the summary counts what the file holds"
                );
            }
        }
        let notes = in_file["notes"].as_str().unwrap();
        assert!(
            notes.contains("Recording failed: ") && notes.contains(NO_SPACE),
            "the file's notes say why it stopped: {notes}"
        );

        let report = check_session(file, false);
        assert_eq!(report["pynwb"]["ok"], true, "{:#}", report["pynwb"]);
        let warnings = report["pynwb"]["warnings"].to_string();
        assert!(
            !warnings.contains("ength of data does not match"),
            "pynwb sees equal lengths: {warnings}"
        );
        let out = run_ok(behavd().arg("inspect").arg(file));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(NO_SPACE), "inspect shows the notes: {text}");
    }
}

#[test]
fn a_disk_too_small_for_the_file_leaves_nothing_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 2);
    let reserve_k = behavd::record::RESERVE_BYTES >> 10;
    // From too small for anything, through just the held-back space, to room for the empty
    // file's tree and a frame or two.
    for extra_k in [None, Some(16), Some(100), Some(300), Some(600)] {
        let size = match extra_k {
            None => "64k".to_string(),
            Some(k) => format!("{}k", reserve_k + k),
        };
        let case = tempfile::tempdir_in(dir.path()).unwrap();
        let args = [
            "run",
            "--duration",
            "30",
            "--config",
            config.to_str().unwrap(),
        ];
        let Some(run) = run_on_small_fs(&size, &args, case.path()) else {
            return skip();
        };
        let context = format!(
            "size {size}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        assert_ne!(run.code, 0, "{context}");
        assert!(
            run.stderr.contains(NO_SPACE),
            "the cause is named: {context}"
        );
        assert!(
            !run.listing.iter().any(|n| n.ends_with(".reserve")),
            "no held-back space is left behind: {:?}",
            run.listing
        );
        for file in &run.files {
            let out = behavd().arg("inspect").arg(file).output().unwrap();
            assert!(
                out.status.success(),
                "{size}: inspect reads {}: {}\n{context}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let out = std::process::Command::new(python())
                .args([
                    "-c",
                    "import h5py, sys; h5py.File(sys.argv[1], 'r')['general/notes'][()]",
                ])
                .arg(file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{size}: h5py opens {}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
