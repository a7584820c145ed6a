//! V4L2 cameras: a [`Source`] over a Video4Linux2 capture node with mmap streaming.
//!
//! The device is named by a selector (`/dev/videoN`, a `/dev/v4l/by-id/...` link,
//! `card:<name>`, `usb:<serial>`) resolved through sysfs at every (re)connection. GREY, YUYV
//! and MJPEG are negotiated at the configured size (stride and size left to the driver unless
//! `bytesperline` asks for padding) and rate; padded rows are copied row by row; YUYV becomes
//! 8-bit luma or RGB; MJPEG is decoded on its own thread. Each frame carries the kernel buffer
//! timestamp (CLOCK_MONOTONIC), the host dequeue time and the V4L2 sequence number, kept
//! continuous across reopenings ([`SeqCounter`]), so that a sequence gap is a device drop for
//! the capture loop. A vanished device (ENODEV, POLLERR) or a stream with no frame for
//! `stall_periods` frame periods is reported as [`SourceError::Disconnected`];
//! [`Source::reconnect`] then reopens it. The wait for a frame is polled in slices of at most
//! [`STOP_POLL_NS`](super::stop::STOP_POLL_NS) so that a stop ends it whatever the device does.

mod controls;
pub mod convert;
mod counter;
mod error;
pub mod list;
pub mod mjpeg;
pub mod select;
mod stream;

use v4l::v4l_sys::{
    V4L2_BUF_FLAG_ERROR, V4L2_BUF_FLAG_TIMESTAMP_MASK, V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC,
};
use v4l::video::Capture;

pub use controls::ctl_name;
pub use counter::SeqCounter;
pub use error::V4l2Error;

use self::mjpeg::MjpegDecoder;
use self::stream::{MmapStream, Wait};
use super::{CaptureStop, Source, SourceError, StreamInfo, StreamKind, check_frame_buffer};
use crate::clock::monotonic_ns;
use crate::config::source::{V4l2Config, V4l2Format};
use crate::frame::{CaptureStamp, FrameGeometry, PixelFormat};

/// An open, streaming device. Field order matters: the stream is dropped before the fd closes.
struct Open {
    stream: MmapStream,
    _device: v4l::Device,
    label: String,
    stride: usize,
    /// Whether a frame came since opening (the first may take longer: exposure, USB setup).
    got_frame: bool,
}

/// The least time a freshly opened device gets for its first frame before it counts as stalled.
const FIRST_FRAME_MS: u64 = 3000;

/// A camera behind a V4L2 capture node.
pub struct V4l2Source {
    config: V4l2Config,
    info: StreamInfo,
    open: Option<Open>,
    counter: SeqCounter,
    period_ns: u64,
    stall_ms: u64,
    decoder: Option<MjpegDecoder>,
    stop: CaptureStop,
}

/// The frame interval for `fps` as V4L2 wants it (seconds per frame, reduced).
fn interval(fps: f64) -> v4l::Fraction {
    let den = (fps * 1000.0).round().max(1.0) as u32;
    let (mut a, mut b) = (1000u32, den);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    v4l::Fraction::new(1000 / a, den / a)
}

