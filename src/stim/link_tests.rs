//! The link thread against the emulated stimulator over a real pseudo-terminal: trains
//! acknowledged with the device's edge times, daemon-side limits, reconnection after the port
//! vanishes, commands while the link is down.

use std::sync::atomic::Ordering;

use super::codec::{Message, nack};
use super::emulator::{EmulatedStimulator, EmulatorConfig};
use super::test_rig::{HeldDevice, LinkRig, RigConfig, wait_until};
use crate::config::output::OutputLimits;
use crate::record::loop_records::{LinkEventKind, TriggerStatus};

fn start_link(port: &str, limits: OutputLimits) -> LinkRig {
    LinkRig::start(RigConfig {
        limits,
        ..RigConfig::new(port)
    })
}

fn emulator(dir: &std::path::Path) -> (EmulatedStimulator, String) {
    let link = dir.join("stim.tty");
    let e = EmulatedStimulator::start(EmulatorConfig {
        link: Some(link.clone()),
        ..EmulatorConfig::default()
    })
    .unwrap();
    (e, link.display().to_string())
}

#[test]
fn trains_are_acknowledged_with_the_devices_edge_times() {
    let _one_at_a_time = super::emulator::test_lock();
    let dir = tempfile::tempdir().unwrap();
    let (emu, port) = emulator(dir.path());
    let mut rig = start_link(&port, OutputLimits::default());
    rig.wait_for("a clock-sync sample", |s| {
        s.sync_samples.load(Ordering::Relaxed) >= 1
    });
    rig.send(0, 5, 3, 20);
    let r = rig.next_record();
    assert_eq!(r.status, TriggerStatus::Acked as u8, "{r:?}");
    assert_eq!(r.acked_pulses, 3);
    assert!(r.sent_ns >= r.decision_ns);
    // The device's first rising edge is the one in the emulator's edge log.
    let edges = emu.edges();
    let rises: Vec<_> = edges
        .iter()
        .filter(|e| e.channel == 0 && e.level == 1)
        .collect();
    assert_eq!(rises.len(), 3, "{edges:?}");
    assert_eq!(r.device_rise_us, rises[0].device_us);
    // Mapped to the host clock, the train spans 2 periods + 1 width (device-timed, exact), and
    // the first edge lies between the write and the acknowledgement's arrival (± clock-fit error).
    let span_us = (r.ack_fall_ns - r.ack_rise_ns) as f64 / 1000.0;
    assert!((span_us - 45_000.0).abs() < 50.0, "train span {span_us} µs");
    let slack = 2_000_000; // 2 ms of clock-fit error on a loaded 2-core machine
    assert!(
        r.ack_rise_ns + slack >= r.sent_ns && r.ack_rise_ns <= r.ack_recv_ns + slack,
        "{r:?}"
    );
    let report = rig.stop();
    assert!(report.fit.is_some());
    emu.stop();
}

#[test]
fn daemon_side_limits_stop_commands_before_the_wire() {
    let _one_at_a_time = super::emulator::test_lock();
    let dir = tempfile::tempdir().unwrap();
    let (emu, port) = emulator(dir.path());
    let limits = OutputLimits {
        max_on_ms: 20.0,
        refractory_s: 60.0,
        ..OutputLimits::default()
    };
    let mut rig = start_link(&port, limits);
    rig.wait_for("connection", |s| s.connects.load(Ordering::Relaxed) == 1);
    rig.send(1, 50, 1, 0); // longer than max_on_ms
    assert_eq!(rig.next_record().status, TriggerStatus::Blocked as u8);
    rig.send(1, 10, 1, 0);
    assert_eq!(rig.next_record().status, TriggerStatus::Acked as u8);
    rig.send(1, 10, 1, 0); // inside the output's refractory period
    assert_eq!(rig.next_record().status, TriggerStatus::Blocked as u8);
    assert_eq!(rig.stats.blocked.load(Ordering::Relaxed), 2);
    assert_eq!(
        emu.edges().iter().filter(|e| e.level == 1).count(),
        1,
        "only the allowed pulse reached the device"
    );
    rig.stop();
    emu.stop();
}

