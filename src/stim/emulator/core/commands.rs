//! The emulated device's receive path and command handling: bytes into frames, frames into
//! the firmware's answers (OK, NACK with the reason precedence of PROTOCOL.md, PONG, ...).

use super::*;

impl Core {
    pub(super) fn rx_byte(&mut self, t_rx: u64, b: u8) {
        let mut payload = [0u8; 64];
        let n = match self.decoder.push_raw(b) {
            None => return,
            Some(Ok(p)) => {
                payload[..p.len()].copy_from_slice(p);
                p.len()
            }
            Some(Err(e)) => {
                let t = self.advance(t_rx);
                self.rx_errors = self.rx_errors.wrapping_add(1);
                if let FrameError::Overflow { discarded } = e {
                    self.faults |= fault_bit::RX_OVERFLOW;
                    self.send(Message::Fault {
                        code: fault::RX_OVERFLOW,
                        channel: 0,
                        device_us: t,
                        detail: discarded as u32,
                    });
                }
                self.publish();
                return;
            }
        };
        let t = self.advance(t_rx);
        // Every valid frame feeds the watchdog.
        self.last_valid_us = t;
        self.watchdog_fired = false;
        lock(&self.shared).frames_ok += 1;
        let payload = &payload[..n];
        let seq_guess = || {
            u16::from_le_bytes([
                payload.get(1).copied().unwrap_or(0),
                payload.get(2).copied().unwrap_or(0),
            ])
        };
        match Message::decode(payload) {
            Ok(m) if m.is_host_to_device() => self.handle(m, t),
            Ok(_) | Err(FrameError::UnknownType(_)) => self.send(Message::Nack {
                seq: seq_guess(),
                reason: nack::UNKNOWN_TYPE,
            }),
            Err(_) => self.send(Message::Nack {
                seq: seq_guess(),
                reason: nack::BAD_LENGTH,
            }),
        }
        // A command may have made events due now (a train's first rising edge).
        self.run_due(t);
    }

    fn check_channel(&self, seq: u16, channel: u8) -> Result<usize, Message> {
        if (channel as usize) < self.channels.len() {
            Ok(channel as usize)
        } else {
            Err(Message::Nack {
                seq,
                reason: nack::BAD_CHANNEL,
            })
        }
    }

    fn handle(&mut self, m: Message, t: u64) {
        let reply = match m {
            Message::Hello { .. } => Ok(self.caps),
            Message::Ping { token } => Ok(Message::Pong {
                token,
                device_us: t,
            }),
            Message::HostHeartbeat => return,
            Message::Pulse {
                seq,
                channel,
                width_us,
                count,
                period_us,
            } => match self.pulse(seq, channel, width_us, count, period_us, t) {
                Ok(()) => return,
                Err(nack) => Err(nack),
            },
            Message::SetLevel {
                seq,
                channel,
                level,
            } => self.set_level(seq, channel, level, t),
            Message::StopAll { seq } => {
                for ch in 0..self.channels.len() {
                    self.cancel_channel(ch, t);
                }
                Ok(Message::Ok { seq, device_us: t })
            }
            Message::SetSafety {
                seq,
                channel,
                max_on_us,
                max_duty_permille,
                duty_window_ms,
                watchdog_ms,
            } => self.check_channel(seq, channel).and_then(|ch| {
                if max_duty_permille == 0 || max_duty_permille > 1000 {
                    return Err(Message::Nack {
                        seq,
                        reason: nack::BAD_ARGUMENT,
                    });
                }
                self.channels[ch].safety = Safety {
                    max_on_us,
                    max_duty_permille,
                    duty_window_ms,
                };
                self.watchdog_ms = watchdog_ms;
                Ok(Message::Ok { seq, device_us: t })
            }),
            Message::ClearFaults { seq } => {
                self.faults = 0;
                self.publish();
                Ok(Message::Ok { seq, device_us: t })
            }
            // Device → host types are answered as unknown by `rx_byte`.
            _ => return,
        };
        self.send(match reply {
            Ok(m) | Err(m) => m,
        });
    }

    fn pulse(
        &mut self,
        seq: u16,
        channel: u8,
        width_us: u32,
        count: u16,
        period_us: u32,
        t: u64,
    ) -> Result<(), Message> {
        let ch = self.check_channel(seq, channel)?;
        let nack = |reason| Message::Nack { seq, reason };
        if width_us == 0 || count == 0 || (count > 1 && period_us <= width_us) {
            return Err(nack(nack::BAD_ARGUMENT));
        }
        if self.faults & fault_bit::WATCHDOG != 0 {
            return Err(nack(nack::FAULT_LATCHED));
        }
        let c = &self.channels[ch];
        if c.safety.duty_capped() {
            // History, the running on-interval (cut now if the train is accepted), the train.
            let w = c.safety.effective_width(width_us);
            let period = if count > 1 { period_us as u64 } else { 0 };
            let running = c.on.map(|(rise, _)| (rise, t));
            let planned = (0..count as u64).map(|i| (t + i * period, t + i * period + w));
            let on = c.history.iter().copied().chain(running).chain(planned);
            if max_window_on_time(on, c.safety.window_us()) > c.safety.cap_us() {
                return Err(nack(nack::DUTY_CYCLE));
            }
        }
        self.cancel_channel(ch, t);
        self.channels[ch].train = Some(Train {
            seq,
            width_us,
            count,
            period_us,
            start_us: t,
            next_index: 0,
            skipped: 0,
        });
        Ok(())
    }

    fn set_level(&mut self, seq: u16, channel: u8, level: u8, t: u64) -> Result<Message, Message> {
        let ch = self.check_channel(seq, channel)?;
        if level > 1 {
            return Err(Message::Nack {
                seq,
                reason: nack::BAD_ARGUMENT,
            });
        }
        if level == 1 && self.faults & fault_bit::WATCHDOG != 0 {
            return Err(Message::Nack {
                seq,
                reason: nack::FAULT_LATCHED,
            });
        }
        let c = &self.channels[ch];
        let held_on = matches!(c.on, Some((_, On::Level)));
        if level == 0 || !held_on {
            self.cancel_channel(ch, t);
            if level == 1 {
                self.channels[ch].on = Some((t, On::Level));
                self.set_output(ch, 1, t);
            }
        }
        Ok(Message::Ok { seq, device_us: t })
    }
}
