//! A config mutation fuzzer, run for a bounded time: the shipped config and a few other rigs
//! are mutated (lines deleted, duplicated and swapped, numbers made extreme, negative, NaN or
//! huge, types and keys changed, garbage and non-UTF-8 bytes inserted, CR-only line endings,
//! deep nesting, truncation) with a fixed seed, and each mutant goes through the config loader,
//! the memory budget and the rules compiler in-process. No case may panic, hang or abort, and
//! every error must be located (a line inside the text) with a non-empty reason, never the
//! `` key `.` `` form. A smaller number of mutants go through the `behavd check` binary.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use behavd::config::memory::PoolBudget;
use behavd::config::model::OutputSpec;
use behavd::config::{ConfigError, LoadedConfig, RigConfig};
use behavd::rules::{RuleSet, VariableTable};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Wall-clock budget of the in-process cases (the count below usually ends it first).
const IN_PROCESS_BUDGET: Duration = Duration::from_secs(15);
/// In-process cases at most.
const IN_PROCESS_CASES: usize = 20_000;
/// The most one case may take before it counts as a hang.
const CASE_TIMEOUT: Duration = Duration::from_secs(5);

/// The configs the mutations start from: the shipped demo, and small rigs of the other kinds.
fn seeds() -> Vec<String> {
    vec![
        behavd::config::DEMO_CONFIG.to_string(),
        "[session]\nname = \"v4l2_rig\"\n[session.subject]\nid = \"m1\"\n\n[[source]]\nkind = \"v4l2\"\nname = \"Cam\"\ndevice = \"/dev/video0\"\nformat = \"mjpeg\"\npixel_format = \"rgb8\"\nwidth = 1280\nheight = 720\nfps = 60.0\nbuffers = 6\n[source.controls]\ngain = 10\n\n[recording]\ncompression = { codec = \"none\" }\nring_seconds = 2.0\n".into(),
        "[[source]]\nkind = \"miniscope\"\ndevice_type = \"Miniscope_V4_BNO\"\ntrigger = \"active_low\"\n[source.controls]\nled0 = 12.5\newl = -20\ngain = \"Medium\"\nframeRate = \"30FPS\"\n\n[[source]]\nkind = \"synthetic-behavior\"\n[source.faults]\ndrop_frames = [5, 9]\nstall = [{ at_frame = 10, ms = 300 }]\n".into(),
        "[[source]]\nkind = \"synthetic-miniscope\"\nname = \"M\"\n\n[[signal]]\nname = \"cells\"\nsource = \"M\"\n[[signal.roi]]\nname = \"a\"\nx = 100.0\ny = 100.0\nradius = 5.0\n\n[[rule]]\nname = \"r\"\nwhen = \"cells.a > 0.5 && !(cells.a > 3.0)\"\nrefractory_s = 1.0\n[rule.trigger]\noutput = \"laser\"\nchannel = 1\npulse_width_ms = 5.0\n\n[[output]]\nname = \"laser\"\nport = \"emulated\"\nprotocol = \"firmata\"\npins = [9, 10]\n[output.limits]\nrefractory_s = 0.2\n".into(),
    ]
}

const EXTREMES: [&str; 20] = [
    "0",
    "-1",
    "-0.0",
    "1e308",
    "-1e308",
    "1e309",
    "nan",
    "-nan",
    "inf",
    "-inf",
    "4294967296",
    "18446744073709551616",
    "-9223372036854775809",
    "1000000000",
    "1e9",
    "0.0000001",
    "65536",
    "9999999999999",
    "2147483648",
    "0x7fffffff",
];

const TYPES: [&str; 8] = [
    "\"text\"",
    "true",
    "[]",
    "{}",
    "[1, 2]",
    "{ a = 1 }",
    "1979-05-27",
    "\"\"",
];

const GARBAGE: [&str; 16] = [
    "[", "]", "{", "}", "=", "\"", "'", "\"\"\"", "#", ".", ",", "\\", "\t", "\u{7}", "[[", "\0",
];

