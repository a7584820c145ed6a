//! The Firmata link against the emulated StandardFirmata board over a real pseudo-terminal:
//! pins configured as outputs, trains written edge by edge and never early, limits, a train
//! cut (pin low) when the link stops, reconnection after the board vanishes.

use std::path::Path;
use std::time::Duration;

use super::firmata::PinMode;
use super::firmata_board::FirmataBoard;
use super::test_rig::{LinkRig, RigConfig, wait_until};
use std::sync::atomic::Ordering;

use crate::config::output::{OutputLimits, OutputProtocol};
use crate::record::loop_records::{LinkEventKind, TriggerStatus};

fn rig(port: &Path, limits: OutputLimits) -> LinkRig {
    LinkRig::start(RigConfig {
        protocol: OutputProtocol::Firmata,
        channels: vec![9, 10],
        limits,
        ..RigConfig::new(port.display().to_string())
    })
}

fn pin_levels(board: &FirmataBoard, pin: u8) -> Vec<bool> {
    board
        .changes()
        .iter()
        .filter(|c| c.pin == pin)
        .map(|c| c.high)
        .collect()
}

/// A 3-pulse train reaches pin 9 as three rise/fall pairs; the record is host-timed with three
/// pulses written; each pulse's event shows the fall written no earlier than `width` after the
/// rise and each rise no earlier than its place on the train's grid.
#[test]
fn trains_are_written_edge_by_edge_and_never_early() {
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("firmata.tty");
    let board = FirmataBoard::start(Some(&tty)).unwrap();
    let mut rig = rig(&tty, OutputLimits::default());
    rig.wait_connects(1);
    wait_until("pins 9 and 10 as outputs", Duration::from_secs(5), || {
        board.pin_mode(9) == PinMode::Output as u8 && board.pin_mode(10) == PinMode::Output as u8
    });
    rig.send(0, 5, 3, 20);
    let r = rig.next_record();
    assert_eq!(r.status, TriggerStatus::HostTimed as u8, "{r:?}");
    assert_eq!((r.acked_pulses, r.flags), (3, 0));
    assert!(r.sent_ns >= r.decision_ns && r.seq == 1, "{r:?}");
    wait_until("six edges on pin 9", Duration::from_secs(5), || {
        pin_levels(&board, 9).len() >= 6
    });
    assert_eq!(
        pin_levels(&board, 9),
        [true, false, true, false, true, false]
    );
    assert!(pin_levels(&board, 10).is_empty(), "pin 10 untouched");
    let pulses: Vec<_> = rig
        .take_events()
        .into_iter()
        .filter(|e| e.kind == LinkEventKind::HostPulse as u8)
        .collect();
    assert_eq!(pulses.len(), 3);
    for (k, e) in pulses.iter().enumerate() {
        assert_eq!((e.a, e.b), (1, k as i64));
        assert!(
            e.c >= 5_000,
            "pulse {k}: fall written {} µs after rise",
            e.c
        );
        assert!(
            e.host_ns >= r.sent_ns + k as u64 * 20_000_000,
            "pulse {k} rose early"
        );
    }
    rig.stop();
    board.stop();
}

/// Daemon-side limits block before the wire, as does a second train on a busy channel.
#[test]
fn limits_and_a_busy_channel_block_commands() {
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("firmata.tty");
    let board = FirmataBoard::start(Some(&tty)).unwrap();
    let limits = OutputLimits {
        max_on_ms: 300.0,
        max_duty: 1.0,
        ..OutputLimits::default()
    };
    let mut rig = rig(&tty, limits);
    rig.wait_connects(1);
    rig.send(0, 500, 1, 0); // above max_on_ms
    assert_eq!(rig.next_record().status, TriggerStatus::Blocked as u8);
    rig.send(1, 250, 1, 0);
    rig.send(1, 5, 1, 0); // channel 1 is still on
    assert_eq!(rig.next_record().status, TriggerStatus::Blocked as u8);
    assert_eq!(rig.next_record().status, TriggerStatus::HostTimed as u8);
    assert_eq!(
        rig.stats.blocked.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    wait_until("pin 10 back low", Duration::from_secs(5), || {
        pin_levels(&board, 10) == [true, false]
    });
    assert!(pin_levels(&board, 9).is_empty());
    rig.stop();
    board.stop();
}

/// Stopping the link mid-pulse drives the pin low (Firmata boards have no watchdog) and records
/// the train as cut; the pulse happened (the pin was high until the stop's all-low wrote its
/// fall), so it is counted and has its own event with its real times, marked cut by the stop.
#[test]
fn stopping_mid_pulse_drives_the_pin_low_and_records_the_cut_pulse() {
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("firmata.tty");
    let board = FirmataBoard::start(Some(&tty)).unwrap();
    let limits = OutputLimits {
        max_duty: 1.0,
        ..OutputLimits::default()
    };
    let mut rig = rig(&tty, limits);
    rig.wait_connects(1);
    rig.send(0, 900, 1, 0);
    wait_until("pin 9 high", Duration::from_secs(5), || board.level(9));
    let stats = std::sync::Arc::clone(&rig.stats);
    let events_before = rig.take_events();
    let (_, records) = rig.stop_with_records();
    assert_eq!(records.len(), 1);
    let r = records[0];
    assert_eq!(r.flags & 0b10, 0b10, "recorded as cut: {r:?}");
    assert_eq!(r.status, TriggerStatus::HostTimed as u8, "{r:?}");
    assert_eq!(r.acked_pulses, 1, "the pulse happened: {r:?}");
    assert_eq!(stats.cut_by_stop.load(Ordering::Relaxed), 1);
    wait_until("pin 9 low after the stop", Duration::from_secs(5), || {
        !board.level(9)
    });
    assert_eq!(pin_levels(&board, 9), [true, false]);
    assert!(
        !events_before
            .iter()
            .any(|e| e.kind == LinkEventKind::HostPulse as u8)
    );
    board.stop();
}

/// The session stop's halt turns the pin low at once (before the link is told to end), the cut
/// pulse is recorded as a cut host-timed pulse with its rise and on time, and a trigger decided
/// afterwards is recorded as not sent.
#[test]
fn halting_turns_the_pins_low_at_once_and_sends_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("firmata.tty");
    let board = FirmataBoard::start(Some(&tty)).unwrap();
    let limits = OutputLimits {
        max_duty: 1.0,
        ..OutputLimits::default()
    };
    let mut rig = rig(&tty, limits);
    rig.wait_connects(1);
    rig.send(0, 900, 1, 0);
    wait_until("pin 9 high", Duration::from_secs(5), || board.level(9));
    rig.halt();
    wait_until("pin 9 low after the halt", Duration::from_secs(5), || {
        !board.level(9)
    });
    let cut = rig.next_record();
    assert_eq!((cut.acked_pulses, cut.flags & 0b10), (1, 0b10), "{cut:?}");
    let changes = board.changes();
    let (rise, fall) = (changes[0].mono_ns, changes[1].mono_ns);
    let events: Vec<_> = rig
        .take_events()
        .into_iter()
        .filter(|e| e.kind == LinkEventKind::HostPulseCut as u8)
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = events[0];
    assert_eq!((e.a, e.b), (cut.seq as i64, 0));
    // The link stamps a rise when its write has returned; the board may apply it just before.
    assert!(
        e.host_ns.abs_diff(rise) < 50_000_000,
        "recorded rise {} ns, the board's {rise} ns",
        e.host_ns
    );
    let on_us = (fall - rise) as f64 / 1000.0;
    assert!(
        (e.c as f64 - on_us).abs() < 50_000.0 && on_us < 850_000.0,
        "recorded {} µs, board {on_us} µs",
        e.c
    );
    rig.send(0, 5, 1, 0);
    assert_eq!(rig.next_record().status, TriggerStatus::Stopping as u8);
    rig.stop();
    assert_eq!(
        pin_levels(&board, 9),
        [true, false],
        "nothing after the halt"
    );
    board.stop();
}

