//! The control writer against the DAQ emulator: coalescing, the per-frame packet bound,
//! the settle delay, and the firmware semantics the emulator reproduces.

use super::DAQ_QUEUE_SLOTS;
use super::controls::ControlValue;
use super::daq::{DaqConfig, DaqEmulator, DaqEvent};
use super::packet::I2cPacket;
use super::test_rig::{Rig, packet, packets, v4_bno, writes_as_packets};
use super::uvc::{CtSelector, PuSelector, UvcControl, UvcError};
use super::writer::{ControlWriter, Wake, WriterConfig};

/// Writes one packet's three words straight to the emulator, 200 µs apart.
fn send_raw(daq: &mut DaqEmulator, words: [(PuSelector, u16); 3]) {
    for (s, v) in words {
        daq.set_time_ns(daq.now_ns() + 200_000);
        daq.set_pu(s, v).unwrap();
    }
    daq.set_time_ns(daq.now_ns() + 200_000);
}

fn distinct_packets(n: usize) -> Vec<super::KeyedPacket> {
    (0..n)
        .map(|i| packet(&[0xC0, (i % 256) as u8, (i / 256) as u8]))
        .collect()
}

#[test]
fn two_led_writes_before_a_frame_become_one_write_of_the_last_value() {
    let v4 = v4_bno();
    let mut rig = Rig::standard();
    rig.writer
        .enqueue_all(&packets(&v4, "led0", ControlValue::Slider(50.0)))
        .unwrap();
    rig.writer
        .enqueue_all(&packets(&v4, "led0", ControlValue::Slider(10.0)))
        .unwrap();
    assert_eq!(rig.writer.pending_len(), 2);
    rig.run_frame();
    assert_eq!(
        writes_as_packets(&rig.daq.take_writes()),
        [vec![0x20, 0x01, 0xE5], vec![0x58, 0x00, 0x72, 0xE5]]
    );
    assert_eq!(rig.writer.stats().packets_coalesced, 2);
    assert_eq!(rig.writer.stats().packets_committed, 2);
}

#[test]
fn coalescing_keeps_first_queued_order_and_spares_the_packet_in_flight() {
    let v4 = v4_bno();
    let mut rig = Rig::standard();
    let led = |v| packets(&v4, "led0", ControlValue::Slider(v));
    rig.writer.enqueue_all(&led(50.0)).unwrap();
    rig.writer
        .enqueue_all(&packets(&v4, "ewl", ControlValue::Slider(0.0)))
        .unwrap();
    // One word of [20 01 7F] goes out: that packet is in flight and cannot be replaced.
    assert!(matches!(
        rig.writer.poll(0, &mut rig.daq).unwrap(),
        Wake::At(200_000)
    ));
    rig.writer.enqueue_all(&led(10.0)).unwrap();
    rig.run_frame();
    assert_eq!(
        writes_as_packets(&rig.daq.take_writes()),
        [
            vec![0x20, 0x01, 0x7F],
            vec![0x58, 0x00, 0x72, 0xE5],
            vec![0xEE, 0x08, 0x7F, 0x02],
            vec![0x20, 0x01, 0xE5],
        ]
    );
}

#[test]
fn the_writer_commits_at_most_its_budget_between_two_frames() {
    for budget in [1, 31, 63] {
        let mut rig = Rig::new(
            WriterConfig {
                max_packets_per_frame: budget,
                ..WriterConfig::default()
            },
            DaqConfig::default(),
        );
        let sent = distinct_packets(150);
        rig.writer.enqueue_all(&sent).unwrap();
        let mut frames = 0;
        while !rig.writer.is_idle() {
            assert!(rig.writer.committed_this_frame() <= budget);
            rig.run_frame();
            frames += 1;
            assert_eq!(rig.daq.queued_packets(), 0);
        }
        rig.run_frame();
        let writes = rig.daq.take_writes();
        assert_eq!(
            writes_as_packets(&writes),
            sent.iter()
                .map(|p| p.packet.as_bytes().to_vec())
                .collect::<Vec<_>>(),
            "budget {budget}: every packet executed once, in order"
        );
        for f in 1..=rig.daq.frame_counter() {
            let n = writes.iter().filter(|w| w.frame == f).count();
            assert!(n <= budget, "budget {budget}: {n} writes at frame {f}");
        }
        assert_eq!(frames, 150usize.div_ceil(budget), "budget {budget}");
    }
}

#[test]
fn writer_refuses_a_budget_the_ring_cannot_hold() {
    for bad in [0, DAQ_QUEUE_SLOTS, 100] {
        let config = WriterConfig {
            max_packets_per_frame: bad,
            ..WriterConfig::default()
        };
        let err = ControlWriter::new(config).unwrap_err().to_string();
        assert!(err.contains("max_packets_per_frame"), "{err}");
    }
    assert!(WriterConfig::default().max_packets_per_frame * 2 < DAQ_QUEUE_SLOTS);
}

