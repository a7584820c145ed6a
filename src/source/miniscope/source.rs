//! The Miniscope as a frame [`Source`]: the DAQ's V4L2 node streams YUY2 W×H (the luma bytes
//! are the image), and the same node's controls carry the I²C-over-UVC control channel that
//! [`ScopeControl`] drives from this capture loop.
//!
//! Per `next_frame`: first the control plane gets its turn (the writer's SET_CURs that are due,
//! at most [`CONTROL_SLICE_NS`] of them in one go so a long ritual cannot hold frames back),
//! then a frame is dequeued, then the per-frame read-backs: the DAQ frame counter becomes the
//! frame's device counter (so the capture loop counts every frame the DAQ made and the host
//! never got — see [`DROP_WINDOW`] for how drops are told from backlog), the head orientation
//! goes into the stamp. The counter handed on is continuous
//! across reconnections: after one, the frames lost are estimated from the time that passed.
//! On shutdown the LEDs are switched off (frames keep flowing until the DAQ has executed it,
//! for at most [`SHUTDOWN_LIMIT_NS`]). Every wait (the connect ritual's pauses, the frame)
//! watches the session's [`CaptureStop`].

use std::path::PathBuf;
use std::time::Duration;

use super::catalog::DeviceEntry;
use super::frame_reads::{CounterSource, ImuSource, ReadbackPlan};
use super::readback::{DEFAULT_NORM_ERROR_LIMIT, TriggerPolarity};
use super::scope::{ScopeAction, ScopeControl, ScopeSettings};
use super::uvc::{DAQ_PRODUCT_ID_HIGHSPEED, DAQ_PRODUCT_ID_SUPERSPEED, DAQ_VENDOR_ID};
use super::v4l2_uvc::V4l2Uvc;
use super::writer::{Wake, WriterConfig};
use crate::clock::monotonic_ns;
use crate::config::source::{MiniscopeConfig, TriggerSetting, V4l2Config, V4l2Format};
use crate::frame::{CaptureStamp, FrameGeometry, PixelFormat};
use crate::source::v4l2::V4l2Source;
use crate::source::{CaptureStop, Source, SourceError, StreamInfo, StreamKind, check_frame_buffer};

/// Longest the control plane may write in one turn before a frame is dequeued.
pub const CONTROL_SLICE_NS: u64 = 4_000_000;
/// Packets the writer commits per frame through uvcvideo (each is three synchronous control
/// transfers): small, so a ritual spreads over a few frames instead of delaying one.
const PACKETS_PER_FRAME: usize = 8;
/// Frames the shutdown waits for the LEDs-off packets to execute.
const SHUTDOWN_FRAMES: u32 = 15;
/// Longest the shutdown waits for those frames (a stalled DAQ delivers none).
pub const SHUTDOWN_LIMIT_NS: u64 = 1_000_000_000;

/// What to read back after each frame, given the firmware ABI: ABI 2 answers the counter on
/// CT exposure (not cached by uvcvideo) and the quaternion atomically on CT pan/tilt; older
/// firmware only through PU reads.
fn readback_plan(config: &MiniscopeConfig, device: &DeviceEntry, abi: u16) -> ReadbackPlan {
    let imu = config.imu && device.head_orientation;
    let abi2 = abi >= 2;
    ReadbackPlan {
        counter: Some(if abi2 {
            CounterSource::CtExposure
        } else {
            CounterSource::Contrast
        }),
        imu: imu.then_some(if abi2 {
            ImuSource::PanTilt
        } else {
            ImuSource::FourReads
        }),
        trigger: match config.trigger {
            TriggerSetting::Off => None,
            TriggerSetting::ActiveHigh => Some(TriggerPolarity::ActiveHigh),
            TriggerSetting::ActiveLow => Some(TriggerPolarity::ActiveLow),
        },
        norm_error_limit: DEFAULT_NORM_ERROR_LIMIT,
    }
}

/// A Miniscope through its DAQ.
pub struct MiniscopeSource {
    /// The device as messages name it (the resolved node once found).
    label: String,
    config: MiniscopeConfig,
    device: DeviceEntry,
    info: StreamInfo,
    stream: Option<V4l2Source>,
    uvc: Option<V4l2Uvc>,
    control: ScopeControl,
    /// Continuous device counter handed to the capture loop.
    counter: u64,
    /// Host time of the last frame and whether a reconnection came since.
    last_frame_ns: Option<u64>,
    reconnected: bool,
    /// DAQ-side drops already handed on as counter jumps, and the recent net-drop readings
    /// that decide when a drop is real (see [`DropWindow`]).
    released: u64,
    window: DropWindow,
    /// The session's stop, watched by every wait.
    stop: CaptureStop,
}

