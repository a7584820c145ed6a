//! The protocol v1 messages and their field encoding.

use super::framing::{FrameError, encode_frame};
use super::{MAX_FRAME, MAX_PAYLOAD, msg_type};
/// One protocol v1 message, host → device or device → host (PROTOCOL.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// 0x01 host → device: opens the conversation; the device answers CAPABILITIES.
    Hello {
        /// Protocol version the host speaks (1).
        protocol: u8,
    },
    /// 0x02 host → device: clock-sync probe; the device answers PONG.
    Ping {
        /// Opaque token echoed in PONG.
        token: u32,
    },
    /// 0x03 host → device: a train of `count` pulses of `width_us`, rising edges `period_us`
    /// apart.
    Pulse {
        /// Host sequence number.
        seq: u16,
        /// Output channel.
        channel: u8,
        /// Pulse width in µs (≥ 1).
        width_us: u32,
        /// Number of pulses (≥ 1).
        count: u16,
        /// Rising-edge period in µs (> width when count > 1).
        period_us: u32,
    },
    /// 0x04 host → device: hold a channel at a level.
    SetLevel {
        /// Host sequence number.
        seq: u16,
        /// Output channel.
        channel: u8,
        /// 0 = off, 1 = on.
        level: u8,
    },
    /// 0x05 host → device: every channel off, trains cancelled.
    StopAll {
        /// Host sequence number.
        seq: u16,
    },
    /// 0x06 host → device: per-channel limits and the global watchdog.
    SetSafety {
        /// Host sequence number.
        seq: u16,
        /// Output channel the limits apply to.
        channel: u8,
        /// Maximum on time in µs (0 = no limit).
        max_on_us: u32,
        /// Duty-cycle cap in ‰ (1–1000; 1000 = no cap).
        max_duty_permille: u16,
        /// Sliding window of the duty-cycle cap, ms.
        duty_window_ms: u16,
        /// Host watchdog in ms (0 = off); global.
        watchdog_ms: u16,
    },
    /// 0x07 host → device: feeds the watchdog.
    HostHeartbeat,
    /// 0x08 host → device: clears latched fault bits.
    ClearFaults {
        /// Host sequence number.
        seq: u16,
    },
    /// 0x80 device → host: a command took effect.
    Ok {
        /// Sequence number of the command.
        seq: u16,
        /// Device time the command took effect.
        device_us: u64,
    },
    /// 0x81 device → host: answer to HELLO.
    Capabilities {
        /// Protocol version the device speaks.
        protocol: u8,
        /// Firmware major version.
        fw_major: u8,
        /// Firmware minor version.
        fw_minor: u8,
        /// Firmware patch version.
        fw_patch: u8,
        /// Number of output channels.
        channels: u8,
        /// Number of digital inputs.
        inputs: u8,
        /// Resolution of device times in ns.
        tick_ns: u16,
        /// Board name, ASCII, zero padded.
        board: [u8; 8],
    },
    /// 0x82 device → host: answer to PING.
    Pong {
        /// Token of the PING.
        token: u32,
        /// Device time read while handling the PING.
        device_us: u64,
    },
    /// 0x83 device → host: one pulse of a train has ended.
    PulseDone {
        /// Sequence number of the PULSE.
        seq: u16,
        /// Output channel.
        channel: u8,
        /// 0-based pulse index within the train.
        index: u16,
        /// Device time of the rising edge.
        rise_us: u64,
        /// Device time of the falling edge.
        fall_us: u64,
        /// [`pulse_flag`] bits.
        flags: u8,
    },
    /// 0x84 device → host: a command was refused.
    Nack {
        /// Sequence number of the command.
        seq: u16,
        /// [`nack`] reason.
        reason: u8,
    },
    /// 0x85 device → host: an edge on a digital input.
    InputEvent {
        /// Input number.
        input: u8,
        /// Level after the edge.
        level: u8,
        /// Device time of the edge.
        device_us: u64,
        /// Edges seen on this input since reset.
        count: u32,
    },
    /// 0x86 device → host: periodic status (every 250 ms).
    DeviceHeartbeat {
        /// Device time.
        device_us: u64,
        /// Latched [`fault_bit`]s.
        faults: u8,
        /// Frames dropped for COBS/length/CRC errors since reset (wrapping).
        rx_errors: u16,
    },
    /// 0x87 device → host: a safety event.
    Fault {
        /// [`fault`] code.
        code: u8,
        /// Channel concerned.
        channel: u8,
        /// Device time of the event.
        device_us: u64,
        /// Code-specific detail.
        detail: u32,
    },
}

