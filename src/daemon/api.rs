//! The HTTP routes (docs/service.md lists each with its request and answer).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, FromRequestParts, Path as UrlPath, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use serde_json::{Value, json};

use super::config_ops;
use super::error::{ApiError, parse_json};
use super::events::{self, Event};
use super::lifecycle::Lifecycle;
use super::requests::{
    ConfigRequest, ControlRequest, EmptyRequest, NoteRequest, PulseRequest, StartRequest,
    StopRequest,
};

/// The header a client names itself with (`ctl` sends `ctl`); default `api`.
pub const ORIGIN_HEADER: &str = "x-behavd-origin";

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub enum Peer {
    /// A Unix-socket client, by its user id (SO_PEERCRED).
    Unix {
        /// User id, when the kernel told it.
        uid: Option<u32>,
    },
    /// A TCP client.
    Tcp(SocketAddr),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Unix { uid: Some(uid) } => write!(f, "uid {uid}"),
            Peer::Unix { uid: None } => write!(f, "unix socket"),
            Peer::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

impl Connected<IncomingStream<'_, tokio::net::UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        Peer::Unix {
            uid: stream.io().peer_cred().ok().map(|c| c.uid()),
        }
    }
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer::Tcp(*stream.remote_addr())
    }
}

/// Where a change came from: the client's `X-Behavd-Origin` (or `api`) and its peer, e.g.
/// `ctl (uid 1000)` or `api (10.0.0.5:50122)`.
pub struct Origin(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let name = parts
            .headers
            .get(ORIGIN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(64).collect::<String>())
            .unwrap_or_else(|| "api".into());
        Ok(Origin(match parts.extensions.get::<ConnectInfo<Peer>>() {
            Some(ConnectInfo(peer)) => format!("{name} ({peer})"),
            None => name,
        }))
    }
}

type App = State<Arc<Lifecycle>>;
type ApiResult = Result<Response, ApiError>;

/// The API's routes.
pub fn router(lifecycle: Arc<Lifecycle>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/live", post(live))
        .route("/v1/idle", post(idle))
        .route("/v1/sessions", get(sessions).post(start))
        .route("/v1/sessions/current/stop", post(stop))
        .route("/v1/sessions/current/notes", post(note))
        .route("/v1/controls", post(control))
        .route("/v1/rules/{name}/arm", post(arm))
        .route("/v1/rules/{name}/disarm", post(disarm))
        .route("/v1/outputs/{name}/pulse", post(pulse))
        .route("/v1/events", get(event_stream))
        .route("/v1/config", get(config_get))
        .route("/v1/config/validate", post(config_validate))
        .route("/v1/config/load", post(config_load))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(lifecycle)
}

/// Requires `Authorization: Bearer <token>` on every request.
pub async fn require_token(token: Arc<String>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => {
            next.run(request).await
        }
        Some(_) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "the bearer token is wrong").into_response()
        }
        None => {
            let mut response = ApiError {
                status: StatusCode::UNAUTHORIZED,
                error: "this address needs `Authorization: Bearer <token>` (ctl --token-file)"
                    .into(),
                field: Some("authorization".into()),
            }
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("header"));
            response
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn ok(value: Value) -> ApiResult {
    Ok(axum::Json(value).into_response())
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route {} {} (docs/service.md lists the routes)",
            request.method(),
            request.uri().path()
        ),
    )
}

/// `GET /v1/status`.
pub fn status_json(l: &Lifecycle) -> Value {
    let view = l.view();
    json!({
        "state": view.state,
        "since": view.since,
        "status": super::lifecycle::status_line(&view, &l.config().origin),
        "uptime_s": l.started.elapsed().as_secs_f64(),
        "config": l.config().origin,
        "output_dir": l.output_dir,
        "disk_free_bytes": l.disk_free(),
        "session": view.session,
        "engine": *l.snapshot(),
        "last_session": view.last_session,
        "last_error": view.last_error,
        "event_subscribers": l.events.subscribers(),
        "version": env!("CARGO_PKG_VERSION"),
    })
}

async fn status(State(l): App) -> ApiResult {
    ok(status_json(&l))
}

async fn await_reply<T>(
    rx: tokio::sync::oneshot::Receiver<Result<T, ApiError>>,
) -> Result<T, ApiError> {
    rx.await
        .map_err(|_| ApiError::internal("the engine thread stopped before answering"))?
}

async fn live(State(l): App, body: Bytes) -> ApiResult {
    parse_json::<EmptyRequest>(&body)?;
    await_reply(l.live()?).await?;
    ok(status_json(&l))
}

async fn idle(State(l): App, body: Bytes) -> ApiResult {
    parse_json::<EmptyRequest>(&body)?;
    await_reply(l.idle()?).await?;
    ok(status_json(&l))
}

