//! Where trigger commands go: for every output a rule names, the serial link to its configured
//! `[[output]]` (starting behavd's emulated stimulator on a pseudo-terminal when
//! `port = "emulated"`), or, when no `[[output]]` has that name, the logging sink.
//!
//! The session does not start until every link has connected or its `startup_wait_s` has
//! passed: a required output that is not there fails the session with why; an optional one is
//! warned about and recorded as down from the session start.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use super::gate::ThreadWatch;
use super::trigger_sink::TriggerSink;
use super::workers::Waker;
use crate::config::OutputConfig;
use crate::config::output::OutputProtocol;
use crate::record::loop_records::{LinkEvent, StimulatorDevice, TriggerRecord};
use crate::stim::emulator::{EmulatedStimulator, EmulatorConfig};
use crate::stim::firmata_board::FirmataBoard;
use crate::stim::link::{Link, LinkReport, LinkStats, LinkWaker};
use crate::stim::manual::{ManualInbox, ManualPulses};

/// Trigger commands an output may have queued.
const COMMAND_RING: usize = 256;
/// Link events (pings every 100 ms, acks, inputs at frame rate) queued towards the recorder.
const EVENT_RING: usize = 4096;

/// How the rules thread wakes an output's thread.
pub enum Wake {
    /// Unpark a thread (the logging sink).
    Thread(Arc<Waker>),
    /// Signal an eventfd the link thread polls with its port.
    Fd(Arc<LinkWaker>),
}

impl Wake {
    /// Wakes the output's thread.
    pub fn wake(&self) {
        match self {
            Wake::Thread(w) => w.wake(),
            Wake::Fd(w) => w.wake(),
        }
    }
}

/// The rules thread's end of one output.
pub struct TriggerOutlet {
    /// Commands.
    pub ring: rtrb::Producer<TriggerRecord>,
    /// Its thread.
    pub wake: Wake,
}

enum Handle {
    Sink(JoinHandle<(u64, u64)>),
    Link(JoinHandle<LinkReport>),
}

/// One output's outcome.
pub struct OutputReport {
    /// Output name.
    pub name: String,
    /// Port (or "logging sink").
    pub port: String,
    /// Link counters (None for the logging sink).
    pub stats: Option<Arc<LinkStats>>,
    /// Link report (None for the logging sink).
    pub link: Option<LinkReport>,
    /// The output is `optional = true`.
    pub optional: bool,
    /// It had not connected when the session started (optional outputs only).
    pub down_at_start: bool,
    /// The link counters when the session began (the summary counts from them).
    pub baseline: Option<LinkStats>,
}

/// One running output thread.
struct Running {
    name: String,
    port: String,
    stats: Option<Arc<LinkStats>>,
    handle: Handle,
    waker: Option<Arc<LinkWaker>>,
    optional: bool,
    startup_wait: std::time::Duration,
    down_at_start: bool,
}

/// The running output threads.
pub struct OutputThreads {
    stop: Arc<AtomicBool>,
    halt: Arc<AtomicBool>,
    handles: Vec<Running>,
    emulators: Vec<EmulatedStimulator>,
    boards: Vec<FirmataBoard>,
    /// Triggers handed to an output so far.
    pub sent: Arc<AtomicU64>,
    /// Where manual test pulses go, indexed by output id.
    pub pulses: Vec<super::controls::PulseTarget>,
}

/// The output threads and the rings that connect them.
pub struct StartedOutputs {
    /// The threads.
    pub threads: OutputThreads,
    /// The rules thread's ends, indexed by output id.
    pub outlets: Vec<TriggerOutlet>,
    /// Finished triggers towards the recorder, one ring per output.
    pub records: Vec<rtrb::Consumer<TriggerRecord>>,
    /// Link events towards the recorder, one ring per serial link.
    pub events: Vec<rtrb::Consumer<LinkEvent>>,
    /// The serial outputs as the file's devices show them.
    pub devices: Vec<StimulatorDevice>,
}

/// Starts one thread per output named by the rules (`names`, in rule output-id order) and
/// waits for every serial link to connect (up to its `startup_wait_s`). Returns the threads,
/// the rules thread's outlets and the recorder's rings; fails, with every output thread
/// stopped again, when a required output did not connect in time or `cancel` was set (a
/// signal during set-up) while waiting.
pub fn start_outputs(
    names: &[String],
    configs: &[OutputConfig],
    cancel: &AtomicBool,
    watch: &ThreadWatch,
) -> Result<StartedOutputs> {
    let mut started = spawn_outputs(names, configs, watch)?;
    match started.threads.wait_for_links(cancel) {
        Ok(devices) => {
            started.devices = devices;
            Ok(started)
        }
        Err(e) => {
            started.threads.stop();
            Err(e)
        }
    }
}

