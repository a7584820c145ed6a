//! `behavd run` with a stimulator output that is not there: a missing port, an empty one,
//! `/dev/null`, a regular file, or a device that never answers HELLO. A required output fails
//! the session (exit code 1) with the output, the port and why, and no session file is left; an
//! optional one warns at the start, is recorded as an outage from the session start and makes
//! the run degraded (exit code 3). A connected output's firmware is in the file's devices.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use behavd::stim::firmata_board::FirmataBoard;
use behavd::stim::test_rig::HeldDevice;
use common::*;

/// A small closed loop without models: one ROI signal of a 96×96 synthetic Miniscope and a rule
/// that fires on every frame it may (refractory 0.3 s) to output `stim` at `port`.
fn config(port: &str, extra: &str) -> String {
    format!(
        r#"
[session]
description = "stimulator startup test"

[[source]]
kind = "synthetic-miniscope"
name = "Miniscope"
width = 96
height = 96
neurons = 10
fps = 30.0

[recording]
flush_interval_s = 0.5

[[signal]]
name = "sig"
source = "Miniscope"
roi = [{{ name = "c0", x = 48.0, y = 48.0, radius = 4.0 }}]

[[rule]]
name = "always"
when = "sig.c0 < 1000000.0"
refractory_s = 0.3
[rule.trigger]
output = "stim"
channel = 0
pulse_width_ms = 2.0

[[output]]
name = "stim"
port = "{port}"
startup_wait_s = 0.5
{extra}
"#
    )
}

fn run(dir: &Path, config_text: &str, duration: &str) -> Output {
    let path = dir.join("stim.toml");
    std::fs::write(&path, config_text).unwrap();
    behavd()
        .args(["run", "--json", "--duration", duration, "--config"])
        .arg(&path)
        .arg("--output")
        .arg(dir.join("out"))
        .output()
        .expect("behavd starts")
}

fn nwb_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "nwb"))
                .count()
        })
        .unwrap_or(0)
}

/// Every way of not being there fails the session with a located, worded error.
#[test]
fn a_required_output_that_never_connects_fails_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let regular = dir.path().join("not-a-port.txt");
    std::fs::write(&regular, "hello").unwrap();
    let silent_link = dir.path().join("silent.tty");
    let _silent = HeldDevice::start(Some(&silent_link)).unwrap();
    let silent_board_link = dir.path().join("silent-board.tty");
    let _silent_board = FirmataBoard::start_held(Some(&silent_board_link)).unwrap();
    let firmata = "protocol = \"firmata\"\npins = [9]";
    let regular = regular.display().to_string();
    let cases = [
        ("/dev/ttyNOPE0".to_string(), "", "no such port"),
        (String::new(), "", "the port is empty"),
        ("/dev/null".to_string(), "", "not a serial port"),
        (regular, "", "a regular file, not a serial port"),
        ("/dev/ttyNOPE0".to_string(), firmata, "no such port"),
        (silent_link.display().to_string(), "", "has not answered"),
        (
            silent_board_link.display().to_string(),
            firmata,
            "has not answered",
        ),
    ];
    for (port, extra, why) in cases {
        let out = run(dir.path(), &config(&port, extra), "3");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "port `{port}`: {stderr}");
        assert!(
            stderr.contains(&format!(
                "output `stim` (port {port}) did not connect within 0.5 s"
            )),
            "port `{port}`: {stderr}"
        );
        assert!(
            stderr.contains(why),
            "port `{port}`: `{why}` not in {stderr}"
        );
        assert_eq!(nwb_files(&dir.path().join("out")), 0, "no session file");
    }
}

fn h5_attr(file: &Path, object: &str, attr: &str) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(format!(
            "import h5py, sys; f = h5py.File(sys.argv[1], 'r'); v = f['{object}'].attrs['{attr}']; \
             print(v.decode() if isinstance(v, bytes) else v)"
        ))
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An optional output that is not there: a WARN at the start, triggers recorded as link down,
/// one outage row from the session start to its end (never reconnected), the run degraded in
/// the summary and the exit code.
#[test]
fn an_optional_output_that_never_connects_degrades_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &config("/dev/ttyNOPE0", "optional = true"), "3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "degraded: {stderr}");
    assert!(
        stderr.contains("WARN") && stderr.contains("it is optional"),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    let degraded = summary["closed_loop"]["degraded"]
        .as_str()
        .unwrap_or_default();
    assert!(
        degraded.contains("output `stim` was not connected at the session start"),
        "{summary:#}"
    );
    let file = only_session_file(&dir.path().join("out"));
    let start = read_dataset_f64(&file, "intervals/StimulatorOutages/start_time");
    let stop = read_dataset_f64(&file, "intervals/StimulatorOutages/stop_time");
    let back = read_dataset_u64(&file, "intervals/StimulatorOutages/reconnected");
    assert_eq!((start.len(), back.as_slice()), (1, &[0u64][..]));
    assert_eq!(start[0], 0.0, "down from the session start");
    assert!(stop[0] >= 3.0, "down to the end: {stop:?}");
    let status = read_dataset_u64(&file, "intervals/StimulusTriggers/status");
    assert!(!status.is_empty(), "the rule fired");
    assert!(status.iter().all(|&s| s == 5), "link down: {status:?}");
    let device = h5_attr(&file, "general/devices/Stimulator_stim", "description");
    assert!(device.contains("not connected"), "{device}");
}

/// A connected output: the run is not degraded and the stimulator's firmware (from its
/// CAPABILITIES) is in the file's devices; the refusal reasons are spelled out in the
/// StimulatorEvents description.
#[test]
fn a_connected_output_stores_its_firmware_in_the_devices() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &config("emulated", ""), "2");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = only_session_file(&dir.path().join("out"));
    let device = h5_attr(&file, "general/devices/Stimulator_stim", "description");
    assert!(
        device.contains("firmware 1.0.0") && device.contains("board \"emulator\""),
        "{device}"
    );
    let kinds = h5_attr(&file, "acquisition/StimulatorEvents/kind", "description");
    assert!(kinds.contains("6=duty-cycle cap"), "{kinds}");
    let status = h5_attr(&file, "intervals/StimulusTriggers/status", "description");
    assert!(status.contains("7=stale"), "{status}");
}
