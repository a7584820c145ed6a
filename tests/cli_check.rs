//! `behavd check`: a valid config prints the rig; a broken one exits 1 naming file, line, key.

mod common;

use common::*;

#[test]
fn a_valid_config_is_accepted_and_described() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml");
    let out = run_ok(behavd().args(["check", "--config", demo]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Miniscope") && text.contains("608x608 @ 30 fps"),
        "{text}"
    );
    assert!(
        text.contains("BehaviorCam0") && text.contains("640x480"),
        "{text}"
    );
}

#[test]
fn a_typo_exits_1_with_file_line_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rig.toml");
    std::fs::write(
        &path,
        "[[source]]\nkind = \"synthetic-miniscope\"\nfsp = 30\n",
    )
    .unwrap();
    let out = behavd()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:1", path.display())), "{err}");
    assert!(err.contains("did you mean `fps`"), "{err}");
}

#[test]
fn run_refuses_a_broken_config_without_creating_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rig.toml");
    std::fs::write(
        &path,
        "[[source]]\nkind = \"synthetic-behavior\"\nfps = -5.0\n",
    )
    .unwrap();
    let out = behavd()
        .args(["run", "--duration", "1", "--config"])
        .arg(&path)
        .arg("--output")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("source[0].fps"), "{err}");
    assert!(!dir.path().join("out").exists(), "nothing was recorded");
}

/// The demo with absolute model paths, `from` replaced by `to` once, written to `dir/name`.
fn demo_variant(dir: &std::path::Path, name: &str, edits: &[(&str, &str)]) -> std::path::PathBuf {
    let project = env!("CARGO_MANIFEST_DIR");
    let mut text = behavd::config::DEMO_CONFIG.replace(
        "path = \"../models/",
        &format!("path = \"{project}/models/"),
    );
    for (from, to) in edits {
        assert!(text.contains(from), "`{from}` not in the demo");
        text = text.replacen(from, to, 1);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `behavd check` on `path`: (exit code, stdout, stderr).
fn check(path: &std::path::Path, json: bool) -> (Option<i32>, String, String) {
    let mut cmd = behavd();
    cmd.arg("check");
    if json {
        cmd.arg("--json");
    }
    let out = cmd.arg("--config").arg(path).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `behavd run` of `path` into `dir/out`: (exit code, stderr).
fn run_briefly(path: &std::path::Path, out: &std::path::Path) -> (Option<i32>, String) {
    let o = behavd()
        .args(["run", "--duration", "2", "--config"])
        .arg(path)
        .arg("--output")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Rust debug text that must never reach a user.
const DEBUG_TEXT: [&str; 10] = [
    "Number(",
    "Label(",
    "Some(",
    "Realtime",
    "Gray8",
    "Rgb8",
    "Mjpeg",
    "ActiveLow",
    "Behavd",
    "{\"",
];

#[test]
fn check_prints_the_outputs_and_their_limits_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_variant(dir.path(), "demo.toml", &[]);
    let (code, text, err) = check(&path, false);
    assert_eq!(code, Some(0), "{err}");
    for words in [
        "outputs:",
        "behavd's emulated stimulator, behavd protocol at 115200 baud, channels 0 and 1",
        "a pulse lasts at most 100 ms",
        "a channel is on at most 50 % of any 1 s",
        "at least 0.5 s between trains on a channel",
        "the device turns every channel off after 1000 ms without contact",
        "output stim channel 0: 5 pulses of 10 ms every 50 ms, at least 2 s apart, at most 20 per minute",
        "8-bit gray",
        "real-time pacing",
        "memory: frame pools take",
    ] {
        assert!(text.contains(words), "`{words}` not in:\n{text}");
    }
    for debug in DEBUG_TEXT {
        assert!(!text.contains(debug), "debug text `{debug}` in:\n{text}");
    }
    // Camera and Miniscope details in words too.
    let rig = dir.path().join("cams.toml");
    std::fs::write(
        &rig,
        "[[source]]\nkind = \"v4l2\"\nname = \"Cam\"\ndevice = \"/dev/video0\"\nformat = \"mjpeg\"\npixel_format = \"rgb8\"\n[source.controls]\ngain = 10\n\n[[source]]\nkind = \"miniscope\"\ntrigger = \"active_low\"\n[source.controls]\newl = -10\ngain = \"Low\"\n",
    )
    .unwrap();
    let (code, text, err) = check(&rig, false);
    assert_eq!(code, Some(0), "{err}");
    for words in [
        "captures MJPEG, stores 8-bit RGB",
        "controls gain = 10",
        "trigger input active low",
        "controls ewl = -10, gain = Low",
    ] {
        assert!(text.contains(words), "`{words}` not in:\n{text}");
    }
    for debug in DEBUG_TEXT {
        assert!(!text.contains(debug), "debug text `{debug}` in:\n{text}");
    }
}

#[test]
fn a_rule_output_typo_is_a_located_error_and_run_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_variant(
        dir.path(),
        "typo.toml",
        &[("output = \"stim\"", "output = \"stmi\"")],
    );
    let (code, _, err) = check(&path, false);
    assert_eq!(code, Some(1), "{err}");
    let line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .position(|l| l == "output = \"stmi\"")
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("typo.toml:{line}:1: key `rule[0].trigger.output`")),
        "{err}"
    );
    assert!(err.contains("did you mean `stim`?"), "{err}");
    let (code, err) = run_briefly(&path, &dir.path().join("out"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("rule[0].trigger.output"), "{err}");
    assert!(!dir.path().join("out").exists(), "nothing was recorded");
}

#[test]
fn a_pulse_longer_than_the_output_allows_is_refused_by_check_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_variant(
        dir.path(),
        "wide.toml",
        &[
            ("pulse_width_ms = 10.0", "pulse_width_ms = 150.0"),
            ("period_ms = 50.0", "period_ms = 200.0"),
        ],
    );
    let (code, _, err) = check(&path, false);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("key `rule[0].trigger.pulse_width_ms`") && err.contains("max_on_ms = 100 ms"),
        "{err}"
    );
    let (code, err) = run_briefly(&path, &dir.path().join("out"));
    assert_eq!(code, Some(1), "{err}");
    assert!(!dir.path().join("out").exists(), "nothing was recorded");
}

