//! The emulated stimulator's safety interlocks: watchdog, maximum on time, duty-cycle cap.

use super::tests::{safety, start};
use super::*;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::time::Duration;

#[test]
fn watchdog_cuts_outputs_latches_and_blocks_until_cleared() {
    let (emu, mut host) = start();
    host.ok(safety(0, 0, 1000, 0, 100));
    let on = host.ok(|seq| Message::SetLevel {
        seq,
        channel: 0,
        level: 1,
    });
    let a = host.next_seq();
    host.send(Message::Pulse {
        seq: a,
        channel: 1,
        width_us: 5_000_000,
        count: 1,
        period_us: 0,
    });
    // Now the host falls silent.
    let (fault_msg, skipped) =
        host.wait_for("watchdog FAULT", |m| matches!(m, Message::Fault { .. }));
    let Message::Fault {
        code,
        detail,
        device_us,
        ..
    } = fault_msg
    else {
        unreachable!()
    };
    assert_eq!((code, detail), (fault::WATCHDOG, 100));
    // The PULSE on channel 1 was the last valid frame.
    let Some(&Message::PulseDone {
        flags,
        rise_us,
        fall_us,
        ..
    }) = skipped.first()
    else {
        panic!("no PULSE_DONE for the cut pulse: {skipped:?}")
    };
    assert_eq!(flags, pulse_flag::CANCELLED);
    assert_eq!(fall_us, device_us);
    assert_eq!(
        device_us - rise_us,
        100_000,
        "cut exactly watchdog_ms after the last frame"
    );
    assert!(rise_us >= on);
    assert_eq!(emu.levels(), vec![0, 0]);
    assert!(
        emu.edges()
            .iter()
            .filter(|e| e.level == 0)
            .all(|e| e.device_us == device_us)
    );
    assert_eq!(emu.faults() & fault_bit::WATCHDOG, fault_bit::WATCHDOG);
    // Reported in the heartbeat.
    let hb = host.expect("HEARTBEAT", |m| {
        matches!(m, Message::DeviceHeartbeat { .. })
    });
    assert!(
        matches!(hb, Message::DeviceHeartbeat { faults, .. } if faults & fault_bit::WATCHDOG != 0)
    );
    // Latched: PULSE and SET_LEVEL 1 are refused, SET_LEVEL 0 is fine.
    assert_eq!(
        host.nack(|seq| Message::Pulse {
            seq,
            channel: 0,
            width_us: 10,
            count: 1,
            period_us: 0
        }),
        nack::FAULT_LATCHED
    );
    assert_eq!(
        host.nack(|seq| Message::SetLevel {
            seq,
            channel: 0,
            level: 1
        }),
        nack::FAULT_LATCHED
    );
    host.ok(|seq| Message::SetLevel {
        seq,
        channel: 0,
        level: 0,
    });
    host.ok(|seq| Message::ClearFaults { seq });
    assert_eq!(emu.faults(), 0);
    host.ok(safety(0, 0, 1000, 0, 0));
    host.ok(|seq| Message::SetLevel {
        seq,
        channel: 0,
        level: 1,
    });
}

#[test]
fn heartbeats_keep_the_watchdog_fed() {
    let (emu, mut host) = start();
    // A 300 ms watchdog fed every ~50 ms.
    host.ok(safety(0, 0, 1000, 0, 300));
    host.ok(|seq| Message::SetLevel {
        seq,
        channel: 0,
        level: 1,
    });
    // Feed with host HEARTBEATs every ~50 ms (paced by waiting for device messages) for more
    // than three watchdog periods.
    let until = emu.device_us() + 1_500_000;
    while emu.device_us() < until {
        host.send(Message::HostHeartbeat);
        if let Some(m) = host.recv(Duration::from_millis(50)) {
            assert!(matches!(m, Message::DeviceHeartbeat { .. }), "{m:?}");
        }
    }
    assert_eq!(emu.faults(), 0, "watchdog fired while fed");
    assert_eq!(emu.levels(), vec![1, 0]);
}