/// Why the bound exists: the firmware ring has no overflow check, so 64 packets between
/// two frames look like an empty ring and 65 leave only the last one.
#[test]
fn the_daq_ring_loses_packets_when_64_or_more_arrive_between_frames() {
    for (sent, expected_executed) in [(63usize, 63usize), (64, 0), (65, 1)] {
        let mut daq = DaqEmulator::new(DaqConfig::default());
        let packets = distinct_packets(sent);
        for p in &packets {
            send_raw(&mut daq, p.packet.pack().writes());
        }
        daq.end_of_frame();
        let writes = writes_as_packets(daq.writes());
        assert_eq!(writes.len(), expected_executed, "{sent} packets");
        if sent == 65 {
            assert_eq!(
                writes[0],
                packets[64].packet.as_bytes(),
                "the 65th overwrote slot 0"
            );
        }
    }
}

#[test]
fn the_writer_waits_the_settle_delay_after_every_write() {
    let mut rig = Rig::standard();
    rig.writer.enqueue(packet(&[0x20, 0x01, 0x7F])).unwrap();
    assert_eq!(
        rig.writer.poll(1_000, &mut rig.daq).unwrap(),
        Wake::At(201_000)
    );
    assert_eq!(
        rig.writer.poll(200_999, &mut rig.daq).unwrap(),
        Wake::At(201_000)
    );
    assert_eq!(
        rig.writer.stats().words_written,
        1,
        "too early: nothing written"
    );
    assert_eq!(
        rig.writer.poll(201_000, &mut rig.daq).unwrap(),
        Wake::At(401_000)
    );
    assert_eq!(rig.writer.poll(401_000, &mut rig.daq).unwrap(), Wake::Idle);
    assert_eq!(rig.writer.stats().words_written, 3);
    rig.writer.hold_until(5_000_000);
    rig.writer.enqueue(packet(&[0x20, 0x01, 0x00])).unwrap();
    assert_eq!(
        rig.writer.poll(500_000, &mut rig.daq).unwrap(),
        Wake::At(5_000_000)
    );
}

/// With no settle delay the emulated FX3 loses writes (the follow-up overwrites the
/// previous one); with the default delay it loses none.
#[test]
fn writes_closer_than_the_fx3_spacing_are_lost() {
    let v4 = v4_bno();
    for (settle_ns, loses) in [
        (0, true),
        (50_000, true),
        (100_000, false),
        (200_000, false),
    ] {
        let mut rig = Rig::new(
            WriterConfig {
                settle_ns,
                ..WriterConfig::default()
            },
            DaqConfig::default(),
        );
        rig.writer
            .enqueue_all(&packets(&v4, "led0", ControlValue::Slider(50.0)))
            .unwrap();
        rig.run_frame();
        rig.run_frame();
        let executed = rig.daq.writes().len();
        assert_eq!(rig.daq.lost_writes() > 0, loses, "settle {settle_ns} ns");
        assert_eq!(
            executed == 2,
            !loses,
            "settle {settle_ns} ns: {executed} writes"
        );
    }
}

#[test]
fn body_and_tail_may_come_in_either_order_but_need_a_head_first() {
    let p = I2cPacket::new(&[0x58, 0x00, 0x72, 0x7F]).unwrap().pack();
    let mut daq = DaqEmulator::new(DaqConfig::default());
    send_raw(
        &mut daq,
        [
            (PuSelector::Contrast, p.contrast),
            (PuSelector::Sharpness, p.sharpness),
            (PuSelector::Gamma, p.gamma),
        ],
    );
    // Body and tail before a head: CONTRAST restarts assembly, so nothing commits.
    send_raw(
        &mut daq,
        [
            (PuSelector::Gamma, p.gamma),
            (PuSelector::Sharpness, p.sharpness),
            (PuSelector::Contrast, p.contrast),
        ],
    );
    daq.end_of_frame();
    assert_eq!(
        writes_as_packets(daq.writes()),
        [vec![0x58, 0x00, 0x72, 0x7F]]
    );
}

#[test]
fn a_length_one_packet_is_reported_not_written() {
    let mut daq = DaqEmulator::new(DaqConfig::default());
    send_raw(&mut daq, I2cPacket::new(&[0xC0]).unwrap().pack().writes());
    daq.end_of_frame();
    assert!(daq.writes().is_empty());
    assert_eq!(
        daq.events(),
        [DaqEvent::BadLength {
            frame: 1,
            length: 1
        }]
    );
}

#[test]
fn frame_counter_reads_wrap_at_16_bits_on_contrast_and_ct_exposure() {
    let mut daq = DaqEmulator::new(DaqConfig::default());
    daq.set_frame_counter(0xFFFE);
    daq.end_of_frame();
    assert_eq!(daq.get_pu(PuSelector::Contrast), Ok(0xFFFF));
    daq.end_of_frame();
    assert_eq!(daq.get_pu(PuSelector::Contrast), Ok(0x0000));
    assert_eq!(daq.frame_counter(), 0x1_0000, "32 bits inside");
    let mut b = [0xAAu8; 4];
    daq.get_ct(CtSelector::ExposureTimeAbsolute, &mut b)
        .unwrap();
    assert_eq!(b, [0, 0, 0, 0]);
    daq.end_of_frame();
    daq.get_ct(CtSelector::ExposureTimeAbsolute, &mut b)
        .unwrap();
    assert_eq!(b, [1, 0, 0, 0]);
    let mut short = [0u8; 2];
    assert!(matches!(
        daq.get_ct(CtSelector::ExposureTimeAbsolute, &mut short),
        Err(UvcError::BufferSize {
            expected: 4,
            got: 2,
            ..
        })
    ));
}

