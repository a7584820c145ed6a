//! I2C packets and their tunnelling through three 16-bit UVC control words
//! (docs/miniscope.md, "Packets and words" and "What the firmware does").
//!
//! A packet is `[address, b1, …]`, 1 to 6 bytes, the address being the 8-bit *write*
//! address (R/W bit 0). It is packed into a 48-bit little-endian integer whose three 16-bit
//! slices go out on CONTRAST (word 0, the head), GAMMA (word 1, the body) and SHARPNESS
//! (word 2, the tail):
//!
//! * short form, 1–5 bytes: byte 0 = address, byte 1 = packet length (address included),
//!   bytes 2.. = the packet after the address, the rest zero;
//! * full form, exactly 6 bytes: byte 0 = address | 1 (an odd byte 0 means "6 bytes, no
//!   length byte"), bytes 1..5 = the packet after the address.
//!
//! Packets longer than 6 bytes have no wire format.

use super::uvc::PuSelector;

/// Longest packet the wire format carries: the address and 5 bytes.
pub const MAX_PACKET_LEN: usize = 6;

/// Why bytes are not a packet the DAQ can carry, or three words are not a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// A packet needs at least its address byte.
    #[error("an I2C packet needs at least an address byte")]
    Empty,
    /// More bytes than the three control words can carry.
    #[error("I2C packet of {len} bytes is longer than the {MAX_PACKET_LEN} bytes the DAQ carries")]
    TooLong {
        /// Length asked for.
        len: usize,
    },
    /// The address byte has its R/W bit set; on the wire an odd byte 0 means "full form".
    #[error(
        "I2C address byte 0x{address:02X} has the read bit set; packets carry 8-bit write addresses"
    )]
    ReadAddress {
        /// The offending address byte.
        address: u8,
    },
    /// Short-form words whose length byte is not 1–5.
    #[error("control words carry a short-form length byte of {length}, which must be 1 to 5")]
    BadLength {
        /// The length byte found in CONTRAST's high byte.
        length: u8,
    },
}

/// One I2C write as the DAQ carries it: an even 8-bit address and up to 5 further bytes
/// (register bytes then data bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct I2cPacket {
    bytes: [u8; MAX_PACKET_LEN],
    len: u8,
}

impl I2cPacket {
    /// The packet `bytes` (address first). Fails if it is empty, longer than 6 bytes, or its
    /// address byte is odd.
    pub fn new(bytes: &[u8]) -> Result<Self, PacketError> {
        let (&address, _) = bytes.split_first().ok_or(PacketError::Empty)?;
        if bytes.len() > MAX_PACKET_LEN {
            return Err(PacketError::TooLong { len: bytes.len() });
        }
        if address & 1 != 0 {
            return Err(PacketError::ReadAddress { address });
        }
        let mut buf = [0u8; MAX_PACKET_LEN];
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            bytes: buf,
            // Bounded by MAX_PACKET_LEN just above.
            len: bytes.len() as u8,
        })
    }

    /// The 8-bit write address.
    pub fn address(&self) -> u8 {
        self.bytes[0]
    }

    /// The bytes after the address.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[1..usize::from(self.len)]
    }

    /// The whole packet, address first.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length in bytes, address included (1–6).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a packet holds at least its address. (Present for clippy's
    /// `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether this packet uses the full (6-byte, no length byte) form on the wire.
    pub fn is_full_form(&self) -> bool {
        self.len() == MAX_PACKET_LEN
    }

    /// The three control words carrying this packet.
    pub fn pack(&self) -> ControlWords {
        let mut raw = [0u8; MAX_PACKET_LEN];
        if self.is_full_form() {
            raw = self.bytes;
            raw[0] |= 1;
        } else {
            raw[0] = self.bytes[0];
            raw[1] = self.len;
            let rest = self.payload();
            raw[2..2 + rest.len()].copy_from_slice(rest);
        }
        ControlWords::from_bytes(raw)
    }
}

/// The three 16-bit SET_CUR values that carry one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlWords {
    /// Word 0 (bytes 0–1): written to CONTRAST, first; starts a new packet in the firmware.
    pub contrast: u16,
    /// Word 1 (bytes 2–3): written to GAMMA.
    pub gamma: u16,
    /// Word 2 (bytes 4–5): written to SHARPNESS.
    pub sharpness: u16,
}

impl ControlWords {
    /// The selectors of the three words, in the order they must be written.
    pub const WRITE_ORDER: [PuSelector; 3] = [
        PuSelector::Contrast,
        PuSelector::Gamma,
        PuSelector::Sharpness,
    ];

