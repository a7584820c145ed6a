//! The emulator through its pty, spoken to with the codec as a host would. Synchronisation is by
//! waiting for messages with timeouts, never by sleeping.

use super::*;
use crate::stim::codec::pulse_flag;
use std::collections::VecDeque;

pub(super) const WAIT: Duration = Duration::from_secs(3);

pub(super) struct Host {
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
    pub(super) port: TTYPort,
    dec: FrameDecoder,
    pending: VecDeque<Message>,
    seq: u16,
}

impl Host {
    pub(super) fn open(path: &str) -> Self {
        let mut port = serialport::new(path, 115_200)
            .timeout(Duration::from_millis(10))
            .open_native()
            .unwrap_or_else(|e| panic!("opening {path}: {e}"));
        port.write_all(&[0]).unwrap();
        Self {
            _one_at_a_time: crate::stim::emulator::test_lock(),
            port,
            dec: FrameDecoder::new(),
            pending: VecDeque::new(),
            seq: 0,
        }
    }

    pub(super) fn send(&mut self, m: Message) {
        self.port.write_all(m.to_frame().as_bytes()).unwrap();
    }

    pub(super) fn send_raw(&mut self, bytes: &[u8]) {
        self.port.write_all(bytes).unwrap();
    }

    pub(super) fn next_seq(&mut self) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// The next message, or None after `timeout`.
    pub(super) fn recv(&mut self, timeout: Duration) -> Option<Message> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 256];
        loop {
            if let Some(m) = self.pending.pop_front() {
                return Some(m);
            }
            if Instant::now() >= deadline {
                return None;
            }
            match self.port.read(&mut buf) {
                Ok(n) => {
                    for r in self.dec.feed(&buf[..n]) {
                        self.pending
                            .push_back(r.unwrap_or_else(|e| panic!("host got a bad frame: {e}")));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("host read: {e}"),
            }
        }
    }

    /// Waits for the first message matching `pred`, skipping device heartbeats; any other
    /// message skipped is returned too, for the test to check.
    pub(super) fn wait_for(
        &mut self,
        what: &str,
        pred: impl Fn(&Message) -> bool,
    ) -> (Message, Vec<Message>) {
        let deadline = Instant::now() + WAIT;
        let mut skipped = Vec::new();
        while let Some(m) = self.recv(deadline.saturating_duration_since(Instant::now())) {
            if pred(&m) {
                return (m, skipped);
            }
            if !matches!(m, Message::DeviceHeartbeat { .. }) {
                skipped.push(m);
            }
        }
        panic!("timed out waiting for {what}; skipped {skipped:?}");
    }

    pub(super) fn expect(&mut self, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
        let (m, skipped) = self.wait_for(what, pred);
        assert!(skipped.is_empty(), "before {what}: unexpected {skipped:?}");
        m
    }

    /// Sends a command with a fresh seq and returns the OK's device time (panics on NACK).
    pub(super) fn ok(&mut self, make: impl FnOnce(u16) -> Message) -> u64 {
        let seq = self.next_seq();
        let m = make(seq);
        self.send(m);
        match self.expect(
            "OK or NACK",
            |r| matches!(r, Message::Ok { seq: s, .. } | Message::Nack { seq: s, .. } if *s == seq),
        ) {
            Message::Ok { device_us, .. } => device_us,
            other => panic!("{m:?} answered {other:?}"),
        }
    }

    pub(super) fn nack(&mut self, make: impl FnOnce(u16) -> Message) -> u8 {
        let seq = self.next_seq();
        let m = make(seq);
        self.send(m);
        match self.expect(
            "NACK",
            |r| matches!(r, Message::Ok { seq: s, .. } | Message::Nack { seq: s, .. } if *s == seq),
        ) {
            Message::Nack { reason, .. } => reason,
            other => panic!("{m:?} answered {other:?}"),
        }
    }

    pub(super) fn pulse_dones(&mut self, seq: u16, n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| {
                self.expect(
                    &format!("PULSE_DONE {i} of seq {seq}"),
                    |m| matches!(m, Message::PulseDone { seq: s, .. } if *s == seq),
                )
            })
            .collect()
    }
}

pub(super) fn start() -> (EmulatedStimulator, Host) {
    let emu = EmulatedStimulator::start(EmulatorConfig::default()).unwrap();
    let host = Host::open(emu.port_path());
    (emu, host)
}

pub(super) fn safety(
    ch: u8,
    max_on_us: u32,
    duty: u16,
    window_ms: u16,
    watchdog_ms: u16,
) -> impl FnOnce(u16) -> Message {
    move |seq| Message::SetSafety {
        seq,
        channel: ch,
        max_on_us,
        max_duty_permille: duty,
        duty_window_ms: window_ms,
        watchdog_ms,
    }
}