/// Read right after a dequeue, the DAQ counter runs ahead of the dequeued frame by the frames
/// still queued (the backlog), so a single reading cannot place a drop: a growing backlog
/// looks like a drop and a shrinking one like a repeat. The net-drop count (DAQ frames minus
/// frames read) includes the backlog; its minimum over the last [`DROP_WINDOW`] frames does
/// not (a backlog does not last that long), so only drops that persist are handed on — all of
/// them, each at most [`DROP_WINDOW`] frames after it happened.
pub const DROP_WINDOW: usize = 12;

/// The last [`DROP_WINDOW`] net-drop readings, in a fixed ring.
#[derive(Debug, Default)]
struct DropWindow {
    values: [u64; DROP_WINDOW],
    len: usize,
    next: usize,
}

impl DropWindow {
    fn clear(&mut self) {
        self.len = 0;
        self.next = 0;
    }

    /// Adds a reading; returns the drops newly confirmed beyond `released` (and counts them
    /// in it).
    fn confirm(&mut self, net: u64, released: &mut u64) -> u64 {
        self.values[self.next] = net;
        self.next = (self.next + 1) % DROP_WINDOW;
        self.len = (self.len + 1).min(DROP_WINDOW);
        if self.len < DROP_WINDOW {
            return 0;
        }
        let confirmed = self.values.iter().copied().min().unwrap_or(0);
        let new = confirmed.saturating_sub(*released);
        *released += new;
        new
    }
}

fn fatal(device: &str, reason: impl std::fmt::Display) -> SourceError {
    SourceError::Fatal {
        device: device.to_owned(),
        reason: reason.to_string(),
    }
}

fn lost(device: &str, reason: impl std::fmt::Display) -> SourceError {
    SourceError::Disconnected {
        device: device.to_owned(),
        reason: reason.to_string(),
    }
}

/// The first V4L2 node whose USB device is a Miniscope DAQ (04b4:00f9, or 00f8 on USB 2).
pub fn find_daq() -> Option<PathBuf> {
    crate::source::v4l2::select::video_nodes()
        .into_iter()
        .find(|node| {
            crate::source::v4l2::select::usb_id(node).is_some_and(|(v, p)| {
                v == DAQ_VENDOR_ID
                    && (p == DAQ_PRODUCT_ID_SUPERSPEED || p == DAQ_PRODUCT_ID_HIGHSPEED)
            }) && crate::source::v4l2::select::query(node).is_ok_and(|c| c.capture)
        })
}

impl MiniscopeSource {
    /// Finds and opens the DAQ, runs the connect ritual's first steps and starts streaming.
    pub fn open(config: &MiniscopeConfig) -> Result<Self, SourceError> {
        let device = config
            .device_entry()
            .map_err(|e| fatal(&config.device, e))?;
        let control = ScopeControl::new(ScopeSettings {
            device: device.clone(),
            values: config.control_values(),
            // Until the firmware's ABI is known (asked at connect): the reads every DAQ has.
            readback: readback_plan(config, &device, 1),
            writer: WriterConfig {
                max_packets_per_frame: PACKETS_PER_FRAME,
                ..WriterConfig::default()
            },
            expected_fps: Some(config.fps()),
        })
        .map_err(|e| fatal(&config.device, e))?;
        let info = StreamInfo {
            name: config.name.clone(),
            kind: StreamKind::Miniscope,
            geometry: FrameGeometry {
                width: device.width,
                height: device.height,
                format: PixelFormat::Gray8,
            },
            nominal_fps: config.fps(),
            counter_bits: 64,
            device_description: format!(
                "UCLA {} ({} sensor) through its DAQ",
                device.device_type, device.sensor
            ),
        };
        let mut source = Self {
            label: config.device.clone(),
            config: config.clone(),
            device,
            info,
            stream: None,
            uvc: None,
            control,
            counter: 0,
            last_frame_ns: None,
            reconnected: false,
            released: 0,
            window: DropWindow::default(),
            stop: CaptureStop::default(),
        };
        source.connect()?;
        Ok(source)
    }

