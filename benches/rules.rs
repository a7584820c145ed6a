//! Rule evaluation cost: one compiled expression, and one rule's full update (expression plus
//! debounce/refractory/rate bookkeeping), per call.

use std::hint::black_box;
use std::time::Duration;

use behavd::config::rule::{RuleConfig, TriggerConfig};
use behavd::rules::{RuleSet, VariableTable};
use criterion::{Criterion, criterion_group, criterion_main};

const WHEN: &str = "behavior.wall_rearing > 0.8 && miniscope.roi3 > 2.0 \
                    || max(behavior.grooming, behavior.mid_rearing) > 0.9";

fn setup() -> (VariableTable, RuleSet) {
    let mut table = VariableTable::new();
    table
        .add_group(
            "behavior",
            &["explore", "grooming", "mid_rearing", "wall_rearing"],
        )
        .unwrap();
    table
        .add_group("miniscope", &["roi1", "roi2", "roi3"])
        .unwrap();
    let rule = RuleConfig {
        name: "wall_stim".into(),
        when: WHEN.into(),
        release: Some("behavior.wall_rearing < 0.3".into()),
        for_frames: Some(3),
        for_s: None,
        refractory_s: 0.5,
        max_per_minute: Some(20),
        clock: None,
        expect: None,
        trigger: TriggerConfig {
            output: "stim".into(),
            channel: 0,
            pulse_width_ms: 5.0,
            pulses: 1,
            period_ms: None,
        },
    };
    let set = RuleSet::compile(&[rule], &table).unwrap();
    (table, set)
}

/// Slot arrays cycling through arming, holding and releasing values.
fn streams(table: &VariableTable) -> Vec<Vec<f64>> {
    (0..64)
        .map(|i| {
            let mut slots = table.empty_slots();
            slots[3] = if i % 16 < 10 { 0.9 } else { 0.1 };
            slots[1] = (i % 7) as f64 / 7.0;
            slots[2] = 0.2;
            slots[6] = if i % 5 == 0 { f64::NAN } else { 2.5 };
            slots
        })
        .collect()
}

fn rules(c: &mut Criterion) {
    let mut group = c.benchmark_group("rules");
    group.measurement_time(Duration::from_secs(3));
    let (table, set) = setup();
    let inputs = streams(&table);
    let program = behavd::rules::Program::compile_condition(
        WHEN,
        &|name| table.slot(name),
        &table.names().collect::<Vec<_>>(),
    )
    .unwrap();
    group.bench_function("eval_condition_13_ops", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % inputs.len();
            black_box(program.eval_bool(black_box(&inputs[i])))
        })
    });
    group.bench_function("rule_update", |b| {
        let mut set = set.clone();
        let mut frame = 0u64;
        b.iter(|| {
            frame += 1;
            let slots = &inputs[frame as usize % inputs.len()];
            black_box(set.update(0, black_box(slots), frame * 33_333_333))
        })
    });
    group.finish();
}

criterion_group!(benches, rules);
criterion_main!(benches);
