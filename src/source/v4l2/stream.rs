//! mmap streaming on an open V4L2 capture node: buffers requested and mapped once, then
//! dequeue (with a poll timeout) → read in place → requeue, with no allocation per frame.

use std::io;
use std::os::raw::c_void;

use v4l::v4l_sys::{
    v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE as BUF_TYPE_CAPTURE, v4l2_buffer,
    v4l2_memory_V4L2_MEMORY_MMAP as MEMORY_MMAP, v4l2_requestbuffers,
};
use v4l::v4l2::{ioctl, vidioc};

/// One dequeued buffer's metadata.
#[derive(Debug, Clone, Copy)]
pub struct Dequeued {
    /// Buffer index (give it back with [`MmapStream::requeue`]).
    pub index: usize,
    /// Bytes of data in the buffer.
    pub bytesused: usize,
    /// `V4L2_BUF_FLAG_*`.
    pub flags: u32,
    /// The driver's frame sequence number.
    pub sequence: u32,
    /// Buffer timestamp in nanoseconds (the clock named by `flags`).
    pub timestamp_ns: u64,
}

/// What a wait for the next buffer gave.
pub enum Wait {
    /// A filled buffer.
    Frame(Dequeued),
    /// Nothing within the timeout.
    TimedOut,
}

/// The mapped buffers of a streaming capture node. Dropping it stops streaming and unmaps.
pub struct MmapStream {
    fd: i32,
    bufs: Vec<(*mut u8, usize)>,
    streaming: bool,
}

// The mappings belong to this stream alone; it moves between threads with its source.
unsafe impl Send for MmapStream {}

fn blank() -> v4l2_buffer {
    // SAFETY: v4l2_buffer is plain old data; all-zero is a valid value.
    let mut b: v4l2_buffer = unsafe { std::mem::zeroed() };
    b.type_ = BUF_TYPE_CAPTURE;
    b.memory = MEMORY_MMAP;
    b
}

pub(super) fn xioctl<T>(fd: i32, request: vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
    // SAFETY: `arg` is the struct type the request expects, and lives across the call.
    unsafe { ioctl(fd, request, arg as *mut T as *mut c_void) }
}

impl MmapStream {
    /// Requests `count` buffers on `fd`, maps and queues them all; [`MmapStream::stream_on`]
    /// starts streaming. The caller keeps `fd` open for the stream's lifetime.
    pub fn new(fd: i32, count: u32) -> Result<Self, (&'static str, io::Error)> {
        // SAFETY: plain old data.
        let mut req: v4l2_requestbuffers = unsafe { std::mem::zeroed() };
        req.count = count;
        req.type_ = BUF_TYPE_CAPTURE;
        req.memory = MEMORY_MMAP;
        xioctl(fd, vidioc::VIDIOC_REQBUFS, &mut req).map_err(|e| ("VIDIOC_REQBUFS", e))?;
        let mut stream = MmapStream {
            fd,
            bufs: Vec::with_capacity(req.count as usize),
            streaming: false,
        };
        if req.count < 2 {
            return Err((
                "VIDIOC_REQBUFS",
                io::Error::other(format!("the driver granted {} buffers", req.count)),
            ));
        }
        for index in 0..req.count {
            let mut b = blank();
            b.index = index;
            xioctl(fd, vidioc::VIDIOC_QUERYBUF, &mut b).map_err(|e| ("VIDIOC_QUERYBUF", e))?;
            let len = b.length as usize;
            // SAFETY: maps the driver's buffer `index` at the offset QUERYBUF gave.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    b.m.offset as libc::off_t,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(("mmap", io::Error::last_os_error()));
            }
            stream.bufs.push((ptr as *mut u8, len));
        }
        for index in 0..stream.bufs.len() {
            stream.requeue(index).map_err(|e| ("VIDIOC_QBUF", e))?;
        }
        Ok(stream)
    }

    /// Starts streaming (once; later calls do nothing).
    pub fn stream_on(&mut self) -> io::Result<()> {
        if !self.streaming {
            let mut typ = BUF_TYPE_CAPTURE;
            xioctl(self.fd, vidioc::VIDIOC_STREAMON, &mut typ)?;
            self.streaming = true;
        }
        Ok(())
    }

    /// Buffers the driver granted.
    pub fn buffer_count(&self) -> usize {
        self.bufs.len()
    }

    /// Size in bytes of each mapped buffer.
    pub fn buffer_len(&self) -> usize {
        self.bufs.first().map_or(0, |b| b.1)
    }

    /// Waits up to `timeout_ms` for a filled buffer. A hung-up or unregistered device
    /// (`POLLERR`/`POLLHUP`) is an `ENODEV` error.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<Wait> {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(Wait::TimedOut)
            } else {
                Err(e)
            };
        }
        if n == 0 {
            return Ok(Wait::TimedOut);
        }
        if pfd.revents & libc::POLLIN == 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        let mut b = blank();
        match xioctl(self.fd, vidioc::VIDIOC_DQBUF, &mut b) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(Wait::TimedOut),
            Err(e) => return Err(e),
        }
        Ok(Wait::Frame(Dequeued {
            index: b.index as usize,
            bytesused: b.bytesused as usize,
            flags: b.flags,
            sequence: b.sequence,
            timestamp_ns: b.timestamp.tv_sec as u64 * 1_000_000_000
                + b.timestamp.tv_usec as u64 * 1_000,
        }))
    }

    /// The bytes of buffer `index` (valid until it is requeued).
    pub fn data(&self, index: usize, len: usize) -> &[u8] {
        let (ptr, size) = self.bufs[index];
        // SAFETY: the mapping is `size` bytes and stays mapped while `self` lives.
        unsafe { std::slice::from_raw_parts(ptr, len.min(size)) }
    }

    /// Gives buffer `index` back to the driver.
    pub fn requeue(&mut self, index: usize) -> io::Result<()> {
        let mut b = blank();
        b.index = index as u32;
        xioctl(self.fd, vidioc::VIDIOC_QBUF, &mut b)
    }
}

impl Drop for MmapStream {
    fn drop(&mut self) {
        // Errors are expected here when the device is gone (ENODEV); nothing to do about them.
        let mut typ = BUF_TYPE_CAPTURE;
        let _ = xioctl(self.fd, vidioc::VIDIOC_STREAMOFF, &mut typ);
        for &(ptr, len) in &self.bufs {
            // SAFETY: unmaps exactly what `start` mapped.
            unsafe { libc::munmap(ptr as *mut c_void, len) };
        }
        // SAFETY: plain old data.
        let mut req: v4l2_requestbuffers = unsafe { std::mem::zeroed() };
        req.type_ = BUF_TYPE_CAPTURE;
        req.memory = MEMORY_MMAP;
        let _ = xioctl(self.fd, vidioc::VIDIOC_REQBUFS, &mut req);
    }
}
