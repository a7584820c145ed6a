//! The emulated stimulator's link behaviour: bad frames counted and answered, heartbeats,
//! input events, and the port vanishing and coming back.

use super::tests::{Host, WAIT, start};
use super::*;
use crate::stim::codec::msg_type;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

#[test]
fn garbage_and_bad_frames_are_counted_and_answered() {
    let (emu, mut host) = start();
    host.send_raw(b"AT\r\n\x00"); // a modem probe: one bad frame
    host.send_raw(&[0x55; 100]); // overflow
    host.send_raw(&[0]);
    let f = host.expect("overflow FAULT", |m| matches!(m, Message::Fault { .. }));
    assert!(
        matches!(
            f,
            Message::Fault {
                code: fault::RX_OVERFLOW,
                detail: 100,
                ..
            }
        ),
        "{f:?}"
    );
    // Unknown type and bad length (valid CRC) are NACKed, not counted.
    let mut buf = [0u8; 70];
    let n = crate::stim::codec::encode_frame(&[0x7E, 0x34, 0x12], &mut buf);
    host.send_raw(&buf[..n]);
    assert_eq!(
        host.expect("NACK", |m| matches!(m, Message::Nack { .. })),
        Message::Nack {
            seq: 0x1234,
            reason: nack::UNKNOWN_TYPE
        }
    );
    let n = crate::stim::codec::encode_frame(&[msg_type::PULSE, 0x78, 0x56, 0], &mut buf);
    host.send_raw(&buf[..n]);
    assert_eq!(
        host.expect("NACK", |m| matches!(m, Message::Nack { .. })),
        Message::Nack {
            seq: 0x5678,
            reason: nack::BAD_LENGTH
        }
    );
    // A device → host type sent to the device is unknown to it.
    host.send(Message::Ok {
        seq: 3,
        device_us: 0,
    });
    assert_eq!(
        host.expect("NACK", |m| matches!(m, Message::Nack { .. })),
        Message::Nack {
            seq: 3,
            reason: nack::UNKNOWN_TYPE
        }
    );
    let hb = host.expect("HEARTBEAT", |m| {
        matches!(m, Message::DeviceHeartbeat { .. })
    });
    assert!(
        matches!(
            hb,
            Message::DeviceHeartbeat {
                rx_errors: 2,
                faults: fault_bit::RX_OVERFLOW,
                ..
            }
        ),
        "{hb:?}"
    );
    assert_eq!(emu.rx_errors(), 2);
    // Random garbage never upsets it: it still answers.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let junk: Vec<u8> = (0..5000).map(|_| rng.random()).collect();
    host.send_raw(&junk);
    host.send_raw(&[0]);
    host.send(Message::Ping { token: 99 });
    host.wait_for("PONG", |m| matches!(m, Message::Pong { token: 99, .. }));
    assert!(emu.rx_errors() > 2);
}

#[test]
fn heartbeats_every_250_ms_of_device_time() {
    let (_emu, mut host) = start();
    let mut times = Vec::new();
    while times.len() < 3 {
        if let Message::DeviceHeartbeat { device_us, .. } = host.recv(WAIT).expect("no heartbeat") {
            times.push(device_us);
        }
    }
    assert_eq!(times[1] - times[0], HEARTBEAT_PERIOD_US);
    assert_eq!(times[2] - times[1], HEARTBEAT_PERIOD_US);
}

#[test]
fn input_edges_become_input_events() {
    let (emu, mut host) = start();
    let before = emu.device_us();
    emu.set_input(0, true).unwrap();
    emu.set_input(0, true).unwrap(); // no edge
    emu.set_input(0, false).unwrap();
    let a = host.expect("INPUT_EVENT", |m| matches!(m, Message::InputEvent { .. }));
    let b = host.expect("INPUT_EVENT", |m| matches!(m, Message::InputEvent { .. }));
    let (
        Message::InputEvent {
            level: 1,
            count: 1,
            device_us: ta,
            ..
        },
        Message::InputEvent {
            level: 0,
            count: 2,
            device_us: tb,
            ..
        },
    ) = (a, b)
    else {
        panic!("{a:?} {b:?}")
    };
    assert!(before <= ta && ta <= tb);
    assert!(matches!(
        emu.set_input(1, true),
        Err(EmulatorError::NoSuchInput { .. })
    ));
}

#[test]
fn stop_removes_the_port_and_restart_reappears_under_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttySTIM0");
    let mut emu = EmulatedStimulator::start(EmulatorConfig {
        link: Some(link.clone()),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let first = emu.port_path().to_string();
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(&first));
    let mut host = Host::open(link.to_str().unwrap());
    host.ok(|seq| Message::SetLevel {
        seq,
        channel: 0,
        level: 1,
    });

    emu.restart().unwrap();
    // The old port is gone for the host: its reads fail (hang-up) instead of timing out.
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + WAIT;
    loop {
        match host.port.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Ok(_) => {}
            Err(_) => break,
        }
        assert!(Instant::now() < deadline, "the old port never hung up");
    }
    drop(host);
    // A fresh device: outputs off, no edges, same link.
    assert_eq!(emu.levels(), vec![0, 0]);
    assert!(emu.edges().is_empty());
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new(emu.port_path())
    );
    let mut host = Host::open(link.to_str().unwrap());
    host.send(Message::Hello { protocol: 1 });
    host.wait_for("CAPABILITIES", |m| {
        matches!(m, Message::Capabilities { .. })
    });
    drop(host);

    let path = emu.port_path().to_string();
    emu.stop();
    assert!(!Path::new(&path).exists(), "{path} still exists");
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link not removed"
    );
}
