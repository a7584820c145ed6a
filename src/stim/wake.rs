//! Waking the link thread: an eventfd the rules thread signals, polled together with the
//! serial port.

use std::os::fd::RawFd;

/// An eventfd other threads write to wake the link thread.
#[derive(Debug)]
pub struct LinkWaker {
    fd: RawFd,
}

impl LinkWaker {
    /// The eventfd, for `poll(2)`.
    pub fn fd(&self) -> RawFd {
        self.fd
    }
}

impl LinkWaker {
    /// Creates the eventfd.
    pub fn new() -> std::io::Result<Self> {
        // SAFETY: plain syscall; the fd is owned by the returned value.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { fd })
    }

    /// Wakes the link thread (one syscall, no allocation, no lock).
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        unsafe { libc::write(self.fd, (&one as *const u64).cast(), 8) };
    }

    /// Consumes pending wake-ups.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our non-blocking eventfd.
        unsafe { libc::read(self.fd, (&mut v as *mut u64).cast(), 8) };
    }
}

impl Drop for LinkWaker {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.fd) };
    }
}

/// What `wait_readable` saw.
pub enum Readiness {
    /// Bytes on the port.
    Port,
    /// The port hung up.
    Hangup,
    /// The eventfd was signalled.
    Waker,
    /// Nothing happened.
    Timeout,
}

/// `poll(2)` on the port (if `port >= 0`) and the waker, for up to `timeout_ms`.
pub fn wait_readable(port: RawFd, waker: RawFd, timeout_ms: i32) -> Readiness {
    wait_readable_ns(port, waker, timeout_ms.max(0) as u64 * 1_000_000)
}

/// `ppoll(2)` on the port (if `port >= 0`) and the waker, for up to `timeout_ns` (nanosecond
/// resolution, for host-timed pin edges).
pub fn wait_readable_ns(port: RawFd, waker: RawFd, timeout_ns: u64) -> Readiness {
    let mut fds = [
        libc::pollfd {
            fd: waker,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: port,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let count = if port >= 0 { 2 } else { 1 };
    let timeout = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `fds` is a valid array of `count` pollfds; `timeout` outlives the call.
    let r = unsafe { libc::ppoll(fds.as_mut_ptr(), count, &timeout, std::ptr::null()) };
    if r <= 0 {
        return Readiness::Timeout;
    }
    if count == 2 && fds[1].revents & libc::POLLIN != 0 {
        return Readiness::Port;
    }
    if count == 2 && fds[1].revents & (libc::POLLHUP | libc::POLLERR) != 0 {
        return Readiness::Hangup;
    }
    if fds[0].revents & libc::POLLIN != 0 {
        return Readiness::Waker;
    }
    Readiness::Timeout
}
