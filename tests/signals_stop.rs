//! Stopping and signals at the edges: a stop never waits on a stalled source, SIGHUP stops
//! like SIGTERM, a signal during set-up writes nothing, a second signal aborts leaving a
//! readable file and no stale pty link, and a closed stdout is not a panic.
//!
//! Every test synchronises by polling for a condition (a line on stderr, a file) with a
//! deadline; the time bounds asserted are about hangs (seconds where it took tens of seconds
//! or forever before), not about speed.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::behavd;
use std::os::unix::process::ExitStatusExt;

/// A running behavd whose stderr is collected in the background.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
    /// Reads stderr until the process closes it.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn spawn(args: &[&str], stdout: Stdio) -> Self {
        let mut child = behavd()
            .args(args)
            .env("RUST_LOG", "info,ort=warn")
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("behavd starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Self {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`.
    fn wait_for(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.stderr().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "behavd ended ({status}) before printing `{needle}`:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no `{needle}` on stderr within {limit:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// Waits for the process to end; kills it and fails if it takes longer than `limit`.
    fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let took = start.elapsed();
                // The reader ends at the end of stderr: every line is in by then.
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
                return (status, took);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "behavd still running {limit:?} after the signal:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A small rig without models: one behavior camera at `fps` with `faults`.
fn small_rig(dir: &Path, fps: f64, faults: &str) -> PathBuf {
    let path = dir.join("rig.toml");
    std::fs::write(
        &path,
        format!(
            "[session.subject]\nid = \"m1\"\n\n[[source]]\nkind = \"synthetic-behavior\"\n\
             name = \"Cam\"\nfps = {fps}\nwidth = 64\nheight = 48\n{faults}\n"
        ),
    )
    .unwrap();
    path
}

fn nwb_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "nwb"))
                .collect()
        })
        .unwrap_or_default()
}

fn inspect_json(file: &Path) -> serde_json::Value {
    let out = common::run_ok(behavd().args(["inspect", "--json"]).arg(file));
    serde_json::from_slice(&out.stdout).expect("inspect prints JSON")
}

/// Before: with a source that stalls (0.001 fps: the next frame is due in 1000 s; a 60 s
/// injected stall), the session passed "stopping session" and then waited for the device.
#[test]
fn a_stop_with_stalled_sources_ends_at_once_and_drains_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let config = dir.path().join("stalled.toml");
    std::fs::write(
        &config,
        "[session.subject]\nid = \"m1\"\n\n\
         [[source]]\nkind = \"synthetic-behavior\"\nname = \"Slow\"\nfps = 0.001\nwidth = 64\nheight = 48\n\n\
         [[source]]\nkind = \"synthetic-behavior\"\nname = \"Stalled\"\nfps = 30.0\nwidth = 64\nheight = 48\n\
         faults = { stall = [{ at_frame = 2, ms = 60000 }] }\n",
    )
    .unwrap();
    let mut run = Running::spawn(
        &[
            "run",
            "--json",
            "-c",
            config.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        Stdio::piped(),
    );
    run.wait_for("recording started", Duration::from_secs(30));
    // Both devices are in their stall once the file holds a frame of each: wait for that.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let files = nwb_files(&out);
        let frames = files.first().and_then(|f| {
            let o = behavd().args(["inspect", "--json"]).arg(f).output().ok()?;
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
            let s = v["streams"].as_array()?.clone();
            Some(s.iter().all(|s| s["frames"].as_u64() >= Some(1)) && s.len() == 2)
        });
        if frames == Some(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no frames flushed:\n{}",
            run.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    run.signal(libc::SIGTERM);
    let (status, took) = run.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}:\n{}", run.stderr());
    assert!(took < Duration::from_secs(5), "the stop took {took:?}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut run.child.stdout.take().unwrap(), &mut stdout).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("summary JSON");
    let file = PathBuf::from(summary["path"].as_str().unwrap());
    let report = inspect_json(&file);
    assert_eq!(report["open_for_write"], false, "the file was finalized");
    for stream in summary["streams"].as_array().unwrap() {
        let name = stream["name"].as_str().unwrap();
        let captured = stream["stats"]["captured"].as_u64().unwrap();
        assert!(captured >= 1, "{name} captured nothing");
        assert_eq!(
            stream["frames_in_file"].as_u64(),
            Some(captured),
            "{name} drained"
        );
        assert!(stream["failure"].is_null(), "{stream}");
        let in_file = report["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {report}"));
        assert_eq!(in_file["frames"].as_u64(), Some(captured));
    }
    assert!(
        report["metadata"]["notes"]
            .as_str()
            .unwrap()
            .contains("stopped by signal")
    );
}

