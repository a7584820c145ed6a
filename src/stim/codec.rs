//! The behavd stimulator wire protocol v1 (`firmware-interface/PROTOCOL.md`): framing, CRC,
//! messages and a streaming frame decoder.
//!
//! A frame on the wire is `COBS(payload ‖ crc16_le) ‖ 0x00`, where `payload` is a type byte
//! followed by the message's little-endian fields. [`Message::encode`] writes a whole frame into a
//! caller buffer without allocating; [`FrameDecoder`] takes arbitrary chunks of a byte stream and
//! yields messages or counted errors, resynchronising at the next 0x00. Nothing here panics on
//! input bytes.

use thiserror::Error;

/// Protocol version this module speaks (`HELLO.protocol`, `CAPABILITIES.protocol`).
pub const PROTOCOL_VERSION: u8 = 1;
/// Maximum payload length (type byte + fields), without the CRC.
pub const MAX_PAYLOAD: usize = 60;
/// Maximum COBS-encoded frame length, without the 0x00 delimiter.
pub const MAX_ENCODED: usize = 64;
/// Maximum frame length on the wire, delimiter included: a buffer this long fits any frame.
pub const MAX_FRAME: usize = MAX_ENCODED + 1;
/// Shortest decoded frame: a type byte and the two CRC bytes.
pub const MIN_DECODED: usize = 3;

/// Message type bytes (PROTOCOL.md §3). 0x01–0x7F go host → device, 0x80–0xFF device → host.
pub mod msg_type {
    /// Host → device: HELLO.
    pub const HELLO: u8 = 0x01;
    /// Host → device: PING.
    pub const PING: u8 = 0x02;
    /// Host → device: PULSE.
    pub const PULSE: u8 = 0x03;
    /// Host → device: SET_LEVEL.
    pub const SET_LEVEL: u8 = 0x04;
    /// Host → device: STOP_ALL.
    pub const STOP_ALL: u8 = 0x05;
    /// Host → device: SET_SAFETY.
    pub const SET_SAFETY: u8 = 0x06;
    /// Host → device: HEARTBEAT (no fields).
    pub const HOST_HEARTBEAT: u8 = 0x07;
    /// Host → device: CLEAR_FAULTS.
    pub const CLEAR_FAULTS: u8 = 0x08;
    /// Device → host: OK.
    pub const OK: u8 = 0x80;
    /// Device → host: CAPABILITIES.
    pub const CAPABILITIES: u8 = 0x81;
    /// Device → host: PONG.
    pub const PONG: u8 = 0x82;
    /// Device → host: PULSE_DONE.
    pub const PULSE_DONE: u8 = 0x83;
    /// Device → host: NACK.
    pub const NACK: u8 = 0x84;
    /// Device → host: INPUT_EVENT.
    pub const INPUT_EVENT: u8 = 0x85;
    /// Device → host: HEARTBEAT.
    pub const DEVICE_HEARTBEAT: u8 = 0x86;
    /// Device → host: FAULT.
    pub const FAULT: u8 = 0x87;

    /// Length of the fields after the type byte, or `None` for a type protocol v1 does not define.
    pub const fn body_len(t: u8) -> Option<usize> {
        Some(match t {
            HELLO => 1,
            PING => 4,
            PULSE => 13,
            SET_LEVEL => 4,
            STOP_ALL => 2,
            SET_SAFETY => 13,
            HOST_HEARTBEAT => 0,
            CLEAR_FAULTS => 2,
            OK => 10,
            CAPABILITIES => 16,
            PONG => 12,
            PULSE_DONE => 22,
            NACK => 3,
            INPUT_EVENT => 14,
            DEVICE_HEARTBEAT => 11,
            FAULT => 14,
            _ => return None,
        })
    }
}

/// NACK reasons (PROTOCOL.md §3).
pub mod nack {
    /// Unknown message type.
    pub const UNKNOWN_TYPE: u8 = 1;
    /// Payload too short for its type.
    pub const BAD_LENGTH: u8 = 2;
    /// No such channel.
    pub const BAD_CHANNEL: u8 = 3;
    /// Width 0, count 0, period ≤ width, level > 1, duty 0 or > 1000.
    pub const BAD_ARGUMENT: u8 = 4;
    /// The watchdog fault is latched: CLEAR_FAULTS first.
    pub const FAULT_LATCHED: u8 = 5;
    /// The whole train would exceed the duty-cycle cap; nothing was started.
    pub const DUTY_CYCLE: u8 = 6;
    /// No free scheduler slot.
    pub const BUSY: u8 = 7;
}

