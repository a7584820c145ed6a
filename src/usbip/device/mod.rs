//! The look-alike device: USB standard requests, UVC class requests, the bulk video
//! stream, and the DAQ control semantics (delegated to
//! [`DaqEmulator`](crate::source::miniscope::DaqEmulator)).
//!
//! It is a pure state machine: [`Lookalike::handle`] takes one host command and
//! [`Lookalike::poll`] the current time, both return the replies to send. No sockets, no
//! clocks, so everything here runs in unit tests.
//!
//! Sensor frames tick at the committed interval while streaming (or always with
//! `free_run`). Each tick is the DAQ's end of frame: [`DaqEmulator::end_of_frame`] counts
//! the frame and runs the queued I2C packets; the frame, carrying the new counter, then
//! goes into a small FIFO for transmission unless it is skipped on purpose or the FIFO is
//! full (the DAQ has no flow control, docs/miniscope.md). Bulk IN URBs are answered from the FIFO, one
//! payload per URB.

use std::collections::{BTreeSet, HashSet, VecDeque};

use serde::Serialize;

use super::descriptors::{
    self, FRAME_INTERVALS, PixelFormat, Speed, VIDEO_ENDPOINT, VS_INTERFACE, dt,
};
use super::payload::{FramePattern, PAYLOAD_HEADER_LEN, payload_header};
use super::protocol::{
    CmdSubmit, CmdUnlink, Command, Direction, Reply, STATUS_STALL, STATUS_UNLINKED, Setup,
};
use crate::source::miniscope::uvc::{
    CAMERA_TERMINAL_ID, CtSelector, PROCESSING_UNIT_ID, PuSelector, UvcControl, VC_INTERFACE,
};
use crate::source::miniscope::{DaqConfig, DaqEmulator, DaqEvent, I2cWrite};

/// UVC class request codes (UVC 1.1 table A-8).
pub mod req {
    /// SET_CUR.
    pub const SET_CUR: u8 = 0x01;
    /// GET_CUR.
    pub const GET_CUR: u8 = 0x81;
    /// GET_MIN.
    pub const GET_MIN: u8 = 0x82;
    /// GET_MAX.
    pub const GET_MAX: u8 = 0x83;
    /// GET_RES.
    pub const GET_RES: u8 = 0x84;
    /// GET_LEN.
    pub const GET_LEN: u8 = 0x85;
    /// GET_INFO.
    pub const GET_INFO: u8 = 0x86;
    /// GET_DEF.
    pub const GET_DEF: u8 = 0x87;
}

/// GET_INFO capabilities: GET and SET supported, value may change without a SET
/// (AUTOUPDATE), so uvcvideo does not cache reads of the counter and the IMU.
pub const PU_INFO: u8 = 0x01 | 0x02 | 0x08;
/// GET_INFO of the read-only Camera-Terminal read-backs: GET | AUTOUPDATE.
pub const CT_INFO: u8 = 0x01 | 0x08;
/// VS_PROBE_CONTROL selector.
pub const VS_PROBE: u8 = 0x01;
/// VS_COMMIT_CONTROL selector.
pub const VS_COMMIT: u8 = 0x02;
/// Length of the probe/commit block of UVC 1.0 (what a bcdUVC 1.00 device exchanges).
pub const PROBE_LEN_UVC10: usize = 26;
/// VC_REQUEST_ERROR_CODE_CONTROL selector.
pub const VC_REQUEST_ERROR_CODE: u8 = 0x02;
/// Request error code: invalid control.
const ERR_INVALID_CONTROL: u8 = 0x06;
/// Request error code: invalid request.
const ERR_INVALID_REQUEST: u8 = 0x07;

/// The endpoint 0 answer to a request that the device does not support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall;

/// Which sensor frames are deliberately not sent (by DAQ frame counter value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipPolicy {
    /// Skip every frame whose counter is a multiple of this (0 or `None`: none).
    pub every: Option<u32>,
    /// Skip these counter values.
    pub list: BTreeSet<u32>,
}

