//! An emulator of the Miniscope DAQ's control side (docs/miniscope.md), behind the same
//! [`UvcControl`] trait as the real device.
//!
//! What it does, as the firmware does:
//! * CONTRAST stores packet bytes 0–1 and restarts assembly; GAMMA stores bytes 2–3 and
//!   SHARPNESS bytes 4–5, in either order; the slot commits to a 64-slot ring once all
//!   three parts are present. The ring has no overflow check.
//! * Only at [`DaqEmulator::end_of_frame`]: the 32-bit frame counter is incremented, every
//!   queued packet is executed (DAQ commands to 0xFE, full-form and short-form I2C writes),
//!   the BNO055 quaternion is read if polling is enabled, and the sync output toggles if
//!   the recording bit is set.
//! * GET_CUR: CONTRAST = counter low 16 bits, GAMMA = trigger input level, SATURATION/HUE/
//!   GAIN/BRIGHTNESS = BNO w/x/y/z (HUE answers the ABI version once after an ABI query);
//!   with ABI ≥ 2 the CT EXPOSURE (counter) and PANTILT (atomic quaternion) read-backs.
//! * A SET_CUR that follows the previous one by less than the FX3's minimum spacing
//!   replaces it before the firmware saw it (the lost-write effect the reference reports).
//!
//! Choices where the reference is silent are marked "(assumed)".

use super::packet::MAX_PACKET_LEN;
use super::uvc::{CAMERA_TERMINAL_ID, CtSelector, PuSelector, UvcControl, UvcError};
use super::{DAQ_COMMAND_ADDRESS, DAQ_QUEUE_SLOTS};

/// Shortest spacing between two SET_CURs the emulated FX3 keeps apart (the reference's
/// "≥ 100 µs after every write").
pub const FX3_MIN_WRITE_SPACING_NS: u64 = 100_000;

/// The BNO055's 8-bit I2C address.
pub const BNO055_ADDRESS: u8 = 0x50;
/// First quaternion register of the BNO055 (QUA_Data_w_LSB); 8 bytes are read from it.
pub const BNO055_QUATERNION_REGISTER: u8 = 0x20;

/// Emulated firmware variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaqConfig {
    /// Firmware ABI version: 2 answers the ABI query and the CT read-backs; 1 does neither.
    pub abi_version: u16,
    /// Minimum SET_CUR spacing; `None` accepts writes at any pace.
    pub min_write_spacing_ns: Option<u64>,
    /// Whether a BNO055 answers on the headstage.
    pub bno_present: bool,
}

impl Default for DaqConfig {
    fn default() -> Self {
        Self {
            abi_version: 2,
            min_write_spacing_ns: Some(FX3_MIN_WRITE_SPACING_NS),
            bno_present: true,
        }
    }
}

/// One I2C write the DAQ performed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I2cWrite {
    /// Value of the 32-bit frame counter at the end of frame that executed it (the first
    /// end of frame is 1).
    pub frame: u32,
    /// 8-bit write address.
    pub address: u8,
    /// Bytes after the address (register pointer first).
    pub data: Vec<u8>,
}

/// Something the firmware did that was not a clean I2C write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaqEvent {
    /// A DAQ command (`[FE cmd]`) ran at end of frame `frame`.
    Command {
        /// Frame counter when it ran.
        frame: u32,
        /// The command byte (0 = poll the BNO, 1 = hard reset).
        command: u8,
    },
    /// A short-form slot whose length byte is below 2 or above 5: the firmware's data count
    /// under- or overflows (derived in the reference); the emulator skips the slot (assumed).
    BadLength {
        /// Frame counter when it was dequeued.
        frame: u32,
        /// The length byte.
        length: u8,
    },
    /// A SET_CUR arrived before the previous one had settled; the previous one was lost.
    LostWrite {
        /// The control whose write was lost.
        selector: PuSelector,
        /// The lost value.
        value: u16,
    },
}

const HEAD: u8 = 1;
const BODY: u8 = 2;
const TAIL: u8 = 4;

#[derive(Debug, Clone, Copy)]
struct Landing {
    selector: PuSelector,
    value: u16,
    at_ns: u64,
}

/// The emulated DAQ. Tests drive it with [`UvcControl`] calls, [`Self::set_time_ns`] and
/// [`Self::end_of_frame`], and read back [`Self::writes`] and [`Self::events`].
#[derive(Debug)]
pub struct DaqEmulator {
    config: DaqConfig,
    now_ns: u64,
    landing: Option<Landing>,
    assembly: [u8; MAX_PACKET_LEN],
    parts: u8,
    ring: [[u8; MAX_PACKET_LEN]; DAQ_QUEUE_SLOTS],
    write_index: usize,
    read_index: usize,
    frame_counter: u32,
    bno_enabled: bool,
    bno_registers: [i16; 4],
    quat_bno: [u8; 8],
    bno_reads: u64,
    recording: bool,
    sync_level: bool,
    sync_edges: u64,
    trigger_input: bool,
    abi_answer_armed: bool,
    resets: u32,
    writes: Vec<I2cWrite>,
    events: Vec<DaqEvent>,
}

