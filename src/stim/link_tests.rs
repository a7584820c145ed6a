//! The link thread against the emulated stimulator over a real pseudo-terminal: trains
//! acknowledged with the device's edge times, daemon-side limits, reconnection after the port
//! vanishes, commands while the link is down.

use std::sync::atomic::Ordering;

use super::emulator::{EmulatedStimulator, EmulatorConfig};
use super::test_rig::{LinkRig, RigConfig};
use crate::config::output::OutputLimits;
use crate::record::loop_records::TriggerStatus;

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
