//! The JSON bodies of the API's requests (unknown fields refused) and their checks.

use std::path::PathBuf;

use serde::Deserialize;

use super::error::ApiError;
use crate::pipeline::engine::SessionRequest;

/// `POST /v1/sessions`: start a session. Every field overrides the config's `[session]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// Subject id (e.g. `m042`).
    #[serde(default)]
    pub subject: Option<String>,
    /// Session description.
    #[serde(default)]
    pub description: Option<String>,
    /// Notes written into the file.
    #[serde(default)]
    pub notes: Option<String>,
    /// End the session after this many seconds.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Experimenters, "Last, First".
    #[serde(default)]
    pub experimenter: Option<Vec<String>>,
}

impl StartRequest {
    /// The engine's request, or the field that is not usable.
    pub fn into_session(self) -> Result<SessionRequest, ApiError> {
        if let Some(d) = self.duration_s
            && !(d > 0.0 && d.is_finite())
        {
            return Err(ApiError::field(
                "duration_s",
                format!("{d} is not a positive number of seconds"),
            ));
        }
        if let Some(s) = &self.subject
            && s.trim().is_empty()
        {
            return Err(ApiError::field("subject", "the subject id is empty"));
        }
        Ok(SessionRequest {
            subject: self.subject,
            description: self.description,
            notes: self.notes,
            experimenter: self.experimenter,
            duration_s: self.duration_s,
            ..SessionRequest::default()
        })
    }
}

/// `POST /v1/sessions/current/stop`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopRequest {
    /// Why, recorded in the file's notes (default "stopped by <origin>").
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/sessions/current/notes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// The note.
    pub text: String,
}

/// `POST /v1/controls`: a stream control.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    /// Stream name (e.g. `Miniscope`).
    pub stream: String,
    /// Control name (`led`, `ewl`, `gain`, `fps`, as the device allows).
    pub control: String,
    /// New value.
    pub value: f64,
}

/// `POST /v1/outputs/{name}/pulse`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulseRequest {
    /// Pulse length in milliseconds.
    pub on_ms: f64,
}

/// `POST /v1/rules/{name}/arm|disarm`: no field.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

/// `POST /v1/config/validate` and `/v1/config/load`: a config file on the daemon's machine or
/// the text of one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRequest {
    /// Path of a config file (absolute, or relative to the daemon's working directory).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The text of a config (relative model paths resolve against the daemon's working
    /// directory).
    #[serde(default)]
    pub text: Option<String>,
}

/// Where a config to check comes from.
pub enum ConfigSource {
    /// A file.
    Path(PathBuf),
    /// Text.
    Text(String),
}

impl ConfigRequest {
    /// The source, or the field that is wrong.
    pub fn source(self) -> Result<ConfigSource, ApiError> {
        match (self.path, self.text) {
            (Some(p), None) => Ok(ConfigSource::Path(p)),
            (None, Some(t)) => Ok(ConfigSource::Text(t)),
            (Some(_), Some(_)) => Err(ApiError::field(
                "text",
                "give either `path` or `text`, not both",
            )),
            (None, None) => Err(ApiError::field(
                "path",
                "missing field `path` (or `text`): the config to use",
            )),
        }
    }
}
