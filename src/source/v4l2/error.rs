//! Errors of the V4L2 source, each naming the device and what failed.

use std::io;

/// Why a V4L2 device could not be opened, configured or read.
#[derive(Debug, thiserror::Error)]
pub enum V4l2Error {
    /// No capture node matches the selector.
    #[error(
        "no V4L2 capture device matches `{selector}` ({why}); capture devices present: {present}"
    )]
    NotFound {
        /// The configured selector.
        selector: String,
        /// What was looked at.
        why: String,
        /// The capture nodes that do exist, with their cards.
        present: String,
    },
    /// A system call on the device failed.
    #[error("{device}: {what} failed: {source}")]
    Io {
        /// Node and card, e.g. `/dev/video0 (vivid)`.
        device: String,
        /// The call, e.g. `VIDIOC_S_FMT`.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The device cannot do what the config asks.
    #[error("{device}: {what}")]
    Unsupported {
        /// Node and card.
        device: String,
        /// What it cannot do, and what it offers instead.
        what: String,
    },
    /// A configured control does not exist on the device.
    #[error("{device}: no control named `{name}`; its controls are: {available}")]
    UnknownControl {
        /// Node and card.
        device: String,
        /// The configured name.
        name: String,
        /// The device's control names.
        available: String,
    },
}

impl V4l2Error {
    /// An [`V4l2Error::Io`] for `what` on `device`.
    pub fn io(device: &str, what: impl Into<String>, source: io::Error) -> Self {
        V4l2Error::Io {
            device: device.to_string(),
            what: what.into(),
            source,
        }
    }

    /// Whether the device is (or went) away, so that waiting for it to come back makes sense.
    pub fn is_gone(&self) -> bool {
        match self {
            V4l2Error::NotFound { .. } => true,
            V4l2Error::Io { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::ENODEV | libc::ENOENT | libc::ENXIO | libc::EIO | libc::EPIPE)
            ),
            _ => false,
        }
    }
}