impl DaqEmulator {
    /// A freshly powered DAQ: counter 0, empty ring, BNO polling off, not recording.
    pub fn new(config: DaqConfig) -> Self {
        Self {
            config,
            now_ns: 0,
            landing: None,
            assembly: [0; MAX_PACKET_LEN],
            parts: 0,
            ring: [[0; MAX_PACKET_LEN]; DAQ_QUEUE_SLOTS],
            write_index: 0,
            read_index: 0,
            frame_counter: 0,
            bno_enabled: false,
            bno_registers: [0; 4],
            quat_bno: [0; 8],
            bno_reads: 0,
            recording: false,
            sync_level: false,
            sync_edges: 0,
            trigger_input: false,
            abi_answer_armed: false,
            resets: 0,
            writes: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Advances the emulator's clock (monotonic ns; earlier times are ignored).
    pub fn set_time_ns(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
    }

    /// The emulator's clock.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// The firmware's end-of-frame work, in its order: count the frame, run the queue,
    /// read the BNO, toggle the sync output.
    pub fn end_of_frame(&mut self) {
        self.settle();
        self.frame_counter = self.frame_counter.wrapping_add(1);
        while self.read_index != self.write_index {
            let slot = self.ring[self.read_index];
            self.read_index = (self.read_index + 1) % DAQ_QUEUE_SLOTS;
            if self.execute(slot) {
                return;
            }
        }
        if self.bno_enabled && self.config.bno_present {
            for (i, q) in self.bno_registers.iter().enumerate() {
                self.quat_bno[2 * i..2 * i + 2].copy_from_slice(&q.to_le_bytes());
            }
            self.bno_reads += 1;
        }
        if self.recording {
            self.sync_level = !self.sync_level;
            self.sync_edges += 1;
        }
    }

    /// Runs one slot; returns true if it reset the DAQ (the rest of the queue is gone).
    fn execute(&mut self, s: [u8; MAX_PACKET_LEN]) -> bool {
        let frame = self.frame_counter;
        if s[0] == DAQ_COMMAND_ADDRESS {
            self.events.push(DaqEvent::Command {
                frame,
                command: s[2],
            });
            match s[2] {
                0x00 => self.bno_enabled = true,
                0x01 => {
                    self.hard_reset();
                    return true;
                }
                // Other command bytes do nothing (assumed).
                _ => {}
            }
        } else if s[0] & 1 != 0 {
            self.writes.push(I2cWrite {
                frame,
                address: s[0] & 0xFE,
                data: s[1..].to_vec(),
            });
        } else {
            let length = s[1];
            if !(2..MAX_PACKET_LEN as u8).contains(&length) {
                self.events.push(DaqEvent::BadLength { frame, length });
            } else {
                self.writes.push(I2cWrite {
                    frame,
                    address: s[0],
                    data: s[2..1 + usize::from(length)].to_vec(),
                });
            }
        }
        false
    }

    /// `[FE 01]`: the FX3 restarts. The emulator returns to its power-on state but keeps
    /// its logs; a real DAQ also re-enumerates on USB (not modelled).
    fn hard_reset(&mut self) {
        let (writes, events, resets) = (
            std::mem::take(&mut self.writes),
            std::mem::take(&mut self.events),
            self.resets,
        );
        let (now, bno, trigger) = (self.now_ns, self.bno_registers, self.trigger_input);
        *self = Self::new(self.config);
        self.writes = writes;
        self.events = events;
        self.resets = resets + 1;
        self.now_ns = now;
        self.bno_registers = bno;
        self.trigger_input = trigger;
    }

    /// Applies the last SET_CUR if the FX3 has had time to take it.
    fn settle(&mut self) {
        if let Some(l) = self.landing {
            let spacing = self.config.min_write_spacing_ns.unwrap_or(0);
            if self.now_ns.saturating_sub(l.at_ns) >= spacing {
                self.landing = None;
                self.apply(l.selector, l.value);
            }
        }
    }

    /// What the firmware does with a SET_CUR it has taken.
    fn apply(&mut self, selector: PuSelector, value: u16) {
        let [lo, hi] = value.to_le_bytes();
        let (range, part) = match selector {
            PuSelector::Contrast => {
                self.parts = 0;
                (0..2, HEAD)
            }
            PuSelector::Gamma => (2..4, BODY),
            PuSelector::Sharpness => (4..6, TAIL),
            PuSelector::Saturation => {
                self.recording = value & 1 != 0;
                // Only the exact value 2 is the ABI query (assumed: the reference names
                // the value 0x0002, not a bit).
                if value == 0x0002 && self.config.abi_version >= 2 {
                    self.abi_answer_armed = true;
                }
                return;
            }
            // Read-only for the host: writes are ignored (assumed).
            PuSelector::Brightness | PuSelector::Gain | PuSelector::Hue => return,
        };
        self.assembly[range].copy_from_slice(&[lo, hi]);
        self.parts |= part;
        if self.parts == HEAD | BODY | TAIL {
            // Committing resets the flags, so a stray body/tail cannot re-commit (assumed).
            self.parts = 0;
            self.ring[self.write_index] = self.assembly;
            self.write_index = (self.write_index + 1) % DAQ_QUEUE_SLOTS;
        }
    }

    fn quaternion_word(&self, i: usize) -> u16 {
        u16::from_le_bytes([self.quat_bno[2 * i], self.quat_bno[2 * i + 1]])
    }

    /// Sets what the BNO055's quaternion registers hold (w, x, y, z; 1.0 = 16384). The
    /// DAQ copies them at the next end of frame if polling is enabled.
    pub fn set_bno_quaternion(&mut self, wxyz: [i16; 4]) {
        self.bno_registers = wxyz;
    }

    /// Drives the trigger input (GPIO 21; undriven reads low through the pull-down).
    pub fn set_trigger_input(&mut self, high: bool) {
        self.trigger_input = high;
    }

    /// I2C writes performed so far, oldest first.
    pub fn writes(&self) -> &[I2cWrite] {
        &self.writes
    }

    /// Takes the write log, leaving it empty.
    pub fn take_writes(&mut self) -> Vec<I2cWrite> {
        std::mem::take(&mut self.writes)
    }

    /// Commands, bad slots and lost writes so far.
    pub fn events(&self) -> &[DaqEvent] {
        &self.events
    }

    /// Lost SET_CURs so far.
    pub fn lost_writes(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, DaqEvent::LostWrite { .. }))
            .count()
    }

