//! One Miniscope's control plane, as its capture thread drives it: the connect ritual
//! (on connect, on every reconnect, and when a silent headstage reboot is suspected), live
//! control changes through the coalescing [`ControlWriter`], the per-frame read-backs, the
//! sync output around a recording, and the LEDs off at shutdown.
//!
//! The capture thread calls, in its own loop:
//! - [`ScopeControl::begin_connect`] after opening the device, then [`ScopeControl::step`]
//!   until it asks to start the stream ([`ScopeAction::StartStream`], answered with
//!   [`ScopeControl::stream_started`]) and again until [`ScopeControl::is_connecting`] is
//!   false — the DAQ executes packets only at the end of a frame, so frames flow meanwhile;
//! - [`ScopeControl::after_frame`] right after each dequeued frame (end of frame for the
//!   writer, then the read-backs), and [`ScopeControl::step`] whenever the time it returned
//!   has come (the writer's settle delay between SET_CURs).
//!
//! No sleeping and no clock of its own: every call gets `now_ns`, so tests drive it on a
//! simulated clock against [`super::DaqEmulator`].
//!
//! Reboot detection (docs/miniscope.md): a headstage that resets silently comes back with its
//! start-up settings (LED off, default gain, 30 fps) while the DAQ keeps streaming. Two signs
//! are watched: the BNO quaternion turning invalid for [`IMU_BAD_FRAMES_FOR_REBOOT`] frames
//! in a row after it had been valid, and the DAQ frame counter advancing more than 1.3× the
//! configured frame rate over [`RATE_WINDOW_FRAMES`] frames. Either re-runs the ritual
//! without restarting the stream.

use std::collections::VecDeque;

use super::catalog::DeviceEntry;
use super::controls::{
    ConnectStep, ControlError, ControlValue, connect_sequence, control_packets, leds_off_packets,
};
use super::frame_reads::{FrameReadback, Readback, ReadbackPlan, set_recording};
use super::uvc::{UvcControl, UvcError};
use super::writer::{ControlWriter, Wake, WriterConfig, WriterError};

/// Consecutive invalid quaternions (after valid ones) taken as a headstage reboot.
pub const IMU_BAD_FRAMES_FOR_REBOOT: u32 = 30;
/// Frames over which the counter-derived frame rate is compared with the configured one.
pub const RATE_WINDOW_FRAMES: usize = 60;

/// Why the control plane failed.
#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    /// A control name or value the device's catalog entry does not allow.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The writer refused or a SET_CUR failed.
    #[error(transparent)]
    Writer(#[from] WriterError),
    /// A direct control transfer failed.
    #[error(transparent)]
    Uvc(#[from] UvcError),
}

/// What the capture thread must do for the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeAction {
    /// Nothing; call [`ScopeControl::step`] again at `Wake`.
    Continue(Wake),
    /// Negotiate this format and start streaming, then call [`ScopeControl::stream_started`].
    StartStream {
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
        /// The DAQ's UVC frame-descriptor index for that size, if known.
        frame_index: Option<u8>,
    },
}

/// Settings of one scope.
#[derive(Debug, Clone)]
pub struct ScopeSettings {
    /// The catalog entry (controls, init commands, size).
    pub device: DeviceEntry,
    /// Control values to apply (others get the catalog's start value).
    pub values: Vec<(String, ControlValue)>,
    /// What to read back after each frame.
    pub readback: ReadbackPlan,
    /// Writer timing.
    pub writer: WriterConfig,
    /// The configured frame rate, for reboot detection by rate (None: not checked).
    pub expected_fps: Option<f64>,
}

/// A change asked of a running scope from another thread (the daemon's control plane).
#[derive(Debug, Clone, PartialEq)]
pub enum ScopeCommand {
    /// Set a control (catalog name and value).
    SetControl(String, ControlValue),
    /// Switch the per-frame sync output.
    SetRecording(bool),
}

/// A cloneable handle through which other threads change a running scope's settings; the
/// capture thread applies them at its next [`ScopeControl::step`].
#[derive(Debug, Clone)]
pub struct ScopeHandle {
    tx: crossbeam_channel::Sender<ScopeCommand>,
}

impl ScopeHandle {
    /// Asks for a control change (e.g. `("led0", ControlValue::Slider(20.0))`). Returns false
    /// if the scope is gone. An invalid name or value is refused by the capture thread with a
    /// warning naming it (`ScopeStats::commands_refused`).
    pub fn set_control(&self, name: &str, value: ControlValue) -> bool {
        self.tx
            .send(ScopeCommand::SetControl(name.to_owned(), value))
            .is_ok()
    }

    /// Switches the sync output.
    pub fn set_recording(&self, on: bool) -> bool {
        self.tx.send(ScopeCommand::SetRecording(on)).is_ok()
    }
}

/// Counters of the control plane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeStats {
    /// Connect rituals started (first connect included).
    pub connects: u64,
    /// Rituals started because a headstage reboot was suspected.
    pub reboots_detected: u64,
    /// Control changes from a handle that the catalog refused.
    pub commands_refused: u64,
}

