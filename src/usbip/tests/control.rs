//! Control requests: enumeration, probe/commit, the I2C tunnel, the live counter.

use super::*;

#[test]
fn enumeration_requests_are_answered_and_truncated_to_wlength() {
    let mut h = Host::new(LookalikeConfig::default());
    let d = h.get_descriptor(dt::DEVICE, 0, 64).unwrap();
    assert_eq!(d, descriptors::device_descriptor(Speed::Super));
    let d8 = h.get_descriptor(dt::DEVICE, 0, 8).unwrap();
    assert_eq!(d8, d[..8]);
    let head = h.get_descriptor(dt::CONFIGURATION, 0, 9).unwrap();
    let total = le16(&head, 2);
    let full = h.get_descriptor(dt::CONFIGURATION, 0, total).unwrap();
    assert_eq!(full.len(), usize::from(total));
    assert_eq!(h.get_descriptor(dt::BOS, 0, 5).unwrap()[1], dt::BOS);
    assert_eq!(h.get_descriptor(dt::STRING, 0, 255).unwrap(), [4, 3, 9, 4]);
    assert_eq!(
        h.get_descriptor(dt::DEVICE_QUALIFIER, 0, 10),
        Err(STATUS_STALL)
    );
    assert_eq!(
        h.control(0x80, 8, 0, 0, 1, &[]).unwrap(),
        [0],
        "unconfigured"
    );
    h.control(0x00, 9, 1, 0, 0, &[]).unwrap();
    assert_eq!(h.control(0x80, 8, 0, 0, 1, &[]).unwrap(), [1]);
    assert_eq!(
        h.control(0x00, 9, 2, 0, 0, &[]),
        Err(STATUS_STALL),
        "only configuration 1"
    );
    h.control(0x01, 11, 0, 1, 0, &[]).unwrap(); // SET_INTERFACE VS alt 0
    assert_eq!(
        h.control(0x01, 11, 1, 1, 0, &[]),
        Err(STATUS_STALL),
        "no alt 1"
    );
    assert_eq!(h.control(0x80, 0, 0, 0, 2, &[]).unwrap(), [0, 0]);
    assert_eq!(
        h.control(0x40, 0x99, 0, 0, 0, &[]),
        Err(STATUS_STALL),
        "vendor request"
    );

    let hs = Host::new(LookalikeConfig {
        speed: Speed::High,
        ..LookalikeConfig::default()
    });
    let mut hs = hs;
    assert_eq!(
        hs.get_descriptor(dt::BOS, 0, 5),
        Err(STATUS_STALL),
        "no BOS at high speed"
    );
}

#[test]
fn probe_commit_negotiates_format_and_interval() {
    let mut h = Host::new(LookalikeConfig::default());
    let def = h.vs(req::GET_DEF, VS_PROBE, &[]).unwrap();
    assert_eq!(def.len(), 26, "UVC 1.0 probe block");
    assert_eq!((def[2], def[3], le32(&def, 4)), (1, 1, 333_333));
    assert_eq!(le32(&def, 18) as usize, PixelFormat::Yuy2.frame_bytes());
    assert_eq!(le32(&def, 22), 32_768, "SuperSpeed payload size");
    assert_eq!(
        le32(&h.vs(req::GET_MAX, VS_PROBE, &[]).unwrap(), 4),
        1_000_000
    );

    // GREY at 21 fps → snapped to 20 fps.
    let mut probe = vec![0u8; 26];
    probe[2] = 2;
    probe[3] = 1;
    probe[4..8].copy_from_slice(&476_190u32.to_le_bytes());
    h.vs(req::SET_CUR, VS_PROBE, &probe).unwrap();
    let got = h.vs(req::GET_CUR, VS_PROBE, &[]).unwrap();
    assert_eq!((got[2], le32(&got, 4)), (2, 500_000));
    assert_eq!(le32(&got, 18) as usize, PixelFormat::Grey.frame_bytes());
    assert!(!h.dev.streaming());
    h.vs(req::SET_CUR, VS_COMMIT, &got).unwrap();
    assert!(h.dev.streaming());
    assert_eq!(h.dev.committed().interval, 500_000);
    assert_eq!(h.dev.committed().format, PixelFormat::Grey);
    assert_eq!(h.vs(req::GET_CUR, VS_COMMIT, &[]).unwrap(), got);
    // An unknown format index keeps the previous format.
    probe[2] = 9;
    h.vs(req::SET_CUR, VS_PROBE, &probe).unwrap();
    assert_eq!(h.vs(req::GET_CUR, VS_PROBE, &[]).unwrap()[2], 2);
    assert_eq!(h.vs(req::GET_INFO, VS_PROBE, &[]).map(|v| v[0]), Ok(3));
}

