//! `behavd serve` end to end over its Unix socket: a session started and stopped through the
//! API is in the file with the stop's origin; bad requests get a 4xx naming the
//! field; concurrent starts give one session; a stop while starting is answered after the
//! session started and ended; the event stream delivers every trigger of a session (compared
//! with the file's trigger table); a client leaving mid-stream disturbs nobody; SIGTERM
//! finalizes the running session; a stale socket is replaced, a live one refused.
//!
//! Every wait is on a condition with a deadline (a state, a line on stderr, an event).

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use behavd::record::inspect::inspect;
use common::daemon::*;
use futures_util::StreamExt;
use hyper::Method;
use serde_json::Value;

const START: Duration = Duration::from_secs(15);

fn start_session(d: &Daemon, body: &str) -> Value {
    let a = d.call(Method::POST, "/v1/sessions", body);
    assert_eq!(a.status, 201, "start: {}\n{}", a.json(), d.stderr());
    a.json()
}

#[test]
fn session_started_and_stopped_over_the_socket_is_in_the_file() {
    let d = Daemon::start(&emulated_rig(), &[]);
    assert_eq!(d.status()["state"], "idle");
    let started = start_session(
        &d,
        r#"{"subject": "m042", "description": "API test session", "notes": "cage 3",
            "experimenter": ["Doe, Jane"]}"#,
    );
    let path = std::path::PathBuf::from(started["path"].as_str().unwrap());
    assert!(path.starts_with(&d.output), "{path:?} in {:?}", d.output);
    let status = d.wait_state("recording", START);
    assert_eq!(status["session"]["path"], started["path"]);
    // Frames are flowing: the snapshot's counters move.
    wait_for("frames captured", START, || {
        (d.session_counter(0, "captured")? > 10).then_some(())
    });
    let stop = d.call(Method::POST, "/v1/sessions/current/stop", "");
    assert_eq!(stop.status, 200, "{}", stop.json());
    let summary = stop.json();
    assert_eq!(summary["path"], started["path"]);
    assert_ne!(d.status()["state"], "recording");

    let report = inspect(&path).unwrap();
    assert!(!report.open_for_write, "the file is finalized");
    assert!(report.streams[0].frames > 10);
    assert_eq!(file_string(&path, "general/subject/subject_id"), "m042");
    assert_eq!(
        file_string(&path, "session_description"),
        "API test session"
    );
    let notes = file_notes(&path);
    assert!(notes.contains("cage 3"), "start notes in {notes}");
    // The stop's origin: the client's X-Behavd-Origin and the peer's uid (notes and controls
    // during the session: tests/api_controls.rs).
    let uid = unsafe { libc::getuid() };
    assert!(
        notes.contains(&format!("stopped by api-test (uid {uid})")),
        "{notes}"
    );
    // Nothing lost: every captured frame is in the file, no drop of any cause.
    for s in summary["streams"].as_array().unwrap() {
        assert_eq!(s["stats"]["captured"], s["frames_in_file"], "{s}");
        let dropped: u64 = s["stats"]["dropped"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(dropped, 0, "{s}");
    }
    // The session list shows it with its frames.
    let list = d.call(Method::GET, "/v1/sessions", "").json();
    let entry = &list["sessions"][0];
    assert_eq!(entry["path"], started["path"], "{list}");
    assert_eq!(entry["subject"], "m042");
    assert_eq!(entry["streams"][0]["frames"], report.streams[0].frames);
}

