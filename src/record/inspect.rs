//! Reads a session file back: what `behavd inspect` shows.

use std::collections::BTreeMap;
use std::path::Path;

use hdf5::types::VarLenUnicode;
use hdf5::{File, Group, OpenMode};
use serde::Serialize;

use super::gaps::{GAPS_TABLE, STREAMS_TABLE};
use crate::stats::DropCause;

/// What a session file holds.
#[derive(Debug, Clone, Serialize)]
pub struct SessionFileReport {
    /// The file.
    pub path: String,
    /// File size in bytes.
    pub file_bytes: u64,
    /// Whether the file was still open for writing (or its writer crashed): read in SWMR mode.
    pub open_for_write: bool,
    /// NWB version declared.
    pub nwb_version: String,
    /// Session metadata from the root and `general/`.
    pub metadata: BTreeMap<String, String>,
    /// Video streams.
    pub streams: Vec<StreamReport>,
    /// Gap rows, in file order.
    pub gaps: Vec<GapReport>,
}

/// One video stream in the file.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    /// Series name.
    pub name: String,
    /// NWB type (`OnePhotonSeries`, `ImageSeries`).
    pub neurodata_type: String,
    /// Stored frames.
    pub frames: u64,
    /// Stored shape of `data`.
    pub shape: Vec<usize>,
    /// First and last timestamps, seconds from session start.
    pub first_s: Option<f64>,
    /// Last timestamp.
    pub last_s: Option<f64>,
    /// Mean frame rate over the stored frames.
    pub fps: Option<f64>,
    /// Frames lost per cause, summed over the gap table.
    pub dropped: BTreeMap<String, u64>,
}

/// One row of the gap table.
#[derive(Debug, Clone, Serialize)]
pub struct GapReport {
    /// Stream that lost frames.
    pub stream: String,
    /// Start, seconds.
    pub start_s: f64,
    /// Stop, seconds.
    pub stop_s: f64,
    /// Frames lost.
    pub frames_lost: u32,
    /// Cause label.
    pub cause: String,
    /// Device counter of the first lost frame.
    pub first_lost_counter: u64,
}

/// Why a session file could not be reported on.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The path is not a regular file (a FIFO, a directory, a device, missing).
    #[error(transparent)]
    Path(#[from] crate::fsutil::PathError),
    /// libhdf5 could not open or read it.
    #[error(transparent)]
    Hdf5(#[from] hdf5::Error),
    /// A readable HDF5 file that behavd did not write.
    #[error(
        "{path} is an HDF5 file but not a behavd session file: it has no general/source_script naming behavd ({found})"
    )]
    NotASession {
        /// The file.
        path: String,
        /// What it has instead, in words.
        found: String,
    },
}

/// Reads the report of a session file (falling back to an SWMR read for files still being
/// written or left by a crashed writer).
pub fn inspect(path: &Path) -> Result<SessionFileReport, InspectError> {
    crate::fsutil::check_regular_file(path, "session file")?;
    let (file, open_for_write) = match File::open(path) {
        Ok(f) => (f, false),
        Err(plain) => match File::open_as(path, OpenMode::ReadSWMR) {
            Ok(f) => (f, true),
            Err(_) => return Err(plain.into()),
        },
    };
    let script = read_string(&file, "general/source_script");
    if !script.as_deref().is_some_and(|s| s.starts_with("behavd")) {
        let found = match script {
            Some(s) => format!("source_script is `{s}`"),
            None => format!(
                "top-level objects: {}",
                file.member_names()
                    .map(|m| if m.is_empty() {
                        "none".into()
                    } else {
                        m.join(", ")
                    })
                    .unwrap_or_else(|_| "unreadable".into())
            ),
        };
        return Err(InspectError::NotASession {
            path: path.display().to_string(),
            found,
        });
    }
    let file_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let nwb_version = file
        .attr("nwb_version")
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map(|v| v.to_string())
        .unwrap_or_default();
    let mut metadata = BTreeMap::new();
    for (key, path) in [
        ("identifier", "identifier"),
        ("session_description", "session_description"),
        ("session_start_time", "session_start_time"),
        ("session_id", "general/session_id"),
        ("lab", "general/lab"),
        ("institution", "general/institution"),
        ("source_script", "general/source_script"),
        ("subject_id", "general/subject/subject_id"),
        ("species", "general/subject/species"),
        ("notes", "general/notes"),
    ] {
        if let Some(value) = read_string(&file, path) {
            metadata.insert(key.to_string(), value);
        }
    }
    let gaps = read_gaps(&file).unwrap_or_default();
    let mut streams = Vec::new();
    let acquisition = file.group("acquisition")?;
    for name in acquisition.member_names()? {
        let Ok(group) = acquisition.group(&name) else {
            continue;
        };
        let kind = type_of(&group);
        if kind != "OnePhotonSeries" && kind != "ImageSeries" {
            continue;
        }
        streams.push(stream_report(&name, kind, &group, &gaps)?);
    }
    Ok(SessionFileReport {
        path: path.display().to_string(),
        file_bytes,
        open_for_write,
        nwb_version,
        metadata,
        streams,
        gaps,
    })
}

