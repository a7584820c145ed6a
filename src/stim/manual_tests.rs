//! Manual test pulses through a real link thread (the emulated StandardFirmata board on a
//! pseudo-terminal): the pulse is written like a rule's trigger and answered, a second one in
//! the refractory period is blocked with the limit, and one given up on is never sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::firmata_board::FirmataBoard;
use super::manual::{ManualPulse, PulseOutcome};
use super::test_rig::{LinkRig, RigConfig, wait_until};
use crate::clock::monotonic_ns;
use crate::config::output::{OutputLimits, OutputProtocol};
use crate::record::loop_records::{TriggerRecord, TriggerStatus};
use crate::reply::Reply;

fn pulse(rig: &LinkRig, manual: u32, width_ms: u64) -> Arc<Reply<PulseOutcome>> {
    let reply = Arc::new(Reply::for_current_thread());
    let now = monotonic_ns();
    assert!(rig.manual.push(ManualPulse {
        record: TriggerRecord {
            rule: 7,
            pulse_width_ns: width_ms * 1_000_000,
            pulses: 1,
            decision_ns: now,
            capture_ns: now,
            manual,
            ..TriggerRecord::default()
        },
        reply: Arc::clone(&reply),
    }));
    rig.wake();
    reply
}

#[test]
fn manual_pulses_pass_the_limits_and_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("firmata.tty");
    let board = FirmataBoard::start(Some(&tty)).unwrap();
    let mut rig = LinkRig::start(RigConfig {
        protocol: OutputProtocol::Firmata,
        channels: vec![9],
        limits: OutputLimits {
            refractory_s: 5.0,
            ..OutputLimits::default()
        },
        ..RigConfig::new(tty.display().to_string())
    });
    rig.wait_connects(1);
    let deadline = || Instant::now() + Duration::from_secs(10);
    let first = pulse(&rig, 1, 5);
    let got = *first.wait(deadline(), Duration::ZERO).unwrap();
    assert_eq!(got.record.status, TriggerStatus::HostTimed as u8, "{got:?}");
    assert_eq!((got.record.manual, got.record.acked_pulses), (1, 1));
    assert!(got.blocked_by.is_none());
    wait_until("pin 9 up and down", Duration::from_secs(5), || {
        board.changes().iter().filter(|c| c.pin == 9).count() >= 2
    });
    // The same record reaches the recorder's ring, like a rule's trigger.
    let recorded = rig.next_record();
    assert_eq!((recorded.manual, recorded.rule), (1, 7));
    let second = pulse(&rig, 2, 5);
    let got = *second.wait(deadline(), Duration::ZERO).unwrap();
    assert_eq!(got.record.status, TriggerStatus::Blocked as u8);
    assert_eq!(got.blocked_by, Some("refractory period of the output"));
    assert_eq!(rig.next_record().status, TriggerStatus::Blocked as u8);
    assert_eq!(
        board.changes().iter().filter(|c| c.pin == 9).count(),
        2,
        "the blocked pulse never reached the pin"
    );
}

/// A pulse whose caller gave up before the link took it is dropped unsent.
#[test]
fn an_abandoned_manual_pulse_is_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("firmata.tty");
    // No board yet: the link is connecting and does not take commands it cannot write...
    let rig = LinkRig::start(RigConfig {
        protocol: OutputProtocol::Firmata,
        channels: vec![9],
        ..RigConfig::new(tty.display().to_string())
    });
    let reply = pulse(&rig, 1, 5);
    // ... or takes it and answers "link down": either way it is answered or abandoned.
    match reply.wait(Instant::now(), Duration::from_secs(5)) {
        Err(true) => {
            let board = FirmataBoard::start(Some(&tty)).unwrap();
            rig.wait_connects(1);
            let later = pulse(&rig, 2, 5);
            let got = *later
                .wait(Instant::now() + Duration::from_secs(10), Duration::ZERO)
                .unwrap();
            assert_eq!(got.record.manual, 2, "the abandoned pulse 1 was skipped");
            wait_until("pin 9 up and down", Duration::from_secs(5), || {
                board.changes().iter().filter(|c| c.pin == 9).count() >= 2
            });
            assert_eq!(board.changes().iter().filter(|c| c.pin == 9).count(), 2);
        }
        Ok(got) => assert_eq!(got.record.status, TriggerStatus::LinkDown as u8),
        Err(false) => panic!("claimed but never answered"),
    }
}
