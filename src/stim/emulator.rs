//! An emulated stimulator: the reference firmware's behaviour (PROTOCOL.md) in Rust, on its own
//! threads, behind a real pseudo-terminal that the host opens like a serial port.
//!
//! The emulator is a discrete-event model of the device run in real time on its own microsecond
//! clock ([`DeviceClock`]: CLOCK_MONOTONIC with a random offset and optional drift, so it is a
//! distinct clock the host has to fit). Every received chunk is stamped on that clock by the
//! reader thread; the core thread processes due events (edges, cuts, watchdog, heartbeats) in
//! time order up to each command's arrival time before handling the command. Edge times are
//! therefore the scheduled times, exactly as a hardware timer would produce them, and PULSE_DONE
//! reports the same times the edge log holds; real-time lateness only delays when a message is
//! written.
//!
//! Threads: a reader (pty master → core), the core (state machine), a writer (core → pty
//! master; drops frames rather than stall the core if nobody reads the port). The emulator keeps
//! the slave side open itself, so the port exists until [`EmulatedStimulator::stop`] (or drop),
//! and a host may close and reopen it; frames written while no host had it open are still
//! buffered in the pty and reach the next reader (a host resynchronises on 0x00 anyway).

use crate::stim::codec::{
    FrameDecoder, FrameError, Message, PROTOCOL_VERSION, fault, fault_bit, nack, pulse_flag,
};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use rand::Rng;
use serialport::{SerialPort, TTYPort};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Device heartbeat period (PROTOCOL.md §3).
pub const HEARTBEAT_PERIOD_US: u64 = 250_000;

/// How an [`EmulatedStimulator`] is built.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Output channels (reference firmware: 2).
    pub channels: u8,
    /// Digital inputs (reference firmware: 1).
    pub inputs: u8,
    /// Board name in CAPABILITIES (ASCII, zero padded).
    pub board: [u8; 8],
    /// Firmware version in CAPABILITIES (major, minor, patch).
    pub firmware: (u8, u8, u8),
    /// Device clock at start, µs; `None` draws a random offset (up to about 1000 s).
    pub clock_offset_us: Option<u64>,
    /// Device clock rate error in parts per million (a crystal's drift), 0 for none.
    pub drift_ppm: f64,
    /// Also expose the port at this path, as a symlink to `/dev/pts/N` (replaced if it exists,
    /// removed on stop), so that a restarted emulator appears under the same name.
    pub link: Option<PathBuf>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            channels: 2,
            inputs: 1,
            board: *b"emulator",
            firmware: (1, 0, 0),
            clock_offset_us: None,
            drift_ppm: 0.0,
            link: None,
        }
    }
}

/// Why the emulator could not start or take a request.
#[derive(Debug, Error)]
pub enum EmulatorError {
    /// Opening or configuring the pseudo-terminal failed.
    #[error("pseudo-terminal: {0}")]
    Serial(#[from] serialport::Error),
    /// Creating the symlink or a thread failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The pty has no slave path (not expected on Linux).
    #[error("the pseudo-terminal has no slave path")]
    NoPath,
    /// A configuration value is out of range.
    #[error("bad emulator configuration: {0}")]
    Config(&'static str),
    /// No such input.
    #[error("input {input} does not exist (the emulator has {inputs})")]
    NoSuchInput {
        /// Requested input.
        input: u8,
        /// Inputs configured.
        inputs: u8,
    },
    /// The emulator is stopped.
    #[error("the emulator is stopped")]
    Stopped,
}

/// One output edge in the emulator's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Output channel.
    pub channel: u8,
    /// Level after the edge (1 = on).
    pub level: u8,
    /// Device time of the edge.
    pub device_us: u64,
}

/// The emulator's microsecond clock: CLOCK_MONOTONIC (via [`Instant`]) since start, scaled by
/// `1 + drift_ppm·10⁻⁶`, plus an offset.
#[derive(Debug, Clone, Copy)]
pub struct DeviceClock {
    t0: Instant,
    t0_mono_ns: u64,
    offset_us: u64,
    rate: f64,
}

impl DeviceClock {
    fn new(offset_us: u64, drift_ppm: f64) -> Self {
        let t0 = Instant::now();
        let t0_mono_ns = crate::clock::monotonic_ns();
        Self {
            t0,
            t0_mono_ns,
            offset_us,
            rate: 1.0 + drift_ppm * 1e-6,
        }
    }

