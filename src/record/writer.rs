//! The recorder thread: drains the rings into the session file until every producer is gone.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdf5::File;

use super::compress::{CompressJob, CompressedChunk, CompressorPool};
use super::control_log::ControlLog;
use super::control_table::ControlTable;
use super::gaps::GapTable;
use super::h5;
use super::loop_records::{LinkEvent, OutputSetup, TriggerRecord};
use super::loop_writer::OutputWriter;
use super::reserve::Reserve;
use super::session_file::open;
use super::standby::EventSink;
use super::stream_writer::StreamWriter;
use super::trigger_tables::{LinkEventTable, TriggerTable};
use super::{RecordError, RecorderSetup, StreamSetup};
use crate::clock::SessionClock;
use crate::stats::DropCause;
use crate::telemetry::RecorderTelemetry;

/// Chunks one stream may have in the compression pool at once.
pub(super) const IN_FLIGHT_PER_STREAM: usize = 16;

/// What the recorder wrote.
#[derive(Debug, Clone)]
pub struct RecordingReport {
    /// The session file.
    pub path: PathBuf,
    /// Frames written per stream, in config order.
    pub frames: Vec<u64>,
    /// Gap rows written.
    pub gap_rows: usize,
    /// Rows written per model / signal group, in setup order.
    pub output_rows: Vec<usize>,
    /// Trigger rows written.
    pub trigger_rows: usize,
    /// Why recording stopped before every producer was done (a full disk, say), in words.
    /// The file was still closed: every frame counted in `frames` is in it with its metadata.
    pub failure: Option<String>,
}

/// Frames taken from one stream's ring before the recorder turns to the next stream.
const FRAMES_PER_PASS: usize = 8;

/// A running recorder thread.
pub struct Recorder {
    handle: JoinHandle<Result<RecordingReport, RecordError>>,
    failed: Arc<AtomicBool>,
    telemetry: Arc<RecorderTelemetry>,
}

impl Recorder {
    /// Creates the file and its whole tree, starts SWMR, and spawns the writer thread.
    /// Returns once the file exists, so capture can start.
    pub fn start(setup: RecorderSetup) -> Result<Self, RecordError> {
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        let telemetry = Arc::new(RecorderTelemetry::default());
        let flushes = Arc::clone(&telemetry);
        let handle = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || run(setup, ready_tx, &flag, flushes))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                handle,
                failed,
                telemetry,
            }),
            Ok(Err(())) | Err(_) => Err(handle
                .join()
                .expect("recorder thread panicked")
                .expect_err("failed start reports an error")),
        }
    }

    /// Whether the writer thread has ended (before every producer is gone, that means it failed).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// The recorder's live flush counters.
    pub fn telemetry(&self) -> &Arc<RecorderTelemetry> {
        &self.telemetry
    }

    /// Whether a write failed (set at once; the thread then closes the file and ends).
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Waits until every frame producer has gone and the file is closed. After a failed write
    /// the report carries the failure; `Err` means the file could not even be closed.
    pub fn join(self) -> Result<RecordingReport, RecordError> {
        self.handle.join().expect("recorder thread panicked")
    }
}

/// One session file being written, with the rings that feed it.
pub(super) struct Session {
    pub(super) file: File,
    pub(super) reserve: Option<Reserve>,
    pub(super) path: String,
    pub(super) clock: SessionClock,
    pub(super) streams: Vec<StreamSetup>,
    pub(super) writers: Vec<StreamWriter>,
    pub(super) gaps: GapTable,
    pub(super) compressor: Option<CompressorPool>,
    pub(super) flush_every: Duration,
    /// Per stream: next sequence number to submit and to write, and chunks that came back early.
    pub(super) submitted: Vec<u64>,
    pub(super) next_to_write: Vec<u64>,
    pub(super) early: Vec<Vec<Option<CompressedChunk>>>,
    pub(super) spare_buffers: Vec<Vec<u8>>,
    pub(super) outputs: Vec<(OutputSetup, OutputWriter)>,
    pub(super) triggers: Option<(Vec<rtrb::Consumer<TriggerRecord>>, TriggerTable)>,
    pub(super) link_events: Option<(Vec<rtrb::Consumer<LinkEvent>>, LinkEventTable)>,
    /// Records stamped before this (CLOCK_MONOTONIC) are not the session's and are dropped.
    pub(super) start_ns: u64,
    /// Where triggers, drops and link changes are announced (the engine's event ring).
    pub(super) events: Option<EventSink>,
    /// The recorder thread's progress mark.
    pub(super) heartbeat: Option<Arc<crate::heartbeat::Heartbeat>>,
    pub(super) controls: Option<(Arc<ControlLog>, ControlTable)>,
    pub(super) telemetry: Arc<RecorderTelemetry>,
}

