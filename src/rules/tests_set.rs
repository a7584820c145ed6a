//! Compiling `[[rule]]` tables: validation errors, clocks, definitions, and no allocation on
//! the hot path.

use crate::config::rule::{RuleConfig, TriggerConfig};

use super::error::{RuleError, RuleProblem};
use super::expr::ExprError;
use super::set::RuleSet;
use super::variables::{VariableError, VariableTable};

fn variables() -> VariableTable {
    let mut table = VariableTable::new();
    let behavior = ["explore", "grooming", "mid_rearing", "wall_rearing"];
    assert_eq!(table.add_group("behavior", &behavior).unwrap(), 0..4);
    assert_eq!(
        table
            .add_group("miniscope", &["roi1", "roi2", "roi3"])
            .unwrap(),
        4..7
    );
    table
}

fn rule(name: &str, when: &str) -> RuleConfig {
    RuleConfig {
        name: name.into(),
        when: when.into(),
        release: None,
        for_frames: None,
        for_s: None,
        refractory_s: 0.0,
        max_per_minute: None,
        clock: None,
        expect: None,
        trigger: TriggerConfig {
            output: "stim".into(),
            channel: 0,
            pulse_width_ms: 5.0,
            pulses: 1,
            period_ms: None,
        },
    }
}

fn rules() -> Vec<RuleConfig> {
    let mut wall = rule("wall_stim", "behavior.wall_rearing > 0.8");
    wall.for_frames = Some(3);
    wall.refractory_s = 2.0;
    wall.expect = Some("wall_rearing".into());
    let mut calcium = rule("calcium", "miniscope.roi3 > 2.0 && behavior.grooming > 0.5");
    calcium.release = Some("miniscope.roi3 < 1.0".into());
    calcium.for_s = Some(0.25);
    calcium.max_per_minute = Some(10);
    calcium.trigger = TriggerConfig {
        output: "laser".into(),
        channel: 2,
        pulse_width_ms: 10.0,
        pulses: 5,
        period_ms: Some(50.0),
    };
    let mut paced = rule("paced", "max(miniscope.roi1, miniscope.roi2) > 3");
    paced.clock = Some("behavior".into());
    vec![wall, calcium, paced]
}

#[test]
fn compiles_clocks_outputs_and_definitions() {
    let table = variables();
    let set = RuleSet::compile(&rules(), &table).unwrap();
    assert_eq!(set.len(), 3);
    let (behavior, miniscope) = (
        table.group("behavior").unwrap(),
        table.group("miniscope").unwrap(),
    );
    // Default clock: the group of the first variable in `when`; explicit `clock` wins.
    assert_eq!(set.rules_for_clock(behavior), &[0, 2]);
    assert_eq!(set.rules_for_clock(miniscope), &[1]);
    assert_eq!(set.rules_for_clock(99), &[] as &[usize]);
    assert_eq!(
        set.output_names(),
        &["stim".to_string(), "laser".to_string()]
    );
    let c = set.command(1);
    assert_eq!(
        (c.rule, c.output, c.channel, c.pulses),
        (1, 1, 2, 5),
        "{c:?}"
    );
    assert_eq!((c.pulse_width_ns, c.period_ns), (10_000_000, 50_000_000));
    assert_eq!(set.command(0).period_ns, 0);
    assert_eq!(set.name(1), "calcium");
    assert_eq!(set.expect(0), Some("wall_rearing"));
    assert_eq!(set.expect(1), None);
    assert_eq!(
        set.definition(0),
        "when=behavior.wall_rearing > 0.8; for_frames=3; refractory_s=2; clock=behavior; \
         expect=wall_rearing; trigger.output=stim; trigger.channel=0; \
         trigger.pulse_width_ms=5; trigger.pulses=1"
    );
    assert_eq!(
        set.definition(1),
        "when=miniscope.roi3 > 2.0 && behavior.grooming > 0.5; release=miniscope.roi3 < 1.0; \
         for_s=0.25; refractory_s=0; max_per_minute=10; clock=miniscope; trigger.output=laser; \
         trigger.channel=2; trigger.pulse_width_ms=10; trigger.pulses=5; trigger.period_ms=50"
    );
}