fn spawn_outputs(
    names: &[String],
    configs: &[OutputConfig],
    watch: &ThreadWatch,
) -> Result<StartedOutputs> {
    let stop = Arc::new(AtomicBool::new(false));
    let halt = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut threads = OutputThreads {
        stop: Arc::clone(&stop),
        halt: Arc::clone(&halt),
        handles: Vec::new(),
        emulators: Vec::new(),
        boards: Vec::new(),
        sent: Arc::clone(&sent),
        pulses: Vec::new(),
    };
    let mut outlets = Vec::new();
    let mut records = Vec::new();
    let mut events = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let (cmd_tx, cmd_rx) = rtrb::RingBuffer::new(COMMAND_RING);
        let (rec_tx, rec_rx) = rtrb::RingBuffer::new(COMMAND_RING);
        records.push(rec_rx);
        match configs.iter().find(|o| &o.name == name) {
            Some(config) => {
                let firmata = config.protocol == OutputProtocol::Firmata;
                let port = if config.port == "emulated" {
                    let link = std::env::temp_dir().join(format!(
                        "behavd-{}-{}.tty",
                        std::process::id(),
                        config.name
                    ));
                    if firmata {
                        let board = FirmataBoard::start(Some(&link)).with_context(|| {
                            format!("output `{name}`: cannot start the emulated Firmata board")
                        })?;
                        tracing::info!(output = %name, port = %board.port_path(), link = %link.display(), "emulated StandardFirmata board started");
                        threads.boards.push(board);
                    } else {
                        let emulator = EmulatedStimulator::start(EmulatorConfig {
                            link: Some(link.clone()),
                            ..EmulatorConfig::default()
                        })
                        .with_context(|| {
                            format!("output `{name}`: cannot start the emulated stimulator")
                        })?;
                        tracing::info!(output = %name, port = %emulator.port_path(), link = %link.display(), "emulated stimulator started");
                        threads.emulators.push(emulator);
                    }
                    link.display().to_string()
                } else {
                    // A `usb:` selector that matches nothing yet is resolved again on every
                    // connection attempt (the startup wait says so if it never appears).
                    crate::stim::ports::resolve_port(&config.port)
                        .unwrap_or_else(|| config.port.clone())
                };
                let (ev_tx, ev_rx) = rtrb::RingBuffer::new(EVENT_RING);
                events.push(ev_rx);
                let waker = Arc::new(LinkWaker::new().context("eventfd")?);
                let stats = Arc::new(LinkStats::default());
                let manual = Arc::new(ManualPulses::default());
                threads.pulses.push(super::controls::PulseTarget {
                    name: name.clone(),
                    link: Some((Arc::clone(&manual), Arc::clone(&waker))),
                    limits: Some(config.limits.clone()),
                });
                let channels = if config.pins.is_empty() {
                    (0..2).collect()
                } else {
                    config.pins.clone()
                };
                let link = Link {
                    name: name.clone(),
                    port: port.clone(),
                    baud: config.baud_rate(),
                    channels,
                    limits: config.limits.clone(),
                    commands: cmd_rx,
                    recorder: rec_tx,
                    waker: Arc::clone(&waker),
                    stop: Arc::clone(&stop),
                    stats: Arc::clone(&stats),
                    live_sent: Some(Arc::clone(&sent)),
                    events: Some(ev_tx),
                    output_index: index.min(u8::MAX as usize) as u8,
                    byte_ns: if config.port == "emulated" {
                        0
                    } else {
                        10_000_000_000 / config.baud_rate().max(1) as u64
                    },
                    max_age_ns: config.max_trigger_age_ns(),
                    halt: Arc::clone(&halt),
                    heartbeat: Some(watch.heartbeat(&format!("stim-{name}"))),
                    gate: Some(Arc::clone(&watch.gate)),
                    manual: Some(ManualInbox::new(manual)),
                };
                let handle = std::thread::Builder::new()
                    .name(format!("stim-{name}"))
                    .spawn(move || {
                        if firmata {
                            crate::stim::firmata_link::run_firmata(link)
                        } else {
                            link.run()
                        }
                    })
                    .context("cannot start a stimulator link thread")?;
                threads.handles.push(Running {
                    name: name.clone(),
                    port,
                    stats: Some(stats),
                    handle: Handle::Link(handle),
                    waker: Some(Arc::clone(&waker)),
                    optional: config.optional,
                    startup_wait: config.startup_wait(),
                    down_at_start: false,
                });
                outlets.push(TriggerOutlet {
                    ring: cmd_tx,
                    wake: Wake::Fd(waker),
                });
            }
            None => {
                tracing::warn!(output = %name, "no [[output]] named `{name}`: its triggers are logged and recorded, not sent");
                threads.pulses.push(super::controls::PulseTarget {
                    name: name.clone(),
                    link: None,
                    limits: None,
                });
                let waker = Arc::new(Waker::default());
                let sink = TriggerSink {
                    commands: cmd_rx,
                    recorder: rec_tx,
                    waker: Arc::clone(&waker),
                    outputs: names.to_vec(),
                    stop: Arc::clone(&stop),
                    sent: Arc::clone(&sent),
                    heartbeat: watch.heartbeat("stim-sink"),
                };
                let handle = std::thread::Builder::new()
                    .name("stim-sink".into())
                    .spawn(move || sink.run())
                    .context("cannot start the trigger sink")?;
                threads.handles.push(Running {
                    name: name.clone(),
                    port: "logging sink".into(),
                    stats: None,
                    handle: Handle::Sink(handle),
                    waker: None,
                    optional: true,
                    startup_wait: std::time::Duration::ZERO,
                    down_at_start: false,
                });
                outlets.push(TriggerOutlet {
                    ring: cmd_tx,
                    wake: Wake::Thread(waker),
                });
            }
        }
    }
    Ok(StartedOutputs {
        threads,
        outlets,
        records,
        events,
        devices: Vec::new(),
    })
}

