//! Opening the port and greeting the device: HELLO → CAPABILITIES, the channel map checked
//! against the device, then the safety configuration and CLEAR_FAULTS.

use super::*;

impl Link {
    /// Opens the port, says HELLO, checks CAPABILITIES, sends the safety configuration.
    pub(super) fn connect(
        &self,
        decoder: &mut FrameDecoder,
        fit: &mut DeviceClockFit,
    ) -> Result<Connected, String> {
        let mut p = crate::stim::ports::open_port(&self.port, self.baud)?;
        decoder.reset();
        fit.reset();
        let mut out = [0u8; 80];
        let mut buf = [0u8; 256];
        let _ = p.write_all(&[0]);
        let n = Message::Hello { protocol: 1 }.encode(&mut out);
        p.write_all(&out[..n]).map_err(|e| e.to_string())?;
        let deadline = monotonic_ns() + HELLO_TIMEOUT_NS;
        let mut capabilities = None;
        while capabilities.is_none() && monotonic_ns() < deadline {
            if let Ok(k) = p.read(&mut buf) {
                for msg in decoder.feed(&buf[..k]).flatten() {
                    if let Message::Capabilities {
                        protocol,
                        channels,
                        fw_major,
                        fw_minor,
                        fw_patch,
                        inputs,
                        board,
                        ..
                    } = msg
                    {
                        capabilities = Some((
                            protocol,
                            channels,
                            (fw_major, fw_minor, fw_patch),
                            (inputs, board),
                        ));
                    }
                }
            }
        }
        let Some((protocol, channels, fw, (inputs, board))) = capabilities else {
            return Err(format!(
                "{}: the device did not answer HELLO within 2 s (silent, not a behavd stimulator, or wrong baud rate)",
                self.port
            ));
        };
        if protocol != 1 {
            return Err(format!(
                "{}: the device speaks protocol {protocol}, behavd speaks 1",
                self.port
            ));
        }
        for (i, &ch) in self.channels.iter().enumerate() {
            if ch >= channels {
                return Err(format!(
                    "{}: channel {i} maps to device channel {ch}, the device has {channels}",
                    self.port
                ));
            }
        }
        let l = &self.limits;
        for (i, &ch) in self.channels.iter().enumerate() {
            let msg = Message::SetSafety {
                seq: 60000 + i as u16,
                channel: ch,
                max_on_us: (l.max_on_ms * 1000.0) as u32,
                max_duty_permille: (l.max_duty * 1000.0).round().clamp(1.0, 1000.0) as u16,
                duty_window_ms: (l.duty_window_s * 1000.0).round().clamp(1.0, 65535.0) as u16,
                watchdog_ms: l.watchdog_ms.min(65535) as u16,
            };
            let n = msg.encode(&mut out);
            p.write_all(&out[..n]).map_err(|e| e.to_string())?;
        }
        let n = Message::ClearFaults { seq: 60999 }.encode(&mut out);
        p.write_all(&out[..n]).map_err(|e| e.to_string())?;
        tracing::info!(
            output = %self.name,
            port = %self.port,
            firmware = %format!("{}.{}.{}", fw.0, fw.1, fw.2),
            channels,
            "stimulator connected; safety limits sent"
        );
        let board = String::from_utf8_lossy(&board)
            .trim_end_matches('\0')
            .to_string();
        Ok(Connected {
            port: p,
            firmware: fw,
            channels,
            description: format!(
                "behavd protocol {protocol} firmware {}.{}.{} on board \"{board}\" ({channels} channels, {inputs} inputs)",
                fw.0, fw.1, fw.2
            ),
        })
    }
}
