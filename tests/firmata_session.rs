//! `behavd run` with a Firmata stimulator: the demo rig with its output switched to
//! `protocol = "firmata"` on behavd's emulated StandardFirmata board (a real pty) and a rule
//! that fires within seconds. Every trigger is written to the board host-timed and recorded
//! as such: status 6 in `StimulusTriggers`, one host-timed pulse event per pulse in
//! `StimulatorEvents`, no device acknowledgement.

mod common;

use std::path::PathBuf;

use common::*;

fn firmata_config() -> String {
    let project = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = behavd::config::DEMO_CONFIG
        .replace(
            "path = \"../models/",
            &format!("path = \"{}/models/", project.display()),
        )
        .replacen(
            "port = \"emulated\"",
            "port = \"emulated\"\nprotocol = \"firmata\"\npins = [9]",
            1,
        )
        .replacen(
            "when = \"behavior.wall_rearing > 0.8 && behavior_gru.wall_rearing > 0.8\"",
            "when = \"behavior.explore > 0.5\"",
            1,
        )
        .replacen("refractory_s = 2.0", "refractory_s = 1.0", 1)
        .replacen("expect = \"wall_rearing\"", "expect = \"explore\"", 1);
    assert!(text.contains("protocol = \"firmata\"") && text.contains("behavior.explore > 0.5"));
    text
}

#[test]
fn a_firmata_output_closes_the_loop_host_timed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("firmata.toml");
    std::fs::write(&config, firmata_config()).unwrap();
    let out = run_ok(
        behavd()
            .args(["run", "--duration", "8", "--json", "--config"])
            .arg(&config)
            .arg("--output")
            .arg(dir.path()),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    let file = only_session_file(dir.path());
    let status = read_dataset_f64(&file, "intervals/StimulusTriggers/status");
    let triggers = status.len() as u64;
    assert!(triggers >= 1, "the explore rule never fired in 8 s");
    // Host-timed, or (decided after the stop had turned the pin off) not sent.
    assert!(
        status.iter().all(|s| *s == 6.0 || *s == 8.0) && status[0] == 6.0,
        "all host-timed: {status:?}"
    );
    // A train (5 × 10 ms every 50 ms) that started over a second before the end ran in full.
    let pulses = read_dataset_f64(&file, "intervals/StimulusTriggers/acked_pulses");
    let start = read_dataset_f64(&file, "intervals/StimulusTriggers/start_time");
    let sent = read_dataset_f64(&file, "intervals/StimulusTriggers/sent_time");
    for i in 0..pulses.len() {
        assert!(
            sent[i] >= start[i] - 1e-9 || sent[i].is_nan(),
            "{sent:?} {start:?}"
        );
        if start[i] < 7.0 {
            assert_eq!(pulses[i], 5.0, "train {i}: {pulses:?}");
        }
    }
    let ack = read_dataset_f64(&file, "intervals/StimulusTriggers/ack_time");
    assert!(ack.iter().all(|a| a.is_nan()), "no device acknowledgement");
    let kinds = read_dataset_u64(&file, "acquisition/StimulatorEvents/kind");
    let count = |k: u64| kinds.iter().filter(|&&x| x == k).count() as u64;
    assert_eq!(count(0), 1, "one connection");
    // A pulse the stop cut (its fall written by the stop's all-low) is counted and has its own
    // event kind (10).
    assert!(count(10) <= 1, "at most the one running pulse is cut");
    assert_eq!(
        count(8) + count(10),
        pulses.iter().sum::<f64>() as u64,
        "one host-timed pulse event per pulse written"
    );
    assert_eq!(count(6), 0, "no device acknowledgements");
    // pynwb reads it and the schema validator accepts it (nwbinspector is left to the 30 s demo
    // test: it flags any video shorter than its frame's widest side as mis-oriented).
    let report = check_session(&file, false);
    assert_eq!(report["pynwb"]["ok"], true, "{:#}", report["pynwb"]);
    assert_eq!(
        report["validator"]["errors"].as_array().map(Vec::len),
        Some(0),
        "{:#}",
        report["validator"]
    );
    let outputs = summary["closed_loop"]["outputs"].as_array();
    assert!(outputs.is_some(), "{summary}");
}

/// A Firmata output needs Arduino pins that can be outputs: `behavd check` says which key is
/// wrong and why.
#[test]
fn a_firmata_output_without_usable_pins_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("pins = [9]", "", "needs the Arduino pin of each channel"),
        (
            "pins = [9]",
            "pins = [1]",
            "pin 1 cannot be a Firmata output",
        ),
    ];
    for (from, to, expected) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, firmata_config().replacen(from, to, 1)).unwrap();
        let out = behavd()
            .arg("check")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("output[0].pins"), "{stderr}");
        assert!(stderr.contains(expected), "`{expected}` not in {stderr}");
    }
}