/// One seeded mutation of `bytes`.
fn mutate(bytes: &mut Vec<u8>, rng: &mut Xoshiro256PlusPlus) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let n = lines.len().max(1);
    let pick = |rng: &mut Xoshiro256PlusPlus| rng.random_range(0..n);
    match rng.random_range(0..14) {
        0 => {
            lines.remove(pick(rng).min(lines.len() - 1));
        }
        1 => {
            let i = pick(rng).min(lines.len() - 1);
            lines.insert(i, lines[i].clone());
        }
        2 => {
            let (a, b) = (
                pick(rng).min(lines.len() - 1),
                pick(rng).min(lines.len() - 1),
            );
            lines.swap(a, b);
        }
        3 | 4 => {
            // A number (or any value) becomes an extreme, or another type.
            let i = pick(rng).min(lines.len() - 1);
            if let Some((key, _)) = lines[i].split_once('=') {
                let value = if rng.random_bool(0.6) {
                    EXTREMES[rng.random_range(0..EXTREMES.len())]
                } else {
                    TYPES[rng.random_range(0..TYPES.len())]
                };
                lines[i] = format!("{key}= {value}");
            }
        }
        5 => {
            // A key gets a character inserted, deleted or replaced.
            let i = pick(rng).min(lines.len() - 1);
            if let Some((key, value)) = lines[i].clone().split_once('=') {
                let mut key: Vec<char> = key.chars().collect();
                if !key.is_empty() {
                    let at = rng.random_range(0..key.len());
                    match rng.random_range(0..3) {
                        0 => key.insert(at, (b'a' + rng.random_range(0..26u8)) as char),
                        1 => {
                            key.remove(at);
                        }
                        _ => key[at] = ['.', '-', ' ', 'x', '"'][rng.random_range(0..5)],
                    }
                }
                lines[i] = format!("{}={value}", key.into_iter().collect::<String>());
            }
        }
        6 => {
            let i = pick(rng).min(lines.len() - 1);
            let g = GARBAGE[rng.random_range(0..GARBAGE.len())];
            let at = floor_boundary(&lines[i], rng.random_range(0..=lines[i].len()));
            lines[i].insert_str(at, g);
        }
        7 => {
            // Deep nesting of a value or a rule.
            let depth = [40, 1000, 100_000][rng.random_range(0..3)];
            let line = if rng.random_bool(0.5) {
                format!("deep = {}1{}", "[".repeat(depth), "]".repeat(depth))
            } else {
                format!("when = \"{}x > 1{}\"", "(".repeat(depth), ")".repeat(depth))
            };
            let i = pick(rng).min(lines.len() - 1);
            lines.insert(i, line);
        }
        8 => {
            // A table header repeated or made up.
            let i = pick(rng).min(lines.len() - 1);
            let header = [
                "[[source]]",
                "[session]",
                "[[rule]]",
                "[rule.trigger]",
                "[[output]]",
                "[output.limits]",
                "[recording]",
                "[[model]]",
                "[model.input]",
                "[[signal.roi]]",
            ][rng.random_range(0..10)];
            lines.insert(i, header.to_string());
        }
        9 => {
            let i = pick(rng).min(lines.len() - 1);
            if let Some((key, _)) = lines[i].split_once('=') {
                lines[i] = format!("{key}= \"{}\"", "y".repeat(rng.random_range(100..5000)));
            }
        }
        _ => {}
    }
    let mut out = lines.join("\n").into_bytes();
    match rng.random_range(0..14) {
        10 => {
            out = out
                .iter()
                .map(|&b| if b == b'\n' { b'\r' } else { b })
                .collect()
        }
        11 => {
            let at = rng.random_range(0..=out.len());
            out.insert(at, [0xff, 0xc3, 0x80, 0xfe][rng.random_range(0..4)]);
        }
        12 => {
            let at = rng.random_range(0..=out.len());
            out.truncate(at);
        }
        13 => {
            out = out
                .iter()
                .flat_map(|&b| {
                    if b == b'\n' {
                        vec![b'\r', b'\n']
                    } else {
                        vec![b]
                    }
                })
                .collect()
        }
        _ => {}
    }
    *bytes = out;
}