/// Opens and configures the device `config` names and maps its buffers (streaming starts at the
/// first `next_frame`); also returns the frame rate the device reports, and a description.
fn open(config: &V4l2Config) -> Result<(Open, Option<f64>, String), V4l2Error> {
    let caps = select::resolve(&config.device)?;
    let label = select::label(&caps);
    let device =
        v4l::Device::with_path(&caps.node).map_err(|e| V4l2Error::io(&label, "open", e))?;
    let fd = device.handle().fd();
    let fourcc = v4l::FourCC::new(&config.format.fourcc());
    let mut want = v4l::Format::new(config.width, config.height, fourcc);
    // Left at 0, the driver picks stride and size; copying them from an earlier format keeps
    // a stale (larger) stride.
    want.stride = config.bytesperline.unwrap_or(0);
    want.size = 0;
    let got = device
        .set_format(&want)
        .map_err(|e| V4l2Error::io(&label, "VIDIOC_S_FMT", e))?;
    if got.fourcc != fourcc || (got.width, got.height) != (config.width, config.height) {
        let offered: Vec<String> = device
            .enum_formats()
            .unwrap_or_default()
            .iter()
            .map(|f| f.fourcc.to_string())
            .collect();
        return Err(V4l2Error::Unsupported {
            device: label,
            what: format!(
                "asked for {}x{} {fourcc}, the driver set {}x{} {}; formats offered: {} \
                 (`behavd devices` lists sizes and rates)",
                config.width,
                config.height,
                got.width,
                got.height,
                got.fourcc,
                offered.join(", ")
            ),
        });
    }
    let row = config.width as usize * config.format.bytes_per_pixel() as usize;
    let stride = (got.stride as usize).max(row);
    if let Err(e) = device.set_params(&v4l::video::capture::Parameters::new(interval(config.fps))) {
        tracing::debug!(device = %label, error = %e, "VIDIOC_S_PARM refused; keeping the device's rate");
    }
    let fps = device
        .params()
        .ok()
        .filter(|p| p.interval.numerator > 0 && p.interval.denominator > 0)
        .map(|p| f64::from(p.interval.denominator) / f64::from(p.interval.numerator));
    controls::apply(fd, &label, &config.controls)?;
    let stream =
        MmapStream::new(fd, config.buffers).map_err(|(what, e)| V4l2Error::io(&label, what, e))?;
    let needed = stride * (config.height as usize - 1) + row;
    if stream.buffer_len() < needed {
        return Err(V4l2Error::Unsupported {
            device: label,
            what: format!(
                "buffers of {} bytes cannot hold a frame of {needed}",
                stream.buffer_len()
            ),
        });
    }
    tracing::info!(device = %label, %fourcc, width = config.width, height = config.height, stride, fps = ?fps, buffers = stream.buffer_count(), "V4L2 device opened");
    let description = format!(
        "V4L2 {} (driver {}, bus {}) as {fourcc} {}x{} stride {stride}",
        caps.card, caps.driver, caps.bus, config.width, config.height
    );
    let open = Open {
        stream,
        _device: device,
        label,
        stride,
        got_frame: false,
    };
    Ok((open, fps, description))
}

/// Converts one raw (uncompressed) frame with rows `stride` bytes apart into `pixels`.
fn convert_frame(config: &V4l2Config, data: &[u8], stride: usize, pixels: &mut [u8]) {
    let (w, h) = (config.width as usize, config.height as usize);
    match (config.format, config.pixel_format) {
        (V4l2Format::Yuyv, PixelFormat::Gray8) => convert::yuyv_to_gray(data, stride, w, h, pixels),
        (V4l2Format::Yuyv, PixelFormat::Rgb8) => convert::yuyv_to_rgb(data, stride, w, h, pixels),
        _ => convert::copy_rows(data, stride, w, h, pixels),
    }
}

impl V4l2Source {
    /// Opens and configures the device; streaming starts with the first `next_frame`.
    pub fn new(config: &V4l2Config) -> Result<Self, V4l2Error> {
        let (open, fps, description) = open(config)?;
        if let Some(fps) = fps
            && (fps - config.fps).abs() > 0.01 * config.fps
        {
            tracing::warn!(device = %open.label, asked = config.fps, got = fps, "the device keeps its own frame rate");
        }
        let nominal_fps = fps.unwrap_or(config.fps);
        let period_ns = (1e9 / nominal_fps) as u64;
        let decoder = match config.format {
            V4l2Format::Mjpeg => Some(
                MjpegDecoder::start(
                    &config.name,
                    config.width,
                    config.height,
                    config.pixel_format,
                    open.stream.buffer_len(),
                )
                .map_err(|e| V4l2Error::io(&open.label, "starting the MJPEG decoder thread", e))?,
            ),
            _ => None,
        };
        Ok(Self {
            info: StreamInfo {
                name: config.name.clone(),
                kind: StreamKind::BehaviorCamera,
                geometry: FrameGeometry {
                    width: config.width,
                    height: config.height,
                    format: config.pixel_format,
                },
                nominal_fps,
                counter_bits: 64,
                device_description: description,
            },
            config: config.clone(),
            open: Some(open),
            counter: SeqCounter::default(),
            period_ns,
            stall_ms: (u64::from(config.stall_periods) * period_ns / 1_000_000).max(500),
            decoder,
            stop: CaptureStop::default(),
        })
    }

