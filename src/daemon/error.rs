//! The API's error answer: a status code and `{"error": "...", "field": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An API request that failed: the status and the JSON body naming what is wrong.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{error}")]
pub struct ApiError {
    /// HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
    /// What is wrong, in words.
    pub error: String,
    /// The request field it is about (a dotted path), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            field: None,
        }
    }

    /// 400: a field of the request is not usable.
    pub fn field(field: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: error.into(),
            field: Some(field.into()),
        }
    }

    /// 409: not possible in the daemon's current state.
    pub fn conflict(error: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, error)
    }

    /// 500: the daemon failed.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

/// Parses a JSON request body into `T`, naming the field of any error. An empty body reads
/// as `{}` (every field of the request is then at its default, or missing).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the request body is not valid JSON: {message}"),
            );
        }
        ApiError::field(field_of(&path, &message), message)
    })?;
    de.end().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    Ok(value)
}

/// The field an error is about: the path serde reached, plus the field an "unknown field" or
/// "missing field" message names.
fn field_of(path: &str, message: &str) -> String {
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| {
            let rest = message.split(prefix).nth(1)?;
            rest.split('`').next().map(str::to_string)
        });
    let base = if path == "." { "" } else { path };
    match named {
        Some(name) if base.is_empty() => name,
        Some(name) if !base.ends_with(&name) => format!("{base}.{name}"),
        _ if base.is_empty() => "body".to_string(),
        _ => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        text: String,
        #[serde(default)]
        n: Option<u32>,
    }

    #[test]
    fn unknown_field_is_named() {
        let e = parse_json::<Req>(br#"{"text": "a", "colour": 1}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.field.as_deref(), Some("colour"), "{e:?}");
        assert!(e.error.contains("unknown field"), "{e:?}");
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let e = parse_json::<Req>(b"{}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("text"), "{e:?}");
        let e = parse_json::<Req>(br#"{"text": "a", "n": "x"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("n"), "{e:?}");
    }

    #[test]
    fn bad_json_says_where() {
        let e = parse_json::<Req>(br#"{"text": "a",,}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.error.contains("not valid JSON") && e.error.contains("column"),
            "{e:?}"
        );
        assert!(parse_json::<Req>(br#"{"text": "a"} trailing"#).is_err());
    }
}
