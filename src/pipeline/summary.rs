//! The closed loop's end-of-session summary: per model rate and timing, per rule triggers and
//! ground-truth scores, decision latency.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::closed_loop::LoopReport;
use crate::record::RecordingReport;

/// p50 / p99 / max of a distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

impl Percentiles {
    /// Summarises a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50_ms: h.value_at_quantile(0.5) as f64 / 1e6,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1e6,
            max_ms: h.max() as f64 / 1e6,
        }
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.p50_ms, self.p99_ms, self.max_ms
        )
    }
}

/// One model or signal group.
#[derive(Debug, Clone, Serialize)]
pub struct ProducerSummary {
    /// Name.
    pub name: String,
    /// Frames processed.
    pub processed: u64,
    /// Frames processed per second of session.
    pub rate_hz: f64,
    /// Frames of the stream it skipped (latest-wins).
    pub skipped: u64,
    /// State resets after gaps (and the one at start).
    pub resets: u64,
    /// Failed runs.
    pub errors: u64,
    /// Rows in the file.
    pub rows_in_file: usize,
    /// Frame taken → input tensor ready.
    pub preprocess: Percentiles,
    /// Session run + decode.
    pub inference: Percentiles,
    /// Frame capture → output ready.
    pub capture_to_output: Percentiles,
}

/// One rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleSummary {
    /// Rule name.
    pub name: String,
    /// Evaluations.
    pub evaluations: u64,
    /// Triggers fired.
    pub triggers: u64,
    /// Activations suppressed by the refractory period.
    pub suppressed_refractory: u64,
    /// Activations suppressed by the rate limit.
    pub suppressed_rate: u64,
    /// Fires while the rule was disarmed (nothing sent, no trigger row).
    pub disarmed: u64,
    /// Fraction of triggers at frames showing the expected behavior (ground truth only).
    pub precision: Option<f64>,
    /// Fraction of bouts of the expected behavior with a trigger (ground truth only).
    pub recall: Option<f64>,
    /// Triggers at the expected behavior.
    pub true_positives: u64,
    /// Triggers at another behavior.
    pub false_positives: u64,
    /// Bouts of the expected behavior.
    pub bouts: u64,
}

/// One stimulator output.
#[derive(Debug, Clone, Serialize)]
pub struct OutputSummary {
    /// Output name.
    pub name: String,
    /// Port (or "logging sink").
    pub port: String,
    /// Commands written to the port.
    pub sent: u64,
    /// Trains fully acknowledged by the device.
    pub acked: u64,
    /// Commands refused by the device.
    pub nacked: u64,
    /// Commands refused by behavd's limits.
    pub blocked: u64,
    /// Commands that met a down link.
    pub link_down: u64,
    /// (Re)connections.
    pub connects: u64,
    /// Faults the device reported.
    pub faults: u64,
    /// Device frames dropped for framing/CRC errors.
    pub frames_bad: u64,
    /// Device clock fit: RMS residual, µs (None if never fitted).
    pub sync_residual_us: Option<f64>,
    /// Rule decision → command written to the port.
    pub decision_to_write: Percentiles,
    /// Rule decision → the device's rising edge (device clock mapped to the host).
    pub decision_to_edge: Percentiles,
    /// Pulses timed by the host (Firmata): no device edges or acknowledgements exist.
    pub host_timed: bool,
    /// Commands not written within `max_trigger_age_ms` (never sent).
    pub stale: u64,
    /// Commands decided while the session was stopping (not sent).
    pub stopping: u64,
    /// Sent trains never (fully) acknowledged.
    pub unacked: u64,
    /// Refusals that matched no outstanding command.
    pub stray_refusals: u64,
    /// Refusals of triggers by reason, in words.
    pub refusal_reasons: Vec<(String, u64)>,
    /// Pulses cut short by the session stop (recorded, with their real times).
    pub cut_by_stop: u64,
    /// Times the link went down during the session.
    pub disconnects: u64,
    /// The output may be absent (`optional = true`).
    pub optional: bool,
    /// It was not connected when the session started.
    pub down_at_start: bool,
    /// What the device reported about itself (firmware name and version).
    pub firmware: String,
}

