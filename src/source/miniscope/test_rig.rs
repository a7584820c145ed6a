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
