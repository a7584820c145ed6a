//! The other storage paths: an RGB camera stored uncompressed as (n, x, y, 3), and gzip done
//! by HDF5's filter pipeline on the writer thread (`compress_threads = 0`); both read back
//! pixel-exact and validate.

mod common;

use std::process::Command;

use common::*;

const CONFIG: &str = r#"
[session]
description = "storage variants test"
experimenter = ["Test, Tess"]

[session.imaging]
location = "CA1"

[[source]]
kind = "synthetic-miniscope"
name = "Miniscope"
width = 80
height = 64
neurons = 10
fps = 60.0

[[source]]
kind = "synthetic-behavior"
name = "ColorCam"
width = 72
height = 40
pixel_format = "rgb8"
fps = 60.0
compression = { codec = "none" }

[recording]
compress_threads = 0
"#;

#[test]
fn rgb_uncompressed_and_writer_thread_gzip_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("variants.toml");
    std::fs::write(&config, CONFIG).unwrap();
    run_ok(
        behavd()
            .args(["run", "--duration", "3", "--config"])
            .arg(&config)
            .arg("--output")
            .arg(dir.path()),
    );
    let file = only_session_file(dir.path());
    let report = check_session(&file, false);
    assert_valid_nwb(&report);
    let color = image_series(&report, "ColorCam");
    let shape: Vec<u64> = color["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(
        &shape[1..],
        &[72, 40, 3],
        "RGB stored as data[frame, x, y, channel]"
    );
    assert!(shape[0] > 100);

    // The stored frames are the transposes of what the sources render: re-render frame 0 of each
    // stream with the same config in Rust and compare with what h5py reads.
    let loaded = behavd::config::LoadedConfig::from_str(CONFIG, "variants").unwrap();
    for (source_config, path, channels) in [
        (
            &loaded.config.source[0],
            "acquisition/Miniscope/data",
            1usize,
        ),
        (&loaded.config.source[1], "acquisition/ColorCam/data", 3),
    ] {
        let mut source = behavd::pipeline::build_source(source_config).unwrap();
        let g = source.info().geometry;
        let mut pixels = vec![0; g.frame_bytes()];
        source.next_frame(&mut pixels).unwrap();
        let mut expected = vec![0; pixels.len()];
        behavd::record::transpose_into(
            &pixels,
            &mut expected,
            g.width as usize,
            g.height as usize,
            channels,
        );
        let code = format!(
            "import h5py, sys; sys.stdout.buffer.write(h5py.File(sys.argv[1], 'r')['{path}'][0].tobytes())"
        );
        let out = Command::new(python())
            .arg("-c")
            .arg(code)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == expected,
            "{path}: frame 0 differs from the rendered frame"
        );
    }
}
