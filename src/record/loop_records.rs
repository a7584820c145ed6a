//! Records of the closed loop sent to the recorder over SPSC rings: per-frame model outputs and
//! ROI signals, and trigger decisions with their timing chain. All are plain `Copy` values so
//! that producing one allocates nothing.

/// Most values one record carries (class probabilities, keypoint triples, vector, ROI signals).
pub const MAX_VALUES: usize = 256;

/// One output row of a model (or of a signal group) for one frame.
#[derive(Debug, Clone, Copy)]
pub struct OutputRecord {
    /// Index of the input frame in its stream (for a second-stage model: the first stage's frame).
    pub frame_index: u64,
    /// Capture time of the input frame (session clock source, CLOCK_MONOTONIC ns).
    pub capture_ns: u64,
    /// When the thread took the frame (before preprocessing).
    pub start_ns: u64,
    /// When preprocessing ended and the session run started.
    pub run_ns: u64,
    /// When the decoded output was ready.
    pub end_ns: u64,
    /// Frames of the stream this consumer did not see since its previous record (latest-wins).
    pub skipped: u32,
    /// Whether recurrent state / temporal history was reset before this frame (start, gap).
    pub reset: bool,
    /// Simulator ground-truth behavior code of the input frame, or -1.
    pub truth: i8,
    /// Number of valid entries in `values`.
    pub len: u16,
    /// The decoded values.
    pub values: [f32; MAX_VALUES],
}

impl Default for OutputRecord {
    fn default() -> Self {
        Self {
            frame_index: 0,
            capture_ns: 0,
            start_ns: 0,
            run_ns: 0,
            end_ns: 0,
            skipped: 0,
            reset: false,
            truth: -1,
            len: 0,
            values: [0.0; MAX_VALUES],
        }
    }
}

impl OutputRecord {
    /// The valid values.
    pub fn values(&self) -> &[f32] {
        &self.values[..self.len as usize]
    }
}

/// What one output producer is, for laying out its objects in the file.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputKind {
    /// Class probabilities with these labels.
    Classes(Vec<String>),
    /// Keypoints (x, y, confidence per name).
    Keypoints(Vec<String>),
    /// A raw vector of this many values.
    Vector(usize),
    /// ΔF/F of these ROIs.
    Signals(Vec<String>),
}

impl OutputKind {
    /// Values per record.
    pub fn width(&self) -> usize {
        match self {
            OutputKind::Classes(l) | OutputKind::Signals(l) => l.len(),
            OutputKind::Keypoints(k) => 3 * k.len(),
            OutputKind::Vector(n) => *n,
        }
    }
}

/// A model or signal group as the recorder sees it.
pub struct OutputSetup {
    /// Model / signal group name.
    pub name: String,
    /// The stream it reads (for a second stage, the first stage's stream).
    pub stream: String,
    /// Human description (model file, provider).
    pub description: String,
    /// What the values are.
    pub kind: OutputKind,
    /// The rows.
    pub records: rtrb::Consumer<OutputRecord>,
}

/// One trigger command with its whole timing chain.
#[derive(Debug, Clone, Copy, Default)]
pub struct TriggerRecord {
    /// Row of the rule table.
    pub rule: u32,
    /// Stimulator output index (order of outputs named by rules).
    pub output: u8,
    /// Channel on that output.
    pub channel: u8,
    /// Pulse width.
    pub pulse_width_ns: u64,
    /// Pulses in the train.
    pub pulses: u16,
    /// Train period.
    pub period_ns: u64,
    /// Frame index (in the clock model's stream) that triggered.
    pub frame_index: u64,
    /// Capture time of that frame.
    pub capture_ns: u64,
    /// Inference start of the clock model on that frame.
    pub infer_start_ns: u64,
    /// Inference end of the clock model on that frame.
    pub infer_end_ns: u64,
    /// When the rule decided.
    pub decision_ns: u64,
    /// When the command was handed to the stimulator link (0 = not sent).
    pub sent_ns: u64,
    /// Ground-truth behavior at the triggering frame, or -1.
    pub truth: i8,
    /// What became of the command ([`TriggerStatus`] as u8).
    pub status: u8,
    /// Sequence number on the wire (behavd protocol).
    pub seq: u16,
    /// Device flags of the acknowledgements (cut by max-on, ...), or the NACK reason.
    pub flags: u8,
    /// Pulses the device acknowledged.
    pub acked_pulses: u16,
    /// Device time of the first rising edge, µs (0 = none).
    pub device_rise_us: u64,
    /// First rising edge mapped to the host clock (0 = none).
    pub ack_rise_ns: u64,
    /// Last falling edge mapped to the host clock (0 = none).
    pub ack_fall_ns: u64,
    /// When the first acknowledgement was read from the port (0 = none).
    pub ack_recv_ns: u64,
    /// 0 for a rule's trigger; a manual test pulse's request number otherwise (its `rule` is
    /// then the rule table's `manual` row).
    pub manual: u32,
}

/// What became of a trigger command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TriggerStatus {
    /// Decided and recorded; no stimulator output of that name is configured.
    Logged = 0,
    /// Written to the port; not (fully) acknowledged.
    Sent = 1,
    /// Every pulse acknowledged with device edge times.
    Acked = 2,
    /// Refused by the device (NACK; `flags` = reason).
    Nacked = 3,
    /// Refused by behavd's own limits before reaching the wire.
    Blocked = 4,
    /// The link was down.
    LinkDown = 5,
    /// Driven by the host without acknowledgement (Firmata).
    HostTimed = 6,
    /// Not sent: it could not be written within the output's `max_trigger_age_ms` of the
    /// decision (link connecting or busy); it never fires later.
    Stale = 7,
    /// Not sent: decided while the session was stopping (the outputs were already off).
    Stopping = 8,
}

