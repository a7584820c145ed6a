//! Writes one stream's frames and per-frame metadata into its NWB series.

use hdf5::{Dataset, File, Group};

use super::column::Column;
use super::h5::{self, H5Result};
use super::layout::{self, StreamPaths};
use super::transpose::transpose_into;
use super::{RecorderSetup, StreamSetup};
use crate::clock::SessionClock;
use crate::config::Compression;
use crate::frame::{FrameGeometry, FrameMeta, KEYPOINT_NAMES};
use crate::source::StreamKind;

/// The datasets of one stream and the rows appended to them.
pub struct StreamWriter {
    geometry: FrameGeometry,
    data: Dataset,
    frames_written: u64,
    /// Deflate level when chunks are compressed by the worker pool, else `None`.
    pub worker_level: Option<u8>,
    transposed: Vec<u8>,
    timestamps: Column<f64>,
    counter: Column<u32>,
    host_time: Column<f64>,
    head_orientation: Option<Column<f32>>,
    truth_behavior: Option<Column<u8>>,
    truth_keypoints: Option<Column<f32>>,
}

impl StreamWriter {
    /// Creates the stream's groups and empty datasets.
    pub fn create(
        file: &File,
        setup: &RecorderSetup,
        stream: &StreamSetup,
        compress_threads: usize,
    ) -> H5Result<Self> {
        let info = &stream.info;
        let g = info.geometry;
        let paths = StreamPaths::of(stream);
        let expected_rows =
            (info.nominal_fps * setup.flush_interval.as_secs_f64() * 2.0).ceil() as usize + 16;
        let deflate = match stream.compression {
            Compression::None => None,
            Compression::Gzip { level } => Some(level),
        };
        let acquisition = file.group("/acquisition")?;
        let (series_type, what) = match info.kind {
            StreamKind::Miniscope => ("OnePhotonSeries", "Raw Miniscope frames"),
            StreamKind::BehaviorCamera => ("ImageSeries", "Behavior camera frames"),
        };
        let series = h5::typed_group(&acquisition, &info.name, series_type, "core")?;
        let channels = g.format.bytes_per_pixel();
        let colour = if channels == 3 { "RGB" } else { "grayscale" };
        h5::series_attrs(
            &series,
            &format!(
                "{what} of {} ({}x{} {colour}, uint8), stored data[frame, x(width), y(height)]{}. {}",
                info.name,
                g.width,
                g.height,
                if channels == 3 { "[, channel]" } else { "" },
                info.device_description
            ),
        )?;
        let mut tail = vec![g.width as usize, g.height as usize];
        if channels == 3 {
            tail.push(3);
        }
        let data = h5::video_dataset(&series, "data", &tail, deflate)?;
        h5::data_attrs(&data, "n.a.")?;
        let timestamps = h5::timestamps_dataset(&series)?;
        h5::array_dataset(&series, "dimension", &[g.width as i32, g.height as i32])?;
        h5::str_dataset(&series, "format", "raw")?;
        series.link_soft(&format!("/general/devices/{}", info.name), "device")?;
        if info.kind == StreamKind::Miniscope {
            h5::attr_scalar(&series, "exposure_time", (1.0 / info.nominal_fps) as f32)?;
            let plane = layout::create_imaging_plane(file, setup, stream)?;
            series.link_soft(&plane, "imaging_plane")?;
        }
        let ts_path = format!("{}/timestamps", paths.series);

        let counter_ds = linked_series(
            file,
            &paths.counter,
            &format!(
                "Frame counter reported by the device of {} for each stored frame, unwrapped from \
                 {} bits (a jump larger than 1 = frames the device dropped).",
                info.name, info.counter_bits
            ),
            &ts_path,
        )?;
        let counter = h5::extensible::<u32>(&counter_ds, "data", &[], 4096, None)?;
        h5::data_attrs(&counter, "n.a.")?;
        let host_ds = linked_series(
            file,
            &paths.host_time,
            &format!(
                "When behavd dequeued each stored frame of {} (host CLOCK_MONOTONIC, session                  seconds); the series' timestamps are the device's (driver/kernel) times, so                  data − timestamps is the delivery latency.",
                info.name
            ),
            &ts_path,
        )?;
        let host_time = h5::extensible::<f64>(&host_ds, "data", &[], 4096, None)?;
        h5::data_attrs(&host_time, "seconds")?;

        let head_orientation = match &paths.head_orientation {
            Some(path) => {
                let group = linked_series(
                    file,
                    path,
                    "Head orientation from the Miniscope IMU (BNO055) as unit quaternion, columns [w, x, y, z].",
                    &ts_path,
                )?;
                let ds = h5::extensible::<f32>(&group, "data", &[4], 4096, None)?;
                h5::data_attrs(&ds, "n.a.")?;
                Some(Column::new(ds, &[4], expected_rows))
            }
            None => None,
        };
        let (truth_behavior, truth_keypoints) = match &paths.ground_truth {
            Some((behavior_path, keypoints_path)) => {
                let group = linked_series(
                    file,
                    behavior_path,
                    &format!(
                        "Simulator ground truth: the behavior the synthetic animal performs in each \
                         frame of {}. Codes: {}.",
                        info.name,
                        layout::behavior_codes()
                    ),
                    &ts_path,
                )?;
                let behavior = h5::extensible::<u8>(&group, "data", &[], 4096, None)?;
                h5::data_attrs(&behavior, "n.a.")?;
                let group = linked_series(
                    file,
                    keypoints_path,
                    &format!(
                        "Simulator ground truth: keypoint positions in pixels of {} (x right, y \
                         down from the top-left pixel), data[frame, keypoint, (x, y)], keypoints \
                         in order: {}.",
                        info.name,
                        layout::keypoint_order()
                    ),
                    &ts_path,
                )?;
                let tail = [KEYPOINT_NAMES.len(), 2];
                let keypoints = h5::extensible::<f32>(&group, "data", &tail, 1024, None)?;
                h5::data_attrs(&keypoints, "pixels")?;
                (
                    Some(Column::new(behavior, &[], expected_rows)),
                    Some(Column::new(keypoints, &tail, expected_rows)),
                )
            }
            None => (None, None),
        };
        Ok(Self {
            geometry: g,
            data,
            frames_written: 0,
            worker_level: deflate.filter(|_| compress_threads > 0),
            transposed: if compress_threads > 0 && deflate.is_some() {
                Vec::new()
            } else {
                vec![0; g.frame_bytes()]
            },
            timestamps: Column::new(timestamps, &[], expected_rows),
            counter: Column::new(counter, &[], expected_rows),
            host_time: Column::new(host_time, &[], expected_rows),
            head_orientation,
            truth_behavior,
            truth_keypoints,
        })
    }

