//! The recorder: one thread owns libhdf5 and writes one NWB-shaped HDF5 file per session.
//!
//! Frames arrive on one SPSC ring per stream and gap records on another; video chunks are
//! compressed on worker threads and written with direct chunk writes; everything is created
//! before SWMR starts, and the file is flushed about once a second so a crash loses at most
//! that much. After a clean close, [`finalize`] prunes empty objects and writes the summary.

mod column;
mod compress;
pub mod control_log;
pub mod control_table;
mod error;
pub mod finalize;
mod gaps;
pub mod h5;
pub mod inspect;
mod layout;
pub mod loop_records;
pub mod loop_writer;
pub mod outage_table;
pub mod replay;
mod reserve;
mod session_file;
pub mod spec;
pub mod standby;
mod stream_writer;
mod transpose;
pub mod trigger_tables;
pub mod trim;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::{RecordError, os_error_of};
pub use gaps::{GAPS_TABLE, GapRecord, STREAMS_TABLE};
pub use layout::NWB_VERSION;
pub use reserve::RESERVE_BYTES;
pub use transpose::transpose_into;
pub use writer::{Recorder, RecordingReport};

use crate::clock::SessionClock;
use crate::config::{Compression, SessionConfig};
use crate::frame::Frame;
use crate::source::StreamInfo;
use crate::stats::StreamStats;

/// Everything the recorder needs to create and fill a session file.
pub struct RecorderSetup {
    /// Output file path.
    pub path: PathBuf,
    /// Session name (NWB `session_id`).
    pub session_name: String,
    /// Session epoch; all timestamps are seconds from it.
    pub clock: SessionClock,
    /// Session metadata.
    pub session: SessionConfig,
    /// Full config text, stored in `general/data_collection`.
    pub config_text: String,
    /// The streams, in config order.
    pub streams: Vec<StreamSetup>,
    /// Time between flushes.
    pub flush_interval: Duration,
    /// Compression threads (0 = deflate on the writer thread).
    pub compress_threads: usize,
    /// Models and signal groups whose outputs to record.
    pub outputs: Vec<loop_records::OutputSetup>,
    /// Rules and their triggers, when the config has rules.
    pub triggers: Option<TriggerSetup>,
    /// Changes made through the live controls, for `acquisition/ControlChanges`.
    pub controls: Option<Arc<control_log::ControlLog>>,
}

/// The rules and the ring of trigger records.
pub struct TriggerSetup {
    /// Rows of the rule table.
    pub rules: Vec<loop_records::RuleRow>,
    /// Stimulator output names.
    pub outputs: Vec<String>,
    /// The triggers, one ring per output.
    pub records: Vec<rtrb::Consumer<loop_records::TriggerRecord>>,
    /// Link events, one ring per serial link.
    pub events: Vec<rtrb::Consumer<loop_records::LinkEvent>>,
    /// The serial outputs, for `general/devices` and the outages open at the session start.
    pub devices: Vec<loop_records::StimulatorDevice>,
}

/// One stream as the recorder sees it.
pub struct StreamSetup {
    /// What the stream is.
    pub info: StreamInfo,
    /// How its video is stored.
    pub compression: Compression,
    /// Whether frames carry simulator ground truth to record.
    pub ground_truth: bool,
    /// Frames to write.
    pub frames: rtrb::Consumer<Frame>,
    /// Gaps to record.
    pub gaps: rtrb::Consumer<GapRecord>,
    /// Counters the recorder updates (`recorded`).
    pub stats: Arc<StreamStats>,
}
