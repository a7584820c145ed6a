//! Frame content and UVC payload framing of the look-alike.
//!
//! A frame is a deterministic pattern: luma pixel `i` is `(i + counter) mod 251`, except
//! that the first 8 luma bytes hold the DAQ frame counter (u64, little-endian). In YUY2
//! the luma bytes are the even bytes and every chroma byte is 0x80, so a host that keeps
//! the luma bytes (as behavd's Miniscope source does, docs/miniscope.md) sees the same
//! 608×608 grey image as a GREY client.
//!
//! Payloads carry a 2-byte header (`bHeaderLength` = 2, `bmHeaderInfo` = EOH | FID | EOF):
//! FID toggles once per frame sent, EOF is set on the frame's last payload. The DAQ sends
//! no PTS/SCR either.

use super::descriptors::PixelFormat;

/// Bytes of the payload header.
pub const PAYLOAD_HEADER_LEN: usize = 2;
/// Frame ID bit of `bmHeaderInfo`.
pub const BFH_FID: u8 = 0x01;
/// End of Frame bit.
pub const BFH_EOF: u8 = 0x02;
/// End of Header bit.
pub const BFH_EOH: u8 = 0x80;
/// Period of the moving pattern (a prime, so rows drift).
const PATTERN_PERIOD: usize = 251;
/// Chroma byte of YUY2 frames (neutral).
pub const CHROMA: u8 = 0x80;

/// The frame as a formula (what tests compare against; the device uses [`FramePattern`]).
pub fn reference_frame(format: PixelFormat, counter: u32) -> Vec<u8> {
    let pixels = format.frame_bytes() / format.bytes_per_pixel();
    let c = counter as usize % PATTERN_PERIOD;
    let header = u64::from(counter).to_le_bytes();
    let mut out = Vec::with_capacity(format.frame_bytes());
    for i in 0..pixels {
        let luma = header
            .get(i)
            .copied()
            .unwrap_or(((i + c) % PATTERN_PERIOD) as u8);
        out.push(luma);
        if format == PixelFormat::Yuy2 {
            out.push(CHROMA);
        }
    }
    out
}

/// The DAQ counter a frame carries in its first 8 luma bytes.
pub fn frame_counter(format: PixelFormat, frame: &[u8]) -> Option<u64> {
    let step = format.bytes_per_pixel();
    let mut b = [0u8; 8];
    for (k, slot) in b.iter_mut().enumerate() {
        *slot = *frame.get(k * step)?;
    }
    Some(u64::from_le_bytes(b))
}

/// Pre-computed pattern from which any byte range of any frame is one `memcpy` plus the
/// counter patch (cheap enough for a debug build under an emulated CPU).
#[derive(Debug, Clone)]
pub struct FramePattern {
    format: PixelFormat,
    base: Vec<u8>,
}

impl FramePattern {
    /// Builds the pattern for `format`.
    pub fn new(format: PixelFormat) -> Self {
        let pixels = format.frame_bytes() / format.bytes_per_pixel() + PATTERN_PERIOD;
        let mut base = Vec::with_capacity(pixels * format.bytes_per_pixel());
        for j in 0..pixels {
            base.push((j % PATTERN_PERIOD) as u8);
            if format == PixelFormat::Yuy2 {
                base.push(CHROMA);
            }
        }
        Self { format, base }
    }

    /// The format this pattern renders.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Appends bytes `offset .. offset + len` of frame `counter` to `out`.
    pub fn append(&self, counter: u32, offset: usize, len: usize, out: &mut Vec<u8>) {
        let bpp = self.format.bytes_per_pixel();
        let shift = (counter as usize % PATTERN_PERIOD) * bpp;
        let start = out.len();
        out.extend_from_slice(&self.base[shift + offset..shift + offset + len]);
        let header = u64::from(counter).to_le_bytes();
        for (k, b) in header.iter().enumerate() {
            let pos = k * bpp;
            if pos >= offset && pos < offset + len {
                out[start + pos - offset] = *b;
            }
        }
    }
}

/// The 2-byte payload header.
pub fn payload_header(fid: bool, eof: bool) -> [u8; PAYLOAD_HEADER_LEN] {
    let mut info = BFH_EOH;
    if fid {
        info |= BFH_FID;
    }
    if eof {
        info |= BFH_EOF;
    }
    [PAYLOAD_HEADER_LEN as u8, info]
}
