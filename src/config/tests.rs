use super::*;

fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
    LoadedConfig::from_str(text, "rig.toml")
}

const MINIMAL: &str = "[[source]]\nkind = \"synthetic-miniscope\"\n";

#[test]
fn demo_config_is_valid_and_has_both_streams() {
    let demo = LoadedConfig::demo();
    let names: Vec<_> = demo.config.source.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["Miniscope", "BehaviorCam0"]);
    assert_eq!(demo.text, DEMO_CONFIG);
}

#[test]
fn defaults_fill_a_minimal_config() {
    let cfg = parse(MINIMAL).unwrap().config;
    assert_eq!(cfg.recording.compression, Compression::Gzip { level: 1 });
    assert_eq!(cfg.source[0].size(), (608, 608));
    assert_eq!(cfg.session.subject.species, "Mus musculus");
}

#[test]
fn typo_in_top_level_key_names_line_column_and_suggests() {
    let text = format!("{MINIMAL}\n[recordng]\nflush_interval_s = 2.0\n");
    let err = parse(&text).unwrap_err();
    let ConfigError::Parse {
        line,
        key,
        suggestion,
        ..
    } = &err
    else {
        panic!("expected a parse error, got {err}");
    };
    assert_eq!(*line, 4, "{err}");
    assert_eq!(key, "recordng");
    assert_eq!(suggestion.as_deref(), Some("recording"));
    let shown = err.to_string();
    assert!(shown.starts_with("rig.toml:4:"), "{shown}");
    assert!(shown.contains("did you mean `recording`"), "{shown}");
}

#[test]
fn typo_inside_a_source_names_the_source_and_key() {
    let text = "[[source]]\nkind = \"synthetic-behavior\"\n\n[[source]]\nkind = \"synthetic-miniscope\"\nneurns = 80\n";
    let err = parse(text).unwrap_err();
    let ConfigError::Parse {
        line,
        column,
        key,
        suggestion,
        ..
    } = &err
    else {
        panic!("expected a parse error, got {err}");
    };
    assert_eq!((*line, *column), (6, 1), "{err}");
    assert!(
        key.starts_with("source[1]") && key.ends_with("neurns"),
        "{key}"
    );
    assert_eq!(suggestion.as_deref(), Some("neurons"));
}

#[test]
fn unknown_source_kind_suggests_the_nearest_kind() {
    let err = parse("[[source]]\nkind = \"synthetic-minscope\"\n").unwrap_err();
    let ConfigError::Parse {
        line, suggestion, ..
    } = &err
    else {
        panic!("expected a parse error, got {err}");
    };
    assert_eq!(*line, 2, "{err}");
    assert_eq!(suggestion.as_deref(), Some("synthetic-miniscope"));
}

#[test]
fn wrong_type_is_reported_at_the_value() {
    let err = parse("[[source]]\nkind = \"synthetic-miniscope\"\nfps = \"fast\"\n").unwrap_err();
    let shown = err.to_string();
    assert!(shown.starts_with("rig.toml:3:"), "{shown}");
    assert!(shown.contains("fps"), "{shown}");
}

#[test]
fn invalid_values_point_at_their_key() {
    let text = "[[source]]\nkind = \"synthetic-miniscope\"\n\n[[source]]\nkind = \"synthetic-behavior\"\nfps = 0.0\n";
    let err = parse(text).unwrap_err();
    let ConfigError::Invalid {
        line, column, key, ..
    } = &err
    else {
        panic!("expected a validation error, got {err}");
    };
    assert_eq!(key, "source[1].fps");
    assert_eq!((*line, *column), (6, 1), "{err}");
}

#[test]
fn duplicate_stream_names_are_rejected() {
    let text = "[[source]]\nkind = \"synthetic-miniscope\"\nname = \"Cam\"\n[[source]]\nkind = \"synthetic-behavior\"\nname = \"Cam\"\n";
    let err = parse(text).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("source[1].name"), "{shown}");
    assert!(shown.starts_with("rig.toml:6:"), "{shown}");
}

#[test]
fn a_rig_without_sources_is_an_error() {
    let err = parse("[session]\nlab = \"x\"\n").unwrap_err();
    assert!(err.to_string().contains("no [[source]]"), "{err}");
}

#[test]
fn bad_gzip_level_is_rejected() {
    let text = format!("{MINIMAL}[recording]\ncompression = {{ codec = \"gzip\", level = 12 }}\n");
    let err = parse(&text).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("recording.compression.level"), "{shown}");
    assert!(shown.starts_with("rig.toml:4:"), "{shown}");
}

#[test]
fn missing_file_names_the_file() {
    let err = LoadedConfig::from_file(std::path::Path::new("/nonexistent/rig.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/rig.toml: cannot read config")
    );
}

