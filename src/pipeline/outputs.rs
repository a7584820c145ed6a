//! Where trigger commands go: for every output a rule names, the serial link to its configured
//! `[[output]]` (starting behavd's emulated stimulator on a pseudo-terminal when
//! `port = "emulated"`), or, when no `[[output]]` has that name, the logging sink.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use super::trigger_sink::TriggerSink;
use super::workers::Waker;
use crate::config::OutputConfig;
use crate::config::output::OutputProtocol;
use crate::record::loop_records::{LinkEvent, TriggerRecord};
use crate::stim::emulator::{EmulatedStimulator, EmulatorConfig};
use crate::stim::firmata_board::FirmataBoard;
use crate::stim::link::{Link, LinkReport, LinkStats, LinkWaker};

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
}

/// The running output threads.
pub struct OutputThreads {
    stop: Arc<AtomicBool>,
    handles: Vec<(String, String, Option<Arc<LinkStats>>, Handle)>,
    emulators: Vec<EmulatedStimulator>,
    boards: Vec<FirmataBoard>,
    /// Triggers handed to an output so far.
    pub sent: Arc<AtomicU64>,
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
}

/// Starts one thread per output named by the rules (`names`, in rule output-id order).
/// Returns the threads, the rules thread's outlets and the recorder's rings.
pub fn start_outputs(names: &[String], configs: &[OutputConfig]) -> Result<StartedOutputs> {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut threads = OutputThreads {
        stop: Arc::clone(&stop),
        handles: Vec::new(),
        emulators: Vec::new(),
        boards: Vec::new(),
        sent: Arc::clone(&sent),
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
                    crate::stim::ports::resolve_port(&config.port).with_context(|| {
                        format!(
                            "output `{name}`: no serial port with USB serial number `{}`",
                            config.port
                        )
                    })?
                };
                let (ev_tx, ev_rx) = rtrb::RingBuffer::new(EVENT_RING);
                events.push(ev_rx);
                let waker = Arc::new(LinkWaker::new().context("eventfd")?);
                let stats = Arc::new(LinkStats::default());
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
                threads
                    .handles
                    .push((name.clone(), port, Some(stats), Handle::Link(handle)));
                outlets.push(TriggerOutlet {
                    ring: cmd_tx,
                    wake: Wake::Fd(waker),
                });
            }
            None => {
                tracing::warn!(output = %name, "no [[output]] named `{name}`: its triggers are logged and recorded, not sent");
                let waker = Arc::new(Waker::default());
                let sink = TriggerSink {
                    commands: cmd_rx,
                    recorder: rec_tx,
                    waker: Arc::clone(&waker),
                    outputs: names.to_vec(),
                    stop: Arc::clone(&stop),
                    sent: Arc::clone(&sent),
                };
                let handle = std::thread::Builder::new()
                    .name("stim-sink".into())
                    .spawn(move || sink.run())
                    .context("cannot start the trigger sink")?;
                threads.handles.push((
                    name.clone(),
                    "logging sink".into(),
                    None,
                    Handle::Sink(handle),
                ));
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
    })
}

impl OutputThreads {
    /// Stops the output threads (after the rules thread: their rings are drained first), then
    /// the emulated stimulators.
    pub fn stop(self) -> Vec<OutputReport> {
        self.stop.store(true, Ordering::Release);
        let mut reports = Vec::new();
        for (name, port, stats, handle) in self.handles {
            let link = match handle {
                Handle::Sink(h) => {
                    let _ = h.join();
                    None
                }
                Handle::Link(h) => h.join().ok(),
            };
            reports.push(OutputReport {
                name,
                port,
                stats,
                link,
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
