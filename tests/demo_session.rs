//! `behavd run` on the demo rig for 25 s: the file opens in pynwb, validates, passes
//! nwbinspector, holds every frame with increasing timestamps, the ground truth, and no drops;
//! `behavd inspect` reports the same.

mod common;

use common::*;

const DURATION_S: f64 = 25.0;
const FPS: f64 = 30.0;

#[test]
fn demo_run_records_a_valid_lossless_nwb_session() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(
        behavd()
            .args([
                "run",
                "--duration",
                &DURATION_S.to_string(),
                "--json",
                "--output",
            ])
            .arg(dir.path()),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    let file = only_session_file(dir.path());
    assert_eq!(summary["path"].as_str().unwrap(), file.to_str().unwrap());

    let expected = DURATION_S * FPS;
    for stream in summary["streams"].as_array().unwrap() {
        let captured = stream["stats"]["captured"].as_u64().unwrap();
        assert!(
            (captured as f64 - expected).abs() <= 0.03 * expected,
            "{}: {captured} frames captured, expected {expected} ± 3 %",
            stream["name"]
        );
        assert_eq!(
            stream["frames_in_file"].as_u64().unwrap(),
            captured,
            "lossless recording"
        );
        let dropped: u64 = stream["stats"]["dropped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .sum();
        assert_eq!(dropped, 0, "no drops at demo rates: {stream:#}");
    }

    let report = check_session(&file, false);
    assert_valid_nwb(&report);
    for (name, shape) in [("Miniscope", [608, 608]), ("BehaviorCam0", [640, 480])] {
        let series = image_series(&report, name);
        let frames = series["frames"].as_u64().unwrap();
        assert!(
            (frames as f64 - expected).abs() <= 0.03 * expected,
            "{name}: {frames} frames in file, expected {expected} ± 3 %"
        );
        assert_eq!(
            series["timestamps"].as_u64(),
            Some(frames),
            "{name}: one timestamp per frame"
        );
        assert_eq!(
            series["strictly_increasing"], true,
            "{name}: timestamps strictly increasing"
        );
        assert_eq!(
            series["shape"][1].as_u64().unwrap(),
            shape[0],
            "{name}: stored as data[frame, x, y]"
        );
        assert_eq!(series["shape"][2].as_u64().unwrap(), shape[1]);
        let fps = series["fps_estimate"].as_f64().unwrap();
        assert!((fps - FPS).abs() < 0.5, "{name}: {fps} fps");
    }
    let truth = time_series(&report, "BehaviorCam0GroundTruthBehavior");
    assert_eq!(
        truth["rows"],
        image_series(&report, "BehaviorCam0")["frames"],
        "ground truth for every frame"
    );
    let keypoints = time_series(&report, "BehaviorCam0GroundTruthKeypoints");
    assert_eq!(keypoints["shape"][1].as_u64(), Some(4));
    let daq = time_series(&report, "MiniscopeDAQFrameNumber");
    assert_eq!(daq["rows"], image_series(&report, "Miniscope")["frames"]);
    assert!(
        report["h5py"]["frame_gaps"].is_null(),
        "no gap table when nothing was lost"
    );
    let behaviors = read_dataset_u64(&file, "acquisition/BehaviorCam0GroundTruthBehavior/data");
    assert!(
        behaviors.iter().all(|&b| b < 4),
        "every frame has a known behavior code"
    );
    let config_text = report["h5py"]["data_collection"].as_str().unwrap();
    assert_eq!(
        config_text,
        behavd::config::DEMO_CONFIG,
        "the full config text is stored"
    );
    assert!(
        report["h5py"]["source_script"]
            .as_str()
            .unwrap()
            .starts_with("behavd ")
    );

    // `behavd inspect` tells the same story.
    let out = run_ok(behavd().arg("inspect").arg("--json").arg(&file));
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for stream in inspected["streams"].as_array().unwrap() {
        let name = stream["name"].as_str().unwrap();
        assert_eq!(
            stream["frames"],
            image_series(&report, name)["frames"],
            "{name}"
        );
        let dropped: u64 = stream["dropped"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(dropped, 0);
    }
    assert_eq!(inspected["streams"].as_array().unwrap().len(), 2);
    assert_eq!(inspected["open_for_write"], false);
}
