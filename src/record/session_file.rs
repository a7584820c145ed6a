//! Creating a session file: the whole tree and every dataset before SWMR starts, then the
//! rings moved next to them.

use hdf5::File;

use super::compress::CompressorPool;
use super::control_table::ControlTable;
use super::gaps::{self, GapTable};
use super::h5;
use super::layout;
use super::loop_writer::OutputWriter;
use super::stream_writer::StreamWriter;
use super::trigger_tables::{LinkEventTable, TriggerTable};
use super::writer::{IN_FLIGHT_PER_STREAM, Session};
use super::{RecordError, RecorderSetup};

/// Creates the file; if that fails part-way, removes what was created (it holds no frames and
/// could not be opened), so a failed start never leaves an unreadable file. On failure the
/// setup comes back (the engine's recorder then stays in standby with its rings).
pub(super) fn open(setup: RecorderSetup) -> Result<Session, (RecordError, Box<RecorderSetup>)> {
    let reserve = match super::reserve::hold_back_space(&setup.path) {
        Ok(r) => r,
        Err(e) => return Err((e, Box::new(setup))),
    };
    let path = setup.path.clone();
    let mut created = false;
    match create(&setup, &mut created) {
        Ok(parts) => {
            let mut s = Session::assemble(setup, parts);
            s.reserve = reserve;
            Ok(s)
        }
        Err(e) => {
            if created {
                let _ = std::fs::remove_file(&path);
            }
            Err((e, Box::new(setup)))
        }
    }
}

/// The file's objects, created before any ring is touched.
struct Created {
    file: File,
    writers: Vec<StreamWriter>,
    gaps: GapTable,
    outputs: Vec<OutputWriter>,
    triggers: Option<TriggerTable>,
    link_events: Option<LinkEventTable>,
    controls: Option<ControlTable>,
    compressor: Option<CompressorPool>,
}

fn create(setup: &RecorderSetup, created: &mut bool) -> Result<Created, RecordError> {
    let path = setup.path.display().to_string();
    let err = |doing: &'static str| {
        let file = path.clone();
        move |source| RecordError::Hdf5 {
            file,
            doing,
            error: source,
        }
    };
    let file = h5::create_session_file(&setup.path).map_err(err("creating the session file"))?;
    *created = true;
    layout::create_file_skeleton(&file, setup).map_err(err("writing metadata"))?;
    let mut writers = Vec::new();
    for stream in &setup.streams {
        writers.push(
            StreamWriter::create(&file, setup, stream, setup.compress_threads)
                .map_err(err("creating stream datasets"))?,
        );
    }
    let gap_table = gaps::create(&file, &setup.streams).map_err(err("creating the gap table"))?;
    let mut outputs = Vec::new();
    for output in &setup.outputs {
        outputs.push(
            OutputWriter::create(&file, output).map_err(err("creating model output datasets"))?,
        );
    }
    let (triggers, link_events) = match &setup.triggers {
        Some(t) => {
            let events = if t.events.is_empty() {
                None
            } else {
                Some(
                    LinkEventTable::create(&file, &t.outputs, &t.devices, &setup.clock)
                        .map_err(err("creating the stimulator event table"))?,
                )
            };
            (
                Some(
                    TriggerTable::create(&file, &t.rules, &t.outputs)
                        .map_err(err("creating the trigger tables"))?,
                ),
                events,
            )
        }
        None => (None, None),
    };
    let controls = match setup.controls {
        Some(_) => {
            Some(ControlTable::create(&file).map_err(err("creating the control-changes table"))?)
        }
        None => None,
    };
    file.flush().map_err(err("flushing the new file"))?;
    file.start_swmr().map_err(err("starting SWMR"))?;
    let uses_workers = writers.iter().any(|w| w.worker_level.is_some());
    let compressor = if uses_workers {
        Some(CompressorPool::start(setup.compress_threads)?)
    } else {
        None
    };
    Ok(Created {
        file,
        writers,
        gaps: gap_table,
        outputs,
        triggers,
        link_events,
        controls,
        compressor,
    })
}

impl Session {
    /// Moves the rings of `setup` next to the file's objects.
    fn assemble(setup: RecorderSetup, c: Created) -> Self {
        let n = setup.streams.len();
        let (triggers, link_events) = match setup.triggers {
            Some(t) => (
                c.triggers.map(|table| (t.records, table)),
                c.link_events.map(|table| (t.events, table)),
            ),
            None => (None, None),
        };
        Session {
            file: c.file,
            reserve: None,
            path: setup.path.display().to_string(),
            clock: setup.clock,
            start_ns: setup.clock.start_mono_ns,
            streams: setup.streams,
            writers: c.writers,
            gaps: c.gaps,
            compressor: c.compressor,
            flush_every: setup.flush_interval,
            submitted: vec![0; n],
            next_to_write: vec![0; n],
            early: (0..n)
                .map(|_| (0..IN_FLIGHT_PER_STREAM).map(|_| None).collect())
                .collect(),
            spare_buffers: Vec::with_capacity(n * IN_FLIGHT_PER_STREAM),
            outputs: setup.outputs.into_iter().zip(c.outputs).collect(),
            triggers,
            link_events,
            controls: setup.controls.zip(c.controls),
            events: None,
            heartbeat: None,
            telemetry: std::sync::Arc::default(),
        }
    }
}
