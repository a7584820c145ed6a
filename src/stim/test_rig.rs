//! A host-side rig around one link thread, shared by the link tests (against the emulated
//! stimulator and the emulated Firmata board) and the hardware-in-the-loop tests (against the
//! reference firmware in simavr): it plays the rules thread (commands in, a wake-up) and the
//! recorder (trigger records and link events out). Waits poll the rig's state with a deadline
//! and panic with what was awaited; nothing sleeps for synchronisation.
//!
//! [`HeldDevice`] is a behavd-protocol device on a real pseudo-terminal that stays silent (does
//! not answer HELLO) until released: a board that never answers, or one that answers late,
//! holding the link in "connecting".

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
    /// Oldest a command may be when written (see [`Link::max_age_ns`]). Default 1 s, so that a
    /// loaded test machine does not turn the rig's commands stale.
    pub max_age: Duration,
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
            max_age: Duration::from_secs(1),
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
    halt: Arc<AtomicBool>,
    /// The link's live counters.
    pub stats: Arc<LinkStats>,
    /// The link's manual-pulse queue (the control plane's end).
    pub manual: Arc<super::manual::ManualPulses>,
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
        let halt = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(LinkStats::default());
        let manual = Arc::new(super::manual::ManualPulses::default());
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
            max_age_ns: config.max_age.as_nanos() as u64,
            halt: Arc::clone(&halt),
            heartbeat: None,
            gate: None,
            manual: Some(super::manual::ManualInbox::new(Arc::clone(&manual))),
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
            halt,
            stats,
            manual,
            thread,
            timeout: config.timeout,
        }
    }

    /// Wakes the link thread (after queueing a manual pulse).
    pub fn wake(&self) {
        self.waker.wake();
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

    /// Tells the link the session is stopping (every output off now), as the session stop does
    /// before it drains the rest.
    pub fn halt(&self) {
        self.halt.store(true, Ordering::Release);
        self.waker.wake();
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

/// A behavd-protocol device on a pseudo-terminal that logs every frame the host sends and
/// answers HELLO with CAPABILITIES (protocol 1, firmware 1.0.0, 2 channels, board `held`) only
/// once [`release`](Self::release)d; until then it is silent. It answers nothing else.
pub struct HeldDevice {
    path: String,
    link: Option<std::path::PathBuf>,
    released: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    received: Arc<std::sync::Mutex<Vec<super::codec::Message>>>,
    outbox: Arc<std::sync::Mutex<Vec<super::codec::Message>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _slave: serialport::TTYPort,
}

impl HeldDevice {
    /// Starts the silent device on a new pty (also reachable at `link`, a symlink, if given).
    pub fn start(link: Option<&std::path::Path>) -> std::io::Result<Self> {
        use serialport::SerialPort;
        let (mut master, slave) = serialport::TTYPort::pair().map_err(std::io::Error::other)?;
        let path = slave.name().unwrap_or_default();
        if let Some(link) = link {
            let _ = std::fs::remove_file(link);
            std::os::unix::fs::symlink(&path, link)?;
        }
        master
            .set_timeout(Duration::from_millis(10))
            .map_err(std::io::Error::other)?;
        let released = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let outbox = Arc::new(std::sync::Mutex::new(Vec::new()));
        let thread = {
            let shared = HeldShared {
                released: Arc::clone(&released),
                stop: Arc::clone(&stop),
                received: Arc::clone(&received),
                outbox: Arc::clone(&outbox),
            };
            std::thread::spawn(move || held_device(master, shared))
        };
        Ok(Self {
            path,
            link: link.map(std::path::Path::to_path_buf),
            released,
            stop,
            received,
            outbox,
            thread: Some(thread),
            _slave: slave,
        })
    }

    /// The pty path the host opens.
    pub fn port_path(&self) -> &str {
        &self.path
    }

    /// From now on HELLO is answered (a HELLO already received is answered at once).
    pub fn release(&self) {
        self.released.store(true, Ordering::Release);
    }

    /// Sends `msg` to the host (e.g. a NACK, to see how the link attributes it).
    pub fn send(&self, msg: super::codec::Message) {
        self.outbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(msg);
    }

    /// Every frame received from the host so far.
    pub fn received(&self) -> Vec<super::codec::Message> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for HeldDevice {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(link) = &self.link {
            let _ = std::fs::remove_file(link);
        }
    }
}

struct HeldShared {
    released: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    received: Arc<std::sync::Mutex<Vec<super::codec::Message>>>,
    outbox: Arc<std::sync::Mutex<Vec<super::codec::Message>>>,
}

fn held_device(mut port: serialport::TTYPort, shared: HeldShared) {
    let HeldShared {
        released,
        stop,
        received,
        outbox,
    } = shared;
    use super::codec::{FrameDecoder, Message};
    use std::io::{Read, Write};
    let mut decoder = FrameDecoder::new();
    let mut hello_waiting = false;
    let mut buf = [0u8; 256];
    let mut out = [0u8; 80];
    while !stop.load(Ordering::Relaxed) {
        if let Ok(n) = port.read(&mut buf) {
            for msg in decoder.feed(&buf[..n]).flatten() {
                hello_waiting |= matches!(msg, Message::Hello { .. });
                received.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
            }
        }
        if hello_waiting && released.load(Ordering::Acquire) {
            hello_waiting = false;
            let n = Message::Capabilities {
                protocol: 1,
                fw_major: 1,
                fw_minor: 0,
                fw_patch: 0,
                channels: 2,
                inputs: 0,
                tick_ns: 500,
                board: *b"held\0\0\0\0",
            }
            .encode(&mut out);
            let _ = port.write_all(&out[..n]);
        }
        let queued: Vec<Message> =
            std::mem::take(&mut *outbox.lock().unwrap_or_else(|e| e.into_inner()));
        for msg in queued {
            let n = msg.encode(&mut out);
            let _ = port.write_all(&out[..n]);
        }
    }
}