fn run(
    setup: RecorderSetup,
    ready: crossbeam_channel::Sender<Result<(), ()>>,
    failed: &AtomicBool,
    telemetry: Arc<RecorderTelemetry>,
) -> Result<RecordingReport, RecordError> {
    crate::realtime::enter(crate::realtime::Role::Recorder);
    let mut session = match open(setup) {
        Ok(mut s) => {
            s.telemetry = telemetry;
            let _ = ready.send(Ok(()));
            s
        }
        Err((e, _)) => {
            let _ = ready.send(Err(()));
            return Err(e);
        }
    };
    // Started on its own (not by an engine): every record it is given is the session's.
    session.start_ns = 0;
    record_session(session, failed, &std::sync::OnceLock::new())
}

/// Records until every producer is gone, then closes the file.
pub(super) fn record_session(
    mut session: Session,
    failed: &AtomicBool,
    failure_text: &std::sync::OnceLock<String>,
) -> Result<RecordingReport, RecordError> {
    let failure = match session.record_until_drained() {
        Ok(()) => None,
        Err(e) => {
            let _ = failure_text.set(e.to_string());
            failed.store(true, Ordering::Relaxed);
            tracing::error!(error = %e, "recording stopped; closing the file with what it holds");
            session.salvage();
            Some(e)
        }
    };
    let report = RecordingReport {
        path: PathBuf::from(&session.path),
        frames: session
            .writers
            .iter()
            .map(StreamWriter::rows_complete)
            .collect(),
        gap_rows: session.gaps.rows(),
        output_rows: session.outputs.iter().map(|(_, w)| w.rows()).collect(),
        trigger_rows: session.triggers.as_ref().map_or(0, |(_, t)| t.rows()),
        failure: failure.as_ref().map(ToString::to_string),
    };
    let lost: Vec<u64> = (0..session.streams.len())
        .map(|i| {
            let w = &session.writers[i];
            (session.submitted[i] - session.next_to_write[i])
                + (w.frames_written() - w.rows_complete())
        })
        .collect();
    let path = session.path.clone();
    drop(session.compressor.take());
    let reserve = session.reserve.take();
    let closed = session.file.close().map_err(|source| RecordError::Hdf5 {
        file: path,
        doing: "closing the file",
        error: source,
    });
    drop(reserve);
    if failure.is_some() {
        discard_until_gone(&mut session.streams, &lost, session.heartbeat.as_deref());
    }
    match (closed, failure) {
        (Ok(()), _) => Ok(report),
        (Err(close), None) => Err(close),
        // The file could not be closed after the first failure: report that first failure.
        (Err(close), Some(first)) => {
            tracing::error!(error = %close, "closing the file after the failure failed too");
            Err(first)
        }
    }
}