#[test]
fn update_clock_runs_only_that_clocks_rules() {
    let table = variables();
    let mut set = RuleSet::compile(&rules(), &table).unwrap();
    let behavior = table.group("behavior").unwrap();
    let mut slots = table.empty_slots();
    slots[table.slot("behavior.wall_rearing").unwrap()] = 0.9;
    slots[table.slot("miniscope.roi1").unwrap()] = 5.0;
    slots[table.slot("miniscope.roi2").unwrap()] = 1.0;
    let mut fires = Vec::new();
    for frame in 0..3u64 {
        set.update_clock(behavior, &slots, frame * 33_000_000, |f| fires.push(f));
    }
    // `paced` fires on the first behavior frame, `wall_stim` on the third; `calcium` never runs.
    let fired: Vec<(usize, u64)> = fires.iter().map(|f| (f.rule, f.t_ns)).collect();
    assert_eq!(fired, vec![(2, 0), (0, 66_000_000)]);
    assert_eq!(set.counters(1).evaluations, 0);
    assert_eq!(set.counters(0).evaluations, 3);
    assert!(set.is_active(0) && set.is_active(2));
    assert_eq!(set.update(1, &slots, 0), None);
    assert_eq!(set.counters(1).evaluations, 1);
}

fn error_for(edit: impl FnOnce(&mut Vec<RuleConfig>)) -> RuleError {
    let mut rules = rules();
    edit(&mut rules);
    RuleSet::compile(&rules, &variables()).expect_err("should be rejected")
}

#[test]
fn unknown_variable_error_names_rule_key_and_suggestion() {
    let e = error_for(|r| r[2].when = "behavior.wall_rear > 0.8".into());
    assert_eq!(e.key_path(), "rule[2].when");
    assert_eq!(e.key(), "when");
    assert_eq!(
        e.to_string(),
        "rule[2] \"paced\": `when`: unknown variable `behavior.wall_rear` \
         (did you mean `behavior.wall_rearing`?)"
    );
    let e = error_for(|r| r[1].release = Some("miniscope.roi3 + 1".into()));
    assert_eq!(e.key_path(), "rule[1].release");
    assert!(matches!(
        e,
        RuleError::Expression {
            source: ExprError::NotCondition,
            ..
        }
    ));
}

fn problem(e: &RuleError) -> &RuleProblem {
    match e {
        RuleError::Invalid { problem, .. } => problem,
        other => panic!("expected an invalid value, got {other}"),
    }
}

