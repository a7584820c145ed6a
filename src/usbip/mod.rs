//! A user-space USB device attached to the kernel through USB/IP (`vhci_hcd`): the
//! Miniscope DAQ look-alike, so the real `uvcvideo` driver can be tested against the
//! DAQ's control semantics without hardware. See `docs/miniscope-lookalike.md`.
//!
//! * [`protocol`]: the USB/IP wire format (48-byte big-endian headers).
//! * [`vhci`]: attaching a socket to `vhci_hcd` through sysfs.
//! * [`descriptors`]: the UVC 1.00 descriptor set with the DAQ's identity.
//! * [`payload`]: frame content and UVC payload headers.
//! * [`device`]: the device state machine (standard and UVC requests, bulk streaming,
//!   unlinks), with the control semantics of
//!   [`DaqEmulator`](crate::source::miniscope::DaqEmulator).

pub mod descriptors;
pub mod device;
pub mod payload;
pub mod protocol;
pub mod vhci;

#[cfg(test)]
mod tests;

pub use descriptors::{PixelFormat, Speed};
pub use device::{LogEntry, Lookalike, LookalikeConfig, Probe, SkipPolicy, Stats};
pub use protocol::{Command, ProtocolError, Reply};
pub use vhci::{Attachment, VhciError};