/// After a failure: counts the frames that were taken but are not in the file, and those still
/// arriving until capture stops, as dropped (`recorder_behind`), so that every captured frame
/// is either in the file or counted.
fn discard_until_gone(
    streams: &mut [StreamSetup],
    lost: &[u64],
    heartbeat: Option<&crate::heartbeat::Heartbeat>,
) {
    for (stream, &n) in streams.iter().zip(lost) {
        if n > 0 {
            stream.stats.add_dropped(DropCause::RecorderBehind, n);
        }
    }
    loop {
        if let Some(h) = heartbeat {
            h.beat();
        }
        let mut gone = true;
        for stream in streams.iter_mut() {
            // Checked before popping: a producer gone then has pushed its last frame.
            gone &= stream.frames.is_abandoned() && stream.gaps.is_abandoned();
            while stream.frames.pop().is_ok() {
                stream.stats.add_dropped(DropCause::RecorderBehind, 1);
            }
            while stream.gaps.pop().is_ok() {}
        }
        if gone {
            return;
        }
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

impl Session {
    /// Queues one link event for the stimulator event table (if the session has one).
    pub(super) fn record_link_event(&mut self, e: &LinkEvent) {
        if let Some((_, table)) = &mut self.link_events {
            table.push(e, &self.clock);
        }
    }

    fn hdf5_error(&self, doing: &'static str) -> impl FnOnce(hdf5::Error) -> RecordError + use<> {
        let file = self.path.clone();
        move |source| RecordError::Hdf5 {
            file,
            doing,
            error: source,
        }
    }

    /// Main loop: move frames and gaps into the file, flush on the interval, stop when every
    /// producer is gone and nothing is left in flight.
    fn record_until_drained(&mut self) -> Result<(), RecordError> {
        let mut last_flush = Instant::now();
        loop {
            if let Some(h) = &self.heartbeat {
                h.beat();
            }
            let mut progressed = self.take_frames()?;
            progressed |= self.write_finished_chunks()?;
            progressed |= self.take_gaps();
            progressed |= self.take_loop_records();
            if last_flush.elapsed() >= self.flush_every {
                self.flush()?;
                last_flush = Instant::now();
            }
            if self.all_drained() {
                break;
            }
            if !progressed {
                self.wait_briefly();
            }
        }
        if let Some((_, table)) = &mut self.link_events {
            table.close_outages(crate::clock::monotonic_ns(), &self.clock);
        }
        // The control plane is not a producer the recorder waits for: what it has queued by
        // now is the session's last.
        self.take_control_changes();
        self.flush()
    }

    /// Pops frames from every ring: compressed streams go to the pool (bounded in flight),
    /// the others are written here.
    fn take_frames(&mut self) -> Result<bool, RecordError> {
        let mut progressed = false;
        for i in 0..self.streams.len() {
            // At most a few frames per stream per pass, so one fast stream cannot starve the others.
            for _ in 0..FRAMES_PER_PASS {
                if let Some(level) = self.writers[i].worker_level {
                    let in_flight = self.submitted[i] - self.next_to_write[i];
                    if in_flight as usize >= IN_FLIGHT_PER_STREAM {
                        break;
                    }
                    let Ok(frame) = self.streams[i].frames.pop() else {
                        break;
                    };
                    progressed = true;
                    if frame.meta().stamp.device_time_ns < self.start_ns {
                        continue; // captured before the session: not the session's
                    }
                    let out = self.spare_buffers.pop().unwrap_or_default();
                    let job = CompressJob {
                        stream: i,
                        seq: self.submitted[i],
                        frame,
                        geometry: self.writers[i].geometry(),
                        level,
                        out,
                    };
                    self.submitted[i] += 1;
                    self.compressor
                        .as_ref()
                        .expect("pool exists when a stream uses it")
                        .submit(job);
                } else {
                    let Ok(frame) = self.streams[i].frames.pop() else {
                        break;
                    };
                    progressed = true;
                    if frame.meta().stamp.device_time_ns < self.start_ns {
                        continue; // captured before the session: not the session's
                    }
                    let on_error = self.hdf5_error("writing a frame");
                    if let Err(e) =
                        self.writers[i].write_frame(frame.pixels(), frame.meta(), &self.clock)
                    {
                        // Taken from the ring but not in the file: counted, like every frame
                        // the failure keeps out of the file.
                        self.streams[i]
                            .stats
                            .add_dropped(DropCause::RecorderBehind, 1);
                        return Err(on_error(e));
                    }
                    self.streams[i]
                        .stats
                        .add_recorded(frame.pixels().len() as u64);
                }
                progressed = true;
            }
        }
        Ok(progressed)
    }

    /// Writes compressed chunks in frame order as they come back from the pool.
    fn write_finished_chunks(&mut self) -> Result<bool, RecordError> {
        let Some(pool) = &self.compressor else {
            return Ok(false);
        };
        let mut progressed = false;
        while let Ok(chunk) = pool.results().try_recv() {
            stash(&mut self.early, chunk);
            progressed = true;
        }
        for i in 0..self.streams.len() {
            loop {
                let slot = (self.next_to_write[i] % IN_FLIGHT_PER_STREAM as u64) as usize;
                let Some(chunk) = self.early[i][slot].take() else {
                    break;
                };
                let on_error = self.hdf5_error("writing a compressed chunk");
                self.writers[i]
                    .write_compressed_chunk(&chunk.bytes, &chunk.meta, &self.clock)
                    .map_err(on_error)?;
                let g = self.writers[i].geometry();
                self.streams[i].stats.add_recorded(g.frame_bytes() as u64);
                self.next_to_write[i] += 1;
                self.spare_buffers.push(chunk.bytes);
            }
        }
        Ok(progressed)
    }

    fn take_gaps(&mut self) -> bool {
        let mut progressed = false;
        for i in 0..self.streams.len() {
            while let Ok(mut gap) = self.streams[i].gaps.pop() {
                progressed = true;
                if let Some(events) = &mut self.events {
                    events.gap(i, &gap);
                }
                // A gap that ended before the session is not the session's; one open at its
                // start begins at 0 s (the frames it lost were counted in the session).
                if gap.stop_ns < self.start_ns {
                    continue;
                }
                gap.start_ns = gap.start_ns.max(self.start_ns);
                self.gaps.push(i, &gap, &self.clock);
            }
        }
        progressed
    }

    fn take_loop_records(&mut self) -> bool {
        let mut progressed = false;
        let start = self.start_ns;
        for (setup, writer) in &mut self.outputs {
            while let Ok(record) = setup.records.pop() {
                progressed = true;
                if record.capture_ns >= start {
                    writer.push(&record, &self.clock);
                }
            }
        }
        if let Some((rings, table)) = &mut self.triggers {
            for ring in rings {
                while let Ok(t) = ring.pop() {
                    progressed = true;
                    let in_session = t.capture_ns >= start;
                    if let Some(events) = &mut self.events {
                        events.trigger(&t, in_session);
                    }
                    if in_session {
                        table.push(&t, &self.clock);
                    }
                }
            }
        }
        if let Some((rings, table)) = &mut self.link_events {
            for ring in rings {
                while let Ok(e) = ring.pop() {
                    progressed = true;
                    if let Some(events) = &mut self.events {
                        events.link(&e);
                    }
                    if e.received_ns >= start {
                        table.push(&e, &self.clock);
                    }
                }
            }
        }
        progressed | self.take_control_changes()
    }

    /// Rows of the control-changes table; one from before this session started (a change
    /// that raced the previous session's end) is not this session's and is left out.
    fn take_control_changes(&mut self) -> bool {
        let mut progressed = false;
        if let Some((log, table)) = &mut self.controls {
            while let Some(change) = log.pop() {
                if change.time_ns >= self.clock.start_mono_ns {
                    table.push(&change, &self.clock);
                }
                progressed = true;
            }
        }
        progressed
    }

    fn flush(&mut self) -> Result<(), RecordError> {
        let start_ns = crate::clock::monotonic_ns();
        self.write_everything(false)?;
        self.telemetry
            .flushed(start_ns, crate::clock::monotonic_ns());
        Ok(())
    }

    /// After a failed write: stop taking frames, give back the reserved space, and write every
    /// buffered row that still fits (each part tried on its own), so the file closes with as
    /// much as possible; `finalize` cuts the rest to equal lengths.
    fn salvage(&mut self) {
        drop(self.compressor.take());
        if let Some(reserve) = &mut self.reserve {
            reserve.release();
        }
        if let Some((_, table)) = &mut self.link_events {
            table.close_outages(crate::clock::monotonic_ns(), &self.clock);
        }
        if let Err(e) = self.write_everything(true) {
            tracing::warn!(error = %e, "not every buffered row fit after the failure; the file keeps the complete rows");
        }
    }

    /// Writes every buffered row (data before timestamps, a table's `id` last) and flushes.
    /// `keep_going`: after a part fails, try the others anyway and return the first error.
    fn write_everything(&mut self, keep_going: bool) -> Result<(), RecordError> {
        let mut first: Option<RecordError> = None;
        let path = self.path.clone();
        let mut check = |result: hdf5::Result<()>, doing: &'static str| match result {
            Ok(()) => Ok(()),
            Err(source) => {
                let e = RecordError::Hdf5 {
                    file: path.clone(),
                    doing,
                    error: source,
                };
                if keep_going {
                    first.get_or_insert(e);
                    Ok(())
                } else {
                    Err(e)
                }
            }
        };
        for writer in &mut self.writers {
            check(writer.write_pending(), "writing frame metadata")?;
        }
        for (_, writer) in &mut self.outputs {
            check(writer.write_pending(), "writing model outputs")?;
        }
        if let Some((_, table)) = &mut self.triggers {
            check(table.write_pending(), "writing triggers")?;
        }
        if let Some((_, table)) = &mut self.link_events {
            check(table.write_pending(), "writing stimulator events")?;
        }
        if let Some((_, table)) = &mut self.controls {
            check(table.write_pending(), "writing control changes")?;
        }
        check(self.gaps.write_pending(), "writing the gap table")?;
        check(self.file.flush(), "flushing")?;
        if let Some(e) = first {
            return Err(e);
        }
        tracing::debug!(
            frames = ?self.writers.iter().map(StreamWriter::frames_written).collect::<Vec<_>>(),
            gaps = self.gaps.rows(),
            metadata_cache_bytes = h5::metadata_cache_bytes(&self.file),
            "flushed session file"
        );
        Ok(())
    }

    fn all_drained(&self) -> bool {
        let loop_drained =
            self.outputs
                .iter()
                .all(|(s, _)| s.records.is_abandoned() && s.records.is_empty())
                && self.triggers.as_ref().is_none_or(|(rings, _)| {
                    rings.iter().all(|r| r.is_abandoned() && r.is_empty())
                })
                && self.link_events.as_ref().is_none_or(|(rings, _)| {
                    rings.iter().all(|r| r.is_abandoned() && r.is_empty())
                });
        loop_drained
            && self.streams.iter().enumerate().all(|(i, s)| {
                s.frames.is_abandoned()
                    && s.frames.is_empty()
                    && s.gaps.is_abandoned()
                    && s.gaps.is_empty()
                    && self.submitted[i] == self.next_to_write[i]
            })
    }

    /// Waits for the next compressed chunk or about a millisecond, whichever comes first.
    fn wait_briefly(&mut self) {
        let in_flight = (0..self.streams.len()).any(|i| self.submitted[i] > self.next_to_write[i]);
        match &self.compressor {
            Some(pool) if in_flight => {
                if let Ok(chunk) = pool.results().recv_timeout(Duration::from_millis(2)) {
                    stash(&mut self.early, chunk);
                }
            }
            _ => std::thread::park_timeout(Duration::from_millis(1)),
        }
    }
}

/// Keeps a chunk that came back from the pool in its stream's reorder window until its turn.
fn stash(early: &mut [Vec<Option<CompressedChunk>>], chunk: CompressedChunk) {
    let slot = (chunk.seq % IN_FLIGHT_PER_STREAM as u64) as usize;
    let stream = chunk.stream;
    early[stream][slot] = Some(chunk);
}
