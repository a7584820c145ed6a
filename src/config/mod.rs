//! The rig config: a TOML file describing the session metadata, the sources and the recording.
//!
//! Every error names the file, line, column and key, and an unknown key comes with the nearest
//! valid one (`did you mean ...?`). See `docs/config.md` for every key.

pub mod daemon;
mod error;
mod locate;
pub mod memory;
pub mod miniscope;
pub mod model;
pub mod names;
pub mod output;
pub mod ranges;
pub mod realtime;
mod reparse;
pub mod rule;
pub mod signal;
pub mod source;
pub mod stim_check;
mod text;
pub mod v4l2;
mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::ConfigError;
pub use model::ModelConfig;
pub use output::OutputConfig;
pub use rule::RuleConfig;
pub use signal::SignalConfig;
pub use source::SourceConfig;
pub use validate::ConfigWarning;

/// The demo rig shipped inside the binary (`config/demo.toml`).
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");

/// A whole rig config as read from TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RigConfig {
    /// Who and what the session is about (goes to NWB `general/`).
    #[serde(default)]
    pub session: SessionConfig,
    /// The frame sources.
    #[serde(default)]
    pub source: Vec<SourceConfig>,
    /// How and where sessions are recorded.
    #[serde(default)]
    pub recording: RecordingConfig,
    /// ONNX Runtime settings shared by all models.
    #[serde(default)]
    pub inference: InferenceConfig,
    /// Models run on live frames.
    #[serde(default)]
    pub model: Vec<ModelConfig>,
    /// Live ROI signals (ΔF/F) on Miniscope streams.
    #[serde(default)]
    pub signal: Vec<SignalConfig>,
    /// Closed-loop rules.
    #[serde(default)]
    pub rule: Vec<RuleConfig>,
    /// Stimulators the rules' triggers go to. Every rule's `trigger.output` must name one.
    #[serde(default)]
    pub output: Vec<OutputConfig>,
    /// `behavd serve`: its control API, how it keeps the rig between sessions and watches
    /// its threads.
    #[serde(default)]
    pub daemon: daemon::DaemonConfig,
    /// Real-time scheduling of the data-plane threads.
    #[serde(default)]
    pub realtime: realtime::RealtimeConfig,
}

/// `[inference]`: where ONNX Runtime comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferenceConfig {
    /// Path to `libonnxruntime.so` (tried first; then `ORT_DYLIB_PATH`, next to the executable,
    /// the project-local `.behavd/onnxruntime/lib`, and Python's `onnxruntime` package).
    #[serde(default)]
    pub onnxruntime: Option<String>,
}

/// `[session]`: metadata written into every session file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Session name; the file is `<output_dir>/<name>.nwb`. Default `<subject>_<YYYYmmdd-HHMMSS>`.
    #[serde(default)]
    pub name: Option<String>,
    /// What the session is (NWB `session_description`).
    #[serde(default = "default_description")]
    pub description: String,
    /// Experimenters as "Last, First".
    #[serde(default)]
    pub experimenter: Vec<String>,
    /// Lab name.
    #[serde(default)]
    pub lab: String,
    /// Institution.
    #[serde(default)]
    pub institution: String,
    /// Rig name (goes to the `AcquisitionRig` device).
    #[serde(default = "default_rig")]
    pub rig: String,
    /// Free keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The animal.
    #[serde(default)]
    pub subject: SubjectConfig,
    /// Imaging plane of the Miniscope, if one is recorded.
    #[serde(default)]
    pub imaging: ImagingConfig,
}

/// `[session.subject]`: the animal (NWB `Subject`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectConfig {
    /// Subject identifier, e.g. `m042`.
    #[serde(default = "default_subject_id")]
    pub id: String,
    /// Latin species name.
    #[serde(default = "default_species")]
    pub species: String,
    /// `M`, `F`, `U` (unknown) or `O` (other).
    #[serde(default = "default_sex")]
    pub sex: String,
    /// ISO 8601 duration, e.g. `P90D`.
    #[serde(default = "default_age")]
    pub age: String,
    /// Strain or genotype.
    #[serde(default)]
    pub strain: String,
    /// Free description.
    #[serde(default)]
    pub description: String,
}

