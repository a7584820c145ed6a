//! The API client `behavd ctl` (and the tests) use: hyper's HTTP/1 client over the Unix socket
//! or TCP, with the bearer token and the `X-Behavd-Origin` header.

use std::path::PathBuf;

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Where the daemon is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Its Unix socket.
    Unix(PathBuf),
    /// `host:port` over TCP.
    Tcp(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "http://{a}"),
        }
    }
}

impl Endpoint {
    /// An `http://host:port` URL (a path, if any, is ignored).
    pub fn from_url(url: &str) -> Result<Endpoint, ClientError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| ClientError::Usage(format!("--url {url}: {e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(ClientError::Usage(format!(
                    "--url {url}: scheme {other} is not supported (use http://HOST:PORT)"
                )));
            }
            None => {
                return Err(ClientError::Usage(format!(
                    "--url {url}: give http://HOST:PORT"
                )));
            }
        }
        let authority = uri
            .authority()
            .ok_or_else(|| ClientError::Usage(format!("--url {url}: no host")))?;
        let port = authority.port_u16().unwrap_or(80);
        Ok(Endpoint::Tcp(format!("{}:{port}", authority.host())))
    }
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the endpoint.
    #[error("cannot reach the daemon at {endpoint}: {why}")]
    Unreachable {
        /// Where.
        endpoint: String,
        /// Why.
        why: String,
    },
    /// The connection broke or the answer was not HTTP.
    #[error("the daemon at {endpoint} did not answer properly: {why}")]
    Protocol {
        /// Where.
        endpoint: String,
        /// Why.
        why: String,
    },
    /// The arguments do not make a request.
    #[error("{0}")]
    Usage(String),
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (`null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct StreamEvent {
    /// Its `event:` name.
    pub kind: String,
    /// Its data, parsed.
    pub data: Value,
}

/// A client of one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    /// Where the daemon is.
    pub endpoint: Endpoint,
    /// Bearer token.
    pub token: Option<String>,
    /// Sent as `X-Behavd-Origin`.
    pub origin: String,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

impl Client {
    /// A client of the daemon at `endpoint`, naming itself `origin`.
    pub fn new(endpoint: Endpoint, token: Option<String>, origin: &str) -> Self {
        Self {
            endpoint,
            token,
            origin: origin.to_string(),
        }
    }

    fn protocol(&self, e: impl std::fmt::Display) -> ClientError {
        ClientError::Protocol {
            endpoint: self.endpoint.to_string(),
            why: e.to_string(),
        }
    }

    async fn connect(&self) -> Result<Sender, ClientError> {
        let unreachable = |e: std::io::Error| ClientError::Unreachable {
            endpoint: self.endpoint.to_string(),
            why: e.to_string(),
        };
        macro_rules! handshake {
            ($stream:expr) => {{
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new($stream))
                        .await
                        .map_err(|e| self.protocol(e))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                sender
            }};
        }
        Ok(match &self.endpoint {
            Endpoint::Unix(path) => {
                handshake!(
                    tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(unreachable)?
                )
            }
            Endpoint::Tcp(address) => {
                let stream = tokio::net::TcpStream::connect(address.as_str())
                    .await
                    .map_err(unreachable)?;
                let _ = stream.set_nodelay(true);
                handshake!(stream)
            }
        })
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let host = match &self.endpoint {
            Endpoint::Unix(_) => "localhost".to_string(),
            Endpoint::Tcp(a) => a.clone(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, host)
            .header("x-behavd-origin", &self.origin);
        if !body.is_empty() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &self.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request
            .body(Full::new(body))
            .map_err(|e| ClientError::Usage(e.to_string()))
    }

    /// Sends one request with a raw body (empty: none) and reads the whole answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<Answer, ClientError> {
        let mut sender = self.connect().await?;
        let request = self.build(method, path, body.into())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.protocol(e))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.protocol(e))?
            .to_bytes();
        Ok(Answer { status, body })
    }

    /// Sends one request with a JSON body (None: no body).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ClientError> {
        let bytes = body
            .map(|b| Bytes::from(serde_json::to_vec(b).expect("JSON")))
            .unwrap_or_default();
        self.send(method, path, bytes).await
    }

    /// [`send`](Self::send) from synchronous code (a runtime of its own for the call).
    pub fn send_blocking(
        &self,
        method: Method,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<Answer, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot start a runtime: {e}")))?;
        runtime.block_on(self.send(method, path, body.into()))
    }

    /// The event stream (`GET /v1/events`), or the answer that refused it.
    pub async fn events(
        &self,
    ) -> Result<
        Result<impl Stream<Item = Result<StreamEvent, ClientError>> + use<>, Answer>,
        ClientError,
    > {
        use eventsource_stream::Eventsource;
        let mut sender = self.connect().await?;
        let request = self.build(Method::GET, "/v1/events", Bytes::new())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.protocol(e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| self.protocol(e))?
                .to_bytes();
            return Ok(Err(Answer { status, body }));
        }
        let endpoint = self.endpoint.to_string();
        let stream = response
            .into_body()
            .into_data_stream()
            .eventsource()
            .map(move |item| {
                // The sender lives as long as the stream (the connection stays up).
                let _keep = &sender;
                match item {
                    Ok(e) => Ok(StreamEvent {
                        kind: e.event,
                        data: serde_json::from_str(&e.data).unwrap_or(Value::String(e.data)),
                    }),
                    Err(e) => Err(ClientError::Protocol {
                        endpoint: endpoint.clone(),
                        why: e.to_string(),
                    }),
                }
            });
        Ok(Ok(stream))
    }
}