impl OutputThreads {
    /// Adds every output's live counters to `telemetry`.
    pub fn register_telemetry(&self, telemetry: &mut crate::telemetry::Telemetry) {
        for r in &self.handles {
            telemetry.add_output(&r.name, r.stats.as_ref());
        }
        telemetry.set_triggers_sent(&self.sent);
    }

    /// Waits until every serial link is connected or its startup wait has passed. A required
    /// output that is not connected by then is an error naming the output, its port and why;
    /// an optional one is warned about and marked down at start. Returns the file's devices.
    fn wait_for_links(&mut self, cancel: &AtomicBool) -> Result<Vec<StimulatorDevice>> {
        let started = std::time::Instant::now();
        let is_up = |r: &Running| {
            r.stats
                .as_ref()
                .is_none_or(|s| s.up.load(Ordering::Acquire))
        };
        if self.handles.iter().any(|r| !is_up(r)) {
            tracing::info!("waiting for the stimulator outputs to connect");
        }
        while self
            .handles
            .iter()
            .any(|r| !is_up(r) && started.elapsed() < r.startup_wait)
        {
            if cancel.load(Ordering::Relaxed) {
                anyhow::bail!("set-up interrupted while waiting for the stimulator outputs");
            }
            std::thread::park_timeout(std::time::Duration::from_millis(5));
        }
        let mut failures = Vec::new();
        let mut devices = Vec::new();
        for (index, r) in self.handles.iter_mut().enumerate() {
            let Some(stats) = &r.stats else { continue };
            let info = stats.info();
            let up = stats.up.load(Ordering::Acquire);
            if !up {
                let why = if info.last_error.is_empty() {
                    "the port opened but the device has not answered (behavd protocol: no \
                     CAPABILITIES after HELLO; Firmata: no firmware report)"
                        .to_string()
                } else {
                    info.last_error.clone()
                };
                let wait = r.startup_wait.as_secs_f64();
                if r.optional {
                    tracing::warn!(
                        output = %r.name,
                        port = %r.port,
                        "stimulator output not connected after {wait} s ({why}); it is optional: \
                         the session runs without it (recorded as an outage from the session \
                         start) and keeps trying to connect"
                    );
                    r.down_at_start = true;
                } else {
                    failures.push(format!(
                        "output `{}` (port {}) did not connect within {wait} s: {why}",
                        r.name, r.port
                    ));
                }
            }
            devices.push(StimulatorDevice {
                output: index.min(u8::MAX as usize) as u8,
                name: r.name.clone(),
                description: if up {
                    format!(
                        "stimulator output `{}` on {}: {}",
                        r.name, r.port, info.firmware
                    )
                } else {
                    format!(
                        "stimulator output `{}` on {}: not connected at the session start",
                        r.name, r.port
                    )
                },
                down_at_start: !up,
            });
        }
        if !failures.is_empty() {
            anyhow::bail!(
                "{}\n(a stimulator output must be connected for the session to start; \
                 set `optional = true` in its [[output]] to run without it, or raise \
                 `startup_wait_s`)",
                failures.join("\n")
            );
        }
        Ok(devices)
    }

    /// Per output: name, port, and the link's live counters (None for the logging sink).
    pub fn links(&self) -> impl Iterator<Item = (&str, &str, Option<&Arc<LinkStats>>)> {
        self.handles
            .iter()
            .map(|r| (r.name.as_str(), r.port.as_str(), r.stats.as_ref()))
    }

    /// Tells every link that the session is stopping: outputs off at once, nothing more sent
    /// (what the rules still decide is recorded as not sent). Returns immediately.
    pub fn halt(&self) {
        self.halt.store(true, Ordering::Release);
        for r in &self.handles {
            if let Some(w) = &r.waker {
                w.wake();
            }
        }
    }

    /// Stops the output threads (after the rules thread: their rings are drained first), then
    /// the emulated stimulators.
    pub fn stop(self) -> Vec<OutputReport> {
        self.stop.store(true, Ordering::Release);
        for r in &self.handles {
            if let Some(w) = &r.waker {
                w.wake();
            }
        }
        let mut reports = Vec::new();
        for r in self.handles {
            let link = match r.handle {
                Handle::Sink(h) => {
                    let _ = h.join();
                    None
                }
                Handle::Link(h) => h.join().ok(),
            };
            reports.push(OutputReport {
                name: r.name,
                port: r.port,
                stats: r.stats,
                link,
                optional: r.optional,
                down_at_start: r.down_at_start,
                baseline: None,
            });
        }
        for emulator in self.emulators {
            emulator.stop();
        }
        for board in self.boards {
            board.stop();
        }
        reports
    }
}
