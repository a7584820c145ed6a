//! Hardware in the loop: the reference firmware (firmware-interface/arduino/behavd_stim, built
//! with avr-gcc) running in simavr, its UART bridged to a pseudo-terminal by the project's
//! harness (firmware-interface/harness/stimrig.c), driven by behavd's own serial link. Pin
//! edges come from the harness log in simulated time. Needs `make -C firmware-interface all
//! harness` (scripts/setup.sh --test runs it).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use behavd::config::output::OutputLimits;
use behavd::record::loop_records::{LinkEventKind, TriggerStatus};
use behavd::stim::codec::{FrameDecoder, Message};
use behavd::stim::test_rig::{LinkRig, RigConfig};

/// One harness at a time: each simulation takes a whole core, and a starved real-time harness
/// trips the watchdog it is testing.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Harness {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Harness {
    fn start(link: &Path, realtime: bool) -> Self {
        let build = project().join("firmware-interface/build");
        let (stimrig, elf) = (build.join("stimrig"), build.join("behavd_stim.elf"));
        assert!(
            stimrig.is_file() && elf.is_file(),
            "build the firmware and harness first: make -C firmware-interface all harness"
        );
        let mut cmd = Command::new(stimrig);
        cmd.arg("-p").arg(link);
        if realtime {
            cmd.arg("-r");
        }
        let mut child = cmd
            .arg(elf)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let h = Self { child, lines };
        h.wait_line("READY");
        h.wait_line("ORIGIN");
        h
    }

    fn wait_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(prefix))
            {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "harness printed no {prefix} line"
            );
            std::thread::park_timeout(Duration::from_millis(5));
        }
    }

    fn field(line: &str, key: &str) -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in `{line}`"))
    }

    fn origin_ns(&self) -> u64 {
        Self::field(&self.wait_line("ORIGIN"), "sim_ns=")
    }

    /// (level, sim_ns, mono_ns) of every logged edge of `pin`.
    fn edges(&self, pin: &str) -> Vec<(u8, u64, u64)> {
        let prefix = format!("PIN {pin} ");
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .map(|l| {
                let level = l.split_whitespace().nth(2).unwrap().parse().unwrap();
                (level, Self::field(l, "sim_ns="), Self::field(l, "mono_ns="))
            })
            .collect()
    }

    fn wait_edges(&self, pin: &str, n: usize) -> Vec<(u8, u64, u64)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let e = self.edges(pin);
            if e.len() >= n {
                return e;
            }
            assert!(Instant::now() < deadline, "{pin}: {} of {n} edges", e.len());
            std::thread::park_timeout(Duration::from_millis(5));
        }
    }

    fn stop(self) {
        drop(self);
    }
}

