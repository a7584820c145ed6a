//! A real `behavd serve` process for the API tests: started from the built binary on a
//! temporary socket and output directory, waited for by condition (its socket answering, a line
//! on stderr), stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use behavd::daemon::client::{Answer, Client, Endpoint};
use hyper::Method;
use serde_json::Value;

/// A small closed loop without models: a 96×96 synthetic Miniscope, one ROI signal, and a rule
/// that is active on every other frame (its release holds at once), so it triggers the output
/// about every 0.33 s (its refractory period). `output` is the `[[output]]` body after `name`.
pub fn rig(output: &str, extra: &str) -> String {
    format!(
        r#"
[session]
description = "daemon API test"

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
release = "sig.c0 < 1000000.0"
refractory_s = 0.3
[rule.trigger]
output = "stim"
channel = 0
pulse_width_ms = 2.0

[[output]]
name = "stim"
{output}
{extra}
"#
    )
}

/// The rig with behavd's emulated stimulator.
pub fn emulated_rig() -> String {
    rig("port = \"emulated\"\nstartup_wait_s = 5.0", "")
}

/// Waits until `check` gives a value, polling every 20 ms, panicking with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running daemon.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// Its temporary directory (config, socket, output).
    pub dir: tempfile::TempDir,
    /// Its socket.
    pub socket: PathBuf,
    /// Its output directory.
    pub output: PathBuf,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `behavd serve` on `rig` (a config text) with `args`, and waits until its socket
    /// answers.
    pub fn start(rig: &str, args: &[&str]) -> Daemon {
        let daemon = Self::spawn(rig, args);
        daemon.wait_ready();
        daemon
    }

    /// Starts `behavd serve` without waiting.
    pub fn spawn(rig: &str, args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("rig.toml");
        std::fs::write(&config, rig).unwrap();
        Self::spawn_in(dir, &config, args)
    }

    /// Starts `behavd serve` with the config at `config` inside `dir`.
    pub fn spawn_in(dir: tempfile::TempDir, config: &Path, args: &[&str]) -> Daemon {
        let socket = dir.path().join("run/behavd.sock");
        let output = dir.path().join("sessions");
        let mut child = super::behavd()
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--socket")
            .arg(&socket)
            .arg("--output")
            .arg(&output)
            .args(args)
            .env("RUST_LOG", "info,ort=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("behavd starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Daemon {
            child,
            dir,
            socket,
            output,
            stderr,
        }
    }

    /// Everything it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until it logged `ready`.
    pub fn wait_ready(&self) {
        wait_for("the daemon to be ready", Duration::from_secs(15), || {
            self.stderr().contains(" ready ").then_some(())
        });
    }

    /// Waits until it exits, returning its status and stderr.
    pub fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, String) {
        let status = wait_for("the daemon to exit", limit, || {
            self.child.try_wait().unwrap()
        });
        // Let the reader take the last lines.
        std::thread::sleep(Duration::from_millis(50));
        (status, self.stderr())
    }

    /// The TCP address it logged (`--listen` with port 0 picks one).
    pub fn tcp_address(&self) -> std::net::SocketAddr {
        wait_for(
            "the TCP address in the log",
            Duration::from_secs(10),
            || {
                let log = self.stderr();
                let line = log.lines().find(|l| l.contains("API listening on TCP"))?;
                line.split("address=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            },
        )
    }

    /// A client over its Unix socket, naming itself `api-test`.
    pub fn client(&self) -> Client {
        Client::new(Endpoint::Unix(self.socket.clone()), None, "api-test")
    }

    /// Sends a request over the Unix socket.
    pub fn call(&self, method: Method, path: &str, body: &str) -> Answer {
        self.client()
            .send_blocking(method, path, body.to_string())
            .unwrap_or_else(|e| panic!("{path}: {e}\n{}", self.stderr()))
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Value {
        self.call(Method::GET, "/v1/status", "").json()
    }

    /// Waits until the status' `state` is `state`.
    pub fn wait_state(&self, state: &str, limit: Duration) -> Value {
        wait_for(&format!("state {state}"), limit, || {
            let s = self.status();
            (s["state"] == state).then_some(s)
        })
    }

    /// Waits until no transition is in progress and nothing records: `live` (an engine that
    /// keeps the devices open between sessions) or `idle`.
    pub fn wait_settled(&self, limit: Duration) -> Value {
        wait_for("the daemon to settle (live or idle)", limit, || {
            let s = self.status();
            (s["state"] == "live" || s["state"] == "idle").then_some(s)
        })
    }

    /// The session counters of stream `i` in the status (None until there are some).
    pub fn session_counter(&self, i: usize, counter: &str) -> Option<u64> {
        self.status()["engine"]["streams"][i]["session"][counter].as_u64()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The NWB notes of a session file, read with h5py.
pub fn file_notes(file: &Path) -> String {
    super::python_json(
        "import h5py, json, sys; f = h5py.File(sys.argv[1], 'r'); \
         v = f['general/notes'][()]; print(json.dumps(v.decode() if isinstance(v, bytes) else str(v)))",
        file,
    )
}

/// A root or `general/` string of the file (e.g. `general/subject/subject_id`).
pub fn file_string(file: &Path, dataset: &str) -> String {
    super::python_json(
        &format!(
            "import h5py, json, sys; f = h5py.File(sys.argv[1], 'r'); \
             v = f['{dataset}'][()]; v = v[0] if hasattr(v, 'shape') and v.shape else v; \
             print(json.dumps(v.decode() if isinstance(v, bytes) else str(v)))"
        ),
        file,
    )
}

/// Rows of `intervals/StimulusTriggers` (0 when the table is absent).
pub fn trigger_rows(file: &Path) -> u64 {
    super::python_json(
        "import h5py, json, sys; f = h5py.File(sys.argv[1], 'r'); \
         g = f.get('intervals/StimulusTriggers'); print(json.dumps(0 if g is None else len(g['id'])))",
        file,
    )
}

/// Whether the session file holds the note `text` made by `origin` (a substring): a `note` row
/// of `acquisition/ControlChanges` (the live controls), or a line of `general/notes`.
pub fn file_has_note(file: &Path, text: &str, origin: &str) -> bool {
    let rows: Vec<(String, String)> = super::python_json(
        "import h5py, json, sys; f = h5py.File(sys.argv[1], 'r'); t = f.get('acquisition/ControlChanges'); \
         d = lambda c: [x.decode() if isinstance(x, bytes) else str(x) for x in t[c][:]]; \
         print(json.dumps([] if t is None else [[o, x] for n, o, x in zip(d('name'), d('origin'), d('text')) if n == 'note']))",
        file,
    );
    rows.iter().any(|(o, t)| t == text && o.contains(origin))
        || file_notes(file)
            .lines()
            .chain(file_notes(file).split("; "))
            .any(|l| l.contains(text) && l.contains(origin))
}