#[test]
fn hello_gets_capabilities() {
    let (emu, mut host) = start();
    assert!(
        emu.port_path().starts_with("/dev/pts/"),
        "{}",
        emu.port_path()
    );
    host.send(Message::Hello { protocol: 1 });
    let caps = host.expect("CAPABILITIES", |m| {
        matches!(m, Message::Capabilities { .. })
    });
    assert_eq!(
        caps,
        Message::Capabilities {
            protocol: 1,
            fw_major: 1,
            fw_minor: 0,
            fw_patch: 0,
            channels: 2,
            inputs: 1,
            tick_ns: 1000,
            board: *b"emulator",
        }
    );
}

#[test]
fn ping_pong_on_the_device_clock() {
    let cfg = EmulatorConfig {
        clock_offset_us: Some(5_000_000_000),
        drift_ppm: 100.0,
        ..EmulatorConfig::default()
    };
    let emu = EmulatedStimulator::start(cfg).unwrap();
    let mut host = Host::open(emu.port_path());
    let clock = emu.clock().unwrap();
    let mut last = 0;
    for token in [7u32, 0, u32::MAX] {
        let before = clock.at_monotonic_ns(crate::clock::monotonic_ns());
        host.send(Message::Ping { token });
        let pong = host.expect("PONG", |m| matches!(m, Message::Pong { .. }));
        let after = clock.at_monotonic_ns(crate::clock::monotonic_ns());
        let Message::Pong {
            token: t,
            device_us,
        } = pong
        else {
            unreachable!()
        };
        assert_eq!(t, token);
        assert!(
            (before..=after).contains(&device_us),
            "{before} <= {device_us} <= {after}"
        );
        assert!(device_us > last && device_us >= 5_000_000_000);
        last = device_us;
    }
}

#[test]
fn pulse_train_edges_and_acknowledgements_agree() {
    let (emu, mut host) = start();
    let seq = host.next_seq();
    let sent = Instant::now();
    host.send(Message::Pulse {
        seq,
        channel: 0,
        width_us: 10_000,
        count: 5,
        period_us: 50_000,
    });
    let dones = host.pulse_dones(seq, 5);
    let elapsed = sent.elapsed();
    let mut rises = Vec::new();
    for (i, d) in dones.iter().enumerate() {
        let Message::PulseDone {
            channel,
            index,
            rise_us,
            fall_us,
            flags,
            ..
        } = *d
        else {
            unreachable!()
        };
        assert_eq!((channel, index as usize, flags), (0, i, 0));
        assert_eq!(fall_us - rise_us, 10_000, "pulse {i} width");
        rises.push(rise_us);
    }
    for (i, r) in rises.iter().enumerate() {
        assert_eq!(r - rises[0], i as u64 * 50_000, "pulse {i} period");
    }
    // The edge log holds exactly the acknowledged edges.
    let expected: Vec<Edge> = dones
        .iter()
        .flat_map(|d| {
            let Message::PulseDone {
                rise_us, fall_us, ..
            } = *d
            else {
                unreachable!()
            };
            [
                Edge {
                    channel: 0,
                    level: 1,
                    device_us: rise_us,
                },
                Edge {
                    channel: 0,
                    level: 0,
                    device_us: fall_us,
                },
            ]
        })
        .collect();
    assert_eq!(emu.edges(), expected);
    assert_eq!(emu.levels(), vec![0, 0]);
    // It ran in real time: the last acknowledgement cannot come before the last falling edge
    // (210 ms after the start, minus a millisecond of scheduling tolerance).
    assert!(elapsed >= Duration::from_micros(209_000), "{elapsed:?}");
}

#[test]
fn single_pulse_ignores_period_and_other_channel_is_independent() {
    let (emu, mut host) = start();
    let a = host.next_seq();
    host.send(Message::Pulse {
        seq: a,
        channel: 1,
        width_us: 1,
        count: 1,
        period_us: 0,
    });
    let b = host.next_seq();
    host.send(Message::Pulse {
        seq: b,
        channel: 0,
        width_us: 3_000,
        count: 2,
        period_us: 4_000,
    });
    let mut got = Vec::new();
    while got.len() < 3 {
        let (m, _) = host.wait_for("PULSE_DONE", |m| matches!(m, Message::PulseDone { .. }));
        got.push(m);
    }
    let ch1: Vec<_> = got
        .iter()
        .filter(|m| matches!(m, Message::PulseDone { channel: 1, .. }))
        .collect();
    assert_eq!(ch1.len(), 1);
    let Message::PulseDone {
        rise_us,
        fall_us,
        seq,
        ..
    } = *ch1[0]
    else {
        unreachable!()
    };
    assert_eq!((seq, fall_us - rise_us), (a, 1));
    let edges = emu.edges();
    assert_eq!(edges.iter().filter(|e| e.channel == 0).count(), 4);
    assert_eq!(edges.iter().filter(|e| e.channel == 1).count(), 2);
    assert!(edges.windows(2).all(|w| w[0].device_us <= w[1].device_us));
}

