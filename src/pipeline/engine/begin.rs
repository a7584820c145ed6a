//! Beginning a session on a live engine, and when it should end.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Active, Engine};
use crate::clock::{SessionClock, monotonic_ns};
use crate::config::names::{MAX_NAME, MAX_SESSION_NAME, file_name_problem};
use crate::record::loop_records::StimulatorDevice;
use crate::record::standby::BeginRecording;

/// What a session is about; every field overrides `[session]` for this session only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// Subject id (`[session.subject] id`).
    #[serde(default)]
    pub subject: Option<String>,
    /// Session description (`[session] description`).
    #[serde(default)]
    pub description: Option<String>,
    /// Notes, written at the top of the file's `general/notes`.
    #[serde(default)]
    pub notes: Option<String>,
    /// Experimenters as "Last, First" (`[session] experimenter`).
    #[serde(default)]
    pub experimenter: Option<Vec<String>>,
    /// Seconds after which [`Engine::session_end_due`] says the session should end.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Session name (the file's stem; `[session] name`).
    #[serde(default)]
    pub name: Option<String>,
}

/// A session that began.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionStarted {
    /// Session name.
    pub name: String,
    /// The session file.
    pub path: PathBuf,
    /// The session's start, RFC 3339 with the UTC offset.
    pub start_wall: String,
}

/// Why a session did not begin.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    /// A session is already being recorded.
    #[error("a session is already recording")]
    AlreadyRecording,
    /// Too little free disk space (`[recording] min_free_mb`).
    #[error(
        "{}: {} MB free, below [recording] min_free_mb = {} MB; free some space or lower min_free_mb",
        dir.display(), free_bytes / 1_000_000, needed_bytes / 1_000_000
    )]
    LowDisk {
        /// Bytes free.
        free_bytes: u64,
        /// Bytes needed.
        needed_bytes: u64,
        /// The output directory.
        dir: PathBuf,
    },
    /// A field of the request is not acceptable.
    #[error("{field}: {why}")]
    Invalid {
        /// The field, as the request names it.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The session file could not be created (the engine stays live).
    #[error("cannot begin the session: {0}")]
    Failed(String),
}

fn invalid(field: &'static str, why: impl Into<String>) -> BeginError {
    BeginError::Invalid {
        field,
        why: why.into(),
    }
}

impl SessionRequest {
    /// Every field checked, the first problem named.
    fn check(&self) -> Result<(), BeginError> {
        if let Some(d) = self.duration_s
            && !(d.is_finite() && d > 0.0)
        {
            return Err(invalid(
                "duration_s",
                format!("must be a positive number of seconds, not {d}"),
            ));
        }
        if let Some(subject) = &self.subject
            && let Some(problem) = file_name_problem(subject, MAX_NAME)
        {
            return Err(invalid(
                "subject",
                format!("the subject id (part of the file name) {problem}"),
            ));
        }
        if let Some(name) = &self.name
            && let Some(problem) = file_name_problem(name, MAX_SESSION_NAME)
        {
            return Err(invalid("name", format!("the session name {problem}")));
        }
        if let Some(list) = &self.experimenter
            && list.iter().any(|e| e.trim().is_empty())
        {
            return Err(invalid("experimenter", "an experimenter's name is empty"));
        }
        if let Some(d) = &self.description
            && d.trim().is_empty()
        {
            return Err(invalid("description", "is empty"));
        }
        Ok(())
    }
}