/// FAULT codes (PROTOCOL.md §3).
pub mod fault {
    /// The host was silent longer than `watchdog_ms`; `detail` = ms since the last valid frame.
    pub const WATCHDOG: u8 = 1;
    /// An output was cut at `max_on_us`; `detail` = the on time in µs.
    pub const MAX_ON: u8 = 2;
    /// Pulses skipped by the duty-cycle cap; `detail` = pulses of the train skipped.
    pub const DUTY_CAP: u8 = 3;
    /// Receive overflow; `detail` = bytes discarded.
    pub const RX_OVERFLOW: u8 = 4;
}

/// Latched fault bits reported in the device HEARTBEAT (PROTOCOL.md §4).
pub mod fault_bit {
    /// Watchdog fired (blocks PULSE and SET_LEVEL 1 until CLEAR_FAULTS).
    pub const WATCHDOG: u8 = 1 << 0;
    /// An output was cut at `max_on_us`.
    pub const MAX_ON: u8 = 1 << 1;
    /// A pulse was skipped by the duty-cycle cap.
    pub const DUTY_CAP: u8 = 1 << 2;
    /// Receive overflow.
    pub const RX_OVERFLOW: u8 = 1 << 3;
}

/// PULSE_DONE `flags` bits.
pub mod pulse_flag {
    /// The pulse was cut by `max_on_us` (a FAULT follows).
    pub const MAX_ON_CUT: u8 = 1 << 0;
    /// The pulse was cut by STOP_ALL, a replacing PULSE or the watchdog.
    pub const CANCELLED: u8 = 1 << 1;
}

/// Why a COBS-encoded block could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CobsError {
    /// A 0x00 byte inside the encoded data.
    #[error("0x00 inside a COBS block")]
    ZeroByte,
    /// A code byte points past the end of the data.
    #[error("COBS code byte points past the end of the frame")]
    Truncated,
    /// The decoded data does not fit the output buffer.
    #[error("decoded COBS data does not fit the output buffer")]
    OutputTooSmall,
}

/// Why a frame or payload was rejected. Every variant is counted by [`FrameDecoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The frame is not valid COBS.
    #[error("bad COBS encoding: {0}")]
    Cobs(#[from] CobsError),
    /// Fewer than [`MIN_DECODED`] bytes after COBS decoding.
    #[error("frame too short: {len} bytes after COBS decoding (need at least 3)")]
    Short {
        /// Decoded length.
        len: usize,
    },
    /// A payload longer than [`MAX_PAYLOAD`].
    #[error("payload of {len} bytes is longer than the maximum of 60")]
    TooLong {
        /// Payload length (type byte + fields).
        len: usize,
    },
    /// The CRC does not match the payload.
    #[error("CRC mismatch: frame carries {received:#06x}, payload gives {computed:#06x}")]
    Crc {
        /// CRC carried by the frame.
        received: u16,
        /// CRC computed over the payload.
        computed: u16,
    },
    /// A type byte protocol v1 does not define.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// The payload is too short for its type (or empty).
    #[error("bad length for message type {msg_type:#04x}: {len} field bytes, need {expected}")]
    BadLength {
        /// The type byte (0 for an empty payload).
        msg_type: u8,
        /// Field bytes present after the type byte.
        len: usize,
        /// Field bytes the type needs.
        expected: usize,
    },
    /// More than [`MAX_ENCODED`] bytes arrived without a delimiter; they were discarded up to the
    /// next 0x00.
    #[error("receive overflow: {discarded} bytes without a delimiter were discarded")]
    Overflow {
        /// Bytes discarded, up to (not including) the delimiter.
        discarded: usize,
    },
}

impl FrameError {
    /// True for the errors a device counts as `rx_errors` (COBS, length, CRC, overflow): the frame
    /// never reached dispatch. False for unknown type and bad length, which a device NACKs.
    pub fn is_link_error(&self) -> bool {
        !matches!(
            self,
            FrameError::UnknownType(_) | FrameError::BadLength { .. }
        )
    }
}

const CRC_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR).
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0xFFFF, |crc, &b| {
        (crc << 8) ^ CRC_TABLE[((crc >> 8) as u8 ^ b) as usize]
    })
}

/// Worst-case COBS-encoded length of `n` bytes.
pub const fn cobs_max_encoded_len(n: usize) -> usize {
    n + n / 254 + 1
}

