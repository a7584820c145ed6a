//! The UCLA Miniscope DAQ: its control protocol (I2C tunnelled through UVC Processing-Unit
//! controls), the device catalog, the control writer, the host-side read-backs, and an
//! emulator of the DAQ firmware behind the same control trait as the real device.
//!
//! Implemented from the protocol facts written down in `docs/miniscope.md` (which lists the
//! public sources). [`v4l2_uvc`] implements [`UvcControl`] over uvcvideo and [`source`] ties
//! these pieces to the frame stream.
//!
//! * [`packet`]: I2C packets ↔ the three control words.
//! * [`catalog`]: device entries; [`send_command`]: the `sendCommand` schema.
//! * [`controls`]: control settings → packets; the connect ritual.
//! * [`writer`]: the paced, coalescing, frame-bounded control writer.
//! * [`readback`]: decoding frame counter, head orientation, trigger;
//!   [`frame_reads`]: the per-frame reads and the ABI query.
//! * [`daq`]: the DAQ emulator.

pub mod catalog;
pub mod controls;
pub mod daq;
pub mod frame_reads;
pub mod identify;
pub mod live;
pub mod packet;
pub mod readback;
pub mod scope;
pub mod send_command;
pub mod source;
pub mod uvc;
pub mod v4l2_uvc;
pub mod writer;

#[cfg(test)]
pub(crate) mod test_rig;
#[cfg(test)]
mod tests_catalog;
#[cfg(test)]
mod tests_emulator;
#[cfg(test)]
mod tests_examples;
#[cfg(test)]
mod tests_readback;
#[cfg(test)]
mod tests_scope;

pub use catalog::{Catalog, CatalogError, ControlDef, DeviceEntry};
pub use controls::{ConnectStep, ControlError, ControlValue, connect_sequence, control_packets};
pub use daq::{DaqConfig, DaqEmulator, DaqEvent, I2cWrite};
pub use frame_reads::{Readback, ReadbackPlan};
pub use packet::{CoalesceKey, ControlWords, I2cPacket, KeyedPacket, PacketError};
pub use readback::{FrameCounter, ImuFilter, TriggerInput};
pub use scope::{
    ScopeAction, ScopeCommand, ScopeControl, ScopeError, ScopeHandle, ScopeSettings, ScopeStats,
};
pub use send_command::SendCommand;
pub use uvc::{CtSelector, PuSelector, UvcControl, UvcError};
pub use v4l2_uvc::V4l2Uvc;
pub use writer::{ControlWriter, Wake, WriterConfig, WriterError};

/// Slots in the DAQ firmware's packet ring. It has no overflow check: with 64
/// packets committed between two ends of frame the ring looks empty again.
pub const DAQ_QUEUE_SLOTS: usize = 64;

/// The address byte the DAQ firmware intercepts as its own command (`[FE 00]` = poll the
/// BNO each frame, `[FE 01]` = hard reset); not an I2C device.
pub const DAQ_COMMAND_ADDRESS: u8 = 0xFE;
