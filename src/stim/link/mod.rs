//! The serial link to one stimulator (behavd protocol v1) on its own thread.
//!
//! It waits in `poll(2)` on the port and on an eventfd that the rules thread signals when a
//! trigger command is queued, so a command is written the moment it leaves the rules ring.
//! Before anything reaches the wire the daemon-side limits (maximum on time, duty cycle,
//! per-channel refractory period) are applied. Acknowledgements (`PULSE_DONE`) are matched to
//! their command by sequence number; device edge times are mapped to the host clock through a
//! continuously refitted ping/pong clock fit. When the port vanishes (USB unplug, emulator
//! restart) the link reconnects with backoff, re-sends the safety configuration and clears
//! latched faults; commands arriving meanwhile are recorded as not sent. A command older than
//! the output's maximum trigger age when it could be written (the link was connecting) is
//! recorded as stale and never sent. When the session stops, the link sends STOP_ALL at once,
//! records the pulse that cut, and sends nothing more. Unacknowledged trains are counted and
//! warned about (rate-limited); a NACK matching no outstanding command is recorded as stray.
//! Nothing here allocates per command.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::codec::{FrameDecoder, Message};
use super::limits::DaemonLimits;
pub use super::wake::LinkWaker;
use super::wake::{Readiness, wait_readable};
use crate::clock::device_fit::{DeviceClockFit, SyncSample};
use crate::clock::monotonic_ns;
use crate::config::output::OutputLimits;
use crate::record::loop_records::{LinkEvent, LinkEventKind, TriggerRecord, TriggerStatus};

/// Time between pings (clock sync).
const PING_INTERVAL_NS: u64 = 100_000_000;
/// How long to wait for CAPABILITIES after HELLO.
const HELLO_TIMEOUT_NS: u64 = 2_000_000_000;
/// A sent train with no final acknowledgement this long after its expected end is recorded as
/// unacknowledged.
const ACK_GRACE_NS: u64 = 1_000_000_000;
/// Commands in flight at once (sequence-number window).
const IN_FLIGHT: usize = 64;
/// Sequence numbers from here up are the link's own configuration commands (SET_SAFETY,
/// STOP_ALL, CLEAR_FAULTS), never triggers.
const CONFIG_SEQ_BASE: u16 = 60000;

/// Whether a command is too old to be written now (decided more than `max_age_ns` ago).
pub fn is_stale(cmd: &TriggerRecord, now_ns: u64, max_age_ns: u64) -> bool {
    cmd.decision_ns > 0 && now_ns.saturating_sub(cmd.decision_ns) > max_age_ns
}

/// What a link thread reports when it ends.
pub struct LinkReport {
    /// The device clock fit at the end (None if never fitted).
    pub fit: Option<crate::clock::device_fit::FitQuality>,
    /// Rule decision → command written to the port, ns.
    pub decision_to_write: hdrhistogram::Histogram<u64>,
    /// Rule decision → the device's rising edge (mapped to the host clock), ns; empty for a
    /// host-timed link.
    pub decision_to_edge: hdrhistogram::Histogram<u64>,
    /// Pulses were timed by the host (Firmata): no device edges, no acknowledgement.
    pub host_timed: bool,
}

/// Everything the link thread owns.
pub struct Link {
    /// Output name (for logs).
    pub name: String,
    /// Port path (already resolved).
    pub port: String,
    /// Baud rate.
    pub baud: u32,
    /// Channel → firmware channel.
    pub channels: Vec<u8>,
    /// Daemon-side and device-side limits.
    pub limits: OutputLimits,
    /// Trigger commands from the rules thread.
    pub commands: rtrb::Consumer<TriggerRecord>,
    /// Completed triggers to the recorder.
    pub recorder: rtrb::Producer<TriggerRecord>,
    /// Woken by the rules thread.
    pub waker: Arc<LinkWaker>,
    /// Set to stop (after the rules thread has stopped: the ring is drained first).
    pub stop: Arc<AtomicBool>,
    /// Live counters.
    pub stats: Arc<LinkStats>,
    /// A session-wide live count of triggers sent, also incremented.
    pub live_sent: Option<Arc<AtomicU64>>,
    /// Link events towards the recorder (connections, faults, inputs, clock samples, acks).
    pub events: Option<rtrb::Producer<LinkEvent>>,
    /// This output's index in the file's output list.
    pub output_index: u8,
    /// Time one byte takes on the wire (10 bits / baud for a UART; 0 for a pseudo-terminal or
    /// native USB). Clock-sync samples are corrected for the PING and PONG transmission times.
    pub byte_ns: u64,
    /// Oldest a command may be (since its decision) when written; older ones are recorded as
    /// stale and never sent.
    pub max_age_ns: u64,
    /// Set when the session starts stopping: the link turns every output off at once, records
    /// what that cut, and sends nothing more (commands still arriving are recorded as not sent).
    pub halt: Arc<AtomicBool>,
    /// This thread's progress mark, beaten each time round the loop (None: not watched).
    pub heartbeat: Option<Arc<crate::heartbeat::Heartbeat>>,
    /// Where the session starts: the latency distributions restart when it begins (None: the
    /// whole run is the session).
    pub gate: Option<Arc<crate::clock::SessionGate>>,
    /// Manual test pulses from the control plane (None: this output takes none).
    pub manual: Option<super::manual::ManualInbox>,
}