impl Drop for Harness {
    /// Also on a failing test: a leftover simulation would take a core from the next test.
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// behavd's own link thread on the harness's pty, through the shared test rig.
fn host_link(port: &Path, limits: OutputLimits) -> LinkRig {
    let rig = LinkRig::start(RigConfig {
        limits,
        // simavr paces UART bytes at 11 bits (its UART model counts start, 8 data, parity slot and stop bits), real 8N1 at 10.
        byte_ns: 11_000_000_000 / 115_200,
        timeout: Duration::from_secs(30),
        ..RigConfig::new(port.display().to_string())
    });
    rig.wait_connects(1);
    rig
}

fn limits(watchdog_ms: u32) -> OutputLimits {
    OutputLimits {
        max_on_ms: 5000.0,
        max_duty: 1.0,
        duty_window_s: 10.0,
        watchdog_ms,
        ..OutputLimits::default()
    }
}

/// Rules-style commands through behavd's link: every pulse appears on D9 with the commanded
/// width and period (within the firmware's interrupt jitter), acknowledgement times equal the
/// logged edges, and in real-time mode the clock fit maps device edges to host time with a
/// residual under 100 µs.
#[test]
fn pulses_reach_the_pins_and_acknowledgements_match_the_logged_edges() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("stim.tty");
    let harness = Harness::start(&tty, true);
    let origin = harness.origin_ns();
    let mut link = host_link(&tty, limits(1000));
    // Let the clock fit collect samples (pings every 100 ms).
    link.wait_for("clock samples", |s| {
        s.sync_samples.load(Ordering::Relaxed) >= 30
    });
    let mut records = Vec::new();
    for _ in 0..4 {
        link.send_us(0, 5_000, 3, 20_000);
        records.push(link.next_record());
    }
    for r in &records {
        assert_eq!(
            r.status,
            TriggerStatus::Acked as u8,
            "{r:?} (link {:?})",
            link.stats
        );
    }
    let edges = harness.wait_edges("D9", 4 * 3 * 2);
    let report = link.stop();
    harness.stop();
    let rises: Vec<_> = edges.iter().filter(|e| e.0 == 1).collect();
    let falls: Vec<_> = edges.iter().filter(|e| e.0 == 0).collect();
    assert_eq!(rises.len(), 12);
    for (r, f) in rises.iter().zip(&falls) {
        let width_us = (f.1 - r.1) as f64 / 1000.0;
        assert!((width_us - 5_000.0).abs() <= 20.0, "width {width_us} µs");
    }
    for pair in rises.chunks(3) {
        for w in pair.windows(2) {
            let period_us = (w[1].1 - w[0].1) as f64 / 1000.0;
            assert!(
                (period_us - 20_000.0).abs() <= 20.0,
                "period {period_us} µs"
            );
        }
    }
    let mut host_errors = Vec::new();
    for (r, rise) in records.iter().zip(rises.chunks(3).map(|c| c[0])) {
        assert_eq!(r.status, TriggerStatus::Acked as u8, "{r:?}");
        assert_eq!(r.acked_pulses, 3);
        // Device time of the acknowledged rise = the logged edge in simulated time.
        let device_ns = origin + r.device_rise_us * 1000;
        let diff_us = (device_ns as f64 - rise.1 as f64) / 1000.0;
        assert!(diff_us.abs() <= 5.0, "ack vs logged edge: {diff_us} µs");
        host_errors.push((r.ack_rise_ns as f64 - rise.2 as f64) / 1000.0);
    }
    let fit = report.fit.expect("clock fitted");
    let pct = |h: &hdrhistogram::Histogram<u64>| {
        format!(
            "p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            h.value_at_quantile(0.5) as f64 / 1e3,
            h.value_at_quantile(0.99) as f64 / 1e3,
            h.max() as f64 / 1e3
        )
    };
    println!(
        "decision → serial write {}; decision → device edge {}",
        pct(&report.decision_to_write),
        pct(&report.decision_to_edge)
    );
    println!(
        "clock fit residual {:.1} µs over {} samples ({} rejected); mapped edge − logged host time: {host_errors:?} µs",
        fit.residual_us, fit.samples, fit.rejected
    );
    // Issue 4's target: residual < 100 µs in real-time mode (measured 22–31 µs on a 2-core VM).
    assert!(
        fit.residual_us < 100.0,
        "clock-sync residual {} µs",
        fit.residual_us
    );
    // The fit also maps the acknowledged device edges onto the host clock: the median lands
    // within 200 µs of the host time the harness logged while simulating the edge. (One
    // edge's log line can be late by a scheduling delay of the harness process itself — seen
    // once at 966 µs on a loaded machine — so single edges are not asserted.)
    let mut sorted = host_errors.clone();
    sorted.sort_by(f64::total_cmp);
    let median = (sorted[1] + sorted[2]) / 2.0;
    assert!(
        median.abs() < 200.0,
        "median mapped edge − logged host time {median} µs"
    );
}

/// The host goes silent with a long pulse on: the firmware's watchdog switches the output off
/// within the watchdog timeout (plus the last ping interval), long before the pulse would end.
#[test]
fn the_watchdog_turns_the_output_off_when_the_host_goes_silent() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("stim.tty");
    let harness = Harness::start(&tty, true);
    let mut link = host_link(&tty, limits(200));
    link.send_us(1, 3_000_000, 1, 0);
    harness.wait_edges("D10", 1);
    link.stop(); // silence: no more pings or heartbeats
    let edges = harness.wait_edges("D10", 2);
    harness.stop();
    let on_ms = (edges[1].1 - edges[0].1) as f64 / 1e6;
    assert!(
        (150.0..=500.0).contains(&on_ms),
        "output on for {on_ms} ms (watchdog 200 ms, pulse 3000 ms)"
    );
}

