//! The trigger tables: `acquisition/TriggerRules` (static), `intervals/StimulusTriggers` (one
//! row per trigger command with its timing chain and acknowledgement) and
//! `acquisition/StimulatorEvents` (every event on the stimulator links).

use hdf5::{File, Group};

use super::SessionClock;
use super::column::Column;
use super::h5::{self, H5Result};
use super::loop_records::{RuleRow, StimulatorDevice, TriggerRecord, TriggerStatus};
use super::loop_writer::RULES_TABLE;
use super::outage_table::OutageTable;

fn column<T: hdf5::H5Type + Copy>(
    table: &Group,
    name: &str,
    description: &str,
) -> H5Result<Column<T>> {
    let ds = h5::extensible::<T>(table, name, &[], 256, None)?;
    h5::vector_data(&ds, description)?;
    Ok(Column::new(ds, &[], 16))
}

/// `intervals/StimulusTriggers`: one row per trigger command.
pub struct TriggerTable {
    id: Column<i64>,
    start_time: Column<f64>,
    stop_time: Column<f64>,
    rule: Column<i32>,
    output: Column<u8>,
    channel: Column<u8>,
    pulse_width: Column<f64>,
    pulses: Column<u16>,
    period: Column<f64>,
    frame_index: Column<u64>,
    frame_time: Column<f64>,
    inference_start: Column<f64>,
    inference_end: Column<f64>,
    decision_time: Column<f64>,
    sent_time: Column<f64>,
    ack_time: Column<f64>,
    ack_end_time: Column<f64>,
    acked_pulses: Column<u16>,
    status: Column<u8>,
    device_flags: Column<u8>,
    latency: Column<f64>,
    truth: Column<i8>,
}

const TRIGGER_COLUMNS: [&str; 21] = [
    "start_time",
    "stop_time",
    "rule",
    "output",
    "channel",
    "pulse_width",
    "pulses",
    "period",
    "frame_index",
    "frame_time",
    "inference_start",
    "inference_end",
    "decision_time",
    "sent_time",
    "ack_time",
    "ack_end_time",
    "acked_pulses",
    "status",
    "device_flags",
    "latency",
    "ground_truth_behavior",
];