fn floor_boundary(s: &str, mut at: usize) -> usize {
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The rule variables a config's models and signals give, as far as the config alone says
/// (class labels, keypoint coordinates, ROI names); `None` when a model's width needs ONNX.
fn variables(config: &RigConfig) -> Option<VariableTable> {
    let mut table = VariableTable::new();
    for m in &config.model {
        let names: Vec<String> = match &m.output {
            OutputSpec::Classes { labels, .. } => labels.clone(),
            OutputSpec::Keypoints { names, .. } => names
                .iter()
                .flat_map(|p| [format!("{p}_x"), format!("{p}_y"), format!("{p}_conf")])
                .collect(),
            OutputSpec::Vector { .. } => return None,
        };
        table.add_group(&m.name, &names).ok()?;
    }
    for s in &config.signal {
        let names: Vec<&str> = s.roi.iter().map(|r| r.name.as_str()).collect();
        table.add_group(&s.name, &names).ok()?;
    }
    Some(table)
}

/// What one case found wrong (`Err`), or whether the config was accepted (`Ok(true)`).
fn judge(bytes: &[u8]) -> Result<bool, String> {
    let text = String::from_utf8_lossy(bytes);
    let lines = text.split('\n').count() + 1;
    let review = LoadedConfig::review_bytes(bytes.to_vec(), "fuzz.toml");
    for e in &review.errors {
        located(e, lines)?;
    }
    if let Some(loaded) = &review.loaded {
        let budget = PoolBudget::with_available(&loaded.config, Some(16 << 30));
        if let Err(e) = budget.check() {
            let shown = e.to_string();
            if shown.trim().is_empty() {
                return Err("an empty memory error".into());
            }
        }
        if let Some(table) = variables(&loaded.config)
            && let Err(e) = RuleSet::compile(&loaded.config.rule, &table)
        {
            let err = loaded.invalid(e.key_path(), e.to_string());
            located(&err, lines)?;
        }
    }
    Ok(review.loaded.is_some())
}

fn located(e: &ConfigError, lines: usize) -> Result<(), String> {
    let shown = e.to_string();
    let Some((line, column)) = e.position() else {
        return Err(format!("no position: {shown}"));
    };
    if line == 0 || line > lines || column == 0 {
        return Err(format!(
            "position {line}:{column} outside the text: {shown}"
        ));
    }
    if e.reason().trim().is_empty() {
        return Err(format!("empty reason: {shown}"));
    }
    if shown.contains("key `.`") || shown.contains("key ``") || e.key() == Some(".") {
        return Err(format!("the `key .` form: {shown}"));
    }
    Ok(())
}

#[test]
fn mutated_configs_never_panic_hang_or_go_unlocated() {
    let (case_tx, case_rx) = mpsc::channel::<Vec<u8>>();
    let (done_tx, done_rx) = mpsc::channel::<Result<bool, String>>();
    // The main thread's stack size, as `behavd check` and `run` have.
    let worker = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            for bytes in case_rx {
                let verdict = catch_unwind(AssertUnwindSafe(|| judge(&bytes)))
                    .unwrap_or_else(|_| Err("panicked".into()));
                if done_tx.send(verdict).is_err() {
                    return;
                }
            }
        })
        .unwrap();
    let seeds = seeds();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x00be_4a7d);
    let started = Instant::now();
    let (mut cases, mut accepted, mut failures) = (0usize, 0usize, Vec::new());
    while cases < IN_PROCESS_CASES && started.elapsed() < IN_PROCESS_BUDGET {
        let mut bytes = seeds[cases % seeds.len()].clone().into_bytes();
        for _ in 0..rng.random_range(1..=3) {
            mutate(&mut bytes, &mut rng);
        }
        case_tx.send(bytes.clone()).unwrap();
        let verdict = done_rx
            .recv_timeout(CASE_TIMEOUT)
            .unwrap_or_else(|_| Err(format!("no answer within {CASE_TIMEOUT:?} (a hang)")));
        if verdict == Ok(true) {
            accepted += 1;
        }
        if let Err(why) = verdict {
            let shown = String::from_utf8_lossy(&bytes);
            let shown: String = shown.chars().take(600).collect();
            failures.push(format!("case {cases}: {why}\n--- config ---\n{shown}\n---"));
            if why.contains("hang") || failures.len() >= 10 {
                break;
            }
        }
        cases += 1;
    }
    drop(case_tx);
    if failures.iter().all(|f| !f.contains("hang")) {
        worker.join().unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        cases >= 500,
        "only {cases} cases ran in {IN_PROCESS_BUDGET:?}"
    );
    eprintln!(
        "{cases} mutants, {accepted} accepted, in {:?}",
        started.elapsed()
    );
    // The mutations reach both sides: some stay valid, most are refused.
    assert!(
        accepted * 20 > cases && accepted * 2 < cases,
        "{accepted} of {cases} accepted"
    );
}

/// Mutants of the demo (model paths made absolute) through the real binary, with a timeout:
/// exit 0 or 1, never a crash, and every `error:` line located as `file:line:column:`.
#[test]
fn mutated_configs_through_behavd_check_exit_cleanly() {
    let project = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let demo = behavd::config::DEMO_CONFIG.replace(
        "path = \"../models/",
        &format!("path = \"{}/models/", project.display()),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x0c4e_c3ed);
    for case in 0..24 {
        let mut bytes = demo.clone().into_bytes();
        if case > 0 {
            mutate(&mut bytes, &mut rng);
        }
        let path = dir.path().join(format!("case{case}.toml"));
        std::fs::write(&path, &bytes).unwrap();
        // Files, not pipes: a child never blocks on a full pipe while it is polled.
        let err_path = dir.path().join(format!("case{case}.err"));
        let mut child = common::behavd()
            .args(["check", "--config"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().ok();
                panic!("case {case}: `behavd check` still running after 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = std::fs::read_to_string(&err_path).unwrap();
        assert!(
            matches!(status.code(), Some(0 | 1)),
            "case {case}: exit {status}\n{stderr}\n--- config ---\n{}",
            String::from_utf8_lossy(&bytes)
        );
        if case == 0 {
            assert_eq!(status.code(), Some(0), "the demo itself is valid: {stderr}");
        }
        let prefix = format!("error: {}:", path.display());
        for line in stderr.lines().filter(|l| l.starts_with("error:")) {
            let rest = line
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("case {case}: error without the file: {line}"));
            let mut parts = rest.splitn(3, ':');
            let (l, c) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(
                l.parse::<usize>().is_ok_and(|l| l > 0) && c.parse::<usize>().is_ok(),
                "case {case}: error without line:column: {line}"
            );
            assert!(!line.contains("key `.`"), "case {case}: {line}");
        }
    }
}
