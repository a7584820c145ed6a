//! The Firmata link: an unmodified Arduino running StandardFirmata as a stimulator, for a lab
//! with nothing else. The lower-precision option: the board has no clock, no acknowledgement
//! and no watchdog, so behavd times every pin edge itself and records when it wrote it.
//!
//! On connect the link asks for the firmware (`F0 79 F7`, waiting up to 5 s: an Uno resets
//! when its port is opened and StandardFirmata reports itself once booted), makes every mapped
//! pin an OUTPUT and drives it low. A trigger's train is then written edge by edge: each rise
//! at its place on the train's grid (written the moment the command leaves the rules ring;
//! later rises `period` apart from when the first was written), each fall `width` after its
//! rise was written, never earlier; the thread waits in
//! `ppoll(2)` with nanosecond timeouts between edges. Every pulse is recorded as a link event
//! with the host write times, and the trigger row gets status "host-timed". The daemon-side
//! limits (maximum on time, duty cycle, refractory) apply as for the behavd protocol; the
//! link's report has no decision → device edge distribution (`host_timed`). On
//! stop, on a port error and before reconnecting, every pin is driven low; a train still
//! running is cut. At the session stop (the halt, before anything else drains) a pulse that was
//! high is recorded with its real rise and the all-low's time (event kind "cut by stop") and
//! counted; triggers arriving afterwards are recorded as not sent. A trigger whose first rise
//! cannot be written within the output's maximum trigger age (the board still booting, the
//! link reconnecting) is recorded as stale and never written. Nothing allocates per trigger.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use super::firmata::{FirmataClient, FirmataEvent, FirmataParser, PinMode, query_firmware};
use super::limits::DaemonLimits;
use super::link::{Link, LinkReport, is_stale};
use super::wake::{Readiness, wait_readable_ns};
use crate::clock::monotonic_ns;
use crate::record::loop_records::{LinkEventKind, TriggerRecord, TriggerStatus};

/// How long to wait for the firmware report after opening the port (Uno reset + boot).
const FIRMWARE_TIMEOUT_NS: u64 = 5_000_000_000;
/// Longest wait in one `ppoll` when nothing is scheduled.
const IDLE_WAIT_NS: u64 = 20_000_000;

/// The train running on one channel.
#[derive(Clone, Copy)]
struct Train {
    record: TriggerRecord,
    /// Host ns the first rise was written (the grid's origin; until then, when it is due).
    origin_ns: u64,
    /// Pulse being written.
    index: u16,
    /// Whether the pin is high now.
    high: bool,
    /// When the current pulse's rise was written.
    rise_written_ns: u64,
    /// When the next edge is due.
    due_ns: u64,
}

/// Runs a Firmata link until stopped. `link.channels` holds the Arduino pin of each channel.
pub fn run_firmata(link: Link) -> LinkReport {
    crate::realtime::enter(crate::realtime::Role::Link);
    FirmataRun::new(link).run()
}

struct FirmataRun {
    link: Link,
    client: FirmataClient,
    parser: FirmataParser,
    limits: DaemonLimits,
    trains: Vec<Option<Train>>,
    train_counter: u16,
    report: LinkReport,
}

