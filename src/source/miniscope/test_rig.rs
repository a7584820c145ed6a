//! Test harness: a control writer driving a DAQ emulator on a simulated clock, with end of
//! frame every `frame_period_ns` while the stream runs.

use super::controls::{ConnectStep, ControlValue, control_packets};
use super::daq::{DaqConfig, DaqEmulator, I2cWrite};
use super::packet::{I2cPacket, KeyedPacket};
use super::writer::{ControlWriter, Wake, WriterConfig};
use super::{Catalog, DeviceEntry};

/// 20 fps.
pub const FRAME_PERIOD_NS: u64 = 50_000_000;

pub struct Rig {
    pub daq: DaqEmulator,
    pub writer: ControlWriter,
    pub now: u64,
    pub next_frame_at: u64,
    pub streaming: bool,
}

impl Rig {
    pub fn new(writer: WriterConfig, daq: DaqConfig) -> Self {
        Self {
            daq: DaqEmulator::new(daq),
            writer: ControlWriter::new(writer).unwrap(),
            now: 0,
            next_frame_at: FRAME_PERIOD_NS,
            streaming: true,
        }
    }

    pub fn standard() -> Self {
        Self::new(WriterConfig::default(), DaqConfig::default())
    }

    fn tick_to(&mut self, t: u64) {
        self.now = self.now.max(t);
        self.daq.set_time_ns(self.now);
    }

    /// Lets the writer work until the next frame is due, then ends that frame.
    pub fn run_frame(&mut self) {
        let frame_at = self.next_frame_at;
        self.write_until(frame_at);
        self.tick_to(frame_at);
        self.daq.end_of_frame();
        self.writer.end_of_frame();
        self.next_frame_at += FRAME_PERIOD_NS;
    }

    /// Polls the writer at each time it asks for, up to (not including) `t`.
    pub fn write_until(&mut self, t: u64) {
        loop {
            self.daq.set_time_ns(self.now);
            match self.writer.poll(self.now, &mut self.daq).unwrap() {
                Wake::At(w) if w < t => self.tick_to(w),
                _ => return,
            }
        }
    }

    /// Runs the writer until it has nothing left (frames pass while streaming).
    pub fn drain(&mut self) {
        for _ in 0..1000 {
            match self.writer.next_wake() {
                Wake::Idle => {
                    // Let the last write settle.
                    let settle = self.writer.config().settle_ns;
                    self.tick_to(self.now + settle);
                    return;
                }
                Wake::NextFrame => {
                    assert!(self.streaming, "writer waits for a frame that never comes");
                    self.run_frame();
                }
                Wake::At(w) if w < self.next_frame_at || !self.streaming => {
                    self.tick_to(w);
                    self.daq.set_time_ns(self.now);
                    self.writer.poll(self.now, &mut self.daq).unwrap();
                }
                Wake::At(_) => self.run_frame(),
            }
        }
        panic!("writer did not drain");
    }

    /// Executes a connect ritual: the stream starts at the format step.
    pub fn connect(&mut self, steps: &[ConnectStep]) {
        self.streaming = false;
        for step in steps {
            match step {
                ConnectStep::ClearQueue => self.writer.new_connection(),
                ConnectStep::Send(packets) => {
                    self.writer.enqueue_all(packets).unwrap();
                    self.drain();
                }
                ConnectStep::WaitMs(ms) => {
                    let t = self.now + ms * 1_000_000;
                    self.writer.hold_until(t);
                    if self.streaming {
                        while self.next_frame_at <= t {
                            self.run_frame();
                        }
                    }
                    self.tick_to(t);
                }
                ConnectStep::NegotiateFormat { .. } => {
                    self.streaming = true;
                    self.next_frame_at = self.now + FRAME_PERIOD_NS;
                }
            }
        }
    }

    /// Queues packets and lets the next frame execute them; returns the writes it made.
    pub fn send_and_run_frame(&mut self, packets: &[KeyedPacket]) -> Vec<I2cWrite> {
        self.writer.enqueue_all(packets).unwrap();
        self.run_frame();
        self.daq.take_writes()
    }
}

pub fn v4_bno() -> DeviceEntry {
    Catalog::builtin()
        .unwrap()
        .device("Miniscope_V4_BNO")
        .unwrap()
        .clone()
}

pub fn packets(device: &DeviceEntry, control: &str, value: ControlValue) -> Vec<KeyedPacket> {
    control_packets(device, control, &value).unwrap()
}

pub fn bytes_of(packets: &[KeyedPacket]) -> Vec<Vec<u8>> {
    packets
        .iter()
        .map(|p| p.packet.as_bytes().to_vec())
        .collect()
}

