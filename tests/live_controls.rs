//! Live controls on a running session (the demo rig: synthetic Miniscope, emulated behavd
//! stimulator on a real pty, a rule that fires within seconds): a disarmed rule sends nothing
//! and re-armed it sends again; a manual pulse reaches the stimulator and is acknowledged, a
//! second one inside the output's refractory period is refused naming the limit; a Miniscope
//! LED change and a note; every change is in `acquisition/ControlChanges` with its time, and
//! the manual pulses are in the trigger table under the rule `manual`. The file stays valid NWB.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use behavd::pipeline::controls::ControlError;
use behavd::pipeline::{RunOptions, RunningSession};
use common::*;

fn config() -> String {
    let project = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = behavd::config::DEMO_CONFIG
        .replace(
            "path = \"../models/",
            &format!("path = \"{}/models/", project.display()),
        )
        .replacen(
            "when = \"behavior.wall_rearing > 0.8 && behavior_gru.wall_rearing > 0.8\"",
            "when = \"behavior.explore > 0.5\"",
            1,
        )
        .replacen("refractory_s = 2.0", "refractory_s = 0.6", 1)
        .replacen("max_per_minute = 20", "max_per_minute = 600", 1)
        .replacen("expect = \"wall_rearing\"", "expect = \"explore\"", 1);
    assert!(text.contains("behavior.explore > 0.5"));
    text
}

fn strings(file: &Path, dataset: &str) -> Vec<String> {
    let f = hdf5::File::open(file).unwrap();
    let v: Vec<hdf5::types::VarLenUnicode> = f.dataset(dataset).unwrap().read_raw().unwrap();
    v.into_iter().map(|s| s.as_str().to_string()).collect()
}