/// `[session.imaging]`: the Miniscope's imaging plane (NWB `ImagingPlane`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagingConfig {
    /// Brain area, e.g. `CA1`.
    #[serde(default = "default_location")]
    pub location: String,
    /// Calcium indicator, e.g. `GCaMP6f`.
    #[serde(default = "default_indicator")]
    pub indicator: String,
    /// Excitation wavelength in nm.
    #[serde(default = "default_excitation")]
    pub excitation_nm: f32,
    /// Emission wavelength in nm.
    #[serde(default = "default_emission")]
    pub emission_nm: f32,
    /// Free description of the preparation.
    #[serde(default = "default_plane_description")]
    pub description: String,
}

/// Video compression of a stream in the session file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "codec", rename_all = "lowercase", deny_unknown_fields)]
pub enum Compression {
    /// Uncompressed (fastest; large files).
    None,
    /// Deflate, readable by every HDF5 reader. Level 1–9 (1 is the right choice for video).
    Gzip {
        /// Compression level 1–9.
        #[serde(default = "default_gzip_level")]
        level: u8,
    },
}

/// `[recording]`: where and how sessions are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    /// Directory for session files. Default `./sessions`.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// Default compression of video streams. Default gzip level 1.
    #[serde(default = "default_compression")]
    pub compression: Compression,
    /// Threads that compress video chunks off the writer thread (0 = compress on the writer
    /// through HDF5's filter pipeline). Default 2.
    #[serde(default = "default_compress_threads")]
    pub compress_threads: usize,
    /// Seconds between flushes of the file (the most a crash can lose). Default 1.0.
    #[serde(default = "default_flush_interval")]
    pub flush_interval_s: f64,
    /// Seconds of frames the recorder ring of each stream holds. Default 4.0.
    #[serde(default = "default_ring_seconds")]
    pub ring_seconds: f64,
    /// A session does not start while the output directory's filesystem has less free space
    /// than this, MB (10^6 bytes). Default 1024; 0 (with `stop_free_mb = 0`) turns the guard off.
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
    /// A running session is stopped cleanly (file finalized, the reason in its notes) once the
    /// free space falls below this, MB. Must be below `min_free_mb`. Default 256.
    #[serde(default = "default_stop_free_mb")]
    pub stop_free_mb: u64,
}

fn default_min_free_mb() -> u64 {
    1024
}

fn default_stop_free_mb() -> u64 {
    256
}

impl Default for SessionConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}
impl Default for SubjectConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}
impl Default for ImagingConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}
impl Default for RecordingConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

/// A config together with where it came from and its exact text (stored in every session file).
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parsed and validated config.
    pub config: RigConfig,
    /// The exact text it was parsed from.
    pub text: String,
    /// The file it came from (`<built-in demo>` for the embedded demo).
    pub origin: String,
    /// Directory that relative paths in the config (model files) are resolved against: the
    /// config file's directory; the project directory for the built-in demo.
    pub base_dir: PathBuf,
}

/// Everything found in a config: the problems (errors in file order), the warnings, and the
/// config itself when there is no error.
#[derive(Debug)]
pub struct Review {
    /// The config, when it has no error.
    pub loaded: Option<LoadedConfig>,
    /// Every error found, each located (file, line, column, key where there is one).
    pub errors: Vec<ConfigError>,
    /// Things to look at that do not stop the config from being used.
    pub warnings: Vec<ConfigWarning>,
}

impl Review {
    fn failed(error: ConfigError) -> Self {
        Self {
            loaded: None,
            errors: vec![error],
            warnings: Vec::new(),
        }
    }

    /// The config, or its first error.
    pub fn into_result(self) -> Result<LoadedConfig, ConfigError> {
        match (self.loaded, self.errors.into_iter().next()) {
            (Some(loaded), None) => Ok(loaded),
            (_, Some(e)) => Err(e),
            (None, None) => unreachable!("a review without a config has an error"),
        }
    }
}