impl OutputSummary {
    /// Why this output made the run degraded (down at start or lost during it), or None.
    pub fn degraded(&self) -> Option<String> {
        if self.down_at_start {
            Some(format!(
                "output `{}` was not connected at the session start{}",
                self.name,
                if self.connects > 0 {
                    " (it connected later)"
                } else {
                    " and never connected"
                }
            ))
        } else if self.disconnects > 0 {
            Some(format!(
                "output `{}` was lost {} time(s) during the session",
                self.name, self.disconnects
            ))
        } else {
            None
        }
    }
}

impl std::fmt::Display for OutputSummary {
    /// One line: counters, latencies, clock-sync residual (the CLI summary and the file's notes).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "output {} ({}): {} sent, {} acknowledged, {} refused, {} blocked by limits, {} while the link was down, {} connects, {} faults; clock-sync residual {}",
            self.name,
            self.port,
            self.sent,
            self.acked,
            self.nacked,
            self.blocked,
            self.link_down,
            self.connects,
            self.faults,
            self.sync_residual_us
                .map_or("n/a".into(), |r| format!("{r:.1} µs"))
        )?;
        if !self.refusal_reasons.is_empty() {
            let reasons: Vec<String> = self
                .refusal_reasons
                .iter()
                .map(|(why, n)| format!("{n} {why}"))
                .collect();
            write!(f, "; refused: {}", reasons.join(", "))?;
        }
        for (n, what) in [
            (self.stale, "stale (not sent within max_trigger_age_ms)"),
            (self.stopping, "not sent (session stopping)"),
            (self.unacked, "SENT BUT NOT ACKNOWLEDGED"),
            (self.stray_refusals, "stray refusals (matching no command)"),
            (self.cut_by_stop, "pulses cut by the stop (recorded)"),
            (self.disconnects, "disconnections"),
        ] {
            if n > 0 {
                write!(f, "; {n} {what}")?;
            }
        }
        if self.down_at_start {
            write!(f, "; NOT CONNECTED AT THE SESSION START (optional)")?;
        }
        if self.sent > 0 && self.host_timed {
            write!(
                f,
                "; decision → serial write of the first rise {} (host-timed: no device edges)",
                self.decision_to_write
            )?;
        } else if self.sent > 0 {
            write!(
                f,
                "; decision → serial write {}; decision → device edge {}",
                self.decision_to_write, self.decision_to_edge
            )?;
        }
        Ok(())
    }
}

/// The closed loop's summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoopSummary {
    /// Models and signal groups.
    pub producers: Vec<ProducerSummary>,
    /// Rules.
    pub rules: Vec<RuleSummary>,
    /// Triggers handed to the stimulator link.
    pub triggers_sent: u64,
    /// Trigger rows in the file.
    pub triggers_in_file: usize,
    /// Frame capture → rule decision, over all triggers.
    pub capture_to_decision: Percentiles,
    /// The daemon's own overhead per trigger: preprocessing + (decision − inference end).
    pub overhead: Percentiles,
    /// Stimulator outputs.
    pub outputs: Vec<OutputSummary>,
    /// Why the run was degraded (an output down at the start or lost during the session), or
    /// None; `behavd run` then exits with code 3.
    pub degraded: Option<String>,
}