fn wait_until(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Frames the behavior model has processed so far.
fn behavior_frames(session: &RunningSession) -> u64 {
    session
        .live_loop_stats()
        .find(|(name, _, _)| *name == "behavior")
        .map(|(_, processed, _)| processed)
        .unwrap()
}

#[test]
fn live_changes_act_on_the_rig_and_land_in_the_session_file() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = behavd::config::LoadedConfig::from_str(&config(), "live_controls.toml").unwrap();
    let session = RunningSession::start(
        &loaded,
        &RunOptions {
            output_dir: Some(dir.path().to_path_buf()),
            cancel: None,
        },
    )
    .unwrap();
    let c = session.controls();
    let rule = "wall_rearing_stim";

    // Disarmed: the rule keeps deciding (the summary counts it) but nothing is sent.
    let off = c.arm(rule, false, "test").unwrap();
    assert!(off.recorded);
    // A trigger decided just before the disarm is through the link within this wait.
    let frames = behavior_frames(&session);
    wait_until("a few frames", Duration::from_secs(10), || {
        behavior_frames(&session) > frames + 5
    });

    // A manual pulse goes through the link to the stimulator and is acknowledged.
    let sent_before = session.live_triggers();
    let pulse = c.pulse("stim", 5.0, "test").unwrap();
    assert_eq!(pulse.result, "acknowledged", "{pulse:?}");
    assert_eq!(session.live_triggers(), sent_before + 1);
    // A second one inside the output's 0.5 s refractory period is refused, naming the limit.
    let err = c.pulse("stim", 5.0, "test").unwrap_err();
    match &err {
        ControlError::PulseRefused { reason, limit, .. } => {
            assert!(reason.contains("refractory"), "{err}");
            assert_eq!(limit, "refractory_s = 0.5");
        }
        other => panic!("expected a refusal, got {other}"),
    }
    let err = c.pulse("stim", 250.0, "test").unwrap_err();
    assert!(err.to_string().contains("max_on_ms = 100"), "{err}");
    let err = c.pulse("laser", 5.0, "test").unwrap_err();
    assert!(err.to_string().contains("\"laser\"") && err.to_string().contains("stim"));

    // The synthetic Miniscope's LED, and a note.
    let led = c.set("Miniscope", "led0", 50.0, "test").unwrap();
    assert_eq!(led.result, "applied");
    let err = c.set("Miniscope", "led0", 500.0, "test").unwrap_err();
    assert!(err.to_string().contains("0..=100"), "{err}");
    let err = c.set("BehaviorCam0", "led0", 50.0, "test").unwrap_err();
    assert!(matches!(err, ControlError::NoLiveControls { .. }), "{err}");
    c.note("mouse turned towards the wall", "test").unwrap();

    // Still disarmed over a window of ~3 s of frames: not one rule trigger was sent.
    let frames = behavior_frames(&session);
    wait_until("3 s of frames", Duration::from_secs(20), || {
        behavior_frames(&session) > frames + 90
    });
    assert_eq!(
        session.live_triggers(),
        sent_before + 1,
        "a disarmed rule sends nothing"
    );
    let on = c.arm(rule, true, "test").unwrap();
    wait_until(
        "a trigger of the re-armed rule",
        Duration::from_secs(20),
        || session.live_triggers() > sent_before + 1,
    );
    let summary = session.stop("test done").unwrap();
    assert!(
        summary.closed_loop.rules[0].disarmed > 0,
        "the rule decided while disarmed: {:?}",
        summary.closed_loop.rules[0]
    );

    let file = summary.path;
    // The rule table ends with the manual row; the manual pulses name it.
    assert_eq!(
        strings(&file, "acquisition/TriggerRules/rule_name"),
        [rule, "manual"]
    );
    let rules = read_dataset_u64(&file, "intervals/StimulusTriggers/rule");
    let status = read_dataset_u64(&file, "intervals/StimulusTriggers/status");
    let decided = read_dataset_f64(&file, "intervals/StimulusTriggers/decision_time");
    let manual: Vec<u64> = (0..rules.len())
        .filter(|&i| rules[i] == 1)
        .map(|i| status[i])
        .collect();
    assert_eq!(manual, [2, 4], "acknowledged, then blocked");
    let (off_s, on_s) = (off.session_s.unwrap(), on.session_s.unwrap());
    for i in (0..rules.len()).filter(|&i| rules[i] == 0) {
        // Margin: a decision just before the disarm call.
        assert!(
            decided[i] < off_s + 0.05 || decided[i] >= on_s,
            "rule trigger decided at {} while disarmed ({off_s}..{on_s})",
            decided[i]
        );
    }
    assert!(
        (0..rules.len()).any(|i| rules[i] == 0 && decided[i] >= on_s),
        "the re-armed rule fired"
    );

    // Every change, in order, with its time and result.
    let t = "acquisition/ControlChanges";
    assert_eq!(
        strings(&file, &format!("{t}/name")),
        ["armed", "pulse", "pulse", "led0", "note", "armed"]
    );
    let results = strings(&file, &format!("{t}/result"));
    assert_eq!(results[0], "disarmed");
    assert_eq!(results[1], "acknowledged");
    assert!(
        results[2].starts_with("blocked: refractory") && results[2].contains("refractory_s = 0.5"),
        "{results:?}"
    );
    assert_eq!(results[3], "applied");
    assert_eq!(
        strings(&file, &format!("{t}/text"))[4],
        "mouse turned towards the wall"
    );
    assert!(
        strings(&file, &format!("{t}/origin"))
            .iter()
            .all(|o| o == "test")
    );
    let times = read_dataset_f64(&file, &format!("{t}/time"));
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(times[0] > 0.0 && times[5] < summary.duration_s, "{times:?}");
    assert!((times[0] - off_s).abs() < 1e-6 && (times[3] - led.session_s.unwrap()).abs() < 1e-6);
    let values = read_dataset_f64(&file, &format!("{t}/value"));
    assert_eq!(&values[..4], [0.0, 5.0, 5.0, 50.0]);

    assert_readable_nwb(&check_session(&file, false));
}

/// pynwb reads the file, the validator finds nothing, and nwbinspector reports nothing serious
/// but the orientation of data with fewer frames than pixels in a row (this session is short).
fn assert_readable_nwb(report: &serde_json::Value) {
    assert_eq!(report["pynwb"]["ok"], true, "{:#}", report["pynwb"]);
    assert_eq!(
        report["validator"]["errors"].as_array().map(Vec::len),
        Some(0),
        "{:#}",
        report["validator"]
    );
    let serious: Vec<&serde_json::Value> = report["inspector"]["messages"]
        .as_array()
        .expect("inspector messages")
        .iter()
        .filter(|m| m["importance"] != "BEST_PRACTICE_SUGGESTION")
        .filter(|m| m["check_name"] != "check_data_orientation")
        .collect();
    assert!(serious.is_empty(), "nwbinspector: {serious:#?}");
}
