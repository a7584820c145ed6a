//! What the link does with each message from the device: clock-sync samples from PONGs,
//! acknowledgements matched to their command, refusals, faults, inputs and heartbeats.

use super::*;

impl Link {
    pub(super) fn handle(
        &self,
        msg: Message,
        t_recv: u64,
        fit: &mut DeviceClockFit,
        ping: &mut Option<(u32, u64)>,
        pending: &mut [Pending; IN_FLIGHT],
    ) -> Option<TriggerRecord> {
        match msg {
            Message::Pong { token, device_us } => {
                if let Some((t, t_send)) = *ping
                    && t == token
                {
                    // ... and the PONG (17 bytes on the wire) took this long to arrive.
                    let pong_ns = 17 * self.byte_ns;
                    if fit.add(SyncSample {
                        device_us,
                        host_send_ns: t_send,
                        host_recv_ns: t_recv.saturating_sub(pong_ns).max(t_send),
                    }) {
                        self.stats.sync_samples.fetch_add(1, Ordering::Relaxed);
                    }
                    *ping = None;
                }
                None
            }
            Message::PulseDone {
                seq,
                index,
                rise_us,
                fall_us,
                flags,
                ..
            } => {
                let slot = &mut pending[seq as usize % IN_FLIGHT];
                if !slot.in_use || slot.record.seq != seq {
                    return None;
                }
                let r = &mut slot.record;
                if index == 0 {
                    r.device_rise_us = rise_us;
                    r.ack_recv_ns = t_recv;
                }
                r.acked_pulses = r.acked_pulses.saturating_add(1);
                r.flags |= flags;
                if index + 1 >= r.pulses.max(1) {
                    // Mapped with the fit as it is when the train completes (the newest samples).
                    r.ack_rise_ns = fit.to_host_ns(r.device_rise_us).unwrap_or(0);
                    r.ack_fall_ns = fit.to_host_ns(fall_us).unwrap_or(0);
                    r.status = TriggerStatus::Acked as u8;
                    self.stats.acked.fetch_add(1, Ordering::Relaxed);
                    slot.in_use = false;
                    return Some(*r);
                }
                None
            }
            Message::Nack { seq, reason } => {
                let slot = &mut pending[seq as usize % IN_FLIGHT];
                if slot.in_use && slot.record.seq == seq {
                    slot.record.status = TriggerStatus::Nacked as u8;
                    slot.record.flags = reason;
                    slot.in_use = false;
                    self.stats.count_nack(reason);
                    tracing::warn!(
                        output = %self.name,
                        seq,
                        reason = super::super::codec::nack::name(reason),
                        "stimulator refused a trigger"
                    );
                    return Some(slot.record);
                }
                if seq >= CONFIG_SEQ_BASE {
                    tracing::warn!(
                        output = %self.name,
                        seq,
                        reason = super::super::codec::nack::name(reason),
                        "stimulator refused a configuration command (safety limits, fault clear or stop)"
                    );
                }
                None
            }
            Message::Fault {
                code,
                channel,
                detail,
                ..
            } => {
                self.stats.faults.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    output = %self.name,
                    fault = super::super::codec::fault::name(code),
                    channel,
                    detail,
                    "stimulator fault"
                );
                None
            }
            _ => None,
        }
    }
}