#[test]
fn a_session_name_cannot_escape_the_output_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_variant(
        dir.path(),
        "escape.toml",
        &[("[session]\n", "[session]\nname = \"../escape\"\n")],
    );
    let (code, _, err) = check(&path, false);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("escape.toml:5:1: key `session.name`"), "{err}");
    assert!(err.contains("path separator"), "{err}");
    let out = dir.path().join("out");
    let (code, err) = run_briefly(&path, &out);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        !dir.path().join("escape.nwb").exists(),
        "no file outside --output"
    );
    assert!(!out.exists(), "nothing was recorded");
}

#[test]
fn frame_pools_beyond_the_machine_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_variant(
        dir.path(),
        "huge.toml",
        &[
            (
                "fps = 30.0\nneurons = 120",
                "fps = 1000.0\nwidth = 8192\nheight = 8192\nneurons = 120",
            ),
            ("ring_seconds = 4.0", "ring_seconds = 120.0"),
        ],
    );
    let (code, _, err) = check(&path, false);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("key `recording.ring_seconds`: the frame pools need"),
        "{err}"
    );
    assert!(
        err.contains("Miniscope") && err.contains("120028 frames of 64.0 MiB"),
        "{err}"
    );
    let (code, err) = run_briefly(&path, &dir.path().join("out"));
    assert_eq!(code, Some(1), "run must refuse, not abort: {err}");
    assert!(err.contains("the frame pools need"), "{err}");
    assert!(!dir.path().join("out").exists(), "nothing was recorded");
}