struct Writer<'a> {
    buf: &'a mut [u8; MAX_PAYLOAD],
    n: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf[self.n..self.n + bytes.len()].copy_from_slice(bytes);
        self.n += bytes.len();
        self
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.put(&[v])
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
}

/// Reads little-endian fields; the caller has checked the length, and a short read yields zeros
/// rather than a panic.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.buf.get(self.pos..self.pos + N) {
            out.copy_from_slice(src);
        }
        self.pos += N;
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

impl Message {
    /// The type byte.
    pub fn msg_type(&self) -> u8 {
        use msg_type as t;
        match self {
            Message::Hello { .. } => t::HELLO,
            Message::Ping { .. } => t::PING,
            Message::Pulse { .. } => t::PULSE,
            Message::SetLevel { .. } => t::SET_LEVEL,
            Message::StopAll { .. } => t::STOP_ALL,
            Message::SetSafety { .. } => t::SET_SAFETY,
            Message::HostHeartbeat => t::HOST_HEARTBEAT,
            Message::ClearFaults { .. } => t::CLEAR_FAULTS,
            Message::Ok { .. } => t::OK,
            Message::Capabilities { .. } => t::CAPABILITIES,
            Message::Pong { .. } => t::PONG,
            Message::PulseDone { .. } => t::PULSE_DONE,
            Message::Nack { .. } => t::NACK,
            Message::InputEvent { .. } => t::INPUT_EVENT,
            Message::DeviceHeartbeat { .. } => t::DEVICE_HEARTBEAT,
            Message::Fault { .. } => t::FAULT,
        }
    }

    /// True for host → device messages (type 0x01–0x7F).
    pub fn is_host_to_device(&self) -> bool {
        self.msg_type() < 0x80
    }

    /// The host sequence number this message carries or answers, if it has one.
    pub fn seq(&self) -> Option<u16> {
        match *self {
            Message::Pulse { seq, .. }
            | Message::SetLevel { seq, .. }
            | Message::StopAll { seq }
            | Message::SetSafety { seq, .. }
            | Message::ClearFaults { seq }
            | Message::Ok { seq, .. }
            | Message::PulseDone { seq, .. }
            | Message::Nack { seq, .. } => Some(seq),
            _ => None,
        }
    }

    /// Writes the payload (type byte + fields, no CRC) and returns its length.
    pub fn write_payload(&self, out: &mut [u8; MAX_PAYLOAD]) -> usize {
        let mut w = Writer { buf: out, n: 0 };
        w.u8(self.msg_type());
        match *self {
            Message::Hello { protocol } => {
                w.u8(protocol);
            }
            Message::Ping { token } => {
                w.u32(token);
            }
            Message::Pulse {
                seq,
                channel,
                width_us,
                count,
                period_us,
            } => {
                w.u16(seq)
                    .u8(channel)
                    .u32(width_us)
                    .u16(count)
                    .u32(period_us);
            }
            Message::SetLevel {
                seq,
                channel,
                level,
            } => {
                w.u16(seq).u8(channel).u8(level);
            }
            Message::StopAll { seq } | Message::ClearFaults { seq } => {
                w.u16(seq);
            }
            Message::SetSafety {
                seq,
                channel,
                max_on_us,
                max_duty_permille,
                duty_window_ms,
                watchdog_ms,
            } => {
                w.u16(seq)
                    .u8(channel)
                    .u32(max_on_us)
                    .u16(max_duty_permille)
                    .u16(duty_window_ms)
                    .u16(watchdog_ms);
            }
            Message::HostHeartbeat => {}
            Message::Ok { seq, device_us } => {
                w.u16(seq).u64(device_us);
            }
            Message::Capabilities {
                protocol,
                fw_major,
                fw_minor,
                fw_patch,
                channels,
                inputs,
                tick_ns,
                board,
            } => {
                w.u8(protocol)
                    .u8(fw_major)
                    .u8(fw_minor)
                    .u8(fw_patch)
                    .u8(channels)
                    .u8(inputs)
                    .u16(tick_ns)
                    .put(&board);
            }
            Message::Pong { token, device_us } => {
                w.u32(token).u64(device_us);
            }
            Message::PulseDone {
                seq,
                channel,
                index,
                rise_us,
                fall_us,
                flags,
            } => {
                w.u16(seq)
                    .u8(channel)
                    .u16(index)
                    .u64(rise_us)
                    .u64(fall_us)
                    .u8(flags);
            }
            Message::Nack { seq, reason } => {
                w.u16(seq).u8(reason);
            }
            Message::InputEvent {
                input,
                level,
                device_us,
                count,
            } => {
                w.u8(input).u8(level).u64(device_us).u32(count);
            }
            Message::DeviceHeartbeat {
                device_us,
                faults,
                rx_errors,
            } => {
                w.u64(device_us).u8(faults).u16(rx_errors);
            }
            Message::Fault {
                code,
                channel,
                device_us,
                detail,
            } => {
                w.u8(code).u8(channel).u64(device_us).u32(detail);
            }
        }
        w.n
    }

