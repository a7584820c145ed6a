//! A camera through `nokhwa` (AVFoundation on macOS, Media Foundation on Windows, V4L2 on
//! Linux), for rigs that are not Linux. Built only with the `nokhwa` cargo feature.
//!
//! **Untested on hardware.** It compiles on Linux (CI builds it with `--features nokhwa`),
//! but no camera on macOS or Windows has been run through it. On Linux, use
//! `kind = "v4l2"`, which has device timestamps, sequence numbers and drop detection; this
//! backend has neither: nokhwa gives no driver timestamp or sequence number, so
//! `device_time_ns` is the host time after the frame arrived and the counter is the number of
//! frames received (drops at the device cannot be seen). nokhwa also allocates a buffer per
//! frame inside `Camera::frame`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use nokhwa::Camera;
use nokhwa::pixel_format::{LumaFormat, RgbFormat};
use nokhwa::utils::{
    CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution,
};

use super::stop::STOP_POLL_NS;
use super::{CaptureStop, Source, SourceError, StreamInfo, StreamKind, check_frame_buffer};
use crate::clock::monotonic_ns;
use crate::frame::{CaptureStamp, FrameGeometry, PixelFormat};

/// Buffers cycling between the camera thread and the source (no allocation per frame on
/// behavd's side).
const BUFFERS: usize = 3;

/// A decoded frame and the host time it arrived, or why the camera failed.
type Filled = Result<(Vec<u8>, u64), String>;

/// The thread that owns the `nokhwa::Camera` (which is not `Send`).
struct CameraThread {
    stop: Arc<AtomicBool>,
    filled: Receiver<Filled>,
    free: Sender<Vec<u8>>,
    join: Option<JoinHandle<()>>,
}

/// Longest a dropped camera thread is waited for (it may be blocked inside the driver).
const JOIN_LIMIT: Duration = Duration::from_secs(1);

impl Drop for CameraThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let Some(j) = self.join.take() else {
            return;
        };
        let until = std::time::Instant::now() + JOIN_LIMIT;
        while !j.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        if j.is_finished() {
            let _ = j.join();
        } else {
            // Left to end on its own when the driver returns; the stop does not wait for it.
            tracing::warn!(
                "nokhwa camera thread still blocked in the driver after 1 s; not waiting for it"
            );
        }
    }
}

/// A nokhwa camera as a frame source.
pub struct NokhwaCamera {
    info: StreamInfo,
    device: String,
    thread: Option<CameraThread>,
    frames: u64,
    stop: CaptureStop,
}

impl NokhwaCamera {
    /// Opens camera `device` (an index such as `0`, or the name nokhwa lists) at the size and
    /// rate of `info` (closest format the camera offers) and starts streaming.
    pub fn open(device: &str, info: StreamInfo) -> Result<Self, SourceError> {
        let mut cam = Self {
            info,
            device: device.to_owned(),
            thread: None,
            frames: 0,
            stop: CaptureStop::default(),
        };
        cam.reconnect()?;
        Ok(cam)
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) -> SourceError {
        SourceError::Disconnected {
            device: self.device.clone(),
            reason: format!("{what}: {e}"),
        }
    }
}

fn open_camera(device: &str, geometry: FrameGeometry, fps: f64) -> Result<Camera, String> {
    let index = match device.parse::<u32>() {
        Ok(i) => CameraIndex::Index(i),
        Err(_) => CameraIndex::String(device.to_owned()),
    };
    let wanted = CameraFormat::new(
        Resolution::new(geometry.width, geometry.height),
        FrameFormat::YUYV,
        fps.round().max(1.0) as u32,
    );
    let requested = match geometry.format {
        PixelFormat::Gray8 => {
            RequestedFormat::new::<LumaFormat>(RequestedFormatType::Closest(wanted))
        }
        PixelFormat::Rgb8 => {
            RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(wanted))
        }
    };
    let mut camera = Camera::new(index, requested).map_err(|e| format!("opening: {e}"))?;
    camera
        .open_stream()
        .map_err(|e| format!("starting the stream: {e}"))?;
    Ok(camera)
}

