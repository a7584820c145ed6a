//! Host-side read-backs: counter unwrap and drops, the quaternion decode and norm filter,
//! trigger edges, and the per-frame read against the emulated DAQ.

use super::daq::{DaqConfig, DaqEmulator};
use super::frame_reads::{
    CounterSource, ImuSource, Readback, ReadbackPlan, read_abi_answer, start_abi_query,
};
use super::readback::{
    DEFAULT_NORM_ERROR_LIMIT, FrameCounter, ImuFilter, TriggerEdge, TriggerInput, TriggerPolarity,
    decode_quaternion, quaternion_from_ct, quaternion_from_pan_tilt, quaternion_from_pu_words,
};
use super::test_rig::packet;
use super::uvc::UvcControl;

#[test]
fn counter_unwraps_across_0xffff_to_0() {
    let mut c = FrameCounter::new();
    let got: Vec<(u64, u64)> = [0xFFFD, 0xFFFE, 0xFFFF, 0x0000, 0x0001]
        .iter()
        .map(|&r| {
            let s = c.observe(r);
            (s.unwrapped, s.gap)
        })
        .collect();
    assert_eq!(
        got,
        [
            (0xFFFD, 0),
            (0xFFFE, 0),
            (0xFFFF, 0),
            (0x1_0000, 0),
            (0x1_0001, 0)
        ]
    );
    assert_eq!(c.net_dropped(), 0);
}

#[test]
fn skipped_frames_show_as_gaps_even_across_the_wrap() {
    let mut c = FrameCounter::new();
    c.observe(10);
    assert_eq!(c.observe(13).gap, 2);
    c.observe(0xFFFA);
    let s = c.observe(0x0003);
    assert_eq!((s.unwrapped, s.gap), (0x1_0003, 8), "9 frames on, 8 lost");
    assert_eq!(c.gaps_total(), 2 + (0xFFFA - 14) + 8);
    let mut many = FrameCounter::new();
    for i in 0..200_000u64 {
        if i % 1000 != 999 {
            many.observe(i as u16);
        }
    }
    assert_eq!(many.gaps_total(), 199);
    assert_eq!(many.net_dropped(), 199);
}

/// A counter read late (already counting the next frame) shows a gap of 1 then a repeat;
/// the net estimate cancels them.
#[test]
fn read_jitter_cancels_in_the_net_drop_estimate() {
    let mut c = FrameCounter::new();
    for raw in [1, 2, 4, 4, 5, 6] {
        c.observe(raw);
    }
    assert_eq!((c.gaps_total(), c.repeats(), c.net_dropped()), (1, 1, 0));
    c.observe(9);
    assert_eq!(c.net_dropped(), 2);
    c.reseed();
    let s = c.observe(3);
    assert_eq!(
        (s.unwrapped, s.gap),
        (0x1_0003, 0),
        "increasing, low bits = raw"
    );
    c.observe(5);
    assert_eq!(
        c.net_dropped(),
        3,
        "drops before and after the reseed add up"
    );
}