/// Before: SIGHUP (an ssh session that drops) killed behavd with the file unclosed.
#[test]
fn sighup_stops_like_sigterm_and_finalizes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let config = small_rig(dir.path(), 30.0, "");
    let mut run = Running::spawn(
        &[
            "run",
            "-c",
            config.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        Stdio::null(),
    );
    run.wait_for("recording started", Duration::from_secs(30));
    run.signal(libc::SIGHUP);
    let (status, _) = run.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status}:\n{}", run.stderr());
    let files = nwb_files(&out);
    assert_eq!(files.len(), 1);
    let report = inspect_json(&files[0]);
    assert_eq!(report["open_for_write"], false, "the file was finalized");
    assert!(
        report["metadata"]["notes"]
            .as_str()
            .unwrap()
            .contains("stopped by signal")
    );
}

/// The demo rig with every model warmed up `runs` times (a set-up of many seconds).
fn slow_warm_up_rig(dir: &Path, runs: u32) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = std::fs::read_to_string(root.join("config/demo.toml")).unwrap();
    let models = root.join("models");
    let text = demo
        .lines()
        .map(|line| match line.strip_prefix("path = \"../models/") {
            Some(rest) => format!("path = \"{}/{rest}\nwarmup_runs = {runs}", models.display()),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains(&format!("warmup_runs = {runs}")));
    let path = dir.join("warm.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Before: SIGTERM during a long warm-up was acted on only after it, and then a session
/// file with nothing in it was written.
#[test]
fn a_signal_during_warm_up_stops_at_once_and_writes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let config = slow_warm_up_rig(dir.path(), 5000);
    let mut run = Running::spawn(
        &[
            "run",
            "-c",
            config.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        Stdio::null(),
    );
    run.wait_for("warming up", Duration::from_secs(30));
    run.signal(libc::SIGTERM);
    let (status, took) = run.wait_exit(Duration::from_secs(60));
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(130), "{status}:\n{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}:\n{stderr}");
    assert!(
        stderr.contains("no session file was written"),
        "says what was written:\n{stderr}"
    );
    assert!(!stderr.contains("recording started path="), "{stderr}");
    assert!(nwb_files(&out).is_empty(), "{:?}", nwb_files(&out));
}

/// Before: the abort left `/tmp/behavd-<pid>-stim.tty` behind.
#[test]
fn a_second_signal_aborts_leaving_a_readable_file_and_no_pty_link() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut run = Running::spawn(&["run", "-o", out.to_str().unwrap()], Stdio::null());
    let link = std::env::temp_dir().join(format!("behavd-{}-stim.tty", run.child.id()));
    run.wait_for("recording started", Duration::from_secs(60));
    assert!(
        std::fs::symlink_metadata(&link).is_ok(),
        "the demo's emulated stimulator is at {}",
        link.display()
    );
    // Wait for a flush that put frames in the file (read live, in SWMR mode).
    let deadline = Instant::now() + Duration::from_secs(30);
    let file = loop {
        let flushed = nwb_files(&out).into_iter().next().filter(|f| {
            behavd()
                .args(["inspect", "--json"])
                .arg(f)
                .output()
                .ok()
                .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
                .is_some_and(|v| v["streams"][0]["frames"].as_u64() > Some(0))
        });
        if let Some(f) = flushed {
            break f;
        }
        assert!(Instant::now() < deadline, "no flush:\n{}", run.stderr());
        std::thread::sleep(Duration::from_millis(100));
    };
    // Two different signals, so that they cannot merge into one pending signal.
    run.signal(libc::SIGTERM);
    run.signal(libc::SIGINT);
    let (status, _) = run.wait_exit(Duration::from_secs(20));
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(130), "{status}:\n{stderr}");
    assert!(stderr.contains("second signal: aborting"), "{stderr}");
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "stale {} left",
        link.display()
    );
    let h5py = std::process::Command::new(common::python())
        .arg("-c")
        .arg(
            "import h5py, sys\n\
             f = h5py.File(sys.argv[1], 'r', libver='latest', swmr=True)\n\
             print(min(len(f['acquisition'][n]['data']) for n in ('Miniscope', 'BehaviorCam0')))",
        )
        .arg(&file)
        .output()
        .expect("python starts");
    assert!(
        h5py.status.success(),
        "h5py cannot open the aborted file: {}",
        String::from_utf8_lossy(&h5py.stderr)
    );
    let frames: u64 = String::from_utf8_lossy(&h5py.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(frames > 0, "the flushed frames are in the file");
}

