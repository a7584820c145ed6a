//! [`LiveControls::pulse`]: a manual test pulse on a stimulator output, through the same
//! daemon-side limits and firmware as a rule's trigger, recorded in the trigger table under the
//! rule `manual` and answered with what became of it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{ControlApplied, ControlError, LiveControls, check_origin, names};
use crate::clock::monotonic_ns;
use crate::config::output::OutputLimits;
use crate::record::control_log::ControlChange;
use crate::record::loop_records::{TriggerRecord, TriggerStatus};
use crate::reply::Reply;
use crate::stim::manual::{MANUAL_PULSES, ManualPulse, PulseOutcome};

/// How long past the pulse's end its acknowledgement is waited for (the link records a train
/// unacknowledged one second after its end).
const ACK_WAIT: Duration = Duration::from_millis(2500);

/// The limit behind a daemon-side refusal, with its configured value.
fn limit_of(reason: &str, l: &OutputLimits) -> String {
    match reason {
        r if r.contains("max_on_ms") => format!("max_on_ms = {}", l.max_on_ms),
        r if r.contains("refractory") => format!("refractory_s = {}", l.refractory_s),
        r if r.contains("max_duty") => format!(
            "max_duty = {} over duty_window_s = {}",
            l.max_duty, l.duty_window_s
        ),
        _ => "the output's channel".into(),
    }
}

impl LiveControls {
    /// One pulse of `on_ms` milliseconds on channel 0 of `output`. Returns once the device
    /// acknowledged it (or the link timed it, for Firmata); a pulse that a limit refused, the
    /// device refused, or that could not be sent is an error saying why (the limit and its
    /// value). Either way it is a row of the trigger table (rule `manual`) and, while
    /// recording, of the control-changes table.
    pub fn pulse(
        &self,
        output: &str,
        on_ms: f64,
        origin: &str,
    ) -> Result<ControlApplied, ControlError> {
        self.open()?;
        check_origin(origin)?;
        let (index, target) = self
            .inner
            .outputs
            .iter()
            .enumerate()
            .find(|(_, o)| o.name == output)
            .ok_or_else(|| ControlError::UnknownOutput {
                output: output.into(),
                known: names(self.inner.outputs.iter().map(|o| o.name.as_str())),
            })?;
        let (Some((queue, waker)), Some(limits)) = (&target.link, &target.limits) else {
            return Err(ControlError::NoLink {
                output: output.into(),
            });
        };
        if !on_ms.is_finite() || on_ms <= 0.0 {
            return Err(ControlError::Invalid {
                field: "on_ms",
                why: format!("{on_ms}: a pulse's on time is a positive number of milliseconds"),
            });
        }
        if on_ms > limits.max_on_ms {
            // The link would block it too; refused here before anything is queued.
            return Err(ControlError::PulseRefused {
                output: output.into(),
                on_ms,
                reason: "pulse width above max_on_ms".into(),
                limit: format!("max_on_ms = {}", limits.max_on_ms),
            });
        }
        let reservation = self.inner.log.reserve()?;
        let rules = self.inner.rules.as_ref().map_or(0, |(n, _)| n.len());
        let manual = loop {
            let n = self.inner.next_manual.fetch_add(1, Ordering::Relaxed);
            if n != 0 {
                break n;
            }
        };
        let now = monotonic_ns();
        let record = TriggerRecord {
            rule: rules as u32,
            output: index.min(u8::MAX as usize) as u8,
            channel: 0,
            pulse_width_ns: (on_ms * 1e6).round() as u64,
            pulses: 1,
            period_ns: 0,
            capture_ns: now,
            infer_start_ns: now,
            infer_end_ns: now,
            decision_ns: now,
            truth: -1,
            manual,
            ..TriggerRecord::default()
        };
        let reply = Arc::new(Reply::<PulseOutcome>::for_current_thread());
        if !queue.push(ManualPulse {
            record,
            reply: Arc::clone(&reply),
        }) {
            return Err(ControlError::InboxFull {
                target: output.into(),
                slots: MANUAL_PULSES,
            });
        }
        waker.wake();
        let wait = Duration::from_nanos(record.pulse_width_ns) + ACK_WAIT;
        let row = |time_ns: u64, text: String, result: String| ControlChange {
            time_ns,
            origin: origin.into(),
            target: output.into(),
            name: "pulse".into(),
            value: on_ms,
            text,
            result,
        };
        let outcome = match reply.wait(Instant::now() + wait, Duration::from_secs(2)) {
            Ok(outcome) => *outcome,
            Err(never) => {
                let what = if never {
                    "not sent: the link thread never took it"
                } else {
                    "the link thread took it; see the trigger table"
                };
                if !never {
                    self.finish(
                        reservation,
                        row(
                            monotonic_ns(),
                            "channel 0".into(),
                            format!("unanswered: {what}"),
                        ),
                    );
                }
                return Err(ControlError::Timeout {
                    target: output.into(),
                    name: "pulse".into(),
                    waited_ms: wait.as_millis() as u64,
                    what,
                });
            }
        };
        let r = outcome.record;
        let at = if r.sent_ns > 0 {
            r.sent_ns
        } else {
            r.decision_ns
        };
        let text = format!("channel {}, trigger status {}", r.channel, r.status);
        let status = TriggerStatus::name(r.status);
        match r.status {
            s if s == TriggerStatus::Acked as u8
                || s == TriggerStatus::HostTimed as u8
                || s == TriggerStatus::Sent as u8 =>
            {
                Ok(self.finish(reservation, row(at, text, status.into())))
            }
            s if s == TriggerStatus::Blocked as u8 => {
                let reason = outcome.blocked_by.unwrap_or("blocked by behavd's limits");
                let limit = limit_of(reason, limits);
                self.finish(
                    reservation,
                    row(at, text, format!("blocked: {reason} ({limit})")),
                );
                Err(ControlError::PulseRefused {
                    output: output.into(),
                    on_ms,
                    reason: reason.into(),
                    limit,
                })
            }
            s if s == TriggerStatus::Nacked as u8 => {
                let reason = crate::stim::codec::nack::name(r.flags);
                self.finish(
                    reservation,
                    row(at, text, format!("refused by the device: {reason}")),
                );
                Err(ControlError::PulseRefused {
                    output: output.into(),
                    on_ms,
                    reason: format!("refused by the device: {reason}"),
                    limit: "the firmware's safety limits".into(),
                })
            }
            _ => {
                self.finish(reservation, row(at, text, format!("not sent: {status}")));
                Err(ControlError::PulseNotSent {
                    output: output.into(),
                    status,
                })
            }
        }
    }
}