/// The session stop's halt on the reference firmware: STOP_ALL goes out at once, the pin falls
/// long before the pulse's 3 s (and before the 1 s watchdog could act), and the firmware
/// acknowledges the cut pulse (flag bit 1), which the link records.
#[test]
fn the_halt_turns_the_output_off_at_once_and_the_cut_pulse_is_acknowledged() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("stim.tty");
    let harness = Harness::start(&tty, true);
    let mut link = host_link(&tty, limits(1000));
    link.send_us(1, 3_000_000, 1, 0);
    harness.wait_edges("D10", 1);
    link.halt();
    let cut = link.next_record();
    let edges = harness.wait_edges("D10", 2);
    link.stop();
    harness.stop();
    let on_ms = (edges[1].1 - edges[0].1) as f64 / 1e6;
    assert!(
        on_ms < 900.0,
        "output on for {on_ms} ms after the halt (pulse 3000 ms)"
    );
    assert_eq!(cut.status, TriggerStatus::Acked as u8, "{cut:?}");
    assert_eq!((cut.acked_pulses, cut.flags & 0b10), (1, 0b10), "{cut:?}");
}

/// Behavd's codec straight on the pty, for the firmware's own behaviour: every message the
/// firmware sent is kept, in order.
struct RawPort {
    port: serialport::TTYPort,
    decoder: FrameDecoder,
    seen: Vec<Message>,
    /// Messages before this index were passed over by an earlier [`RawPort::wait_for`].
    next: usize,
    frames_bad: u64,
}

impl RawPort {
    /// Opens the link and says HELLO (answered by CAPABILITIES).
    fn open(tty: &Path) -> Self {
        let port = serialport::new(tty.display().to_string(), 115_200)
            .timeout(Duration::from_millis(20))
            .open_native()
            .unwrap();
        let mut p = Self {
            port,
            decoder: FrameDecoder::new(),
            seen: Vec::new(),
            next: 0,
            frames_bad: 0,
        };
        p.send(Message::Hello { protocol: 1 });
        p.wait_for("CAPABILITIES", |m| {
            matches!(m, Message::Capabilities { .. })
        });
        p
    }

    fn send(&mut self, m: Message) {
        let mut out = [0u8; 80];
        let n = m.encode(&mut out);
        self.port.write_all(&out[..n]).unwrap();
    }

    /// Reads until a message after the previous match matches; returns it. Everything read is
    /// kept in `seen` (one read can bring the awaited message and the next one together).
    fn wait_for(&mut self, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 256];
        loop {
            if let Some(i) = self.seen[self.next..].iter().position(&pred) {
                self.next += i + 1;
                return self.seen[self.next - 1];
            }
            assert!(
                Instant::now() < deadline,
                "no {what}; seen: {:?}",
                &self.seen[self.next..]
            );
            if let Ok(n) = self.port.read(&mut buf) {
                for m in self.decoder.feed(&buf[..n]) {
                    match m {
                        Ok(m) => self.seen.push(m),
                        Err(_) => self.frames_bad += 1,
                    }
                }
            }
        }
    }

    /// SET_SAFETY for channel 0 (watchdog off), acknowledged.
    fn safety(&mut self, seq: u16, max_on_us: u32, max_duty_permille: u16, window_ms: u16) {
        self.send(Message::SetSafety {
            seq,
            channel: 0,
            max_on_us,
            max_duty_permille,
            duty_window_ms: window_ms,
            watchdog_ms: 0,
        });
        self.wait_for(
            "OK to SET_SAFETY",
            |m| matches!(m, Message::Ok { seq: s, .. } if *s == seq),
        );
    }
}

/// (rise, fall) pairs in simulated ns from a pin's logged edges.
fn on_intervals(edges: &[(u8, u64, u64)]) -> Vec<(u64, u64)> {
    edges
        .chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| {
            assert_eq!((p[0].0, p[1].0), (1, 0), "edges alternate");
            (p[0].1, p[1].1)
        })
        .collect()
}

