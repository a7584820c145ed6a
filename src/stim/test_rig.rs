//! A host-side rig around one link thread, shared by the link tests (against the emulated
//! stimulator and the emulated Firmata board) and the hardware-in-the-loop tests (against the
//! reference firmware in simavr): it plays the rules thread (commands in, a wake-up) and the
//! recorder (trigger records and link events out). Waits poll the rig's state with a deadline
//! and panic with what was awaited; nothing sleeps for synchronisation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::link::{Link, LinkReport, LinkStats, LinkWaker};
use crate::clock::monotonic_ns;
use crate::config::output::{OutputLimits, OutputProtocol};
use crate::record::loop_records::{LinkEvent, TriggerRecord};

/// How the rig's link is set up.
#[derive(Debug, Clone)]
pub struct RigConfig {
    /// Port path.
    pub port: String,
    /// Protocol of the link thread.
    pub protocol: OutputProtocol,
    /// Channel → device channel (behavd) or Arduino pin (Firmata).
    pub channels: Vec<u8>,
    /// Limits.
    pub limits: OutputLimits,
    /// Wire time of one byte (see [`Link::byte_ns`]).
    pub byte_ns: u64,
    /// How long every wait may take before it panics.
    pub timeout: Duration,
}

impl RigConfig {
    /// A behavd-protocol link to `port` with channels 0 and 1, default limits, 10 s waits.
    pub fn new(port: impl Into<String>) -> Self {
        Self {
            port: port.into(),
            protocol: OutputProtocol::Behavd,
            channels: vec![0, 1],
            limits: OutputLimits::default(),
            byte_ns: 0,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A running link thread and the rig's ends of its rings.
pub struct LinkRig {
    commands: rtrb::Producer<TriggerRecord>,
    records: rtrb::Consumer<TriggerRecord>,
    events: rtrb::Consumer<LinkEvent>,
    waker: Arc<LinkWaker>,
    stop: Arc<AtomicBool>,
    /// The link's live counters.
    pub stats: Arc<LinkStats>,
    thread: Option<std::thread::JoinHandle<LinkReport>>,
    timeout: Duration,
}

impl LinkRig {
    /// Starts the link thread.
    pub fn start(config: RigConfig) -> Self {
        let (commands, cmd_rx) = rtrb::RingBuffer::new(64);
        let (rec_tx, records) = rtrb::RingBuffer::new(64);
        let (event_tx, events) = rtrb::RingBuffer::new(4096);
        let waker = Arc::new(LinkWaker::new().expect("eventfd"));
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(LinkStats::default());
        let link = Link {
            name: "rig".into(),
            port: config.port,
            baud: 115_200,
            channels: config.channels,
            limits: config.limits,
            commands: cmd_rx,
            recorder: rec_tx,
            waker: Arc::clone(&waker),
            stop: Arc::clone(&stop),
            stats: Arc::clone(&stats),
            live_sent: None,
            events: Some(event_tx),
            output_index: 0,
            byte_ns: config.byte_ns,
        };
        let thread = Some(std::thread::spawn(move || match config.protocol {
            OutputProtocol::Behavd => link.run(),
            OutputProtocol::Firmata => super::firmata_link::run_firmata(link),
        }));
        Self {
            commands,
            records,
            events,
            waker,
            stop,
            stats,
            thread,
            timeout: config.timeout,
        }
    }

    /// Queues a train as the rules thread would (decided now) and wakes the link.
    pub fn send_us(&mut self, channel: u8, width_us: u64, pulses: u16, period_us: u64) {
        let now = monotonic_ns();
        self.commands
            .push(TriggerRecord {
                channel,
                pulse_width_ns: width_us * 1000,
                pulses,
                period_ns: period_us * 1000,
                capture_ns: now,
                decision_ns: now,
                ..TriggerRecord::default()
            })
            .expect("command ring full");
        self.waker.wake();
    }

    /// [`send_us`](Self::send_us) in milliseconds.
    pub fn send(&mut self, channel: u8, width_ms: u64, pulses: u16, period_ms: u64) {
        self.send_us(channel, width_ms * 1000, pulses, period_ms * 1000);
    }

    /// The next finished trigger record.
    pub fn next_record(&mut self) -> TriggerRecord {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Ok(r) = self.records.pop() {
                return r;
            }
            assert!(Instant::now() < deadline, "no trigger record in time");
            std::thread::park_timeout(Duration::from_millis(2));
        }
    }

    /// Every link event queued so far.
    pub fn take_events(&mut self) -> Vec<LinkEvent> {
        let mut v = Vec::new();
        while let Ok(e) = self.events.pop() {
            v.push(e);
        }
        v
    }

    /// Waits until `cond` holds for the link's counters.
    pub fn wait_for(&self, what: &str, cond: impl Fn(&LinkStats) -> bool) {
        let deadline = Instant::now() + self.timeout;
        while !cond(&self.stats) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::park_timeout(Duration::from_millis(2));
        }
    }

    /// Waits for the `n`-th successful connection.
    pub fn wait_connects(&self, n: u64) {
        self.wait_for(&format!("connection {n}"), |s| {
            s.connects.load(Ordering::Relaxed) >= n
        });
    }

    /// Stops the link thread (the command ring is drained first) and returns its report.
    pub fn stop(self) -> LinkReport {
        self.stop_with_records().0
    }

    /// [`stop`](Self::stop), also returning the trigger records not taken yet.
    pub fn stop_with_records(mut self) -> (LinkReport, Vec<TriggerRecord>) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
        let report = self
            .thread
            .take()
            .expect("running")
            .join()
            .expect("link thread panicked");
        let mut records = Vec::new();
        while let Ok(r) = self.records.pop() {
            records.push(r);
        }
        (report, records)
    }
}

/// Waits until `cond` holds, polling every 2 ms; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(2));
    }
}
