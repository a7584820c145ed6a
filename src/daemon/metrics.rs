//! `GET /metrics`: a [`TelemetrySnapshot`] and the daemon's own state in the Prometheus text
//! exposition format (version 0.0.4), through the `prometheus-client` crate's encoder.
//!
//! Every metric is named `behavd_*` with its unit in the name and carries the rig's name
//! (`[session] rig`) as the `rig` label; docs/metrics.md lists them all.

use std::borrow::Cow;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::stats::DropCause;
use crate::telemetry::{BOUNDS_NS, HistogramSnapshot, TelemetrySnapshot};

/// What the daemon adds to the data plane's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsExtra {
    /// The rig's name (`[session] rig`): the `rig` label of every metric.
    pub rig: String,
    /// Lifecycle state: "idle", "live" or "recording".
    pub state: String,
    /// Seconds since the daemon started.
    pub uptime_s: f64,
    /// Free bytes on the session directory's file system, when known.
    pub disk_free_bytes: Option<u64>,
    /// Seconds into the running session, when recording.
    pub session_elapsed_s: Option<f64>,
}

/// The lifecycle states `behavd_state` reports (one of them is 1).
pub const STATES: [&str; 3] = ["idle", "live", "recording"];

/// The snapshot and `extra` as Prometheus text exposition.
pub fn render(snapshot: &TelemetrySnapshot, extra: &MetricsExtra) -> String {
    let mut registry = Registry::with_prefix_and_labels(
        "behavd",
        [(Cow::Borrowed("rig"), Cow::Owned(extra.rig.clone()))].into_iter(),
    );
    registry.register_collector(Box::new(Scrape {
        snapshot: snapshot.clone(),
        extra: extra.clone(),
    }));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

/// One scrape's data, encoded once.
#[derive(Debug)]
struct Scrape {
    snapshot: TelemetrySnapshot,
    extra: MetricsExtra,
}

type Fmt = Result<(), std::fmt::Error>;

/// A metric family being written: one descriptor, then one sample per label set.
struct Family<'e>(MetricEncoder<'e>);

fn family<'e>(
    d: &'e mut DescriptorEncoder<'_>,
    name: &'e str,
    help: &str,
    unit: Option<&'e Unit>,
    kind: MetricType,
) -> Result<Family<'e>, std::fmt::Error> {
    Ok(Family(d.encode_descriptor(name, help, unit, kind)?))
}

impl Family<'_> {
    fn counter(&mut self, labels: &[(&str, &str)], v: u64) -> Fmt {
        self.0
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, u64, f64>(&v, None)
    }

    fn gauge(&mut self, labels: &[(&str, &str)], v: f64) -> Fmt {
        self.0.encode_family(&labels)?.encode_gauge(&v)
    }

    fn histogram(&mut self, labels: &[(&str, &str)], h: &HistogramSnapshot) -> Fmt {
        let buckets: Vec<(f64, u64)> = BOUNDS_NS
            .iter()
            .zip(&h.buckets)
            .map(|(&b, &c)| (b as f64 / 1e9, c))
            .collect();
        self.0
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(h.sum_ns as f64 / 1e9, h.count, &buckets, None)
    }
}

const SECONDS: Unit = Unit::Seconds;
const BYTES: Unit = Unit::Bytes;