/// Builds the summary from the threads' reports and the recorder's.
pub fn loop_summary(
    report: &LoopReport,
    recording: &RecordingReport,
    duration_s: f64,
) -> LoopSummary {
    let producers = report
        .producers
        .iter()
        .enumerate()
        .map(|(i, (name, stats, timings))| {
            let counts = stats.session();
            let processed = counts.processed;
            ProducerSummary {
                name: name.clone(),
                processed,
                rate_hz: processed as f64 / duration_s.max(1e-9),
                skipped: counts.skipped,
                resets: counts.resets,
                errors: counts.errors,
                rows_in_file: recording.output_rows.get(i).copied().unwrap_or(0),
                preprocess: Percentiles::of(&timings.preprocess),
                inference: Percentiles::of(&timings.inference),
                capture_to_output: Percentiles::of(&timings.capture_to_output),
            }
        })
        .collect();
    let outputs = report
        .outputs
        .iter()
        .map(|o| {
            // Counted from the session's start (the baseline), when there is one.
            let load =
                |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            let get = |f: fn(&crate::stim::link::LinkStats) -> &std::sync::atomic::AtomicU64| {
                o.stats.as_ref().map_or(0, |s| {
                    load(f(s)).saturating_sub(o.baseline.as_ref().map_or(0, |b| load(f(b))))
                })
            };
            OutputSummary {
                name: o.name.clone(),
                port: o.port.clone(),
                sent: get(|s| &s.sent),
                acked: get(|s| &s.acked),
                nacked: get(|s| &s.nacked),
                blocked: get(|s| &s.blocked),
                link_down: get(|s| &s.link_down),
                // Connections since the engine opened: whether the link was ever up, not
                // traffic of the session.
                connects: o.stats.as_ref().map_or(0, |s| load(&s.connects)),
                faults: get(|s| &s.faults),
                frames_bad: get(|s| &s.frames_bad),
                sync_residual_us: o.link.as_ref().and_then(|l| l.fit.map(|f| f.residual_us)),
                decision_to_write: o.link.as_ref().map_or_else(Percentiles::default, |l| {
                    Percentiles::of(&l.decision_to_write)
                }),
                decision_to_edge: o.link.as_ref().map_or_else(Percentiles::default, |l| {
                    Percentiles::of(&l.decision_to_edge)
                }),
                host_timed: o.link.as_ref().is_some_and(|l| l.host_timed),
                stale: get(|s| &s.stale),
                stopping: get(|s| &s.stopping),
                unacked: get(|s| &s.unacked),
                stray_refusals: get(|s| &s.stray_nacks),
                refusal_reasons: o.stats.as_ref().map_or_else(Vec::new, |s| {
                    s.nack_reasons
                        .iter()
                        .enumerate()
                        .map(|(r, n)| {
                            let base = o.baseline.as_ref().map_or(0, |b| load(&b.nack_reasons[r]));
                            (r, load(n).saturating_sub(base))
                        })
                        .filter(|&(_, n)| n > 0)
                        .map(|(r, n)| (crate::stim::codec::nack::name(r as u8).to_string(), n))
                        .collect()
                }),
                cut_by_stop: get(|s| &s.cut_by_stop),
                disconnects: get(|s| &s.disconnects),
                optional: o.optional,
                down_at_start: o.down_at_start,
                firmware: o
                    .stats
                    .as_ref()
                    .map_or_else(String::new, |s| s.info().firmware),
            }
        })
        .collect::<Vec<OutputSummary>>();
    let degraded: Vec<String> = outputs.iter().filter_map(OutputSummary::degraded).collect();
    let mut summary = LoopSummary {
        outputs,
        producers,
        triggers_sent: report.triggers_sent,
        triggers_in_file: recording.trigger_rows,
        degraded: (!degraded.is_empty()).then(|| degraded.join("; ")),
        ..LoopSummary::default()
    };
    if let Some(rules) = &report.rules {
        summary.capture_to_decision = Percentiles::of(&rules.capture_to_decision);
        summary.overhead = Percentiles::of(&rules.overhead);
        summary.rules = rules
            .rules
            .iter()
            .enumerate()
            .map(|(i, (name, c, score))| RuleSummary {
                name: name.clone(),
                disarmed: rules.disarmed.get(i).copied().unwrap_or(0),
                evaluations: c.evaluations,
                // A disarmed rule's fires sent nothing: they are not triggers.
                triggers: c
                    .fires
                    .saturating_sub(rules.disarmed.get(i).copied().unwrap_or(0)),
                suppressed_refractory: c.suppressed_refractory,
                suppressed_rate: c.suppressed_rate,
                precision: score.and_then(|s| s.precision()),
                recall: score.and_then(|s| s.recall()),
                true_positives: score.map_or(0, |s| s.true_positives),
                false_positives: score.map_or(0, |s| s.false_positives),
                bouts: score.map_or(0, |s| s.bouts),
            })
            .collect();
    }
    summary
}