    fn resolve(&self) -> Result<PathBuf, SourceError> {
        if self.config.device == "auto" {
            return find_daq().ok_or_else(|| {
                lost(
                    "auto",
                    "no Miniscope DAQ (USB 04b4:00f9) among the V4L2 devices",
                )
            });
        }
        crate::source::v4l2::select::resolve(&self.config.device)
            .map(|c| c.node)
            .map_err(|e| lost(&self.config.device, e))
    }

    /// Opens the node, runs the ritual up to the format step, starts the stream.
    fn connect(&mut self) -> Result<(), SourceError> {
        self.stream = None;
        self.control.stream_stopped();
        let node = self.resolve()?;
        self.label = node.display().to_string();
        let label = self.label.clone();
        let mut uvc = V4l2Uvc::open(&node).map_err(|e| lost(&label, e))?;
        // The read-backs depend on the firmware ABI (asked before streaming).
        let was_recording = self.control.is_recording();
        let abi = super::identify::firmware_abi(&mut uvc).map_err(|e| lost(&label, e))?;
        self.control
            .set_readback_plan(readback_plan(&self.config, &self.device, abi));
        if was_recording {
            self.control.set_recording(true);
        }
        tracing::info!(device = %label, firmware_abi = abi, "Miniscope DAQ found");
        self.control
            .begin_connect(false)
            .map_err(|e| fatal(&label, e))?;
        // Before the stream: SERDES packets, then the 500 ms pause (connect time only).
        loop {
            let now = monotonic_ns();
            match self
                .control
                .step(now, &mut uvc)
                .map_err(|e| lost(&label, e))?
            {
                ScopeAction::StartStream { width, height, .. } => {
                    let v4l2 = V4l2Config {
                        name: self.config.name.clone(),
                        device: node.display().to_string(),
                        format: V4l2Format::Yuyv,
                        pixel_format: PixelFormat::Gray8,
                        width,
                        height,
                        fps: self.config.fps(),
                        buffers: self.config.buffers,
                        bytesperline: None,
                        stall_periods: 30,
                        controls: Default::default(),
                        compression: None,
                    };
                    let mut stream = V4l2Source::new(&v4l2).map_err(|e| lost(&label, e))?;
                    stream.watch_stop(self.stop.clone());
                    self.stream = Some(stream);
                    self.control.stream_started();
                    break;
                }
                ScopeAction::Continue(Wake::At(t)) => self
                    .stop
                    .sleep_until_ns(t)
                    .map_err(|_| SourceError::Stopped)?,
                ScopeAction::Continue(_) => {}
            }
        }
        self.uvc = Some(uvc);
        tracing::info!(device = %label, device_type = %self.device.device_type, "Miniscope DAQ streaming; connect ritual continues with the frames");
        Ok(())
    }

    /// Gives the control plane its turn: every write that is due, for at most
    /// [`CONTROL_SLICE_NS`].
    fn service_controls(&mut self) -> Result<(), SourceError> {
        let Some(uvc) = self.uvc.as_mut() else {
            return Ok(());
        };
        let start = monotonic_ns();
        loop {
            let now = monotonic_ns();
            match self.control.step(now, uvc) {
                Ok(ScopeAction::Continue(Wake::At(t)))
                    if t < start + CONTROL_SLICE_NS && t.saturating_sub(now) < 1_000_000 =>
                {
                    if t > now {
                        std::thread::sleep(Duration::from_nanos(t - now));
                    }
                }
                Ok(_) => return Ok(()),
                Err(e) => {
                    self.stream = None;
                    return Err(lost(&self.label, e));
                }
            }
        }
    }

    /// A handle for changing LED, EWL, gain, frame rate … while the source runs on its
    /// capture thread.
    pub fn handle(&self) -> super::ScopeHandle {
        self.control.handle()
    }
}

impl Source for MiniscopeSource {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn watch_stop(&mut self, stop: CaptureStop) {
        if let Some(stream) = self.stream.as_mut() {
            stream.watch_stop(stop.clone());
        }
        self.stop = stop;
    }