#[test]
fn bad_requests_get_a_4xx_naming_the_field() {
    let d = Daemon::start(&emulated_rig(), &[]);
    let cases: &[(&str, &str, u16, Option<&str>, &str)] = &[
        (
            "/v1/sessions",
            r#"{"subject": "m1",,}"#,
            400,
            None,
            "not valid JSON",
        ),
        (
            "/v1/sessions",
            r#"{"subjet": "m1"}"#,
            400,
            Some("subjet"),
            "unknown field",
        ),
        (
            "/v1/sessions",
            r#"{"duration_s": "ten"}"#,
            400,
            Some("duration_s"),
            "invalid type",
        ),
        (
            "/v1/sessions",
            r#"{"duration_s": -1}"#,
            400,
            Some("duration_s"),
            "positive",
        ),
        (
            "/v1/sessions",
            r#"{"experimenter": ["a", 3]}"#,
            400,
            Some("experimenter[1]"),
            "invalid type",
        ),
        (
            "/v1/sessions/current/notes",
            r#"{}"#,
            400,
            Some("text"),
            "missing field",
        ),
        (
            "/v1/sessions/current/notes",
            r#"{"text": "x", "when": 1}"#,
            400,
            Some("when"),
            "unknown field",
        ),
        (
            "/v1/controls",
            r#"{"stream": "Miniscope", "control": "led"}"#,
            400,
            Some("value"),
            "missing field",
        ),
        (
            "/v1/outputs/stim/pulse",
            r#"{"on_ms": 0}"#,
            400,
            Some("on_ms"),
            "positive",
        ),
        (
            "/v1/rules/always/arm",
            r#"{"now": true}"#,
            400,
            Some("now"),
            "unknown field",
        ),
        (
            "/v1/config/validate",
            r#"{}"#,
            400,
            Some("path"),
            "missing field",
        ),
        (
            "/v1/sessions/current/stop",
            "",
            409,
            None,
            "no session is recording",
        ),
        (
            "/v1/sessions/current/notes",
            r#"{"text": "x"}"#,
            409,
            None,
            "no session",
        ),
        ("/v1/nowhere", "", 404, None, "no route"),
    ];
    for (path, body, status, field, words) in cases {
        let a = d.call(Method::POST, path, body);
        let json = a.json();
        assert_eq!(a.status, *status, "POST {path} {body}: {json}");
        assert_eq!(json["field"].as_str(), *field, "POST {path} {body}: {json}");
        assert!(
            json["error"].as_str().unwrap().contains(words),
            "POST {path} {body}: {json}"
        );
    }
    // Nothing of that started anything.
    assert_ne!(d.status()["state"], "recording");
    assert_eq!(
        std::fs::read_dir(&d.output).map(|r| r.count()).unwrap_or(0),
        0
    );
}

