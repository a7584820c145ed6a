//! One loaded model: session, preallocated input/state/output tensors bound once, preprocessing,
//! recurrent state and decoding. After [`ModelRunner::load`] a frame costs no allocation.

use std::path::Path;

use ort::AsPointer;
use ort::ep::ExecutionProvider;
use ort::memory::Allocator;
use ort::session::{Session, builder::GraphOptimizationLevel};
use ort::value::{Tensor, TensorElementType};

use crate::config::model::{InputType, KeypointDecode, ModelConfig, OutputSpec, Provider};
use crate::frame::FrameGeometry;

use super::decode::{self, InputToFrame};
use super::graph::{check_shape, concrete, names, shape_text, tensor_info};
use super::preprocess::{Preprocessor, TemporalStack};
use super::{InferError, MAX_OUTPUT_VALUES};

/// What feeds a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFeed {
    /// Frames of a stream with this geometry.
    Frames(FrameGeometry),
    /// The raw output vector (this many values) of another model.
    Vector(usize),
}

enum InputTensor {
    F32(Tensor<f32>),
    U8(Tensor<u8>),
}

enum Decoder {
    Classes(crate::config::model::Activation),
    Heatmap {
        k: usize,
        h: usize,
        w: usize,
        activation: crate::config::model::Activation,
    },
    Direct {
        k: usize,
        activation: crate::config::model::Activation,
    },
    Vector,
}

struct StatePair {
    input: Tensor<f32>,
    output: Tensor<f32>,
}

/// A model ready to run frame after frame.
pub struct ModelRunner {
    name: String,
    session: Session,
    binding: ort::session::IoBinding,
    input: InputTensor,
    frames: Option<(Preprocessor, TemporalStack)>,
    states: Vec<StatePair>,
    output: Tensor<f32>,
    decoder: Decoder,
    mapping: InputToFrame,
    input_wh: (usize, usize),
    values: Vec<f32>,
    value_names: Vec<String>,
    provider: &'static str,
    input_name: String,
    state_inputs: Vec<String>,
}

fn ort_err(context: &str) -> impl Fn(ort::Error) -> InferError + '_ {
    move |e| InferError::Run(format!("{context}: {e}"))
}

impl ModelRunner {
    /// Loads `config.path` (relative to `base_dir`), checks every configured shape against the
    /// graph, allocates and binds the tensors.
    pub fn load(
        config: &ModelConfig,
        base_dir: &Path,
        feed: ModelFeed,
        onnxruntime: Option<&str>,
    ) -> Result<Self, InferError> {
        let (env, _) = super::runtime::environment(onnxruntime)?;
        let path = base_dir.join(&config.path);
        if let Err(e) = crate::fsutil::check_regular_file(&path, "model file") {
            return Err(InferError::spec("path", e.to_string()));
        }
        let mut builder = Session::builder(env)
            .map_err(ort_err("session builder"))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .unwrap_or_else(|e| e.recover())
            .with_intra_threads(config.threads.max(1))
            .unwrap_or_else(|e| e.recover())
            .with_inter_threads(1)
            .unwrap_or_else(|e| e.recover());
        let mut provider = "CPU";
        if config.provider != Provider::Cpu {
            let (name, dispatch) = match config.provider {
                Provider::Cuda => ("CUDA", ort::ep::CUDA::default().build()),
                _ => ("TensorRT", ort::ep::TensorRT::default().build()),
            };
            let available = match config.provider {
                Provider::Cuda => ort::ep::CUDA::is_available().unwrap_or(false),
                _ => ort::ep::TensorRT::is_available().unwrap_or(false),
            };
            if !available {
                tracing::warn!(model = %config.name, "{name} execution provider is not in this ONNX Runtime build; falling back to CPU");
            } else {
                match builder.with_execution_providers([dispatch.error_on_failure()]) {
                    Ok(b) => {
                        builder = b;
                        provider = name;
                    }
                    Err(e) => {
                        tracing::warn!(model = %config.name, error = %e, "{name} execution provider unavailable; falling back to CPU");
                        builder = e.recover();
                    }
                }
            }
        }
        let session = builder.commit_from_file(&path).map_err(|e| {
            InferError::spec("path", format!("cannot load {}: {e}", path.display()))
        })?;
        Self::from_session(config, session, feed, provider)
    }