    /// Device time now, µs.
    pub fn now_us(&self) -> u64 {
        self.at(Instant::now())
    }

    /// Device time at a host instant, µs (the offset if the instant precedes the start).
    pub fn at(&self, t: Instant) -> u64 {
        let ns = t.saturating_duration_since(self.t0).as_nanos() as f64 * self.rate;
        self.offset_us + (ns / 1000.0) as u64
    }

    /// Device time at a host CLOCK_MONOTONIC stamp ([`crate::clock::monotonic_ns`]), µs: the
    /// ground truth a host-side clock fit should recover.
    pub fn at_monotonic_ns(&self, mono_ns: u64) -> u64 {
        let ns = mono_ns.saturating_sub(self.t0_mono_ns) as f64 * self.rate;
        self.offset_us + (ns / 1000.0) as u64
    }

    /// Host instant at which the device clock reads `device_us` (the start if earlier).
    pub fn instant_of(&self, device_us: u64) -> Instant {
        let us = device_us.saturating_sub(self.offset_us) as f64 / self.rate;
        self.t0 + Duration::from_nanos((us * 1000.0).ceil() as u64)
    }
}

/// State the core thread publishes for the owner (tests, the demo rig).
#[derive(Debug, Default)]
struct Shared {
    edges: Vec<Edge>,
    levels: Vec<u8>,
    faults: u8,
    rx_errors: u16,
    frames_ok: u64,
    frames_dropped_tx: u64,
}

enum Event {
    Rx(u64, Vec<u8>),
    Input {
        input: u8,
        level: u8,
        device_us: u64,
    },
    Stop,
}

struct Running {
    path: String,
    clock: DeviceClock,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    events: Sender<Event>,
    threads: Vec<JoinHandle<()>>,
    _slave: TTYPort,
}

/// An emulated stimulator on a pseudo-terminal. Dropping it stops it and the port vanishes.
pub struct EmulatedStimulator {
    config: EmulatorConfig,
    running: Option<Running>,
}

impl std::fmt::Debug for EmulatedStimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatedStimulator")
            .field("port", &self.running.as_ref().map(|r| r.path.as_str()))
            .field("config", &self.config)
            .finish()
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl EmulatedStimulator {
    /// Creates a pty pair and starts the emulated device on the master side; the host opens
    /// [`port_path`](Self::port_path).
    pub fn start(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        if config.channels == 0 {
            return Err(EmulatorError::Config("channels must be at least 1"));
        }
        if !config.drift_ppm.is_finite() || config.drift_ppm.abs() >= 1e5 {
            return Err(EmulatorError::Config("drift_ppm must be within ±100000"));
        }
        let mut emu = Self {
            config,
            running: None,
        };
        emu.running = Some(emu.spawn()?);
        Ok(emu)
    }

    fn spawn(&self) -> Result<Running, EmulatorError> {
        let cfg = &self.config;
        // The slave end stays open in the emulator (no TIOCEXCL, no flock: the host may open it
        // exclusively) so the port outlives host reconnects.
        let (master, slave) = TTYPort::pair()?;
        let path = slave.name().ok_or(EmulatorError::NoPath)?;
        if let Some(link) = &cfg.link {
            replace_symlink(Path::new(&path), link)?;
        }
        let offset = cfg
            .clock_offset_us
            .unwrap_or_else(|| rand::rng().random_range(1_000_000..1_000_000_000));
        let clock = DeviceClock::new(offset, cfg.drift_ppm);
        let shared = Arc::new(Mutex::new(Shared {
            levels: vec![0; cfg.channels as usize],
            ..Shared::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (ev_tx, ev_rx) = crossbeam_channel::unbounded();
        let (out_tx, out_rx) = crossbeam_channel::bounded(4096);

        let mut writer_port = master.try_clone_native()?;
        writer_port.set_timeout(Duration::from_millis(200))?;
        let mut reader_port = master;
        reader_port.set_timeout(Duration::from_millis(20))?;

        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|source| EmulatorError::Io {
                    what: format!("spawning {name}"),
                    source,
                })
        };
        let mut threads = Vec::new();
        {
            let stop = stop.clone();
            let ev_tx = ev_tx.clone();
            threads.push(spawn(
                "stim-emu-rx",
                Box::new(move || reader(reader_port, clock, ev_tx, stop)),
            )?);
        }
        {
            let shared = shared.clone();
            threads.push(spawn(
                "stim-emu-tx",
                Box::new(move || writer(writer_port, out_rx, shared)),
            )?);
        }
        {
            let core = Core::new(cfg, clock, shared.clone(), out_tx);
            threads.push(spawn("stim-emu-core", Box::new(move || core.run(ev_rx)))?);
        }
        Ok(Running {
            path,
            clock,
            shared,
            stop,
            events: ev_tx,
            threads,
            _slave: slave,
        })
    }

    fn running(&self) -> Result<&Running, EmulatorError> {
        self.running.as_ref().ok_or(EmulatorError::Stopped)
    }

    /// The pty path the host opens (`/dev/pts/N`); empty once stopped.
    pub fn port_path(&self) -> &str {
        self.running.as_ref().map_or("", |r| r.path.as_str())
    }

    /// The configured symlink, if any (it points at [`port_path`](Self::port_path)).
    pub fn link_path(&self) -> Option<&Path> {
        self.config.link.as_deref()
    }

    /// The device clock (to compare a host-side fit with the truth).
    pub fn clock(&self) -> Option<DeviceClock> {
        self.running.as_ref().map(|r| r.clock)
    }

    /// Device time now, µs (0 once stopped).
    pub fn device_us(&self) -> u64 {
        self.running.as_ref().map_or(0, |r| r.clock.now_us())
    }

    /// Every output edge since start, in time order.
    pub fn edges(&self) -> Vec<Edge> {
        self.running
            .as_ref()
            .map_or_else(Vec::new, |r| lock(&r.shared).edges.clone())
    }

    /// Removes and returns the edges logged so far (for long runs, to bound the log).
    pub fn take_edges(&self) -> Vec<Edge> {
        self.running
            .as_ref()
            .map_or_else(Vec::new, |r| std::mem::take(&mut lock(&r.shared).edges))
    }

    /// Current output levels, one per channel (1 = on).
    pub fn levels(&self) -> Vec<u8> {
        self.running
            .as_ref()
            .map_or_else(Vec::new, |r| lock(&r.shared).levels.clone())
    }

    /// Latched fault bits ([`fault_bit`]).
    pub fn faults(&self) -> u8 {
        self.running.as_ref().map_or(0, |r| lock(&r.shared).faults)
    }

    /// Frames dropped for COBS/length/CRC/overflow errors since start (wrapping).
    pub fn rx_errors(&self) -> u16 {
        self.running
            .as_ref()
            .map_or(0, |r| lock(&r.shared).rx_errors)
    }

    /// Valid frames received since start.
    pub fn frames_ok(&self) -> u64 {
        self.running
            .as_ref()
            .map_or(0, |r| lock(&r.shared).frames_ok)
    }

    /// Frames the device could not write because nobody read the port (the writer fell behind).
    pub fn frames_dropped_tx(&self) -> u64 {
        self.running
            .as_ref()
            .map_or(0, |r| lock(&r.shared).frames_dropped_tx)
    }

    /// Drives digital input `input` to `level`; an edge produces INPUT_EVENT, stamped now.
    pub fn set_input(&self, input: u8, level: bool) -> Result<(), EmulatorError> {
        let r = self.running()?;
        if input >= self.config.inputs {
            return Err(EmulatorError::NoSuchInput {
                input,
                inputs: self.config.inputs,
            });
        }
        r.events
            .send(Event::Input {
                input,
                level: level as u8,
                device_us: r.clock.now_us(),
            })
            .map_err(|_| EmulatorError::Stopped)
    }

    /// Stops the device: threads joined, the pty closed (its path vanishes), the symlink removed.
    /// Safe to call twice.
    pub fn halt(&mut self) {
        let Some(r) = self.running.take() else {
            return;
        };
        r.stop.store(true, Ordering::SeqCst);
        let _ = r.events.send(Event::Stop);
        for t in r.threads {
            let _ = t.join();
        }
        if let Some(link) = &self.config.link
            && std::fs::read_link(link).is_ok_and(|p| p == Path::new(&r.path))
        {
            let _ = std::fs::remove_file(link);
        }
    }

    /// Stops the device and consumes it.
    pub fn stop(mut self) {
        self.halt();
    }

    /// Power-cycles the device: stops it and starts a fresh one (reset state, new clock offset
    /// unless configured, a new pty; the symlink, if configured, is repointed).
    pub fn restart(&mut self) -> Result<(), EmulatorError> {
        self.halt();
        self.running = Some(self.spawn()?);
        Ok(())
    }
}

impl Drop for EmulatedStimulator {
    fn drop(&mut self) {
        self.halt();
    }
}

fn replace_symlink(target: &Path, link: &Path) -> Result<(), EmulatorError> {
    if std::fs::symlink_metadata(link).is_ok() {
        std::fs::remove_file(link).map_err(|source| EmulatorError::Io {
            what: format!("removing {}", link.display()),
            source,
        })?;
    }
    std::os::unix::fs::symlink(target, link).map_err(|source| EmulatorError::Io {
        what: format!("linking {} -> {}", link.display(), target.display()),
        source,
    })
}

fn reader(mut port: TTYPort, clock: DeviceClock, events: Sender<Event>, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        match port.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => {
                let t = clock.now_us();
                if events.send(Event::Rx(t, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // The slave side is held open by the emulator, so a hang-up is not expected; back
            // off rather than spin.
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn writer(
    mut port: TTYPort,
    frames: Receiver<crate::stim::codec::Frame>,
    shared: Arc<Mutex<Shared>>,
) {
    for f in frames {
        if port.write_all(f.as_bytes()).is_err() {
            lock(&shared).frames_dropped_tx += 1;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Safety {
    max_on_us: u32,
    max_duty_permille: u16,
    duty_window_ms: u16,
}

impl Default for Safety {
    fn default() -> Self {
        Self {
            max_on_us: 0,
            max_duty_permille: 1000,
            duty_window_ms: 0,
        }
    }
}

impl Safety {
    fn duty_capped(&self) -> bool {
        self.max_duty_permille < 1000 && self.duty_window_ms > 0
    }
    fn window_us(&self) -> u64 {
        self.duty_window_ms as u64 * 1000
    }
    fn cap_us(&self) -> u64 {
        self.window_us() * self.max_duty_permille as u64 / 1000
    }
    /// On time of a pulse of `width_us` once `max_on_us` has cut it.
    fn effective_width(&self, width_us: u32) -> u64 {
        if self.max_on_us > 0 {
            width_us.min(self.max_on_us) as u64
        } else {
            width_us as u64
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Train {
    seq: u16,
    width_us: u32,
    count: u16,
    period_us: u32,
    start_us: u64,
    next_index: u16,
    skipped: u32,
}

impl Train {
    fn next_rise(&self) -> Option<u64> {
        (self.next_index < self.count)
            .then(|| self.start_us + self.next_index as u64 * self.period_us as u64)
    }
}

#[derive(Debug, Clone, Copy)]
enum On {
    Pulse { seq: u16, index: u16, width_us: u32 },
    Level,
}

#[derive(Debug, Default)]
struct Channel {
    /// `Some((rise_us, what))` while the output is on.
    on: Option<(u64, On)>,
    train: Option<Train>,
    safety: Safety,
    /// Finished on-intervals `(rise, fall)`, pruned to the duty window.
    history: VecDeque<(u64, u64)>,
}

impl Channel {
    /// When the output must go off (end of pulse or max-on cut), and whether it is a cut.
    fn off_deadline(&self) -> Option<(u64, bool)> {
        let (rise, what) = self.on?;
        let cut = (self.safety.max_on_us > 0).then(|| rise + self.safety.max_on_us as u64);
        match what {
            On::Pulse { width_us, .. } => {
                let end = rise + width_us as u64;
                match cut {
                    Some(c) if c < end => Some((c, true)),
                    _ => Some((end, false)),
                }
            }
            On::Level => cut.map(|c| (c, true)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Due {
    Off(usize, bool),
    Rise(usize),
    Watchdog,
    Heartbeat,
}

struct Core {
    clock: DeviceClock,
    shared: Arc<Mutex<Shared>>,
    out: Sender<crate::stim::codec::Frame>,
    caps: Message,
    channels: Vec<Channel>,
    input_levels: Vec<u8>,
    input_counts: Vec<u32>,
    decoder: FrameDecoder,
    /// Device time of the last processed event (monotonic).
    now: u64,
    faults: u8,
    rx_errors: u16,
    watchdog_ms: u16,
    last_valid_us: u64,
    watchdog_fired: bool,
    next_heartbeat_us: u64,
}

impl Core {
    fn new(
        cfg: &EmulatorConfig,
        clock: DeviceClock,
        shared: Arc<Mutex<Shared>>,
        out: Sender<crate::stim::codec::Frame>,
    ) -> Self {
        let now = clock.now_us();
        Self {
            clock,
            shared,
            out,
            caps: Message::Capabilities {
                protocol: PROTOCOL_VERSION,
                fw_major: cfg.firmware.0,
                fw_minor: cfg.firmware.1,
                fw_patch: cfg.firmware.2,
                channels: cfg.channels,
                inputs: cfg.inputs,
                tick_ns: 1000,
                board: cfg.board,
            },
            channels: (0..cfg.channels).map(|_| Channel::default()).collect(),
            input_levels: vec![0; cfg.inputs as usize],
            input_counts: vec![0; cfg.inputs as usize],
            decoder: FrameDecoder::new(),
            now,
            faults: 0,
            rx_errors: 0,
            watchdog_ms: 0,
            last_valid_us: now,
            watchdog_fired: false,
            next_heartbeat_us: now + HEARTBEAT_PERIOD_US,
        }
    }

    fn run(mut self, events: Receiver<Event>) {
        loop {
            let deadline = self.next_due().map_or(self.now + 1_000_000, |(t, _)| t);
            let ev = match events.recv_deadline(self.clock.instant_of(deadline)) {
                Ok(ev) => Some(ev),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            match ev {
                None => {
                    let now = self.clock.now_us();
                    self.run_due(now);
                }
                Some(Event::Stop) => return,
                Some(Event::Rx(t, bytes)) => {
                    for b in bytes {
                        self.rx_byte(t, b);
                    }
                }
                Some(Event::Input {
                    input,
                    level,
                    device_us,
                }) => {
                    let t = self.advance(device_us);
                    let i = input as usize;
                    if i < self.input_levels.len() && self.input_levels[i] != level {
                        self.input_levels[i] = level;
                        self.input_counts[i] = self.input_counts[i].wrapping_add(1);
                        self.send(Message::InputEvent {
                            input,
                            level,
                            device_us: t,
                            count: self.input_counts[i],
                        });
                    }
                }
            }
        }
    }

    /// Processes everything due up to `t` and returns the (monotonic) time to act at.
    fn advance(&mut self, t: u64) -> u64 {
        self.run_due(t);
        self.now = self.now.max(t);
        self.now
    }

    fn send(&self, m: Message) {
        match self.out.try_send(m.to_frame()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => lock(&self.shared).frames_dropped_tx += 1,
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn publish(&self) {
        let mut s = lock(&self.shared);
        s.faults = self.faults;
        s.rx_errors = self.rx_errors;
    }

    fn set_output(&mut self, ch: usize, level: u8, t: u64) {
        let mut s = lock(&self.shared);
        s.levels[ch] = level;
        s.edges.push(Edge {
            channel: ch as u8,
            level,
            device_us: t,
        });
    }

    fn next_due(&self) -> Option<(u64, Due)> {
        let mut best: Option<(u64, Due)> = None;
        let mut consider = |t: u64, d: Due| {
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, d));
            }
        };
        for (i, c) in self.channels.iter().enumerate() {
            if let Some((t, cut)) = c.off_deadline() {
                consider(t, Due::Off(i, cut));
            } else if let Some(t) = c.train.and_then(|tr| tr.next_rise()) {
                consider(t, Due::Rise(i));
            }
        }
        if self.watchdog_ms > 0 && !self.watchdog_fired {
            consider(
                self.last_valid_us + self.watchdog_ms as u64 * 1000,
                Due::Watchdog,
            );
        }
        consider(self.next_heartbeat_us, Due::Heartbeat);
        best
    }

    fn run_due(&mut self, t: u64) {
        while let Some((due_at, what)) = self.next_due() {
            if due_at > t {
                break;
            }
            // Events made due in the past by a command (e.g. a lower max_on) happen now.
            let at = due_at.max(self.now);
            self.now = at;
            match what {
                Due::Off(ch, cut) => {
                    self.output_off(ch, at, if cut { pulse_flag::MAX_ON_CUT } else { 0 })
                }
                Due::Rise(ch) => self.rise(ch, at),
                Due::Watchdog => {
                    self.watchdog_fired = true;
                    for ch in 0..self.channels.len() {
                        self.cancel_channel(ch, at);
                    }
                    self.faults |= fault_bit::WATCHDOG;
                    self.send(Message::Fault {
                        code: fault::WATCHDOG,
                        channel: 0,
                        device_us: at,
                        detail: ((at - self.last_valid_us) / 1000) as u32,
                    });
                    self.publish();
                }
                Due::Heartbeat => {
                    self.send(Message::DeviceHeartbeat {
                        device_us: at,
                        faults: self.faults,
                        rx_errors: self.rx_errors,
                    });
                    self.next_heartbeat_us = due_at + HEARTBEAT_PERIOD_US;
                }
            }
        }
    }

    /// Switches a channel's output off at `t`: PULSE_DONE for a pulse (with `flags`), FAULT 2
    /// for a max-on cut, the on-interval into the duty history.
    fn output_off(&mut self, ch: usize, t: u64, flags: u8) {
        let Some((rise, what)) = self.channels[ch].on.take() else {
            return;
        };
        self.set_output(ch, 0, t);
        let c = &mut self.channels[ch];
        c.history.push_back((rise, t));
        let keep_from = t.saturating_sub(c.safety.window_us());
        while c.history.front().is_some_and(|&(_, f)| f <= keep_from) {
            c.history.pop_front();
        }
        if let On::Pulse { seq, index, .. } = what {
            if c.train
                .is_some_and(|tr| tr.seq == seq && tr.next_rise().is_none())
            {
                c.train = None;
            }
            self.send(Message::PulseDone {
                seq,
                channel: ch as u8,
                index,
                rise_us: rise,
                fall_us: t,
                flags,
            });
        }
        if flags & pulse_flag::MAX_ON_CUT != 0 {
            self.faults |= fault_bit::MAX_ON;
            self.send(Message::Fault {
                code: fault::MAX_ON,
                channel: ch as u8,
                device_us: t,
                detail: (t - rise).min(u32::MAX as u64) as u32,
            });
            self.publish();
        }
    }

    /// Ends whatever runs on a channel at `t` (a running pulse is acknowledged as cut).
    fn cancel_channel(&mut self, ch: usize, t: u64) {
        self.output_off(ch, t, pulse_flag::CANCELLED);
        self.channels[ch].train = None;
    }

    fn rise(&mut self, ch: usize, t: u64) {
        let c = &mut self.channels[ch];
        let Some(tr) = c.train.as_mut() else { return };
        let index = tr.next_index;
        tr.next_index += 1;
        let (seq, width_us) = (tr.seq, tr.width_us);
        let finished = tr.next_rise().is_none();
        let on = (t, t + c.safety.effective_width(width_us));
        let over_cap = c.safety.duty_capped()
            && max_window_on_time(c.history.iter().copied().chain([on]), c.safety.window_us())
                > c.safety.cap_us();
        if !over_cap {
            c.on = Some((
                t,
                On::Pulse {
                    seq,
                    index,
                    width_us,
                },
            ));
            self.set_output(ch, 1, t);
            return;
        }
        tr.skipped += 1;
        let skipped = tr.skipped;
        if finished {
            c.train = None;
        }
        self.faults |= fault_bit::DUTY_CAP;
        self.send(Message::Fault {
            code: fault::DUTY_CAP,
            channel: ch as u8,
            device_us: t,
            detail: skipped,
        });
        self.publish();
    }

    fn rx_byte(&mut self, t_rx: u64, b: u8) {
        let mut payload = [0u8; 64];
        let n = match self.decoder.push_raw(b) {
            None => return,
            Some(Ok(p)) => {
                payload[..p.len()].copy_from_slice(p);
                p.len()
            }
            Some(Err(e)) => {
                let t = self.advance(t_rx);
                self.rx_errors = self.rx_errors.wrapping_add(1);
                if let FrameError::Overflow { discarded } = e {
                    self.faults |= fault_bit::RX_OVERFLOW;
                    self.send(Message::Fault {
                        code: fault::RX_OVERFLOW,
                        channel: 0,
                        device_us: t,
                        detail: discarded as u32,
                    });
                }
                self.publish();
                return;
            }
        };
        let t = self.advance(t_rx);
        // Every valid frame feeds the watchdog.
        self.last_valid_us = t;
        self.watchdog_fired = false;
        lock(&self.shared).frames_ok += 1;
        let payload = &payload[..n];
        let seq_guess = || {
            u16::from_le_bytes([
                payload.get(1).copied().unwrap_or(0),
                payload.get(2).copied().unwrap_or(0),
            ])
        };
        match Message::decode(payload) {
            Ok(m) if m.is_host_to_device() => self.handle(m, t),
            Ok(_) | Err(FrameError::UnknownType(_)) => self.send(Message::Nack {
                seq: seq_guess(),
                reason: nack::UNKNOWN_TYPE,
            }),
            Err(_) => self.send(Message::Nack {
                seq: seq_guess(),
                reason: nack::BAD_LENGTH,
            }),
        }
        // A command may have made events due now (a train's first rising edge).
        self.run_due(t);
    }

    fn check_channel(&self, seq: u16, channel: u8) -> Result<usize, Message> {
        if (channel as usize) < self.channels.len() {
            Ok(channel as usize)
        } else {
            Err(Message::Nack {
                seq,
                reason: nack::BAD_CHANNEL,
            })
        }
    }

    fn handle(&mut self, m: Message, t: u64) {
        let reply = match m {
            Message::Hello { .. } => Ok(self.caps),
            Message::Ping { token } => Ok(Message::Pong {
                token,
                device_us: t,
            }),
            Message::HostHeartbeat => return,
            Message::Pulse {
                seq,
                channel,
                width_us,
                count,
                period_us,
            } => match self.pulse(seq, channel, width_us, count, period_us, t) {
                Ok(()) => return,
                Err(nack) => Err(nack),
            },
            Message::SetLevel {
                seq,
                channel,
                level,
            } => self.set_level(seq, channel, level, t),
            Message::StopAll { seq } => {
                for ch in 0..self.channels.len() {
                    self.cancel_channel(ch, t);
                }
                Ok(Message::Ok { seq, device_us: t })
            }
            Message::SetSafety {
                seq,
                channel,
                max_on_us,
                max_duty_permille,
                duty_window_ms,
                watchdog_ms,
            } => self.check_channel(seq, channel).and_then(|ch| {
                if max_duty_permille == 0 || max_duty_permille > 1000 {
                    return Err(Message::Nack {
                        seq,
                        reason: nack::BAD_ARGUMENT,
                    });
                }
                self.channels[ch].safety = Safety {
                    max_on_us,
                    max_duty_permille,
                    duty_window_ms,
                };
                self.watchdog_ms = watchdog_ms;
                Ok(Message::Ok { seq, device_us: t })
            }),
            Message::ClearFaults { seq } => {
                self.faults = 0;
                self.publish();
                Ok(Message::Ok { seq, device_us: t })
            }
            // Device → host types are answered as unknown by `rx_byte`.
            _ => return,
        };
        self.send(match reply {
            Ok(m) | Err(m) => m,
        });
    }

    fn pulse(
        &mut self,
        seq: u16,
        channel: u8,
        width_us: u32,
        count: u16,
        period_us: u32,
        t: u64,
    ) -> Result<(), Message> {
        let ch = self.check_channel(seq, channel)?;
        let nack = |reason| Message::Nack { seq, reason };
        if width_us == 0 || count == 0 || (count > 1 && period_us <= width_us) {
            return Err(nack(nack::BAD_ARGUMENT));
        }
        if self.faults & fault_bit::WATCHDOG != 0 {
            return Err(nack(nack::FAULT_LATCHED));
        }
        let c = &self.channels[ch];
        if c.safety.duty_capped() {
            // History, the running on-interval (cut now if the train is accepted), the train.
            let w = c.safety.effective_width(width_us);
            let period = if count > 1 { period_us as u64 } else { 0 };
            let running = c.on.map(|(rise, _)| (rise, t));
            let planned = (0..count as u64).map(|i| (t + i * period, t + i * period + w));
            let on = c.history.iter().copied().chain(running).chain(planned);
            if max_window_on_time(on, c.safety.window_us()) > c.safety.cap_us() {
                return Err(nack(nack::DUTY_CYCLE));
            }
        }
        self.cancel_channel(ch, t);
        self.channels[ch].train = Some(Train {
            seq,
            width_us,
            count,
            period_us,
            start_us: t,
            next_index: 0,
            skipped: 0,
        });
        Ok(())
    }

    fn set_level(&mut self, seq: u16, channel: u8, level: u8, t: u64) -> Result<Message, Message> {
        let ch = self.check_channel(seq, channel)?;
        if level > 1 {
            return Err(Message::Nack {
                seq,
                reason: nack::BAD_ARGUMENT,
            });
        }
        if level == 1 && self.faults & fault_bit::WATCHDOG != 0 {
            return Err(Message::Nack {
                seq,
                reason: nack::FAULT_LATCHED,
            });
        }
        let c = &self.channels[ch];
        let held_on = matches!(c.on, Some((_, On::Level)));
        if level == 0 || !held_on {
            self.cancel_channel(ch, t);
            if level == 1 {
                self.channels[ch].on = Some((t, On::Level));
                self.set_output(ch, 1, t);
            }
        }
        Ok(Message::Ok { seq, device_us: t })
    }
}

/// The largest on time within any window of `window_us` over sorted, disjoint on-intervals
/// `(rise, fall)`. The maximum is reached by a window that starts at a rising edge or ends at a
/// falling edge, so only those windows are examined (two pointers, linear time).
fn max_window_on_time(intervals: impl Iterator<Item = (u64, u64)>, window_us: u64) -> u64 {
    if window_us == 0 {
        return 0;
    }
    let iv: Vec<(u64, u64)> = intervals.filter(|&(r, f)| f > r).collect();
    let mut prefix = Vec::with_capacity(iv.len() + 1);
    prefix.push(0u64);
    for &(r, f) in &iv {
        prefix.push(prefix.last().copied().unwrap_or(0) + (f - r));
    }
    let mut best = 0;
    // Windows [r_i, r_i + W).
    let mut j = 0;
    for i in 0..iv.len() {
        let end = iv[i].0 + window_us;
        j = j.max(i);
        while j < iv.len() && iv[j].0 < end {
            j += 1;
        }
        // Intervals i..j start inside the window; only the last may stick out.
        let mut sum = prefix[j] - prefix[i];
        sum -= iv[j - 1].1.saturating_sub(end);
        best = best.max(sum);
    }
    // Windows [f_j - W, f_j).
    let mut k = 0;
    for j in 0..iv.len() {
        let start = iv[j].1.saturating_sub(window_us);
        while iv[k].1 <= start {
            k += 1;
        }
        let mut sum = prefix[j + 1] - prefix[k];
        sum -= start.saturating_sub(iv[k].0);
        best = best.max(sum);
    }
    best
}

#[cfg(test)]
mod tests;

/// Tests that time a real-time emulator run one at a time: on a 2-core machine a dozen
/// emulators and their hosts in parallel starve each other's threads for longer than the
/// watchdogs under test.
#[cfg(test)]
pub(crate) fn test_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