#[test]
fn max_on_cuts_pulses_and_levels() {
    let (emu, mut host) = start();
    host.ok(safety(1, 2_000, 1000, 0, 0));
    let seq = host.next_seq();
    host.send(Message::Pulse {
        seq,
        channel: 1,
        width_us: 5_000,
        count: 2,
        period_us: 10_000,
    });
    for i in 0..2u16 {
        let Message::PulseDone {
            index,
            rise_us,
            fall_us,
            flags,
            ..
        } = host.expect("PULSE_DONE", |m| matches!(m, Message::PulseDone { .. }))
        else {
            unreachable!()
        };
        assert_eq!(
            (index, flags, fall_us - rise_us),
            (i, pulse_flag::MAX_ON_CUT, 2_000)
        );
        let f = host.expect("FAULT", |m| matches!(m, Message::Fault { .. }));
        assert_eq!(
            f,
            Message::Fault {
                code: fault::MAX_ON,
                channel: 1,
                device_us: fall_us,
                detail: 2_000
            }
        );
    }
    assert_eq!(emu.faults(), fault_bit::MAX_ON);
    // Not blocking: a level is accepted, and cut in turn.
    let on = host.ok(|seq| Message::SetLevel {
        seq,
        channel: 1,
        level: 1,
    });
    let f = host.expect("FAULT", |m| matches!(m, Message::Fault { .. }));
    assert_eq!(
        f,
        Message::Fault {
            code: fault::MAX_ON,
            channel: 1,
            device_us: on + 2_000,
            detail: 2_000
        }
    );
    assert_eq!(emu.levels(), vec![0, 0]);
    let hb = host.expect("HEARTBEAT", |m| {
        matches!(m, Message::DeviceHeartbeat { .. })
    });
    assert!(matches!(
        hb,
        Message::DeviceHeartbeat {
            faults: fault_bit::MAX_ON,
            ..
        }
    ));
}

#[test]
fn duty_cycle_cap_refuses_trains_and_skips_pulses() {
    let (emu, mut host) = start();
    // 10 % of a 1 s window: 100 ms of on time.
    host.ok(safety(0, 0, 100, 1000, 0));
    let too_much = |seq| Message::Pulse {
        seq,
        channel: 0,
        width_us: 50_000,
        count: 3,
        period_us: 100_000,
    };
    assert_eq!(host.nack(too_much), nack::DUTY_CYCLE);
    assert!(emu.edges().is_empty(), "nothing started");
    // Exactly at the cap is allowed.
    let seq = host.next_seq();
    host.send(Message::Pulse {
        seq,
        channel: 0,
        width_us: 20_000,
        count: 5,
        period_us: 30_000,
    });
    host.pulse_dones(seq, 5);
    // The window still holds 100 ms: any more is refused.
    assert_eq!(
        host.nack(|seq| Message::Pulse {
            seq,
            channel: 0,
            width_us: 1_000,
            count: 1,
            period_us: 0
        }),
        nack::DUTY_CYCLE
    );
    // Channel 1 has no cap.
    let seq1 = host.next_seq();
    host.send(Message::Pulse {
        seq: seq1,
        channel: 1,
        width_us: 200_000,
        count: 1,
        period_us: 0,
    });
    host.pulse_dones(seq1, 1);

    // A running train whose cap is lowered mid-way has its pulses skipped.
    host.ok(safety(1, 0, 500, 1000, 0));
    let seq2 = host.next_seq();
    host.send(Message::Pulse {
        seq: seq2,
        channel: 1,
        width_us: 10_000,
        count: 4,
        period_us: 100_000,
    });
    host.pulse_dones(seq2, 1);
    host.ok(safety(1, 0, 1, 1000, 0)); // 1 ms per second
    let mut details = Vec::new();
    for _ in 0..3 {
        let (m, _) = host.wait_for("duty FAULT", |m| matches!(m, Message::Fault { .. }));
        let Message::Fault {
            code,
            channel,
            detail,
            ..
        } = m
        else {
            unreachable!()
        };
        assert_eq!((code, channel), (fault::DUTY_CAP, 1));
        details.push(detail);
    }
    assert_eq!(details, vec![1, 2, 3]);
    assert_eq!(emu.faults(), fault_bit::DUTY_CAP);
    // Not blocking: a level still works.
    host.ok(|seq| Message::SetLevel {
        seq,
        channel: 1,
        level: 1,
    });
}

#[test]
fn max_window_on_time_matches_brute_force() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    for _ in 0..500 {
        let mut t = 0u64;
        let mut iv = Vec::new();
        for _ in 0..rng.random_range(0..12) {
            t += rng.random_range(0..50);
            let w = rng.random_range(1..40);
            iv.push((t, t + w));
            t += w;
        }
        let window = rng.random_range(1..120);
        let fast = max_window_on_time(iv.iter().copied(), window);
        let end = t + window;
        let brute = (0..=end)
            .map(|s| {
                iv.iter()
                    .map(|&(r, f)| f.min(s + window).saturating_sub(r.max(s)))
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0);
        assert_eq!(fast, brute, "{iv:?} window {window}");
    }
}
