//! Every worked example of the packing and the V4_BNO init sequence (docs/miniscope.md), from
//! the control value to the three words, and through the writer and the DAQ emulator to the
//! I2C writes performed at the next end of frame.

use super::controls::{ConnectStep, ControlValue, connect_sequence, serdes_mode_packets};
use super::packet::ControlWords;
use super::test_rig::{Rig, bytes_of, packet, packets, v4_bno, writes_as_packets};
use super::uvc::PuSelector;
use super::{Catalog, I2cWrite};

fn slider(v: f64) -> ControlValue {
    ControlValue::Slider(v)
}

fn choice(label: &str) -> ControlValue {
    ControlValue::Choice(label.to_owned())
}

/// (action, control, value, expected packets, expected (C, G, S) words per packet).
type Example = (
    &'static str,
    &'static str,
    ControlValue,
    Vec<Vec<u8>>,
    Vec<(u16, u16, u16)>,
);

fn worked_examples() -> Vec<Example> {
    vec![
        (
            "LED 50 %",
            "led0",
            slider(50.0),
            vec![vec![0x20, 0x01, 0x7F], vec![0x58, 0x00, 0x72, 0x7F]],
            vec![(0x0320, 0x7F01, 0x0000), (0x0458, 0x7200, 0x007F)],
        ),
        (
            "LED 10 %",
            "led0",
            slider(10.0),
            vec![vec![0x20, 0x01, 0xE5], vec![0x58, 0x00, 0x72, 0xE5]],
            vec![(0x0320, 0xE501, 0x0000), (0x0458, 0x7200, 0x00E5)],
        ),
        (
            "LED off",
            "led0",
            slider(0.0),
            vec![vec![0x20, 0x01, 0xFF], vec![0x58, 0x00, 0x72, 0xFF]],
            vec![(0x0320, 0xFF01, 0x0000), (0x0458, 0x7200, 0x00FF)],
        ),
        (
            "LED 100 %",
            "led0",
            slider(100.0),
            vec![vec![0x20, 0x01, 0x00], vec![0x58, 0x00, 0x72, 0x00]],
            vec![(0x0320, 0x0001, 0x0000), (0x0458, 0x7200, 0x0000)],
        ),
        (
            "EWL 0",
            "ewl",
            slider(0.0),
            vec![vec![0xEE, 0x08, 0x7F, 0x02]],
            vec![(0x04EE, 0x7F08, 0x0002)],
        ),
        (
            "EWL +50",
            "ewl",
            slider(50.0),
            vec![vec![0xEE, 0x08, 0xB1, 0x02]],
            vec![(0x04EE, 0xB108, 0x0002)],
        ),
        (
            "gain Low",
            "gain",
            choice("Low"),
            vec![vec![0x20, 0x05, 0x00, 0xCC, 0x00, 0xE1]],
            vec![(0x0521, 0xCC00, 0xE100)],
        ),
        (
            "gain High",
            "gain",
            choice("High"),
            vec![vec![0x20, 0x05, 0x00, 0xCC, 0x00, 0x24]],
            vec![(0x0521, 0xCC00, 0x2400)],
        ),
        (
            "20 FPS",
            "frameRate",
            choice("20FPS"),
            vec![vec![0x20, 0x05, 0x00, 0xC9, 0x13, 0x88]],
            vec![(0x0521, 0xC900, 0x8813)],
        ),
        (
            "30 FPS",
            "frameRate",
            choice("30FPS"),
            vec![vec![0x20, 0x05, 0x00, 0xC9, 0x0C, 0xE4]],
            vec![(0x0521, 0xC900, 0xE40C)],
        ),
        (
            "10 FPS",
            "frameRate",
            choice("10FPS"),
            vec![vec![0x20, 0x05, 0x00, 0xC9, 0x27, 0x10]],
            vec![(0x0521, 0xC900, 0x1027)],
        ),
    ]
}

#[test]
fn worked_examples_give_the_reference_packets_and_words() {
    let v4 = v4_bno();
    for (action, control, value, expected_packets, expected_words) in worked_examples() {
        let got = packets(&v4, control, value);
        assert_eq!(bytes_of(&got), expected_packets, "{action}: packets");
        let words: Vec<(u16, u16, u16)> = got
            .iter()
            .map(|p| {
                let w = p.packet.pack();
                (w.contrast, w.gamma, w.sharpness)
            })
            .collect();
        assert_eq!(words, expected_words, "{action}: words");
    }
}

#[test]
fn daq_commands_pack_as_in_the_reference() {
    let enable = packet(&[0xFE, 0x00]).packet.pack();
    let reset = packet(&[0xFE, 0x01]).packet.pack();
    assert_eq!(
        (enable.contrast, enable.gamma, enable.sharpness),
        (0x02FE, 0x0000, 0x0000)
    );
    assert_eq!(
        (reset.contrast, reset.gamma, reset.sharpness),
        (0x02FE, 0x0001, 0x0000)
    );
}