/// A pipe whose reading end is already closed.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

/// Before: `behavd run … | true` and `behavd inspect --json F | head` panicked on the write
/// (exit 101, a backtrace). Now behavd ends like `cat`: killed by SIGPIPE, silently; `run`
/// only after the file is finalized.
#[test]
fn a_closed_stdout_ends_quietly_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let config = small_rig(dir.path(), 30.0, "");
    for json in [false, true] {
        let mut args = vec![
            "run",
            "-c",
            config.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--duration",
            "0.3",
        ];
        if json {
            args.push("--json");
        }
        let mut run = Running::spawn(&args, closed_pipe());
        let (status, _) = run.wait_exit(Duration::from_secs(30));
        let stderr = run.stderr();
        assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status}:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let files = nwb_files(&out);
    assert_eq!(files.len(), 2);
    for f in &files {
        assert_eq!(inspect_json(f)["open_for_write"], false, "finalized first");
    }
    for args in [vec!["inspect", "--json"], vec!["inspect"]] {
        let mut cmd = behavd();
        cmd.args(&args).arg(&files[0]).stdout(closed_pipe());
        let o = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.signal(), Some(libc::SIGPIPE), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: quiet, got {stderr}");
    }
}

/// Before: a signal while a silent stimulator output was given its `startup_wait_s` was acted
/// on only when the wait ran out.
#[test]
fn a_signal_while_waiting_for_a_silent_stimulator_stops_at_once_and_writes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let link = dir.path().join("silent.tty");
    let _silent = behavd::stim::test_rig::HeldDevice::start(Some(&link)).unwrap();
    let config = dir.path().join("rig.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[source]]
kind = "synthetic-miniscope"
name = "Miniscope"
width = 96
height = 96
neurons = 10
fps = 30.0

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
pulse_width_ms = 2.0

[[output]]
name = "stim"
port = "{}"
startup_wait_s = 120
"#,
            link.display()
        ),
    )
    .unwrap();
    let mut run = Running::spawn(
        &[
            "run",
            "-c",
            config.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        Stdio::null(),
    );
    run.wait_for(
        "waiting for the stimulator outputs to connect",
        Duration::from_secs(30),
    );
    run.signal(libc::SIGTERM);
    let (status, took) = run.wait_exit(Duration::from_secs(60));
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(130), "{status}:\n{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}:\n{stderr}");
    assert!(stderr.contains("no session file was written"), "{stderr}");
    assert!(nwb_files(&out).is_empty(), "{:?}", nwb_files(&out));
}