    /// Frame size and format.
    pub fn geometry(&self) -> FrameGeometry {
        self.geometry
    }

    /// Frames whose pixels are in the file.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Frames whose pixels and every metadata row are in the file (what remains once
    /// `finalize` trims a file whose recording failed).
    pub fn rows_complete(&self) -> u64 {
        let mut rows = [
            self.timestamps.written_rows(),
            self.counter.written_rows(),
            self.host_time.written_rows(),
        ]
        .into_iter()
        .chain(self.head_orientation.as_ref().map(Column::written_rows))
        .chain(self.truth_behavior.as_ref().map(Column::written_rows))
        .chain(self.truth_keypoints.as_ref().map(Column::written_rows));
        let min = rows.by_ref().min().unwrap_or(0) as u64;
        min.min(self.frames_written)
    }

    /// Transposes and writes a frame through HDF5's filter pipeline (on this thread).
    pub fn write_frame(
        &mut self,
        pixels: &[u8],
        meta: &FrameMeta,
        clock: &SessionClock,
    ) -> H5Result<()> {
        let g = self.geometry;
        transpose_into(
            pixels,
            &mut self.transposed,
            g.width as usize,
            g.height as usize,
            g.format.bytes_per_pixel(),
        );
        let n = self.frames_written as usize;
        let (w, h) = (g.width as usize, g.height as usize);
        if g.format.bytes_per_pixel() == 3 {
            self.data.resize((n + 1, w, h, 3))?;
            let view =
                ndarray::ArrayView4::from_shape((1, w, h, 3), &self.transposed).expect("size");
            self.data.write_slice(view, (n..n + 1, .., .., ..))?;
        } else {
            self.data.resize((n + 1, w, h))?;
            let view = ndarray::ArrayView3::from_shape((1, w, h), &self.transposed).expect("size");
            self.data.write_slice(view, (n..n + 1, .., ..))?;
        }
        self.frames_written += 1;
        self.push_meta(meta, clock);
        Ok(())
    }