#[test]
fn the_link_reconnects_when_the_port_vanishes_and_returns() {
    let _one_at_a_time = super::emulator::test_lock();
    let dir = tempfile::tempdir().unwrap();
    let (mut emu, port) = emulator(dir.path());
    let mut rig = start_link(&port, OutputLimits::default());
    rig.wait_for("connection", |s| s.connects.load(Ordering::Relaxed) == 1);
    rig.send(0, 2, 1, 0);
    assert_eq!(rig.next_record().status, TriggerStatus::Acked as u8);
    emu.restart().unwrap(); // the old pty hangs up; a new one appears under the same link
    rig.wait_for("reconnection", |s| s.connects.load(Ordering::Relaxed) == 2);
    rig.send(0, 2, 1, 0);
    let r = rig.next_record();
    assert_eq!(r.status, TriggerStatus::Acked as u8, "{r:?}");
    rig.stop();
    emu.stop();
}

#[test]
fn commands_while_the_device_is_absent_are_recorded_as_link_down() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.tty");
    let mut rig = start_link(&missing.display().to_string(), OutputLimits::default());
    rig.send(0, 2, 1, 0);
    assert_eq!(rig.next_record().status, TriggerStatus::LinkDown as u8);
    assert_eq!(rig.stats.connects.load(Ordering::Relaxed), 0);
    rig.stop();
}

/// Waits until `ms` milliseconds have passed since `since_ns` (the precondition of a stale
/// trigger: it has aged past its limit), polling the clock.
fn wait_past(since_ns: u64, ms: u64) {
    super::test_rig::wait_until(
        "the trigger to age",
        std::time::Duration::from_secs(5),
        || crate::clock::monotonic_ns() > since_ns + ms * 1_000_000,
    );
}

