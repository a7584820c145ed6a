//! Live controls through the API while recording — arm/disarm a rule, a manual test pulse, a
//! note, a stream control — each a row of the session file's `acquisition/ControlChanges` with
//! its time and origin (the client's `X-Behavd-Origin` and its uid).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::daemon::*;
use hyper::Method;
use serde_json::Value;

#[test]
fn live_controls_while_recording_are_rows_of_the_file_with_time_and_origin() {
    let d = Daemon::start(&emulated_rig(), &[]);
    let a = d.call(Method::POST, "/v1/sessions", r#"{"subject": "ctl1"}"#);
    assert_eq!(a.status, 201, "{}", a.json());
    let path = PathBuf::from(a.json()["path"].as_str().unwrap());
    d.wait_state("recording", Duration::from_secs(15));
    for (route, body) in [
        ("/v1/rules/always/disarm", ""),
        ("/v1/rules/always/arm", ""),
        ("/v1/outputs/stim/pulse", r#"{"on_ms": 5}"#),
        ("/v1/sessions/current/notes", r#"{"text": "LED checked"}"#),
    ] {
        let a = d.call(Method::POST, route, body);
        assert_eq!(a.status, 200, "{route}: {}", a.json());
    }
    // An unknown rule, output or control is refused, naming what is wrong; no row.
    let a = d.call(Method::POST, "/v1/rules/nosuch/arm", "");
    assert!((400..500).contains(&a.status), "{}", a.json());
    assert!(a.json()["error"].as_str().unwrap().contains("nosuch"));
    let a = d.call(
        Method::POST,
        "/v1/controls",
        r#"{"stream": "Miniscope", "control": "nosuch", "value": 1}"#,
    );
    assert!((400..500).contains(&a.status), "{}", a.json());
    // The same through `behavd ctl`, which names itself `ctl`.
    let out = common::behavd()
        .arg("ctl")
        .arg("--socket")
        .arg(&d.socket)
        .args(["note", "from ctl", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stop = d.call(Method::POST, "/v1/sessions/current/stop", "");
    assert_eq!(stop.status, 200, "{}", stop.json());
    let uid = unsafe { libc::getuid() };
    assert!(file_has_note(
        &path,
        "from ctl",
        &format!("ctl (uid {uid})")
    ));

    let rows: Vec<Value> = common::python_json(
        "import h5py, json, sys; t = h5py.File(sys.argv[1], 'r')['acquisition/ControlChanges']; \
         col = lambda n: [x.decode() if isinstance(x, bytes) else x for x in t[n][:]]; \
         print(json.dumps([dict(zip(['time', 'origin', 'target', 'name', 'value', 'text', 'result'], r)) \
               for r in zip(*[col(n) for n in ['time', 'origin', 'target', 'name']], \
                            [None if v != v else float(v) for v in t['value'][:]], col('text'), col('result'))]))",
        &path,
    );
    let uid = unsafe { libc::getuid() };
    let targets: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["target"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        targets,
        [
            ("always", "armed"),
            ("always", "armed"),
            ("stim", "pulse"),
            ("session", "note"),
            ("session", "note")
        ],
        "{rows:#?}"
    );
    assert_eq!(rows[0]["value"], 0.0);
    assert_eq!(rows[1]["value"], 1.0);
    assert_eq!(rows[2]["value"], 5.0);
    assert_eq!(rows[3]["text"], "LED checked");
    let mut last = 0.0;
    for r in &rows[..4] {
        assert!(
            r["origin"]
                .as_str()
                .unwrap()
                .contains(&format!("api-test (uid {uid})")),
            "{r}"
        );
        let t = r["time"].as_f64().unwrap();
        assert!(t >= last && t > 0.0, "times in order: {rows:#?}");
        last = t;
    }
}
