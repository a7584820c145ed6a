//! The closed loop in the file: per model / signal group its outputs under `processing/`
//! (class probabilities and vectors as `AbstractFeatureSeries`, keypoints as ndx-pose
//! `PoseEstimation`, ROI ΔF/F as `AbstractFeatureSeries` in `processing/ophys`), the inferred
//! frame index, skipped-frame counts and per-frame timing; the rules in
//! `acquisition/TriggerRules`; every trigger with its timing chain in `intervals/StimulusTriggers`.

use hdf5::{File, Group};

use super::SessionClock;
use super::column::Column;
use super::h5::{self, H5Result};
use super::loop_records::{
    OutputKind, OutputRecord, OutputSetup, RuleRow, TriggerRecord, TriggerStatus,
};

/// Path of the rule table.
pub const RULES_TABLE: &str = "/acquisition/TriggerRules";
/// Path of the trigger table.
pub const TRIGGERS_TABLE: &str = "/intervals/StimulusTriggers";

enum Values {
    Features(Column<f32>),
    Pose(Vec<(Column<f32>, Column<f32>)>),
}

/// The datasets of one model or signal group.
pub struct OutputWriter {
    timestamps: Column<f64>,
    values: Values,
    frame_index: Column<u32>,
    skipped: Column<u32>,
    timing: Column<f64>,
    width: usize,
}

fn module(file: &File, name: &str, description: &str) -> H5Result<Group> {
    let processing = file.group("/processing")?;
    if let Ok(g) = processing.group(name) {
        return Ok(g);
    }
    let g = h5::typed_group(&processing, name, "ProcessingModule", "core")?;
    h5::attr_str(&g, "description", description)?;
    Ok(g)
}

fn linked(parent: &Group, name: &str, description: &str, timestamps: &str) -> H5Result<Group> {
    let g = h5::typed_group(parent, name, "TimeSeries", "core")?;
    h5::series_attrs(&g, description)?;
    g.link_soft(timestamps, "timestamps")?;
    Ok(g)
}

fn str_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

impl OutputWriter {
    /// Creates the objects of one output producer.
    pub fn create(file: &File, setup: &OutputSetup) -> H5Result<Self> {
        let name = &setup.name;
        let (module_name, module_description) = match setup.kind {
            OutputKind::Signals(_) => (
                "ophys",
                "Online ROI signals (ΔF/F with a running baseline) computed by the acquisition daemon.",
            ),
            _ => (
                "behavior",
                "Online (closed-loop) CNN inference computed by the acquisition daemon on live frames.",
            ),
        };
        let module = module(file, module_name, module_description)?;
        let base = format!("/processing/{module_name}");
        let width = setup.kind.width();
        let (values, ts_path, timestamps) = match &setup.kind {
            OutputKind::Keypoints(parts) => {
                let skeletons = match module.group("Skeletons") {
                    Ok(g) => g,
                    Err(_) => h5::typed_group(&module, "Skeletons", "Skeletons", "ndx-pose")?,
                };
                let skeleton_name = format!("{name}_skeleton");
                let skeleton = h5::typed_group(&skeletons, &skeleton_name, "Skeleton", "ndx-pose")?;
                h5::str_array_dataset(&skeleton, "nodes", &str_refs(parts))?;
                let edges: Vec<u8> = chain_edges(parts.len());
                skeleton
                    .new_dataset_builder()
                    .with_data(
                        &ndarray::Array2::from_shape_vec((edges.len() / 2, 2), edges)
                            .expect("pairs"),
                    )
                    .create("edges")?;
                let pose = h5::typed_group(&module, name, "PoseEstimation", "ndx-pose")?;
                h5::str_dataset(
                    &pose,
                    "description",
                    &format!(
                        "Online keypoint estimates by model `{name}` ({}); x, y in pixels of {}, likelihood in [0, 1].",
                        setup.description, setup.stream
                    ),
                )?;
                h5::str_dataset(
                    &pose,
                    "scorer",
                    &format!("behavd model {name}: {}", setup.description),
                )?;
                let software = h5::str_dataset(&pose, "source_software", "behavd")?;
                h5::attr_str(&software, "version", env!("CARGO_PKG_VERSION"))?;
                pose.link_soft(&format!("{base}/Skeletons/{skeleton_name}"), &skeleton_name)?;
                let first_path = format!("{base}/{name}/{}/timestamps", parts[0]);
                let mut series = Vec::new();
                let mut timestamps = None;
                for part in parts {
                    let s = h5::typed_group(&pose, part, "PoseEstimationSeries", "ndx-pose")?;
                    h5::series_attrs(&s, &format!("Estimated position of {part}."))?;
                    let data = h5::extensible::<f32>(&s, "data", &[2], 1024, None)?;
                    h5::data_attrs(&data, "pixels")?;
                    let conf = h5::extensible::<f32>(&s, "confidence", &[], 1024, None)?;
                    h5::attr_str(
                        &conf,
                        "definition",
                        "Model confidence of the keypoint (sigmoid of the heatmap peak, or the model's own score).",
                    )?;
                    h5::str_dataset(
                        &s,
                        "reference_frame",
                        &format!(
                            "(0,0) is the top-left pixel of {}; x grows to the right, y grows downward.",
                            setup.stream
                        ),
                    )?;
                    if timestamps.is_none() {
                        timestamps = Some(h5::timestamps_dataset(&s)?);
                    } else {
                        s.link_soft(&first_path, "timestamps")?;
                    }
                    series.push((Column::new(data, &[2], 64), Column::new(conf, &[], 64)));
                }
                (
                    Values::Pose(series),
                    first_path,
                    timestamps.expect("at least one keypoint"),
                )
            }
            kind => {
                let (features, units, what) = match kind {
                    OutputKind::Classes(labels) => {
                        (labels.clone(), "probability", "class probabilities")
                    }
                    OutputKind::Signals(rois) => (rois.clone(), "dF/F", "ΔF/F of each ROI"),
                    _ => (
                        (0..width).map(|i| format!("f{i}")).collect(),
                        "a.u.",
                        "raw output vector",
                    ),
                };
                let g = h5::typed_group(&module, name, "AbstractFeatureSeries", "core")?;
                h5::series_attrs(
                    &g,
                    &format!(
                        "Per-frame {what} from `{name}` ({}) on frames of {}.",
                        setup.description, setup.stream
                    ),
                )?;
                let data = h5::extensible::<f32>(&g, "data", &[width], 1024, None)?;
                h5::data_attrs(&data, "see 'feature_units'")?;
                h5::str_array_dataset(&g, "features", &str_refs(&features))?;
                h5::str_array_dataset(&g, "feature_units", &vec![units; width])?;
                let ts = h5::timestamps_dataset(&g)?;
                (
                    Values::Features(Column::new(data, &[width], 64)),
                    format!("{base}/{name}/timestamps"),
                    ts,
                )
            }
        };
        let series = linked(
            &module,
            &format!("{name}_FrameIndex"),
            &format!(
                "0-based index into acquisition/{} of each frame `{name}` processed.",
                setup.stream
            ),
            &ts_path,
        )?;
        let frame_index = h5::extensible::<u32>(&series, "data", &[], 1024, None)?;
        h5::data_attrs(&frame_index, "n.a.")?;
        let series = linked(
            &module,
            &format!("{name}_SkippedFrames"),
            &format!(
                "Frames of {} that `{name}` did not see since its previous output (latest-wins: it was busy).",
                setup.stream
            ),
            &ts_path,
        )?;
        let skipped = h5::extensible::<u32>(&series, "data", &[], 1024, None)?;
        h5::data_attrs(&skipped, "frames")?;
        let series = linked(
            &module,
            &format!("{name}_Timing"),
            &format!(
                "Host times (session clock, seconds) of `{name}` per processed frame, columns \
                 [frame taken, input ready (preprocessing done), output ready]; the timestamps \
                 are the frames' capture times."
            ),
            &ts_path,
        )?;
        let timing = h5::extensible::<f64>(&series, "data", &[3], 1024, None)?;
        h5::data_attrs(&timing, "seconds")?;
        Ok(Self {
            timestamps: Column::new(timestamps, &[], 64),
            values,
            frame_index: Column::new(frame_index, &[], 64),
            skipped: Column::new(skipped, &[], 64),
            timing: Column::new(timing, &[3], 64),
            width,
        })
    }

