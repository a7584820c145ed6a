//! Load-time checks added for outputs, names, ranges and raw text: each error is located
//! (line and key) and none of these configs gets as far as a run.

use super::*;

fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
    LoadedConfig::from_str(text, "rig.toml")
}

/// The line (1-based) of the first line of `text` that starts with `start`.
fn line_of(text: &str, start: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(start))
        .unwrap_or_else(|| panic!("`{start}` not in the text"))
        + 1
}

/// Asserts `text` fails with an error whose key is `key`, on the line starting with `at`,
/// whose message holds every one of `words`.
fn fails(text: &str, key: &str, at: &str, words: &[&str]) {
    let err = parse(text).expect_err("the config must be refused");
    assert_eq!(err.key(), Some(key), "{err}");
    let line = line_of(text, at);
    assert_eq!(err.position().map(|p| p.0), Some(line), "{err}");
    let shown = err.to_string();
    assert!(shown.starts_with(&format!("rig.toml:{line}:")), "{shown}");
    for w in words {
        assert!(shown.contains(w), "`{w}` not in: {shown}");
    }
}

fn demo_with(from: &str, to: &str) -> String {
    assert!(DEMO_CONFIG.contains(from), "{from}");
    DEMO_CONFIG.replacen(from, to, 1)
}

#[test]
fn a_rule_naming_no_output_is_refused_with_a_suggestion() {
    let text = demo_with("output = \"stim\"", "output = \"stmi\"");
    fails(
        &text,
        "rule[0].trigger.output",
        "output = \"stmi\"",
        &[
            "`stmi` is not the name of an [[output]]",
            "did you mean `stim`",
        ],
    );
    let end = DEMO_CONFIG.find("[[output]]").unwrap();
    let text = &DEMO_CONFIG[..end];
    fails(
        text,
        "rule[0].trigger.output",
        "output = \"stim\"",
        &["the config has no [[output]]", "port = \"emulated\""],
    );
}

#[test]
fn a_trigger_channel_must_exist_on_its_output() {
    let text = demo_with("channel = 0", "channel = 2");
    fails(
        &text,
        "rule[0].trigger.channel",
        "channel = 2",
        &[
            "channel 2 does not exist on output `stim`",
            "channels 0 and 1",
        ],
    );
    let text = demo_with(
        "port = \"emulated\"",
        "port = \"emulated\"\nprotocol = \"firmata\"\npins = [9]",
    )
    .replacen("channel = 0", "channel = 1", 1);
    fails(
        &text,
        "rule[0].trigger.channel",
        "channel = 1",
        &["pins = [9]"],
    );
}

#[test]
fn pulses_and_trains_beyond_the_output_limits_are_refused() {
    let text = demo_with("pulse_width_ms = 10.0", "pulse_width_ms = 150.0").replacen(
        "period_ms = 50.0",
        "period_ms = 200.0",
        1,
    );
    fails(
        &text,
        "rule[0].trigger.pulse_width_ms",
        "pulse_width_ms = 150.0",
        &["150 ms pulse", "max_on_ms = 100 ms"],
    );
    // 60 pulses × 10 ms = 600 ms on, over 0.5 × 1 s.
    let text = demo_with("pulses = 5", "pulses = 60");
    fails(
        &text,
        "rule[0].trigger.pulses",
        "pulses = 60",
        &["600 ms", "500 ms"],
    );
}