    /// Writes an already transposed and deflated chunk with a direct chunk write.
    pub fn write_compressed_chunk(
        &mut self,
        chunk: &[u8],
        meta: &FrameMeta,
        clock: &SessionClock,
    ) -> H5Result<()> {
        let g = self.geometry;
        let n = self.frames_written as usize;
        let (w, h) = (g.width as usize, g.height as usize);
        let offset: [u64; 4] = [n as u64, 0, 0, 0];
        if g.format.bytes_per_pixel() == 3 {
            self.data.resize((n + 1, w, h, 3))?;
        } else {
            self.data.resize((n + 1, w, h))?;
        }
        hdf5::sync::sync(|| {
            // SAFETY: the dataset id is valid, `offset` has one entry per dimension (extra
            // entries are ignored), and `chunk` is a complete deflate chunk of one frame.
            let status = unsafe {
                hdf5_sys::h5d::H5Dwrite_chunk(
                    self.data.id(),
                    hdf5_sys::h5p::H5P_DEFAULT,
                    0,
                    offset.as_ptr(),
                    chunk.len(),
                    chunk.as_ptr().cast(),
                )
            };
            // On failure this captures the library's error stack (and the OS error in it).
            hdf5::h5check(status).map(drop)
        })?;
        self.frames_written += 1;
        self.push_meta(meta, clock);
        Ok(())
    }

    fn push_meta(&mut self, meta: &FrameMeta, clock: &SessionClock) {
        self.timestamps
            .push_one(clock.seconds(meta.stamp.device_time_ns));
        self.counter.push_one(meta.device_counter as u32);
        self.host_time
            .push_one(clock.seconds(meta.stamp.host_time_ns));
        if let Some(column) = &mut self.head_orientation {
            column.push(&meta.stamp.head_orientation.unwrap_or([f32::NAN; 4]));
        }
        if let (Some(b), Some(k)) = (&mut self.truth_behavior, &mut self.truth_keypoints) {
            match &meta.stamp.ground_truth {
                Some(truth) => {
                    b.push_one(truth.behavior as u8);
                    k.push(truth.keypoints.as_flattened());
                }
                None => {
                    b.push_one(u8::MAX);
                    k.push(&[f32::NAN; 8]);
                }
            }
        }
    }

    /// Writes buffered metadata rows (data first, then timestamps, as SWMR readers expect).
    pub fn write_pending(&mut self) -> H5Result<()> {
        self.counter.write_pending()?;
        self.host_time.write_pending()?;
        if let Some(c) = &mut self.head_orientation {
            c.write_pending()?;
        }
        if let Some(c) = &mut self.truth_behavior {
            c.write_pending()?;
        }
        if let Some(c) = &mut self.truth_keypoints {
            c.write_pending()?;
        }
        self.timestamps.write_pending()
    }
}

/// Creates a `TimeSeries` group whose `timestamps` link to another series' timestamps.
fn linked_series(file: &File, path: &str, description: &str, timestamps: &str) -> H5Result<Group> {
    let (parent, name) = path.rsplit_once('/').expect("absolute path");
    let group = h5::typed_group(&file.group(parent)?, name, "TimeSeries", "core")?;
    h5::series_attrs(&group, description)?;
    group.link_soft(timestamps, "timestamps")?;
    Ok(group)
}
