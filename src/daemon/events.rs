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

    /// Sends an engine event: its `kind` or `event` tag field (or, for an externally tagged
    /// enum, its only key) names the kind.
    pub fn publish_engine(&self, event: &impl Serialize) {
        let value = serde_json::to_value(event).unwrap_or(Value::Null);
        match value {
            Value::Object(mut map) => {
                for tag in ["kind", "event"] {
                    if let Some(Value::String(kind)) = map.remove(tag) {
                        return self.publish(&kind, Value::Object(map));
                    }
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
    let stream = futures_util::stream::once(async move { first })
        .chain(follow(receiver))
        .map(|event| Ok(to_sse(&event)));
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Every event a subscriber receives, a `lagged` event standing for those it missed.
pub fn follow(receiver: broadcast::Receiver<Event>) -> impl Stream<Item = Event> {
    BroadcastStream::new(receiver).map(|item| match item {
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
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(tag = "event", rename_all = "snake_case")]
    enum Tagged {
        LinkUp { output: String },
    }

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum External {
        Fault { what: String },
    }

    #[test]
    fn engine_events_are_named_by_their_tag_and_numbered() {
        let hub = EventHub::default();
        let mut rx = hub.subscribe();
        hub.publish_engine(&Tagged::LinkUp {
            output: "stim".into(),
        });
        hub.publish_engine(&External::Fault { what: "x".into() });
        let a = rx.try_recv().unwrap();
        assert_eq!((a.kind.as_str(), a.seq), ("link_up", 1));
        assert_eq!(a.data["output"], "stim");
        assert!(!a.data.contains_key("event"));
        let b = rx.try_recv().unwrap();
        assert_eq!((b.kind.as_str(), b.seq), ("fault", 2));
        assert_eq!(b.data["what"], "x");
    }

    #[test]
    fn a_subscriber_that_falls_behind_is_told_how_many_it_missed() {
        let hub = EventHub::default();
        let slow = hub.subscribe();
        let mut fast = hub.subscribe();
        for i in 0..EVENT_BUFFER + 10 {
            hub.publish("trigger", serde_json::json!({"n": i}));
            // The fast one keeps up; publishing never waits on the slow one.
            assert_eq!(fast.try_recv().unwrap().data["n"], i);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let kinds: Vec<(String, Option<u64>)> = runtime.block_on(
            follow(slow)
                .take(2)
                .map(|e| {
                    let n = e.data.get("n").or(e.data.get("missed"));
                    (e.kind, n.and_then(Value::as_u64))
                })
                .collect(),
        );
        assert_eq!(kinds[0], ("lagged".to_string(), Some(10)));
        assert_eq!(kinds[1], ("trigger".to_string(), Some(10)));
    }
}