impl FirmataRun {
    fn new(link: Link) -> Self {
        let h = || {
            hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000_000, 3)
                .expect("valid bounds")
        };
        let channels = link.channels.len().max(1);
        Self {
            limits: DaemonLimits::new(link.limits.clone(), channels),
            link,
            client: FirmataClient::new(),
            parser: FirmataParser::new(),
            trains: vec![None; channels],
            train_counter: 0,
            report: LinkReport {
                fit: None,
                decision_to_write: h(),
                decision_to_edge: h(),
                host_timed: true,
            },
        }
    }

    fn run(mut self) -> LinkReport {
        let mut port: Option<serialport::TTYPort> = None;
        let mut backoff_ns = 10_000_000u64;
        let mut next_connect_ns = 0u64;
        let mut buf = [0u8; 256];
        let mut halted = false;
        let mut session_seen = false;
        loop {
            self.link.tick(&mut session_seen, &mut self.report);
            let now = monotonic_ns();
            let stopping = self.link.stop.load(Ordering::Acquire);
            if !halted && (stopping || self.link.halt.load(Ordering::Acquire)) {
                // The session is stopping: every pin low now, before anything else drains.
                halted = true;
                self.halt(&mut port);
            }
            if port.is_none() && now >= next_connect_ns && !halted {
                match self.connect() {
                    Ok((p, (major, minor), description)) => {
                        port = Some(p);
                        backoff_ns = 10_000_000;
                        self.link.stats.connected(description);
                        let version = major as i64 * 10_000 + minor as i64 * 100;
                        let pins = self.link.channels.len() as i64;
                        self.link
                            .event(LinkEventKind::Connected, 0, None, version, pins, 0);
                    }
                    Err(e) => {
                        tracing::debug!(output = %self.link.name, error = %e, "Firmata board not reachable");
                        self.link.stats.connect_failed(&e);
                        next_connect_ns = now + backoff_ns;
                        backoff_ns = (backoff_ns * 2).min(1_000_000_000);
                    }
                }
            }
            let drained = self.take_commands(&mut port, halted);
            if stopping && drained {
                break;
            }
            let Some(p) = &mut port else {
                self.cut_trains(TriggerStatus::LinkDown);
                if stopping {
                    continue;
                }
                let wait = next_connect_ns
                    .saturating_sub(monotonic_ns())
                    .min(50_000_000);
                let _ = wait_readable_ns(-1, self.link.waker.fd(), wait);
                self.link.waker.drain();
                continue;
            };
            if self.write_due_edges(p).is_err() {
                self.lost(&mut port, &mut next_connect_ns);
                continue;
            }
            let next_edge = self.trains.iter().flatten().map(|t| t.due_ns).min();
            let now = monotonic_ns();
            // Never longer than the idle wait: the loop beats its heartbeat each time round.
            let wait = next_edge.map_or(IDLE_WAIT_NS, |due| {
                due.saturating_sub(now).min(IDLE_WAIT_NS)
            });
            match wait_readable_ns(p.as_raw_fd(), self.link.waker.fd(), wait) {
                Readiness::Port => match p.read(&mut buf) {
                    // The board sends nothing per write; whatever comes (a re-boot report, a
                    // STRING_DATA error) is parsed, and text is logged.
                    Ok(n) if n > 0 => {
                        for &b in &buf[..n] {
                            if let Some(FirmataEvent::Text(t)) = self.parser.push(b) {
                                tracing::warn!(output = %self.link.name, message = %t, "Firmata board says");
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => self.lost(&mut port, &mut next_connect_ns),
                },
                Readiness::Hangup => self.lost(&mut port, &mut next_connect_ns),
                Readiness::Waker => self.link.waker.drain(),
                Readiness::Timeout => {}
            }
        }
        self.link.stats.up.store(false, Ordering::Release);
        self.report
    }

    /// Opens the port, waits for the firmware report, makes every mapped pin a low output.
    fn connect(&mut self) -> Result<(serialport::TTYPort, (u8, u8), String), String> {
        let name = &self.link.port;
        let mut p = super::ports::open_port(name, self.link.baud)?;
        self.parser = FirmataParser::new();
        p.write_all(&query_firmware()).map_err(|e| e.to_string())?;
        let deadline = monotonic_ns() + FIRMWARE_TIMEOUT_NS;
        let mut buf = [0u8; 256];
        let mut firmware = None;
        while firmware.is_none() && monotonic_ns() < deadline {
            if let Ok(n) = p.read(&mut buf) {
                firmware = self
                    .parser
                    .feed(&buf[..n])
                    .into_iter()
                    .find_map(|e| match e {
                        FirmataEvent::Firmware { major, minor, name } => Some((major, minor, name)),
                        _ => None,
                    });
            }
        }
        let Some((major, minor, fw_name)) = firmware else {
            return Err(format!(
                "{name}: the board did not report its firmware within 5 s (silent, not \
                 StandardFirmata, or wrong baud rate {})",
                self.link.baud
            ));
        };
        self.client = FirmataClient::new();
        for &pin in &self.link.channels {
            let mode = super::firmata::set_pin_mode(pin, PinMode::Output)
                .map_err(|e| format!("{name}: {e}"))?;
            let low = self
                .client
                .digital_write(pin, false)
                .map_err(|e| format!("{name}: {e}"))?;
            p.write_all(&mode).map_err(|e| e.to_string())?;
            p.write_all(&low).map_err(|e| e.to_string())?;
        }
        tracing::info!(
            output = %self.link.name,
            port = %name,
            firmware = %format!("{fw_name} {major}.{minor}"),
            pins = ?self.link.channels,
            "Firmata board connected; pins are low outputs (host-timed pulses)"
        );
        let description = format!(
            "Firmata firmware \"{fw_name}\" {major}.{minor} (pins {:?}, host-timed)",
            self.link.channels
        );
        Ok((p, (major, minor), description))
    }

    /// Takes every queued command; returns whether the ring was already empty.
    fn take_commands(&mut self, port: &mut Option<serialport::TTYPort>, halted: bool) -> bool {
        let mut drained = true;
        while let Some(mut cmd) = self.link.next_command() {
            drained = false;
            let now = monotonic_ns();
            let ch = cmd.channel as usize;
            if halted {
                self.refuse(cmd, TriggerStatus::Stopping);
                continue;
            }
            if port.is_none() {
                self.refuse(cmd, TriggerStatus::LinkDown);
                continue;
            }
            if is_stale(&cmd, now, self.link.max_age_ns) {
                self.refuse(cmd, TriggerStatus::Stale);
                continue;
            }
            let busy = self.trains.get(ch).is_none_or(|t| t.is_some());
            if let Some(reason) = self.limits.violation(&cmd, now).or(match busy {
                true if ch >= self.trains.len() => Some("no pin for this channel"),
                true => Some("the channel's previous train is still running"),
                false => None,
            }) {
                tracing::warn!(output = %self.link.name, channel = ch, reason, "trigger blocked by daemon-side limit");
                self.refuse_because(cmd, TriggerStatus::Blocked, Some(reason));
                continue;
            }
            self.train_counter = self.train_counter.wrapping_add(1);
            cmd.seq = self.train_counter;
            cmd.status = TriggerStatus::HostTimed as u8;
            self.trains[ch] = Some(Train {
                record: cmd,
                origin_ns: now,
                index: 0,
                high: false,
                rise_written_ns: 0,
                due_ns: now,
            });
        }
        drained
    }

    /// Records a command that is not sent, with why.
    fn refuse(&mut self, cmd: TriggerRecord, status: TriggerStatus) {
        self.refuse_because(cmd, status, None);
    }

    /// Records a command that is not sent, with why and the limit that blocked it.
    fn refuse_because(
        &mut self,
        mut cmd: TriggerRecord,
        status: TriggerStatus,
        blocked_by: Option<&'static str>,
    ) {
        cmd.status = status as u8;
        let stats = &self.link.stats;
        let counter = match status {
            TriggerStatus::LinkDown => &stats.link_down,
            TriggerStatus::Stale => &stats.stale,
            TriggerStatus::Stopping => &stats.stopping,
            _ => &stats.blocked,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.link.record(cmd, blocked_by);
    }

    /// Writes every edge that is due; a train that ends is recorded.
    fn write_due_edges(&mut self, p: &mut serialport::TTYPort) -> std::io::Result<()> {
        for ch in 0..self.trains.len() {
            while let Some(mut t) = self.trains[ch] {
                if monotonic_ns() < t.due_ns {
                    break;
                }
                if t.index == 0
                    && !t.high
                    && is_stale(&t.record, monotonic_ns(), self.link.max_age_ns)
                {
                    // Its first rise cannot be written in time: it is not sent at all.
                    self.trains[ch] = None;
                    self.refuse(t.record, TriggerStatus::Stale);
                    break;
                }
                let pin = self.link.channels[ch];
                let bytes = self
                    .client
                    .digital_write(pin, !t.high)
                    .map_err(std::io::Error::other)?;
                p.write_all(&bytes)?;
                let written = monotonic_ns();
                if !t.high {
                    t.high = true;
                    t.rise_written_ns = written;
                    t.due_ns = written + t.record.pulse_width_ns;
                    if t.index == 0 {
                        // The grid starts at the first rise as written, so no later rise comes
                        // sooner than its period after it.
                        t.origin_ns = written;
                        t.record.sent_ns = written;
                        self.sent(&t.record);
                    }
                    self.trains[ch] = Some(t);
                    continue;
                }
                t.high = false;
                let on_us = (written - t.rise_written_ns) / 1000;
                self.link.event(
                    LinkEventKind::HostPulse,
                    t.rise_written_ns,
                    None,
                    t.record.seq as i64,
                    t.index as i64,
                    on_us as i64,
                );
                t.index += 1;
                t.record.acked_pulses = t.index;
                if t.index >= t.record.pulses.max(1) {
                    self.finish(ch, t);
                    break;
                }
                // The next rise at its place on the grid, but never before the fall.
                t.due_ns = (t.origin_ns + t.index as u64 * t.record.period_ns).max(written);
                self.trains[ch] = Some(t);
            }
        }
        Ok(())
    }

    fn sent(&mut self, r: &TriggerRecord) {
        let latency = r.sent_ns.saturating_sub(r.decision_ns).max(1);
        let _ = self.report.decision_to_write.record(latency);
        self.link.stats.telemetry.decision_to_write.record(latency);
        self.link.stats.sent.fetch_add(1, Ordering::Relaxed);
        if let Some(live) = &self.link.live_sent {
            live.fetch_add(1, Ordering::Relaxed);
        }
        self.limits.commit(r, r.sent_ns);
    }

    fn finish(&mut self, ch: usize, t: Train) {
        self.trains[ch] = None;
        self.link.record(t.record, None);
    }

    /// Ends every running train where it is (flag bit 1 = cut), recording it with `status`.
    fn cut_trains(&mut self, status: TriggerStatus) {
        for ch in 0..self.trains.len() {
            if let Some(mut t) = self.trains[ch].take() {
                t.record.flags |= 0b10;
                if t.record.sent_ns == 0 {
                    t.record.status = status as u8;
                }
                self.link.record(t.record, None);
            }
        }
    }

    /// Drives every mapped pin low (best effort); returns when the last write was done.
    fn all_low(&mut self, p: &mut serialport::TTYPort) -> u64 {
        for &pin in &self.link.channels {
            if let Ok(bytes) = self.client.digital_write(pin, false) {
                let _ = p.write_all(&bytes);
            }
        }
        monotonic_ns()
    }

    /// The session stop: every pin low at once, and every running train recorded as cut. A
    /// pulse that was high is one that happened (the all-low wrote its fall): it is recorded
    /// with its real times and counted.
    fn halt(&mut self, port: &mut Option<serialport::TTYPort>) {
        let Some(p) = port else {
            self.cut_trains(TriggerStatus::LinkDown);
            return;
        };
        let fall_ns = self.all_low(p);
        for ch in 0..self.trains.len() {
            let Some(mut t) = self.trains[ch].take() else {
                continue;
            };
            t.record.flags |= super::codec::pulse_flag::CANCELLED;
            if t.record.sent_ns == 0 {
                // Not started: never on the wire.
                self.refuse(t.record, TriggerStatus::Stopping);
                continue;
            }
            if t.high {
                self.link.event(
                    LinkEventKind::HostPulseCut,
                    t.rise_written_ns,
                    None,
                    t.record.seq as i64,
                    t.index as i64,
                    (fall_ns.saturating_sub(t.rise_written_ns) / 1000) as i64,
                );
                t.record.acked_pulses = t.index + 1;
                self.link.stats.cut_by_stop.fetch_add(1, Ordering::Relaxed);
            }
            self.link.record(t.record, None);
        }
    }

    fn lost(&mut self, port: &mut Option<serialport::TTYPort>, next_connect_ns: &mut u64) {
        tracing::warn!(output = %self.link.name, port = %self.link.port, "Firmata port lost; reconnecting");
        self.link.stats.up.store(false, Ordering::Release);
        self.link.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        *port = None;
        self.cut_trains(TriggerStatus::LinkDown);
        self.link
            .event(LinkEventKind::Disconnected, 0, None, 0, 0, 0);
        *next_connect_ns = monotonic_ns() + 10_000_000;
    }
}