impl LoadedConfig {
    /// Reads, parses and validates a config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Self::review_file(path).into_result()
    }

    /// Reads, parses and validates a config file, collecting every problem.
    pub fn review_file(path: &Path) -> Review {
        let origin = path.display().to_string();
        let bytes = match read_config_file(path) {
            Ok(b) => b,
            Err(reason) => {
                return Review::failed(ConfigError::Io {
                    file: origin,
                    reason,
                });
            }
        };
        let mut review = Self::review_bytes(bytes, &origin);
        if let Some(loaded) = &mut review.loaded {
            loaded.base_dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
        }
        review
    }

    /// Decodes (UTF-8), parses and validates config bytes, collecting every problem.
    pub fn review_bytes(bytes: Vec<u8>, origin: &str) -> Review {
        match text::decode(bytes, origin) {
            Ok(text) => Self::review_str(&text, origin),
            Err(e) => Review::failed(e),
        }
    }

    /// The demo rig embedded in the binary.
    pub fn demo() -> Self {
        let mut loaded = Self::from_str(DEMO_CONFIG, "<built-in demo config/demo.toml>")
            .expect("the embedded demo config is valid");
        loaded.base_dir = demo_base_dir();
        loaded
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn from_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Self::review_str(text, origin).into_result()
    }

    /// Parses and validates config text, collecting every problem.
    pub fn review_str(text: &str, origin: &str) -> Review {
        if let Err(e) = text::precheck(text, origin) {
            return Review::failed(e);
        }
        let deserializer = toml::Deserializer::new(text);
        let config: RigConfig = match serde_path_to_error::deserialize(deserializer) {
            Ok(c) => c,
            Err(e) => return Review::failed(error::from_toml(e, text, origin)),
        };
        let (errors, warnings) = config.review(text, origin);
        Review {
            loaded: errors.is_empty().then(|| Self {
                config,
                text: text.to_string(),
                origin: origin.to_string(),
                base_dir: PathBuf::from("."),
            }),
            errors,
            warnings,
        }
    }
}

/// The bytes of a config file: a regular file of at most [`text::MAX_CONFIG_BYTES`] (a FIFO,
/// directory or device is refused before it is opened, so reading never blocks).
fn read_config_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    // A FIFO, device or directory is refused without blocking on it (`fsutil`).
    let file = crate::fsutil::open_regular_file(path, "config file")
        .map_err(|e| format!("{}; give the path of a TOML file", e.problem))?;
    let limit = text::MAX_CONFIG_BYTES as u64;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len > limit {
        return Err(format!("it is {len} bytes; a config is at most {limit}"));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// The directory the built-in demo's relative paths (`../models/...`) are resolved against:
/// `config/` of the current directory when it holds the models, else `config/` of the project
/// this binary was built from.
fn demo_base_dir() -> PathBuf {
    let cwd = PathBuf::from("config");
    if cwd.join("../models/behavior_cnn.onnx").is_file() {
        cwd
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
    }
}

impl LoadedConfig {
    /// A warning about `key`, located in the text.
    pub fn warning(&self, key: &str, message: String) -> ConfigWarning {
        let (line, column) = locate::position_of_key(&self.text, key);
        ConfigWarning {
            file: self.origin.clone(),
            line,
            column,
            key: key.to_string(),
            message,
        }
    }

    /// An error about `key` (a dotted path such as `model[1].input.resize`) located in the text.
    pub fn invalid(&self, key: &str, reason: String) -> ConfigError {
        let (line, column) = locate::position_of_key(&self.text, key);
        ConfigError::Invalid {
            file: self.origin.clone(),
            line,
            column,
            key: key.to_string(),
            reason,
        }
    }
}

fn default_description() -> String {
    "behavd closed-loop session".into()
}
fn default_rig() -> String {
    "rig-1".into()
}
fn default_subject_id() -> String {
    "unknown".into()
}
fn default_species() -> String {
    "Mus musculus".into()
}
fn default_sex() -> String {
    "U".into()
}
fn default_age() -> String {
    "P90D".into()
}
fn default_location() -> String {
    "unknown".into()
}
fn default_indicator() -> String {
    "GCaMP6f".into()
}
fn default_excitation() -> f32 {
    470.0
}
fn default_emission() -> f32 {
    525.0
}
fn default_plane_description() -> String {
    "Miniscope field of view".into()
}
fn default_gzip_level() -> u8 {
    1
}
fn default_output_dir() -> PathBuf {
    PathBuf::from("sessions")
}
fn default_compression() -> Compression {
    Compression::Gzip { level: 1 }
}
fn default_compress_threads() -> usize {
    2
}
fn default_flush_interval() -> f64 {
    1.0
}
fn default_ring_seconds() -> f64 {
    4.0
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_limits;
