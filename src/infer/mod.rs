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
    /// The model spec does not fit the model or the frames.
    #[error("{message}")]
    Spec {
        /// The config key concerned, relative to the model or signal entry (`input.resize`,
        /// `output.labels`, `state[0].input`, `roi[2]`, ...).
        key: String,
        /// What is wrong, naming the key.
        message: String,
    },
    /// ONNX Runtime failed while running.
    #[error("{0}")]
    Run(String),
}

impl InferError {
    /// A spec error about `key` (relative to the model or signal entry), shown as
    /// `<key>: <message>`.
    pub(crate) fn spec(key: impl Into<String>, message: impl Into<String>) -> Self {
        let key = key.into();
        let message = format!("{key}: {}", message.into());
        InferError::Spec { key, message }
    }

    /// A spec error about `key` whose text already names it.
    pub(crate) fn spec_text(key: impl Into<String>, text: impl Into<String>) -> Self {
        InferError::Spec {
            key: key.into(),
            message: text.into(),
        }
    }

    /// The key of a spec error, if this is one.
    pub fn spec_key(&self) -> Option<&str> {
        match self {
            InferError::Spec { key, .. } => Some(key),
            _ => None,
        }
    }
}