#[test]
fn a_v4l2_camera_parses_with_its_controls() {
    let text = "[[source]]\nkind = \"v4l2\"\nname = \"Cam\"\ndevice = \"usb:ABC123\"\nformat = \"yuyv\"\nwidth = 640\nheight = 360\nfps = 30.0\nbuffers = 6\n\n[source.controls]\nexposure_time_absolute = 100\ngain = 10\n";
    let cfg = parse(text).unwrap().config;
    let SourceConfig::V4l2(v) = &cfg.source[0] else {
        panic!("not a v4l2 source: {:?}", cfg.source[0]);
    };
    assert_eq!(v.device, "usb:ABC123");
    assert_eq!(v.format, source::V4l2Format::Yuyv);
    assert_eq!(v.buffers, 6);
    assert_eq!(v.controls.get("gain"), Some(&10));
    assert_eq!(
        cfg.source[0].geometry().format,
        crate::frame::PixelFormat::Gray8
    );
}

#[test]
fn v4l2_mistakes_point_at_their_key() {
    // A typo inside the table, a missing device, and values that make no sense together.
    let typo = "[[source]]\nkind = \"v4l2\"\ndevice = \"/dev/video0\"\nbufers = 4\n";
    let shown = parse(typo).unwrap_err().to_string();
    assert!(shown.starts_with("rig.toml:4:"), "{shown}");
    assert!(shown.contains("did you mean `buffers`"), "{shown}");
    let shown = parse("[[source]]\nkind = \"v4l2\"\nwidth = 320\n")
        .unwrap_err()
        .to_string();
    assert!(shown.contains("device"), "{shown}");
    for (extra, key, line) in [
        ("pixel_format = \"rgb8\"\n", "source[0].pixel_format", 4),
        ("buffers = 1\n", "source[0].buffers", 4),
        (
            "bytesperline = 100\nwidth = 320\n",
            "source[0].bytesperline",
            4,
        ),
    ] {
        let text = format!("[[source]]\nkind = \"v4l2\"\ndevice = \"/dev/video0\"\n{extra}");
        let shown = parse(&text).unwrap_err().to_string();
        assert!(shown.contains(key), "{shown}");
        assert!(shown.starts_with(&format!("rig.toml:{line}:")), "{shown}");
    }
}

#[test]
fn a_miniscope_parses_and_takes_size_and_rate_from_its_catalog_entry() {
    let text = "[[source]]\nkind = \"miniscope\"\ndevice_type = \"Miniscope_V4_BNO\"\ntrigger = \"active_low\"\n\n[source.controls]\nled0 = 12.5\newl = -20\ngain = \"Medium\"\nframeRate = \"30FPS\"\n";
    let cfg = parse(text).unwrap().config;
    let SourceConfig::Miniscope(m) = &cfg.source[0] else {
        panic!("not a miniscope: {:?}", cfg.source[0]);
    };
    assert_eq!(m.name, "Miniscope");
    assert_eq!(m.device, "auto");
    assert_eq!(m.trigger, source::TriggerSetting::ActiveLow);
    assert_eq!(cfg.source[0].size(), (608, 608));
    assert_eq!(cfg.source[0].fps(), 30.0);
    let values = m.control_values();
    assert!(values.contains(&(
        "gain".into(),
        crate::source::miniscope::ControlValue::Choice("Medium".into())
    )));
    // Without a frameRate setting: the catalog's start value (20 FPS).
    let text = "[[source]]\nkind = \"miniscope\"\n";
    assert_eq!(parse(text).unwrap().config.source[0].fps(), 20.0);
}

#[test]
fn miniscope_mistakes_point_at_their_key() {
    for (body, key, what) in [
        (
            "device_type = \"Miniscope_V9\"\n",
            "source[0].device_type",
            "Miniscope_V4_BNO",
        ),
        (
            "[source.controls]\nled7 = 5\n",
            "source[0].controls.led7",
            "led7",
        ),
        (
            "[source.controls]\nled0 = 150\n",
            "source[0].controls.led0",
            "150",
        ),
        (
            "[source.controls]\ngain = \"Huge\"\n",
            "source[0].controls.gain",
            "Low, Medium, High",
        ),
        ("buffers = 1\n", "source[0].buffers", "2–32"),
    ] {
        let text = format!("[[source]]\nkind = \"miniscope\"\n{body}");
        let shown = parse(&text).unwrap_err().to_string();
        assert!(
            shown.contains(key) && shown.contains(what),
            "{key}: {shown}"
        );
    }
}

#[test]
fn a_nokhwa_camera_parses_in_every_build() {
    let text = "[[source]]\nkind = \"nokhwa\"\nname = \"Cam\"\ndevice = \"1\"\nwidth = 320\nheight = 240\n";
    let cfg = parse(text).unwrap().config;
    assert!(matches!(&cfg.source[0], SourceConfig::Nokhwa(n) if n.device == "1"));
    assert_eq!(cfg.source[0].size(), (320, 240));
}
