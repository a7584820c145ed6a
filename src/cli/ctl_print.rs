//! `behavd ctl`'s human output: the status, the session list, and `watch`'s lines.

use serde_json::Value;

/// The redrawn status line of `ctl watch` on a terminal.
#[derive(Default)]
pub(super) struct WatchLine {
    state: String,
    session: String,
    triggers: u64,
    dropped: u64,
    last: String,
}

impl WatchLine {
    pub(super) fn update(&mut self, kind: &str, data: &Value) {
        match kind {
            "state" => {
                self.state = data["state"].as_str().unwrap_or_default().to_string();
                self.session = data["session"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
            }
            "session_started" => {
                self.triggers = 0;
                self.dropped = 0;
            }
            "trigger" => self.triggers += 1,
            "drops" => self.dropped += data["frames"].as_u64().unwrap_or(0),
            _ => {}
        }
        self.last = event_line(kind, data);
    }

    pub(super) fn render(&self) -> String {
        format!(
            "{} {} | triggers {} | dropped {} | {}",
            self.state, self.session, self.triggers, self.dropped, self.last
        )
    }
}

/// One event in one line: time, kind and its fields.
pub(super) fn event_line(kind: &str, data: &Value) -> String {
    let time = data["time"]
        .as_str()
        .and_then(|t| t.get(11..23))
        .unwrap_or("");
    let fields: Vec<String> = data
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !["time", "kind", "seq"].contains(&k.as_str()))
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    format!("{time} {kind} {}", fields.join(" "))
}

pub(super) fn print_status(v: &Value) {
    println!("{}", v["status"].as_str().unwrap_or_default());
    println!(
        "state {} since {}; up {:.0} s; disk free {}",
        v["state"].as_str().unwrap_or_default(),
        v["since"].as_str().unwrap_or_default(),
        v["uptime_s"].as_f64().unwrap_or(0.0),
        v["disk_free_bytes"]
            .as_f64()
            .map(|b| format!("{:.1} GB", b / 1e9))
            .unwrap_or_else(|| "unknown".into())
    );
    let engine = &v["engine"];
    if let Some(s) = engine["session"].as_object() {
        println!(
            "session {} (subject {}), {:.1} s",
            s["name"].as_str().unwrap_or_default(),
            s["subject"].as_str().unwrap_or_default(),
            s["elapsed_s"].as_f64().unwrap_or(0.0)
        );
    }
    for s in engine["streams"].as_array().into_iter().flatten() {
        // The session's counters while recording, else those since the devices opened.
        let counters = if s["session"].is_object() {
            &s["session"]
        } else {
            &s["live"]
        };
        let dropped: Vec<String> = counters["dropped"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!(
            "  {:<16} captured {:>8}  recorded {:>8}  {:>6.2} fps  dropped: {}",
            s["name"].as_str().unwrap_or_default(),
            counters["captured"],
            counters["recorded"],
            s["fps"].as_f64().unwrap_or(0.0),
            dropped.join(", ")
        );
    }
    for p in engine["producers"].as_array().into_iter().flatten() {
        println!(
            "  {:<16} processed {:>8}  skipped {:>6}",
            p["name"].as_str().unwrap_or_default(),
            p["processed"],
            p["skipped"]
        );
    }
    if let Some(t) = engine["triggers_sent"].as_u64() {
        println!("  triggers sent {t}");
    }
    if let Some(e) = v["last_error"].as_str() {
        println!("last error: {e}");
    }
}

pub(super) fn print_sessions(v: &Value) {
    let list = v["sessions"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!(
            "no session files in {}",
            v["output_dir"].as_str().unwrap_or_default()
        );
    }
    for s in list {
        let streams: Vec<String> = s["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|st| {
                format!(
                    "{} {} frames",
                    st["name"].as_str().unwrap_or_default(),
                    st["frames"]
                )
            })
            .collect();
        let state = if s["recording"] == true {
            " (recording)".to_string()
        } else if let Some(e) = s["error"].as_str() {
            format!(" (unreadable: {e})")
        } else {
            String::new()
        };
        println!(
            "{}  {:.1} MB  {}{state}",
            s["path"].as_str().unwrap_or_default(),
            s["file_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            streams.join(", ")
        );
    }
}