#[test]
fn a_rule_rate_beyond_the_refractory_and_duty_cap_is_refused() {
    let text = demo_with("refractory_s = 2.0", "refractory_s = 0.1");
    fails(
        &text,
        "rule[0].refractory_s",
        "refractory_s = 0.1",
        &["shorter than output `stim`'s limits.refractory_s (0.5 s)"],
    );
    // Trains of 50 ms at most every 0.05 s: up to 20 could start within the 1 s window, four
    // times the 500 ms the duty cap allows.
    let text = demo_with("refractory_s = 2.0", "refractory_s = 0.05")
        .replacen("max_per_minute = 20", "max_per_minute = 600", 1)
        .replacen("refractory_s = 0.5", "refractory_s = 0.0", 1);
    fails(
        &text,
        "rule[0].refractory_s",
        "refractory_s = 0.05",
        &["up to 20 trains", "set refractory_s = 0.1 or more"],
    );
    // The suggested spacing fits.
    let text = text.replacen("refractory_s = 0.05", "refractory_s = 0.1", 1);
    parse(&text).unwrap();
    // No bound at all on the number of trains.
    let text = demo_with("max_per_minute = 20\n", "")
        .replacen("refractory_s = 2.0", "refractory_s = 0.0", 1)
        .replacen("refractory_s = 0.5", "refractory_s = 0.0", 1);
    fails(
        &text,
        "rule[0].refractory_s",
        "refractory_s = 0.0",
        &["any number of trains"],
    );
}

#[test]
fn two_rules_on_one_channel_are_a_warning_not_an_error() {
    let rule = DEMO_CONFIG
        .split("[[rule]]")
        .nth(1)
        .unwrap()
        .split("[[output]]")
        .next()
        .unwrap()
        .replacen("wall_rearing_stim", "second_stim", 1);
    let text = DEMO_CONFIG.replacen("[[output]]", &format!("[[rule]]{rule}[[output]]"), 1);
    let review = LoadedConfig::review_str(&text, "rig.toml");
    assert!(review.errors.is_empty(), "{:?}", review.errors);
    assert_eq!(review.warnings.len(), 1, "{:?}", review.warnings);
    assert!(
        review.warnings[0]
            .message
            .contains("share its refractory period")
    );
}

#[test]
fn names_that_would_escape_the_output_directory_are_refused() {
    let text = demo_with("[session]\n", "[session]\nname = \"../escape\"\n");
    fails(
        &text,
        "session.name",
        "name = \"../escape\"",
        &["path separator"],
    );
    let text = demo_with("[session]\n", "[session]\nname = \"..\"\n");
    fails(&text, "session.name", "name = \"..\"", &["`..`"]);
    let text = demo_with("[session]\n", "[session]\nname = \"a\\u0000b\"\n");
    fails(
        &text,
        "session.name",
        "name = \"a",
        &["control character U+0000"],
    );
    let long = "x".repeat(300);
    let text = demo_with("[session]\n", &format!("[session]\nname = \"{long}\"\n"));
    fails(&text, "session.name", "name = \"xxx", &["300 bytes"]);
    let text = demo_with("id = \"sim001\"", "id = \"../../tmp/m1\"");
    fails(&text, "session.subject.id", "id = \"../", &["subject id"]);
    let text = demo_with("name = \"BehaviorCam0\"", "name = \"../Cam\"");
    fails(
        &text,
        "source[1].name",
        "name = \"../Cam\"",
        &["letters, digits or `_`"],
    );
    let text = demo_with("name = \"stim\"", "name = \"../stim\"").replacen(
        "output = \"stim\"",
        "output = \"../stim\"",
        1,
    );
    fails(
        &text,
        "output[0].name",
        "name = \"../stim\"",
        &["letters, digits or `_`"],
    );
}

#[test]
fn values_that_would_hang_or_abort_are_out_of_range() {
    let text = demo_with("neurons = 120", "neurons = 1000000");
    fails(
        &text,
        "source[0].neurons",
        "neurons = 1000000",
        &["1–1000 neurons"],
    );
    let text = demo_with(
        "path = \"../models/behavior_cnn.onnx\"",
        "path = \"../models/behavior_cnn.onnx\"\nwarmup_runs = 1000000000",
    );
    fails(
        &text,
        "model[0].warmup_runs",
        "warmup_runs",
        &["0–10000 runs"],
    );
    let text = demo_with(
        "radius = 6.0 },\n    { name = \"explore_cell\"",
        "radius = 1e9 },\n    { name = \"explore_cell\"",
    );
    fails(
        &text,
        "signal[0].roi[0].radius",
        "{ name = \"groom_cell\"",
        &["1000000000", "512 pixels"],
    );
    let start = DEMO_CONFIG.find("roi = [").unwrap();
    let end = start + DEMO_CONFIG[start..].find("]\n").unwrap() + 2;
    let text = format!("{}roi = []\n{}", &DEMO_CONFIG[..start], &DEMO_CONFIG[end..]);
    fails(&text, "signal[0].roi", "roi = []", &["holds no ROI"]);
    let text = demo_with("max_duty = 0.5", "max_duty = nan");
    fails(
        &text,
        "output[0].limits.max_duty",
        "max_duty = nan",
        &["is NaN"],
    );
    let text = demo_with("watchdog_ms = 1000", "watchdog_ms = 4000000000");
    fails(
        &text,
        "output[0].limits.watchdog_ms",
        "watchdog_ms",
        &["0–60000 ms"],
    );
    let text = demo_with(
        "fps = 30.0\nneurons",
        "fps = 30.0\nwidth = 8192\nheight = 8192\nneurons",
    );
    parse(&text).expect("a large frame is in range; the memory budget judges it");
}