/// Triggers decided while the board is still in its bootloader (the link is held in
/// "connecting", waiting for the firmware report) are stale once older than the maximum age
/// and are never written, not even after the board boots; a trigger after the boot is.
#[test]
fn triggers_decided_while_the_board_boots_are_stale_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("firmata.tty");
    let board = FirmataBoard::start_held(Some(&tty)).unwrap();
    let mut rig = LinkRig::start(RigConfig {
        protocol: OutputProtocol::Firmata,
        channels: vec![9, 10],
        max_age: Duration::from_millis(20),
        ..RigConfig::new(tty.display().to_string())
    });
    wait_until("the link's firmware query", Duration::from_secs(5), || {
        board.discarded() >= 3
    });
    let decided = crate::clock::monotonic_ns();
    rig.send(0, 5, 1, 0);
    rig.send(1, 5, 1, 0);
    wait_until("the triggers to age", Duration::from_secs(5), || {
        crate::clock::monotonic_ns() > decided + 40_000_000
    });
    board.boot();
    rig.wait_connects(1);
    for _ in 0..2 {
        let r = rig.next_record();
        assert_eq!(r.status, TriggerStatus::Stale as u8, "{r:?}");
        assert_eq!((r.sent_ns, r.acked_pulses), (0, 0), "{r:?}");
    }
    rig.send(0, 5, 1, 0);
    assert_eq!(rig.next_record().status, TriggerStatus::HostTimed as u8);
    rig.stop();
    wait_until("the fresh pulse's fall", Duration::from_secs(5), || {
        pin_levels(&board, 9).len() >= 2
    });
    assert_eq!(
        pin_levels(&board, 9),
        [true, false],
        "only the fresh trigger"
    );
    assert!(
        pin_levels(&board, 10).is_empty(),
        "the stale one never fired"
    );
    board.stop();
}

/// The board vanishes (its pty closes) and returns under the same path: the link records the
/// outage, reconnects, sets the pins up again and the next train is written.
#[test]
fn the_link_reconnects_when_the_board_returns() {
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("firmata.tty");
    let board = FirmataBoard::start(Some(&tty)).unwrap();
    let mut rig = rig(&tty, OutputLimits::default());
    rig.wait_connects(1);
    board.stop();
    let board = FirmataBoard::start(Some(&tty)).unwrap();
    rig.wait_connects(2);
    wait_until("pin 9 an output again", Duration::from_secs(5), || {
        board.pin_mode(9) == PinMode::Output as u8
    });
    rig.send(0, 2, 1, 0);
    let r = rig.next_record();
    assert_eq!(r.status, TriggerStatus::HostTimed as u8, "{r:?}");
    let kinds: Vec<u8> = rig
        .take_events()
        .iter()
        .map(|e| e.kind)
        .filter(|&k| k != LinkEventKind::HostPulse as u8)
        .collect();
    assert_eq!(
        kinds,
        [
            LinkEventKind::Connected as u8,
            LinkEventKind::Disconnected as u8,
            LinkEventKind::Connected as u8
        ]
    );
    rig.stop();
    wait_until("the pulse on the new board", Duration::from_secs(5), || {
        pin_levels(&board, 9) == [true, false]
    });
    board.stop();
}
