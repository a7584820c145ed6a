//! `[[model]]`: an ONNX model run on every newest frame of a stream (or on another model's
//! output), with its input preprocessing, recurrent state and output decoding. No code change
//! is needed per model: everything the runtime needs to know is here.

use serde::{Deserialize, Serialize};

/// One model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Model name (letters, digits, `_`); rules read its outputs as `<name>.<label>`.
    pub name: String,
    /// Path to the `.onnx` file, relative to the config file's directory.
    pub path: String,
    /// What the model reads: a source name (e.g. `BehaviorCam0`), or `model:<name>` to consume
    /// another model's raw output vector (two-stage models).
    pub source: String,
    /// Intra-op threads for ONNX Runtime. Default 1.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Execution provider: `cpu` (default), `cuda` or `tensorrt`. An unavailable provider falls
    /// back to CPU with a warning.
    #[serde(default)]
    pub provider: Provider,
    /// A jump of more than this many device frames between two inferred frames (a dropped or
    /// disconnected stretch) resets the recurrent state and the temporal stack. Default 15.
    #[serde(default = "default_reset_gap")]
    pub reset_after_gap_frames: u64,
    /// Runs of the model on a blank input before the session starts. Default 3.
    #[serde(default = "default_warmup")]
    pub warmup_runs: u32,
    /// The image (or vector) input.
    pub input: InputSpec,
    /// Recurrent state pairs: each `output` is fed back into `input` on the next frame.
    #[serde(default)]
    pub state: Vec<StatePair>,
    /// How to decode the output.
    pub output: OutputSpec,
}

/// ONNX Runtime execution provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// CPU (always available).
    #[default]
    Cpu,
    /// NVIDIA CUDA.
    Cuda,
    /// NVIDIA TensorRT (falls back to CPU when unavailable).
    Tensorrt,
}

/// `[model.input]`: the input tensor and how a frame becomes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Input tensor name in the ONNX graph.
    pub name: String,
    /// Region of interest `[x, y, width, height]` in frame pixels, cut before resizing.
    #[serde(default)]
    pub crop: Option<[u32; 4]>,
    /// Network input size `[width, height]`. Default: the (cropped) frame size.
    #[serde(default)]
    pub resize: Option<[u32; 2]>,
    /// Resize interpolation. Default `area`.
    #[serde(default)]
    pub interpolation: Interpolation,
    /// Channels fed to the network. Default `gray`.
    #[serde(default)]
    pub color: ColorMode,
    /// Tensor layout. Default `nchw`.
    #[serde(default)]
    pub layout: Layout,
    /// Element type. Default `float32`.
    #[serde(default)]
    pub dtype: InputType,
    /// Pixel values are multiplied by this first. Default 1/255.
    #[serde(default = "default_scale")]
    pub scale: f32,
    /// Then this is subtracted (one value, or one per channel). Default 0.
    #[serde(default)]
    pub mean: Vec<f32>,
    /// Then divided by this (one value, or one per channel). Default 1.
    #[serde(default)]
    pub std: Vec<f32>,
    /// Temporal input: the last `frames` inputs stacked, oldest first. Default 1.
    #[serde(default = "default_frames")]
    pub frames: usize,
    /// Where the stack goes: `channel` (N, C·T, H, W) or `time` (N, T, C, H, W). Default `channel`.
    #[serde(default)]
    pub stack: StackAxis,
}

/// Resize interpolation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// Nearest neighbour.
    Nearest,
    /// Bilinear with half-pixel centres (OpenCV `INTER_LINEAR`).
    Bilinear,
    /// Box average over the covered source area (OpenCV `INTER_AREA`).
    #[default]
    Area,
}

/// Network colour mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorMode {
    /// One channel (RGB frames are converted with BT.601 luma weights).
    #[default]
    Gray,
    /// Three channels R, G, B (gray frames are replicated).
    Rgb,
}

/// Tensor layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Batch, channels, height, width.
    #[default]
    Nchw,
    /// Batch, height, width, channels.
    Nhwc,
}

/// Input element type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// 32-bit float after scale/mean/std.
    #[default]
    Float32,
    /// Raw 8-bit pixels (scale/mean/std ignored).
    Uint8,
}

/// Axis of the temporal stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StackAxis {
    /// Frames concatenated on the channel axis.
    #[default]
    Channel,
    /// A separate time axis after the batch axis.
    Time,
}

/// `[[model.state]]`: a recurrent state carried from one frame to the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatePair {
    /// Graph input receiving the state (zeros at start and after a gap).
    pub input: String,
    /// Graph output producing the next state.
    pub output: String,
}

/// `[model.output]`: which output to read and how to decode it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum OutputSpec {
    /// Class scores: one value per label.
    Classes {
        /// Output tensor name.
        name: String,
        /// Class labels in output order.
        labels: Vec<String>,
        /// Applied to the raw scores. Default `softmax`.
        #[serde(default)]
        activation: Activation,
    },
    /// Keypoints (DeepLabCut-style), mapped back to frame pixels.
    Keypoints {
        /// Output tensor name.
        name: String,
        /// Body-part names in output order.
        names: Vec<String>,
        /// `heatmap` (K heatmaps, argmax + sub-pixel refinement) or `direct` (K × (x, y, conf)
        /// in network-input pixels). Default `heatmap`.
        #[serde(default)]
        decode: KeypointDecode,
        /// Applied to the confidence (heatmap peak or third column). Default `sigmoid`.
        #[serde(default = "default_keypoint_activation")]
        activation: Activation,
    },
    /// A raw vector (e.g. CNN features for a second-stage model); columns `f0`, `f1`, ...
    Vector {
        /// Output tensor name.
        name: String,
    },
}

/// Activation applied to raw outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Softmax over the classes.
    #[default]
    Softmax,
    /// Element-wise logistic.
    Sigmoid,
    /// Values as produced.
    None,
}

/// Keypoint output decoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeypointDecode {
    /// `[1, K, h, w]` heatmaps.
    #[default]
    Heatmap,
    /// `[1, K, 3]` (x, y, confidence) in network-input pixels.
    Direct,
}

fn default_threads() -> usize {
    1
}
fn default_reset_gap() -> u64 {
    15
}
fn default_warmup() -> u32 {
    3
}
fn default_scale() -> f32 {
    1.0 / 255.0
}
fn default_frames() -> usize {
    1
}
fn default_keypoint_activation() -> Activation {
    Activation::Sigmoid
}