#[test]
fn pu_contrast_gamma_sharpness_becomes_the_daq_packet_at_the_next_end_of_frame() {
    let mut h = Host::new(LookalikeConfig::default());
    h.start(PixelFormat::Grey, 333_333);
    let packet = I2cPacket::new(&[0x20, 0x01, 0x10]).unwrap();
    let words = packet.pack();
    h.set_pu(PuSelector::Contrast, words.contrast);
    h.set_pu(PuSelector::Gamma, words.gamma);
    h.set_pu(PuSelector::Sharpness, words.sharpness);
    assert!(
        h.dev.take_log().is_empty(),
        "nothing runs before the end of frame"
    );
    h.advance(33_333_400);
    let log = h.dev.take_log();
    assert_eq!(log.len(), 1, "{log:?}");
    let LogEntry::I2c(w) = &log[0] else {
        panic!("{log:?}")
    };
    assert_eq!(
        (w.frame, w.address, w.data.as_slice()),
        (1, 0x20, &[0x01, 0x10][..])
    );
    assert_eq!(h.dev.daq().lost_writes(), 0);
}

#[test]
fn writes_closer_than_the_fx3_spacing_are_lost_and_logged() {
    let mut h = Host::new(LookalikeConfig::default());
    h.start(PixelFormat::Grey, 333_333);
    // Two SET_CURs 10 µs apart: the first is overwritten before the firmware takes it.
    let seq = h.next_seq();
    let setup = |v: u16| Setup {
        request_type: 0x21,
        request: req::SET_CUR,
        value: v,
        index: 0x0200,
        length: 2,
    };
    h.exchange(submit(
        seq,
        Direction::Out,
        0,
        2,
        setup(0x0300),
        vec![0xC0, 0x03],
    ));
    h.now_ns += 10_000;
    let seq = h.next_seq();
    h.exchange(submit(
        seq,
        Direction::Out,
        0,
        2,
        setup(0x0900),
        vec![0x1F, 0x10],
    ));
    let log = h.dev.take_log();
    assert!(
        log.iter().any(|e| matches!(
            e,
            LogEntry::Event(DaqEvent::LostWrite {
                selector: PuSelector::Contrast,
                value: 0x03C0
            })
        )),
        "{log:?}"
    );
}

#[test]
fn get_cur_contrast_is_the_live_frame_counter_and_get_info_says_autoupdate() {
    let mut h = Host::new(no_spacing());
    assert_eq!(h.get_pu(PuSelector::Contrast, req::GET_INFO), [PU_INFO]);
    assert_eq!(PU_INFO & 0x08, 0x08, "AUTOUPDATE bit");
    assert_eq!(h.get_pu(PuSelector::Contrast, req::GET_CUR), [0, 0]);
    h.start(PixelFormat::Yuy2, 333_333);
    h.advance(5 * 33_333_400);
    assert_eq!(
        h.get_pu(PuSelector::Contrast, req::GET_CUR),
        5u16.to_le_bytes()
    );
    h.advance(2 * 33_333_400);
    assert_eq!(
        h.get_pu(PuSelector::Contrast, req::GET_CUR),
        7u16.to_le_bytes()
    );
    // Ranges: unsigned for contrast, signed for brightness.
    assert_eq!(h.get_pu(PuSelector::Contrast, req::GET_MAX), [0xFF, 0xFF]);
    assert_eq!(h.get_pu(PuSelector::Brightness, req::GET_MIN), [0x00, 0x80]);
    assert_eq!(h.get_pu(PuSelector::Gamma, req::GET_RES), [1, 0]);
    // CT exposure read-back (ABI 2) is the counter too.
    let ct = h
        .control(0xA1, req::GET_CUR, 0x0400, 0x0100, 4, &[])
        .unwrap();
    assert_eq!(ct, [7, 0, 0, 0]);
    // An unadvertised PU control (white balance 0x0A) stalls, and the error code says why.
    assert_eq!(
        h.control(0xA1, req::GET_CUR, 0x0A00, 0x0200, 2, &[]),
        Err(STATUS_STALL)
    );
    assert_eq!(
        h.control(0xA1, req::GET_CUR, 0x0200, 0x0000, 1, &[])
            .unwrap(),
        [0x06]
    );
}

#[test]
fn nothing_ticks_before_streaming_unless_free_running() {
    let mut h = Host::new(no_spacing());
    h.advance(1_000_000_000);
    assert_eq!(
        h.dev.daq().frame_counter(),
        0,
        "the DAQ counts frames only while streaming"
    );
    let mut f = Host::new(LookalikeConfig {
        free_run: true,
        ..no_spacing()
    });
    f.advance(1);
    f.advance(10 * 33_333_400);
    assert_eq!(f.dev.daq().frame_counter(), 10);
    assert_eq!(f.dev.stats().sent_frames, 0);
}