    fn from_session(
        config: &ModelConfig,
        session: Session,
        feed: ModelFeed,
        provider: &'static str,
    ) -> Result<Self, InferError> {
        let allocator = Allocator::default();
        let spec = &config.input;
        // Input.
        let Some((ty, model_shape)) = tensor_info(&session, &spec.name, true) else {
            return Err(InferError::spec(
                "input.name",
                format!(
                    "the model has no tensor input `{}` (its inputs: {})",
                    spec.name,
                    names(&session, true)
                ),
            ));
        };
        let model_shape = model_shape.to_vec();
        let (frames, shape, mapping, input_wh) = match feed {
            ModelFeed::Frames(geometry) => {
                let pre = Preprocessor::new(spec, geometry, spec.dtype == InputType::Uint8)?;
                let stack = TemporalStack::new(spec.frames, pre.chw(), spec.layout, spec.stack);
                let shape = stack.shape();
                let crop = spec.crop.unwrap_or([0, 0, geometry.width, geometry.height]);
                let (_, h, w) = pre.chw();
                let mapping = InputToFrame {
                    crop_x: crop[0] as f32,
                    crop_y: crop[1] as f32,
                    scale_x: crop[2] as f32 / w as f32,
                    scale_y: crop[3] as f32 / h as f32,
                };
                (Some((pre, stack)), shape, mapping, (w, h))
            }
            ModelFeed::Vector(len) => {
                let identity = InputToFrame {
                    crop_x: 0.0,
                    crop_y: 0.0,
                    scale_x: 1.0,
                    scale_y: 1.0,
                };
                (None, vec![1, len as i64], identity, (len, 1))
            }
        };
        check_shape(&format!("input `{}`", spec.name), &model_shape, &shape)?;
        let expected_ty = match spec.dtype {
            InputType::Float32 => TensorElementType::Float32,
            InputType::Uint8 => TensorElementType::Uint8,
        };
        if ty != expected_ty {
            return Err(InferError::spec(
                "input.dtype",
                format!(
                    "the model's input `{}` is {ty:?} but the config says {expected_ty:?}",
                    spec.name
                ),
            ));
        }
        let mut binding = session.create_binding().map_err(ort_err("io binding"))?;
        let input = match spec.dtype {
            InputType::Float32 => {
                let t = Tensor::<f32>::new(&allocator, shape.clone())
                    .map_err(ort_err("input tensor"))?;
                binding
                    .bind_input(&spec.name, &t)
                    .map_err(ort_err("bind input"))?;
                InputTensor::F32(t)
            }
            InputType::Uint8 => {
                let t = Tensor::<u8>::new(&allocator, shape.clone())
                    .map_err(ort_err("input tensor"))?;
                binding
                    .bind_input(&spec.name, &t)
                    .map_err(ort_err("bind input"))?;
                InputTensor::U8(t)
            }
        };
        // Recurrent state.
        let mut states = Vec::new();
        for (i, pair) in config.state.iter().enumerate() {
            let key = format!("state[{i}]");
            let Some((ity, ishape)) = tensor_info(&session, &pair.input, true) else {
                return Err(InferError::spec(
                    format!("{key}.input"),
                    format!(
                        "the model has no input `{}` (its inputs: {})",
                        pair.input,
                        names(&session, true)
                    ),
                ));
            };
            let Some((oty, oshape)) = tensor_info(&session, &pair.output, false) else {
                return Err(InferError::spec(
                    format!("{key}.output"),
                    format!(
                        "the model has no output `{}` (its outputs: {})",
                        pair.output,
                        names(&session, false)
                    ),
                ));
            };
            let ishape = concrete(&format!("{key}.input `{}`", pair.input), ishape)?;
            let oshape = concrete(&format!("{key}.output `{}`", pair.output), oshape)?;
            if ishape != oshape
                || ity != TensorElementType::Float32
                || oty != TensorElementType::Float32
            {
                return Err(InferError::spec(
                    key.clone(),
                    format!(
                        "state input `{}` {} {ity:?} and output `{}` {} {oty:?} must be float32 of one shape",
                        pair.input,
                        shape_text(&ishape),
                        pair.output,
                        shape_text(&oshape)
                    ),
                ));
            }
            let input =
                Tensor::<f32>::new(&allocator, ishape.clone()).map_err(ort_err("state tensor"))?;
            let mut output =
                Tensor::<f32>::new(&allocator, oshape).map_err(ort_err("state tensor"))?;
            binding
                .bind_input(&pair.input, &input)
                .map_err(ort_err("bind state"))?;
            binding
                .bind_output(&pair.output, &mut output)
                .map_err(ort_err("bind state"))?;
            states.push(StatePair { input, output });
        }
        // Every graph input must be fed.
        for outlet in session.inputs() {
            let fed =
                outlet.name() == spec.name || config.state.iter().any(|s| s.input == outlet.name());
            if !fed {
                return Err(InferError::spec_text(
                    "input.name",
                    format!(
                        "the model input `{}` is not fed: name it in input.name or pair it in [[model.state]]",
                        outlet.name()
                    ),
                ));
            }
        }
        // Output.
        let out_name = match &config.output {
            OutputSpec::Classes { name, .. }
            | OutputSpec::Keypoints { name, .. }
            | OutputSpec::Vector { name } => name,
        };
        let Some((oty, oshape)) = tensor_info(&session, out_name, false) else {
            return Err(InferError::spec(
                "output.name",
                format!(
                    "the model has no output `{out_name}` (its outputs: {})",
                    names(&session, false)
                ),
            ));
        };
        if oty != TensorElementType::Float32 {
            return Err(InferError::spec(
                "output.name",
                format!("output `{out_name}` is {oty:?}; behavd reads float32 outputs"),
            ));
        }
        let oshape = concrete(&format!("output `{out_name}`"), oshape)?;
        let numel: i64 = oshape.iter().product();
        let (decoder, value_names) = match &config.output {
            OutputSpec::Classes {
                labels, activation, ..
            } => {
                if numel as usize != labels.len() {
                    return Err(InferError::spec(
                        "output.labels",
                        format!(
                            "{} labels but output `{out_name}` {} has {numel} values",
                            labels.len(),
                            shape_text(&oshape)
                        ),
                    ));
                }
                (Decoder::Classes(*activation), labels.clone())
            }
            OutputSpec::Keypoints {
                names: parts,
                decode,
                activation,
                ..
            } => {
                let k = parts.len();
                let decoder = match decode {
                    KeypointDecode::Heatmap => {
                        if oshape.len() != 4 || oshape[1] as usize != k {
                            return Err(InferError::spec(
                                "output",
                                format!(
                                    "heatmap keypoints need output `{out_name}` shaped [1, {k}, h, w] ({k} names); it is {}",
                                    shape_text(&oshape)
                                ),
                            ));
                        }
                        Decoder::Heatmap {
                            k,
                            h: oshape[2] as usize,
                            w: oshape[3] as usize,
                            activation: *activation,
                        }
                    }
                    KeypointDecode::Direct => {
                        if numel as usize != 3 * k {
                            return Err(InferError::spec(
                                "output",
                                format!(
                                    "direct keypoints need output `{out_name}` shaped [1, {k}, 3] ({k} names); it is {}",
                                    shape_text(&oshape)
                                ),
                            ));
                        }
                        Decoder::Direct {
                            k,
                            activation: *activation,
                        }
                    }
                };
                let cols = parts
                    .iter()
                    .flat_map(|p| [format!("{p}_x"), format!("{p}_y"), format!("{p}_conf")])
                    .collect();
                (decoder, cols)
            }
            OutputSpec::Vector { .. } => (
                Decoder::Vector,
                (0..numel).map(|i| format!("f{i}")).collect(),
            ),
        };
        if value_names.len() > MAX_OUTPUT_VALUES {
            return Err(InferError::spec(
                "output",
                format!(
                    "{} values is more than behavd carries per frame ({MAX_OUTPUT_VALUES})",
                    value_names.len()
                ),
            ));
        }
        let mut output =
            Tensor::<f32>::new(&allocator, oshape).map_err(ort_err("output tensor"))?;
        binding
            .bind_output(out_name, &mut output)
            .map_err(ort_err("bind output"))?;
        let mut runner = Self {
            name: config.name.clone(),
            session,
            binding,
            input,
            frames,
            states,
            output,
            decoder,
            mapping,
            input_wh,
            values: vec![0.0; value_names.len()],
            value_names,
            provider,
            input_name: spec.name.clone(),
            state_inputs: config.state.iter().map(|s| s.input.clone()).collect(),
        };
        runner.reset_state();
        Ok(runner)
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The execution provider the session runs on (`CPU`, `CUDA`, `TensorRT`).
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Names of the decoded values (class labels, `<part>_x/_y/_conf`, or `f<i>`).
    pub fn value_names(&self) -> &[String] {
        &self.value_names
    }

    /// Zeroes the recurrent state and forgets the temporal stack (start of stream, after a gap).
    pub fn reset_state(&mut self) {
        for s in &mut self.states {
            s.input.extract_tensor_mut().1.fill(0.0);
        }
        if let Some((_, stack)) = &mut self.frames {
            stack.reset();
        }
    }

    /// Preprocesses a frame into the input tensor (frame-fed models).
    pub fn load_frame(&mut self, pixels: &[u8]) {
        let (pre, stack) = self.frames.as_mut().expect("a frame-fed model");
        pre.run(pixels, stack.next_slot());
        stack.commit();
        match &mut self.input {
            InputTensor::F32(t) => stack.write(t.extract_tensor_mut().1, |v| v),
            InputTensor::U8(t) => stack.write(t.extract_tensor_mut().1, |v| v as u8),
        }
    }

    /// Copies an upstream model's output vector into the input tensor (vector-fed models).
    pub fn load_vector(&mut self, values: &[f32]) {
        if let InputTensor::F32(t) = &mut self.input {
            t.extract_tensor_mut().1.copy_from_slice(values);
        }
    }

    /// Runs the session on the bound tensors and carries the recurrent state forward.
    pub fn execute(&mut self) -> Result<(), InferError> {
        let api = ort::api();
        // SAFETY: the session and binding are alive and owned by self; every bound tensor is
        // owned by self and not aliased during the call (RunWithBinding writes the outputs in
        // place). This is the allocation-free equivalent of `Session::run_binding`.
        let status = unsafe {
            (api.RunWithBinding)(
                self.session.ptr().cast_mut(),
                std::ptr::null(),
                self.binding.ptr(),
            )
        };
        if !status.0.is_null() {
            // SAFETY: a non-null status carries a NUL-terminated message and must be released once.
            let message = unsafe {
                let m = std::ffi::CStr::from_ptr((api.GetErrorMessage)(status.0))
                    .to_string_lossy()
                    .into_owned();
                (api.ReleaseStatus)(status.0);
                m
            };
            return Err(InferError::Run(format!("model `{}`: {message}", self.name)));
        }
        for s in &mut self.states {
            let next = s.output.extract_tensor().1;
            s.input.extract_tensor_mut().1.copy_from_slice(next);
        }
        Ok(())
    }

    /// The raw output tensor of the last run.
    pub fn raw_output(&self) -> &[f32] {
        self.output.extract_tensor().1
    }

    /// Decodes the last run's output into [`Self::values`].
    pub fn decode(&mut self) -> &[f32] {
        let raw = self.output.extract_tensor().1;
        let (input_w, input_h) = self.input_wh;
        match self.decoder {
            Decoder::Classes(activation) => decode::activate(activation, raw, &mut self.values),
            Decoder::Heatmap {
                k,
                h,
                w,
                activation,
            } => decode::heatmap_keypoints(
                raw,
                k,
                h,
                w,
                input_w,
                input_h,
                self.mapping,
                activation,
                &mut self.values,
            ),
            Decoder::Direct { k, activation } => {
                decode::direct_keypoints(raw, k, self.mapping, activation, &mut self.values)
            }
            Decoder::Vector => self.values.copy_from_slice(raw),
        }
        &self.values
    }

    /// The decoded values of the last run.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Runs the model `runs` times on a blank input, then resets the state.
    pub fn warm_up(&mut self, runs: u32) -> Result<(), InferError> {
        match &mut self.input {
            InputTensor::F32(t) => t.extract_tensor_mut().1.fill(0.0),
            InputTensor::U8(t) => t.extract_tensor_mut().1.fill(0),
        }
        for _ in 0..runs {
            self.execute()?;
        }
        self.reset_state();
        Ok(())
    }

    /// Owned copies of the bound input and state tensors, named, for ort's safe `Session::run`.
    fn input_copies(&self) -> Result<Vec<(String, ort::value::DynValue)>, InferError> {
        fn copy<T: ort::value::PrimitiveTensorElementType + Clone + std::fmt::Debug + 'static>(
            t: &Tensor<T>,
        ) -> Result<ort::value::DynValue, InferError> {
            let (shape, data) = t.extract_tensor();
            Ok(Tensor::from_array((shape.to_vec(), data.to_vec()))
                .map_err(ort_err("copy"))?
                .into_dyn())
        }
        let mut values = vec![(
            self.input_name.clone(),
            match &self.input {
                InputTensor::F32(t) => copy(t)?,
                InputTensor::U8(t) => copy(t)?,
            },
        )];
        for (name, s) in self.state_inputs.iter().zip(&self.states) {
            values.push((name.clone(), copy(&s.input)?));
        }
        Ok(values)
    }

    /// Times `iterations` runs through ort's safe `Session::run` on copies of the current input
    /// and state tensors made once beforehand (the "raw session.run on the same tensor"
    /// baseline of the overhead benchmark), interleaved with `execute` runs; returns the
    /// durations in ns as (execute + decode, session.run).
    pub fn time_against_session_run(
        &mut self,
        iterations: usize,
    ) -> Result<(Vec<u64>, Vec<u64>), InferError> {
        let values = self.input_copies()?;
        let mut bound = Vec::with_capacity(iterations);
        let mut raw = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t0 = crate::clock::monotonic_ns();
            self.execute()?;
            self.decode();
            bound.push(crate::clock::monotonic_ns() - t0);
            let inputs: Vec<(&str, &ort::value::DynValue)> =
                values.iter().map(|(n, v)| (n.as_str(), v)).collect();
            let t0 = crate::clock::monotonic_ns();
            let outputs = self.session.run(inputs).map_err(ort_err("run"))?;
            raw.push(crate::clock::monotonic_ns() - t0);
            drop(outputs);
        }
        self.reset_state();
        Ok((bound, raw))
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
