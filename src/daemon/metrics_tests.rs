//! The exposition, read back by a real parser (`prometheus-parse`) and checked by Prometheus'
//! own `promtool check metrics`; the shipped Grafana dashboard queries only metrics it has.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_parse::{Scrape, Value};

use super::*;
use crate::pipeline::workers::WorkerStats;
use crate::stats::StreamStats;
use crate::stim::link::LinkStats;
use crate::telemetry::{RecorderTelemetry, RulesTelemetry, Telemetry};

/// A registry over real counters, bumped the way the data-plane threads bump them.
fn sample() -> (TelemetrySnapshot, MetricsExtra) {
    let now = crate::clock::monotonic_ns();
    let mut t = Telemetry::new(now.saturating_sub(5_000_000_000));
    let behavior = Arc::new(StreamStats::default());
    for _ in 0..300 {
        behavior.add_captured();
        behavior.add_recorded(1000);
    }
    behavior.add_dropped(DropCause::Device, 7);
    behavior.add_dropped(DropCause::RecorderBehind, 2);
    behavior.live().frame(now - 1_000_000_000, 3, 120);
    behavior.live().frame(now, 4, 120);
    t.add_stream("behavior", &behavior);
    t.add_stream("miniscope", &Arc::new(StreamStats::default()));
    let pose = Arc::new(WorkerStats::default());
    pose.processed.store(290, Ordering::Relaxed);
    pose.skipped.store(10, Ordering::Relaxed);
    for i in 0..290u64 {
        pose.inference.record(2_000_000 + i * 1000);
        pose.capture_to_output.record(9_000_000 + i * 1000);
    }
    t.add_producer("pose", "behavior", "model", &pose);
    let rules = Arc::new(RulesTelemetry::new(vec![
        "grooming".into(),
        "rearing".into(),
    ]));
    rules.fired(0, 12_000_000);
    rules.fired(0, 14_000_000);
    t.set_rules(&rules);
    let link = Arc::new(LinkStats::default());
    link.up.store(true, Ordering::Relaxed);
    link.sent.store(2, Ordering::Relaxed);
    link.acked.store(1, Ordering::Relaxed);
    link.blocked.store(1, Ordering::Relaxed);
    link.telemetry.decision_to_write.record(80_000);
    link.telemetry.round_trip.record(400_000);
    link.telemetry.set_residual_us(35.0);
    t.add_output("laser", Some(&link));
    t.add_output("log", None);
    let recorder = Arc::new(RecorderTelemetry::default());
    recorder.flushed(now - 600_000_000, now - 500_000_000);
    t.set_recorder(&recorder);
    let extra = MetricsExtra {
        rig: "rig-a".into(),
        state: "recording".into(),
        uptime_s: 120.0,
        disk_free_bytes: Some(50_000_000_000),
        session_elapsed_s: Some(5.0),
    };
    (t.snapshot(), extra)
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition")
}

/// The value of the one sample of `metric` whose labels include `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Value {
    let hits: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(hits.len(), 1, "{metric} {labels:?}: {hits:?}");
    hits[0].value.clone()
}

fn number(v: Value) -> f64 {
    match v {
        Value::Counter(x) | Value::Gauge(x) | Value::Untyped(x) => x,
        other => panic!("not a number: {other:?}"),
    }
}

