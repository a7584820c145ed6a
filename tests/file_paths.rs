//! Paths that are not regular files (a FIFO, a directory, a device) given as a config, model
//! or session file get a clear error and never a hang; an HDF5 file that behavd did not write
//! is not reported as an empty session.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::behavd;

/// Runs `cmd` to its end (killing it and failing after 20 s: a hang); returns (exit code,
/// stderr).
fn run_bounded(cmd: &mut Command) -> (Option<i32>, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("behavd starts");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            return (status.code(), stderr);
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn assert_fails_with(cmd: &mut Command, words: &[&str]) {
    let (code, stderr) = run_bounded(cmd);
    assert!(
        code.is_some_and(|c| c != 0),
        "{cmd:?}: exit {code:?}\n{stderr}"
    );
    for w in words {
        assert!(stderr.contains(w), "{cmd:?}: no `{w}` in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The demo config with model paths made absolute and `model_path` for the first model.
fn rig_with_model(dir: &Path, model_path: Option<&Path>) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = std::fs::read_to_string(root.join("config/demo.toml")).unwrap();
    let mut first = true;
    let text = demo
        .lines()
        .map(|line| match line.strip_prefix("path = \"../models/") {
            Some(rest) => {
                let path = match (first, model_path) {
                    (true, Some(p)) => p.display().to_string(),
                    _ => format!(
                        "{}/{}",
                        root.join("models").display(),
                        rest.trim_end_matches('"')
                    ),
                };
                first = false;
                format!("path = \"{path}\"")
            }
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join(format!("rig{}.toml", model_path.is_some() as u8));
    std::fs::write(&path, text).unwrap();
    path
}

/// Before: a FIFO as a config or session path hung `run`, `check`, `inspect` and `predict`.
#[test]
fn fifos_and_devices_as_config_or_session_paths_are_errors_not_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.nwb");
    mkfifo(&fifo);
    let fifo_s = fifo.to_str().unwrap();
    for sub in ["run", "check"] {
        assert_fails_with(
            behavd().args([sub, "-c", fifo_s]),
            &[fifo_s, "is a FIFO (named pipe), not a regular file"],
        );
        assert_fails_with(
            behavd().args([sub, "-c", "/dev/null"]),
            &["/dev/null", "is a character device"],
        );
    }
    assert_fails_with(
        behavd().args(["inspect", fifo_s]),
        &["session file", fifo_s, "is a FIFO"],
    );
    assert_fails_with(
        behavd().args(["inspect", dir.path().to_str().unwrap()]),
        &["is a directory, not a regular file"],
    );
    let rig = rig_with_model(dir.path(), None);
    assert_fails_with(
        behavd().args([
            "predict",
            "-c",
            rig.to_str().unwrap(),
            "-m",
            "behavior",
            "-s",
            fifo_s,
        ]),
        &["session file", fifo_s, "is a FIFO"],
    );
}

/// Before: a directory as a model path was reported as "not found", a FIFO likewise.
#[test]
fn a_directory_or_fifo_as_model_path_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("model_dir.onnx");
    std::fs::create_dir(&models).unwrap();
    let rig = rig_with_model(dir.path(), Some(&models));
    assert_fails_with(
        behavd().args(["check", "-c", rig.to_str().unwrap()]),
        &["model[0].path", "is a directory, not a regular file"],
    );
    std::fs::remove_dir(&models).unwrap();
    mkfifo(&models);
    assert_fails_with(
        behavd().args(["check", "-c", rig.to_str().unwrap()]),
        &["model[0].path", "is a FIFO"],
    );
}

/// Before: `inspect` of an HDF5 file that behavd did not write exited 0, showing no streams.
#[test]
fn inspect_of_an_hdf5_file_behavd_did_not_write_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.h5");
    {
        let file = hdf5::File::create(&path).unwrap();
        let acquisition = file.create_group("acquisition").unwrap();
        acquisition
            .new_dataset::<f64>()
            .shape(4)
            .create("data")
            .unwrap();
    }
    assert_fails_with(
        behavd().arg("inspect").arg(&path),
        &["not a behavd session file", "acquisition"],
    );
}
