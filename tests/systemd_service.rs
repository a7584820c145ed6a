//! The shipped unit under a real systemd: the machine's own systemd booted as PID 1 of a
//! container (`systemd-nspawn --volatile=yes`: an empty tmpfs root, `/usr` from the host, no
//! image, no network). Inside, a oneshot probe unit installs behavd with
//! `scripts/install-service.sh` (the repository bound read-only, `/usr/local` a tmpfs), then
//! drives the service with `systemctl`, `journalctl` and `behavd ctl`, writing what it saw to a
//! directory bound from the host. The host then checks:
//!
//! - `systemd-analyze verify` passes; the service reaches READY (`ActiveState=active`) and
//!   `systemctl status` shows the `STATUS=` line; `systemd-analyze security` scores the unit;
//! - `systemctl stop` during a session finalizes the file (h5py opens it without SWMR, as only
//!   a closed file opens);
//! - a wedged data-plane thread (`BEHAVD_FAULT_WEDGE=rules` in a drop-in) stops the watchdog
//!   pings, systemd kills and restarts the service (`NRestarts=1`), and the file the killed
//!   process left behind is readable (h5py, SWMR) with its frames;
//! - `journalctl -o json` holds behavd's structured fields as journal fields.
//!
//! Needs root, `systemd-nspawn` (Debian package `systemd-container`) and a systemd in `/usr`;
//! where the container cannot boot the test says why on stderr (`SKIPPED:`) and passes.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;

/// The whole boot → probe → poweroff must end within this (seconds).
const BOOT_TIMEOUT_S: u32 = 150;

/// A small rig: one synthetic Miniscope, one ONNX model (ONNX Runtime under the unit's
/// sandbox), a rule whose thread the wedge test stops, the emulated stimulator on a pty.
const RIG: &str = r#"
[session]
description = "systemd service test rig"

[session.subject]
id = "svc001"

[[source]]
kind = "synthetic-miniscope"
name = "Miniscope"
width = 152
height = 152
neurons = 10
fps = 15.0
seed = 3

[recording]
output_dir = "/var/lib/behavd/sessions"
flush_interval_s = 0.5

[daemon]
# A wedged thread counts after 2 s of silence (default 5): the restart cycle stays short.
thread_deadline_s = 2.0

[[model]]
name = "neural"
path = "/usr/local/share/behavd/models/miniscope_cnn.onnx"
source = "Miniscope"
[model.input]
name = "frames"
frames = 4
stack = "channel"
[model.output]
kind = "classes"
name = "logits"
labels = ["explore", "grooming", "mid_rearing", "wall_rearing"]

[[rule]]
name = "wall"
when = "neural.wall_rearing > 0.99"
refractory_s = 2.0
[rule.trigger]
output = "stim"
channel = 0
pulse_width_ms = 10.0

[[output]]
name = "stim"
port = "emulated"
[output.limits]
max_on_ms = 100.0
"#;

/// The test's drop-in: a short watchdog so the restart cycle takes seconds.
const TEST_DROP_IN: &str = "[Service]\nWatchdogSec=2s\nEnvironment=RUST_LOG=info\n";

/// The probe: runs inside the guest as a oneshot unit, writes `key=value` lines to
/// /out/result.env and the raw outputs next to it, and powers the guest off.
const PROBE: &str = r#"#!/bin/bash
exec >/out/probe.log 2>&1
set -x
r() { echo "$1=$2" >>/out/result.env; }
# wait_for SECONDS COMMAND...: polls COMMAND until it succeeds or the deadline passes.
wait_for() {
  { set +x; } 2>/dev/null
  local until=$((SECONDS + $1)) rc=0; shift
  until "$@"; do
    [ "$SECONDS" -ge "$until" ] && { rc=1; break; }
    sleep 0.2
  done
  set -x
  return $rc
}
show() { systemctl show -p "$1" --value behavd.service; }
restarted() { [ "$(show NRestarts)" -ge 1 ]; }
# Frames the running session has recorded so far, from `behavd ctl status --json`.
recorded() {
  behavd ctl status --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
engine = json.load(sys.stdin).get("engine") or {}
counts = [(s.get("session") or s).get("recorded") or 0 for s in engine.get("streams", [])]
print(max(counts or [0]))'
}
has_recorded() { [ "$(recorded)" -ge "$1" ]; }

/src/scripts/install-service.sh --binary /opt/behavd-bin/behavd --onnxruntime /opt/behavd-ort \
  --rig /opt/behavd-test/rig.toml
