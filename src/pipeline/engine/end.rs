//! Ending the session: outputs halted first, every thread joined, the file finalized, the
//! summary built from the session's own counters.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use super::Engine;
use crate::pipeline::capture::CaptureEnd;
use crate::pipeline::session::{SessionSummary, StreamSummary};
use crate::pipeline::summary::loop_summary;
use crate::record::{RecordError, RecordingReport, finalize};
use crate::stats::{DropCause, StreamStats};

impl Engine {
    /// Ends the session: stimulator outputs off first, then every thread stopped and joined,
    /// the file closed and finalized with `reason` (and the request's notes) in its notes.
    /// Consumes the engine (devices closed): open a new one to be live again. Without a
    /// session the engine is closed and this is an error.
    pub fn end(self, reason: &str) -> Result<SessionSummary> {
        self.end_draining(reason, &mut Vec::new())
    }

    /// [`end`](Self::end), and the events queued until the last thread stopped (the session's
    /// last triggers among them) into `events`: with the calls to
    /// [`drain_events`](Self::drain_events) before, every event of the session.
    pub fn end_draining(
        self,
        reason: &str,
        events: &mut Vec<super::EngineEvent>,
    ) -> Result<SessionSummary> {
        if self.session.is_none() {
            self.close()?;
            anyhow::bail!("no session is recording");
        }
        let mut stopped = self.stop_threads();
        stopped.events.drain_ring(&stopped.names, events);
        let active = stopped.session.expect("checked above");
        let duration_s = active.clock.seconds(stopped.ended_ns).max(0.0);
        let (report, mut recording_error) = recording_outcome(stopped.recording, &stopped.stats);
        if let Some(e) = &recording_error {
            tracing::error!(error = %e, "recording failed");
        }
        let streams: Vec<StreamSummary> = stopped
            .stream_names
            .iter()
            .zip(&stopped.stats)
            .zip(stopped.ends)
            .zip(&report.frames)
            .map(|(((name, stats), end), &frames_in_file)| {
                let stats = stats.session_snapshot();
                StreamSummary {
                    name: name.clone(),
                    achieved_fps: stats.captured as f64 / duration_s.max(1e-9),
                    stats,
                    frames_in_file,
                    failure: match end {
                        CaptureEnd::Stopped => None,
                        CaptureEnd::Failed(why) => Some(why),
                    },
                }
            })
            .collect();
        let closed_loop = loop_summary(&stopped.loop_report, &report, duration_s);
        let mut notes = String::new();
        if let Some(n) = &active.notes {
            notes.push_str(n.trim_end());
            notes.push_str("\n\n");
        }
        notes.push_str(&session_notes(reason, duration_s, &streams));
        if let Some(e) = &recording_error {
            notes.push_str(&failure_note(e));
        }
        notes.push_str(&closed_loop.notes());
        let path = active.path;
        match finalize::finalize(&path, &notes) {
            Ok(done) => {
                if !done.removed.is_empty() {
                    tracing::info!(removed = ?done.removed, "pruned empty objects from the session file");
                }
                if !done.trimmed.is_empty() {
                    tracing::warn!(trimmed = ?done.trimmed, "cut datasets to the rows every part of their series holds");
                }
            }
            Err(e) => {
                let e = match crate::record::os_error_of(&e) {
                    Some(os) => format!("cannot finalize {}: {os} ({e})", path.display()),
                    None => format!("cannot finalize {}: {e}", path.display()),
                };
                tracing::error!(error = %e, "the session file was closed but not finalized");
                recording_error = Some(match recording_error {
                    Some(first) => format!("{first}; then {e}"),
                    None => e,
                });
            }
        }
        let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Ok(SessionSummary {
            path,
            file_bytes,
            duration_s,
            streams,
            gap_rows: report.gap_rows,
            closed_loop,
            recording_error,
        })
    }
}

/// The recorder's report and why it failed, if it did. A recorder that could not even close
/// the file reports no counts: the stream counters stand in for them.
fn recording_outcome(
    joined: Result<Option<RecordingReport>, RecordError>,
    stats: &[Arc<StreamStats>],
) -> (RecordingReport, Option<String>) {
    let standin = || RecordingReport {
        path: PathBuf::new(),
        frames: stats
            .iter()
            .map(|s| s.session_snapshot().recorded)
            .collect(),
        gap_rows: 0,
        output_rows: Vec::new(),
        trigger_rows: 0,
        failure: None,
    };
    match joined {
        Ok(Some(report)) => {
            let failure = report.failure.clone();
            (report, failure)
        }
        Ok(None) => (
            standin(),
            Some("the recorder ended before the session file was created".into()),
        ),
        Err(e) => (
            standin(),
            Some(format!(
                "{e}; the file could not be closed and holds what was flushed before"
            )),
        ),
    }
}

/// The notes' paragraph on a failed recording.
fn failure_note(error: &str) -> String {
    format!(
        "Recording failed: {error}. This file holds what was written before the failure, every \
         dataset of a series or table cut to the same number of rows; frames captured after it \
         are not in the file.\n"
    )
}

fn session_notes(reason: &str, duration_s: f64, streams: &[StreamSummary]) -> String {
    let mut notes = format!("Session stopped: {reason}. Duration {duration_s:.3} s.\n");
    for s in streams {
        let drops = DropCause::ALL
            .iter()
            .map(|c| format!("{} {}", c.label(), s.stats.dropped[*c as usize]))
            .collect::<Vec<_>>()
            .join(", ");
        notes.push_str(&format!(
            "{}: captured {}, recorded {}, dropped {} ({drops}), {:.2} fps{}.\n",
            s.name,
            s.stats.captured,
            s.frames_in_file,
            s.stats.dropped_total(),
            s.achieved_fps,
            s.failure
                .as_ref()
                .map(|f| format!(", capture failed: {f}"))
                .unwrap_or_default()
        ));
    }
    notes
}
