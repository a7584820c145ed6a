//! The event stream: state changes, triggers, drops, faults and link changes, fanned out to
//! every `GET /v1/events` subscriber through a tokio broadcast channel. The sender never waits:
//! a slow subscriber falls behind on its own and is told how many events it missed.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

/// Events a subscriber may be behind before it misses some.
pub const EVENT_BUFFER: usize = 4096;

/// One event of the stream.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Number of the event since the daemon started (1, 2, ...).
    pub seq: u64,
    /// Wall-clock time, RFC 3339.
    pub time: String,
    /// What happened: `state`, `trigger`, `drops`, `fault`, `link`, `session_started`,
    /// `session_ended`, `config_loaded`, `lagged` (this subscriber missed events).
    pub kind: String,
    /// The details, by kind (docs/service.md).
    #[serde(flatten)]
    pub data: serde_json::Map<String, Value>,
}

/// The sending side, shared by the daemon.
pub struct EventHub {
    sender: broadcast::Sender<Event>,
    seq: AtomicU64,
}

impl Default for EventHub {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(EVENT_BUFFER).0,
            seq: AtomicU64::new(0),
        }
    }
}

impl EventHub {
    /// Sends an event of `kind` with the fields of `data` (an object; anything else is put
    /// under `value`) to every subscriber. Never waits.
    pub fn publish(&self, kind: &str, data: Value) {
        let data = match data {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            other => {
                let mut map = serde_json::Map::new();
                map.insert("value".into(), other);
                map
            }
        };
        let event = Event {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            time: chrono::Local::now().to_rfc3339(),
            kind: kind.to_string(),
            data,
        };
        // No subscriber is not an error.
        let _ = self.sender.send(event);
    }

    /// Sends an engine event: its `kind` field (or, for an externally tagged enum, its only
    /// key) names the kind.
    pub fn publish_engine(&self, event: &impl Serialize) {
        let value = serde_json::to_value(event).unwrap_or(Value::Null);
        match value {
            Value::Object(mut map) => {
                if let Some(Value::String(kind)) = map.remove("kind") {
                    return self.publish(&kind, Value::Object(map));
                }
                if map.len() == 1 {
                    let (kind, inner) = map.into_iter().next().expect("one key");
                    return self.publish(&kind, inner);
                }
                self.publish("engine", Value::Object(map));
            }
            Value::String(kind) => self.publish(&kind, Value::Null),
            other => self.publish("engine", other),
        }
    }

    /// A new subscriber, receiving every event sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Subscribers now.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }
}

/// The SSE response of one subscriber: `first` (the current state), then every event; a
/// subscriber that fell behind gets a `lagged` event with the number it missed.
pub fn sse(
    first: Event,
    receiver: broadcast::Receiver<Event>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rest = BroadcastStream::new(receiver).map(|item| match item {
        Ok(event) => event,
        Err(BroadcastStreamRecvError::Lagged(missed)) => {
            let mut data = serde_json::Map::new();
            data.insert("missed".into(), missed.into());
            Event {
                seq: 0,
                time: chrono::Local::now().to_rfc3339(),
                kind: "lagged".into(),
                data,
            }
        }
    });
    let stream = futures_util::stream::once(async move { first })
        .chain(rest)
        .map(|event| Ok(to_sse(&event)));
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn to_sse(event: &Event) -> SseEvent {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    let sse = SseEvent::default().event(event.kind.as_str()).data(data);
    if event.seq > 0 {
        sse.id(event.seq.to_string())
    } else {
        sse
    }
}
