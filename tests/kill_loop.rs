//! The outside campaign's `kill -9` loop: the demo rig killed with SIGKILL at seeded random
//! instants (0.2–3.5 s into recording, so before, at and between flushes). Every file must open
//! in h5py (SWMR, as a crashed writer's file must be read) and in pynwb, hold consistent
//! lengths up to its last flush (the writer appends a series' other datasets before its
//! timestamps, so no stream has a timestamp without its frame and metadata row), lose no more
//! than about a flush interval, and be read by `behavd inspect`.

mod common;

use std::time::Duration;

use common::*;

const RUNS: usize = 10;
const SEED: u64 = 0x6b69_6c6c_2d39;

/// xorshift64*: enough for reproducible kill instants without another dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

const CHECK: &str = r#"
import json, sys, warnings
import h5py
out = []
for path in sys.argv[1:]:
    r = {"file": path}
    try:
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            streams = {}
            for s in ["Miniscope", "BehaviorCam0"]:
                g = f["acquisition/" + s]
                ts = g["timestamps"][()]
                rows = {n + "/data": f["acquisition/" + n]["data"].shape[0]
                        for n in f["acquisition"] if n.startswith(s) and "data" in f["acquisition/" + n]}
                if len(ts):
                    g["data"][len(ts) - 1]  # the frame of the last timestamp is really there
                streams[s] = {"timestamps": int(len(ts)), "rows": rows,
                              "t_last": float(ts[-1]) if len(ts) else None}
            r["streams"] = streams
        r["h5py"] = True
    except Exception as e:
        r["h5py"] = False
        r["error"] = repr(e)
    try:
        import pynwb
        with warnings.catch_warnings(record=True):
            with h5py.File(path, "r", libver="latest", swmr=True) as f:
                nwb = pynwb.NWBHDF5IO(file=f, mode="r").read()
                r["pynwb_acquisition"] = sorted(nwb.acquisition)
        r["pynwb"] = True
    except Exception as e:
        r["pynwb"] = False
        r["pynwb_error"] = repr(e)
    out.append(r)
print(json.dumps(out))
"#;

#[test]
fn ten_random_sigkills_leave_readable_consistent_files() {
    let root = tempfile::tempdir().unwrap();
    let mut rng = SEED;
    let mut kills = Vec::new();
    let mut files = Vec::new();
    for i in 0..RUNS {
        let dir = root.path().join(format!("run{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let after = Duration::from_millis(200 + next(&mut rng) % 3300);
        let (mut child, started) =
            spawn_until_recording(behavd().args(["run", "--output"]).arg(&dir));
        // The kill instant is the experiment's variable, not a synchronisation.
        std::thread::sleep(after.saturating_sub(started.elapsed()));
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "run {i} was killed, not finished"
        );
        kills.push(started.elapsed());
        files.push(only_session_file(&dir));
    }
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(CHECK)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for ((report, file), killed_after) in reports.iter().zip(&files).zip(&kills) {
        let context = format!(
            "{} killed {killed_after:?} after start: {report:#}",
            file.display()
        );
        assert_eq!(report["h5py"], true, "h5py opens it: {context}");
        assert_eq!(report["pynwb"], true, "pynwb reads it: {context}");
        for (stream, s) in report["streams"].as_object().unwrap() {
            let timestamps = s["timestamps"].as_u64().unwrap();
            for (name, rows) in s["rows"].as_object().unwrap() {
                assert!(
                    rows.as_u64().unwrap() >= timestamps,
                    "{stream}: {name} holds every row that has a timestamp: {context}"
                );
            }
            // Flushes come every second; allow a second more for a loaded machine.
            if killed_after.as_secs_f64() > 2.5 {
                let t_last = s["t_last"].as_f64().unwrap_or(0.0);
                assert!(
                    t_last > killed_after.as_secs_f64() - 2.5,
                    "{stream}: at most about a flush interval lost: {context}"
                );
            }
        }
        let inspect = behavd().arg("inspect").arg(file).output().unwrap();
        assert!(
            inspect.status.success(),
            "inspect reads it: {}\n{context}",
            String::from_utf8_lossy(&inspect.stderr)
        );
        let text = String::from_utf8_lossy(&inspect.stdout);
        assert!(text.contains("Miniscope"), "{text}");
    }
}