/// COBS-encodes `input` into `out` (no delimiter) and returns the encoded length.
///
/// # Panics
/// If `out` is shorter than [`cobs_max_encoded_len`]`(input.len())`.
pub fn cobs_encode(input: &[u8], out: &mut [u8]) -> usize {
    assert!(
        out.len() >= cobs_max_encoded_len(input.len()),
        "COBS output buffer too small"
    );
    let mut code_at = 0;
    let mut w = 1;
    let mut code: u8 = 1;
    for &b in input {
        if code == 0xFF {
            // Block full and more data follows. A final full block gets no extra 0x01 code byte
            // (the Cheshire & Baker convention, as in test-vectors/framing.json).
            out[code_at] = code;
            code_at = w;
            w += 1;
            code = 1;
        }
        if b == 0 {
            out[code_at] = code;
            code_at = w;
            w += 1;
            code = 1;
        } else {
            out[w] = b;
            w += 1;
            code += 1;
        }
    }
    out[code_at] = code;
    w
}

/// Decodes one COBS block (without its delimiter) into `out`; returns the decoded length.
pub fn cobs_decode(input: &[u8], out: &mut [u8]) -> Result<usize, CobsError> {
    let mut r = 0;
    let mut w = 0;
    while r < input.len() {
        let code = input[r];
        if code == 0 {
            return Err(CobsError::ZeroByte);
        }
        r += 1;
        let n = code as usize - 1;
        let block = input.get(r..r + n).ok_or(CobsError::Truncated)?;
        let dst = out.get_mut(w..w + n).ok_or(CobsError::OutputTooSmall)?;
        if block.contains(&0) {
            return Err(CobsError::ZeroByte);
        }
        dst.copy_from_slice(block);
        w += n;
        r += n;
        if code != 0xFF && r < input.len() {
            *out.get_mut(w).ok_or(CobsError::OutputTooSmall)? = 0;
            w += 1;
        }
    }
    Ok(w)
}

/// Frames `payload` (type byte + fields): appends the CRC, COBS-encodes and appends the 0x00
/// delimiter. Returns the frame length. Does not allocate.
///
/// # Panics
/// If `payload` is empty or longer than [`MAX_PAYLOAD`], or `out` is shorter than the frame (a
/// buffer of [`MAX_FRAME`] bytes always suffices).
pub fn encode_frame(payload: &[u8], out: &mut [u8]) -> usize {
    assert!(
        !payload.is_empty() && payload.len() <= MAX_PAYLOAD,
        "payload length {} outside 1..=60",
        payload.len()
    );
    let mut raw = [0u8; MAX_PAYLOAD + 2];
    let n = payload.len();
    raw[..n].copy_from_slice(payload);
    raw[n..n + 2].copy_from_slice(&crc16(payload).to_le_bytes());
    let mut enc = [0u8; MAX_ENCODED];
    let len = cobs_encode(&raw[..n + 2], &mut enc);
    assert!(
        out.len() > len,
        "frame buffer too small: {} < {}",
        out.len(),
        len + 1
    );
    out[..len].copy_from_slice(&enc[..len]);
    out[len] = 0;
    len + 1
}

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

/// Counters of a [`FrameDecoder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames decoded into a message.
    pub frames_ok: u64,
    /// Frames with bad COBS.
    pub cobs: u64,
    /// Frames shorter than 3 bytes after COBS decoding.
    pub short: u64,
    /// Frames with a payload longer than 60 bytes.
    pub too_long: u64,
    /// Frames with a CRC mismatch.
    pub crc: u64,
    /// Frames with an unknown type byte.
    pub unknown_type: u64,
    /// Frames too short for their type.
    pub bad_length: u64,
    /// Overflows (more than 64 bytes without a delimiter), each counted once.
    pub overflow: u64,
    /// Bytes discarded by overflows.
    pub overflow_bytes: u64,
}

impl DecoderStats {
    /// Every rejected frame (the host's `frames_bad`).
    pub fn frames_bad(&self) -> u64 {
        self.link_errors() + self.unknown_type + self.bad_length
    }

    /// Frames dropped before dispatch: COBS, length, CRC and overflow (the device's `rx_errors`).
    pub fn link_errors(&self) -> u64 {
        self.cobs + self.short + self.too_long + self.crc + self.overflow
    }

    fn count(&mut self, e: &FrameError) {
        match e {
            FrameError::Cobs(_) => self.cobs += 1,
            FrameError::Short { .. } => self.short += 1,
            FrameError::TooLong { .. } => self.too_long += 1,
            FrameError::Crc { .. } => self.crc += 1,
            FrameError::UnknownType(_) => self.unknown_type += 1,
            FrameError::BadLength { .. } => self.bad_length += 1,
            FrameError::Overflow { discarded } => {
                self.overflow += 1;
                self.overflow_bytes += *discarded as u64;
            }
        }
    }
}

