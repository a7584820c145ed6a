//! Tests of the synthetic Miniscope: determinism, counters, injected faults, IMU output and
//! the coupling of neural activity to behavior.

use super::SyntheticMiniscope;
use super::faults::nominal_time_ns;
use crate::config::source::{FaultPlan, Pacing, SyntheticMiniscopeConfig, TimedFault};
use crate::frame::{Behavior, CaptureStamp};
use crate::source::{Source, SourceError, StreamKind};

fn cfg(seed: u64, width: u32, height: u32, neurons: u32) -> SyntheticMiniscopeConfig {
    SyntheticMiniscopeConfig {
        name: "Miniscope".into(),
        fps: 30.0,
        width,
        height,
        neurons,
        seed,
        counter_start: 0,
        pacing: Pacing::Fast,
        compression: None,
        faults: FaultPlan::default(),
    }
}

/// Grabs `n` frames, returning pixels and stamps (times made relative to the first frame).
fn grab(scope: &mut SyntheticMiniscope, n: usize) -> (Vec<Vec<u8>>, Vec<CaptureStamp>) {
    let mut buf = vec![0u8; scope.info().geometry.frame_bytes()];
    let mut frames = Vec::new();
    let mut stamps: Vec<CaptureStamp> = Vec::new();
    for _ in 0..n {
        stamps.push(scope.next_frame(&mut buf).expect("frame"));
        frames.push(buf.clone());
    }
    let t0 = stamps[0].device_time_ns;
    for s in &mut stamps {
        assert_eq!(
            s.host_time_ns, s.device_time_ns,
            "fast pacing stamps virtual time"
        );
        s.device_time_ns -= t0;
        s.host_time_ns -= t0;
    }
    (frames, stamps)
}

#[test]
fn same_seed_same_frames_and_stamps_different_seed_differs() {
    let (fa, sa) = grab(&mut SyntheticMiniscope::new(&cfg(5, 608, 608, 120)), 12);
    let (fb, sb) = grab(&mut SyntheticMiniscope::new(&cfg(5, 608, 608, 120)), 12);
    let (fc, _) = grab(&mut SyntheticMiniscope::new(&cfg(6, 608, 608, 120)), 12);
    assert_eq!(sa, sb);
    assert!(fa == fb, "same seed gave different pixels");
    assert!(
        fa.iter().zip(&fc).all(|(a, c)| a != c),
        "different seeds gave equal frames"
    );
    for (k, s) in sa.iter().enumerate() {
        assert_eq!(s.raw_counter, k as u64);
        assert_eq!(s.device_time_ns, nominal_time_ns(k as u64, 30.0));
        assert!(s.ground_truth.is_none());
    }
    // Consecutive frames differ (noise, activity) but the field of view stays put.
    assert_ne!(fa[0], fa[1]);
}

#[test]
fn info_describes_a_v4_miniscope() {
    let scope = SyntheticMiniscope::new(&cfg(1, 608, 608, 120));
    let info = scope.info();
    assert_eq!(info.kind, StreamKind::Miniscope);
    assert_eq!(info.counter_bits, 16);
    assert_eq!(info.geometry.frame_bytes(), 608 * 608);
    assert!(info.device_description.contains("UCLA Miniscope V4"));
    assert_eq!(scope.neuron_centers().len(), 120);
    for c in scope.neuron_centers() {
        assert!((0.0..608.0).contains(&c[0]) && (0.0..608.0).contains(&c[1]));
    }
}

#[test]
fn counter_wraps_at_16_bits() {
    let mut c = cfg(1, 64, 64, 5);
    c.counter_start = 65530;
    let (_, stamps) = grab(&mut SyntheticMiniscope::new(&c), 9);
    let counters: Vec<u64> = stamps.iter().map(|s| s.raw_counter).collect();
    assert_eq!(
        counters,
        [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2]
    );
}