/// The control plane of one scope.
#[derive(Debug)]
pub struct ScopeControl {
    device: DeviceEntry,
    values: Vec<(String, ControlValue)>,
    writer: ControlWriter,
    readback: Readback,
    steps: VecDeque<ConnectStep>,
    /// A WaitMs step is running until this time.
    waiting_until: Option<u64>,
    streaming: bool,
    recording: bool,
    /// A sync-output change waiting for the previous SET_CUR to settle.
    pending_sync: Option<bool>,
    expected_fps: Option<f64>,
    imu_seen_good: bool,
    imu_bad_streak: u32,
    /// (host ns, unwrapped counter) of the last RATE_WINDOW_FRAMES frames.
    rate_window: VecDeque<(u64, u64)>,
    stats: ScopeStats,
    commands: crossbeam_channel::Receiver<ScopeCommand>,
    handle: ScopeHandle,
}

impl ScopeControl {
    /// A control plane for `settings`; checks every configured control against the catalog.
    pub fn new(settings: ScopeSettings) -> Result<Self, ScopeError> {
        // Validates names and values now rather than at connect time.
        let values: Vec<(&str, ControlValue)> = settings
            .values
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        connect_sequence(&settings.device, &values)?;
        let (tx, commands) = crossbeam_channel::unbounded();
        Ok(Self {
            commands,
            handle: ScopeHandle { tx },
            device: settings.device,
            values: settings.values,
            writer: ControlWriter::new(settings.writer)?,
            readback: Readback::new(settings.readback),
            steps: VecDeque::new(),
            waiting_until: None,
            streaming: false,
            recording: false,
            pending_sync: None,
            expected_fps: settings.expected_fps,
            imu_seen_good: false,
            imu_bad_streak: 0,
            rate_window: VecDeque::with_capacity(RATE_WINDOW_FRAMES + 1),
            stats: ScopeStats::default(),
        })
    }

    /// Starts the connect ritual. `streaming` says whether frames already flow (a reboot
    /// re-run): then the format step is skipped.
    pub fn begin_connect(&mut self, streaming: bool) -> Result<(), ScopeError> {
        let values: Vec<(&str, ControlValue)> = self
            .values
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        let steps = connect_sequence(&self.device, &values)?;
        self.steps = steps
            .into_iter()
            .filter(|s| !(streaming && matches!(s, ConnectStep::NegotiateFormat { .. })))
            .collect();
        self.waiting_until = None;
        self.streaming = streaming;
        if !streaming {
            self.readback.counter_mut().reseed();
        }
        self.imu_seen_good = false;
        self.imu_bad_streak = 0;
        self.rate_window.clear();
        self.stats.connects += 1;
        Ok(())
    }

    /// Whether the ritual is still running.
    pub fn is_connecting(&self) -> bool {
        !self.steps.is_empty() || self.waiting_until.is_some()
    }

    /// The stream runs (answer to [`ScopeAction::StartStream`]).
    pub fn stream_started(&mut self) {
        self.streaming = true;
    }

    /// The stream stopped (device lost): the next connect starts from scratch.
    pub fn stream_stopped(&mut self) {
        self.streaming = false;
        self.steps.clear();
        self.waiting_until = None;
    }

    /// Replaces what is read back after each frame (e.g. the ABI-2 read-backs once the
    /// firmware's ABI is known); the read-back state starts over.
    pub fn set_readback_plan(&mut self, plan: ReadbackPlan) {
        self.readback = Readback::new(plan);
    }

    /// A handle for changing this scope's settings from another thread.
    pub fn handle(&self) -> ScopeHandle {
        self.handle.clone()
    }