    /// Words from the 6 bytes of the 48-bit little-endian integer they slice.
    pub fn from_bytes(raw: [u8; MAX_PACKET_LEN]) -> Self {
        Self {
            contrast: u16::from_le_bytes([raw[0], raw[1]]),
            gamma: u16::from_le_bytes([raw[2], raw[3]]),
            sharpness: u16::from_le_bytes([raw[4], raw[5]]),
        }
    }

    /// The 6 bytes the words slice (each word little-endian), as the firmware stores them.
    pub fn to_bytes(self) -> [u8; MAX_PACKET_LEN] {
        let [a, b] = self.contrast.to_le_bytes();
        let [c, d] = self.gamma.to_le_bytes();
        let [e, f] = self.sharpness.to_le_bytes();
        [a, b, c, d, e, f]
    }

    /// `(selector, value)` pairs in write order: CONTRAST, GAMMA, SHARPNESS.
    pub fn writes(self) -> [(PuSelector, u16); 3] {
        [
            (PuSelector::Contrast, self.contrast),
            (PuSelector::Gamma, self.gamma),
            (PuSelector::Sharpness, self.sharpness),
        ]
    }

    /// The word that goes to `selector`, if it is one of the three packet selectors.
    pub fn word_for(self, selector: PuSelector) -> Option<u16> {
        self.writes()
            .into_iter()
            .find(|(s, _)| *s == selector)
            .map(|(_, v)| v)
    }

    /// The packet these words carry, read the way the firmware reads a reassembled slot:
    /// an odd byte 0 is a full-form 6-byte packet to `byte0 & 0xFE`; otherwise byte 1 is the
    /// length. Bytes past the length are ignored, as the firmware ignores them.
    pub fn unpack(self) -> Result<I2cPacket, PacketError> {
        let raw = self.to_bytes();
        if raw[0] & 1 != 0 {
            let mut bytes = raw;
            bytes[0] &= 0xFE;
            return I2cPacket::new(&bytes);
        }
        let length = raw[1];
        if !(1..MAX_PACKET_LEN as u8).contains(&length) {
            return Err(PacketError::BadLength { length });
        }
        let len = usize::from(length);
        let mut bytes = [0u8; MAX_PACKET_LEN];
        bytes[0] = raw[0];
        bytes[1..len].copy_from_slice(&raw[2..len + 1]);
        I2cPacket::new(&bytes[..len])
    }
}

/// Identity of a pending write for last-write-wins coalescing (docs/miniscope.md): the packet's
/// constant bytes, with the bytes that carry the control value masked out. Two packets
/// with the same key write the same register(s) of the same device; the later one makes
/// the earlier one pointless.
///
/// Unlike folding the constant bytes into one integer, the key keeps each constant byte's
/// position, so `[EE 08 v 02]` and `[EE 08 02 v]` do not collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoalesceKey {
    template: [u8; MAX_PACKET_LEN],
    len: u8,
    value_mask: u8,
}

impl CoalesceKey {
    /// The key of `packet` whose bytes at the positions set in `value_mask` (bit i = byte i)
    /// carry a control value. Mask bits for byte 0 (the address) or past the packet's end
    /// are ignored.
    pub fn new(packet: &I2cPacket, value_mask: u8) -> Self {
        let len = packet.len();
        let mask = value_mask & !1 & ((1u16 << len) - 1) as u8;
        let mut template = [0u8; MAX_PACKET_LEN];
        for (i, (t, b)) in template.iter_mut().zip(packet.as_bytes()).enumerate() {
            if mask & (1 << i) == 0 {
                *t = *b;
            }
        }
        Self {
            template,
            len: packet.len,
            value_mask: mask,
        }
    }

    /// The key of a packet that carries no value (an init command): the whole packet.
    pub fn constant(packet: &I2cPacket) -> Self {
        Self::new(packet, 0)
    }
}

/// A packet together with its coalescing key, as the control writer queues it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedPacket {
    /// What a later packet must match to replace this one while it waits.
    pub key: CoalesceKey,
    /// The packet itself.
    pub packet: I2cPacket,
}