    /// Closes the device (after a failure) and reports it disconnected.
    fn lost(&mut self, reason: String) -> SourceError {
        self.open = None;
        if let Some(d) = &mut self.decoder {
            d.discard();
        }
        self.counter.reopened();
        SourceError::Disconnected {
            device: self.config.device.clone(),
            reason,
        }
    }
}

impl Source for V4l2Source {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn watch_stop(&mut self, stop: CaptureStop) {
        self.stop = stop;
    }

    fn next_frame(&mut self, pixels: &mut [u8]) -> Result<CaptureStamp, SourceError> {
        check_frame_buffer(&self.info, pixels)?;
        let row = self.config.width as usize * self.config.format.bytes_per_pixel() as usize;
        let limit_ms = match &self.open {
            Some(o) if !o.got_frame => self.stall_ms.max(FIRST_FRAME_MS),
            _ => self.stall_ms,
        };
        let mut deadline = monotonic_ns() + limit_ms * 1_000_000;
        loop {
            if self.stop.is_set() {
                return Err(SourceError::Stopped);
            }
            let Some(open) = self.open.as_mut() else {
                return Err(self.lost("the device is not open".into()));
            };
            let now = monotonic_ns();
            if now >= deadline {
                let reason = format!(
                    "{}: no frame for {limit_ms} ms (stall_periods = {}): stream stalled",
                    open.label, self.config.stall_periods
                );
                return Err(self.lost(reason));
            }
            // Streaming starts with the first request, not at open: frames the driver made
            // before anyone asked for them would only be lost.
            if let Err(e) = open.stream.stream_on() {
                let reason = format!("{}: VIDIOC_STREAMON: {e}", open.label);
                return Err(self.lost(reason));
            }
            let d = match open.stream.wait(CaptureStop::slice_ms(deadline)) {
                Ok(Wait::Frame(d)) => {
                    open.got_frame = true;
                    d
                }
                Ok(Wait::TimedOut) => continue,
                Err(e) => {
                    let reason = format!("{}: waiting for a frame: {e}", open.label);
                    return Err(self.lost(reason));
                }
            };
            let host_time_ns = monotonic_ns();
            let stride = open.stride;
            let needed = stride * (self.config.height as usize - 1) + row;
            let complete = d.flags & V4L2_BUF_FLAG_ERROR == 0
                && (self.decoder.is_some() || d.bytesused >= needed);
            let device_time_ns =
                if d.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK == V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC {
                    d.timestamp_ns
                } else {
                    host_time_ns
                };
            let stamp = CaptureStamp {
                raw_counter: self
                    .counter
                    .next(d.sequence, device_time_ns, self.period_ns),
                device_time_ns,
                host_time_ns,
                head_orientation: None,
                ground_truth: None,
            };
            let open = self.open.as_mut().expect("open above");
            let mut submitted = false;
            if complete {
                let data = open.stream.data(d.index, d.bytesused.max(needed));
                match &mut self.decoder {
                    Some(decoder) => submitted = decoder.submit(&data[..d.bytesused], stamp),
                    None => convert_frame(&self.config, data, stride, pixels),
                }
            }
            if let Err(e) = open.stream.requeue(d.index) {
                let reason = format!("{}: VIDIOC_QBUF: {e}", open.label);
                return Err(self.lost(reason));
            }
            // An incomplete frame is skipped: the next sequence number shows it as lost.
            if !complete {
                continue;
            }
            let Some(decoder) = &mut self.decoder else {
                return Ok(stamp);
            };
            if !submitted || decoder.in_flight() < 2 {
                continue;
            }
            match decoder.receive(pixels) {
                Ok(stamp) => return Ok(stamp),
                Err(e) => {
                    tracing::warn!(stream = %self.info.name, error = %e, "MJPEG frame lost");
                    deadline = monotonic_ns() + limit_ms * 1_000_000;
                }
            }
        }
    }

    fn reconnect(&mut self) -> Result<(), SourceError> {
        if self.open.is_some() {
            let _ = self.lost(String::new());
        }
        match open(&self.config) {
            Ok((open, _, _)) => {
                tracing::info!(device = %open.label, "V4L2 device reopened");
                self.open = Some(open);
                Ok(())
            }
            Err(e) => Err(SourceError::Disconnected {
                device: self.config.device.clone(),
                reason: e.to_string(),
            }),
        }
    }
}