#[test]
fn replacing_pulse_and_stop_all_cut_the_running_pulse() {
    let (emu, mut host) = start();
    let a = host.next_seq();
    host.send(Message::Pulse {
        seq: a,
        channel: 0,
        width_us: 2_000_000,
        count: 3,
        period_us: 3_000_000,
    });
    // Wait until the first pulse is on (edge log), then replace the train.
    let deadline = Instant::now() + WAIT;
    while emu.levels()[0] == 0 {
        assert!(Instant::now() < deadline, "pulse never started");
        std::thread::yield_now();
    }
    let b = host.next_seq();
    host.send(Message::Pulse {
        seq: b,
        channel: 0,
        width_us: 1_000_000,
        count: 1,
        period_us: 0,
    });
    let Message::PulseDone {
        index,
        flags,
        rise_us,
        fall_us,
        ..
    } = host.expect("cut PULSE_DONE", |m| matches!(m, Message::PulseDone { .. }))
    else {
        unreachable!()
    };
    assert_eq!((index, flags), (0, pulse_flag::CANCELLED));
    assert!(fall_us > rise_us && fall_us - rise_us < 2_000_000);
    // The replacing train starts at the cut; STOP_ALL cuts it in turn (PULSE_DONE, then OK).
    let stop_seq = host.next_seq();
    host.send(Message::StopAll { seq: stop_seq });
    let (ok, skipped) = host.wait_for("OK", |m| matches!(m, Message::Ok { .. }));
    let Message::Ok {
        seq: s,
        device_us: stop_at,
    } = ok
    else {
        unreachable!()
    };
    assert_eq!(s, stop_seq);
    assert_eq!(
        skipped,
        vec![Message::PulseDone {
            seq: b,
            channel: 0,
            index: 0,
            rise_us: fall_us,
            fall_us: stop_at,
            flags: pulse_flag::CANCELLED
        }]
    );
    let edges = emu.edges();
    assert_eq!(edges.len(), 4, "{edges:?}");
    assert_eq!(
        edges[2],
        Edge {
            channel: 0,
            level: 1,
            device_us: fall_us
        }
    );
    assert_eq!(
        edges[3],
        Edge {
            channel: 0,
            level: 0,
            device_us: stop_at
        }
    );
    assert_eq!(emu.levels(), vec![0, 0]);
}

#[test]
fn set_level_holds_until_changed() {
    let (emu, mut host) = start();
    let on = host.ok(|seq| Message::SetLevel {
        seq,
        channel: 1,
        level: 1,
    });
    assert_eq!(emu.levels(), vec![0, 1]);
    // A second SET_LEVEL 1 makes no edge.
    host.ok(|seq| Message::SetLevel {
        seq,
        channel: 1,
        level: 1,
    });
    let off = host.ok(|seq| Message::SetLevel {
        seq,
        channel: 1,
        level: 0,
    });
    assert_eq!(
        emu.edges(),
        vec![
            Edge {
                channel: 1,
                level: 1,
                device_us: on
            },
            Edge {
                channel: 1,
                level: 0,
                device_us: off
            }
        ]
    );
}

#[test]
fn bad_arguments_are_nacked() {
    let (emu, mut host) = start();
    let pulse = |channel, width_us, count, period_us| {
        move |seq| Message::Pulse {
            seq,
            channel,
            width_us,
            count,
            period_us,
        }
    };
    assert_eq!(host.nack(pulse(2, 10, 1, 0)), nack::BAD_CHANNEL);
    assert_eq!(host.nack(pulse(0, 0, 1, 0)), nack::BAD_ARGUMENT);
    assert_eq!(host.nack(pulse(0, 10, 0, 100)), nack::BAD_ARGUMENT);
    assert_eq!(host.nack(pulse(0, 10, 2, 10)), nack::BAD_ARGUMENT);
    assert_eq!(
        host.nack(|seq| Message::SetLevel {
            seq,
            channel: 0,
            level: 2
        }),
        nack::BAD_ARGUMENT
    );
    assert_eq!(
        host.nack(|seq| Message::SetLevel {
            seq,
            channel: 9,
            level: 1
        }),
        nack::BAD_CHANNEL
    );
    assert_eq!(host.nack(safety(0, 0, 0, 1000, 0)), nack::BAD_ARGUMENT);
    assert_eq!(host.nack(safety(0, 0, 1001, 1000, 0)), nack::BAD_ARGUMENT);
    assert_eq!(host.nack(safety(5, 0, 1000, 0, 0)), nack::BAD_CHANNEL);
    assert!(emu.edges().is_empty());
}