impl TriggerTable {
    /// Writes the static rule table and creates the empty trigger table.
    pub fn create(file: &File, rules: &[RuleRow], outputs: &[String]) -> H5Result<Self> {
        let acquisition = file.group("/acquisition")?;
        let table = h5::typed_group(&acquisition, "TriggerRules", "DynamicTable", "hdmf-common")?;
        h5::attr_str(
            &table,
            "description",
            "Closed-loop trigger rules loaded from the daemon config at session start.",
        )?;
        h5::attr_str_array(&table, "colnames", &["rule_name", "rule_definition"])?;
        let ids: Vec<i64> = (0..rules.len() as i64).collect();
        let id = h5::array_dataset(&table, "id", &ids)?;
        h5::set_type(&id, "ElementIdentifiers", "hdmf-common")?;
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        h5::vector_data(
            &h5::str_array_dataset(&table, "rule_name", &names)?,
            "Rule name",
        )?;
        let defs: Vec<&str> = rules.iter().map(|r| r.definition.as_str()).collect();
        h5::vector_data(
            &h5::str_array_dataset(&table, "rule_definition", &defs)?,
            "Rule definition text",
        )?;

        let intervals = file.group("/intervals")?;
        let t = h5::typed_group(&intervals, "StimulusTriggers", "TimeIntervals", "core")?;
        h5::attr_str(
            &t,
            "description",
            "Trigger commands decided by the closed-loop rules. start_time = host time the command \
             was handed to the stimulator link; stop_time = start_time + the pulse train's duration; \
             frame_time -> inference_start -> inference_end -> decision_time -> sent_time is the \
             timing chain (session clock, seconds); ack_time = host time of the device \
             acknowledgement (NaN = none).",
        )?;
        h5::attr_str_array(&t, "colnames", &TRIGGER_COLUMNS)?;
        let id = h5::extensible::<i64>(&t, "id", &[], 256, None)?;
        h5::set_type(&id, "ElementIdentifiers", "hdmf-common")?;
        let rule = h5::extensible::<i32>(&t, "rule", &[], 256, None)?;
        h5::set_type(&rule, "DynamicTableRegion", "hdmf-common")?;
        h5::attr_str(
            &rule,
            "description",
            "Row of acquisition/TriggerRules that fired this trigger",
        )?;
        h5::attr_object_ref(&rule, "table", file, RULES_TABLE)?;
        let codes = crate::frame::Behavior::ALL
            .iter()
            .map(|b| format!("{}={}", *b as u8, b.label()))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Self {
            id: Column::new(id, &[], 16),
            start_time: column(&t, "start_time", "Start time of epoch, in seconds")?,
            stop_time: column(&t, "stop_time", "Stop time of epoch, in seconds")?,
            rule: Column::new(rule, &[], 16),
            output: column(
                &t,
                "output",
                &format!("Stimulator output, index into [{}]", outputs.join(", ")),
            )?,
            channel: column(&t, "channel", "Stimulator output channel")?,
            pulse_width: column(&t, "pulse_width", "Pulse width, in seconds")?,
            pulses: column(&t, "pulses", "Pulses in the train")?,
            period: column(
                &t,
                "period",
                "Train period (rising edge to rising edge), in seconds; 0 for one pulse",
            )?,
            frame_index: column(
                &t,
                "frame_index",
                "Index of the frame (in the rule's clock stream) whose inference fired the rule",
            )?,
            frame_time: column(&t, "frame_time", "Capture time of that frame, in seconds")?,
            inference_start: column(
                &t,
                "inference_start",
                "When inference on that frame started, in seconds",
            )?,
            inference_end: column(&t, "inference_end", "When its output was ready, in seconds")?,
            decision_time: column(
                &t,
                "decision_time",
                "When the rule decided to fire, in seconds",
            )?,
            sent_time: column(
                &t,
                "sent_time",
                "When the command was handed to the stimulator link, in seconds",
            )?,
            ack_time: column(
                &t,
                "ack_time",
                "Device time of the first rising edge, mapped to the session clock through the ping/pong clock fit, in seconds (NaN if not acknowledged)",
            )?,
            ack_end_time: column(
                &t,
                "ack_end_time",
                "Device time of the last falling edge of the train, mapped to the session clock, in seconds (NaN if not acknowledged)",
            )?,
            acked_pulses: column(
                &t,
                "acked_pulses",
                "Pulses the device acknowledged (host-timed: pulses written, including one cut by the session stop)",
            )?,
            status: column(
                &t,
                "status",
                &format!("What became of the command: {}", TriggerStatus::LEGEND),
            )?,
            device_flags: column(
                &t,
                "device_flags",
                &format!(
                    "Acknowledgement flags OR-ed over the pulses (bit 0 cut at max-on, bit 1 cut by the session stop, a replacing command or the watchdog), or the device's refusal reason when status = 3 ({})",
                    crate::stim::codec::nack::legend()
                ),
            )?,
            latency: column(
                &t,
                "latency",
                "End-to-end latency: frame capture to the device's rising edge (ack_time - frame_time), in seconds (NaN if not acknowledged)",
            )?,
            truth: column(
                &t,
                "ground_truth_behavior",
                &format!(
                    "Simulator ground-truth behavior at the triggering frame ({codes}; -1 = no ground truth)"
                ),
            )?,
        })
    }

    /// Queues one trigger.
    pub fn push(&mut self, t: &TriggerRecord, clock: &SessionClock) {
        let sent = if t.sent_ns > 0 {
            t.sent_ns
        } else {
            t.decision_ns
        };
        let start = clock.seconds(sent);
        let train_ns = t.period_ns * (t.pulses.max(1) as u64 - 1) + t.pulse_width_ns;
        self.start_time.push_one(start);
        self.stop_time.push_one(start + train_ns as f64 / 1e9);
        self.rule.push_one(t.rule as i32);
        self.output.push_one(t.output);
        self.channel.push_one(t.channel);
        self.pulse_width.push_one(t.pulse_width_ns as f64 / 1e9);
        self.pulses.push_one(t.pulses);
        self.period.push_one(t.period_ns as f64 / 1e9);
        self.frame_index.push_one(t.frame_index);
        self.frame_time.push_one(clock.seconds(t.capture_ns));
        self.inference_start
            .push_one(clock.seconds(t.infer_start_ns));
        self.inference_end.push_one(clock.seconds(t.infer_end_ns));
        self.decision_time.push_one(clock.seconds(t.decision_ns));
        self.sent_time.push_one(if t.sent_ns > 0 {
            clock.seconds(t.sent_ns)
        } else {
            f64::NAN
        });
        let mapped = |ns: u64| if ns > 0 { clock.seconds(ns) } else { f64::NAN };
        let ack = mapped(t.ack_rise_ns);
        self.ack_time.push_one(ack);
        self.ack_end_time.push_one(mapped(t.ack_fall_ns));
        self.acked_pulses.push_one(t.acked_pulses);
        self.status.push_one(t.status);
        self.device_flags.push_one(t.flags);
        self.latency.push_one(ack - clock.seconds(t.capture_ns));
        self.truth.push_one(t.truth);
        self.id.push_one(self.id.rows() as i64);
    }

    /// Rows queued or written.
    pub fn rows(&self) -> usize {
        self.id.rows()
    }

    /// Writes queued rows; `id` last.
    pub fn write_pending(&mut self) -> H5Result<()> {
        self.start_time.write_pending()?;
        self.stop_time.write_pending()?;
        self.rule.write_pending()?;
        self.output.write_pending()?;
        self.channel.write_pending()?;
        self.pulse_width.write_pending()?;
        self.pulses.write_pending()?;
        self.period.write_pending()?;
        self.frame_index.write_pending()?;
        self.frame_time.write_pending()?;
        self.inference_start.write_pending()?;
        self.inference_end.write_pending()?;
        self.decision_time.write_pending()?;
        self.sent_time.write_pending()?;
        self.ack_time.write_pending()?;
        self.ack_end_time.write_pending()?;
        self.acked_pulses.write_pending()?;
        self.status.write_pending()?;
        self.device_flags.write_pending()?;
        self.latency.write_pending()?;
        self.truth.write_pending()?;
        self.id.write_pending()
    }
}