fn pulses_received(device: &HeldDevice) -> Vec<u16> {
    device
        .received()
        .iter()
        .filter_map(|m| match m {
            Message::Pulse { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

/// Triggers decided while the device has not answered HELLO yet (the link is held in
/// "connecting") are recorded as stale once they are older than the maximum age, and never
/// reach the wire, not even after the device answers; a trigger decided after the connection is
/// written.
#[test]
fn triggers_decided_while_the_link_connects_are_stale_and_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("held.tty");
    let device = HeldDevice::start(Some(&tty)).unwrap();
    let mut rig = LinkRig::start(RigConfig {
        max_age: std::time::Duration::from_millis(20),
        ..RigConfig::new(tty.display().to_string())
    });
    wait_until(
        "the link's HELLO",
        std::time::Duration::from_secs(5),
        || {
            device
                .received()
                .iter()
                .any(|m| matches!(m, Message::Hello { .. }))
        },
    );
    let decided = crate::clock::monotonic_ns();
    rig.send(0, 2, 1, 0);
    rig.send(1, 2, 1, 0);
    wait_past(decided, 40);
    device.release();
    rig.wait_connects(1);
    for _ in 0..2 {
        let r = rig.next_record();
        assert_eq!(r.status, TriggerStatus::Stale as u8, "{r:?}");
        assert_eq!(r.sent_ns, 0, "{r:?}");
    }
    assert_eq!(rig.stats.stale.load(Ordering::Relaxed), 2);
    rig.send(0, 2, 1, 0);
    wait_until(
        "the fresh trigger on the wire",
        std::time::Duration::from_secs(5),
        || !pulses_received(&device).is_empty(),
    );
    assert_eq!(rig.stats.sent.load(Ordering::Relaxed), 1);
    let (_, records) = rig.stop_with_records();
    assert_eq!(
        pulses_received(&device),
        [1],
        "only the fresh trigger was written"
    );
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, TriggerStatus::Sent as u8);
}

/// A NACK that matches the outstanding trigger refuses that trigger (its reason counted by
/// name); one that matches no outstanding command is recorded as a stray refusal, attributed
/// to no trigger; a trigger the device never acknowledges is counted as unacknowledged.
#[test]
fn refusals_are_attributed_and_stray_ones_are_recorded_as_stray() {
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("held.tty");
    let device = HeldDevice::start(Some(&tty)).unwrap();
    device.release();
    let mut rig = LinkRig::start(RigConfig::new(tty.display().to_string()));
    rig.wait_connects(1);
    rig.send(0, 2, 1, 0);
    wait_until(
        "the trigger on the wire",
        std::time::Duration::from_secs(5),
        || !pulses_received(&device).is_empty(),
    );
    device.send(Message::Nack {
        seq: 1,
        reason: nack::DUTY_CYCLE,
    });
    let r = rig.next_record();
    assert_eq!(
        (r.status, r.flags),
        (TriggerStatus::Nacked as u8, 6),
        "{r:?}"
    );
    device.send(Message::Nack {
        seq: 777,
        reason: nack::BAD_CHANNEL,
    });
    rig.wait_for("the stray refusal", |s| {
        s.stray_nacks.load(Ordering::Relaxed) == 1
    });
    assert_eq!(rig.stats.nacked.load(Ordering::Relaxed), 1);
    assert_eq!(
        rig.stats.nack_reasons[nack::DUTY_CYCLE as usize].load(Ordering::Relaxed),
        1
    );
    let events = rig.take_events();
    let of = |k: LinkEventKind| -> Vec<(i64, i64)> {
        events
            .iter()
            .filter(|e| e.kind == k as u8)
            .map(|e| (e.a, e.b))
            .collect()
    };
    assert_eq!(of(LinkEventKind::Nack), [(1, 6)]);
    assert_eq!(of(LinkEventKind::StrayNack), [(777, 3)]);
    // A trigger that is never acknowledged: recorded as sent, counted as unacknowledged.
    rig.send(0, 2, 1, 0);
    let r = rig.next_record();
    assert_eq!(r.status, TriggerStatus::Sent as u8, "{r:?}");
    assert_eq!(rig.stats.unacked.load(Ordering::Relaxed), 1);
    rig.stop();
}

/// The session stop's halt: STOP_ALL goes out at once, the running train is ended (the device
/// acknowledges the cut pulse with flag bit 1), and a trigger decided afterwards is recorded as
/// not sent. Not counted as unacknowledged.
#[test]
fn halting_stops_the_device_at_once_and_sends_nothing_more() {
    let _one_at_a_time = super::emulator::test_lock();
    let dir = tempfile::tempdir().unwrap();
    let (emu, port) = emulator(dir.path());
    let limits = OutputLimits {
        max_duty: 1.0,
        ..OutputLimits::default()
    };
    let mut rig = start_link(&port, limits);
    rig.wait_connects(1);
    rig.send(0, 800, 1, 0);
    wait_until(
        "the pulse's rise",
        std::time::Duration::from_secs(5),
        || emu.edges().iter().any(|e| e.level == 1),
    );
    rig.halt();
    // The device ends the pulse and acknowledges it as cut (PULSE_DONE flag bit 1).
    let cut = rig.next_record();
    assert_eq!(cut.status, TriggerStatus::Acked as u8, "{cut:?}");
    assert_eq!(cut.flags & 0b10, 0b10, "cut by the stop: {cut:?}");
    assert_eq!(cut.acked_pulses, 1, "{cut:?}");
    let edges = emu.edges();
    assert_eq!(
        edges.iter().filter(|e| e.channel == 0).count(),
        2,
        "{edges:?}"
    );
    let on_us = edges[1].device_us - edges[0].device_us;
    assert!(on_us < 700_000, "cut long before its 800 ms: {on_us} µs");
    rig.send(0, 2, 1, 0);
    let r = rig.next_record();
    assert_eq!(r.status, TriggerStatus::Stopping as u8, "{r:?}");
    let stats = std::sync::Arc::clone(&rig.stats);
    let (_, records) = rig.stop_with_records();
    assert!(records.is_empty(), "{records:?}");
    assert_eq!(stats.unacked.load(Ordering::Relaxed), 0);
    assert_eq!(stats.sent.load(Ordering::Relaxed), 1);
    assert_eq!(
        emu.edges().iter().filter(|e| e.level == 1).count(),
        1,
        "nothing fired after the halt"
    );
    emu.stop();
}