r install $?
systemd-analyze verify /usr/local/lib/systemd/system/behavd.service >/out/verify.txt 2>&1
r verify $?
r active1 "$(show ActiveState)"
show StatusText >/out/status_text.txt
systemctl status --no-pager --lines=0 behavd.service >/out/systemctl_status.txt 2>&1
systemd-analyze security --no-pager behavd.service >/out/security.txt 2>&1

# 1. A session stopped by `systemctl stop`.
behavd ctl start --subject m042 --json >/out/start1.json
r start1 $?
wait_for 30 has_recorded 20
r frames1 $?
systemctl stop behavd.service
r stop1 $?
r result1 "$(show Result)"
r active_after_stop "$(show ActiveState)"

# 2. A wedged rules thread: the watchdog stops pinging, systemd restarts behavd.
cat >/etc/systemd/system/behavd.service.d/wedge.conf <<'EOF'
[Service]
Environment=BEHAVD_FAULT_WEDGE=rules BEHAVD_FAULT_WEDGE_AFTER_S=3
EOF
systemctl daemon-reload
systemctl start behavd.service
r start_wedged $?
behavd ctl start --subject m043 --json >/out/start2.json
r start2 $?
wait_for 40 restarted
r restarted $?
wait_for 30 systemctl is-active -q behavd.service
r nrestarts "$(show NRestarts)"
systemctl stop behavd.service
journalctl -u behavd.service --no-pager -o json >/out/journal.json
journalctl -u behavd.service --no-pager >/out/journal.txt
r done 1
systemctl poweroff
"#;

const PROBE_UNIT: &str = "[Unit]\nDescription=behavd systemd test probe\nAfter=multi-user.target\n\
[Service]\nType=oneshot\nExecStart=/opt/behavd-test/probe.sh\nStandardOutput=journal+console\n";

/// Why the container cannot be booted here, if it cannot.
fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("systemd-nspawn needs root".into());
    }
    for tool in ["systemd-nspawn", "timeout"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "{tool} not found (Debian package systemd-container; scripts/setup.sh --test)"
            ));
        }
    }
    if !Path::new("/usr/lib/systemd/systemd").exists() {
        return Some("no systemd in /usr/lib/systemd".into());
    }
    None
}

/// Boots the guest with `binds` (`--bind…` arguments) and the probe unit `probe` (a path in
/// the guest), returning nspawn's exit status and console output.
fn boot(binds: &[String], probe_unit: &Path) -> (bool, String) {
    // A machine name of its own: guests of tests running in parallel must not share one.
    static BOOTS: AtomicUsize = AtomicUsize::new(0);
    let machine = format!(
        "behavd-test-{}-{}",
        std::process::id(),
        BOOTS.fetch_add(1, Ordering::Relaxed)
    );
    let mut cmd = Command::new("timeout");
    cmd.arg(BOOT_TIMEOUT_S.to_string())
        .args([
            "systemd-nspawn",
            &format!("--machine={machine}"),
            "--register=no",
            "--keep-unit",
            "--directory=/",
            "--volatile=yes",
            "-q",
            "-b",
            "--console=pipe",
        ])
        .args(binds)
        .arg(format!(
            "--bind-ro={}:/etc/systemd/system/behavd-probe.service",
            probe_unit.display()
        ))
        .arg("systemd.wants=behavd-probe.service");
    let out = cmd.output().expect("timeout and systemd-nspawn run");
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), console)
}

/// Why no container boots here, found by booting one with a trivial probe (half a second).
fn cannot_boot(app: &Path, out: &Path) -> Option<String> {
    if let Some(why) = unavailable() {
        return Some(why);
    }
    std::fs::write(
        app.join("preflight.service"),
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo booted >/out/preflight; systemctl poweroff'\n",
    )
    .unwrap();
    let (_, console) = boot(
        &[format!("--bind={}:/out", out.display())],
        &app.join("preflight.service"),
    );
    (read(out, "preflight").trim() != "booted")
        .then(|| format!("systemd-nspawn cannot boot a container here:\n{console}"))
}