    /// Applies what handles asked for since the last step.
    fn take_commands(&mut self) {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                ScopeCommand::SetControl(name, value) => {
                    if let Err(e) = self.set_control(&name, value) {
                        self.stats.commands_refused += 1;
                        tracing::warn!(device = %self.device.device_type, control = %name, error = %e, "control change refused");
                    }
                }
                ScopeCommand::SetRecording(on) => self.set_recording(on),
            }
        }
    }

    /// Advances the ritual and the writer at `now_ns`; says what to do next.
    pub fn step(
        &mut self,
        now_ns: u64,
        uvc: &mut impl UvcControl,
    ) -> Result<ScopeAction, ScopeError> {
        self.take_commands();
        loop {
            if let Some(until) = self.waiting_until {
                if now_ns < until {
                    break;
                }
                self.waiting_until = None;
            }
            // A step after packets starts only once the writer has sent them all.
            if !self.writer.is_idle() {
                break;
            }
            let Some(step) = self.steps.pop_front() else {
                break;
            };
            match step {
                ConnectStep::ClearQueue => self.writer.new_connection(),
                ConnectStep::Send(packets) => {
                    self.writer.enqueue_all(&packets)?;
                }
                ConnectStep::WaitMs(ms) => {
                    let until = now_ns + ms * 1_000_000;
                    self.writer.hold_until(until);
                    self.waiting_until = Some(until);
                }
                ConnectStep::NegotiateFormat {
                    width,
                    height,
                    frame_index,
                } => {
                    return Ok(ScopeAction::StartStream {
                        width,
                        height,
                        frame_index,
                    });
                }
            }
        }
        if let Some(recording) = self.pending_sync {
            let settled = self.writer.settled_at();
            if now_ns < settled {
                return Ok(ScopeAction::Continue(Wake::At(settled)));
            }
            set_recording(uvc, recording)?;
            self.recording = recording;
            self.pending_sync = None;
            self.writer
                .hold_until(now_ns + self.writer.config().settle_ns);
        }
        let wake = self.writer.poll(now_ns, uvc)?;
        Ok(ScopeAction::Continue(match (wake, self.waiting_until) {
            (Wake::Idle, Some(until)) => Wake::At(until),
            (Wake::At(t), Some(until)) => Wake::At(t.min(until)),
            // That write finished a Send step: the next step is due now.
            (Wake::Idle, None) if !self.steps.is_empty() => Wake::At(now_ns),
            (w, _) => w,
        }))
    }

    /// A frame was dequeued at `now_ns`: the DAQ has run its queue (end of frame); reads
    /// back what the plan asks for and watches for a headstage reboot.
    pub fn after_frame(&mut self, now_ns: u64, uvc: &mut impl UvcControl) -> FrameReadback {
        self.writer.end_of_frame();
        let r = self.readback.read_frame(uvc);
        if !self.is_connecting() && self.reboot_suspected(now_ns, &r) {
            self.stats.reboots_detected += 1;
            tracing::warn!(
                device = %self.device.device_type,
                "Miniscope headstage seems to have rebooted: re-sending its init and settings"
            );
            // The catalog was valid at construction; a failure here cannot happen, but it
            // must not take the capture down either.
            if let Err(e) = self.begin_connect(true) {
                tracing::error!(error = %e, "cannot re-run the connect ritual");
            }
        }
        r
    }

    fn reboot_suspected(&mut self, now_ns: u64, r: &FrameReadback) -> bool {
        if let Some(imu) = r.imu {
            if imu.good {
                self.imu_seen_good = true;
                self.imu_bad_streak = 0;
            } else if self.imu_seen_good {
                self.imu_bad_streak += 1;
                if self.imu_bad_streak >= IMU_BAD_FRAMES_FOR_REBOOT {
                    return true;
                }
            }
        }
        if let (Some(fps), Some(c)) = (self.expected_fps, r.counter) {
            if self.rate_window.len() == RATE_WINDOW_FRAMES {
                self.rate_window.pop_front();
            }
            self.rate_window.push_back((now_ns, c.unwrapped));
            if let (Some(&(t0, c0)), Some(&(t1, c1))) =
                (self.rate_window.front(), self.rate_window.back())
                && self.rate_window.len() == RATE_WINDOW_FRAMES
                && t1 > t0
            {
                let measured = (c1 - c0) as f64 / ((t1 - t0) as f64 / 1e9);
                if measured > 1.3 * fps {
                    return true;
                }
            }
        }
        false
    }

    /// Changes a control while running (coalesced with a pending change of the same key).
    pub fn set_control(&mut self, name: &str, value: ControlValue) -> Result<(), ScopeError> {
        let packets = control_packets(&self.device, name, &value)?;
        self.writer.enqueue_all(&packets)?;
        match self.values.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.values.push((name.to_owned(), value)),
        }
        Ok(())
    }

    /// Starts (`true`) or stops the per-frame sync output (the DAQ's FRAME_OUT), at the
    /// recording's start and stop. The SATURATION write goes out at the next
    /// [`ScopeControl::step`] once the previous SET_CUR has settled (the FX3 loses a write
    /// that follows another too closely).
    pub fn set_recording(&mut self, recording: bool) {
        self.pending_sync = Some(recording);
    }

    /// Whether the sync output has been switched on (false while the change is pending).
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Queues the LEDs-off packets (shutdown); the caller keeps frames flowing until
    /// [`ScopeControl::is_idle`].
    pub fn leds_off(&mut self) -> Result<(), ScopeError> {
        let packets = leds_off_packets(&self.device)?;
        self.writer.enqueue_all(&packets)?;
        Ok(())
    }

    /// Nothing left to write and no ritual running.
    pub fn is_idle(&self) -> bool {
        self.writer.is_idle() && !self.is_connecting() && self.pending_sync.is_none()
    }

    /// The per-frame read-back state (counter, IMU).
    pub fn readback(&self) -> &Readback {
        &self.readback
    }

    /// Counters.
    pub fn stats(&self) -> ScopeStats {
        self.stats
    }

    /// The device's catalog entry.
    pub fn device(&self) -> &DeviceEntry {
        &self.device
    }

    /// The frame rate the reboot detection expects (after a live frame-rate change).
    pub fn set_expected_fps(&mut self, fps: f64) {
        self.expected_fps = Some(fps);
        self.rate_window.clear();
    }
}
