//! The live telemetry of a real demo session (shipped models on ONNX Runtime, the emulated
//! stimulator over a pty, the gzip recorder): while it runs, the snapshot moves (frames, model
//! outputs, flushes, a connected link); once every thread has stopped, its counters and
//! histograms equal the session summary's exactly, and the Prometheus exposition of it parses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use behavd::config::LoadedConfig;
use behavd::daemon::metrics::{MetricsExtra, render};
use behavd::pipeline::{RunOptions, RunningSession};

#[test]
fn telemetry_follows_a_demo_session_and_matches_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = LoadedConfig::demo();
    let options = RunOptions {
        output_dir: Some(dir.path().to_path_buf()),
        ..RunOptions::default()
    };
    let session = RunningSession::start(&loaded, &options).expect("demo session starts");
    let telemetry = Arc::clone(session.telemetry());
    // Wait (with a deadline) until every part has shown progress.
    let deadline = Instant::now() + Duration::from_secs(60);
    let live = loop {
        let s = telemetry.snapshot();
        let ready = s
            .streams
            .iter()
            .all(|st| st.fps > 20.0 && st.ring_capacity > 0)
            && s.producers.iter().all(|p| p.capture_to_output.count >= 30)
            && s.recorder.as_ref().is_some_and(|r| r.flushes >= 2)
            && s.outputs
                .iter()
                .any(|o| o.up == Some(true) && o.round_trip.count >= 5);
        if ready {
            break s;
        }
        assert!(Instant::now() < deadline, "telemetry did not move: {s:#?}");
        std::thread::park_timeout(Duration::from_millis(100));
    };
    assert_eq!(
        live.streams
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["Miniscope", "BehaviorCam0"]
    );
    for st in &live.streams {
        assert!(
            (20.0..40.0).contains(&st.fps),
            "{}: {} fps",
            st.name,
            st.fps
        );
    }
    let stim = live.outputs.iter().find(|o| o.name == "stim").unwrap();
    assert!(
        stim.clock_residual_us.is_some(),
        "the clock fit has samples: {stim:?}"
    );
    let recorder = live.recorder.as_ref().unwrap();
    assert!(recorder.flush_lag_s < 10.0, "{recorder:?}");
    assert!(recorder.flush.count >= 2);

    let summary = session.stop("test finished").unwrap();
    let end = telemetry.snapshot();
    for (st, sum) in end.streams.iter().zip(&summary.streams) {
        assert_eq!(st.name, sum.name);
        assert_eq!(st.stats, sum.stats, "stream counters are the summary's");
    }
    let summary_producers = &summary.closed_loop.producers;
    assert_eq!(end.producers.len(), summary_producers.len());
    for (p, s) in end.producers.iter().zip(summary_producers) {
        assert_eq!(p.name, s.name);
        assert_eq!(p.processed, s.processed, "{}", p.name);
        assert_eq!(
            p.capture_to_output.count, p.processed,
            "{}: one sample per output",
            p.name
        );
        assert_eq!(p.inference.count, p.processed, "{}", p.name);
        assert_eq!(
            p.capture_to_output.count, s.capture_to_output.count,
            "{}",
            p.name
        );
    }
    let fired: u64 = end.rules.iter().map(|r| r.fired).sum();
    let triggers: u64 = summary.closed_loop.rules.iter().map(|r| r.triggers).sum();
    assert_eq!(fired, triggers);
    assert_eq!(
        end.capture_to_decision.as_ref().unwrap().count,
        summary.closed_loop.capture_to_decision.count
    );
    let stim_end = end.outputs.iter().find(|o| o.name == "stim").unwrap();
    let stim_sum = summary
        .closed_loop
        .outputs
        .iter()
        .find(|o| o.name == "stim")
        .unwrap();
    assert_eq!(stim_end.triggers.sent, stim_sum.sent);
    assert_eq!(
        stim_end.decision_to_write.count,
        stim_sum.decision_to_write.count
    );
    assert_eq!(stim_end.up, Some(false), "the link is down once stopped");
    let bytes: u64 = summary.streams.iter().map(|s| s.stats.bytes_recorded).sum();
    assert_eq!(end.recorder.as_ref().unwrap().bytes_written, bytes);

    let text = render(
        &end,
        &MetricsExtra {
            rig: loaded.config.session.rig.clone(),
            state: "live".into(),
            ..MetricsExtra::default()
        },
    );
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let captured = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "behavd_stream_frames_captured_total"
                && s.labels.get("stream") == Some("BehaviorCam0")
        })
        .expect("the behavior stream's frames");
    assert_eq!(
        captured.value,
        prometheus_parse::Value::Counter(summary.streams[1].stats.captured as f64)
    );
}
