//! Tests of the simulated animal: determinism across sampling rates, the behavior chain's
//! statistics over a long run, posture signatures and the head quaternion.

use super::animal::{ARENA_CM, Animal, NEAR_WALL_CM, TICK_NS, wall_distance};
use super::faults::nominal_time_ns;
use crate::frame::Behavior;

const MINUTE_TICKS: u64 = 60 * 1_000_000_000 / TICK_NS;

#[test]
fn copies_sampled_at_different_rates_agree_at_common_times() {
    let (mut a30, mut a60) = (Animal::new(42), Animal::new(42));
    let mut switches = 0;
    let mut last = a30.behavior();
    for k in 0..30 * 120u64 {
        a30.advance_to_ns(nominal_time_ns(k, 30.0));
        a60.advance_to_ns(nominal_time_ns(2 * k, 60.0));
        assert_eq!(a30.behavior(), a60.behavior(), "frame {k}");
        assert_eq!(a30.pose(), a60.pose(), "frame {k}");
        assert_eq!(a30.time_ns(), a60.time_ns());
        // The odd 60 fps frames in between must not disturb the 60 fps copy.
        a60.advance_to_ns(nominal_time_ns(2 * k + 1, 60.0));
        switches += usize::from(a30.behavior() != last);
        last = a30.behavior();
    }
    assert!(
        switches > 10,
        "only {switches} behavior switches in two minutes"
    );
}

#[test]
fn different_seeds_give_different_animals() {
    let (mut a, mut b) = (Animal::new(1), Animal::new(2));
    a.advance_to_ns(10_000_000_000);
    b.advance_to_ns(10_000_000_000);
    assert_ne!(a.pose().position, b.pose().position);
}

#[test]
fn advance_rounds_down_to_ticks_and_never_goes_back() {
    let mut a = Animal::new(7);
    a.advance_to_ns(TICK_NS * 3 - 1);
    assert_eq!(a.time_ns(), TICK_NS * 2);
    a.advance_to_ns(TICK_NS * 10);
    a.advance_to_ns(0);
    assert_eq!(a.time_ns(), TICK_NS * 10);
}

/// Per-behavior statistics of a long run stepped tick by tick.
#[derive(Default)]
struct Stats {
    bouts: [Vec<f64>; 4],
    ticks: [u64; 4],
    pitch_sum: [f64; 4],
    speed_sum: [f64; 4],
    /// Wall rearing ticks (past the first 0.4 s of a bout) with the nose within 1.5 cm of a
    /// wall, and the total of such ticks.
    wall_nose_near: u64,
    wall_settled: u64,
    /// Mid-rearing bouts that started near a wall.
    mid_near_wall: u64,
}

fn long_run(seed: u64, minutes: u64) -> Stats {
    let mut a = Animal::new(seed);
    let mut s = Stats::default();
    let mut run = 0u64;
    let mut current = a.behavior();
    let mut in_bout = 0u64;
    for _ in 0..minutes * MINUTE_TICKS {
        a.step();
        let b = a.behavior();
        if b != current {
            s.bouts[current as usize].push(run as f64 * TICK_NS as f64 * 1e-9);
            // (The choice is made a tick earlier; one tick moves the hip at most 0.15 cm.)
            if b == Behavior::MidRearing && wall_distance(a.pose().position) < NEAR_WALL_CM - 0.2 {
                s.mid_near_wall += 1;
            }
            current = b;
            run = 0;
            in_bout = 0;
        }
        run += 1;
        in_bout += 1;
        let i = b as usize;
        s.ticks[i] += 1;
        s.pitch_sum[i] += a.pose().pitch as f64;
        s.speed_sum[i] += a.pose().speed as f64;
        for kp in a.keypoints() {
            assert!(
                (0.0..=ARENA_CM).contains(&kp[0]) && (0.0..=ARENA_CM).contains(&kp[1]),
                "{kp:?}"
            );
        }
        if b == Behavior::WallRearing && in_bout > 80 {
            s.wall_settled += 1;
            let nose = a.skeleton().nose;
            s.wall_nose_near += u64::from(wall_distance([nose[0], nose[1]]) < 1.5);
        }
    }
    s
}

#[test]
fn long_run_has_every_behavior_with_realistic_bouts() {
    let s = long_run(11, 30);
    let ranges = [(2.0, 8.0), (3.0, 10.0), (0.5, 2.0), (1.0, 3.0)];
    for b in Behavior::ALL {
        let bouts = &s.bouts[b as usize];
        assert!(
            bouts.len() >= 20,
            "{}: only {} bouts",
            b.label(),
            bouts.len()
        );
        let mean = bouts.iter().sum::<f64>() / bouts.len() as f64;
        let (lo, hi) = ranges[b as usize];
        let mid = 0.5 * (lo + hi);
        assert!(
            (mean - mid).abs() < 0.2 * mid,
            "{}: mean bout {mean:.2} s",
            b.label()
        );
        let (min, max) = bouts
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, z), &v| (a.min(v), z.max(v)));
        assert!(
            min >= lo - 0.01 && max <= hi + 0.01,
            "{}: bouts {min:.2}..{max:.2} s",
            b.label()
        );
    }
    // Rearing raises the body; exploring is the only behavior with real locomotion.
    let mean = |sum: &[f64; 4], b: Behavior| sum[b as usize] / s.ticks[b as usize] as f64;
    assert!(mean(&s.pitch_sum, Behavior::Explore) < 0.2);
    assert!(mean(&s.pitch_sum, Behavior::Grooming) < 0.2);
    assert!(mean(&s.pitch_sum, Behavior::MidRearing) > 0.8);
    assert!(mean(&s.pitch_sum, Behavior::WallRearing) > 0.9);
    let explore_speed = mean(&s.speed_sum, Behavior::Explore);
    assert!(
        (4.0..15.0).contains(&explore_speed),
        "explore speed {explore_speed}"
    );
    for b in [
        Behavior::Grooming,
        Behavior::MidRearing,
        Behavior::WallRearing,
    ] {
        assert!(
            mean(&s.speed_sum, b) < 0.3 * explore_speed,
            "{} moves",
            b.label()
        );
    }
    // Wall rearing happens at walls, mid rearing away from them.
    let near = s.wall_nose_near as f64 / s.wall_settled as f64;
    assert!(
        near > 0.95,
        "nose at the wall in only {:.0}% of wall rearing",
        100.0 * near
    );
    assert_eq!(s.mid_near_wall, 0);
}

#[test]
fn head_quaternion_is_unit_and_follows_heading_and_pitch() {
    let mut a = Animal::new(3);
    let mut rearing_seen = false;
    for k in 0..20 * 60 {
        a.advance_to_ns(nominal_time_ns(k, 20.0));
        let q = a.head_quaternion();
        let norm = q.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        // Rotate the head's forward axis (x) into the east-north-up world frame.
        let [w, x, y, z] = q;
        let fwd = [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y + w * z),
            2.0 * (x * z - w * y),
        ];
        let p = a.pose();
        let pitch = a.skeleton().head_pitch;
        if p.tuck < 1e-3 {
            let (s, c) = p.heading.sin_cos();
            let expect = [c * pitch.cos(), -s * pitch.cos(), pitch.sin()];
            for i in 0..3 {
                assert!((fwd[i] - expect[i]).abs() < 1e-3, "{fwd:?} vs {expect:?}");
            }
        }
        rearing_seen |= fwd[2] > 0.5;
    }
    assert!(rearing_seen, "the head never pointed up in a minute");
}
