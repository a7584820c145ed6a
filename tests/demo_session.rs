//! `behavd run` on the demo rig for 30 s: the file opens in pynwb, validates, passes
//! nwbinspector, holds every frame with increasing timestamps, the ground truth, and no drops;
//! `behavd inspect` reports the same. The closed loop runs the shipped models: predictions for
//! at least 90 % of behavior frames, pose and ROI signals in the file, triggers with complete
//! timing chains, and the demo rule's precision against the simulator's ground truth ≥ 0.8.

mod common;

use common::*;

const DURATION_S: f64 = 30.0;
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
            .as_object()
            .unwrap()
            .values()
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

    check_closed_loop(&summary, &report, &file);
}

/// The closed-loop half of the demo: predictions, pose, signals, triggers and their scores.
fn check_closed_loop(
    summary: &serde_json::Value,
    report: &serde_json::Value,
    file: &std::path::Path,
) {
    let behavior_frames = image_series(report, "BehaviorCam0")["frames"]
        .as_u64()
        .unwrap();
    for (model, group) in [
        ("behavior", "behavior"),
        ("behavior_gru", "behavior"),
        ("pose", "behavior"),
        ("neural", "behavior"),
        ("miniscope", "ophys"),
    ] {
        let p = producer(summary, model);
        let rows = p["rows_in_file"].as_u64().unwrap();
        assert_eq!(
            rows,
            p["processed"].as_u64().unwrap(),
            "{model}: every output recorded"
        );
        assert_eq!(p["errors"], 0, "{model}: no failed runs");
        let names = report["pynwb"]["processing"][group].as_array().unwrap();
        assert!(
            names.iter().any(|n| n == model),
            "{model} in processing/{group}: {names:?}"
        );
        assert!(
            names.iter().any(|n| *n == format!("{model}_FrameIndex")),
            "{model}: frame index recorded"
        );
    }
    for model in ["behavior", "behavior_gru", "pose"] {
        let rows = producer(summary, model)["rows_in_file"].as_u64().unwrap();
        assert!(
            rows as f64 >= 0.9 * behavior_frames as f64,
            "{model}: predictions for {rows} of {behavior_frames} behavior frames (< 90 %)"
        );
    }
    // Class probabilities are probabilities; frame indices point into the camera series.
    let probs = read_dataset_f64(file, "processing/behavior/behavior/data");
    for row in probs.chunks(4) {
        let sum: f64 = row.iter().sum();
        assert!(
            (sum - 1.0).abs() < 1e-4 && row.iter().all(|p| (0.0..=1.0).contains(p)),
            "{row:?}"
        );
    }
    let index = read_dataset_u64(file, "processing/behavior/behavior_FrameIndex/data");
    assert!(
        index.windows(2).all(|w| w[1] > w[0]),
        "inferred frames in order"
    );
    assert!(*index.last().unwrap() < behavior_frames);
    // Pose: the keypoint estimates land near the simulator's keypoints.
    let nose = read_dataset_f64(file, "processing/behavior/pose/nose/data");
    let pose_index = read_dataset_u64(file, "processing/behavior/pose_FrameIndex/data");
    let truth = read_dataset_f64(file, "acquisition/BehaviorCam0GroundTruthKeypoints/data");
    let mut errors: Vec<f64> = pose_index
        .iter()
        .zip(nose.chunks(2))
        .map(|(&i, xy)| {
            let t = &truth[i as usize * 8..i as usize * 8 + 2];
            ((xy[0] - t[0]).powi(2) + (xy[1] - t[1]).powi(2)).sqrt()
        })
        .collect();
    errors.sort_by(f64::total_cmp);
    let median = errors[errors.len() / 2];
    assert!(median < 20.0, "median nose error {median:.1} px");

    // Triggers: the demo rule fired, scored against ground truth, with complete timing chains.
    let loop_summary = &summary["closed_loop"];
    let rule = &loop_summary["rules"][0];
    let triggers = rule["triggers"].as_u64().unwrap();
    assert!(triggers >= 1, "the demo rule fired: {rule:#}");
    let precision = rule["precision"].as_f64().unwrap();
    assert!(
        precision >= 0.8,
        "demo rule precision {precision:.3} < 0.8: {rule:#}"
    );
    assert_eq!(loop_summary["triggers_in_file"].as_u64(), Some(triggers));
    let column = |name: &str| read_dataset_f64(file, &format!("intervals/StimulusTriggers/{name}"));
    let chain: Vec<Vec<f64>> = [
        "frame_time",
        "inference_start",
        "inference_end",
        "decision_time",
        "sent_time",
        "start_time",
    ]
    .iter()
    .map(|c| column(c))
    .collect();
    for row in 0..triggers as usize {
        let times: Vec<f64> = chain.iter().map(|c| c[row]).collect();
        assert!(
            times.iter().all(|t| t.is_finite() && *t >= 0.0),
            "trigger {row}: {times:?}"
        );
        assert!(
            times[..5].windows(2).all(|w| w[0] <= w[1]),
            "trigger {row} chain out of order: {times:?}"
        );
    }
    let stop = column("stop_time");
    let width = column("pulse_width");
    assert!(
        stop.iter()
            .zip(&chain[5])
            .zip(&width)
            .all(|((s, t), w)| s - t >= *w - 1e-9)
    );
    // The demo's emulated stimulator acknowledged every pulse with its own edge times.
    assert!(
        column("status").iter().all(|s| *s == 2.0),
        "every trigger acknowledged"
    );
    assert!(
        column("acked_pulses").iter().all(|p| *p == 5.0),
        "5 pulses per train"
    );
    let latency = column("latency");
    assert!(
        latency
            .iter()
            .all(|l| l.is_finite() && *l > 0.0 && *l < 1.0),
        "{latency:?}"
    );
    let kinds = read_dataset_u64(file, "acquisition/StimulatorEvents/kind");
    let count = |k: u64| kinds.iter().filter(|&&x| x == k).count() as u64;
    assert_eq!(count(0), 1, "one connection");
    assert_eq!(
        count(6),
        5 * triggers,
        "one acknowledgement event per pulse"
    );
    assert!(
        count(4) > 100,
        "clock-sync samples every 100 ms: {}",
        count(4)
    );
    let truth_at_trigger =
        read_dataset_f64(file, "intervals/StimulusTriggers/ground_truth_behavior");
    let hits = truth_at_trigger.iter().filter(|&&b| b == 3.0).count();
    assert_eq!(
        hits as u64,
        rule["true_positives"].as_u64().unwrap(),
        "file and summary agree"
    );
}