#[test]
fn concurrent_starts_give_exactly_one_session() {
    let d = Arc::new(Daemon::start(&emulated_rig(), &[]));
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let answers: Vec<(u16, Value)> = (0..n)
        .map(|_| {
            let (d, barrier) = (Arc::clone(&d), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let client = d.client();
                barrier.wait();
                let a = client
                    .send_blocking(Method::POST, "/v1/sessions", r#"{"subject": "race"}"#)
                    .unwrap();
                (a.status, a.json())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let created: Vec<_> = answers.iter().filter(|(s, _)| *s == 201).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for (status, body) in &answers {
        assert!(*status == 201 || *status == 409, "{status} {body}");
    }
    let stop = d.call(Method::POST, "/v1/sessions/current/stop", "");
    assert_eq!(stop.status, 200, "{}", stop.json());
    let files: Vec<_> = std::fs::read_dir(&d.output).unwrap().collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(stop.json()["path"], created[0].1["path"]);
}

#[test]
fn a_stop_while_starting_ends_the_session_once_it_started() {
    use behavd::stim::test_rig::HeldDevice;
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("held.tty");
    // A stimulator that stays silent until released: the start waits for it.
    let device = HeldDevice::start(Some(&link)).unwrap();
    let rig = rig(
        &format!("port = \"{}\"\nstartup_wait_s = 20.0", link.display()),
        "",
    );
    let config = dir.path().join("rig.toml");
    std::fs::write(&config, rig).unwrap();
    let d = Arc::new(Daemon::spawn_in(dir, &config, &[]));
    d.wait_ready();
    let starter = {
        let d = Arc::clone(&d);
        std::thread::spawn(move || d.call(Method::POST, "/v1/sessions", "{}"))
    };
    d.wait_state("starting", START);
    wait_for("the start waiting on the stimulator", START, || {
        d.stderr()
            .contains("waiting for the stimulator outputs to connect")
            .then_some(())
    });
    let stopper = {
        let d = Arc::clone(&d);
        std::thread::spawn(move || d.call(Method::POST, "/v1/sessions/current/stop", ""))
    };
    // The stop is queued behind the start; a second start is refused meanwhile.
    let again = d.call(Method::POST, "/v1/sessions", "{}");
    assert_eq!(again.status, 409, "{}", again.json());
    device.release();
    let started = starter.join().unwrap();
    let stopped = stopper.join().unwrap();
    assert_eq!(started.status, 201, "{}", started.json());
    assert_eq!(stopped.status, 200, "{}", stopped.json());
    assert_eq!(started.json()["path"], stopped.json()["path"]);
    d.wait_settled(START);
    let path = std::path::PathBuf::from(started.json()["path"].as_str().unwrap());
    assert!(!inspect(&path).unwrap().open_for_write, "finalized");
}

/// Collects events from a subscriber until `until` says stop.
async fn collect(
    client: behavd::daemon::client::Client,
    until: impl Fn(&str) -> bool,
) -> Vec<(String, Value)> {
    let mut stream = Box::pin(client.events().await.unwrap().unwrap());
    let mut events = Vec::new();
    while let Some(Ok(e)) = stream.next().await {
        let stop = until(&e.kind);
        events.push((e.kind, e.data));
        if stop {
            break;
        }
    }
    events
}

#[test]
fn the_event_stream_delivers_every_trigger_and_a_leaving_client_disturbs_nobody() {
    let d = Daemon::start(&emulated_rig(), &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let full = runtime.spawn(collect(d.client(), |k| k == "session_ended"));
    // A client that reads two events and hangs up mid-stream.
    let leaver = runtime.spawn(collect(d.client(), |k| k == "trigger"));
    wait_for("two subscribers", START, || {
        (d.status()["event_subscribers"].as_u64()? >= 2).then_some(())
    });
    let started = start_session(&d, r#"{"duration_s": 4.0}"#);
    let left = runtime.block_on(leaver).unwrap();
    assert!(left.iter().any(|(k, _)| k == "trigger"), "{left:?}");
    let events = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), full).await })
        .expect("session_ended within 20 s")
        .unwrap();
    let path = std::path::PathBuf::from(started["path"].as_str().unwrap());
    // Triggers of this session (an engine with a live state also announces those decided
    // while live, marked `in_session: false`).
    let triggers: Vec<&Value> = events
        .iter()
        .filter(|(k, _)| k == "trigger")
        .map(|(_, e)| e)
        .filter(|e| e["in_session"] != false)
        .collect();
    let rows = trigger_rows(&path);
    assert!(rows >= 5, "a 4 s session at ~3 triggers/s: {rows} rows");
    assert_eq!(
        triggers.len() as u64,
        rows,
        "one trigger event per row: {triggers:?}"
    );
    if triggers[0].get("frame_index").is_some() {
        let in_file = common::read_dataset_u64(&path, "intervals/StimulusTriggers/frame_index");
        let announced: Vec<u64> = triggers
            .iter()
            .map(|e| e["frame_index"].as_u64().unwrap())
            .collect();
        assert_eq!(announced, in_file);
    } else {
        let numbers: Vec<u64> = triggers.iter().map(|e| e["n"].as_u64().unwrap()).collect();
        assert_eq!(numbers, (1..=rows).collect::<Vec<_>>());
    }
    assert!(events.iter().all(|(k, _)| k != "lagged"), "{events:?}");
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    for kind in ["state", "session_started", "session_ended"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    let ended = &events.last().unwrap().1;
    assert_eq!(ended["path"], started["path"]);
    assert_eq!(ended["reason"], "duration of 4 s reached");
    // The data plane did not notice the subscriber leaving: no frame lost.
    let report = inspect(&path).unwrap();
    assert!(report.gaps.is_empty(), "{:?}", report.gaps);
}

#[test]
fn sigterm_finalizes_the_running_session_and_exits_0() {
    let mut d = Daemon::start(&emulated_rig(), &[]);
    let started = start_session(&d, r#"{"subject": "m7"}"#);
    wait_for("frames recorded", START, || {
        (d.session_counter(0, "recorded")? > 5).then_some(())
    });
    d.terminate();
    let (status, stderr) = d.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{stderr}");
    let path = std::path::PathBuf::from(started["path"].as_str().unwrap());
    let report = inspect(&path).unwrap();
    assert!(!report.open_for_write, "finalized");
    assert!(file_notes(&path).contains("daemon stopped by SIGTERM"));
    assert!(!d.socket.exists(), "the socket is removed on exit");
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/behavd.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    // A socket nobody listens on any more (its listener is gone).
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let config = dir.path().join("rig.toml");
    std::fs::write(&config, emulated_rig()).unwrap();
    let first = Daemon::spawn_in(dir, &config, &[]);
    first.wait_ready();
    assert_eq!(first.status()["state"], "idle");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&first.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660, "the socket's default mode");
    // A second daemon on the same socket is refused, the first keeps answering.
    let out = common::behavd()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(&first.socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("answers on"), "{stderr}");
    assert_eq!(first.status()["state"], "idle");
}

#[test]
fn config_get_validate_and_load_keep_the_old_config_on_error() {
    let d = Daemon::start(&emulated_rig(), &[]);
    let got = d.call(Method::GET, "/v1/config", "").json();
    assert!(got["file"].as_str().unwrap().ends_with("rig.toml"));
    assert_eq!(got["text"].as_str().unwrap(), emulated_rig());
    // A config with a misspelled key on line 3.
    let bad = d.dir.path().join("bad.toml");
    std::fs::write(&bad, "[session]\ndescription = \"x\"\nsubjekt = 1\n").unwrap();
    let body = serde_json::json!({"path": bad}).to_string();
    let checked = d.call(Method::POST, "/v1/config/validate", &body);
    assert_eq!(checked.status, 200);
    let report = checked.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["errors"][0]["line"], 3, "{report}");
    assert_eq!(report["errors"][0]["key"], "session.subjekt", "{report}");
    let load = d.call(Method::POST, "/v1/config/load", &body);
    assert_eq!(load.status, 422, "{}", load.json());
    assert_eq!(load.json()["field"], "session.subjekt");
    assert!(
        load.json()["error"]
            .as_str()
            .unwrap()
            .contains("bad.toml:3:")
    );
    assert_eq!(
        d.call(Method::GET, "/v1/config", "").json()["file"],
        got["file"]
    );
    // A good one loads while idle, and the next session uses it.
    let good = d.dir.path().join("good.toml");
    std::fs::write(
        &good,
        emulated_rig().replace("daemon API test", "loaded rig"),
    )
    .unwrap();
    let body = serde_json::json!({"path": good}).to_string();
    let load = d.call(Method::POST, "/v1/config/load", &body);
    assert_eq!(load.status, 200, "{}", load.json());
    assert!(
        d.status()["config"]
            .as_str()
            .unwrap()
            .ends_with("good.toml")
    );
    let started = start_session(&d, "{}");
    // Not while recording (nor live).
    let refused = d.call(Method::POST, "/v1/config/load", &body);
    assert_eq!(refused.status, 409, "{}", refused.json());
    let stop = d.call(Method::POST, "/v1/sessions/current/stop", "");
    assert_eq!(stop.status, 200);
    let path = std::path::PathBuf::from(started["path"].as_str().unwrap());
    assert_eq!(file_string(&path, "session_description"), "loaded rig");
}

#[test]
fn the_socket_gets_the_configured_group_and_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // Our own primary group by number (a name would need one to exist on every machine).
    let gid = unsafe { libc::getgid() };
    let rig = format!(
        "{}\n[daemon]\nsocket_group = \"{gid}\"\nsocket_mode = 0o600\n",
        emulated_rig()
    );
    let d = Daemon::start(&rig, &[]);
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.gid(), gid);
    assert_eq!(d.status()["state"], "idle");
    // A group that does not exist stops the daemon at its start, naming it.
    let rig = format!(
        "{}\n[daemon]\nsocket_group = \"no_such_group_xyz\"\n",
        emulated_rig()
    );
    let mut bad = Daemon::spawn(&rig, &[]);
    let (status, stderr) = bad.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no_such_group_xyz"), "{stderr}");
    assert!(!bad.socket.exists(), "no socket left behind");
}