fn run_camera(
    mut camera: Camera,
    geometry: FrameGeometry,
    stop: Arc<AtomicBool>,
    filled: Sender<Filled>,
    free: Receiver<Vec<u8>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut buf) = free.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let result = camera
            .frame()
            .map_err(|e| format!("reading a frame: {e}"))
            .and_then(|frame| {
                let host = monotonic_ns();
                let r = frame.resolution();
                if (r.width(), r.height()) != (geometry.width, geometry.height) {
                    return Err(format!(
                        "the camera delivers {}x{}, the stream is configured as {}x{}",
                        r.width(),
                        r.height(),
                        geometry.width,
                        geometry.height
                    ));
                }
                let decoded = match geometry.format {
                    PixelFormat::Gray8 => frame.decode_image_to_buffer::<LumaFormat>(&mut buf),
                    PixelFormat::Rgb8 => frame.decode_image_to_buffer::<RgbFormat>(&mut buf),
                };
                decoded
                    .map(|()| host)
                    .map_err(|e| format!("decoding a frame: {e}"))
            });
        let failed = result.is_err();
        if filled.send(result.map(|host| (buf, host))).is_err() || failed {
            return;
        }
    }
}

impl Source for NokhwaCamera {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn watch_stop(&mut self, stop: CaptureStop) {
        self.stop = stop;
    }

    fn next_frame(&mut self, pixels: &mut [u8]) -> Result<CaptureStamp, SourceError> {
        check_frame_buffer(&self.info, pixels)?;
        let Some(t) = self.thread.as_ref() else {
            return Err(self.fail("camera", "not open"));
        };
        let timeout = Duration::from_secs_f64(2.0 / self.info.nominal_fps.max(1.0) + 1.0);
        let deadline = std::time::Instant::now() + timeout;
        // Waited for in slices, so that a stop ends the wait whatever the camera does.
        let received = loop {
            if self.stop.is_set() {
                return Err(SourceError::Stopped);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match t
                .filled
                .recv_timeout(left.min(Duration::from_nanos(STOP_POLL_NS)))
            {
                Err(RecvTimeoutError::Timeout) if !left.is_zero() => continue,
                other => break other,
            }
        };
        let (buf, host) = match received {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) => {
                self.thread = None;
                return Err(self.fail("camera", e));
            }
            Err(_) => {
                self.thread = None;
                return Err(self.fail("camera", "no frame for two frame periods + 1 s"));
            }
        };
        pixels.copy_from_slice(&buf);
        let _ = t.free.send(buf);
        self.frames += 1;
        Ok(CaptureStamp {
            raw_counter: self.frames,
            device_time_ns: host,
            host_time_ns: host,
            head_orientation: None,
            ground_truth: None,
        })
    }

    fn reconnect(&mut self) -> Result<(), SourceError> {
        self.thread = None;
        let geometry = self.info.geometry;
        let fps = self.info.nominal_fps;
        let device = self.device.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let (filled_tx, filled) = bounded(BUFFERS);
        let (free, free_rx) = bounded(BUFFERS);
        for _ in 0..BUFFERS {
            let _ = free.send(vec![0u8; geometry.frame_bytes()]);
        }
        let (opened_tx, opened) = bounded::<Result<(), String>>(1);
        let join = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("nokhwa-{}", self.info.name))
                .spawn(move || match open_camera(&device, geometry, fps) {
                    Ok(camera) => {
                        let _ = opened_tx.send(Ok(()));
                        run_camera(camera, geometry, stop, filled_tx, free_rx);
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                    }
                })
                .map_err(|e| self.fail("starting the camera thread", e))?
        };
        let thread = CameraThread {
            stop,
            filled,
            free,
            join: Some(join),
        };
        match opened.recv() {
            Ok(Ok(())) => {
                self.thread = Some(thread);
                Ok(())
            }
            Ok(Err(e)) => Err(self.fail("camera", e)),
            Err(_) => Err(self.fail("camera", "its thread ended before opening it")),
        }
    }
}

/// The stream description for a nokhwa camera.
pub fn stream_info(
    name: &str,
    width: u32,
    height: u32,
    fps: f64,
    format: PixelFormat,
) -> StreamInfo {
    StreamInfo {
        name: name.to_owned(),
        kind: StreamKind::BehaviorCamera,
        geometry: FrameGeometry {
            width,
            height,
            format,
        },
        nominal_fps: fps,
        counter_bits: 64,
        device_description: "camera through nokhwa (untested backend)".into(),
    }
}