/// The wire payloads and the OpenCV `cap.set` values the reference gives for LED 50 %,
/// EWL 0, gain Low and 20 FPS: write order CONTRAST → GAMMA → SHARPNESS, little-endian.
#[test]
fn wire_payloads_are_little_endian_in_write_order() {
    let v4 = v4_bno();
    let payloads = |control: &str, value: ControlValue| -> Vec<Vec<(PuSelector, [u8; 2])>> {
        packets(&v4, control, value)
            .iter()
            .map(|p| {
                p.packet
                    .pack()
                    .writes()
                    .iter()
                    .map(|&(s, v)| (s, v.to_le_bytes()))
                    .collect()
            })
            .collect()
    };
    use PuSelector::{Contrast as C, Gamma as G, Sharpness as S};
    assert_eq!(
        payloads("led0", slider(50.0)),
        [
            vec![(C, [0x20, 0x03]), (G, [0x01, 0x7F]), (S, [0x00, 0x00])],
            vec![(C, [0x58, 0x04]), (G, [0x00, 0x72]), (S, [0x7F, 0x00])],
        ]
    );
    assert_eq!(
        payloads("ewl", slider(0.0)),
        [vec![
            (C, [0xEE, 0x04]),
            (G, [0x08, 0x7F]),
            (S, [0x02, 0x00])
        ]]
    );
    assert_eq!(
        payloads("gain", choice("Low")),
        [vec![
            (C, [0x21, 0x05]),
            (G, [0x00, 0xCC]),
            (S, [0x00, 0xE1])
        ]]
    );
    assert_eq!(
        payloads("frameRate", choice("20FPS")),
        [vec![
            (C, [0x21, 0x05]),
            (G, [0x00, 0xC9]),
            (S, [0x13, 0x88])
        ]]
    );
    let opencv: Vec<u16> = packets(&v4, "led0", slider(50.0))
        .iter()
        .flat_map(|p| p.packet.pack().writes().map(|(_, v)| v))
        .collect();
    assert_eq!(opencv, [800, 32513, 0, 1112, 29184, 127]);
    assert_eq!(ControlWords::WRITE_ORDER, [C, G, S]);
}

/// Each example, written through the control writer, is executed by the emulated DAQ at
/// the next end of frame as exactly the expected I2C writes — and not before.
#[test]
fn worked_examples_execute_on_the_emulated_daq_at_the_next_end_of_frame() {
    let v4 = v4_bno();
    for (action, control, value, expected_packets, _) in worked_examples() {
        let mut rig = Rig::standard();
        rig.run_frame();
        let frame_before = rig.daq.frame_counter();
        rig.writer
            .enqueue_all(&packets(&v4, control, value))
            .unwrap();
        rig.write_until(rig.next_frame_at);
        assert!(rig.writer.is_idle(), "{action}: all words written");
        assert!(
            rig.daq.writes().is_empty(),
            "{action}: nothing before end of frame"
        );
        rig.run_frame();
        let writes = rig.daq.take_writes();
        assert_eq!(writes_as_packets(&writes), expected_packets, "{action}");
        assert!(
            writes.iter().all(|w| w.frame == frame_before + 1),
            "{action}: executed at the next end of frame"
        );
        assert_eq!(rig.daq.lost_writes(), 0, "{action}");
    }
}

#[test]
fn led_50_percent_is_two_writes_at_the_next_frame() {
    let mut rig = Rig::standard();
    let writes = rig.send_and_run_frame(&packets(&v4_bno(), "led0", slider(50.0)));
    assert_eq!(
        writes,
        [
            I2cWrite {
                frame: 1,
                address: 0x20,
                data: vec![0x01, 0x7F]
            },
            I2cWrite {
                frame: 1,
                address: 0x58,
                data: vec![0x00, 0x72, 0x7F]
            },
        ]
    );
}