#[test]
fn bno_is_polled_only_after_fe00_and_only_at_end_of_frame() {
    let mut daq = DaqEmulator::new(DaqConfig::default());
    let q = [16384, -2, 300, -16000];
    daq.set_bno_quaternion(q);
    daq.end_of_frame();
    assert_eq!(daq.get_pu(PuSelector::Saturation), Ok(0), "polling off");
    send_raw(
        &mut daq,
        I2cPacket::new(&[0xFE, 0x00]).unwrap().pack().writes(),
    );
    assert!(!daq.bno_polling(), "DAQ commands wait for end of frame");
    daq.end_of_frame();
    assert!(daq.bno_polling());
    assert_eq!(
        daq.events(),
        [DaqEvent::Command {
            frame: 2,
            command: 0
        }]
    );
    let pu: Vec<i16> = [
        PuSelector::Saturation,
        PuSelector::Hue,
        PuSelector::Gain,
        PuSelector::Brightness,
    ]
    .iter()
    .map(|&s| daq.get_pu(s).unwrap() as i16)
    .collect();
    assert_eq!(pu, q);
    let mut b = [0u8; 8];
    daq.get_ct(CtSelector::PanTiltAbsolute, &mut b).unwrap();
    assert_eq!(b, [0x00, 0x40, 0xFE, 0xFF, 0x2C, 0x01, 0x80, 0xC1]);
    daq.set_bno_quaternion([0; 4]);
    assert_eq!(
        daq.get_pu(PuSelector::Saturation),
        Ok(16384),
        "copy changes only at EOF"
    );
    assert_eq!(daq.bno_reads(), 1);
}

#[test]
fn abi_query_answers_once_on_abi_2_and_never_on_abi_1() {
    let mut daq = DaqEmulator::new(DaqConfig::default());
    daq.set_pu(PuSelector::Saturation, 1).unwrap();
    daq.set_time_ns(200_000);
    daq.set_pu(PuSelector::Saturation, 0x0002).unwrap();
    daq.set_time_ns(400_000);
    assert_eq!(daq.get_pu(PuSelector::Hue), Ok(2));
    assert_eq!(daq.get_pu(PuSelector::Hue), Ok(0), "then BNO x again");
    assert!(!daq.recording(), "0x0002 clears the recording bit");

    let mut old = DaqEmulator::new(DaqConfig {
        abi_version: 1,
        ..DaqConfig::default()
    });
    old.set_pu(PuSelector::Saturation, 0x0002).unwrap();
    old.set_time_ns(200_000);
    assert_eq!(old.get_pu(PuSelector::Hue), Ok(0));
    let mut b = [0u8; 8];
    assert!(matches!(
        old.get_ct(CtSelector::PanTiltAbsolute, &mut b),
        Err(UvcError::Unsupported {
            unit: 1,
            selector: 0x0D
        })
    ));
}

#[test]
fn sync_output_toggles_each_frame_only_while_recording() {
    let mut daq = DaqEmulator::new(DaqConfig::default());
    daq.end_of_frame();
    assert_eq!(daq.sync_output(), (false, 0));
    daq.set_pu(PuSelector::Saturation, 1).unwrap();
    daq.set_time_ns(200_000);
    for _ in 0..5 {
        daq.end_of_frame();
    }
    assert_eq!(daq.sync_output(), (true, 5));
    daq.set_pu(PuSelector::Saturation, 0).unwrap();
    daq.set_time_ns(400_000);
    daq.end_of_frame();
    assert_eq!(daq.sync_output(), (true, 5));
}

#[test]
fn trigger_input_reads_its_raw_level_on_gamma() {
    let mut daq = DaqEmulator::new(DaqConfig::default());
    assert_eq!(daq.get_pu(PuSelector::Gamma), Ok(0), "pull-down");
    daq.set_trigger_input(true);
    assert_eq!(daq.get_pu(PuSelector::Gamma), Ok(1));
}

#[test]
fn hard_reset_command_restarts_the_daq_and_drops_the_rest_of_the_queue() {
    let mut daq = DaqEmulator::new(DaqConfig::default());
    for _ in 0..3 {
        daq.end_of_frame();
    }
    for p in [[0xFE, 0x00].as_slice(), &[0xFE, 0x01], &[0x20, 0x01, 0x7F]] {
        send_raw(&mut daq, I2cPacket::new(p).unwrap().pack().writes());
    }
    daq.end_of_frame();
    assert_eq!(daq.resets(), 1);
    assert_eq!(daq.frame_counter(), 0);
    assert!(!daq.bno_polling());
    assert!(
        daq.writes().is_empty(),
        "the LED write after the reset never ran"
    );
    daq.end_of_frame();
    assert!(daq.writes().is_empty());
}