#[test]
fn quaternion_decodes_all_three_encodings_alike() {
    let q: [i16; 4] = [16384, -2, 300, -16000];
    let words = q.map(|v| v as u16);
    assert_eq!(
        quaternion_from_pu_words(words[0], words[1], words[2], words[3]),
        q
    );
    let mut ct = [0u8; 8];
    for (i, v) in q.iter().enumerate() {
        ct[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
    }
    assert_eq!(quaternion_from_ct(&ct), q);
    let pan = i32::from_le_bytes([ct[0], ct[1], ct[2], ct[3]]);
    let tilt = i32::from_le_bytes([ct[4], ct[5], ct[6], ct[7]]);
    assert_eq!(quaternion_from_pan_tilt(pan, tilt), q);
}

#[test]
fn norm_filter_accepts_unit_quaternions_and_keeps_the_last_good_one() {
    let s = decode_quaternion([0, 16384, 0, 0], DEFAULT_NORM_ERROR_LIMIT);
    assert!(s.good && s.norm_error < 1e-6);
    assert_eq!(s.quaternion.x, 1.0);
    // |q| = 1.04 passes, 1.06 fails (limit 0.05).
    let scaled = |f: f32| [(16384.0 * f) as i16, 0, 0, 0];
    assert!(decode_quaternion(scaled(1.04), DEFAULT_NORM_ERROR_LIMIT).good);
    assert!(!decode_quaternion(scaled(1.06), DEFAULT_NORM_ERROR_LIMIT).good);
    assert!(!decode_quaternion(scaled(0.94), DEFAULT_NORM_ERROR_LIMIT).good);
    let half = 8192;
    assert!(decode_quaternion([half, half, -half, half], DEFAULT_NORM_ERROR_LIMIT).good);

    let mut f = ImuFilter::new(DEFAULT_NORM_ERROR_LIMIT);
    assert_eq!(f.current().1, 1.0, "nothing good yet");
    assert_eq!(f.current().0.w, 0.0);
    f.update([16384, 0, 0, 0]);
    let bad = f.update([16384, 16384, 0, 0]);
    assert!(!bad.good && (bad.norm_error - (2f32.sqrt() - 1.0)).abs() < 1e-6);
    assert_eq!(
        f.current().0.w,
        1.0,
        "the bad sample did not replace the good one"
    );
    assert_eq!(f.rejected(), 1);
}

#[test]
fn trigger_edges_follow_the_polarity_and_the_first_read_only_primes() {
    let mut t = TriggerInput::new(TriggerPolarity::ActiveHigh);
    assert_eq!(t.update(1), None, "priming read");
    assert_eq!(t.update(1), None);
    assert_eq!(t.update(0), Some(TriggerEdge::Stop));
    assert_eq!(t.update(1), Some(TriggerEdge::Start));
    let mut low = TriggerInput::new(TriggerPolarity::ActiveLow);
    assert_eq!(low.update(1), None);
    assert_eq!(low.is_active(), Some(false));
    assert_eq!(low.update(0), Some(TriggerEdge::Start));
}

fn streaming_daq(config: DaqConfig) -> DaqEmulator {
    let mut daq = DaqEmulator::new(config);
    for (s, v) in packet(&[0xFE, 0x00]).packet.pack().writes() {
        daq.set_time_ns(daq.now_ns() + 200_000);
        daq.set_pu(s, v).unwrap();
    }
    daq.set_time_ns(daq.now_ns() + 200_000);
    daq.end_of_frame();
    daq
}

fn plan(counter: CounterSource, imu: ImuSource) -> ReadbackPlan {
    ReadbackPlan {
        counter: Some(counter),
        imu: Some(imu),
        trigger: Some(TriggerPolarity::ActiveHigh),
        norm_error_limit: DEFAULT_NORM_ERROR_LIMIT,
    }
}

/// Frames the host never read (two ends of frame between reads) appear as gaps, across the
/// 16-bit wrap, on both counter sources; the trigger edge and the quaternion come along.
#[test]
fn per_frame_readback_detects_drops_against_the_emulated_daq() {
    for (counter, imu) in [
        (CounterSource::Contrast, ImuSource::FourReads),
        (CounterSource::CtExposure, ImuSource::PanTilt),
    ] {
        let mut daq = streaming_daq(DaqConfig::default());
        daq.set_frame_counter(0xFFF0);
        daq.set_bno_quaternion([0, 0, 16384, 0]);
        let mut rb = Readback::new(plan(counter, imu));
        let mut gaps = Vec::new();
        for frame in 0..40u32 {
            daq.end_of_frame();
            if frame % 7 == 3 {
                daq.end_of_frame(); // this frame is lost between the DAQ and the host
            }
            daq.set_trigger_input((10..20).contains(&frame));
            let r = rb.read_frame(&mut daq);
            assert_eq!(r.failures, 0);
            let c = r.counter.unwrap();
            assert_eq!(c.unwrapped, u64::from(daq.frame_counter()), "{counter:?}");
            gaps.push(c.gap);
            assert!(r.imu.unwrap().good);
            let expected_edge = match frame {
                10 => Some(TriggerEdge::Start),
                20 => Some(TriggerEdge::Stop),
                _ => None,
            };
            assert_eq!(r.trigger_edge, expected_edge, "frame {frame}");
        }
        assert!(daq.frame_counter() > 0xFFFF, "the run crossed the wrap");
        assert_eq!(gaps.iter().sum::<u64>(), 6, "{counter:?}");
        assert_eq!(rb.counter().net_dropped(), 6);
    }
}

/// The four legacy reads can straddle an end of frame and mix two quaternions (the norm
/// filter then rejects the mix); the atomic CT read cannot.
#[test]
fn four_read_quaternions_can_tear_but_pan_tilt_cannot() {
    use super::uvc::PuSelector;
    let mut daq = streaming_daq(DaqConfig::default());
    daq.set_bno_quaternion([16384, 0, 0, 0]);
    daq.end_of_frame();
    let w = daq.get_pu(PuSelector::Saturation).unwrap();
    let x = daq.get_pu(PuSelector::Hue).unwrap();
    daq.set_bno_quaternion([0, 0, 0, 16384]);
    daq.end_of_frame();
    let y = daq.get_pu(PuSelector::Gain).unwrap();
    let z = daq.get_pu(PuSelector::Brightness).unwrap();
    let torn = quaternion_from_pu_words(w, x, y, z);
    assert_eq!(
        torn,
        [16384, 0, 0, 16384],
        "w, x from one frame, y, z from the next"
    );
    let mut f = ImuFilter::new(DEFAULT_NORM_ERROR_LIMIT);
    assert!(!f.update(torn).good, "|q| = sqrt(2)");
    let mut rb = Readback::new(plan(CounterSource::Contrast, ImuSource::PanTilt));
    let atomic = rb.read_frame(&mut daq).imu.unwrap();
    assert_eq!(atomic.raw, [0, 0, 0, 16384]);
    assert!(atomic.good);
}

#[test]
fn abi_query_and_readback_failures_on_old_firmware() {
    let mut daq = DaqEmulator::new(DaqConfig::default());
    start_abi_query(&mut daq).unwrap();
    daq.set_time_ns(200_000);
    assert_eq!(read_abi_answer(&mut daq), Ok(Some(2)));
    assert_eq!(read_abi_answer(&mut daq), Ok(None));

    let old_config = DaqConfig {
        abi_version: 1,
        ..DaqConfig::default()
    };
    let mut old = DaqEmulator::new(old_config);
    start_abi_query(&mut old).unwrap();
    old.set_time_ns(200_000);
    assert_eq!(read_abi_answer(&mut old), Ok(None));
    let mut rb = Readback::new(plan(CounterSource::CtExposure, ImuSource::PanTilt));
    let r = rb.read_frame(&mut old);
    assert_eq!((r.failures, r.counter, r.imu), (2, None, None));
    assert_eq!(rb.counter().failures(), 1);
    assert!(
        rb.last_error()
            .unwrap()
            .to_string()
            .contains("not supported")
    );
}

#[test]
fn per_frame_readback_does_not_allocate() {
    let mut daq = streaming_daq(DaqConfig::default());
    daq.set_bno_quaternion([16384, 0, 0, 0]);
    let mut rbs = [
        Readback::new(plan(CounterSource::Contrast, ImuSource::FourReads)),
        Readback::new(plan(CounterSource::CtExposure, ImuSource::PanTilt)),
    ];
    daq.end_of_frame();
    for rb in &mut rbs {
        rb.read_frame(&mut daq);
    }
    let before = crate::test_alloc::allocations();
    for _ in 0..100 {
        daq.end_of_frame();
        for rb in &mut rbs {
            let r = rb.read_frame(&mut daq);
            assert!(r.counter.is_some() && r.imu.is_some());
        }
    }
    assert_eq!(crate::test_alloc::allocations() - before, 0);
}
