//! The shipped models through behavd against Python onnxruntime (parity ≤ 1e-5 on the same
//! frames), recurrent state (step by step = the unrolled sequence model), two-stage models
//! (encoder → head = the one-piece model), and the errors for a config that does not fit its
//! model or a missing ONNX Runtime.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demo config with absolute model paths and the two-stage pair added, written to `dir`.
fn test_config(dir: &Path) -> PathBuf {
    let models = project().join("models");
    let mut text = behavd::config::DEMO_CONFIG.replace(
        "path = \"../models/",
        &format!("path = \"{}/", models.display()),
    );
    text.push_str(&format!(
        r#"
[[model]]
name = "encoder"
path = "{m}/behavior_gru_encoder.onnx"
source = "BehaviorCam0"
[model.input]
name = "frame"
resize = [160, 120]
mean = [0.5]
std = [0.25]
[model.output]
kind = "vector"
name = "features"

[[model]]
name = "head"
path = "{m}/behavior_gru_head.onnx"
source = "model:encoder"
[model.input]
name = "features"
[[model.state]]
input = "h_in"
output = "h_out"
[model.output]
kind = "classes"
name = "logits"
labels = ["explore", "grooming", "mid_rearing", "wall_rearing"]
"#,
        m = models.display()
    ));
    let path = dir.join("models.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn predict(
    config: &Path,
    model: &str,
    session: &Path,
    frames: usize,
    out: &Path,
) -> serde_json::Value {
    run_ok(
        behavd()
            .args([
                "predict",
                "--model",
                model,
                "--frames",
                &frames.to_string(),
                "--config",
            ])
            .arg(config)
            .arg("--session")
            .arg(session)
            .arg("--out")
            .arg(out),
    );
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

fn parity(
    config: &Path,
    model: &str,
    session: &Path,
    predictions: &Path,
    unrolled: Option<&Path>,
) -> serde_json::Value {
    let mut cmd = std::process::Command::new(python());
    cmd.arg(project().join("tests/python/parity.py"))
        .arg("--config")
        .arg(config)
        .args(["--model", model, "--session"])
        .arg(session)
        .arg("--predictions")
        .arg(predictions);
    if let Some(u) = unrolled {
        cmd.arg("--unrolled").arg(u);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "parity.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn max_diff(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    let flat = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
            .collect()
    };
    let (a, b) = (flat(a), flat(b));
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn shipped_models_match_python_onnxruntime_and_carry_state_like_the_unrolled_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    run_ok(
        behavd()
            .args(["run", "--duration", "3", "--output"])
            .arg(dir.path())
            .arg("--config")
            .arg(&config),
    );
    let session = only_session_file(dir.path());
    const FRAMES: usize = 40;
    for model in [
        "behavior",
        "behavior_gru",
        "pose",
        "neural",
        "encoder",
        "head",
    ] {
        let out = dir.path().join(format!("{model}.json"));
        let predicted = predict(&config, model, &session, FRAMES, &out);
        assert_eq!(predicted["frames"].as_array().unwrap().len(), FRAMES);
        let unrolled = project().join("models/behavior_gru_seq.onnx");
        let report = parity(
            &config,
            model,
            &session,
            &out,
            (model == "behavior_gru").then_some(unrolled.as_path()),
        );
        let raw = report["max_abs_diff_raw"].as_f64().unwrap();
        assert!(
            raw <= 1e-5,
            "{model}: behavd vs onnxruntime raw outputs differ by {raw:e}"
        );
        let values = report["max_abs_diff_values"].as_f64().unwrap();
        let tolerance = if model == "pose" { 1e-3 } else { 1e-5 };
        assert!(
            values <= tolerance,
            "{model}: decoded outputs differ by {values:e}"
        );
        if model == "behavior_gru" {
            let seq = report["max_abs_diff_unrolled"].as_f64().unwrap();
            assert!(
                seq <= 1e-5,
                "step-by-step with carried state vs unrolled sequence: {seq:e}"
            );
        }
    }
    // Two-stage: encoder → head (state carried in the head) equals the one-piece recurrent model.
    let one_piece: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("behavior_gru.json")).unwrap())
            .unwrap();
    let two_stage: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("head.json")).unwrap()).unwrap();
    assert_eq!(two_stage["chain"], serde_json::json!(["encoder", "head"]));
    let d = max_diff(&one_piece["raw"], &two_stage["raw"]);
    assert!(d <= 1e-5, "encoder→head vs behavior_gru: {d:e}");
    // And a recurrent model without its state is a different model: the test can fail.
    let per_frame: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("behavior.json")).unwrap()).unwrap();
    assert!(max_diff(&one_piece["values"], &per_frame["values"]) > 1e-3);
}