/// A pulse longer than max-on is cut at max-on on the pin, flagged in PULSE_DONE and reported
/// by FAULT 2 with the on time.
#[test]
fn the_firmware_cuts_a_pulse_at_max_on_and_reports_it() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("stim.tty");
    let harness = Harness::start(&tty, false);
    let mut port = RawPort::open(&tty);
    port.safety(1, 3_000, 1000, 1000);
    port.send(Message::Pulse {
        seq: 2,
        channel: 0,
        width_us: 10_000,
        count: 1,
        period_us: 0,
    });
    // The firmware reports the fault as it cuts, then acknowledges the pulse.
    let Message::Fault { detail, .. } =
        port.wait_for("FAULT 2", |m| matches!(m, Message::Fault { code: 2, .. }))
    else {
        unreachable!()
    };
    assert!(detail.abs_diff(3_000) <= 20, "FAULT 2 on time {detail} µs");
    let Message::PulseDone {
        flags,
        rise_us,
        fall_us,
        ..
    } = port.wait_for("PULSE_DONE 2", |m| {
        matches!(m, Message::PulseDone { seq: 2, .. })
    })
    else {
        unreachable!()
    };
    assert_eq!(flags & 1, 1, "cut by max-on");
    assert!(
        (fall_us - rise_us).abs_diff(3_000) <= 20,
        "on for {} µs",
        fall_us - rise_us
    );
    let on = on_intervals(&harness.wait_edges("D9", 2));
    let on_us = (on[0].1 - on[0].0) as f64 / 1000.0;
    assert!((on_us - 3_000.0).abs() <= 20.0, "D9 on for {on_us} µs");
}

/// Every bad-frame stream of the shared test vectors, then 100 bytes without a delimiter, on the
/// wire: the firmware answers exactly the valid frames among them (PINGs), counts exactly the
/// vectors' number of dropped frames in HEARTBEAT rx_errors, and stays responsive.
#[test]
fn garbage_and_truncated_frames_are_counted_and_skipped_by_the_firmware() {
    let _one = serial();
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project().join("firmware-interface/test-vectors/bad_frames.json"))
            .unwrap(),
    )
    .unwrap();
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let (mut stream, mut errors, mut valid) = (Vec::new(), 0u64, 0usize);
    for v in vectors["streams"].as_array().unwrap() {
        stream.extend(hex(v["stream_hex"].as_str().unwrap()));
        errors += v["rx_errors"].as_u64().unwrap();
        valid += v["valid_payloads_hex"].as_array().unwrap().len();
    }
    stream.extend([0x55; 100]);
    stream.push(0); // the overlong run ends: one more dropped frame
    errors += 1;
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("stim.tty");
    let harness = Harness::start(&tty, false);
    let mut port = RawPort::open(&tty);
    let heartbeat = |m: &Message| matches!(m, Message::DeviceHeartbeat { .. });
    let Message::DeviceHeartbeat {
        rx_errors: before, ..
    } = port.wait_for("HEARTBEAT", heartbeat)
    else {
        unreachable!()
    };
    port.port.write_all(&stream).unwrap();
    port.send(Message::Ping { token: 99 });
    let from = port.seen.len();
    port.wait_for("PONG 99", |m| matches!(m, Message::Pong { token: 99, .. }));
    let Message::DeviceHeartbeat {
        rx_errors: after,
        faults,
        ..
    } = port.wait_for("HEARTBEAT after the garbage", heartbeat)
    else {
        unreachable!()
    };
    let pongs = port.seen[from..]
        .iter()
        .filter(|m| matches!(m, Message::Pong { token: 7, .. }))
        .count();
    harness.stop();
    assert_eq!(pongs, valid, "valid frames among the garbage answered");
    assert_eq!(u64::from(after.wrapping_sub(before)), errors, "rx_errors");
    assert_eq!(faults & 0b1000, 0b1000, "receive overflow latched");
    assert_eq!(port.frames_bad, 0, "the firmware's own frames are intact");
}