#[test]
fn a_rule_nested_100000_deep_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!(
        "{}behavior.explore > 0.5{}",
        "!(".repeat(100_000),
        ")".repeat(100_000)
    );
    let path = demo_variant(
        dir.path(),
        "deep.toml",
        &[(
            "when = \"behavior.wall_rearing > 0.8 && behavior_gru.wall_rearing > 0.8\"",
            &format!("when = \"{deep}\""),
        )],
    );
    let (code, _, err) = check(&path, false);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("key `rule[0].when`: is 300022 bytes long"),
        "{err}"
    );
}

#[test]
fn check_json_gives_located_errors_and_the_rig() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_variant(dir.path(), "demo.toml", &[]);
    let (code, out, err) = check(&path, true);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON on stdout");
    assert_eq!(v["ok"], true);
    assert_eq!(v["errors"].as_array().unwrap().len(), 0);
    assert_eq!(v["streams"][0]["name"], "Miniscope");
    assert_eq!(v["streams"][0]["pixel_format"], "8-bit gray");
    assert_eq!(v["streams"][0]["pool"]["slots"], 148);
    assert_eq!(
        v["models"].as_array().unwrap().len(),
        5,
        "4 models and a signal group"
    );
    assert_eq!(v["rules"][0]["name"], "wall_rearing_stim");
    assert_eq!(v["rules"][0]["pulses"], 5);
    assert_eq!(v["outputs"][0]["name"], "stim");
    assert_eq!(v["outputs"][0]["protocol"], "behavd");
    assert_eq!(v["outputs"][0]["channels"], 2);
    assert_eq!(v["outputs"][0]["limits"]["max_on_ms"], 100.0);
    assert_eq!(v["outputs"][0]["limits"]["refractory_s"], 0.5);
    assert!(v["memory"]["pool_bytes"].as_u64().unwrap() > 0);

    let bad = demo_variant(
        dir.path(),
        "bad.toml",
        &[
            ("output = \"stim\"", "output = \"stmi\""),
            ("neurons = 120", "neurons = 1000000"),
        ],
    );
    let (code, out, _) = check(&bad, true);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON on stdout");
    assert_eq!(v["ok"], false);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "both errors, in file order: {errors:?}");
    assert_eq!(errors[0]["key"], "source[0].neurons");
    assert_eq!(errors[0]["line"], 31);
    assert_eq!(errors[0]["column"], 1);
    assert_eq!(errors[1]["key"], "rule[0].trigger.output");
    assert!(errors[1]["message"].as_str().unwrap().contains("stmi"));
    assert!(errors[0]["file"].as_str().unwrap().ends_with("bad.toml"));
}

#[test]
fn cr_only_line_endings_and_non_utf8_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cr.toml");
    std::fs::write(&path, behavd::config::DEMO_CONFIG.replace('\n', "\r")).unwrap();
    let (code, _, err) = check(&path, false);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("cr.toml:1:") && err.contains("carriage return"),
        "{err}"
    );
    assert!(!err.contains("key `.`"), "{err}");
    let path = dir.path().join("latin1.toml");
    std::fs::write(&path, b"[session]\nlab = \"Universit\xe9\"\n").unwrap();
    let (code, _, err) = check(&path, false);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("latin1.toml:2:17: byte 0xe9 is not UTF-8"),
        "{err}"
    );
}

#[test]
fn a_port_that_does_not_exist_is_a_located_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_variant(
        dir.path(),
        "port.toml",
        &[("port = \"emulated\"", "port = \"/dev/ttyNOPE0\"")],
    );
    let (code, text, err) = check(&path, false);
    assert_eq!(code, Some(0), "a port may be plugged in later: {err}");
    assert!(
        err.contains("warning: ")
            && err.contains("key `output[0].port`")
            && err.contains("/dev/ttyNOPE0 does not exist now"),
        "{err}"
    );
    assert!(
        text.contains("port /dev/ttyNOPE0, behavd protocol"),
        "{text}"
    );
    let (code, out, _) = check(&path, true);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["warnings"][0]["key"], "output[0].port");
    assert!(v["warnings"][0]["line"].as_u64().unwrap() > 1);
}
