//! Attaching a user-space device to the kernel's `vhci_hcd` (USB/IP virtual host
//! controller): make a Unix stream socket pair, write `"<port> <fd> <devid> <speed>"` to
//! `attach`, and speak USB/IP on the other end. `vhci_hcd` looks the fd up in the writing
//! process, so the write must come from this process; afterwards the kernel holds its own
//! reference and our copy of that end can be closed.
//!
//! The `status` file lists the ports: `hub port sta spd dev sockfd local_busid`, one line
//! per port, `hs` ports first (0–7 on `vhci_hcd.0`) then `ss` ports (8–15); status 4
//! (`VDEV_ST_NULL`) is free.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::descriptors::Speed;

/// The first vhci controller's sysfs directory.
pub const DEFAULT_SYSFS: &str = "/sys/devices/platform/vhci_hcd.0";
/// `VDEV_ST_NULL`: a free port.
pub const PORT_FREE: u32 = 4;

/// Why attaching or detaching failed.
#[derive(Debug, thiserror::Error)]
pub enum VhciError {
    /// The controller is not there.
    #[error("{path} not found: is the vhci-hcd module loaded (modprobe vhci-hcd)?")]
    NotLoaded {
        /// The sysfs directory looked at.
        path: PathBuf,
    },
    /// Reading the port table failed.
    #[error("reading {path} failed: {source}")]
    Status {
        /// The status file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Every port of the wanted hub is in use.
    #[error("no free {hub} port in {path}")]
    NoFreePort {
        /// "hs" or "ss".
        hub: &'static str,
        /// The status file.
        path: PathBuf,
    },
    /// The socket pair could not be made.
    #[error("socketpair for USB/IP failed: {0}")]
    Socket(std::io::Error),
    /// The kernel refused the attach or detach write.
    #[error("writing {line:?} to {path} failed: {source}")]
    Write {
        /// The sysfs file.
        path: PathBuf,
        /// What was written.
        line: String,
        /// The error (EINVAL: bad port/speed; EBUSY: port taken).
        source: std::io::Error,
    },
}

/// One line of the `status` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    /// "hs" or "ss".
    pub hub: String,
    /// Port number to write to `attach`/`detach`.
    pub port: u32,
    /// `sta` (4 = free, 6 = used).
    pub status: u32,
}

/// Parses the `status` file (the header line and malformed lines are skipped).
pub fn parse_status(text: &str) -> Vec<PortStatus> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let hub = f.next()?;
            if hub != "hs" && hub != "ss" {
                return None;
            }
            let port = f.next()?.parse().ok()?;
            let status = f.next()?.parse().ok()?;
            Some(PortStatus {
                hub: hub.to_string(),
                port,
                status,
            })
        })
        .collect()
}

/// The hub name a device of this speed attaches to.
pub fn hub_for(speed: Speed) -> &'static str {
    match speed {
        Speed::High => "hs",
        Speed::Super => "ss",
    }
}

/// The first free port of the right hub.
pub fn free_port(ports: &[PortStatus], speed: Speed) -> Option<u32> {
    ports
        .iter()
        .find(|p| p.hub == hub_for(speed) && p.status == PORT_FREE)
        .map(|p| p.port)
}

/// The line written to `attach`.
pub fn attach_line(port: u32, fd: i32, devid: u32, speed: Speed) -> String {
    format!("{port} {fd} {devid} {}", speed.vhci_code())
}

/// A device attached to vhci: the socket to speak USB/IP on and the port to detach.
#[derive(Debug)]
pub struct Attachment {
    /// Our end of the socket pair.
    pub stream: UnixStream,
    /// The vhci port number.
    pub port: u32,
    /// The sysfs directory of the controller.
    pub sysfs: PathBuf,
}

/// Attaches a device at `speed` with `devid` to the first free port (or `port`).
pub fn attach(
    sysfs: &Path,
    speed: Speed,
    devid: u32,
    port: Option<u32>,
) -> Result<Attachment, VhciError> {
    if !sysfs.is_dir() {
        return Err(VhciError::NotLoaded { path: sysfs.into() });
    }
    let port = match port {
        Some(p) => p,
        None => {
            let path = sysfs.join("status");
            let text = std::fs::read_to_string(&path).map_err(|source| VhciError::Status {
                path: path.clone(),
                source,
            })?;
            free_port(&parse_status(&text), speed).ok_or(VhciError::NoFreePort {
                hub: hub_for(speed),
                path,
            })?
        }
    };
    let (ours, kernels) = UnixStream::pair().map_err(VhciError::Socket)?;
    let line = attach_line(port, kernels.as_raw_fd(), devid, speed);
    write_sysfs(&sysfs.join("attach"), &line)?;
    // The kernel took its own reference to the socket.
    drop(kernels);
    Ok(Attachment {
        stream: ours,
        port,
        sysfs: sysfs.into(),
    })
}

/// Detaches `port` (the kernel then closes its end of the socket).
pub fn detach(sysfs: &Path, port: u32) -> Result<(), VhciError> {
    write_sysfs(&sysfs.join("detach"), &port.to_string())
}

fn write_sysfs(path: &Path, line: &str) -> Result<(), VhciError> {
    let err = |source| VhciError::Write {
        path: path.into(),
        line: line.into(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(err)?;
    f.write_all(line.as_bytes()).map_err(err)
}
