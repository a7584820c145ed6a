//! The `RecordedStreams` table and the `FrameGaps` interval table: every lost frame, with cause.

use hdf5::{File, Group};

use super::StreamSetup;
use super::column::Column;
use super::h5::{self, H5Result};
use crate::clock::SessionClock;
use crate::stats::DropCause;

/// Path of the static stream table.
pub const STREAMS_TABLE: &str = "/acquisition/RecordedStreams";
/// Path of the gap table.
pub const GAPS_TABLE: &str = "/intervals/FrameGaps";

/// A run of frames of one stream that never reached the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapRecord {
    /// Monotonic time of the first lost frame, or of the last good frame when the lost frames'
    /// own times are unknown (device drops, disconnections).
    pub start_ns: u64,
    /// Monotonic time of the last lost frame, or of the next good frame.
    pub stop_ns: u64,
    /// How many frames were lost.
    pub frames_lost: u64,
    /// Why.
    pub cause: DropCause,
    /// Unwrapped device counter of the first lost frame.
    pub first_lost_counter: u64,
}

/// The gap table's columns.
pub struct GapTable {
    id: Column<i64>,
    start_time: Column<f64>,
    stop_time: Column<f64>,
    stream: Column<i32>,
    frames_lost: Column<u32>,
    cause: Column<u8>,
    first_lost_counter: Column<u64>,
}

/// Creates `RecordedStreams` (one row per stream) and the empty `FrameGaps` table.
pub fn create(file: &File, streams: &[StreamSetup]) -> H5Result<GapTable> {
    let acquisition = file.group("/acquisition")?;
    let table = h5::typed_group(
        &acquisition,
        "RecordedStreams",
        "DynamicTable",
        "hdmf-common",
    )?;
    h5::attr_str(
        &table,
        "description",
        "The frame streams recorded in this session, in configuration order.",
    )?;
    h5::attr_str_array(
        &table,
        "colnames",
        &["stream_name", "nominal_fps", "counter_bits"],
    )?;
    let ids: Vec<i64> = (0..streams.len() as i64).collect();
    let id = h5::array_dataset(&table, "id", &ids)?;
    h5::set_type(&id, "ElementIdentifiers", "hdmf-common")?;
    let names: Vec<&str> = streams.iter().map(|s| s.info.name.as_str()).collect();
    let col = h5::str_array_dataset(&table, "stream_name", &names)?;
    h5::vector_data(&col, "Stream (and NWB series) name")?;
    let fps: Vec<f64> = streams.iter().map(|s| s.info.nominal_fps).collect();
    let col = h5::array_dataset(&table, "nominal_fps", &fps)?;
    h5::vector_data(&col, "Configured frame rate, frames per second")?;
    let bits: Vec<u32> = streams.iter().map(|s| s.info.counter_bits).collect();
    let col = h5::array_dataset(&table, "counter_bits", &bits)?;
    h5::vector_data(
        &col,
        "Width in bits of the device frame counter before unwrapping",
    )?;

    let intervals = file.group("/intervals")?;
    let gaps = h5::typed_group(&intervals, "FrameGaps", "TimeIntervals", "core")?;
    h5::attr_str(
        &gaps,
        "description",
        "Runs of frames that never reached this file. start_time/stop_time bracket the loss \
         (times of the lost frames when known, else of the good frames around it).",
    )?;
    h5::attr_str_array(
        &gaps,
        "colnames",
        &[
            "start_time",
            "stop_time",
            "stream",
            "frames_lost",
            "cause",
            "first_lost_counter",
        ],
    )?;
    let causes = DropCause::ALL
        .iter()
        .map(|c| format!("{}={}", *c as u8, c.label()))
        .collect::<Vec<_>>()
        .join(", ");
    let id = column::<i64>(&gaps, "id", None)?;
    h5::set_type(id.dataset(), "ElementIdentifiers", "hdmf-common")?;
    let start_time = column::<f64>(
        &gaps,
        "start_time",
        Some("Start time of the gap, in seconds"),
    )?;
    let stop_time = column::<f64>(&gaps, "stop_time", Some("Stop time of the gap, in seconds"))?;
    let stream = column::<i32>(&gaps, "stream", None)?;
    h5::set_type(stream.dataset(), "DynamicTableRegion", "hdmf-common")?;
    h5::attr_str(
        stream.dataset(),
        "description",
        "Row of acquisition/RecordedStreams that lost the frames",
    )?;
    h5::attr_object_ref(stream.dataset(), "table", file, STREAMS_TABLE)?;
    let frames_lost = column::<u32>(&gaps, "frames_lost", Some("Number of frames lost"))?;
    let cause = column::<u8>(
        &gaps,
        "cause",
        Some(&format!("Why the frames were lost: {causes}")),
    )?;
    let first_lost_counter = column::<u64>(
        &gaps,
        "first_lost_counter",
        Some("Unwrapped device frame counter of the first lost frame"),
    )?;
    Ok(GapTable {
        id,
        start_time,
        stop_time,
        stream,
        frames_lost,
        cause,
        first_lost_counter,
    })
}

fn column<T: hdf5::H5Type + Copy>(
    table: &Group,
    name: &str,
    description: Option<&str>,
) -> H5Result<Column<T>> {
    let ds = h5::extensible::<T>(table, name, &[], 256, None)?;
    if let Some(description) = description {
        h5::vector_data(&ds, description)?;
    }
    Ok(Column::new(ds, &[], 64))
}

impl GapTable {
    /// Queues a gap row of stream `stream`.
    pub fn push(&mut self, stream: usize, gap: &GapRecord, clock: &SessionClock) {
        let row = self.id.rows() as i64;
        self.start_time
            .push_one(clock.seconds(gap.start_ns).max(0.0));
        self.stop_time.push_one(clock.seconds(gap.stop_ns).max(0.0));
        self.stream.push_one(stream as i32);
        self.frames_lost
            .push_one(gap.frames_lost.min(u32::MAX as u64) as u32);
        self.cause.push_one(gap.cause as u8);
        self.first_lost_counter.push_one(gap.first_lost_counter);
        self.id.push_one(row);
    }

    /// Rows queued or written.
    pub fn rows(&self) -> usize {
        self.id.rows()
    }

    /// Writes queued rows; `id` last, so a row exists for readers only when complete.
    pub fn write_pending(&mut self) -> H5Result<()> {
        self.start_time.write_pending()?;
        self.stop_time.write_pending()?;
        self.stream.write_pending()?;
        self.frames_lost.write_pending()?;
        self.cause.write_pending()?;
        self.first_lost_counter.write_pending()?;
        self.id.write_pending()
    }
}