#[test]
fn a_rule_nested_too_deep_is_refused_before_parsing() {
    let deep = format!(
        "{}behavior.explore > 0.5{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let text = demo_with(
        "when = \"behavior.wall_rearing > 0.8 && behavior_gru.wall_rearing > 0.8\"",
        &format!("when = \"{deep}\""),
    );
    fails(&text, "rule[0].when", "when = \"(((", &["1024"]);
    let deep = format!("{}behavior.explore > 0.5{}", "(".repeat(40), ")".repeat(40));
    let text = demo_with(
        "when = \"behavior.wall_rearing > 0.8 && behavior_gru.wall_rearing > 0.8\"",
        &format!("when = \"{deep}\""),
    );
    fails(
        &text,
        "rule[0].when",
        "when = \"(((",
        &["nests 40 levels deep"],
    );
}

#[test]
fn text_that_is_not_utf8_or_has_bare_carriage_returns_names_the_line() {
    let mut bytes = b"[[source]]\nkind = \"synthetic-miniscope\"\nname = \"M".to_vec();
    bytes.extend([0xff, 0xfe]);
    bytes.extend(b"\"\n");
    let err = text::decode(bytes, "rig.toml").unwrap_err();
    assert_eq!(err.position(), Some((3, 10)), "{err}");
    assert!(err.to_string().contains("0xff is not UTF-8"), "{err}");
    let err = parse("[[source]]\rkind = \"synthetic-miniscope\"\r").unwrap_err();
    assert_eq!(err.position(), Some((1, 11)), "{err}");
    assert!(err.to_string().contains("carriage return"), "{err}");
}

#[test]
fn syntax_errors_name_the_key_or_the_line_never_a_dot() {
    for (text, expect_key, line) in [
        (
            "[[source]]\nkind = \"synthetic-miniscope\"\nfps = \n",
            Some("source[0].fps"),
            3,
        ),
        (
            "[[source]]\nkind = \"synthetic-miniscope\"\n[recording]\nring_seconds = 4.0.0\n",
            Some("recording.ring_seconds"),
            4,
        ),
        (
            "[[source]]\nkind = \"synthetic-miniscope\"\n[[source\n",
            None,
            3,
        ),
        ("[[source]]\nkind = \"synthetic-miniscope\"\n= 5\n", None, 3),
    ] {
        let err = parse(text).unwrap_err();
        let shown = err.to_string();
        assert!(!shown.contains("key `.`"), "{shown}");
        assert_eq!(err.key(), expect_key, "{shown}");
        assert_eq!(err.position().map(|p| p.0), Some(line), "{shown}");
        assert!(!err.reason().trim().is_empty(), "{shown}");
        if expect_key.is_none() {
            assert!(shown.contains(&format!("line {line}")), "{shown}");
        }
    }
}

#[test]
fn a_fifo_or_directory_as_config_path_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("rig.toml");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    // Opening a FIFO for reading would block until a writer came: it is never opened.
    let err = LoadedConfig::from_file(&fifo).unwrap_err().to_string();
    assert!(err.contains("FIFO"), "{err}");
    let err = LoadedConfig::from_file(dir.path()).unwrap_err().to_string();
    assert!(err.contains("a directory"), "{err}");
}
