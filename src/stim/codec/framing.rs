//! Framing: CRC-16/CCITT-FALSE, COBS, and the errors a frame can be rejected for.

use thiserror::Error;

use super::{MAX_ENCODED, MAX_PAYLOAD};
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