#[test]
fn exposition_parses_and_carries_the_counters() {
    let (snapshot, extra) = sample();
    let text = render(&snapshot, &extra);
    let scrape = parse(&text);
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| s.labels.get("rig") == Some("rig-a")),
        "every sample carries the rig"
    );
    let stream = [("stream", "behavior")];
    assert_eq!(
        number(value(
            &scrape,
            "behavd_stream_frames_captured_total",
            &stream
        )),
        300.0
    );
    assert_eq!(
        number(value(
            &scrape,
            "behavd_stream_frames_dropped_total",
            &[("stream", "behavior"), ("cause", "device")]
        )),
        7.0
    );
    assert_eq!(
        number(value(
            &scrape,
            "behavd_stream_frames_dropped_total",
            &[("stream", "behavior"), ("cause", "recorder_behind")]
        )),
        2.0
    );
    assert_eq!(
        number(value(&scrape, "behavd_stream_ring_fill_ratio", &stream)),
        4.0 / 120.0
    );
    let fps = number(value(&scrape, "behavd_stream_frames_per_second", &stream));
    assert!(
        (fps - 1.0).abs() < 0.01,
        "one frame in the last second: {fps}"
    );
    assert_eq!(
        number(value(
            &scrape,
            "behavd_model_frames_skipped_total",
            &[("model", "pose")]
        )),
        10.0
    );
    match value(
        &scrape,
        "behavd_model_capture_to_output_seconds",
        &[("model", "pose")],
    ) {
        Value::Histogram(buckets) => {
            let le = |b: f64| buckets.iter().find(|h| h.less_than == b).map(|h| h.count);
            assert_eq!(le(0.007), Some(0.0), "nothing at or below 7 ms");
            assert_eq!(le(0.01), Some(290.0), "9.0–9.29 ms: all at or below 10 ms");
            assert_eq!(le(f64::INFINITY), Some(290.0));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        number(value(
            &scrape,
            "behavd_rule_fired_total",
            &[("rule", "grooming")]
        )),
        2.0
    );
    assert_eq!(
        number(value(
            &scrape,
            "behavd_rule_fired_total",
            &[("rule", "rearing")]
        )),
        0.0
    );
    let laser = |status| [("output", "laser"), ("status", status)];
    assert_eq!(
        number(value(
            &scrape,
            "behavd_output_triggers_total",
            &laser("acked")
        )),
        1.0
    );
    assert_eq!(
        number(value(
            &scrape,
            "behavd_output_triggers_total",
            &laser("blocked")
        )),
        1.0
    );
    assert_eq!(
        number(value(
            &scrape,
            "behavd_output_link_up",
            &[("output", "laser")]
        )),
        1.0
    );
    assert_eq!(
        number(value(
            &scrape,
            "behavd_output_clock_residual_seconds",
            &[("output", "laser")]
        )),
        35e-6
    );
    assert!(
        !text.contains("output=\"log\""),
        "the logging sink has no link to report"
    );
    assert_eq!(
        number(value(&scrape, "behavd_recorder_written_bytes_total", &[])),
        300_000.0
    );
    let lag = number(value(&scrape, "behavd_recorder_flush_lag_seconds", &[]));
    assert!((0.49..5.0).contains(&lag), "{lag}");
    assert_eq!(number(value(&scrape, "behavd_disk_free_bytes", &[])), 5e10);
    assert_eq!(
        number(value(&scrape, "behavd_state", &[("state", "recording")])),
        1.0
    );
    assert_eq!(
        number(value(&scrape, "behavd_state", &[("state", "idle")])),
        0.0
    );
}

#[test]
fn an_idle_daemon_exposes_its_state_and_nothing_of_a_loop() {
    let extra = MetricsExtra {
        rig: "rig-b".into(),
        state: "idle".into(),
        ..MetricsExtra::default()
    };
    let scrape = parse(&render(&TelemetrySnapshot::default(), &extra));
    assert_eq!(
        number(value(&scrape, "behavd_state", &[("state", "idle")])),
        1.0
    );
    assert!(
        !scrape
            .samples
            .iter()
            .any(|s| s.metric.starts_with("behavd_recorder"))
    );
}

/// Prometheus' own checker (Debian package `prometheus`, installed by `scripts/setup.sh
/// --test`) accepts the exposition, lint included.
#[test]
fn promtool_check_metrics_accepts_the_exposition() {
    use std::io::Write;
    let (snapshot, extra) = sample();
    let text = render(&snapshot, &extra);
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`; run scripts/setup.sh --test)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The metric names a PromQL expression uses (`behavd_...`, with the histogram suffixes).
fn metrics_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("behavd_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[i + name.len()..];
        out.push(name);
    }
    out
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "query", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_render_exposes() {
    let text = include_str!("../../packaging/grafana/behavd-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(
        queries.len() >= 7,
        "panels and the rig variable: {queries:?}"
    );
    let (snapshot, extra) = sample();
    let names: BTreeSet<String> = parse(&render(&snapshot, &extra))
        .samples
        .iter()
        .flat_map(|s| {
            let m = s.metric.clone();
            match s.value {
                Value::Histogram(_) => vec![
                    format!("{m}_bucket"),
                    format!("{m}_sum"),
                    format!("{m}_count"),
                ],
                _ => vec![m],
            }
        })
        .collect();
    let used: BTreeSet<String> = queries.iter().flat_map(|q| metrics_in(q)).collect();
    assert!(used.len() >= 7, "{used:?}");
    let missing: Vec<_> = used.difference(&names).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics render does not expose: {missing:?}"
    );
    for needed in [
        "behavd_stream_frames_per_second",
        "behavd_stream_frames_dropped_total",
        "behavd_model_capture_to_output_seconds_bucket",
        "behavd_output_triggers_total",
        "behavd_output_clock_residual_seconds",
        "behavd_disk_free_bytes",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard has a panel on {needed}"
        );
    }
    let vars = &dashboard["templating"]["list"];
    assert!(
        vars.as_array()
            .is_some_and(|l| l.iter().any(|v| v["name"] == "rig")),
        "a rig variable"
    );
}
