//! Helpers shared by the integration tests: running the behavd binary and the Python checker.

#![allow(dead_code)]

pub mod daemon;

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
pub fn python_json<T: serde::de::DeserializeOwned>(code: &str, file: &Path) -> T {
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

/// What a command run on a small private tmpfs left: its exit code and output, the names left
/// on the filesystem, and copies of the session files (the tmpfs is gone afterwards).
pub struct SmallFsRun {
    /// Exit code of the command.
    pub code: i32,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// Names left in the filesystem's root (hidden ones too).
    pub listing: Vec<String>,
    /// Copies of the `.nwb` files it held, in `out`.
    pub files: Vec<PathBuf>,
}

/// Runs `behavd ARGS --output <tmpfs>` with a tmpfs of `size` (mount(8) syntax, e.g. `6m`)
/// mounted in a private mount namespace (`unshare --mount`, or a user namespace as well when
/// not root), so a real `ENOSPC` comes from a real filesystem. Files are copied out to `out`
/// before the namespace ends. `None` when this machine cannot make such a mount (no
/// `unshare`, or namespaces forbidden): the caller skips, saying so.
pub fn run_on_small_fs(size: &str, args: &[&str], out: &Path) -> Option<SmallFsRun> {
    const SCRIPT: &str = r#"
        mnt="$1"; out="$2"; size="$3"; shift 3
        mount -t tmpfs -o "size=$size" behavd-test "$mnt" || exit 97
        "$@" --output "$mnt" > "$out/stdout" 2> "$out/stderr"
        echo $? > "$out/code"
        ls -A "$mnt" > "$out/listing"
        for f in "$mnt"/*.nwb; do [ -e "$f" ] && cp "$f" "$out/"; done
        exit 0
    "#;
    let mnt = out.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    for unshare in [
        &["--mount", "--propagation", "private"][..],
        &[
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
        ][..],
    ] {
        let status = Command::new("unshare")
            .args(unshare)
            .args(["sh", "-c", SCRIPT, "sh"])
            .arg(&mnt)
            .arg(out)
            .arg(size)
            .arg(env!("CARGO_BIN_EXE_behavd"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status();
        let Ok(status) = status else {
            return None;
        };
        if status.code() != Some(0) {
            continue;
        }
        let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
        let mut files: Vec<PathBuf> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "nwb"))
            .collect();
        files.sort();
        return Some(SmallFsRun {
            code: read("code").trim().parse().expect("exit code written"),
            stdout: read("stdout"),
            stderr: read("stderr"),
            listing: read("listing").lines().map(str::to_string).collect(),
            files,
        });
    }
    None
}

/// Spawns `cmd` (a `behavd run`) with stderr piped and returns once it logged that recording
/// started (the file exists), with the instant it was seen; stderr keeps being drained so the
/// child never blocks on a full pipe. Panics if the child exits first.
pub fn spawn_until_recording(cmd: &mut Command) -> (std::process::Child, std::time::Instant) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("behavd starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("behavd exited before recording started:\n{seen}"))
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("recording started") {
            break;
        }
    }
    let started = std::time::Instant::now();
    std::thread::spawn(move || for _ in lines {});
    (child, started)
}