/// Streaming frame decoder: feed it arbitrary chunks of the byte stream, get messages or errors.
///
/// Bytes accumulate until a 0x00; the block is COBS-decoded, length- and CRC-checked and parsed.
/// Empty blocks (a lone 0x00, as senders use to flush) are ignored silently. More than
/// [`MAX_ENCODED`] bytes without a delimiter are discarded up to the next 0x00 and reported once,
/// as [`FrameError::Overflow`], when that 0x00 arrives. Fixed-size buffers; never allocates or
/// panics.
#[derive(Clone)]
pub struct FrameDecoder {
    buf: [u8; MAX_ENCODED],
    len: usize,
    /// Bytes discarded in the overflow now in progress (0 = none).
    discarding: usize,
    payload: [u8; MAX_ENCODED],
    stats: DecoderStats,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("pending", &self.len)
            .field("discarding", &self.discarding)
            .field("stats", &self.stats)
            .finish()
    }
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self {
            buf: [0; MAX_ENCODED],
            len: 0,
            discarding: 0,
            payload: [0; MAX_ENCODED],
            stats: DecoderStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// Bytes of a frame in progress (not yet delimited).
    pub fn pending(&self) -> usize {
        self.len + self.discarding
    }

    /// Drops a partial frame without counting it (e.g. after reopening the port).
    pub fn reset(&mut self) {
        self.len = 0;
        self.discarding = 0;
    }

    /// Pushes one byte. At a delimiter, returns the CRC-checked payload (type byte + fields) or a
    /// framing error ([`FrameError::is_link_error`]), counted. The payload is not parsed and not
    /// counted as a message; use this to inspect frames [`Message::decode`] rejects.
    pub fn push_raw(&mut self, byte: u8) -> Option<Result<&[u8], FrameError>> {
        match self.push_frame(byte)? {
            Ok(n) => Some(Ok(&self.payload[..n])),
            Err(e) => {
                self.stats.count(&e);
                Some(Err(e))
            }
        }
    }

    /// Pushes one byte; at a delimiter returns the decoded message or the (counted) error.
    pub fn push(&mut self, byte: u8) -> Option<Result<Message, FrameError>> {
        let result = match self.push_frame(byte)? {
            Ok(n) => Message::decode(&self.payload[..n]),
            Err(e) => Err(e),
        };
        match &result {
            Ok(_) => self.stats.frames_ok += 1,
            Err(e) => self.stats.count(e),
        }
        Some(result)
    }

    /// Feeds a chunk; iterate the result for the messages and errors it completes. The whole chunk
    /// is always consumed: dropping the iterator early decodes (and counts) the rest, discarding
    /// the messages it completes.
    pub fn feed<'a>(&'a mut self, chunk: &'a [u8]) -> Frames<'a> {
        Frames {
            decoder: self,
            chunk,
            pos: 0,
        }
    }

    /// Accumulates; at a delimiter returns the payload length in `self.payload` or an error.
    fn push_frame(&mut self, byte: u8) -> Option<Result<usize, FrameError>> {
        if byte != 0 {
            if self.discarding > 0 {
                self.discarding = self.discarding.saturating_add(1);
            } else if self.len == MAX_ENCODED {
                self.discarding = MAX_ENCODED + 1;
                self.len = 0;
            } else {
                self.buf[self.len] = byte;
                self.len += 1;
            }
            return None;
        }
        if self.discarding > 0 {
            let discarded = std::mem::take(&mut self.discarding);
            return Some(Err(FrameError::Overflow { discarded }));
        }
        let len = std::mem::take(&mut self.len);
        if len == 0 {
            return None;
        }
        Some(self.check(len))
    }

    fn check(&mut self, len: usize) -> Result<usize, FrameError> {
        let n = cobs_decode(&self.buf[..len], &mut self.payload)?;
        if n < MIN_DECODED {
            return Err(FrameError::Short { len: n });
        }
        let body = n - 2;
        if body > MAX_PAYLOAD {
            return Err(FrameError::TooLong { len: body });
        }
        let received = u16::from_le_bytes([self.payload[body], self.payload[body + 1]]);
        let computed = crc16(&self.payload[..body]);
        if received != computed {
            return Err(FrameError::Crc { received, computed });
        }
        Ok(body)
    }
}

/// Iterator over the messages and errors completed by one chunk (see [`FrameDecoder::feed`]).
pub struct Frames<'a> {
    decoder: &'a mut FrameDecoder,
    chunk: &'a [u8],
    pos: usize,
}

impl Iterator for Frames<'_> {
    type Item = Result<Message, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(&b) = self.chunk.get(self.pos) {
            self.pos += 1;
            if let Some(r) = self.decoder.push(b) {
                return Some(r);
            }
        }
        None
    }
}

impl Drop for Frames<'_> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

#[cfg(test)]
mod tests;
