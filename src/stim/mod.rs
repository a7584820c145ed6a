//! Stimulator links: the behavd serial protocol v1 (`firmware-interface/PROTOCOL.md`), a Firmata
//! client codec for an unmodified Arduino, and an emulated stimulator on a pseudo-terminal.
//!
//! - [`codec`]: COBS framing, CRC-16/CCITT-FALSE, [`codec::Message`] and the streaming
//!   [`codec::FrameDecoder`]. Encoding writes into caller buffers and never allocates.
//! - [`firmata`]: the few Firmata messages behavd needs to drive pins of a StandardFirmata board.
//! - [`emulator`]: a faithful software stand-in for the reference firmware, on its own thread and
//!   its own microsecond clock, reachable through a real `/dev/pts/N` path.

pub mod codec;
pub mod emulator;
pub mod firmata;
pub mod firmata_board;
pub mod firmata_link;
#[cfg(test)]
mod firmata_link_tests;
pub mod limits;
pub mod link;
#[cfg(test)]
mod link_tests;
pub mod manual;
#[cfg(test)]
mod manual_tests;
pub mod ports;
pub mod test_rig;
pub mod wake;