#[test]
fn faults_skip_exactly_the_expected_counters() {
    let mut c = cfg(9, 96, 96, 10);
    c.counter_start = 100;
    c.faults = FaultPlan {
        drop_frames: vec![4, 3],
        // Frames 10..=12 fall due within 100 ms of frame 10 (333.3 ms) and are lost.
        stall: vec![TimedFault {
            at_frame: 10,
            ms: 100,
        }],
        // Frame 20 (666.7 ms) disconnects for 500 ms: the next frame due is 35 (1166.7 ms).
        disconnect: vec![TimedFault {
            at_frame: 20,
            ms: 500,
        }],
    };
    let mut scope = SyntheticMiniscope::new(&c);
    let mut clean = SyntheticMiniscope::new(&cfg(9, 96, 96, 10));
    assert!(
        scope.reconnect().is_ok(),
        "reconnect on a connected source is a no-op"
    );
    let mut buf = vec![0u8; 96 * 96];
    let mut clean_frames = Vec::new();
    for _ in 0..45 {
        clean.next_frame(&mut buf).unwrap();
        clean_frames.push(buf.clone());
    }
    let mut got = Vec::new();
    let mut t0 = None;
    for _ in 0..24 {
        match scope.next_frame(&mut buf) {
            Ok(s) => {
                let frame = (s.raw_counter - 100) as usize;
                let t0 = *t0.get_or_insert(s.device_time_ns);
                assert_eq!(s.device_time_ns - t0, nominal_time_ns(frame as u64, 30.0));
                assert_eq!(s.host_time_ns, s.device_time_ns);
                // Content depends only on the device frame number, not on what was lost.
                assert!(
                    buf == clean_frames[frame],
                    "frame {frame} differs from a fault-free run"
                );
                got.push(Some(s.raw_counter));
            }
            Err(SourceError::Disconnected { reason, .. }) => {
                assert!(reason.contains("20"), "{reason}");
                assert!(matches!(
                    scope.next_frame(&mut buf),
                    Err(SourceError::Disconnected { .. })
                ));
                scope.reconnect().expect("fast pacing reconnects at once");
                got.push(None);
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let mut expected: Vec<Option<u64>> = [0, 1, 2, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 18, 19]
        .iter()
        .map(|f| Some(100 + f))
        .collect();
    expected.push(None);
    expected.extend((35..43).map(|f| Some(100 + f)));
    assert_eq!(got, expected);
}

#[test]
fn wrong_buffer_size_is_fatal() {
    let mut scope = SyntheticMiniscope::new(&cfg(1, 64, 64, 5));
    let mut small = vec![0u8; 100];
    assert!(matches!(
        scope.next_frame(&mut small),
        Err(SourceError::Fatal { .. })
    ));
}

#[test]
fn head_quaternions_are_unit_and_follow_the_animal() {
    let mut scope = SyntheticMiniscope::new(&cfg(4, 64, 64, 5));
    let mut buf = vec![0u8; 64 * 64];
    let mut distinct = 0;
    let mut last = [0.0f32; 4];
    for _ in 0..300 {
        let q = scope
            .next_frame(&mut buf)
            .unwrap()
            .head_orientation
            .expect("IMU");
        let norm = q.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(q, scope.animal().head_quaternion());
        distinct += usize::from(q != last);
        last = q;
    }
    assert!(distinct > 250, "head orientation barely changes");
}

#[test]
fn neurons_are_brighter_during_their_preferred_behavior() {
    let (w, fps) = (192usize, 15.0);
    let mut c = cfg(21, w as u32, w as u32, 60);
    c.fps = fps;
    let mut scope = SyntheticMiniscope::new(&c);
    let tuning = scope.neuron_tuning().to_vec();
    let centers = scope.neuron_centers().to_vec();
    let mut buf = vec![0u8; w * w];
    // [neuron][behavior] -> (sum of mean intensity around the centre, frames)
    let mut acc = vec![[(0.0f64, 0u32); 4]; centers.len()];
    for _ in 0..(4.0 * 60.0 * fps) as usize {
        scope.next_frame(&mut buf).unwrap();
        let b = scope.animal().behavior() as usize;
        for (n, c) in centers.iter().enumerate() {
            let (cx, cy) = (c[0] as usize, c[1] as usize);
            let mut sum = 0.0;
            for y in cy.saturating_sub(2)..(cy + 3).min(w) {
                for x in cx.saturating_sub(2)..(cx + 3).min(w) {
                    sum += buf[y * w + x] as f64;
                }
            }
            acc[n][b].0 += sum / 25.0;
            acc[n][b].1 += 1;
        }
    }
    // Mean intensity of neuron `n` during behavior `b` minus its mean at all other times.
    let lift = |n: usize, b: Behavior| {
        let (total, frames) = acc[n].iter().fold((0.0, 0), |(s, c), a| (s + a.0, c + a.1));
        let (inside, k) = acc[n][b as usize];
        inside / k as f64 - (total - inside) / (frames - k) as f64
    };
    for b in Behavior::ALL {
        let tuned: Vec<usize> = (0..centers.len())
            .filter(|&n| tuning[n] == Some(b))
            .collect();
        assert!(
            tuned.len() >= 4,
            "only {} neurons tuned to {}",
            tuned.len(),
            b.label()
        );
        let lifts: Vec<f64> = tuned.iter().map(|&n| lift(n, b)).collect();
        let mean_lift = lifts.iter().sum::<f64>() / lifts.len() as f64;
        let positive = lifts.iter().filter(|&&l| l > 2.0).count();
        assert!(
            mean_lift > 8.0,
            "{}: mean lift {mean_lift:.1} DN",
            b.label()
        );
        assert!(
            positive * 10 >= tuned.len() * 8,
            "{}: lifts {lifts:?}",
            b.label()
        );
        // Untuned neurons do not care what the animal does.
        let untuned: Vec<f64> = (0..centers.len())
            .filter(|&n| tuning[n].is_none())
            .map(|n| lift(n, b))
            .collect();
        let untuned_mean = untuned.iter().sum::<f64>() / untuned.len() as f64;
        assert!(
            untuned_mean.abs() < 0.25 * mean_lift,
            "{}: untuned lift {untuned_mean:.1} DN",
            b.label()
        );
    }
}
