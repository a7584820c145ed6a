//! Streaming CNN inference with ONNX Runtime: library discovery, model loading with shape
//! checks, preprocessing, recurrent state, output decoding.

pub mod decode;
mod graph;
pub mod model;
pub mod preprocess;
pub mod runtime;
pub mod signals;

pub use model::{ModelFeed, ModelRunner};

/// Most decoded values one model produces per frame (classes, keypoint triples, or a vector).
pub const MAX_OUTPUT_VALUES: usize = 256;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// ONNX Runtime itself is missing or unusable.
    #[error("{0}")]
    Runtime(String),
    /// The model spec does not fit the model or the frames (message starts with the key).
    #[error("{0}")]
    Spec(String),
    /// ONNX Runtime failed while running.
    #[error("{0}")]
    Run(String),
}