impl Engine {
    /// Begins recording: creates the session file (exactly the layout `behavd run` writes)
    /// without reopening a device or restarting a thread, arms every rule, and records
    /// everything stamped from the session clock's start on. Refused while recording, below
    /// `[recording] min_free_mb`, or with a bad request field; on a failure to create the file
    /// the engine stays live.
    pub fn begin(&mut self, request: SessionRequest) -> Result<SessionStarted, BeginError> {
        if self.session.is_some() {
            return Err(BeginError::AlreadyRecording);
        }
        request.check()?;
        if self.recorder_failed() {
            return Err(BeginError::Failed(
                "the recorder thread has stopped; close and reopen the engine".into(),
            ));
        }
        let needed_bytes = self.config.recording.min_free_mb * 1_000_000;
        if needed_bytes > 0 {
            let free_bytes = crate::fsutil::free_bytes(&self.output_dir).map_err(|e| {
                BeginError::Failed(format!(
                    "cannot read the free space of {}: {e}",
                    self.output_dir.display()
                ))
            })?;
            if free_bytes < needed_bytes {
                return Err(BeginError::LowDisk {
                    free_bytes,
                    needed_bytes,
                    dir: self.output_dir.clone(),
                });
            }
        }
        let mut session = self.config.session.clone();
        if let Some(s) = &request.subject {
            session.subject.id = s.clone();
        }
        if let Some(d) = &request.description {
            session.description = d.clone();
        }
        if let Some(e) = &request.experimenter {
            session.experimenter = e.clone();
        }
        let clock = SessionClock::start_now();
        let base_name = request
            .name
            .clone()
            .or_else(|| session.name.clone())
            .unwrap_or_else(|| {
                format!(
                    "{}_{}",
                    session.subject.id,
                    clock.start_wall.format("%Y%m%d-%H%M%S")
                )
            });
        let (name, path) = unused_path(&self.output_dir, &base_name);
        let devices = self.devices_now();
        // Armed before the gate opens: the session's first frames may trigger.
        self.closed_loop.arming.set_all(true);
        self.closed_loop.mark_session_start();
        // The gate first, then the command: the standby recorder keeps what is stamped from
        // the start on in its rings until the command (already queued by then) arrives.
        self.gate.open_at(clock.start_mono_ns);
        let subject = session.subject.id.clone();
        let begun = self.recorder.begin(BeginRecording {
            path: path.clone(),
            session_name: name.clone(),
            clock,
            session,
            devices: Some(devices),
        });
        if let Err(e) = begun {
            self.gate.close();
            if !self.config.daemon.arm_in_live {
                self.closed_loop.arming.set_all(false);
            }
            return Err(BeginError::Failed(format!(
                "cannot start recording to {}: {e}",
                path.display()
            )));
        }
        // From now on what the live controls change is the session's.
        self.controls.log().begin(clock.start_mono_ns);
        tracing::info!(path = %path.display(), "recording started");
        let started = SessionStarted {
            name: name.clone(),
            path: path.clone(),
            start_wall: clock.start_iso8601(),
        };
        self.session = Some(Active {
            name,
            path,
            clock,
            subject,
            duration_s: request.duration_s,
            notes: request.notes,
        });
        Ok(started)
    }

    /// The serial outputs as they are now, for the file's devices and the outages open at the
    /// session start.
    fn devices_now(&self) -> Vec<StimulatorDevice> {
        let mut devices = Vec::new();
        for (index, (name, port, stats)) in self.closed_loop.links().into_iter().enumerate() {
            let Some(stats) = stats else { continue };
            let up = stats.up.load(std::sync::atomic::Ordering::Acquire);
            devices.push(StimulatorDevice {
                output: index.min(u8::MAX as usize) as u8,
                name: name.to_string(),
                description: if up {
                    format!(
                        "stimulator output `{name}` on {port}: {}",
                        stats.info().firmware
                    )
                } else {
                    format!(
                        "stimulator output `{name}` on {port}: not connected at the session start"
                    )
                },
                down_at_start: !up,
            });
        }
        devices
    }

    /// Why the running session should end now, if it should: its duration is reached, the
    /// disk is below `[recording] stop_free_mb`, the recorder failed, or every capture ended.
    /// The last two are reported while live too (the engine is of no use then).
    pub fn session_end_due(&self) -> Option<String> {
        if let Some(s) = &self.session {
            if let Some(d) = s.duration_s
                && s.clock.seconds(monotonic_ns()) >= d
            {
                return Some(format!("duration of {d} s reached"));
            }
            let stop_bytes = self.config.recording.stop_free_mb * 1_000_000;
            if stop_bytes > 0
                && let Ok(free) = crate::fsutil::free_bytes(&self.output_dir)
                && free < stop_bytes
            {
                return Some(format!(
                    "free disk space on {} fell to {} MB, below [recording] stop_free_mb = {} MB",
                    self.output_dir.display(),
                    free / 1_000_000,
                    self.config.recording.stop_free_mb
                ));
            }
        }
        if self.recorder_failed() {
            return Some("the recorder stopped with an error".to_string());
        }
        if self.all_captures_ended() {
            return Some("every source stopped".to_string());
        }
        None
    }
}

/// `dir/name.nwb`, or `dir/name-2.nwb`, ... if that exists already.
fn unused_path(dir: &Path, base: &str) -> (String, PathBuf) {
    let mut name = base.to_string();
    let mut n = 1;
    loop {
        let path = dir.join(format!("{name}.nwb"));
        if !path.exists() {
            return (name, path);
        }
        n += 1;
        name = format!("{base}-{n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_request_fields_are_named() {
        let bad = |r: SessionRequest| match r.check() {
            Err(BeginError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            bad(SessionRequest {
                duration_s: Some(-1.0),
                ..Default::default()
            }),
            "duration_s"
        );
        assert_eq!(
            bad(SessionRequest {
                subject: Some("a/b".into()),
                ..Default::default()
            }),
            "subject"
        );
        assert!(SessionRequest::default().check().is_ok());
    }

    #[test]
    fn low_disk_names_the_directory_and_both_numbers() {
        let e = BeginError::LowDisk {
            free_bytes: 200_000_000,
            needed_bytes: 1_024_000_000,
            dir: PathBuf::from("/data/sessions"),
        };
        let text = e.to_string();
        for part in ["/data/sessions", "200 MB", "1024 MB", "min_free_mb"] {
            assert!(text.contains(part), "{part} not in {text}");
        }
    }
}