fn stream_report(
    name: &str,
    kind: String,
    group: &Group,
    gaps: &[GapReport],
) -> hdf5::Result<StreamReport> {
    let data = group.dataset("data")?;
    let shape = data.shape();
    let timestamps: Vec<f64> = group.dataset("timestamps")?.read_raw()?;
    let frames = shape.first().copied().unwrap_or(0).min(timestamps.len()) as u64;
    let first_s = timestamps.first().copied();
    let last_s = timestamps.get(frames.saturating_sub(1) as usize).copied();
    let fps = match (first_s, last_s) {
        (Some(a), Some(b)) if frames > 1 && b > a => Some((frames - 1) as f64 / (b - a)),
        _ => None,
    };
    let mut dropped: BTreeMap<String, u64> = DropCause::ALL
        .iter()
        .map(|c| (c.label().to_string(), 0))
        .collect();
    for gap in gaps.iter().filter(|g| g.stream == name) {
        *dropped.entry(gap.cause.clone()).or_default() += gap.frames_lost as u64;
    }
    Ok(StreamReport {
        name: name.to_string(),
        neurodata_type: kind,
        frames,
        shape,
        first_s,
        last_s,
        fps,
        dropped,
    })
}

fn read_gaps(file: &File) -> hdf5::Result<Vec<GapReport>> {
    let Ok(table) = file.group(GAPS_TABLE) else {
        return Ok(Vec::new());
    };
    let names: Vec<VarLenUnicode> = file
        .dataset(&format!("{STREAMS_TABLE}/stream_name"))?
        .read_raw()?;
    let rows = table.dataset("id")?.shape()[0];
    let start: Vec<f64> = table.dataset("start_time")?.read_raw()?;
    let stop: Vec<f64> = table.dataset("stop_time")?.read_raw()?;
    let stream: Vec<i32> = table.dataset("stream")?.read_raw()?;
    let lost: Vec<u32> = table.dataset("frames_lost")?.read_raw()?;
    let cause: Vec<u8> = table.dataset("cause")?.read_raw()?;
    let first: Vec<u64> = table.dataset("first_lost_counter")?.read_raw()?;
    Ok((0..rows)
        .map(|i| GapReport {
            stream: names
                .get(stream[i] as usize)
                .map_or_else(|| format!("#{}", stream[i]), |n| n.to_string()),
            start_s: start[i],
            stop_s: stop[i],
            frames_lost: lost[i],
            cause: DropCause::from_code(cause[i])
                .map_or_else(|| format!("code {}", cause[i]), |c| c.label().to_string()),
            first_lost_counter: first[i],
        })
        .collect())
}

fn read_string(file: &File, path: &str) -> Option<String> {
    file.dataset(path)
        .ok()?
        .read_scalar::<VarLenUnicode>()
        .ok()
        .map(|v| v.to_string())
}

fn type_of(group: &Group) -> String {
    group
        .attr("neurodata_type")
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map(|v| v.to_string())
        .unwrap_or_default()
}

impl std::fmt::Display for SessionFileReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}  ({:.1} MB, NWB {})",
            self.path,
            self.file_bytes as f64 / 1e6,
            self.nwb_version
        )?;
        if self.open_for_write {
            writeln!(
                f,
                "  note: the file is still open for writing, or its writer stopped without closing it (read in SWMR mode)"
            )?;
        }
        for key in [
            "session_id",
            "session_start_time",
            "subject_id",
            "source_script",
        ] {
            if let Some(v) = self.metadata.get(key) {
                writeln!(f, "  {key}: {v}")?;
            }
        }
        writeln!(f, "  streams:")?;
        for s in &self.streams {
            let duration = match (s.first_s, s.last_s) {
                (Some(a), Some(b)) => format!("{:.3}–{:.3} s", a, b),
                _ => "empty".into(),
            };
            let dropped: u64 = s.dropped.values().sum();
            let causes = s
                .dropped
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            writeln!(
                f,
                "    {:<16} {:<16} {:>7} frames  {:?}  {}  {}  dropped {}{}",
                s.name,
                s.neurodata_type,
                s.frames,
                s.shape,
                duration,
                s.fps.map_or("-".into(), |x| format!("{x:.2} fps")),
                dropped,
                if causes.is_empty() {
                    String::new()
                } else {
                    format!(" ({causes})")
                }
            )?;
        }
        writeln!(f, "  gaps: {}", self.gaps.len())?;
        for g in self.gaps.iter().take(20) {
            writeln!(
                f,
                "    {:<16} {:>9.3}–{:<9.3} s  {:>5} frames  {}  (first lost counter {})",
                g.stream, g.start_s, g.stop_s, g.frames_lost, g.cause, g.first_lost_counter
            )?;
        }
        if self.gaps.len() > 20 {
            writeln!(f, "    ... {} more", self.gaps.len() - 20)?;
        }
        if let Some(notes) = self.metadata.get("notes") {
            writeln!(f, "  notes:")?;
            for line in notes.lines() {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}
