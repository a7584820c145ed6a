//! The streaming frame decoder.

use super::framing::{FrameError, cobs_decode, crc16};
use super::message::Message;
use super::{MAX_ENCODED, MAX_PAYLOAD, MIN_DECODED};

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
