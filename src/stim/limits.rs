//! Daemon-side limits of an output, applied before a trigger reaches the wire: maximum on
//! time, duty cycle over a sliding window, and the per-channel refractory period. Both link
//! kinds (behavd protocol and Firmata) use them; nothing allocates after construction.

use crate::config::output::OutputLimits;
use crate::record::loop_records::TriggerRecord;

/// Trains remembered per channel for the duty-cycle window.
const TRAINS_REMEMBERED: usize = 16;

/// Sliding-window on-time bookkeeping of one channel.
#[derive(Clone, Copy, Default)]
struct ChannelBudget {
    /// (start_ns, on_ns) of the recent trains, as a small ring.
    trains: [(u64, u64); TRAINS_REMEMBERED],
    next: usize,
    last_start_ns: Option<u64>,
}

impl ChannelBudget {
    fn on_in_window(&self, now: u64, window_ns: u64) -> u64 {
        self.trains
            .iter()
            .filter(|(start, _)| *start + window_ns > now)
            .map(|(_, on)| *on)
            .sum()
    }
}

/// The limits of one output and the recent trains of each of its channels.
pub struct DaemonLimits {
    limits: OutputLimits,
    budgets: Vec<ChannelBudget>,
}

impl DaemonLimits {
    /// Limits for an output with `channels` channels.
    pub fn new(limits: OutputLimits, channels: usize) -> Self {
        Self {
            limits,
            budgets: vec![ChannelBudget::default(); channels.max(1)],
        }
    }

    /// The configured limits.
    pub fn limits(&self) -> &OutputLimits {
        &self.limits
    }

    /// Why `cmd` may not be sent at `now`, if it may not.
    pub fn violation(&self, cmd: &TriggerRecord, now: u64) -> Option<&'static str> {
        let l = &self.limits;
        if cmd.pulse_width_ns as f64 > l.max_on_ms * 1e6 {
            return Some("pulse width above max_on_ms");
        }
        let budget = self.budgets.get(cmd.channel as usize)?;
        if let Some(last) = budget.last_start_ns
            && now.saturating_sub(last) as f64 / 1e9 < l.refractory_s
        {
            return Some("refractory period of the output");
        }
        let window_ns = (l.duty_window_s * 1e9) as u64;
        let on = cmd.pulse_width_ns * cmd.pulses.max(1) as u64;
        if (budget.on_in_window(now, window_ns) + on) as f64 > l.max_duty * window_ns as f64 {
            return Some("duty cycle above max_duty");
        }
        None
    }

    /// Counts `cmd`, started at `start_ns`, against its channel's budget.
    pub fn commit(&mut self, cmd: &TriggerRecord, start_ns: u64) {
        if let Some(b) = self.budgets.get_mut(cmd.channel as usize) {
            b.trains[b.next] = (start_ns, cmd.pulse_width_ns * cmd.pulses.max(1) as u64);
            b.next = (b.next + 1) % TRAINS_REMEMBERED;
            b.last_start_ns = Some(start_ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(channel: u8, width_ms: u64, pulses: u16) -> TriggerRecord {
        TriggerRecord {
            channel,
            pulse_width_ns: width_ms * 1_000_000,
            pulses,
            period_ns: 2 * width_ms * 1_000_000,
            ..TriggerRecord::default()
        }
    }

    #[test]
    fn max_on_refractory_and_duty_are_enforced_per_channel() {
        let mut l = DaemonLimits::new(
            OutputLimits {
                max_on_ms: 100.0,
                max_duty: 0.3,
                duty_window_s: 1.0,
                refractory_s: 0.2,
                watchdog_ms: 0,
            },
            2,
        );
        let s = 1_000_000_000u64;
        assert_eq!(
            l.violation(&cmd(0, 150, 1), s),
            Some("pulse width above max_on_ms")
        );
        assert_eq!(l.violation(&cmd(0, 50, 4), s), None);
        l.commit(&cmd(0, 50, 4), s);
        assert_eq!(
            l.violation(&cmd(0, 10, 1), s + 100_000_000),
            Some("refractory period of the output")
        );
        // 200 ms used in the window: 150 more would exceed 300 ms, 100 more would not.
        assert_eq!(
            l.violation(&cmd(0, 50, 3), s + 300_000_000),
            Some("duty cycle above max_duty")
        );
        assert_eq!(l.violation(&cmd(0, 50, 2), s + 300_000_000), None);
        // The other channel has its own budget; the window slides.
        assert_eq!(l.violation(&cmd(1, 50, 4), s + 100_000_000), None);
        assert_eq!(l.violation(&cmd(0, 50, 5), s + 1_100_000_000), None);
    }
}