#[test]
fn live_between_sessions_then_idle() {
    let d = Daemon::start(&emulated_rig(), &[]);
    let a = d.call(Method::POST, "/v1/live", "");
    assert_eq!(a.status, 200, "{}", a.json());
    assert_eq!(a.json()["state"], "live");
    // Frames flow while live, nothing is recorded.
    wait_for("live frames", START, || {
        (d.status()["engine"]["streams"][0]["live"]["captured"].as_u64()? > 10).then_some(())
    });
    assert_eq!(
        std::fs::read_dir(&d.output).map(|r| r.count()).unwrap_or(0),
        0
    );
    // Going idle while recording is refused; from live a session begins at once.
    let started = start_session(&d, "{}");
    let a = d.call(Method::POST, "/v1/idle", "");
    assert_eq!(a.status, 409, "{}", a.json());
    let stop = d.call(Method::POST, "/v1/sessions/current/stop", "");
    assert_eq!(stop.status, 200, "{}", stop.json());
    assert_eq!(stop.json()["path"], started["path"]);
    d.wait_state("live", START);
    let a = d.call(Method::POST, "/v1/idle", "");
    assert_eq!(a.status, 200, "{}", a.json());
    assert_eq!(a.json()["state"], "idle");
    assert!(a.json()["engine"].is_null(), "{}", a.json());
}
