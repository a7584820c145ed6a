//! Rule state machine on synthetic prediction streams: debounce, hysteresis, refractory,
//! rate limit, missing inputs.

use super::expr::Program;
use super::gate::{Debounce, Gate, RuleCounters};
use super::trigger::TriggerCommand;

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// Slot 0: `behavior.wall_rearing`.
fn condition(text: &str) -> Program {
    let resolve = |name: &str| (name == "behavior.wall_rearing").then_some(0);
    Program::compile_condition(text, &resolve, &["behavior.wall_rearing"]).unwrap()
}

const COMMAND: TriggerCommand = TriggerCommand {
    rule: 0,
    output: 0,
    channel: 1,
    pulse_width_ns: 5 * MS,
    pulses: 1,
    period_ns: 0,
};

struct Spec {
    release: Option<&'static str>,
    debounce: Debounce,
    refractory_ns: u64,
    max_per_minute: Option<u32>,
}

const PLAIN: Spec = Spec {
    release: None,
    debounce: Debounce::Frames(1),
    refractory_ns: 0,
    max_per_minute: None,
};

fn gate(spec: Spec) -> Gate {
    Gate::new(
        0,
        condition("behavior.wall_rearing > 0.8"),
        spec.release.map(condition),
        spec.debounce,
        spec.refractory_ns,
        spec.max_per_minute,
        COMMAND,
    )
}

/// Feeds `(t_ns, wall_rearing)` frames; returns the indices of the frames that fired.
fn run(gate: &mut Gate, frames: impl IntoIterator<Item = (u64, f64)>) -> Vec<usize> {
    let mut fired = Vec::new();
    for (i, (t, v)) in frames.into_iter().enumerate() {
        if let Some(fire) = gate.update(&[v], t) {
            assert_eq!(fire.t_ns, t);
            assert_eq!(fire.rule, 0);
            assert_eq!(fire.command, COMMAND);
            fired.push(i);
        }
    }
    fired
}

/// Frames every `period` from t = 0.
fn every(period: u64, values: &[f64]) -> Vec<(u64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u64 * period, *v))
        .collect()
}

const HI: f64 = 0.9;
const LO: f64 = 0.1;

#[test]
fn fires_once_on_the_activation_edge() {
    let mut g = gate(PLAIN);
    let fired = run(&mut g, every(10 * MS, &[LO, HI, HI, HI, LO, HI, HI]));
    assert_eq!(fired, vec![1, 5]);
    let c = g.counters();
    assert_eq!((c.evaluations, c.activations, c.fires), (7, 2, 2));
    assert!(g.is_active());
}

#[test]
fn for_frames_needs_consecutive_true_evaluations() {
    let mut g = gate(Spec {
        debounce: Debounce::Frames(3),
        ..PLAIN
    });
    let stream = [HI, HI, LO, HI, HI, HI, HI, LO, HI, HI];
    assert_eq!(run(&mut g, every(10 * MS, &stream)), vec![5]);
    assert_eq!(g.counters().activations, 1);
    assert!(
        !g.is_active(),
        "two true frames after the dip are not enough"
    );
}

#[test]
fn for_s_uses_capture_times_not_frame_counts() {
    // 10 ms frames: true from t = 20 ms, so 50 ms held is reached at t = 70 ms (frame 7).
    let mut g = gate(Spec {
        debounce: Debounce::Duration(50 * MS),
        ..PLAIN
    });
    let stream = [LO, LO, HI, HI, HI, HI, HI, HI, HI];
    assert_eq!(run(&mut g, every(10 * MS, &stream)), vec![7]);

    // Dropped frames: three evaluations spanning 60 ms are enough.
    let mut g = gate(Spec {
        debounce: Debounce::Duration(50 * MS),
        ..PLAIN
    });
    assert_eq!(
        run(&mut g, [(0, HI), (10 * MS, HI), (60 * MS, HI)]),
        vec![2]
    );

    // A false frame restarts the clock: 0..40 ms true, 50 false, 60..100 true → not yet.
    let mut g = gate(Spec {
        debounce: Debounce::Duration(50 * MS),
        ..PLAIN
    });
    let stream = [HI, HI, HI, HI, HI, LO, HI, HI, HI, HI, HI, HI];
    assert_eq!(run(&mut g, every(10 * MS, &stream)), vec![11]);
}

