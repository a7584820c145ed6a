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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
pub(super) struct Shared {
    edges: Vec<Edge>,
    levels: Vec<u8>,
    faults: u8,
    rx_errors: u16,
    frames_ok: u64,
    frames_dropped_tx: u64,
}

pub(super) enum Event {
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

pub(super) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
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
            crate::cleanup::remove_at_abort(link);
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
        let chunks_read = Arc::new(AtomicU64::new(0));
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
                Box::new({
                    let chunks_read = Arc::clone(&chunks_read);
                    move || reader(reader_port, clock, ev_tx, stop, chunks_read)
                }),
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
            let core = Core::new(cfg, clock, shared.clone(), out_tx, chunks_read);
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

/// Reads the host's bytes and stamps each chunk on the device clock. `chunks_read` is counted
/// *before* the stamp: a core whose wait times out at a deadline then knows a chunk stamped
/// before that deadline may still be on its way, and waits for it (a frame that arrived in time
/// must feed the watchdog even if this thread was descheduled between the stamp and the send).
fn reader(
    mut port: TTYPort,
    clock: DeviceClock,
    events: Sender<Event>,
    stop: Arc<AtomicBool>,
    chunks_read: Arc<AtomicU64>,
) {
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        match port.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => {
                chunks_read.fetch_add(1, Ordering::SeqCst);
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

mod core;
use self::core::Core;
#[cfg(test)]
use self::core::max_window_on_time;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_link;
#[cfg(test)]
mod tests_safety;

/// Tests that time a real-time emulator run one at a time: on a 2-core machine a dozen
/// emulators and their hosts in parallel starve each other's threads for longer than the
/// watchdogs under test.
#[cfg(test)]
pub(crate) fn test_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
