//! The behavd stimulator wire protocol v1 (`firmware-interface/PROTOCOL.md`): framing, CRC,
//! messages and a streaming frame decoder.
//!
//! A frame on the wire is `COBS(payload ‖ crc16_le) ‖ 0x00`, where `payload` is a type byte
//! followed by the message's little-endian fields. [`Message::encode`] writes a whole frame into a
//! caller buffer without allocating; [`FrameDecoder`] takes arbitrary chunks of a byte stream and
//! yields messages or counted errors, resynchronising at the next 0x00. Nothing here panics on
//! input bytes.

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

    /// The reason in words (for logs, summaries and the file's descriptions).
    pub fn name(reason: u8) -> &'static str {
        match reason {
            UNKNOWN_TYPE => "unknown message type",
            BAD_LENGTH => "bad length",
            BAD_CHANNEL => "no such channel",
            BAD_ARGUMENT => "bad argument",
            FAULT_LATCHED => "fault latched",
            DUTY_CYCLE => "duty-cycle cap",
            BUSY => "busy",
            _ => "unknown reason",
        }
    }

    /// Every reason with its code, e.g. `1=unknown message type, 2=bad length, ...`.
    pub fn legend() -> String {
        (1..=BUSY)
            .map(|r| format!("{r}={}", name(r)))
            .collect::<Vec<_>>()
            .join(", ")
    }
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

    /// The fault in words.
    pub fn name(code: u8) -> &'static str {
        match code {
            WATCHDOG => "watchdog (host silent)",
            MAX_ON => "cut at max on time",
            DUTY_CAP => "pulses skipped by the duty-cycle cap",
            RX_OVERFLOW => "receive overflow",
            _ => "unknown fault",
        }
    }
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

mod decoder;
mod framing;
mod message;

pub use decoder::{DecoderStats, FrameDecoder, Frames};
pub use framing::{
    CobsError, FrameError, cobs_decode, cobs_encode, cobs_max_encoded_len, crc16, encode_frame,
};
pub use message::{Frame, Message};

#[cfg(test)]
mod tests;