async fn start(State(l): App, Origin(origin): Origin, body: Bytes) -> ApiResult {
    let request = parse_json::<StartRequest>(&body)?.into_session()?;
    let started = await_reply(l.begin(request, origin)?).await?;
    Ok((StatusCode::CREATED, axum::Json(started)).into_response())
}

async fn stop(State(l): App, Origin(origin): Origin, body: Bytes) -> ApiResult {
    let request = parse_json::<StopRequest>(&body)?;
    let reason = request
        .reason
        .unwrap_or_else(|| format!("stopped by {origin}"));
    let summary = await_reply(l.end(reason)?).await?;
    ok(summary)
}

/// Runs a live-control call off the async runtime (it may wait for the capture thread).
async fn control_call<F>(l: &Lifecycle, call: F) -> ApiResult
where
    F: FnOnce(crate::pipeline::controls::LiveControls) -> Result<Value, ApiError> + Send + 'static,
{
    let controls = l.controls()?;
    let value = tokio::task::spawn_blocking(move || call(controls))
        .await
        .map_err(ApiError::internal)??;
    ok(value)
}

/// The answer to a refused or failed live control: 400 naming the field for a bad value, 404
/// for an unknown rule or output (the route names it), 409 where the state or a limit refuses
/// it, 502/503/504 where the device or the data plane could not take it.
fn control_error(e: crate::pipeline::controls::ControlError) -> ApiError {
    use crate::pipeline::controls::ControlError as E;
    let message = e.to_string();
    match e {
        E::UnknownStream { .. } | E::NoLiveControls { .. } => ApiError::field("stream", message),
        E::UnknownControl { .. } => ApiError::field("control", message),
        E::NotAllowed { .. } => ApiError::field("value", message),
        E::Invalid { field, .. } => ApiError::field(field, message),
        E::UnknownRule { .. } | E::UnknownOutput { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, message)
        }
        E::NoLink { .. }
        | E::PulseRefused { .. }
        | E::PulseNotSent { .. }
        | E::NotRecording
        | E::Closed => ApiError::conflict(message),
        E::Failed { .. } => ApiError::new(StatusCode::BAD_GATEWAY, message),
        E::Timeout { .. } => ApiError::new(StatusCode::GATEWAY_TIMEOUT, message),
        E::InboxFull { .. } | E::LogFull(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }
}

async fn note(State(l): App, Origin(origin): Origin, body: Bytes) -> ApiResult {
    let request = parse_json::<NoteRequest>(&body)?;
    if request.text.trim().is_empty() {
        return Err(ApiError::field("text", "the note is empty"));
    }
    if l.view().session.is_none() {
        return Err(ApiError::conflict("no session is recording"));
    }
    control_call(&l, move |c| {
        c.note(&request.text, &origin)
            .map(|a| json!(a))
            .map_err(control_error)
    })
    .await
}

async fn control(State(l): App, Origin(origin): Origin, body: Bytes) -> ApiResult {
    let r = parse_json::<ControlRequest>(&body)?;
    if !r.value.is_finite() {
        return Err(ApiError::field("value", "not a finite number"));
    }
    control_call(&l, move |c| {
        c.set(&r.stream, &r.control, r.value, &origin)
            .map(|a| json!(a))
            .map_err(control_error)
    })
    .await
}

async fn arm_rule(l: Arc<Lifecycle>, name: String, armed: bool, origin: String) -> ApiResult {
    control_call(&l, move |c| {
        c.arm(&name, armed, &origin)
            .map(|a| json!(a))
            .map_err(control_error)
    })
    .await
}

async fn arm(
    State(l): App,
    UrlPath(name): UrlPath<String>,
    Origin(o): Origin,
    body: Bytes,
) -> ApiResult {
    parse_json::<EmptyRequest>(&body)?;
    arm_rule(l, name, true, o).await
}

async fn disarm(
    State(l): App,
    UrlPath(name): UrlPath<String>,
    Origin(o): Origin,
    body: Bytes,
) -> ApiResult {
    parse_json::<EmptyRequest>(&body)?;
    arm_rule(l, name, false, o).await
}

async fn pulse(
    State(l): App,
    UrlPath(name): UrlPath<String>,
    Origin(origin): Origin,
    body: Bytes,
) -> ApiResult {
    let r = parse_json::<PulseRequest>(&body)?;
    if !(r.on_ms > 0.0 && r.on_ms.is_finite()) {
        return Err(ApiError::field(
            "on_ms",
            format!("{} is not a positive pulse length in ms", r.on_ms),
        ));
    }
    control_call(&l, move |c| {
        c.pulse(&name, r.on_ms, &origin)
            .map(|a| json!(a))
            .map_err(control_error)
    })
    .await
}