#[test]
fn release_condition_gives_hysteresis() {
    let mut g = gate(Spec {
        release: Some("behavior.wall_rearing < 0.3"),
        ..PLAIN
    });
    // Dips to 0.5 do not release; 0.2 does; the releasing frame does not arm.
    let stream = [HI, 0.5, 0.6, HI, 0.2, HI, 0.5, HI];
    assert_eq!(run(&mut g, every(10 * MS, &stream)), vec![0, 5]);

    // Without `release`, any false `when` releases.
    let mut g = gate(PLAIN);
    assert_eq!(run(&mut g, every(10 * MS, &stream)), vec![0, 3, 5, 7]);
}

#[test]
fn refractory_suppresses_and_counts_activations() {
    // An activation every 200 ms for 2.5 s, refractory 1 s: fires at 0, 1.0, 2.0 s.
    let mut g = gate(Spec {
        refractory_ns: S,
        ..PLAIN
    });
    let stream: Vec<f64> = (0..250)
        .map(|i| if i % 20 == 0 { HI } else { LO })
        .collect();
    let fired = run(&mut g, every(10 * MS, &stream));
    assert_eq!(fired, vec![0, 100, 200]);
    assert_eq!(
        g.counters(),
        RuleCounters {
            evaluations: 250,
            activations: 13,
            fires: 3,
            suppressed_refractory: 10,
            suppressed_rate: 0,
        }
    );
}

#[test]
fn suppressed_activation_does_not_fire_later_while_held() {
    let mut g = gate(Spec {
        refractory_ns: 100 * MS,
        ..PLAIN
    });
    // Re-activates at 50 ms (suppressed) and stays high past the refractory end: no fire.
    let stream = [HI, LO, LO, LO, LO, HI, HI, HI, HI, HI, HI, HI, HI, HI];
    assert_eq!(run(&mut g, every(10 * MS, &stream)), vec![0]);
    assert_eq!(g.counters().suppressed_refractory, 1);
}

#[test]
fn max_per_minute_holds_in_every_sliding_window() {
    // An activation every 10 s for 100 s, at most 3 per minute.
    let mut g = gate(Spec {
        max_per_minute: Some(3),
        ..PLAIN
    });
    let stream: Vec<f64> = (0..100)
        .map(|i| if i % 10 == 0 { HI } else { LO })
        .collect();
    let frames = every(S, &stream);
    let fired = run(&mut g, frames.clone());
    assert_eq!(fired, vec![0, 10, 20, 60, 70, 80]);
    assert_eq!(g.counters().suppressed_rate, 4);
    assert_eq!(g.counters().activations, 10);
    for &end in &fired {
        let t_end = frames[end].0;
        let in_window = fired
            .iter()
            .filter(|&&i| frames[i].0 + 60 * S > t_end && frames[i].0 <= t_end)
            .count();
        assert!(in_window <= 3, "window ending at {t_end}");
    }
}

#[test]
fn refractory_is_checked_before_the_rate_limit() {
    let mut g = gate(Spec {
        refractory_ns: 15 * S,
        max_per_minute: Some(1),
        ..PLAIN
    });
    let stream: Vec<f64> = (0..70).map(|i| if i % 10 == 0 { HI } else { LO }).collect();
    assert_eq!(run(&mut g, every(S, &stream)), vec![0, 60]);
    let c = g.counters();
    // 10 s: refractory; 20..50 s: rate.
    assert_eq!((c.suppressed_refractory, c.suppressed_rate), (1, 4));
}

#[test]
fn missing_input_never_arms_and_breaks_debounce() {
    let nan = f64::NAN;
    let mut g = gate(Spec {
        debounce: Debounce::Frames(2),
        ..PLAIN
    });
    let stream = [HI, nan, HI, nan, nan, HI, HI];
    assert_eq!(run(&mut g, every(10 * MS, &stream)), vec![6]);

    // Without `release`, missing input releases; with one, the rule stays active.
    let mut g = gate(PLAIN);
    assert_eq!(run(&mut g, every(10 * MS, &[HI, nan, HI])), vec![0, 2]);
    let mut g = gate(Spec {
        release: Some("behavior.wall_rearing < 0.3"),
        ..PLAIN
    });
    assert_eq!(run(&mut g, every(10 * MS, &[HI, nan, HI])), vec![0]);

    // No slots at all reads as missing.
    let mut g = gate(PLAIN);
    assert_eq!(g.update(&[], 0), None);
    assert_eq!(g.counters().evaluations, 1);
}