    /// The internal 32-bit frame counter.
    pub fn frame_counter(&self) -> u32 {
        self.frame_counter
    }

    /// Sets the internal frame counter (to test wrapping without 65 536 frames).
    pub fn set_frame_counter(&mut self, value: u32) {
        self.frame_counter = value;
    }

    /// Packets committed and waiting for the next end of frame, as the ring indices see it
    /// (64 committed since the last end of frame look like 0).
    pub fn queued_packets(&self) -> usize {
        (self.write_index + DAQ_QUEUE_SLOTS - self.read_index) % DAQ_QUEUE_SLOTS
    }

    /// Whether `[FE 00]` has enabled BNO polling.
    pub fn bno_polling(&self) -> bool {
        self.bno_enabled
    }

    /// BNO reads performed.
    pub fn bno_reads(&self) -> u64 {
        self.bno_reads
    }

    /// The recording bit (SATURATION bit 0).
    pub fn recording(&self) -> bool {
        self.recording
    }

    /// The sync output (`FRAME_OUT`) level and how many edges it has made.
    pub fn sync_output(&self) -> (bool, u64) {
        (self.sync_level, self.sync_edges)
    }

    /// Hard resets (`[FE 01]`) so far.
    pub fn resets(&self) -> u32 {
        self.resets
    }
}

impl UvcControl for DaqEmulator {
    fn set_pu(&mut self, selector: PuSelector, value: u16) -> Result<(), UvcError> {
        self.settle();
        if let Some(lost) = self.landing.take() {
            self.events.push(DaqEvent::LostWrite {
                selector: lost.selector,
                value: lost.value,
            });
        }
        self.landing = Some(Landing {
            selector,
            value,
            at_ns: self.now_ns,
        });
        if self.config.min_write_spacing_ns.is_none() {
            self.settle();
        }
        Ok(())
    }

    fn get_pu(&mut self, selector: PuSelector) -> Result<u16, UvcError> {
        self.settle();
        Ok(match selector {
            PuSelector::Contrast => self.frame_counter as u16,
            PuSelector::Gamma => u16::from(self.trigger_input),
            PuSelector::Saturation => self.quaternion_word(0),
            PuSelector::Hue if self.abi_answer_armed => {
                self.abi_answer_armed = false;
                self.config.abi_version
            }
            PuSelector::Hue => self.quaternion_word(1),
            PuSelector::Gain => self.quaternion_word(2),
            PuSelector::Brightness => self.quaternion_word(3),
            PuSelector::Sharpness => 0,
        })
    }

    fn get_ct(&mut self, selector: CtSelector, out: &mut [u8]) -> Result<(), UvcError> {
        self.settle();
        if self.config.abi_version < 2 {
            return Err(UvcError::Unsupported {
                unit: CAMERA_TERMINAL_ID,
                selector: selector.code(),
            });
        }
        if out.len() != selector.payload_len() {
            return Err(UvcError::BufferSize {
                selector: selector.code(),
                expected: selector.payload_len(),
                got: out.len(),
            });
        }
        match selector {
            CtSelector::ExposureTimeAbsolute => {
                let [lo, hi] = (self.frame_counter as u16).to_le_bytes();
                out.copy_from_slice(&[lo, hi, 0, 0]);
            }
            CtSelector::PanTiltAbsolute => out.copy_from_slice(&self.quat_bno),
        }
        Ok(())
    }
}