impl TriggerStatus {
    /// Text for the file's column description.
    pub const LEGEND: &'static str = "0=logged (no stimulator configured), 1=sent (not acknowledged), 2=acknowledged, \
         3=refused by the device (device_flags = reason), 4=blocked by behavd's limits, 5=link down (not sent), \
         6=host-timed (Firmata), 7=stale (not written within max_trigger_age_ms of the decision; not sent), \
         8=decided while the session was stopping (not sent)";

    /// The status in words.
    pub fn name(code: u8) -> &'static str {
        match code {
            0 => "logged",
            1 => "sent, not acknowledged",
            2 => "acknowledged",
            3 => "refused by the device",
            4 => "blocked by behavd's limits",
            5 => "link down",
            6 => "host-timed",
            7 => "stale",
            8 => "session stopping",
            _ => "unknown",
        }
    }
}

/// A stimulator output as the file's `general/devices` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StimulatorDevice {
    /// Output name.
    pub name: String,
    /// Protocol, port and what the device reported about itself (firmware name and version).
    pub description: String,
    /// Index of the output (order of the rules' output names).
    pub output: u8,
    /// Whether the link was down when the session started (an optional output that did not
    /// connect in time): the outage table opens an outage at the session start.
    pub down_at_start: bool,
}

/// The name of the rule table's last row, which manual test pulses (from the live controls,
/// not from a rule) name in the trigger table.
pub const MANUAL_RULE: &str = "manual";

/// That row's definition text.
pub const MANUAL_RULE_DEFINITION: &str = "manual test pulse from behavd's live controls (not a rule);      who asked and what came of it is in acquisition/ControlChanges";

/// A rule as the file's `TriggerRules` table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    /// Rule name.
    pub name: String,
    /// Canonical definition text.
    pub definition: String,
}

/// One event on a stimulator link, for `acquisition/StimulatorEvents`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkEvent {
    /// Output index (order of the rules' output names).
    pub output: u8,
    /// What happened ([`LinkEventKind`] as u8).
    pub kind: u8,
    /// Host monotonic ns of the event (device events: mapped from the device clock; 0 = use
    /// `received_ns`).
    pub host_ns: u64,
    /// When the host read it from the port (or observed it).
    pub received_ns: u64,
    /// Device time, µs (u64::MAX = none).
    pub device_us: u64,
    /// Kind-specific values (see [`LinkEventKind`]).
    pub a: i64,
    /// Kind-specific values.
    pub b: i64,
    /// Kind-specific values.
    pub c: i64,
}

/// Kinds of [`LinkEvent`], with the meaning of `a`, `b`, `c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkEventKind {
    /// The link connected (a = firmware major·10000 + minor·100 + patch, b = channels).
    Connected = 0,
    /// The port vanished or hung up.
    Disconnected = 1,
    /// The device reported a fault (a = code, b = channel, c = detail).
    Fault = 2,
    /// An edge on a device input (a = input, b = level, c = count since reset).
    Input = 3,
    /// A clock-sync sample (a = round trip ns, b = 1 if accepted into the fit).
    ClockSync = 4,
    /// The device refused a command (a = seq, b = reason).
    Nack = 5,
    /// One pulse acknowledged (a = seq, b = pulse index, c = fall − rise µs).
    PulseAck = 6,
    /// behavd cleared a latched device fault (a = the fault bits seen).
    Rearm = 7,
    /// One host-timed pulse written (Firmata; `host_ns` = when the rise was written; a = train
    /// number, b = pulse index, c = µs between writing the rise and the fall).
    HostPulse = 8,
    /// A refusal that matches no outstanding command (a = seq, b = reason): line noise or a
    /// confused device, not the refusal of a trigger.
    StrayNack = 9,
    /// A host-timed pulse whose fall was written by the session stop (Firmata; like
    /// `HostPulse`: the pin was high from the rise to the stop's all-low).
    HostPulseCut = 10,
}

impl LinkEventKind {
    /// Text for the file's column description.
    pub const LEGEND: &'static str = "0=connected (a=firmware version major*10000+minor*100+patch, b=channels), \
         1=disconnected, 2=fault (a=code: 1=watchdog, 2=cut at max on time, 3=duty-cycle cap, \
         4=receive overflow; b=channel, c=detail), 3=input edge (a=input, b=level, \
         c=count), 4=clock-sync sample (a=round trip ns, b=1 if used in the fit), 5=refused (a=seq, \
         b=reason: 1=unknown message type, 2=bad length, 3=no such channel, 4=bad argument, \
         5=fault latched, 6=duty-cycle cap, 7=busy), 6=pulse acknowledged (a=seq, b=pulse index, \
         c=on time us), 7=fault cleared by behavd (a=fault bits), 8=host-timed pulse written \
         (Firmata; time=rise written, a=train, b=pulse index, c=us from rise to fall written), \
         9=stray refusal matching no outstanding command (a=seq, b=reason as for 5), \
         10=host-timed pulse cut by the session stop (as 8; the fall is the stop's all-low)";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stim::codec::nack;

    /// The file's descriptions spell out every refusal reason as the link names it.
    #[test]
    fn legends_name_every_refusal_reason_and_status() {
        let reasons = nack::legend();
        assert!(reasons.starts_with("1=unknown message type, 2=bad length"));
        assert!(LinkEventKind::LEGEND.contains(&reasons), "{reasons}");
        for code in 0..=8u8 {
            let name = TriggerStatus::name(code);
            assert_ne!(name, "unknown");
            assert!(
                TriggerStatus::LEGEND.contains(&format!("{code}=")),
                "status {code} ({name}) missing"
            );
        }
    }
}
