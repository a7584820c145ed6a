//! `BEHAVD_FAULT_WEDGE=rules` wedges the rules thread at its first beat: exactly its heartbeat
//! goes overdue while every other data-plane thread keeps beating. (One test in its own binary:
//! the switch is an environment variable read when the heartbeats are made.)

use std::time::{Duration, Instant};

use behavd::config::LoadedConfig;
use behavd::pipeline::engine::{Engine, EngineOptions};

/// A signal and a rule to the emulated stimulator; 0.3 s deadlines.
const CONFIG: &str = r#"
[[source]]
kind = "synthetic-miniscope"
name = "Miniscope"
width = 64
height = 64
neurons = 8
fps = 30.0

[daemon]
thread_deadline_s = 0.3

[[signal]]
name = "sig"
source = "Miniscope"
roi = [{ name = "c0", x = 32.0, y = 32.0, radius = 4.0 }]

[[rule]]
name = "always"
when = "sig.c0 < 1000000.0"
refractory_s = 0.5
[rule.trigger]
output = "stim"
channel = 0
pulse_width_ms = 2.0

[[output]]
name = "stim"
port = "emulated"
"#;

#[test]
fn a_wedged_rules_thread_is_the_one_overdue_heartbeat() {
    // SAFETY: the only test of this binary sets it before any thread of its own is started.
    unsafe { std::env::set_var(behavd::heartbeat::FAULT_WEDGE_ENV, "rules") };
    let dir = tempfile::tempdir().unwrap();
    let loaded = LoadedConfig::from_str(CONFIG, "wedge.toml").unwrap();
    let engine = Engine::open(
        &loaded,
        &EngineOptions {
            output_dir: Some(dir.path().to_path_buf()),
            cancel: None,
        },
    )
    .unwrap();
    let beats = engine.heartbeats();
    let start = Instant::now();
    let rules = beats.iter().find(|b| b.name() == "rules").expect("rules");
    // Silent for more than three deadlines: the others, started with it, had to beat since.
    while rules
        .overdue(behavd::clock::monotonic_ns())
        .is_none_or(|silent| silent < Duration::from_secs(1))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "rules never went overdue"
        );
        std::thread::park_timeout(Duration::from_millis(20));
    }
    let now = behavd::clock::monotonic_ns();
    let overdue: Vec<&str> = beats
        .iter()
        .filter(|b| b.overdue(now).is_some())
        .map(|b| b.name())
        .collect();
    assert_eq!(
        overdue,
        ["rules"],
        "of {:?}",
        beats.iter().map(|b| b.name()).collect::<Vec<_>>()
    );
    let snap = engine.snapshot();
    assert!(snap.threads.iter().any(|t| t.name == "rules" && t.overdue));
    // The wedged thread cannot be joined: the engine is dropped without stopping (the
    // emulated stimulator goes with it), the threads end with the process.
    drop(engine);
}