impl Collector for Scrape {
    fn encode(&self, mut d: DescriptorEncoder) -> Fmt {
        use MetricType::{Counter, Gauge, Histogram};
        let s = &self.snapshot;
        let e = &self.extra;
        let secs = Some(&SECONDS);
        let bytes = Some(&BYTES);

        // The daemon.
        let mut f = family(
            &mut d,
            "state",
            "Lifecycle state (1 for the current one)",
            None,
            Gauge,
        )?;
        for state in STATES {
            f.gauge(&[("state", state)], f64::from(u8::from(e.state == state)))?;
        }
        family(
            &mut d,
            "uptime",
            "Seconds since the daemon started",
            secs,
            Gauge,
        )?
        .gauge(&[], e.uptime_s)?;
        if let Some(free) = e.disk_free_bytes {
            family(
                &mut d,
                "disk_free",
                "Free space on the session directory's file system",
                bytes,
                Gauge,
            )?
            .gauge(&[], free as f64)?;
        }
        if let Some(t) = e.session_elapsed_s {
            family(
                &mut d,
                "session_elapsed",
                "Seconds into the running session",
                secs,
                Gauge,
            )?
            .gauge(&[], t)?;
        }
        family(
            &mut d,
            "loop_elapsed",
            "Seconds since the data plane (capture, models, rules, links) started",
            secs,
            Gauge,
        )?
        .gauge(&[], s.elapsed_s)?;

        // Streams.
        let mut f = family(
            &mut d,
            "stream_frames_captured",
            "Frames the device delivered",
            None,
            Counter,
        )?;
        for st in &s.streams {
            f.counter(&[("stream", &st.name)], st.stats.captured)?;
        }
        let mut f = family(
            &mut d,
            "stream_frames_recorded",
            "Frames written to the session file",
            None,
            Counter,
        )?;
        for st in &s.streams {
            f.counter(&[("stream", &st.name)], st.stats.recorded)?;
        }
        let mut f = family(
            &mut d,
            "stream_frames_dropped",
            "Frames lost, by cause",
            None,
            Counter,
        )?;
        for st in &s.streams {
            for cause in DropCause::ALL {
                f.counter(
                    &[("stream", &st.name), ("cause", cause.label())],
                    st.dropped(cause),
                )?;
            }
        }
        let mut f = family(
            &mut d,
            "stream_recorded",
            "Frame bytes written to the session file (uncompressed sizes)",
            bytes,
            Counter,
        )?;
        for st in &s.streams {
            f.counter(&[("stream", &st.name)], st.stats.bytes_recorded)?;
        }
        let mut f = family(
            &mut d,
            "stream_reconnects",
            "Successful device reconnections",
            None,
            Counter,
        )?;
        for st in &s.streams {
            f.counter(&[("stream", &st.name)], st.stats.reconnects)?;
        }
        let mut f = family(
            &mut d,
            "stream_frames_per_second",
            "Frames captured per second over the last second",
            None,
            Gauge,
        )?;
        for st in &s.streams {
            f.gauge(&[("stream", &st.name)], st.fps)?;
        }
        let mut f = family(
            &mut d,
            "stream_ring_fill_ratio",
            "Share of the recorder ring in use (0-1)",
            None,
            Gauge,
        )?;
        for st in &s.streams {
            f.gauge(&[("stream", &st.name)], st.ring_fill())?;
        }
        let mut f = family(
            &mut d,
            "stream_ring_capacity_frames",
            "Frames the recorder ring holds",
            None,
            Gauge,
        )?;
        for st in &s.streams {
            f.gauge(&[("stream", &st.name)], st.ring_capacity as f64)?;
        }

        // Models and signal groups.
        let labels: Vec<[(&str, &str); 3]> = s
            .producers
            .iter()
            .map(|p| {
                [
                    ("model", p.name.as_str()),
                    ("stream", p.stream.as_str()),
                    ("kind", p.kind),
                ]
            })
            .collect();
        let producers = || s.producers.iter().zip(&labels);
        let mut f = family(
            &mut d,
            "model_frames_processed",
            "Frames (or first-stage outputs) a model or signal group processed",
            None,
            Counter,
        )?;
        for (p, l) in producers() {
            f.counter(l, p.processed)?;
        }
        let mut f = family(
            &mut d,
            "model_frames_skipped",
            "Frames a model or signal group skipped (latest-wins: it was busy)",
            None,
            Counter,
        )?;
        for (p, l) in producers() {
            f.counter(l, p.skipped)?;
        }
        let mut f = family(
            &mut d,
            "model_resets",
            "State resets after gaps",
            None,
            Counter,
        )?;
        for (p, l) in producers() {
            f.counter(l, p.resets)?;
        }
        let mut f = family(&mut d, "model_errors", "Failed runs", None, Counter)?;
        for (p, l) in producers() {
            f.counter(l, p.errors)?;
        }
        let mut f = family(
            &mut d,
            "model_inference",
            "Session run + decode (a model) or the ROI update (a signal group)",
            secs,
            Histogram,
        )?;
        for (p, l) in producers() {
            f.histogram(l, &p.inference)?;
        }
        let mut f = family(
            &mut d,
            "model_capture_to_output",
            "Frame capture to decoded output",
            secs,
            Histogram,
        )?;
        for (p, l) in producers() {
            f.histogram(l, &p.capture_to_output)?;
        }

        // Rules.
        let mut f = family(&mut d, "rule_fired", "Times a rule fired", None, Counter)?;
        for r in &s.rules {
            f.counter(&[("rule", &r.name)], r.fired)?;
        }
        if let Some(h) = &s.capture_to_decision {
            family(
                &mut d,
                "capture_to_decision",
                "Frame capture to trigger decision, every rule firing",
                secs,
                Histogram,
            )?
            .histogram(&[], h)?;
        }
        family(
            &mut d,
            "triggers_lost",
            "Triggers that did not fit in the ring to their output",
            None,
            Counter,
        )?
        .counter(&[], s.triggers_lost)?;
        family(
            &mut d,
            "triggers_handed",
            "Triggers handed to an output (the logging sink included)",
            None,
            Counter,
        )?
        .counter(&[], s.triggers_sent)?;

        // Outputs.
        let links = || s.outputs.iter().filter(|o| o.up.is_some());
        let mut f = family(
            &mut d,
            "output_link_up",
            "Whether the stimulator link is connected (1) or not (0)",
            None,
            Gauge,
        )?;
        for o in links() {
            f.gauge(
                &[("output", &o.name)],
                f64::from(u8::from(o.up == Some(true))),
            )?;
        }
        let mut f = family(
            &mut d,
            "output_triggers",
            "Triggers by what became of them (sent = written to the port; acked, nacked, unacked: outcomes of the sent ones; blocked, link_down, stale, stopping: never written)",
            None,
            Counter,
        )?;
        for o in links() {
            for (status, n) in o.triggers.by_status() {
                f.counter(&[("output", &o.name), ("status", status)], n)?;
            }
        }
        let mut f = family(
            &mut d,
            "output_connects",
            "Successful link (re)connections",
            None,
            Counter,
        )?;
        for o in links() {
            f.counter(&[("output", &o.name)], o.connects)?;
        }
        let mut f = family(
            &mut d,
            "output_disconnects",
            "Times the link went down after being up",
            None,
            Counter,
        )?;
        for o in links() {
            f.counter(&[("output", &o.name)], o.disconnects)?;
        }
        let mut f = family(
            &mut d,
            "output_decision_to_write",
            "Rule decision to the command written to the port",
            secs,
            Histogram,
        )?;
        for o in links() {
            f.histogram(&[("output", &o.name)], &o.decision_to_write)?;
        }
        let mut f = family(
            &mut d,
            "output_round_trip",
            "Clock-sync PING to PONG round trip",
            secs,
            Histogram,
        )?;
        for o in links() {
            f.histogram(&[("output", &o.name)], &o.round_trip)?;
        }
        let mut f = family(
            &mut d,
            "output_clock_residual",
            "RMS residual of the device clock fit (absent until fitted)",
            secs,
            Gauge,
        )?;
        for o in links() {
            if let Some(r) = o.clock_residual_us {
                f.gauge(&[("output", &o.name)], r / 1e6)?;
            }
        }

        // The recorder.
        if let Some(r) = &s.recorder {
            family(
                &mut d,
                "recorder_written",
                "Frame bytes the recorder wrote, every stream (rate() of it is the recording MB/s)",
                bytes,
                Counter,
            )?
            .counter(&[], r.bytes_written)?;
            family(
                &mut d,
                "recorder_flushes",
                "Successful flushes of the session file",
                None,
                Counter,
            )?
            .counter(&[], r.flushes)?;
            family(
                &mut d,
                "recorder_flush_lag",
                "Seconds since the last successful flush (what a crash now would lose)",
                secs,
                Gauge,
            )?
            .gauge(&[], r.flush_lag_s)?;
            family(
                &mut d,
                "recorder_flush",
                "Duration of a flush of the session file",
                secs,
                Histogram,
            )?
            .histogram(&[], &r.flush)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
