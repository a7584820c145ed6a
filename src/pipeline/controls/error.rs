//! Why a live control change was not made: every variant names the field, the value and what
//! is allowed.

/// Why a live control change was refused or failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    /// No stream of that name.
    #[error("no stream {stream:?} (streams: {known})")]
    UnknownStream {
        /// The name asked for.
        stream: String,
        /// The streams, comma-separated.
        known: String,
    },
    /// The stream's source has no live controls (a behavior camera, a synthetic stream).
    #[error("stream {stream:?} has no live controls")]
    NoLiveControls {
        /// The stream.
        stream: String,
    },
    /// The stream has no control of that name.
    #[error("stream {stream:?} has no control {control:?} (its controls: {known})")]
    UnknownControl {
        /// The stream.
        stream: String,
        /// The name asked for.
        control: String,
        /// Its controls, comma-separated.
        known: String,
    },
    /// A value the control does not allow (out of range, not one of its choices, not finite).
    #[error("stream {stream:?}: {control} = {value} is not allowed (allowed: {allowed})")]
    NotAllowed {
        /// The stream.
        stream: String,
        /// The control.
        control: String,
        /// The value asked for.
        value: f64,
        /// The range or the choices.
        allowed: String,
    },
    /// The device did not take the change (the capture thread's reason).
    #[error("{target}: {name} = {value} failed: {why}")]
    Failed {
        /// The stream or output.
        target: String,
        /// The control.
        name: String,
        /// The value asked for.
        value: f64,
        /// Why.
        why: String,
    },
    /// The data-plane thread did not answer in time (a stalled device).
    #[error("{target}: {name} was not answered within {waited_ms} ms ({what})")]
    Timeout {
        /// The stream or output.
        target: String,
        /// The control or `pulse`.
        name: String,
        /// How long the call waited.
        waited_ms: u64,
        /// Whether it may still take effect.
        what: &'static str,
    },
    /// The thread's inbox is full (changes asked for faster than it applies them).
    #[error("{target}: too many changes waiting ({slots} queued); try again")]
    InboxFull {
        /// The stream or output.
        target: String,
        /// The inbox's size.
        slots: usize,
    },
    /// The ring of control changes to the recorder is full: the change was not made, so that
    /// nothing made while recording is missing from the file.
    #[error("{0}; the change was not made")]
    LogFull(#[from] crate::record::control_log::ControlLogFull),
    /// No rule of that name.
    #[error("no rule {rule:?} (rules: {known})")]
    UnknownRule {
        /// The name asked for.
        rule: String,
        /// The rules, comma-separated (empty: the config has none).
        known: String,
    },
    /// No output of that name.
    #[error("no stimulator output {output:?} (outputs: {known})")]
    UnknownOutput {
        /// The name asked for.
        output: String,
        /// The outputs the rules name, comma-separated.
        known: String,
    },
    /// The output has no serial link (no `[[output]]` of that name: its triggers are only logged).
    #[error(
        "output {output:?} has no stimulator link (no [[output]] of that name), so it cannot pulse"
    )]
    NoLink {
        /// The output.
        output: String,
    },
    /// The pulse was refused by a limit: behavd's (`max_on_ms`, refractory, duty) or the
    /// device's.
    #[error("pulse on {output:?} ({on_ms} ms) refused: {reason} ({limit})")]
    PulseRefused {
        /// The output.
        output: String,
        /// The on time asked for, ms.
        on_ms: f64,
        /// What refused it.
        reason: String,
        /// The limit and its value (`refractory_s = 1`).
        limit: String,
    },
    /// The pulse was not sent (link down, stale, session stopping).
    #[error("pulse on {output:?} not sent: {status}")]
    PulseNotSent {
        /// The output.
        output: String,
        /// The trigger status in words.
        status: &'static str,
    },
    /// A field of the request is unusable.
    #[error("{field}: {why}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A note needs a recording session to land in.
    #[error("no session is recording: a note has nowhere to go")]
    NotRecording,
    /// The session is stopping or stopped: no more changes.
    #[error("the session is stopping: no more live changes")]
    Closed,
}