impl Link {
    /// Once per loop: beats the heartbeat and, the first time the session has begun, restarts
    /// the latency distributions so the report covers the session only.
    pub(crate) fn tick(&self, session_seen: &mut bool, report: &mut LinkReport) {
        if let Some(h) = &self.heartbeat {
            h.beat();
        }
        if !*session_seen && self.gate.as_ref().is_none_or(|g| g.is_open()) {
            *session_seen = true;
            report.decision_to_write.reset();
            report.decision_to_edge.reset();
        }
    }
}

#[derive(Clone, Copy)]
struct Pending {
    record: TriggerRecord,
    due_ns: u64,
    in_use: bool,
}

/// A freshly opened, greeted and armed port.
struct Connected {
    port: serialport::TTYPort,
    firmware: (u8, u8, u8),
    channels: u8,
    /// The device's description of itself, for the file's devices.
    description: String,
}

/// Sequence number of the STOP_ALL the link sends when the session stops.
const HALT_SEQ: u16 = 60998;
/// How long the stopping link waits for the device to confirm STOP_ALL (and acknowledge the
/// pulses it cut) before it records what is still outstanding.
const HALT_CONFIRM_NS: u64 = 300_000_000;

enum Port {
    Down,
    Up(serialport::TTYPort),
}

impl Link {
    /// Runs until stopped; returns the clock-fit quality and latency distributions.
    pub fn run(mut self) -> LinkReport {
        crate::realtime::enter(crate::realtime::Role::Link);
        let h = || {
            hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000_000, 3)
                .expect("valid bounds")
        };
        let mut report = LinkReport {
            fit: None,
            decision_to_write: h(),
            decision_to_edge: h(),
            host_timed: false,
        };
        let mut fit = DeviceClockFit::new(32, 5_000_000);
        let mut decoder = FrameDecoder::new();
        let mut port = Port::Down;
        let mut pending = [Pending {
            record: TriggerRecord::default(),
            due_ns: 0,
            in_use: false,
        }; IN_FLIGHT];
        let mut budgets = DaemonLimits::new(self.limits.clone(), self.channels.len());
        let mut seq: u16 = 0;
        let mut next_ping_ns = 0u64;
        let mut ping: Option<(u32, u64)> = None;
        let mut token: u32 = 0;
        let mut last_tx_ns = 0u64;
        let mut backoff_ns = 10_000_000u64;
        let mut next_connect_ns = 0u64;
        let mut buf = [0u8; 256];
        let mut out = [0u8; 80];
        // When the halt (STOP_ALL) was sent, and whether the device confirmed it.
        let mut halted_ns: Option<u64> = None;
        let mut halt_confirmed = false;
        let mut unacked_warn = RateLimitedWarn::default();
        let mut session_seen = false;
        loop {
            self.tick(&mut session_seen, &mut report);
            let now = monotonic_ns();
            let stopping = self.stop.load(Ordering::Acquire);
            // Only the session's halt sends STOP_ALL: a link told to stop without it goes silent
            // (the device's watchdog then acts, as it would if behavd died).
            if halted_ns.is_none() && self.halt.load(Ordering::Acquire) {
                halted_ns = Some(now);
                if let Port::Up(p) = &mut port {
                    let n = Message::StopAll { seq: HALT_SEQ }.encode(&mut out);
                    let _ = p.write_all(&out[..n]);
                    last_tx_ns = monotonic_ns();
                } else {
                    halt_confirmed = true;
                }
                // What is still running now is ended by the stop, not lost.
                for slot in pending
                    .iter_mut()
                    .filter(|s| s.in_use && now + ACK_GRACE_NS < s.due_ns)
                {
                    slot.record.flags |= super::codec::pulse_flag::CANCELLED;
                }
            }
            // (Re)connect.
            if matches!(port, Port::Down) && now >= next_connect_ns && !stopping {
                match self.connect(&mut decoder, &mut fit) {
                    Ok(Connected {
                        port: p,
                        firmware: fw,
                        channels,
                        description,
                    }) => {
                        port = Port::Up(p);
                        self.stats.connected(description);
                        let version = fw.0 as i64 * 10_000 + fw.1 as i64 * 100 + fw.2 as i64;
                        self.event(
                            LinkEventKind::Connected,
                            0,
                            None,
                            version,
                            channels as i64,
                            0,
                        );
                        backoff_ns = 10_000_000;
                        last_tx_ns = monotonic_ns();
                    }
                    Err(e) => {
                        tracing::debug!(output = %self.name, error = %e, "stimulator not reachable");
                        self.stats.connect_failed(&e);
                        next_connect_ns = now + backoff_ns;
                        backoff_ns = (backoff_ns * 2).min(1_000_000_000);
                    }
                }
            }
            // Commands.
            let mut drained = true;
            while let Some(mut cmd) = self.next_command() {
                drained = false;
                let now = monotonic_ns();
                if halted_ns.is_some() {
                    cmd.status = TriggerStatus::Stopping as u8;
                    self.stats.stopping.fetch_add(1, Ordering::Relaxed);
                    self.record(cmd, None);
                    continue;
                }
                let Port::Up(p) = &mut port else {
                    cmd.status = TriggerStatus::LinkDown as u8;
                    self.stats.link_down.fetch_add(1, Ordering::Relaxed);
                    self.record(cmd, None);
                    continue;
                };
                if is_stale(&cmd, now, self.max_age_ns) {
                    cmd.status = TriggerStatus::Stale as u8;
                    self.stats.stale.fetch_add(1, Ordering::Relaxed);
                    self.record(cmd, None);
                    continue;
                }
                let ch = cmd.channel as usize;
                if let Some(reason) = budgets.violation(&cmd, now) {
                    tracing::warn!(output = %self.name, channel = ch, reason, "trigger blocked by daemon-side limit");
                    cmd.status = TriggerStatus::Blocked as u8;
                    self.stats.blocked.fetch_add(1, Ordering::Relaxed);
                    self.record(cmd, Some(reason));
                    continue;
                }
                // Trigger sequence numbers stay below the configuration commands'.
                seq = if seq + 1 >= CONFIG_SEQ_BASE {
                    1
                } else {
                    seq + 1
                };
                let msg = Message::Pulse {
                    seq,
                    channel: self.channels.get(ch).copied().unwrap_or(cmd.channel),
                    width_us: (cmd.pulse_width_ns / 1000).max(1) as u32,
                    count: cmd.pulses.max(1),
                    period_us: (cmd.period_ns / 1000) as u32,
                };
                let n = msg.encode(&mut out);
                if p.write_all(&out[..n]).is_err() {
                    cmd.status = TriggerStatus::LinkDown as u8;
                    self.stats.link_down.fetch_add(1, Ordering::Relaxed);
                    self.record(cmd, None);
                    port = Port::Down;
                    next_connect_ns = monotonic_ns();
                    continue;
                }
                cmd.sent_ns = monotonic_ns();
                let _ = report
                    .decision_to_write
                    .record(cmd.sent_ns.saturating_sub(cmd.decision_ns).max(1));
                self.stats
                    .telemetry
                    .decision_to_write
                    .record(cmd.sent_ns.saturating_sub(cmd.decision_ns));
                last_tx_ns = cmd.sent_ns;
                cmd.status = TriggerStatus::Sent as u8;
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                if let Some(live) = &self.live_sent {
                    live.fetch_add(1, Ordering::Relaxed);
                }
                let train_ns = cmd.period_ns * (cmd.pulses.max(1) as u64 - 1) + cmd.pulse_width_ns;
                budgets.commit(&cmd, cmd.sent_ns);
                let slot = &mut pending[seq as usize % IN_FLIGHT];
                if slot.in_use {
                    // Window wrapped: record the old one unacknowledged.
                    self.stats.unacked.fetch_add(1, Ordering::Relaxed);
                    unacked_warn.note(&self.name, monotonic_ns());
                    self.record(slot.record, None);
                }
                *slot = Pending {
                    record: cmd,
                    due_ns: cmd.sent_ns + train_ns + ACK_GRACE_NS,
                    in_use: true,
                };
                slot.record.seq = seq;
            }
            let awaiting_halt = matches!(port, Port::Up(_))
                && !halt_confirmed
                && halted_ns.is_some_and(|t| monotonic_ns() < t + HALT_CONFIRM_NS);
            if stopping && drained && !awaiting_halt {
                break;
            }
            let Port::Up(p) = &mut port else {
                self.sleep_until(next_connect_ns.min(monotonic_ns() + 50_000_000));
                continue;
            };
            // Keep-alive and clock sync.
            let now = monotonic_ns();
            if now >= next_ping_ns {
                token = token.wrapping_add(1);
                let n = Message::Ping { token }.encode(&mut out);
                if p.write_all(&out[..n]).is_ok() {
                    // The device reads its clock when the whole PING has arrived.
                    ping = Some((token, monotonic_ns() + n as u64 * self.byte_ns));
                    last_tx_ns = now;
                }
                next_ping_ns = now + PING_INTERVAL_NS;
            } else if now - last_tx_ns > self.limits.watchdog_ms as u64 * 250_000 {
                let n = Message::HostHeartbeat.encode(&mut out);
                let _ = p.write_all(&out[..n]);
                last_tx_ns = now;
            }
            // Expired trains.
            for slot in pending.iter_mut().filter(|s| s.in_use && now > s.due_ns) {
                slot.in_use = false;
                self.stats.unacked.fetch_add(1, Ordering::Relaxed);
                unacked_warn.note(&self.name, now);
                self.record(slot.record, None);
            }
            // Wait for bytes or a command.
            match wait_readable(p.as_raw_fd(), self.waker.fd(), 20) {
                Readiness::Port => match p.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        tracing::warn!(output = %self.name, port = %self.port, "stimulator port vanished; reconnecting");
                        self.went_down();
                        port = Port::Down;
                        self.event(LinkEventKind::Disconnected, 0, None, 0, 0, 0);
                        next_connect_ns = monotonic_ns();
                    }
                    Ok(n) => {
                        let t_recv = monotonic_ns();
                        for msg in decoder.feed(&buf[..n]) {
                            let Ok(msg) = msg else {
                                self.stats.frames_bad.fetch_add(1, Ordering::Relaxed);
                                continue;
                            };
                            // Latched faults that refuse pulses: the watchdog (bit 0: the device
                            // cut the outputs because it missed us — host stalled or bytes
                            // delayed) and receive overflow (bit 3). The device already acted;
                            // re-arm so the next trigger is not refused. Counted and logged.
                            let tripped = matches!(msg, Message::Fault { code: 1 | 4, .. })
                                || matches!(msg, Message::DeviceHeartbeat { faults, .. } if faults & 0b1001 != 0);
                            let mapped = |us: u64| fit.to_host_ns(us).unwrap_or(0);
                            match msg {
                                Message::Fault {
                                    code,
                                    channel,
                                    device_us,
                                    detail,
                                } => self.event(
                                    LinkEventKind::Fault,
                                    mapped(device_us),
                                    Some(device_us),
                                    code as i64,
                                    channel as i64,
                                    detail as i64,
                                ),
                                Message::InputEvent {
                                    input,
                                    level,
                                    device_us,
                                    count,
                                } => self.event(
                                    LinkEventKind::Input,
                                    mapped(device_us),
                                    Some(device_us),
                                    input as i64,
                                    level as i64,
                                    count as i64,
                                ),
                                Message::Nack { seq, reason } => {
                                    let slot = &pending[seq as usize % IN_FLIGHT];
                                    let ours = (slot.in_use && slot.record.seq == seq)
                                        || seq >= CONFIG_SEQ_BASE;
                                    let kind = if ours {
                                        LinkEventKind::Nack
                                    } else {
                                        self.stray_nack(seq, reason);
                                        LinkEventKind::StrayNack
                                    };
                                    self.event(kind, 0, None, seq as i64, reason as i64, 0);
                                }
                                Message::Ok { seq: HALT_SEQ, .. } => halt_confirmed = true,
                                Message::PulseDone {
                                    seq,
                                    index,
                                    rise_us,
                                    fall_us,
                                    ..
                                } => self.event(
                                    LinkEventKind::PulseAck,
                                    mapped(rise_us),
                                    Some(rise_us),
                                    seq as i64,
                                    index as i64,
                                    fall_us.saturating_sub(rise_us) as i64,
                                ),
                                _ => {}
                            }
                            let pong_rtt = match (msg, ping) {
                                (Message::Pong { token, device_us }, Some((t, t_send)))
                                    if t == token =>
                                {
                                    Some((device_us, t_recv.saturating_sub(t_send)))
                                }
                                _ => None,
                            };
                            let accepted_before = self.stats.sync_samples.load(Ordering::Relaxed);
                            if tripped {
                                let bits = match msg {
                                    Message::DeviceHeartbeat { faults, .. } => faults as i64,
                                    Message::Fault { code, .. } => code as i64,
                                    _ => 0,
                                };
                                self.event(LinkEventKind::Rearm, 0, None, bits, 0, 0);
                                tracing::warn!(output = %self.name, ?msg, "stimulator latched a fault; clearing it");
                                let n = Message::ClearFaults { seq: 60999 }.encode(&mut out);
                                let _ = p.write_all(&out[..n]);
                                self.stats.rearms.fetch_add(1, Ordering::Relaxed);
                            }
                            let done = self.handle(msg, t_recv, &mut fit, &mut ping, &mut pending);
                            if let Some((device_us, rtt)) = pong_rtt {
                                let accepted = self.stats.sync_samples.load(Ordering::Relaxed)
                                    > accepted_before;
                                self.stats.telemetry.round_trip.record(rtt);
                                if accepted {
                                    self.stats
                                        .telemetry
                                        .set_residual_us(fit.quality().residual_us);
                                }
                                self.event(
                                    LinkEventKind::ClockSync,
                                    t_recv.saturating_sub(rtt / 2),
                                    Some(device_us),
                                    rtt as i64,
                                    accepted as i64,
                                    0,
                                );
                            }
                            if let Some(done) = done {
                                if done.ack_rise_ns > done.decision_ns {
                                    let _ = report
                                        .decision_to_edge
                                        .record(done.ack_rise_ns - done.decision_ns);
                                }
                                self.record(done, None);
                            }
                        }
                    }
                },
                Readiness::Hangup => {
                    tracing::warn!(output = %self.name, port = %self.port, "stimulator port hung up; reconnecting");
                    self.went_down();
                    port = Port::Down;
                    self.event(LinkEventKind::Disconnected, 0, None, 0, 0, 0);
                    next_connect_ns = monotonic_ns() + 10_000_000;
                }
                Readiness::Waker => self.waker.drain(),
                Readiness::Timeout => {}
            }
        }
        for slot in pending.iter_mut().filter(|s| s.in_use) {
            slot.in_use = false;
            if slot.record.flags & super::codec::pulse_flag::CANCELLED == 0 {
                self.stats.unacked.fetch_add(1, Ordering::Relaxed);
                unacked_warn.note(&self.name, monotonic_ns());
            }
            self.record(slot.record, None);
        }
        unacked_warn.flush(&self.name);
        self.stats.up.store(false, Ordering::Release);
        report.fit = fit.is_fitted().then(|| fit.quality());
        report
    }

    /// The next command: the rules thread's first, then a manual test pulse.
    pub(crate) fn next_command(&mut self) -> Option<TriggerRecord> {
        if let Ok(cmd) = self.commands.pop() {
            return Some(cmd);
        }
        self.manual.as_mut().and_then(|m| m.take())
    }

    /// Hands a finished command to the recorder (and a manual pulse's outcome to its caller).
    pub(crate) fn record(&mut self, cmd: TriggerRecord, blocked_by: Option<&'static str>) {
        let _ = self.recorder.push(cmd);
        if let Some(m) = &mut self.manual {
            m.finish(&cmd, blocked_by);
        }
    }

    /// The link was up and is not any more.
    fn went_down(&self) {
        self.stats.up.store(false, Ordering::Release);
        self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        self.stats.telemetry.set_residual_us(f64::NAN);
    }

    /// A refusal that matches no outstanding command: counted and logged (debug; the summary
    /// gives the count), never attributed to a trigger.
    fn stray_nack(&self, seq: u16, reason: u8) {
        self.stats.stray_nacks.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            output = %self.name,
            seq,
            reason = super::codec::nack::name(reason),
            "stimulator refusal matches no outstanding command (stray)"
        );
    }

    /// Queues a link event for the file (dropped and counted if the recorder is behind).
    pub(super) fn event(
        &mut self,
        kind: LinkEventKind,
        host_ns: u64,
        device_us: Option<u64>,
        a: i64,
        b: i64,
        c: i64,
    ) {
        let e = LinkEvent {
            output: self.output_index,
            kind: kind as u8,
            host_ns,
            received_ns: monotonic_ns(),
            device_us: device_us.unwrap_or(u64::MAX),
            a,
            b,
            c,
        };
        if let Some(ring) = &mut self.events
            && ring.push(e).is_err()
        {
            self.stats.events_lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn sleep_until(&self, deadline_ns: u64) {
        let now = monotonic_ns();
        if deadline_ns > now {
            let _ = wait_readable(
                -1,
                self.waker.fd(),
                ((deadline_ns - now) / 1_000_000) as i32,
            );
            self.waker.drain();
        }
    }
}

mod connect;
mod handle;
mod stats;

use stats::RateLimitedWarn;
pub use stats::{LinkInfo, LinkStats};