/// `acquisition/StimulatorEvents`: every event of every stimulator link (and, derived from the
/// connection events, `intervals/StimulatorOutages`).
pub struct LinkEventTable {
    outages: OutageTable,
    id: Column<i64>,
    time: Column<f64>,
    received_time: Column<f64>,
    output: Column<u8>,
    kind: Column<u8>,
    device_time: Column<f64>,
    a: Column<i64>,
    b: Column<i64>,
    c: Column<i64>,
}

impl LinkEventTable {
    /// Creates the empty table.
    /// Outputs whose device is marked `down_at_start` get an outage opened at the session
    /// start.
    pub fn create(
        file: &File,
        outputs: &[String],
        devices: &[StimulatorDevice],
        clock: &SessionClock,
    ) -> H5Result<Self> {
        let acquisition = file.group("/acquisition")?;
        let t = h5::typed_group(
            &acquisition,
            "StimulatorEvents",
            "DynamicTable",
            "hdmf-common",
        )?;
        h5::attr_str(
            &t,
            "description",
            "Everything that happened on the stimulator links: connections, faults, input edges, \
             clock-sync samples, refusals and per-pulse acknowledgements.",
        )?;
        h5::attr_str_array(
            &t,
            "colnames",
            &[
                "time",
                "received_time",
                "output",
                "kind",
                "device_time",
                "a",
                "b",
                "c",
            ],
        )?;
        let id = h5::extensible::<i64>(&t, "id", &[], 256, None)?;
        h5::set_type(&id, "ElementIdentifiers", "hdmf-common")?;
        Ok(Self {
            outages: {
                let mut outages = OutageTable::create(file, outputs)?;
                for d in devices.iter().filter(|d| d.down_at_start) {
                    outages.open_at(d.output, clock.start_mono_ns);
                }
                outages
            },
            id: Column::new(id, &[], 64),
            time: column(
                &t,
                "time",
                "Session-clock time of the event, s (device events: the device time mapped through the clock fit)",
            )?,
            received_time: column(
                &t,
                "received_time",
                "Session-clock time behavd read the event from the port, s",
            )?,
            output: column(
                &t,
                "output",
                &format!("Stimulator output, index into [{}]", outputs.join(", ")),
            )?,
            kind: column(
                &t,
                "kind",
                &format!(
                    "What happened: {}",
                    super::loop_records::LinkEventKind::LEGEND
                ),
            )?,
            device_time: column(
                &t,
                "device_time",
                "Device clock at the event, s since the device reset (NaN if none)",
            )?,
            a: column(&t, "a", "First value, by kind (see `kind`)")?,
            b: column(&t, "b", "Second value, by kind")?,
            c: column(&t, "c", "Third value, by kind")?,
        })
    }

    /// Queues one event.
    pub fn push(&mut self, e: &super::loop_records::LinkEvent, clock: &SessionClock) {
        let host = if e.host_ns > 0 {
            e.host_ns
        } else {
            e.received_ns
        };
        self.time.push_one(clock.seconds(host));
        self.received_time.push_one(clock.seconds(e.received_ns));
        self.output.push_one(e.output);
        self.kind.push_one(e.kind);
        self.device_time.push_one(if e.device_us == u64::MAX {
            f64::NAN
        } else {
            e.device_us as f64 / 1e6
        });
        self.a.push_one(e.a);
        self.b.push_one(e.b);
        self.c.push_one(e.c);
        self.id.push_one(self.id.rows() as i64);
        self.outages.observe(e, clock);
    }

    /// Ends the outages still open when the session ends at `end_ns`.
    pub fn close_outages(&mut self, end_ns: u64, clock: &SessionClock) {
        self.outages.close_open(end_ns, clock);
    }

    /// Rows of `intervals/StimulatorOutages` queued or written.
    pub fn outage_rows(&self) -> usize {
        self.outages.rows()
    }

    /// Rows queued or written.
    pub fn rows(&self) -> usize {
        self.id.rows()
    }

    /// Writes queued rows; `id` last.
    pub fn write_pending(&mut self) -> H5Result<()> {
        self.time.write_pending()?;
        self.received_time.write_pending()?;
        self.output.write_pending()?;
        self.kind.write_pending()?;
        self.device_time.write_pending()?;
        self.a.write_pending()?;
        self.b.write_pending()?;
        self.c.write_pending()?;
        self.id.write_pending()?;
        self.outages.write_pending()
    }
}