async fn event_stream(State(l): App) -> Response {
    // Subscribe before reading the state, so no change falls between the two.
    let receiver = l.events.subscribe();
    let view = l.view();
    let mut data = serde_json::Map::new();
    data.insert("state".into(), json!(view.state));
    data.insert("session".into(), json!(view.session));
    data.insert("current".into(), true.into());
    let first = Event {
        seq: 0,
        time: chrono::Local::now().to_rfc3339(),
        kind: "state".into(),
        data,
    };
    events::sse(first, receiver).into_response()
}

async fn sessions(State(l): App) -> ApiResult {
    let dir = l.output_dir.clone();
    let current = l.view().session.map(|s| s.path);
    let list = tokio::task::spawn_blocking(move || list_sessions(&dir, current.as_deref()))
        .await
        .map_err(ApiError::internal)??;
    ok(json!({"output_dir": l.output_dir, "sessions": list}))
}

/// The session files of `dir` with their summaries (the file being recorded is not opened).
fn list_sessions(dir: &Path, current: Option<&Path>) -> Result<Vec<Value>, ApiError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ApiError::internal(format!(
                "cannot list {}: {e}",
                dir.display()
            )));
        }
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "nwb"))
        .collect();
    paths.sort();
    Ok(paths
        .iter()
        .map(|path| {
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            let bytes = std::fs::metadata(path).map(|m| m.len()).ok();
            if current.is_some_and(|c| c == path) {
                return json!({"name": name, "path": path, "file_bytes": bytes, "recording": true});
            }
            match crate::record::inspect::inspect(path) {
                Ok(r) => json!({
                    "name": name,
                    "path": path,
                    "file_bytes": r.file_bytes,
                    "recording": false,
                    "open_for_write": r.open_for_write,
                    "start_time": r.metadata.get("session_start_time"),
                    "subject": r.metadata.get("subject_id"),
                    "description": r.metadata.get("session_description"),
                    "streams": r.streams.iter().map(|s| json!({
                        "name": s.name, "frames": s.frames, "fps": s.fps,
                        "duration_s": s.first_s.zip(s.last_s).map(|(a, b)| b - a),
                        "dropped": s.dropped,
                    })).collect::<Vec<_>>(),
                    "gaps": r.gaps.len(),
                }),
                Err(e) => {
                    json!({"name": name, "path": path, "file_bytes": bytes, "error": e.to_string()})
                }
            }
        })
        .collect())
}

async fn config_get(State(l): App) -> ApiResult {
    ok(config_ops::describe(&l.config()))
}

async fn check_request(body: Bytes) -> Result<config_ops::Checked, ApiError> {
    let source = parse_json::<ConfigRequest>(&body)?.source()?;
    tokio::task::spawn_blocking(move || config_ops::check(source))
        .await
        .map_err(ApiError::internal)
}

async fn config_validate(body: Bytes) -> ApiResult {
    let checked = check_request(body).await?;
    ok(checked.report())
}

async fn config_load(State(l): App, body: Bytes) -> ApiResult {
    let checked = check_request(body).await?;
    let report = checked.report();
    let Some(loaded) = checked.loaded else {
        let (error, key) = checked.first_error().unwrap_or_default();
        let mut response = (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({
                "error": format!("the config was not loaded (the old one stays): {error}"),
                "field": key,
                "report": report,
            })),
        )
            .into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            "application/json".parse().expect("header"),
        );
        return Ok(response);
    };
    await_reply(l.load(loaded)?).await?;
    ok(json!({"loaded": true, "report": report, "config": l.config().origin}))
}

async fn metrics(State(l): App) -> Response {
    let view = l.view();
    let config = l.config();
    let extra = super::metrics::MetricsExtra {
        rig: config.config.session.rig.clone(),
        state: match view.state {
            super::lifecycle::Phase::Recording | super::lifecycle::Phase::Stopping => "recording",
            super::lifecycle::Phase::Live => "live",
            // Opening devices (or reopening them after a session) counts as not yet live.
            super::lifecycle::Phase::Idle | super::lifecycle::Phase::Starting => "idle",
        }
        .into(),
        uptime_s: l.started.elapsed().as_secs_f64(),
        disk_free_bytes: l.disk_free(),
        session_elapsed_s: l.snapshot()["session"]["elapsed_s"].as_f64(),
    };
    // Reading the counters is a few hundred atomic loads: no need to leave the runtime.
    let snapshot = l.telemetry().map(|t| t.snapshot()).unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        super::metrics::render(&snapshot, &extra),
    )
        .into_response()
}