/// The duty-cycle cap on the pins: a train over the cap on its own is refused (NACK 6, no
/// edge); a held level is switched off when the window's on time reaches the cap (FAULT 3);
/// a train right after it loses the pulses that would break the cap (FAULT 3 with the number
/// skipped, no PULSE_DONE for them); and in every window ending at a falling edge on D9 the on
/// time stays within the cap.
#[test]
fn the_duty_cycle_cap_holds_on_the_pins() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("stim.tty");
    let harness = Harness::start(&tty, false);
    let mut port = RawPort::open(&tty);
    const WINDOW_NS: u64 = 1_000_000_000;
    const CAP_NS: u64 = 250_000_000;
    port.safety(1, 0, 250, 1000);
    port.send(Message::Pulse {
        seq: 2,
        channel: 0,
        width_us: 50_000,
        count: 10,
        period_us: 100_000,
    });
    port.wait_for("NACK 6", |m| {
        matches!(m, Message::Nack { seq: 2, reason: 6 })
    });
    port.send(Message::SetLevel {
        seq: 3,
        channel: 0,
        level: 1,
    });
    port.wait_for("FAULT 3 ending the level", |m| {
        matches!(
            m,
            Message::Fault {
                code: 3,
                detail: 0,
                ..
            }
        )
    });
    port.send(Message::Pulse {
        seq: 4,
        channel: 0,
        width_us: 20_000,
        count: 15,
        period_us: 100_000,
    });
    let Message::Fault {
        detail: skipped, ..
    } = port.wait_for(
        "FAULT 3 after the train",
        |m| matches!(m, Message::Fault { code: 3, detail: d, .. } if *d > 0),
    )
    else {
        unreachable!()
    };
    let done = port
        .seen
        .iter()
        .filter(|m| matches!(m, Message::PulseDone { seq: 4, .. }))
        .count();
    assert!(
        (1..15).contains(&skipped) && done == 15 - skipped as usize,
        "{skipped} skipped, {done} PULSE_DONE"
    );
    let on = on_intervals(&harness.wait_edges("D9", 2 + 2 * done));
    harness.stop();
    assert_eq!(on.len(), 1 + done, "the level, then the pulses not skipped");
    let level_ns = on[0].1 - on[0].0;
    assert!(
        level_ns.abs_diff(CAP_NS) <= 20_000,
        "level on {level_ns} ns"
    );
    for &(_, end) in &on {
        let start = end.saturating_sub(WINDOW_NS);
        let on_in_window: u64 = on
            .iter()
            .map(|&(r, f)| f.min(end).saturating_sub(r.max(start)))
            .sum();
        assert!(
            on_in_window <= CAP_NS + 20_000,
            "{on_in_window} ns on in the window ending at {end}"
        );
    }
}

/// The harness is restarted mid-session (the port vanishes and returns): behavd's link
/// reconnects by itself, the outage is in its events (connected → disconnected → connected),
/// the next pulse is acknowledged, and the new firmware instance has the safety configuration
/// again: its watchdog (off at reset) cuts a long pulse once the host goes silent.
#[test]
fn the_link_reconnects_after_the_harness_restarts_and_re_arms_safety() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("stim.tty");
    let harness = Harness::start(&tty, true);
    let mut link = host_link(&tty, limits(300));
    link.send_us(0, 1_000, 1, 0);
    assert_eq!(link.next_record().status, TriggerStatus::Acked as u8);
    harness.stop();
    let harness = Harness::start(&tty, true);
    link.wait_connects(2);
    link.send_us(0, 1_000, 1, 0);
    let r = link.next_record();
    assert_eq!(r.status, TriggerStatus::Acked as u8, "{r:?}");
    harness.wait_edges("D9", 2);
    link.send_us(1, 3_000_000, 1, 0);
    harness.wait_edges("D10", 1);
    let events = link.take_events();
    link.stop();
    let d10 = harness.wait_edges("D10", 2);
    harness.stop();
    let on_ms = (d10[1].1 - d10[0].1) as f64 / 1e6;
    assert!(
        (200.0..=700.0).contains(&on_ms),
        "output on for {on_ms} ms after reconnection (watchdog 300 ms, pulse 3000 ms)"
    );
    let connection: Vec<(u8, u64)> = events
        .iter()
        .filter(|e| {
            e.kind == LinkEventKind::Connected as u8 || e.kind == LinkEventKind::Disconnected as u8
        })
        .map(|e| (e.kind, e.received_ns))
        .collect();
    let kinds: Vec<u8> = connection.iter().map(|c| c.0).collect();
    assert_eq!(
        kinds,
        [
            LinkEventKind::Connected as u8,
            LinkEventKind::Disconnected as u8,
            LinkEventKind::Connected as u8
        ],
        "connection events"
    );
    assert!(connection[1].1 < connection[2].1, "the outage has a length");
}