pub fn packet(bytes: &[u8]) -> KeyedPacket {
    KeyedPacket::constant(I2cPacket::new(bytes).unwrap())
}

/// `(address, data)` of each write, for comparing with expected packets.
pub fn writes_as_packets(writes: &[I2cWrite]) -> Vec<Vec<u8>> {
    writes
        .iter()
        .map(|w| {
            let mut v = vec![w.address];
            v.extend_from_slice(&w.data);
            v
        })
        .collect()
}

/// A Miniscope frame source over the DAQ emulator on the real clock (test only): its
/// [`super::ScopeControl`] writes to the emulator between frames exactly as
/// [`super::source::MiniscopeSource`] writes through uvcvideo, a frame ends every
/// [`FRAME_PERIOD_NS`], and every I²C write the emulated firmware executed is copied to
/// `writes` for the test to read from its own thread.
pub struct EmulatedScope {
    pub info: crate::source::StreamInfo,
    pub control: super::ScopeControl,
    pub daq: DaqEmulator,
    pub writes: std::sync::Arc<std::sync::Mutex<Vec<I2cWrite>>>,
    stop: crate::source::CaptureStop,
    next_frame_ns: u64,
    frames: u64,
}

impl EmulatedScope {
    /// A Miniscope V4 with a BNO, streaming (no connect ritual: the controls are under test).
    pub fn v4() -> Self {
        let device = v4_bno();
        let control = super::ScopeControl::new(super::ScopeSettings {
            device: device.clone(),
            values: Vec::new(),
            readback: super::ReadbackPlan {
                counter: None,
                imu: None,
                trigger: None,
                norm_error_limit: super::readback::DEFAULT_NORM_ERROR_LIMIT,
            },
            writer: WriterConfig::default(),
            expected_fps: None,
        })
        .unwrap();
        Self {
            info: crate::source::StreamInfo {
                name: "Miniscope".into(),
                kind: crate::source::StreamKind::Miniscope,
                geometry: crate::frame::FrameGeometry {
                    width: 8,
                    height: 8,
                    format: crate::frame::PixelFormat::Gray8,
                },
                nominal_fps: 1e9 / FRAME_PERIOD_NS as f64,
                counter_bits: 32,
                device_description: "emulated DAQ".into(),
            },
            control,
            daq: DaqEmulator::new(DaqConfig::default()),
            writes: Default::default(),
            stop: crate::source::CaptureStop::default(),
            next_frame_ns: crate::clock::monotonic_ns() + FRAME_PERIOD_NS,
            frames: 0,
        }
    }
}

impl crate::source::Source for EmulatedScope {
    fn info(&self) -> &crate::source::StreamInfo {
        &self.info
    }

    fn watch_stop(&mut self, stop: crate::source::CaptureStop) {
        self.stop = stop;
    }

    fn next_frame(
        &mut self,
        pixels: &mut [u8],
    ) -> Result<crate::frame::CaptureStamp, crate::source::SourceError> {
        use crate::clock::monotonic_ns;
        let stopped = |_| crate::source::SourceError::Stopped;
        // The writer's turns until the frame is due (its settle delays between SET_CURs).
        loop {
            let now = monotonic_ns();
            self.daq.set_time_ns(now);
            match self.control.step(now, &mut self.daq).unwrap() {
                super::ScopeAction::Continue(Wake::At(t)) if t < self.next_frame_ns => {
                    self.stop.sleep_until_ns(t.max(now)).map_err(stopped)?
                }
                _ => break,
            }
        }
        self.stop
            .sleep_until_ns(self.next_frame_ns)
            .map_err(stopped)?;
        let now = monotonic_ns();
        self.daq.set_time_ns(now);
        self.daq.end_of_frame();
        self.control.after_frame(now, &mut self.daq);
        self.writes.lock().unwrap().extend(self.daq.take_writes());
        self.next_frame_ns += FRAME_PERIOD_NS;
        pixels.fill(0);
        self.frames += 1;
        Ok(crate::frame::CaptureStamp {
            raw_counter: self.frames,
            device_time_ns: now,
            host_time_ns: now,
            head_orientation: None,
            ground_truth: None,
        })
    }

    fn reconnect(&mut self) -> Result<(), crate::source::SourceError> {
        Ok(())
    }

    fn live_controls(&self) -> Vec<crate::source::live::LiveControl> {
        self.control.live_controls()
    }

    fn apply_control(&mut self, control: usize, value: f64) -> Result<(), String> {
        self.control
            .apply_live(control, value)
            .map_err(|e| e.to_string())
    }
}
