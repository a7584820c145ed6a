//! Helpers shared by the integration tests: running the behavd binary and the Python checker.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The behavd binary cargo built for these tests.
pub fn behavd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_behavd"))
}

/// Runs behavd to completion and returns its output, failing the test with stderr on error.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("behavd starts");
    assert!(
        out.status.success(),
        "behavd failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The Python interpreter with h5py, pynwb and nwbinspector (`scripts/setup.sh --test`).
pub fn python() -> PathBuf {
    let path = std::env::var_os("BEHAVD_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        path.exists(),
        "{} not found: run `scripts/test.sh` (or `scripts/setup.sh --test`) to create the test venv",
        path.display()
    );
    path
}

/// Runs `tests/python/check_session.py` on a session file and parses its JSON report.
pub fn check_session(file: &Path, swmr: bool) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_session.py");
    let mut cmd = Command::new(python());
    cmd.arg(script).arg(file);
    if swmr {
        cmd.arg("--swmr");
    }
    let out = cmd.output().expect("python starts");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checker printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The single `.nwb` file in `dir`.
pub fn only_session_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("output dir exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nwb"))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "expected one session file in {}: {files:?}",
        dir.display()
    );
    files.into_iter().next().unwrap()
}

/// The entry of `report.h5py.image_series` named `name`.
pub fn image_series<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["h5py"]["image_series"]
        .as_array()
        .expect("image_series list")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no image series {name} in {report:#}"))
}

/// The entry of `report.h5py.time_series` named `name`.
pub fn time_series<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["h5py"]["time_series"]
        .as_array()
        .expect("time_series list")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no time series {name} in {report:#}"))
}

/// Asserts pynwb read the file, the validator found nothing, and nwbinspector reported no
/// CRITICAL finding and no best-practice violation.
pub fn assert_valid_nwb(report: &serde_json::Value) {
    assert_eq!(
        report["pynwb"]["ok"], true,
        "pynwb read failed: {:#}",
        report["pynwb"]
    );
    assert_eq!(
        report["validator"]["ok"], true,
        "validator crashed: {:#}",
        report["validator"]
    );
    assert_eq!(
        report["validator"]["errors"].as_array().map(Vec::len),
        Some(0),
        "validation errors: {:#}",
        report["validator"]["errors"]
    );
    assert_eq!(
        report["inspector"]["ok"], true,
        "inspector crashed: {:#}",
        report["inspector"]
    );
    let counts = &report["inspector"]["counts"];
    for importance in [
        "CRITICAL",
        "ERROR",
        "PYNWB_VALIDATION",
        "BEST_PRACTICE_VIOLATION",
    ] {
        assert_eq!(
            counts[importance].as_u64().unwrap_or(0),
            0,
            "nwbinspector {importance}: {:#}",
            report["inspector"]["messages"]
        );
    }
}

/// Runs a Python snippet (with the file as `sys.argv[1]`) through the checker's interpreter and
/// parses what it prints as JSON.
fn python_json<T: serde::de::DeserializeOwned>(code: &str, file: &Path) -> T {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Reads the DAQ/camera frame counter column of a series with h5py, through the checker's
/// interpreter.
pub fn read_dataset_u64(file: &Path, dataset: &str) -> Vec<u64> {
    python_json(
        &format!(
            "import h5py, json, sys; f = h5py.File(sys.argv[1], 'r'); print(json.dumps([int(x) for x in f['{dataset}'][:]]))"
        ),
        file,
    )
}

/// Reads a numeric dataset as float64 (NaN preserved as null → NaN) with h5py.
pub fn read_dataset_f64(file: &Path, dataset: &str) -> Vec<f64> {
    let values: Vec<Option<f64>> = python_json(
        &format!(
            "import h5py, json, sys, math; f = h5py.File(sys.argv[1], 'r'); \
             print(json.dumps([None if math.isnan(float(x)) else float(x) for x in f['{dataset}'][()].ravel()]))"
        ),
        file,
    );
    values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect()
}

/// The summary entry of a model or signal group.
pub fn producer<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["closed_loop"]["producers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no producer {name} in {:#}", summary["closed_loop"]))
}

/// The pixels of frame `index` of an image series' `data`, in the camera's order (rows top to
/// bottom; the file stores `[frame, x, y(, channel)]`), with h5py.
pub fn read_frame(file: &Path, dataset: &str, index: usize) -> Vec<u8> {
    python_json(
        &format!(
            "import h5py, json, sys; f = h5py.File(sys.argv[1], 'r'); \
             print(json.dumps(f['{dataset}'][{index}].swapaxes(0, 1).ravel().tolist()))"
        ),
        file,
    )
}