    /// Queues one row.
    pub fn push(&mut self, r: &OutputRecord, clock: &SessionClock) {
        let values = &r.values[..self.width.min(r.len as usize)];
        if values.len() != self.width {
            return;
        }
        match &mut self.values {
            Values::Features(c) => c.push(values),
            Values::Pose(series) => {
                for (i, (xy, conf)) in series.iter_mut().enumerate() {
                    xy.push(&values[3 * i..3 * i + 2]);
                    conf.push_one(values[3 * i + 2]);
                }
            }
        }
        self.frame_index
            .push_one(r.frame_index.min(u32::MAX as u64) as u32);
        self.skipped.push_one(r.skipped);
        self.timing.push(&[
            clock.seconds(r.start_ns),
            clock.seconds(r.run_ns),
            clock.seconds(r.end_ns),
        ]);
        self.timestamps.push_one(clock.seconds(r.capture_ns));
    }

    /// Rows queued or written.
    pub fn rows(&self) -> usize {
        self.timestamps.rows()
    }

    /// Writes queued rows; timestamps last.
    pub fn write_pending(&mut self) -> H5Result<()> {
        match &mut self.values {
            Values::Features(c) => c.write_pending()?,
            Values::Pose(series) => {
                for (xy, conf) in series {
                    xy.write_pending()?;
                    conf.write_pending()?;
                }
            }
        }
        self.frame_index.write_pending()?;
        self.skipped.write_pending()?;
        self.timing.write_pending()?;
        self.timestamps.write_pending()
    }
}

/// Edges of a simple chain skeleton (0-1, 1-2, ...), as the model spec does not name edges.
fn chain_edges(n: usize) -> Vec<u8> {
    (1..n).flat_map(|i| [(i - 1) as u8, i as u8]).collect()
}

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
            acked_pulses: column(&t, "acked_pulses", "Pulses the device acknowledged")?,
            status: column(
                &t,
                "status",
                &format!("What became of the command: {}", TriggerStatus::LEGEND),
            )?,
            device_flags: column(
                &t,
                "device_flags",
                "Acknowledgement flags OR-ed over the pulses (bit 0 cut at max-on, bit 1 cut by stop/replace/watchdog), or the NACK reason when status = 3",
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

/// `acquisition/StimulatorEvents`: every event of every stimulator link.
pub struct LinkEventTable {
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
    pub fn create(file: &File, outputs: &[String]) -> H5Result<Self> {
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
        self.id.write_pending()
    }
}