fn results(out: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(out.join("result.env"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn read(out: &Path, name: &str) -> String {
    std::fs::read_to_string(out.join(name)).unwrap_or_default()
}

/// The host path of a session file the guest named under /var/lib/behavd.
fn on_host(state: &Path, start_json: &str) -> PathBuf {
    let v: serde_json::Value = serde_json::from_str(start_json)
        .unwrap_or_else(|e| panic!("`behavd ctl start --json` printed {start_json:?}: {e}"));
    let guest = v["path"].as_str().expect("the start answer names the file");
    state.join(
        Path::new(guest)
            .strip_prefix("/var/lib/behavd")
            .expect("the session is under the StateDirectory"),
    )
}

/// Frames of the Miniscope series, opened as a closed file (`swmr` false) or as a crashed
/// writer's file must be read (`swmr` true).
fn frames(file: &Path, swmr: bool) -> serde_json::Value {
    let open = if swmr {
        r#"h5py.File(sys.argv[1], "r", libver="latest", swmr=True)"#
    } else {
        r#"h5py.File(sys.argv[1], "r")"#
    };
    let code = format!(
        r#"
import h5py, json, sys
with {open} as f:
    print(json.dumps({{
        "frames": f["acquisition/Miniscope/data"].shape[0],
        "timestamps": f["acquisition/Miniscope/timestamps"].shape[0],
        "notes": f["general/notes"][()].decode() if "general/notes" in f else "",
    }}))
"#
    );
    python_json(&code, file)
}

/// The udev rules as udevd reads them: `udevadm test` in a guest with the rules installed
/// reads the file and reports no invalid line (a USB device to match is not there: the rules
/// stop at `SUBSYSTEMS!="usb"` for the tty it is run on).
#[test]
fn the_udev_rules_parse() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, out) = (tmp.path().join("app"), tmp.path().join("out"));
    std::fs::create_dir(&app).unwrap();
    std::fs::create_dir(&out).unwrap();
    if let Some(why) = cannot_boot(&app, &out) {
        eprintln!("SKIPPED: {why}");
        return;
    }
    if !Path::new("/usr/bin/udevadm").exists() {
        eprintln!("SKIPPED: udevadm not found (Debian package udev; scripts/setup.sh --test)");
        return;
    }
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/udev/70-behavd.rules");
    std::fs::write(
        app.join("udev-probe.service"),
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'udevadm test --action=add /sys/class/tty/tty \
         >/out/udev.txt 2>&1; echo $? >/out/udev.rc; systemctl poweroff'\n",
    )
    .unwrap();
    let binds = [
        format!("--bind={}:/out", out.display()),
        format!(
            "--bind-ro={}:/etc/udev/rules.d/70-behavd.rules",
            rules.display()
        ),
    ];
    let (_, console) = boot(&binds, &app.join("udev-probe.service"));
    let log = read(&out, "udev.txt");
    assert_eq!(read(&out, "udev.rc").trim(), "0", "{log}\n{console}");
    assert!(
        log.contains("Reading rules file: /etc/udev/rules.d/70-behavd.rules"),
        "udevadm read the rules:\n{log}"
    );
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("70-behavd.rules:"))
        .collect();
    assert!(complaints.is_empty(), "udevadm: {complaints:#?}");
}

