//! Tests of the model runner that need a real model and ONNX Runtime.

use super::*;
use crate::config::LoadedConfig;
use crate::frame::PixelFormat;

/// The recurrent demo model, frame after frame: preprocessing, the bound run with state
/// carried, and decoding make no allocation in Rust (ONNX Runtime's own arena is C++).
#[test]
fn a_frame_through_a_loaded_model_allocates_nothing() {
    let demo = LoadedConfig::demo();
    let config = demo
        .config
        .model
        .iter()
        .find(|m| !m.state.is_empty())
        .expect("the demo has a recurrent model");
    let geometry = FrameGeometry {
        width: 640,
        height: 480,
        format: PixelFormat::Gray8,
    };
    let mut runner =
        match ModelRunner::load(config, &demo.base_dir, ModelFeed::Frames(geometry), None) {
            Ok(r) => r,
            Err(InferError::Runtime(e)) => {
                panic!("ONNX Runtime is needed (scripts/setup.sh): {e}")
            }
            Err(e) => panic!("{e}"),
        };
    runner.warm_up(3).unwrap();
    let frames: Vec<Vec<u8>> = (0..4)
        .map(|k| {
            (0..geometry.frame_bytes())
                .map(|i| ((i * 7 + k * 50) % 256) as u8)
                .collect()
        })
        .collect();
    let mut first = Vec::new();
    let before = crate::test_alloc::allocations();
    for i in 0..100 {
        runner.load_frame(&frames[i % 4]);
        runner.execute().unwrap();
        let values = runner.decode();
        if i == 0 {
            first.extend_from_slice(values);
        }
    }
    let after = crate::test_alloc::allocations();
    assert_eq!(
        after - before,
        1,
        "only the test's own copy of the first output allocated"
    );
    // The state really is carried: the same frame later gives a different output.
    runner.load_frame(&frames[0]);
    runner.execute().unwrap();
    assert_ne!(runner.decode(), &first[..]);
}