impl SkipPolicy {
    /// Whether the frame with this counter value is skipped.
    pub fn skips(&self, counter: u32) -> bool {
        self.every
            .is_some_and(|n| n > 0 && counter.is_multiple_of(n))
            || self.list.contains(&counter)
    }
}

/// How the look-alike behaves.
#[derive(Debug, Clone)]
pub struct LookalikeConfig {
    /// Link speed (descriptors, payload size, product id).
    pub speed: Speed,
    /// Frames the transmit FIFO holds before sensor frames are lost (≥ 1).
    pub fifo_frames: usize,
    /// Deliberate skips.
    pub skip: SkipPolicy,
    /// Tick sensor frames (and so run the I2C queue and count frames) even when the host
    /// is not streaming. The real DAQ only does this while streaming.
    pub free_run: bool,
    /// The emulated firmware.
    pub daq: DaqConfig,
}

impl Default for LookalikeConfig {
    fn default() -> Self {
        Self {
            speed: Speed::Super,
            fifo_frames: 3,
            skip: SkipPolicy::default(),
            free_run: false,
            daq: DaqConfig::default(),
        }
    }
}

/// A negotiated probe/commit state (the fields this device honours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// `bmHint`, echoed.
    pub hint: u16,
    /// Chosen format.
    pub format: PixelFormat,
    /// `bFrameIndex` (always 1: one frame size).
    pub frame_index: u8,
    /// `dwFrameInterval` in 100 ns, one of [`FRAME_INTERVALS`].
    pub interval: u32,
    /// `dwMaxPayloadTransferSize`.
    pub max_payload: u32,
}

impl Probe {
    /// Format 1 (YUY2), frame 1, 30 fps.
    pub fn default_for(speed: Speed) -> Self {
        Self {
            hint: 0,
            format: PixelFormat::Yuy2,
            frame_index: 1,
            interval: FRAME_INTERVALS[0],
            max_payload: speed.max_payload(),
        }
    }

    /// The 34-byte UVC 1.1 block, of which a UVC 1.0 host reads the first 26.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(34);
        b.extend_from_slice(&self.hint.to_le_bytes());
        b.push(self.format.index());
        b.push(self.frame_index);
        b.extend_from_slice(&self.interval.to_le_bytes());
        b.extend_from_slice(&[0; 10]); // key/P frame rate, quality, window, delay
        b.extend_from_slice(&(self.format.frame_bytes() as u32).to_le_bytes());
        b.extend_from_slice(&self.max_payload.to_le_bytes());
        b.extend_from_slice(&48_000_000u32.to_le_bytes());
        b.extend_from_slice(&[0x03, 0, 0, 0]); // FID required, EOF present; versions
        b
    }

    /// Negotiates what the host asked: an unknown format keeps the current one, the
    /// interval snaps to the nearest offered one (0 = the default, 30 fps).
    pub fn negotiate(&self, data: &[u8]) -> Probe {
        let mut p = *self;
        if data.len() >= 2 {
            p.hint = u16::from_le_bytes([data[0], data[1]]);
        }
        if let Some(f) = data.get(2).and_then(|&i| PixelFormat::from_index(i)) {
            p.format = f;
        }
        p.frame_index = 1;
        if data.len() >= 8 {
            let asked = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
            p.interval = snap_interval(asked);
        }
        p
    }

    /// Frame period in ns.
    pub fn period_ns(&self) -> u64 {
        u64::from(self.interval) * 100
    }
}

/// The offered interval nearest to `asked` (0 → 30 fps).
pub fn snap_interval(asked: u32) -> u32 {
    if asked == 0 {
        return FRAME_INTERVALS[0];
    }
    *FRAME_INTERVALS
        .iter()
        .min_by_key(|&&i| i.abs_diff(asked))
        .expect("non-empty")
}