fn ratio(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.3}"))
}

impl LoopSummary {
    /// Human-readable lines (also stored in the file's notes).
    pub fn notes(&self) -> String {
        let mut out = String::new();
        for p in &self.producers {
            out.push_str(&format!(
                "{}: {} frames ({:.2}/s), skipped {}, resets {}, errors {}; preprocess {}; inference {}; capture→output {}.\n",
                p.name, p.processed, p.rate_hz, p.skipped, p.resets, p.errors, p.preprocess, p.inference, p.capture_to_output
            ));
        }
        for r in &self.rules {
            out.push_str(&format!(
                "rule {}: {} triggers ({} suppressed by refractory, {} by rate, {} while disarmed) over {} evaluations; precision {} ({} of {}), recall {} ({} bouts).\n",
                r.name,
                r.triggers,
                r.suppressed_refractory,
                r.suppressed_rate,
                r.disarmed,
                r.evaluations,
                ratio(r.precision),
                r.true_positives,
                r.true_positives + r.false_positives,
                ratio(r.recall),
                r.bouts
            ));
        }
        for o in &self.outputs {
            out.push_str(&format!("{o}.\n"));
        }
        if let Some(why) = &self.degraded {
            out.push_str(&format!("DEGRADED RUN: {why}.\n"));
        }
        if !self.rules.is_empty() {
            out.push_str(&format!(
                "triggers: {} sent, {} in file; frame capture→decision {}; daemon overhead {}.\n",
                self.triggers_sent, self.triggers_in_file, self.capture_to_decision, self.overhead
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output() -> OutputSummary {
        OutputSummary {
            name: "stim".into(),
            port: "/dev/ttyACM0".into(),
            sent: 10,
            acked: 3,
            nacked: 1,
            blocked: 0,
            link_down: 0,
            connects: 1,
            faults: 0,
            frames_bad: 0,
            sync_residual_us: None,
            decision_to_write: Percentiles::default(),
            decision_to_edge: Percentiles::default(),
            host_timed: false,
            stale: 2,
            stopping: 0,
            unacked: 7,
            stray_refusals: 1,
            refusal_reasons: vec![("duty-cycle cap".into(), 1)],
            cut_by_stop: 0,
            disconnects: 0,
            optional: false,
            down_at_start: false,
            firmware: String::new(),
        }
    }

    /// The output line says in words what was refused and why, what went stale, what was never
    /// acknowledged and what refusals were stray; a connected output is not degraded.
    #[test]
    fn the_output_line_names_refusals_staleness_and_missing_acknowledgements() {
        let o = output();
        let line = o.to_string();
        for part in [
            "refused: 1 duty-cycle cap",
            "2 stale",
            "7 SENT BUT NOT ACKNOWLEDGED",
            "1 stray refusals",
        ] {
            assert!(line.contains(part), "`{part}` not in {line}");
        }
        assert!(!line.contains("reason="), "{line}");
        assert_eq!(o.degraded(), None);
        let down = OutputSummary {
            down_at_start: true,
            optional: true,
            connects: 0,
            ..output()
        };
        assert!(
            down.to_string()
                .contains("NOT CONNECTED AT THE SESSION START")
        );
        assert_eq!(
            down.degraded().as_deref(),
            Some("output `stim` was not connected at the session start and never connected")
        );
    }
}
