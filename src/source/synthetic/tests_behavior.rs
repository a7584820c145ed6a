//! Tests of the synthetic behavior camera: determinism, ground truth, the visible posture
//! signatures, agreement with a Miniscope filming the same animal, and faults.

use super::arena_view::render_arena;
use super::{SyntheticBehaviorCamera, SyntheticMiniscope};
use crate::config::source::{FaultPlan, Pacing, SyntheticBehaviorConfig, SyntheticMiniscopeConfig};
use crate::frame::{Behavior, CaptureStamp, PixelFormat};
use crate::source::{Source, StreamKind};

fn cfg(seed: u64, width: u32, height: u32, format: PixelFormat) -> SyntheticBehaviorConfig {
    SyntheticBehaviorConfig {
        name: "BehaviorCam0".into(),
        fps: 30.0,
        width,
        height,
        pixel_format: format,
        seed,
        pacing: Pacing::Fast,
        compression: None,
        faults: FaultPlan::default(),
    }
}

/// Runs a camera for `n` frames, handing each frame and stamp to `f`.
fn film(
    cam: &mut SyntheticBehaviorCamera,
    n: usize,
    mut f: impl FnMut(&SyntheticBehaviorCamera, &[u8], &CaptureStamp),
) {
    let mut buf = vec![0u8; cam.info().geometry.frame_bytes()];
    for _ in 0..n {
        let stamp = cam.next_frame(&mut buf).expect("frame");
        f(cam, &buf, &stamp);
    }
}

fn frames(seed: u64, n: usize) -> Vec<(Vec<u8>, CaptureStamp)> {
    let mut out = Vec::new();
    let mut cam = SyntheticBehaviorCamera::new(&cfg(seed, 640, 480, PixelFormat::Gray8));
    film(&mut cam, n, |_, px, s| out.push((px.to_vec(), *s)));
    let t0 = out[0].1.device_time_ns;
    for (_, s) in &mut out {
        s.device_time_ns -= t0;
        s.host_time_ns -= t0;
    }
    out
}

#[test]
fn same_seed_same_frames_different_seed_differs() {
    let (a, b, c) = (frames(8, 10), frames(8, 10), frames(9, 10));
    assert!(a == b, "same seed gave different frames or stamps");
    for (k, ((pa, sa), (pc, _))) in a.iter().zip(&c).enumerate() {
        assert_ne!(pa, pc);
        assert_eq!(sa.raw_counter, k as u64);
        assert!(sa.head_orientation.is_none());
        assert!(sa.ground_truth.is_some());
    }
}

#[test]
fn info_and_rgb_frames() {
    let mut cam = SyntheticBehaviorCamera::new(&cfg(1, 1280, 720, PixelFormat::Rgb8));
    let info = cam.info().clone();
    assert_eq!(info.kind, StreamKind::BehaviorCamera);
    assert_eq!(info.counter_bits, 32);
    assert_eq!(info.geometry.frame_bytes(), 1280 * 720 * 3);
    // The tail, ears and paws are pink: some pixels are clearly redder than they are blue.
    film(&mut cam, 1, |_, px, _| {
        let pink = px
            .chunks_exact(3)
            .filter(|p| p[0] as i32 - p[2] as i32 > 25)
            .count();
        assert!(pink > 100, "only {pink} pinkish pixels");
    });
}

/// Per-behavior image measurements of the animal's dark silhouette.
#[derive(Default, Clone, Copy)]
struct Shape {
    frames: u32,
    elongation: f64,
    length: f64,
    nose_jitter: f64,
}