impl KeyedPacket {
    /// A packet carrying no control value, keyed on all its bytes.
    pub fn constant(packet: I2cPacket) -> Self {
        Self {
            key: CoalesceKey::constant(&packet),
            packet,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn words(p: &[u8]) -> (u16, u16, u16) {
        let w = I2cPacket::new(p).unwrap().pack();
        (w.contrast, w.gamma, w.sharpness)
    }

    /// The four test vectors of docs/miniscope.md (QT2's unit tests), both directions.
    #[test]
    fn pack_matches_the_reference_test_vectors() {
        type Words = (u16, u16, u16);
        let cases: [(&[u8], Words); 4] = [
            (&[0xC0, 0x1F, 0x10], (0x03C0, 0x101F, 0x0000)),
            (&[0xC0], (0x01C0, 0x0000, 0x0000)),
            (&[0xAA, 0x01, 0x02, 0x03, 0x04], (0x05AA, 0x0201, 0x0403)),
            (
                &[0xB0, 0x05, 0x20, 0x11, 0x22, 0x33],
                (0x05B1, 0x1120, 0x3322),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(words(bytes), expected, "packing {bytes:02X?}");
            let (contrast, gamma, sharpness) = expected;
            let back = ControlWords {
                contrast,
                gamma,
                sharpness,
            }
            .unpack()
            .unwrap();
            assert_eq!(back.as_bytes(), bytes);
        }
    }

    #[test]
    fn only_six_byte_packets_use_the_full_form() {
        for len in 1..=MAX_PACKET_LEN {
            let bytes: Vec<u8> = (0..len as u8).map(|i| 0x20 + 2 * i).collect();
            let p = I2cPacket::new(&bytes).unwrap();
            let w = p.pack();
            assert_eq!(p.is_full_form(), len == 6);
            if len == 6 {
                assert_eq!(w.contrast & 0xFF, 0x21, "odd address flags the full form");
            } else {
                assert_eq!(w.contrast, 0x20 | (len as u16) << 8, "length byte is {len}");
            }
        }
    }

    #[test]
    fn impossible_packets_are_refused() {
        assert_eq!(I2cPacket::new(&[]), Err(PacketError::Empty));
        assert_eq!(
            I2cPacket::new(&[0x20, 1, 2, 3, 4, 5, 6]),
            Err(PacketError::TooLong { len: 7 })
        );
        assert_eq!(
            I2cPacket::new(&[0x21, 0x01]),
            Err(PacketError::ReadAddress { address: 0x21 })
        );
        for length in [0u8, 6, 7, 0xFF] {
            let w = ControlWords::from_bytes([0x20, length, 0, 0, 0, 0]);
            assert_eq!(w.unpack(), Err(PacketError::BadLength { length }));
        }
    }

    #[test]
    fn unpack_ignores_bytes_past_the_length_like_the_firmware() {
        let w = ControlWords::from_bytes([0x20, 3, 0x01, 0x7F, 0xAB, 0xCD]);
        assert_eq!(w.unpack().unwrap().as_bytes(), [0x20, 0x01, 0x7F]);
    }

    /// unpack(pack(p)) == p for 10 000 random packets of every length (fixed seed).
    #[test]
    fn unpack_inverts_pack_for_random_packets() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0x5EED_D0A0);
        for _ in 0..10_000 {
            let len = rng.random_range(1..=MAX_PACKET_LEN);
            let mut bytes = [0u8; MAX_PACKET_LEN];
            rng.fill(&mut bytes[..len]);
            bytes[0] &= 0xFE;
            let p = I2cPacket::new(&bytes[..len]).unwrap();
            let w = p.pack();
            assert_eq!(w.unpack(), Ok(p), "{:02X?} via {w:04X?}", p.as_bytes());
            assert_eq!(ControlWords::from_bytes(w.to_bytes()), w);
        }
    }

    #[test]
    fn coalesce_keys_ignore_value_bytes_only() {
        let a = I2cPacket::new(&[0xEE, 0x08, 0x7F, 0x02]).unwrap();
        let b = I2cPacket::new(&[0xEE, 0x08, 0xB1, 0x02]).unwrap();
        let c = I2cPacket::new(&[0xEE, 0x08, 0x02, 0x7F]).unwrap();
        assert_eq!(CoalesceKey::new(&a, 0b0100), CoalesceKey::new(&b, 0b0100));
        assert_ne!(CoalesceKey::new(&a, 0b0100), CoalesceKey::new(&c, 0b1000));
        assert_ne!(CoalesceKey::constant(&a), CoalesceKey::constant(&b));
        let pot0 = I2cPacket::new(&[0x58, 0x00, 0x40]).unwrap();
        let pot1 = I2cPacket::new(&[0x58, 0x01, 0x40]).unwrap();
        assert_ne!(
            CoalesceKey::new(&pot0, 0b100),
            CoalesceKey::new(&pot1, 0b100)
        );
    }
}