#[test]
fn the_unit_under_a_real_systemd_notifies_stops_cleanly_restarts_on_a_wedge_and_logs_fields() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ort = repo
        .join(".behavd/onnxruntime/lib")
        .canonicalize()
        .expect("the ONNX Runtime library (scripts/setup.sh) in .behavd/onnxruntime/lib");
    let tmp = tempfile::tempdir().unwrap();
    let (app, out, state) = (
        tmp.path().join("app"),
        tmp.path().join("out"),
        tmp.path().join("state"),
    );
    for d in [&app, &out, &state] {
        std::fs::create_dir(d).unwrap();
    }

    if let Some(why) = cannot_boot(&app, &out) {
        eprintln!("SKIPPED: {why}");
        return;
    }

    std::fs::write(app.join("rig.toml"), RIG).unwrap();
    std::fs::write(app.join("test.conf"), TEST_DROP_IN).unwrap();
    std::fs::write(app.join("probe.sh"), PROBE).unwrap();
    std::fs::write(app.join("probe.service"), PROBE_UNIT).unwrap();
    let chmod = Command::new("chmod")
        .arg("755")
        .arg(app.join("probe.sh"))
        .status()
        .unwrap();
    assert!(chmod.success());
    let binds = [
        format!("--bind={}:/out", out.display()),
        format!("--bind={}:/var/lib/behavd", state.display()),
        format!("--bind-ro={}:/src", repo.display()),
        "--tmpfs=/usr/local".to_owned(),
        format!("--bind-ro={}:/opt/behavd-test", app.display()),
        format!(
            "--bind-ro={}:/opt/behavd-bin/behavd",
            env!("CARGO_BIN_EXE_behavd")
        ),
        format!("--bind-ro={}:/opt/behavd-ort", ort.display()),
        format!(
            "--bind-ro={}:/etc/systemd/system/behavd.service.d/test.conf",
            app.join("test.conf").display()
        ),
    ];
    let (exited, console) = boot(&binds, &app.join("probe.service"));
    let r = results(&out);
    let context = format!(
        "nspawn exited ok: {exited}\nresults: {r:?}\n--- probe log:\n{}\n--- journal:\n{}\n--- console:\n{console}",
        read(&out, "probe.log"),
        read(&out, "journal.txt")
    );
    let get = |k: &str| r.get(k).map(String::as_str).unwrap_or("<missing>");
    assert_eq!(get("done"), "1", "the probe ran to its end\n{context}");

    // Installed, verified, READY with a status line.
    assert_eq!(get("install"), "0", "install-service.sh\n{context}");
    assert_eq!(
        get("verify"),
        "0",
        "systemd-analyze verify: {}",
        read(&out, "verify.txt")
    );
    assert_eq!(get("active1"), "active", "READY reached\n{context}");
    let status_text = read(&out, "status_text.txt").trim().to_owned();
    assert!(!status_text.is_empty(), "a STATUS= line\n{context}");
    eprintln!("StatusText: {status_text}");
    let systemctl_status = read(&out, "systemctl_status.txt");
    assert!(
        systemctl_status.contains(&format!("Status: \"{status_text}\"")),
        "systemctl status shows the STATUS line {status_text:?}:\n{systemctl_status}"
    );
    let security = read(&out, "security.txt");
    let score: f64 = security
        .lines()
        .find_map(|l| l.split("behavd.service: ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an exposure score in:\n{security}"));
    eprintln!("systemd-analyze security behavd.service: exposure {score}");
    assert!(
        score <= 2.5,
        "the unit is hardened: exposure {score}\n{security}"
    );

    // 1. `systemctl stop` finalized the running session.
    assert_eq!(get("start1"), "0", "ctl start\n{context}");
    assert_eq!(get("frames1"), "0", "frames were recorded\n{context}");
    assert_eq!(get("stop1"), "0", "systemctl stop\n{context}");
    assert_eq!(get("result1"), "success", "a clean stop\n{context}");
    assert_eq!(get("active_after_stop"), "inactive", "{context}");
    let first = on_host(&state, &read(&out, "start1.json"));
    let closed = frames(&first, false);
    assert!(
        closed["frames"].as_u64().unwrap() >= 20,
        "every frame recorded before the stop is in {}: {closed}",
        first.display()
    );
    assert_eq!(closed["frames"], closed["timestamps"], "{closed}");

    // 2. The wedged rules thread: one watchdog restart, the interrupted file readable.
    assert_eq!(get("start_wedged"), "0", "{context}");
    assert_eq!(get("start2"), "0", "ctl start (wedge run)\n{context}");
    assert_eq!(get("restarted"), "0", "systemd restarted behavd\n{context}");
    assert_eq!(get("nrestarts"), "1", "{context}");
    let journal_text = read(&out, "journal.txt");
    assert!(
        journal_text.contains("Watchdog timeout"),
        "systemd's watchdog fired:\n{journal_text}"
    );
    let second = on_host(&state, &read(&out, "start2.json"));
    let interrupted = frames(&second, true);
    assert!(
        interrupted["frames"].as_u64().unwrap() > 0,
        "the interrupted file {} keeps its flushed frames: {interrupted}",
        second.display()
    );

    // Structured fields in the journal (native protocol, not text lines).
    let entries: Vec<serde_json::Value> = read(&out, "journal.json")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let from_behavd: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["SYSLOG_IDENTIFIER"] == "behavd")
        .collect();
    assert!(!from_behavd.is_empty(), "behavd's entries:\n{journal_text}");
    // The watchdog's error names the wedged thread in a field of its own.
    let watchdog = from_behavd.iter().find(|e| {
        e["THREAD"] == "rules"
            && e["PRIORITY"] == "3"
            && e["TARGET"] == "behavd::daemon::watchdog"
            && e["MESSAGE"]
                .as_str()
                .is_some_and(|m| m.contains("no progress"))
    });
    assert!(
        watchdog.is_some(),
        "the watchdog's error with THREAD=rules:\n{journal_text}"
    );
    let start1: serde_json::Value = serde_json::from_str(&read(&out, "start1.json")).unwrap();
    let session = start1["name"]
        .as_str()
        .expect("the start answer names the session");
    assert!(
        from_behavd.iter().any(|e| e["SESSION"] == session),
        "an entry with SESSION={session}:\n{journal_text}"
    );
    assert!(
        from_behavd.iter().any(|e| e["OUTPUT"] == "stim"),
        "an entry with OUTPUT=stim:\n{journal_text}"
    );
}
