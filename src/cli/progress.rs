//! The live one-line status of a running session (only on a terminal).

use std::io::Write;

use behavd::clock::monotonic_ns;
use behavd::pipeline::RunningSession;

/// Redraws the status line with frames, fps, drops per stream, model outputs, triggers and
/// file size.
pub struct Progress {
    last: Vec<(u64, u64)>,
}

impl Progress {
    /// A status line for `streams` streams.
    pub fn new(streams: usize) -> Self {
        Self {
            last: vec![(0, monotonic_ns()); streams],
        }
    }

    /// Redraws the line.
    pub fn draw(&mut self, session: &RunningSession) {
        let now = monotonic_ns();
        let mut line = format!("\r\x1b[2K{:7.1} s", session.clock.seconds(now));
        for (i, (name, stats)) in session.live_stats().enumerate() {
            let (prev_frames, prev_t) = self.last[i];
            let fps =
                (stats.captured - prev_frames) as f64 / ((now - prev_t) as f64 * 1e-9).max(1e-3);
            self.last[i] = (stats.captured, now);
            line.push_str(&format!(
                " | {name} {} fr {fps:5.1} fps {} drop",
                stats.recorded,
                stats.dropped_total()
            ));
        }
        let inferred: u64 = session
            .live_loop_stats()
            .map(|(_, processed, _)| processed)
            .sum();
        if inferred > 0 {
            line.push_str(&format!(
                " | {inferred} outputs {} triggers",
                session.live_triggers()
            ));
        }
        let bytes = std::fs::metadata(&session.path)
            .map(|m| m.len())
            .unwrap_or(0);
        line.push_str(&format!(" | {:.1} MB", bytes as f64 / 1e6));
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
    }

    /// Ends the line.
    pub fn finish(&self) {
        eprintln!();
    }
}
