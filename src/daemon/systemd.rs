//! The service manager's notification protocol (`sd_notify(3)`), spoken over a plain datagram
//! socket: `READY=1` once the rig is loaded, `STATUS=` one human line, `STOPPING=1` when the
//! service shuts down, `WATCHDOG=1` from the watchdog supervisor ([`crate::daemon::watchdog`]).
//!
//! systemd passes the socket in `$NOTIFY_SOCKET`: a filesystem path, or an abstract socket
//! name written with a leading `@`. `$WATCHDOG_USEC` (with `$WATCHDOG_PID`, when set, naming
//! the process it is meant for) is the unit's `WatchdogSec=`. The protocol is small enough that
//! std's `UnixDatagram` is all it takes; an explicit address ([`Notifier::connect`]) lets the
//! tests listen on a socket of their own.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Environment variable with the address of the service manager's notification socket.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";
/// Environment variable with the watchdog timeout in microseconds.
pub const WATCHDOG_USEC_ENV: &str = "WATCHDOG_USEC";
/// Environment variable naming the process the watchdog timeout is meant for.
pub const WATCHDOG_PID_ENV: &str = "WATCHDOG_PID";

/// How long a notification may wait for room in the manager's socket before it is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// What went wrong talking to the service manager.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The socket address is unusable.
    #[error("{NOTIFY_SOCKET_ENV}={value:?}: {why}")]
    BadAddress {
        /// The address as given.
        value: String,
        /// Why it cannot be used.
        why: String,
    },
    /// A watchdog variable does not hold what systemd writes there.
    #[error("{name}={value:?}: {why}")]
    BadWatchdog {
        /// The variable's name.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The datagram could not be sent.
    #[error("sending {what:?} to the service manager at {address}: {source}")]
    Send {
        /// The first line of the message.
        what: String,
        /// The socket address.
        address: String,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
}

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    address: String,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` names, or `None` when behavd does not run under a service
    /// manager that asked for notifications.
    pub fn from_env() -> Result<Option<Self>, NotifyError> {
        match std::env::var(NOTIFY_SOCKET_ENV) {
            Ok(value) if !value.is_empty() => Self::connect(&value).map(Some),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(v)) => Err(NotifyError::BadAddress {
                value: v.to_string_lossy().into_owned(),
                why: "not valid UTF-8".into(),
            }),
        }
    }

    /// A notifier sending to `address`: an absolute (or relative) socket path, or `@name` for
    /// a socket in the abstract namespace.
    pub fn connect(address: &str) -> Result<Self, NotifyError> {
        let bad = |why: String| NotifyError::BadAddress {
            value: address.to_owned(),
            why,
        };
        let addr = match address.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            None => SocketAddr::from_pathname(address),
        }
        .map_err(|e| bad(e.to_string()))?;
        let socket = UnixDatagram::unbound().map_err(|e| bad(format!("no socket: {e}")))?;
        socket
            .set_write_timeout(Some(SEND_TIMEOUT))
            .map_err(|e| bad(format!("setting the send timeout: {e}")))?;
        Ok(Self {
            socket,
            addr,
            address: address.to_owned(),
        })
    }

    /// The address this notifier sends to, as given.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends one message: newline-separated `KEY=value` assignments.
    pub fn send(&self, message: &str) -> Result<(), NotifyError> {
        self.socket
            .send_to_addr(message.as_bytes(), &self.addr)
            .map(drop)
            .map_err(|source| NotifyError::Send {
                what: message.lines().next().unwrap_or_default().to_owned(),
                address: self.address.clone(),
                source,
            })
    }

    /// `READY=1` with the status line: the rig is loaded and the service is up.
    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("READY=1\nSTATUS={}", status_line(status)))
    }

    /// `STATUS=`: one human line shown by `systemctl status`.
    pub fn status(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STATUS={}", status_line(status)))
    }

    /// `STOPPING=1` with the status line: the service is shutting down.
    pub fn stopping(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STOPPING=1\nSTATUS={}", status_line(status)))
    }

    /// `WATCHDOG=1`: the process is alive and well.
    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.send("WATCHDOG=1")
    }
}

/// `text` as one status line: line breaks and other control characters become spaces (a
/// newline would start a new assignment of the protocol).
pub fn status_line(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The watchdog timeout systemd asked this process for (`$WATCHDOG_USEC`, honoured only when
/// `$WATCHDOG_PID` is unset or names this process), or `None` without a watchdog.
pub fn watchdog_timeout() -> Result<Option<Duration>, NotifyError> {
    let usec = std::env::var(WATCHDOG_USEC_ENV).ok();
    let pid = std::env::var(WATCHDOG_PID_ENV).ok();
    watchdog_timeout_from(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// [`watchdog_timeout`] from the variables' values and this process's id.
pub fn watchdog_timeout_from(
    usec: Option<&str>,
    pid: Option<&str>,
    my_pid: u32,
) -> Result<Option<Duration>, NotifyError> {
    let Some(usec) = usec.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Some(pid) = pid.filter(|s| !s.is_empty()) {
        let pid: u32 = pid.parse().map_err(|_| NotifyError::BadWatchdog {
            name: WATCHDOG_PID_ENV,
            value: pid.to_owned(),
            why: "not a process id",
        })?;
        if pid != my_pid {
            return Ok(None);
        }
    }
    let micros: u64 = usec.parse().map_err(|_| NotifyError::BadWatchdog {
        name: WATCHDOG_USEC_ENV,
        value: usec.to_owned(),
        why: "not a whole number of microseconds",
    })?;
    if micros == 0 {
        return Err(NotifyError::BadWatchdog {
            name: WATCHDOG_USEC_ENV,
            value: usec.to_owned(),
            why: "zero",
        });
    }
    Ok(Some(Duration::from_micros(micros)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listening datagram socket in a fresh directory, like the one systemd binds.
    fn listener() -> (tempfile::TempDir, String, UnixDatagram) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (dir, path.to_str().unwrap().to_owned(), socket)
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a notification arrives");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn every_message_arrives_as_one_datagram_on_a_path_socket() {
        let (_dir, path, socket) = listener();
        let notifier = Notifier::connect(&path).unwrap();
        notifier.ready("live: 2 streams").unwrap();
        assert_eq!(receive(&socket), "READY=1\nSTATUS=live: 2 streams");
        notifier.status("recording m042\nsecond line").unwrap();
        assert_eq!(receive(&socket), "STATUS=recording m042 second line");
        notifier.watchdog().unwrap();
        assert_eq!(receive(&socket), "WATCHDOG=1");
        notifier.stopping("stopping: finalizing m042").unwrap();
        assert_eq!(
            receive(&socket),
            "STOPPING=1\nSTATUS=stopping: finalizing m042"
        );
    }

    #[test]
    fn an_abstract_socket_name_is_written_with_an_at_sign() {
        let name = format!("behavd-test-notify-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier = Notifier::connect(&format!("@{name}")).unwrap();
        notifier.ready("idle").unwrap();
        assert_eq!(receive(&socket), "READY=1\nSTATUS=idle");
    }

    #[test]
    fn a_socket_nobody_listens_on_is_an_error_naming_the_address() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody");
        let notifier = Notifier::connect(path.to_str().unwrap()).unwrap();
        let err = notifier.ready("idle").unwrap_err().to_string();
        assert!(err.contains("READY=1") && err.contains("nobody"), "{err}");
    }

    #[test]
    fn an_unusable_address_is_refused_with_the_reason() {
        let long = format!("/{}", "x".repeat(200));
        let err = Notifier::connect(&long).unwrap_err().to_string();
        assert!(err.starts_with("NOTIFY_SOCKET=\"/xxx"), "{err}");
    }

    #[test]
    fn the_watchdog_timeout_is_honoured_only_for_this_process() {
        let me = 4242;
        assert_eq!(watchdog_timeout_from(None, None, me).unwrap(), None);
        assert_eq!(
            watchdog_timeout_from(Some("10000000"), None, me).unwrap(),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            watchdog_timeout_from(Some("2000000"), Some("4242"), me).unwrap(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            watchdog_timeout_from(Some("2000000"), Some("17"), me).unwrap(),
            None
        );
        let err = watchdog_timeout_from(Some("2s"), None, me)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("WATCHDOG_USEC=\"2s\""), "{err}");
        assert!(watchdog_timeout_from(Some("0"), None, me).is_err());
        assert!(watchdog_timeout_from(Some("1"), Some("pid"), me).is_err());
    }

    #[test]
    fn a_status_line_has_no_control_characters() {
        assert_eq!(status_line("  a\nb\tc\r\n"), "a b c");
    }
}