/// Counters of what the device did (the binary's summary line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Sensor frames (DAQ ends of frame).
    pub sensor_frames: u64,
    /// Frames sent completely (EOF payload delivered).
    pub sent_frames: u64,
    /// Frames skipped on purpose.
    pub skipped_frames: u64,
    /// Frames lost because the transmit FIFO was full.
    pub fifo_dropped_frames: u64,
    /// Sensor ticks dropped when the process fell more than a second behind.
    pub resync_dropped_ticks: u64,
    /// Payloads (bulk RET_SUBMITs) sent.
    pub payloads: u64,
    /// Control transfers answered.
    pub control_transfers: u64,
    /// Control transfers stalled.
    pub stalls: u64,
    /// Pending URBs cancelled by CMD_UNLINK.
    pub unlinked: u64,
    /// Unlinks that arrived before their submit.
    pub early_unlinks: u64,
    /// Submits dropped because their unlink had come first.
    pub late_submits_dropped: u64,
    /// Stream starts (COMMIT).
    pub stream_starts: u64,
    /// Stream stops (CLEAR_FEATURE(HALT), SET_INTERFACE, SET_CONFIGURATION 0).
    pub stream_stops: u64,
}

/// An entry of the device's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// An I2C write the DAQ executed at end of frame.
    I2c(I2cWrite),
    /// A DAQ command, a bad slot or a lost write.
    Event(DaqEvent),
    /// The host switched the per-frame sync output (SATURATION bit 0: recording).
    Recording {
        /// On or off.
        on: bool,
        /// DAQ frame counter when it was seen.
        frame: u32,
    },
}

#[derive(Debug, Clone, Copy)]
struct PendingUrb {
    seqnum: u32,
    len: u32,
}

#[derive(Debug, Clone, Copy)]
struct FrameTx {
    counter: u32,
    sent: usize,
}

/// The Miniscope DAQ look-alike.
#[derive(Debug)]
pub struct Lookalike {
    config: LookalikeConfig,
    daq: DaqEmulator,
    configuration: u8,
    probe: Probe,
    commit: Probe,
    streaming: bool,
    next_tick_ns: Option<u64>,
    pending_in: VecDeque<PendingUrb>,
    fifo: VecDeque<FrameTx>,
    fid: bool,
    pattern: FramePattern,
    max_submit_seqnum: Option<u32>,
    early_unlinks: HashSet<u32>,
    request_error: u8,
    events_seen: usize,
    recording_seen: bool,
    log: Vec<LogEntry>,
    stats: Stats,
}