    /// Writes the whole frame (`COBS(payload ‖ crc16_le) ‖ 0x00`) into `out` and returns its
    /// length. Does not allocate.
    ///
    /// # Panics
    /// If `out` is shorter than the frame; a buffer of [`MAX_FRAME`] bytes always suffices.
    pub fn encode(&self, out: &mut [u8]) -> usize {
        let mut payload = [0u8; MAX_PAYLOAD];
        let n = self.write_payload(&mut payload);
        encode_frame(&payload[..n], out)
    }

    /// The whole frame in a stack buffer (see [`Message::encode`]).
    pub fn to_frame(&self) -> Frame {
        let mut f = Frame {
            bytes: [0; MAX_FRAME],
            len: 0,
        };
        f.len = self.encode(&mut f.bytes) as u8;
        f
    }

    /// Parses a payload (type byte + fields, CRC already checked and stripped). Extra trailing
    /// bytes are ignored (PROTOCOL.md §7).
    pub fn decode(payload: &[u8]) -> Result<Message, FrameError> {
        use msg_type as t;
        let Some((&ty, body)) = payload.split_first() else {
            return Err(FrameError::BadLength {
                msg_type: 0,
                len: 0,
                expected: 0,
            });
        };
        let expected = t::body_len(ty).ok_or(FrameError::UnknownType(ty))?;
        if body.len() < expected {
            return Err(FrameError::BadLength {
                msg_type: ty,
                len: body.len(),
                expected,
            });
        }
        let mut r = Reader { buf: body, pos: 0 };
        Ok(match ty {
            t::HELLO => Message::Hello { protocol: r.u8() },
            t::PING => Message::Ping { token: r.u32() },
            t::PULSE => Message::Pulse {
                seq: r.u16(),
                channel: r.u8(),
                width_us: r.u32(),
                count: r.u16(),
                period_us: r.u32(),
            },
            t::SET_LEVEL => Message::SetLevel {
                seq: r.u16(),
                channel: r.u8(),
                level: r.u8(),
            },
            t::STOP_ALL => Message::StopAll { seq: r.u16() },
            t::SET_SAFETY => Message::SetSafety {
                seq: r.u16(),
                channel: r.u8(),
                max_on_us: r.u32(),
                max_duty_permille: r.u16(),
                duty_window_ms: r.u16(),
                watchdog_ms: r.u16(),
            },
            t::HOST_HEARTBEAT => Message::HostHeartbeat,
            t::CLEAR_FAULTS => Message::ClearFaults { seq: r.u16() },
            t::OK => Message::Ok {
                seq: r.u16(),
                device_us: r.u64(),
            },
            t::CAPABILITIES => Message::Capabilities {
                protocol: r.u8(),
                fw_major: r.u8(),
                fw_minor: r.u8(),
                fw_patch: r.u8(),
                channels: r.u8(),
                inputs: r.u8(),
                tick_ns: r.u16(),
                board: r.take(),
            },
            t::PONG => Message::Pong {
                token: r.u32(),
                device_us: r.u64(),
            },
            t::PULSE_DONE => Message::PulseDone {
                seq: r.u16(),
                channel: r.u8(),
                index: r.u16(),
                rise_us: r.u64(),
                fall_us: r.u64(),
                flags: r.u8(),
            },
            t::NACK => Message::Nack {
                seq: r.u16(),
                reason: r.u8(),
            },
            t::INPUT_EVENT => Message::InputEvent {
                input: r.u8(),
                level: r.u8(),
                device_us: r.u64(),
                count: r.u32(),
            },
            t::DEVICE_HEARTBEAT => Message::DeviceHeartbeat {
                device_us: r.u64(),
                faults: r.u8(),
                rx_errors: r.u16(),
            },
            t::FAULT => Message::Fault {
                code: r.u8(),
                channel: r.u8(),
                device_us: r.u64(),
                detail: r.u32(),
            },
            other => return Err(FrameError::UnknownType(other)),
        })
    }
}

/// An encoded frame in a stack buffer, delimiter included.
#[derive(Clone, Copy)]
pub struct Frame {
    bytes: [u8; MAX_FRAME],
    len: u8,
}

impl Frame {
    /// The frame bytes, ending with the 0x00 delimiter.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({:02x?})", self.as_bytes())
    }
}