/// docs/miniscope.md for Miniscope_V4_BNO: SERDES 12-bit LF, the 11 init packets with the table's words,
/// then every control's value (gain, frameRate, led0, ewl).
#[test]
fn v4_bno_connect_sequence_is_exactly_the_reference_ritual() {
    let v4 = v4_bno();
    let steps = connect_sequence(
        &v4,
        &[("frameRate", choice("30FPS")), ("led0", slider(50.0))],
    )
    .unwrap();
    let [
        ConnectStep::ClearQueue,
        ConnectStep::Send(serdes),
        ConnectStep::WaitMs(500),
        ConnectStep::NegotiateFormat {
            width: 608,
            height: 608,
            frame_index: Some(1),
        },
        ConnectStep::Send(init),
        ConnectStep::WaitMs(500),
        ConnectStep::Send(controls),
    ] = steps.as_slice()
    else {
        panic!("unexpected steps {steps:?}");
    };
    assert_eq!(
        bytes_of(serdes),
        [vec![0xC0, 0x1F, 0x10], vec![0xB0, 0x05, 0x20]]
    );
    type Words = (u16, u16, u16);
    let expected_init: [(&[u8], Words); 11] = [
        (&[0xC0, 0x22, 0x02], (0x03C0, 0x0222, 0x0000)),
        (&[0xC0, 0x20, 0x0A], (0x03C0, 0x0A20, 0x0000)),
        (&[0xC0, 0x07, 0xB0], (0x03C0, 0xB007, 0x0000)),
        (&[0xB0, 0x0F, 0x02], (0x03B0, 0x020F, 0x0000)),
        (&[0xB0, 0x1E, 0x0A], (0x03B0, 0x0A1E, 0x0000)),
        (
            &[0xC0, 0x08, 0x20, 0xEE, 0xA0, 0x50],
            (0x08C1, 0xEE20, 0x50A0),
        ),
        (
            &[0xC0, 0x10, 0x20, 0xEE, 0x58, 0x50],
            (0x10C1, 0xEE20, 0x5058),
        ),
        (&[0x50, 0x41, 0x09, 0x05], (0x0450, 0x0941, 0x0005)),
        (&[0x50, 0x3D, 0x0C], (0x0350, 0x0C3D, 0x0000)),
        (&[0xFE, 0x00], (0x02FE, 0x0000, 0x0000)),
        (&[0xEE, 0x03, 0x03], (0x03EE, 0x0303, 0x0000)),
    ];
    assert_eq!(init.len(), expected_init.len());
    for (i, (p, (bytes, words))) in init.iter().zip(expected_init).enumerate() {
        assert_eq!(p.packet.as_bytes(), bytes, "init #{}", i + 1);
        let w = p.packet.pack();
        assert_eq!((w.contrast, w.gamma, w.sharpness), words, "init #{}", i + 1);
    }
    assert_eq!(
        bytes_of(controls),
        [
            vec![0x20, 0x05, 0x00, 0xCC, 0x00, 0xE1],
            vec![0x20, 0x05, 0x00, 0xC9, 0x0C, 0xE4],
            vec![0x20, 0x01, 0x7F],
            vec![0x58, 0x00, 0x72, 0x7F],
            vec![0xEE, 0x08, 0x7F, 0x02],
        ]
    );
}

/// The whole ritual on the emulator: nothing runs until the stream starts, then the first
/// end of frame performs the SERDES and init writes, enables BNO polling, and the control
/// values follow after the 500 ms pause.
#[test]
fn connect_ritual_runs_on_the_emulated_daq() {
    let v4 = v4_bno();
    let steps = connect_sequence(&v4, &[]).unwrap();
    let mut rig = Rig::standard();
    rig.connect(&steps);
    rig.drain();
    rig.run_frame();
    let writes = rig.daq.take_writes();
    let all = writes_as_packets(&writes);
    let mut expected: Vec<Vec<u8>> = vec![vec![0xC0, 0x1F, 0x10], vec![0xB0, 0x05, 0x20]];
    let Some(ConnectStep::Send(init)) = steps.get(4) else {
        panic!("no init step")
    };
    expected.extend(bytes_of(init).into_iter().filter(|p| p[0] != 0xFE));
    expected.extend([
        vec![0x20, 0x05, 0x00, 0xCC, 0x00, 0xE1],
        vec![0x20, 0x05, 0x00, 0xC9, 0x13, 0x88],
        vec![0x20, 0x01, 0xFF],
        vec![0x58, 0x00, 0x72, 0xFF],
        vec![0xEE, 0x08, 0x7F, 0x02],
    ]);
    assert_eq!(all, expected);
    assert_eq!(writes[0].frame, 1, "SERDES runs at the first end of frame");
    assert_eq!(
        writes[11].frame, 1,
        "init runs at the first end of frame too"
    );
    assert!(writes[12].frame > 1, "controls wait for the 500 ms pause");
    assert!(rig.daq.bno_polling());
    assert_eq!(rig.daq.lost_writes(), 0);
}

#[test]
fn mt9p031_devices_use_the_high_frequency_serdes_mode() {
    let catalog = Catalog::builtin().unwrap();
    let minicam = catalog.device("Minicam-Mono-XGA").unwrap();
    let steps = connect_sequence(minicam, &[]).unwrap();
    let Some(ConnectStep::Send(serdes)) = steps.get(1) else {
        panic!("no SERDES step")
    };
    assert_eq!(
        bytes_of(serdes),
        [vec![0xC0, 0x1F, 0x11], vec![0xB0, 0x05, 0x21]]
    );
    assert_eq!(
        bytes_of(&serdes_mode_packets(false).unwrap()),
        [vec![0xC0, 0x1F, 0x10], vec![0xB0, 0x05, 0x20]]
    );
    for name in ["Miniscope_V4", "Miniscope_V3"] {
        assert!(
            !catalog.device(name).unwrap().serdes_high_frequency(),
            "{name}"
        );
    }
}