impl Lookalike {
    /// A device just plugged in: unconfigured, not streaming, DAQ counter 0.
    pub fn new(config: LookalikeConfig) -> Self {
        let probe = Probe::default_for(config.speed);
        Self {
            daq: DaqEmulator::new(config.daq),
            config,
            configuration: 0,
            probe,
            commit: probe,
            streaming: false,
            next_tick_ns: None,
            pending_in: VecDeque::new(),
            fifo: VecDeque::new(),
            fid: false,
            pattern: FramePattern::new(probe.format),
            max_submit_seqnum: None,
            early_unlinks: HashSet::new(),
            request_error: 0,
            events_seen: 0,
            recording_seen: false,
            log: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// The emulated DAQ.
    pub fn daq(&self) -> &DaqEmulator {
        &self.daq
    }

    /// The emulated DAQ, mutably (to drive the trigger input or the IMU).
    pub fn daq_mut(&mut self) -> &mut DaqEmulator {
        &mut self.daq
    }

    /// What the device has counted.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the host has committed a stream that has not been stopped.
    pub fn streaming(&self) -> bool {
        self.streaming
    }

    /// The last committed stream parameters.
    pub fn committed(&self) -> Probe {
        self.commit
    }

    /// Bulk IN URBs waiting for data.
    pub fn pending_urbs(&self) -> usize {
        self.pending_in.len()
    }

    /// Frames waiting in the transmit FIFO (the first may be partly sent).
    pub fn queued_frames(&self) -> usize {
        self.fifo.len()
    }

    /// The DAQ's I2C writes and events since the last call, in execution order.
    pub fn take_log(&mut self) -> Vec<LogEntry> {
        self.collect_log();
        std::mem::take(&mut self.log)
    }

    /// When [`Self::poll`] next has work (a sensor tick), if ticking.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        self.next_tick_ns
    }

    fn ticking(&self) -> bool {
        self.streaming || self.config.free_run
    }

    /// Handles one command from the host at time `now_ns` (monotonic); returns the
    /// replies, in order.
    pub fn handle(&mut self, cmd: Command, now_ns: u64) -> Vec<Reply> {
        let mut out = Vec::new();
        match cmd {
            Command::Submit(s) => self.submit(s, now_ns, &mut out),
            Command::Unlink(u) => self.unlink(u, &mut out),
        }
        out
    }

    /// Runs the sensor ticks due by `now_ns` and sends what the FIFO and the pending URBs
    /// allow.
    pub fn poll(&mut self, now_ns: u64) -> Vec<Reply> {
        let mut out = Vec::new();
        if self.ticking() {
            let period = self.commit.period_ns();
            let mut next = *self.next_tick_ns.get_or_insert(now_ns + period);
            if now_ns.saturating_sub(next) > 1_000_000_000 {
                // Starved for over a second: resynchronise instead of bursting.
                self.stats.resync_dropped_ticks += (now_ns - next) / period;
                next = now_ns;
            }
            while next <= now_ns {
                self.sensor_frame(next);
                next += period;
            }
            self.next_tick_ns = Some(next);
        } else {
            self.next_tick_ns = None;
        }
        self.pump(&mut out);
        out
    }

    fn sensor_frame(&mut self, at_ns: u64) {
        self.daq.set_time_ns(at_ns);
        // The head turns 1° about the vertical axis per frame: the BNO registers hold the
        // unit quaternion (w, 0, 0, z) in 1/16384 units, read by the DAQ at end of frame.
        let half = (self.daq.frame_counter() as f64 + 1.0).to_radians() / 2.0;
        self.daq.set_bno_quaternion(head_quaternion(half));
        self.daq.end_of_frame();
        self.stats.sensor_frames += 1;
        self.collect_log();
        let counter = self.daq.frame_counter();
        if !self.streaming {
            return;
        }
        if self.config.skip.skips(counter) {
            self.stats.skipped_frames += 1;
        } else if self.fifo.len() >= self.config.fifo_frames.max(1) {
            self.stats.fifo_dropped_frames += 1;
        } else {
            self.fifo.push_back(FrameTx { counter, sent: 0 });
        }
    }

    fn collect_log(&mut self) {
        for w in self.daq.take_writes() {
            self.log.push(LogEntry::I2c(w));
        }
        let events = self.daq.events();
        for e in &events[self.events_seen..] {
            self.log.push(LogEntry::Event(*e));
        }
        self.events_seen = events.len();
        if self.daq.recording() != self.recording_seen {
            self.recording_seen = self.daq.recording();
            self.log.push(LogEntry::Recording {
                on: self.recording_seen,
                frame: self.daq.frame_counter(),
            });
        }
    }

    fn pump(&mut self, out: &mut Vec<Reply>) {
        let total = self.pattern.format().frame_bytes();
        let max_payload = self.commit.max_payload as usize;
        while let (Some(urb), Some(frame)) =
            (self.pending_in.front().copied(), self.fifo.front_mut())
        {
            self.pending_in.pop_front();
            let room = (urb.len as usize)
                .min(max_payload)
                .saturating_sub(PAYLOAD_HEADER_LEN);
            let n = room.min(total - frame.sent);
            let eof = frame.sent + n == total;
            let mut data = Vec::with_capacity(PAYLOAD_HEADER_LEN + n);
            data.extend_from_slice(&payload_header(self.fid, eof));
            self.pattern.append(frame.counter, frame.sent, n, &mut data);
            frame.sent += n;
            if eof {
                self.fifo.pop_front();
                self.fid = !self.fid;
                self.stats.sent_frames += 1;
            }
            self.stats.payloads += 1;
            out.push(Reply::Submit {
                seqnum: urb.seqnum,
                status: 0,
                actual_length: data.len() as u32,
                data,
            });
        }
    }

    fn submit(&mut self, s: CmdSubmit, now_ns: u64, out: &mut Vec<Reply>) {
        if self.early_unlinks.remove(&s.seqnum) {
            // Its RET_UNLINK already went out; vhci has given the URB back, and a
            // RET_SUBMIT for it now would make vhci drop the whole connection.
            self.stats.late_submits_dropped += 1;
            return;
        }
        self.max_submit_seqnum = Some(self.max_submit_seqnum.map_or(s.seqnum, |m| m.max(s.seqnum)));
        // Submits arrive in seqnum order: an early unlink older than this will never
        // see its submit.
        if !self.early_unlinks.is_empty() {
            self.early_unlinks.retain(|&q| q > s.seqnum);
        }
        match (s.ep, s.direction) {
            (0, _) => {
                self.stats.control_transfers += 1;
                let reply = match self.control(s.setup, &s.data, now_ns) {
                    Ok(mut data) => {
                        if s.setup.is_in() {
                            data.truncate(
                                usize::from(s.setup.length).min(s.transfer_buffer_length as usize),
                            );
                            Reply::Submit {
                                seqnum: s.seqnum,
                                status: 0,
                                actual_length: data.len() as u32,
                                data,
                            }
                        } else {
                            Reply::Submit {
                                seqnum: s.seqnum,
                                status: 0,
                                actual_length: s.data.len() as u32,
                                data: Vec::new(),
                            }
                        }
                    }
                    Err(Stall) => {
                        self.stats.stalls += 1;
                        stall(s.seqnum)
                    }
                };
                out.push(reply);
                // A COMMIT may have started the stream.
                let more = self.poll(now_ns);
                out.extend(more);
            }
            (ep, Direction::In) if ep == u32::from(VIDEO_ENDPOINT & 0x0F) => {
                self.pending_in.push_back(PendingUrb {
                    seqnum: s.seqnum,
                    len: s.transfer_buffer_length,
                });
                self.pump(out);
            }
            _ => out.push(stall(s.seqnum)),
        }
    }

    fn unlink(&mut self, u: CmdUnlink, out: &mut Vec<Reply>) {
        let target = u.unlink_seqnum;
        let status = if let Some(pos) = self.pending_in.iter().position(|p| p.seqnum == target) {
            self.pending_in.remove(pos);
            self.stats.unlinked += 1;
            STATUS_UNLINKED
        } else if self.max_submit_seqnum.is_none_or(|m| target > m) {
            // vhci sent the unlink before the submit: cancel it now, drop the submit later.
            self.early_unlinks.insert(target);
            self.stats.early_unlinks += 1;
            STATUS_UNLINKED
        } else {
            // Already completed: its RET_SUBMIT is on its way or delivered.
            0
        };
        out.push(Reply::Unlink {
            seqnum: u.seqnum,
            status,
        });
    }

    fn start_stream(&mut self, now_ns: u64) {
        if self.pattern.format() != self.commit.format {
            self.pattern = FramePattern::new(self.commit.format);
        }
        self.fifo.clear();
        self.fid = false;
        self.streaming = true;
        self.next_tick_ns = Some(now_ns + self.commit.period_ns());
        self.stats.stream_starts += 1;
    }

    fn stop_stream(&mut self) {
        if self.streaming {
            self.stats.stream_stops += 1;
        }
        self.streaming = false;
        self.fifo.clear();
        if !self.config.free_run {
            self.next_tick_ns = None;
        }
    }
}

fn stall(seqnum: u32) -> Reply {
    Reply::Submit {
        seqnum,
        status: STATUS_STALL,
        actual_length: 0,
        data: Vec::new(),
    }
}

mod requests;

/// The BNO register words of a rotation about the vertical axis with half-angle `half`
/// (radians): `[w, x, y, z]` in 1/16384 units.
pub fn head_quaternion(half: f64) -> [i16; 4] {
    let unit = 16384.0;
    [
        (half.cos() * unit).round() as i16,
        0,
        0,
        (half.sin() * unit).round() as i16,
    ]
}