    fn next_frame(&mut self, pixels: &mut [u8]) -> Result<CaptureStamp, SourceError> {
        check_frame_buffer(&self.info, pixels)?;
        if self.last_frame_ns.is_none() && !self.control.is_recording() {
            // The recording starts with the first frame asked for: sync output on.
            self.control.set_recording(true);
        }
        self.service_controls()?;
        let Some(stream) = self.stream.as_mut() else {
            return Err(lost(&self.label, "not streaming"));
        };
        let mut stamp = match stream.next_frame(pixels) {
            Ok(s) => s,
            // The stream is still up: the shutdown's LEDs-off frames come through it.
            Err(SourceError::Stopped) => return Err(SourceError::Stopped),
            Err(e) => {
                self.stream = None;
                self.control.stream_stopped();
                return Err(e);
            }
        };
        let uvc = self.uvc.as_mut().expect("open while streaming");
        let r = self.control.after_frame(stamp.host_time_ns, uvc);
        if let Some(edge) = r.trigger_edge {
            // An event, not per-frame logging: the external trigger changed state.
            tracing::info!(device = %self.label, ?edge, at_s = stamp.host_time_ns as f64 / 1e9, "Miniscope trigger input");
        }
        let net = self.control.readback().counter().net_dropped();
        if self.reconnected || self.last_frame_ns.is_none() {
            self.counter = match (self.last_frame_ns, r.counter) {
                // Frames lost across the reconnection, estimated from the time that passed.
                (Some(t), _) => {
                    let dt = stamp.host_time_ns.saturating_sub(t) as f64;
                    self.counter + (dt * self.info.nominal_fps / 1e9).round().max(1.0) as u64
                }
                // The very first frame: the DAQ's own count, so the file shows its numbers.
                (None, Some(c)) => c.unwrapped,
                (None, None) => 0,
            };
            self.released = net;
            self.window.clear();
        } else {
            self.counter += 1 + self.window.confirm(net, &mut self.released);
        }
        self.reconnected = false;
        self.last_frame_ns = Some(stamp.host_time_ns);
        stamp.raw_counter = self.counter;
        stamp.head_orientation = r.imu.filter(|i| i.good).map(|i| {
            let q = i.quaternion;
            [q.w, q.x, q.y, q.z]
        });
        Ok(stamp)
    }

    fn live_controls(&self) -> Vec<crate::source::live::LiveControl> {
        self.control.live_controls()
    }

    fn apply_control(&mut self, control: usize, value: f64) -> Result<(), String> {
        self.control
            .apply_live(control, value)
            .map_err(|e| format!("{}: {e}", self.label))
    }

    fn reconnect(&mut self) -> Result<(), SourceError> {
        self.uvc = None;
        self.connect()?;
        self.reconnected = true;
        Ok(())
    }

    fn shutdown(&mut self) {
        self.control.set_recording(false);
        if self.stream.is_none() || self.control.leds_off().is_err() {
            return;
        }
        // The session's stop is set by now; the LEDs-off frames get a bounded time of their own.
        if let Some(stream) = self.stream.as_mut() {
            stream.watch_stop(CaptureStop::at_deadline(monotonic_ns() + SHUTDOWN_LIMIT_NS));
        }
        let mut scratch = vec![0u8; self.info.geometry.frame_bytes()];
        for _ in 0..SHUTDOWN_FRAMES {
            if self.next_frame(&mut scratch).is_err() {
                return;
            }
            if self.control.is_idle() {
                // One more frame: the DAQ executes the last packet at its end of frame.
                let _ = self.next_frame(&mut scratch);
                tracing::info!(device = %self.label, "Miniscope LEDs off");
                return;
            }
        }
        tracing::warn!(device = %self.label, "Miniscope LEDs-off packets not all written before shutdown");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backlog that grows and shrinks again is not a drop; a drop is handed on once, in
    /// full, when it has persisted for the window.
    #[test]
    fn backlog_is_not_a_drop_and_every_real_drop_is_handed_on() {
        let mut w = DropWindow::default();
        let mut released = 0;
        let mut handed = Vec::new();
        // Net drops: backlog of 2 for a few frames, back to 0, then 3 real drops (plus a
        // passing backlog on top), steady.
        let nets = [
            0, 0, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 4, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
            3,
        ];
        for net in nets {
            handed.push(w.confirm(net, &mut released));
        }
        assert_eq!(handed.iter().sum::<u64>(), 3, "{handed:?}");
        let at = handed.iter().position(|&h| h > 0).unwrap();
        assert!(
            (14..14 + DROP_WINDOW).contains(&at),
            "handed on at {at}: {handed:?}"
        );
        assert_eq!(released, 3);
    }
}