fn check_fails_with(config_text: &str, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, config_text).unwrap();
    let out = behavd()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "check must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for e in expected {
        assert!(stderr.contains(e), "`{e}` not in: {stderr}");
    }
}

fn demo_with_absolute_models() -> String {
    behavd::config::DEMO_CONFIG.replace(
        "path = \"../models/",
        &format!("path = \"{}/models/", project().display()),
    )
}

#[test]
fn a_config_that_does_not_fit_its_model_is_a_located_error() {
    let demo = demo_with_absolute_models();
    // Wrong resize: the model wants 160x120.
    let bad = demo.replacen("resize = [160, 120]", "resize = [128, 128]", 1);
    let table_line = bad
        .lines()
        .position(|l| l.trim() == "[model.input]")
        .unwrap()
        + 1;
    check_fails_with(
        &bad,
        &[
            &format!("bad.toml:{table_line}:"),
            "key `model[0].input`",
            "expects shape [1, 1, 120, 160]",
            "[1, 1, 128, 128]",
        ],
    );
    // Wrong label count.
    let bad = demo.replacen(
        "labels = [\"explore\", \"grooming\", \"mid_rearing\", \"wall_rearing\"]",
        "labels = [\"explore\", \"grooming\"]",
        1,
    );
    check_fails_with(
        &bad,
        &[
            "model[0].output",
            "2 labels but output `logits` [1, 4] has 4 values",
        ],
    );
    // Wrong input name.
    let bad = demo.replacen("name = \"frame\"", "name = \"image\"", 1);
    check_fails_with(
        &bad,
        &[
            "model[0].input",
            "no tensor input `image`",
            "its inputs: frame",
        ],
    );
    // A rule on an output that does not exist.
    let bad = demo.replacen("behavior.wall_rearing", "behavior.wall_rear", 1);
    check_fails_with(
        &bad,
        &[
            "rule[0].when",
            "unknown variable `behavior.wall_rear`",
            "did you mean `behavior.wall_rearing`",
        ],
    );
    // A model file that is not there.
    let bad = demo.replacen("behavior_cnn.onnx", "no_such_model.onnx", 1);
    check_fails_with(&bad, &["model[0].path", "no_such_model.onnx not found"]);
}

#[test]
fn a_missing_or_unloadable_onnx_runtime_is_one_clear_message() {
    let demo = demo_with_absolute_models();
    let bad = demo.replacen(
        "[[model]]",
        "[inference]\nonnxruntime = \"/nonexistent/libonnxruntime.so.1.31.1\"\n\n[[model]]",
        1,
    );
    check_fails_with(
        &bad,
        &[
            "/nonexistent/libonnxruntime.so.1.31.1",
            "does not exist",
            "scripts/setup.sh",
        ],
    );
    // A file that is not a shared library.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so.1.31.1");
    std::fs::write(&fake, b"not a library").unwrap();
    let bad = demo.replacen(
        "[[model]]",
        &format!(
            "[inference]\nonnxruntime = \"{}\"\n\n[[model]]",
            fake.display()
        ),
        1,
    );
    check_fails_with(
        &bad,
        &[
            "cannot load ONNX Runtime from",
            "1.31 or newer",
            "scripts/setup.sh",
        ],
    );
}
