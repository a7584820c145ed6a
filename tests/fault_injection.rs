//! Injected device drops, a stall and a disconnection: every lost frame is counted live and
//! recorded as a gap in the file, and the 16-bit DAQ counter unwraps across its wrap.

mod common;

use std::collections::BTreeMap;

use common::*;

const CONFIG: &str = r#"
[session]
description = "fault injection test"

[[source]]
kind = "synthetic-miniscope"
name = "Miniscope"
width = 96
height = 96
neurons = 20
fps = 30.0
counter_start = 65500
faults = { drop_frames = [10, 11, 50], stall = [{ at_frame = 100, ms = 200 }], disconnect = [{ at_frame = 150, ms = 300 }] }

[[source]]
kind = "synthetic-behavior"
name = "BehaviorCam0"
width = 96
height = 64
fps = 30.0
faults = { drop_frames = [20] }

[recording]
flush_interval_s = 0.5
"#;

#[test]
fn every_injected_drop_is_counted_and_recorded_as_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("faults.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = run_ok(
        behavd()
            .args(["run", "--duration", "8", "--json", "--config"])
            .arg(&config)
            .arg("--output")
            .arg(dir.path()),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = only_session_file(dir.path());
    let report = check_session(&file, false);
    assert_eq!(report["pynwb"]["ok"], true, "{:#}", report["pynwb"]);
    assert_eq!(
        report["validator"]["errors"].as_array().map(Vec::len),
        Some(0),
        "{:#}",
        report["validator"]
    );
    let gaps = report["h5py"]["frame_gaps"]
        .as_array()
        .expect("a gap table");

    for (stream, counter_path) in [
        ("Miniscope", "acquisition/MiniscopeDAQFrameNumber/data"),
        ("BehaviorCam0", "acquisition/BehaviorCam0FrameNumber/data"),
    ] {
        let counters = read_dataset_u64(&file, counter_path);
        // Every jump of the device counter in the file is exactly one gap row.
        let mut jumps = BTreeMap::new();
        for pair in counters.windows(2) {
            assert!(
                pair[1] > pair[0],
                "{stream}: unwrapped counter increases: {pair:?}"
            );
            if pair[1] > pair[0] + 1 {
                jumps.insert(pair[0] + 1, pair[1] - pair[0] - 1);
            }
        }
        let recorded: BTreeMap<u64, u64> = gaps
            .iter()
            .filter(|g| g["stream_name"] == stream)
            .map(|g| {
                (
                    g["first_lost_counter"].as_u64().unwrap(),
                    g["frames_lost"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            recorded, jumps,
            "{stream}: gap rows match the counter jumps"
        );
        let lost: u64 = jumps.values().sum();
        let live = summary["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == stream)
            .unwrap();
        let live_dropped: u64 = live["stats"]["dropped"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(
            live_dropped, lost,
            "{stream}: live drop counters agree with the file"
        );
        assert_eq!(
            live["frames_in_file"].as_u64().unwrap() as usize,
            counters.len(),
            "{stream}: one counter per stored frame"
        );
    }

    let miniscope_gaps: Vec<_> = gaps
        .iter()
        .filter(|g| g["stream_name"] == "Miniscope")
        .collect();
    let row = |first: u64| {
        miniscope_gaps
            .iter()
            .find(|g| g["first_lost_counter"] == first)
    };
    let dropped_pair = row(65510).expect("frames 10 and 11 dropped");
    assert_eq!(dropped_pair["frames_lost"], 2);
    assert_eq!(dropped_pair["cause_name"], "device");
    assert_eq!(row(65550).expect("frame 50 dropped")["frames_lost"], 1);
    let stall = miniscope_gaps
        .iter()
        .find(|g| (65599..=65601).contains(&g["first_lost_counter"].as_u64().unwrap()))
        .expect("the stall lost frames");
    let stall_lost = stall["frames_lost"].as_u64().unwrap();
    assert!(
        (4..=8).contains(&stall_lost),
        "200 ms stall at 30 fps lost {stall_lost} frames"
    );
    let disconnect = miniscope_gaps
        .iter()
        .find(|g| g["cause_name"] == "disconnected")
        .expect("the disconnection is recorded as such");
    let first = disconnect["first_lost_counter"].as_u64().unwrap();
    assert!(
        (65649..=65651).contains(&first),
        "disconnect began at device frame 150: {first}"
    );
    assert!(
        disconnect["frames_lost"].as_u64().unwrap() >= 8,
        "300 ms offline at 30 fps"
    );
    let behavior_gaps: Vec<_> = gaps
        .iter()
        .filter(|g| g["stream_name"] == "BehaviorCam0")
        .collect();
    assert_eq!(behavior_gaps.len(), 1);
    assert_eq!(behavior_gaps[0]["first_lost_counter"], 20);

    let counters = read_dataset_u64(&file, "acquisition/MiniscopeDAQFrameNumber/data");
    assert!(
        counters.last().unwrap() > &65535,
        "the 16-bit DAQ counter wrapped and was unwrapped"
    );
    let reconnects = summary["streams"][0]["stats"]["reconnects"]
        .as_u64()
        .unwrap();
    assert_eq!(reconnects, 1);
}