#[test]
fn keypoints_lie_on_the_drawn_animal_and_postures_look_different() {
    let (w, h) = (640usize, 480usize);
    let bg = render_arena(w as u32, h as u32, PixelFormat::Gray8, 3);
    let mut cam = SyntheticBehaviorCamera::new(&cfg(3, w as u32, h as u32, PixelFormat::Gray8));
    let mut shapes = [Shape::default(); 4];
    let mut last_rel: Option<[f32; 2]> = None;
    let (mut missed, mut checked) = ([0u32; 4], [0u32; 4]);
    film(&mut cam, 30 * 60 * 8, |cam, px, s| {
        let truth = s.ground_truth.unwrap();
        for (i, kp) in truth.keypoints.iter().enumerate() {
            assert!(
                (0.0..=(w - 1) as f32).contains(&kp[0]) && (0.0..=(h - 1) as f32).contains(&kp[1]),
                "{kp:?}"
            );
            // Over the bright floor the animal must show at its keypoints (over the grey
            // walls the pink nose and inner ears can match the wall's brightness).
            let j = kp[1].round() as usize * w + kp[0].round() as usize;
            if bg[j] > 150 {
                checked[i] += 1;
                missed[i] += u32::from((px[j] as i32 - bg[j] as i32).abs() < 15);
            }
        }
        // Settled postures only (not the transitions between behaviors).
        let p = cam.animal().pose();
        let b = truth.behavior;
        let settled = match b {
            Behavior::Explore => p.tuck < 0.05 && p.pitch < 0.15 && p.speed > 3.0,
            Behavior::Grooming => p.tuck > 0.9,
            _ => p.pitch > 1.1,
        };
        let rel = [
            truth.keypoints[0][0] - truth.keypoints[3][0],
            truth.keypoints[0][1] - truth.keypoints[3][1],
        ];
        let jitter = last_rel.map(|l| (rel[0] - l[0]).hypot(rel[1] - l[1]));
        last_rel = Some(rel);
        if !settled {
            return;
        }
        let m = silhouette_moments(px, &bg, w, truth.keypoints[3]);
        let shape = &mut shapes[b as usize];
        shape.frames += 1;
        shape.elongation += (m.0 / m.1).sqrt();
        shape.length += m.0.sqrt();
        shape.nose_jitter += jitter.unwrap_or(0.0) as f64;
    });
    for i in 0..4 {
        assert!(
            checked[i] > 30 * 60 * 5,
            "keypoint {i} over the floor in {} frames",
            checked[i]
        );
        assert!(
            missed[i] * 200 < checked[i],
            "keypoint {i} off the animal in {} frames",
            missed[i]
        );
    }
    let mean = |b: Behavior| {
        let s = shapes[b as usize];
        assert!(s.frames > 50, "{}: {} settled frames", b.label(), s.frames);
        let n = s.frames as f64;
        (s.elongation / n, s.length / n, s.nose_jitter / n)
    };
    let (explore, groom, mid, wall) = (
        mean(Behavior::Explore),
        mean(Behavior::Grooming),
        mean(Behavior::MidRearing),
        mean(Behavior::WallRearing),
    );
    // Exploring is long and thin; grooming and rearing are compact and foreshortened.
    assert!(explore.0 > 2.0, "explore elongation {:.2}", explore.0);
    for (label, other) in [
        ("grooming", groom),
        ("mid rearing", mid),
        ("wall rearing", wall),
    ] {
        assert!(
            other.0 < 0.65 * explore.0,
            "{label} elongation {:.2} vs {:.2}",
            other.0,
            explore.0
        );
        assert!(
            other.1 < 0.75 * explore.1,
            "{label} length {:.1} vs {:.1}",
            other.1,
            explore.1
        );
    }
    // Grooming strokes shake the snout; a rearing animal holds its head still.
    assert!(
        groom.2 > 1.5 * mid.2,
        "grooming nose jitter {:.2} vs rearing {:.2}",
        groom.2,
        mid.2
    );
}

/// Principal second moments (major, minor) of the dark animal pixels on the floor within
/// 12 cm of the tail base.
fn silhouette_moments(px: &[u8], bg: &[u8], w: usize, centre: [f32; 2]) -> (f64, f64) {
    let reach = 110.0;
    let h = px.len() / w;
    let (x0, x1) = (
        (centre[0] - reach).max(0.0) as usize,
        ((centre[0] + reach) as usize).min(w),
    );
    let (y0, y1) = (
        (centre[1] - reach).max(0.0) as usize,
        ((centre[1] + reach) as usize).min(h),
    );
    let (mut n, mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0);
    for y in y0..y1 {
        for x in x0..x1 {
            let i = y * w + x;
            if bg[i] > 150 && px[i] < 110 {
                let (fx, fy) = (x as f64, y as f64);
                n += 1.0;
                sx += fx;
                sy += fy;
                sxx += fx * fx;
                syy += fy * fy;
                sxy += fx * fy;
            }
        }
    }
    let (mx, my) = (sx / n, sy / n);
    let (cxx, cyy, cxy) = (sxx / n - mx * mx, syy / n - my * my, sxy / n - mx * my);
    let tr = 0.5 * (cxx + cyy);
    let det = (0.25 * (cxx - cyy).powi(2) + cxy * cxy).sqrt();
    (tr + det, (tr - det).max(1e-6))
}

#[test]
fn camera_and_miniscope_with_one_seed_film_the_same_animal() {
    let mut cam_cfg = cfg(17, 320, 240, PixelFormat::Gray8);
    cam_cfg.fps = 60.0;
    let mut cam = SyntheticBehaviorCamera::new(&cam_cfg);
    let mut scope = SyntheticMiniscope::new(&SyntheticMiniscopeConfig {
        name: "Miniscope".into(),
        fps: 20.0,
        width: 48,
        height: 48,
        neurons: 4,
        seed: 17,
        counter_start: 0,
        pacing: Pacing::Fast,
        compression: None,
        faults: FaultPlan::default(),
    });
    let mut cam_buf = vec![0u8; 320 * 240];
    let mut scope_buf = vec![0u8; 48 * 48];
    let mut seen = [false; 4];
    for k in 0..20 * 240 {
        scope.next_frame(&mut scope_buf).unwrap();
        let truth = loop {
            let s = cam.next_frame(&mut cam_buf).unwrap();
            if s.raw_counter == 3 * k {
                break s.ground_truth.unwrap();
            }
        };
        let animal = scope.animal();
        assert_eq!(truth.behavior, animal.behavior(), "miniscope frame {k}");
        let expected = animal.keypoints().map(|p| cam.project(p));
        assert_eq!(truth.keypoints, expected, "miniscope frame {k}");
        seen[truth.behavior as usize] = true;
    }
    assert_eq!(seen, [true; 4], "four minutes should show every behavior");
}

#[test]
fn dropped_frames_leave_gaps_in_the_32_bit_counter() {
    let mut c = cfg(2, 64, 48, PixelFormat::Gray8);
    c.faults.drop_frames = vec![2, 3, 7];
    let mut cam = SyntheticBehaviorCamera::new(&c);
    let mut counters = Vec::new();
    film(&mut cam, 6, |_, _, s| counters.push(s.raw_counter));
    assert_eq!(counters, [0, 1, 4, 5, 6, 8]);
}
