//! The stand-in stimulator link: takes trigger commands off the rules ring the moment they
//! arrive, stamps the hand-off time, logs them and records them. The serial link to a
//! microcontroller replaces it (it will also fill in device acknowledgements).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::workers::Waker;
use crate::clock::monotonic_ns;
use crate::record::loop_records::TriggerRecord;

/// The logging sink's thread.
pub struct TriggerSink {
    /// From the rules thread.
    pub commands: rtrb::Consumer<TriggerRecord>,
    /// To the recorder.
    pub recorder: rtrb::Producer<TriggerRecord>,
    /// This thread's waker.
    pub waker: Arc<Waker>,
    /// Output names (indexed by `TriggerRecord::output`).
    pub outputs: Vec<String>,
    /// Set to stop (after the rules thread has stopped).
    pub stop: Arc<AtomicBool>,
    /// Live count of triggers handled.
    pub sent: Arc<std::sync::atomic::AtomicU64>,
    /// This thread's progress mark.
    pub heartbeat: Arc<crate::heartbeat::Heartbeat>,
}

impl TriggerSink {
    /// Runs until stopped and drained; returns how many triggers it handled and lost.
    pub fn run(mut self) -> (u64, u64) {
        self.waker.register();
        let (mut sent, mut lost) = (0u64, 0u64);
        loop {
            self.heartbeat.beat();
            let stopping = self.stop.load(Ordering::Acquire);
            let mut any = false;
            while let Ok(mut trigger) = self.commands.pop() {
                any = true;
                trigger.sent_ns = monotonic_ns();
                sent += 1;
                self.sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    output = self
                        .outputs
                        .get(trigger.output as usize)
                        .map(String::as_str)
                        .unwrap_or("?"),
                    channel = trigger.channel,
                    pulse_ms = trigger.pulse_width_ns as f64 / 1e6,
                    pulses = trigger.pulses,
                    frame = trigger.frame_index,
                    latency_ms = (trigger.sent_ns - trigger.capture_ns) as f64 / 1e6,
                    "trigger (logging sink: no stimulator link configured)"
                );
                if self.recorder.push(trigger).is_err() {
                    lost += 1;
                }
            }
            if stopping && !any {
                return (sent, lost);
            }
            if !any {
                std::thread::park_timeout(Duration::from_millis(20));
            }
        }
    }
}