#[test]
fn invalid_values_are_rejected_with_their_key_path() {
    type Edit = fn(&mut Vec<RuleConfig>);
    let cases: [(Edit, &str, &str); 16] = [
        (
            |r| r[1].name = "bad name".into(),
            "rule[1].name",
            "not a valid rule name",
        ),
        (
            |r| r[1].name = String::new(),
            "rule[1].name",
            "not a valid rule name",
        ),
        (
            |r| r[2].name = "wall_stim".into(),
            "rule[2].name",
            "already used by rule[0]",
        ),
        (|r| r[0].for_s = Some(1.0), "rule[0].for_s", "exclusive"),
        (
            |r| r[0].for_frames = Some(0),
            "rule[0].for_frames",
            "is 0, must be at least 1",
        ),
        (
            |r| r[1].for_s = Some(-0.5),
            "rule[1].for_s",
            "is -0.5, must be a number >= 0",
        ),
        (
            |r| r[0].refractory_s = -1.0,
            "rule[0].refractory_s",
            "must be a number >= 0",
        ),
        (
            |r| r[0].refractory_s = f64::NAN,
            "rule[0].refractory_s",
            "is NaN",
        ),
        (
            |r| r[0].max_per_minute = Some(0),
            "rule[0].max_per_minute",
            "at least 1",
        ),
        (
            |r| r[2].clock = Some("behaviour".into()),
            "rule[2].clock",
            "`behaviour` is not a model or signal group (did you mean `behavior`?)",
        ),
        (
            |r| (r[2].when, r[2].clock) = ("true".into(), None),
            "rule[2].clock",
            "must be set",
        ),
        (
            |r| r[0].expect = Some("rearing".into()),
            "rule[0].expect",
            "not a behavior label",
        ),
        (
            |r| r[0].trigger.pulse_width_ms = 0.0,
            "rule[0].trigger.pulse_width_ms",
            "is 0, must be a number > 0",
        ),
        (
            |r| r[0].trigger.pulses = 0,
            "rule[0].trigger.pulses",
            "at least 1",
        ),
        (
            |r| r[0].trigger.pulses = 2,
            "rule[0].trigger.period_ms",
            "is required when `pulses` > 1",
        ),
        (
            |r| r[1].trigger.period_ms = Some(10.0),
            "rule[1].trigger.period_ms",
            "is 10, must be greater than `pulse_width_ms`",
        ),
    ];
    for (edit, path, words) in cases {
        let e = error_for(edit);
        assert_eq!(e.key_path(), path, "{e}");
        let shown = e.to_string();
        assert!(shown.contains(words), "{shown}");
        let index = &path[5..6];
        assert!(shown.starts_with(&format!("rule[{index}] \"")), "{shown}");
        assert!(shown.contains(&format!("`{}`: ", e.key())), "{shown}");
        let _ = problem(&e);
    }
    let e = error_for(|r| r[2].name = "wall_stim".into());
    assert_eq!(problem(&e), &RuleProblem::DuplicateName { first: 0 });
    assert!(e.to_string().starts_with("rule[2] \"wall_stim\": `name`: "));
}

#[test]
fn explicit_clock_may_be_a_group_the_condition_does_not_read() {
    let mut r = rules();
    r[2].when = "true".into();
    r[2].clock = Some("miniscope".into());
    let table = variables();
    let set = RuleSet::compile(&r, &table).unwrap();
    assert_eq!(set.clock(2), table.group("miniscope").unwrap());
}

#[test]
fn variable_table_rejects_clashes() {
    let mut table = variables();
    assert_eq!(
        table.add_group("behavior", &["x"]),
        Err(VariableError::DuplicateGroup("behavior".into()))
    );
    assert_eq!(
        table.add_group("pose", &["nose_x", "nose_x"]),
        Err(VariableError::DuplicateVariable("pose.nose_x".into()))
    );
    assert_eq!(table.slot("pose.nose_x"), None, "failed group rolled back");
    assert_eq!(
        table.add_group("pose", &["a.b"]),
        Err(VariableError::BadName("a.b".into()))
    );
    assert_eq!(table.add_group("pose", &["nose_x"]).unwrap(), 7..8);
    assert_eq!(table.group_of_slot(7), table.group("pose"));
    assert_eq!(table.slot_count(), 8);
}

#[test]
fn evaluation_does_not_allocate() {
    let table = variables();
    let mut set = RuleSet::compile(&rules(), &table).unwrap();
    let mut slots = table.empty_slots();
    let (behavior, miniscope) = (0, 1);
    let mut fires = 0u64;
    let before = crate::test_alloc::allocations();
    for frame in 0..10_000u64 {
        let t = frame * 10_000_000;
        slots[3] = if frame % 7 < 4 { 0.9 } else { 0.1 };
        slots[1] = if frame % 5 < 3 { 0.8 } else { f64::NAN };
        slots[6] = (frame % 11) as f64 * 0.4;
        set.update_clock(behavior, &slots, t, |_| fires += 1);
        set.update_clock(miniscope, &slots, t, |_| fires += 1);
    }
    let after = crate::test_alloc::allocations();
    assert!(fires > 20, "the stream exercises firing ({fires})");
    assert_eq!(after - before, 0, "allocations during 20 000 clock updates");
    // The counter does see this thread's allocations.
    std::hint::black_box(vec![0u8; 16]);
    assert!(crate::test_alloc::allocations() > after);
}
