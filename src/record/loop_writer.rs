//! The closed loop's outputs in the file: per model / signal group under `processing/`
//! (class probabilities and vectors as `AbstractFeatureSeries`, keypoints as ndx-pose
//! `PoseEstimation`, ROI ΔF/F as `AbstractFeatureSeries` in `processing/ophys`), the inferred
//! frame index, skipped-frame counts and per-frame timing. The rule and trigger tables are in
//! [`super::trigger_tables`].

use hdf5::{File, Group};

use super::SessionClock;
use super::column::Column;
use super::h5::{self, H5Result};
use super::loop_records::{OutputKind, OutputRecord, OutputSetup};

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
