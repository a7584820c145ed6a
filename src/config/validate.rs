//! Whole-config validation: every problem found is collected with its key located in the
//! text (file:line:column), so `behavd check` can list them all and `run` refuses the first.

use super::names::{MAX_NAME, MAX_SESSION_NAME, file_name_problem, identifier_problem};
use super::{Compression, ConfigError, RigConfig, SourceConfig, locate};

/// Most errors collected from one config (the rest are not worth reading before fixing these).
const MAX_ERRORS: usize = 50;

/// Something `check` points out that does not stop the config from being used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigWarning {
    /// Config file path.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted key it concerns.
    pub key: String,
    /// What to look at.
    pub message: String,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: key `{}`: {}",
            self.file, self.line, self.column, self.key, self.message
        )
    }
}

/// The problems found so far in one config text.
pub(super) struct Problems<'a> {
    text: &'a str,
    origin: &'a str,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigWarning>,
}

impl<'a> Problems<'a> {
    pub fn new(text: &'a str, origin: &'a str) -> Self {
        Self {
            text,
            origin,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records an error about `key`.
    pub fn error(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        if self.errors.len() >= MAX_ERRORS {
            return;
        }
        let key = key.into();
        let (line, column) = locate::position_of_key(self.text, &key);
        self.errors.push(ConfigError::Invalid {
            file: self.origin.to_string(),
            line,
            column,
            key,
            reason: reason.into(),
        });
    }

    /// Records a warning about `key`.
    pub fn warn(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let (line, column) = locate::position_of_key(self.text, &key);
        self.warnings.push(ConfigWarning {
            file: self.origin.to_string(),
            line,
            column,
            key,
            message: message.into(),
        });
    }

    /// Errors and warnings, each in the order of their place in the file.
    pub fn finish(mut self) -> (Vec<ConfigError>, Vec<ConfigWarning>) {
        self.errors
            .sort_by_key(|e| e.position().unwrap_or((usize::MAX, 0)));
        self.warnings.sort_by_key(|w| (w.line, w.column));
        (self.errors, self.warnings)
    }
}

impl RigConfig {
    /// Every problem of the parsed config, located in `text`.
    pub(super) fn review(
        &self,
        text: &str,
        origin: &str,
    ) -> (Vec<ConfigError>, Vec<ConfigWarning>) {
        let mut p = Problems::new(text, origin);
        self.check_names(&mut p);
        self.check_sources(&mut p);
        super::ranges::check(self, &mut p);
        super::stim_check::check(self, &mut p);
        super::daemon::check(self, &mut p);
        super::realtime::check(self, &mut p);
        p.finish()
    }

    fn check_names(&self, p: &mut Problems) {
        if let Some(name) = &self.session.name
            && let Some(problem) = file_name_problem(name, MAX_SESSION_NAME)
        {
            p.error("session.name", format!("the session name {problem}"));
        }
        if let Some(problem) = file_name_problem(&self.session.subject.id, MAX_NAME) {
            p.error(
                "session.subject.id",
                format!("the subject id {problem} (it starts the default session file name)"),
            );
        }
        let ident = |p: &mut Problems, key: String, name: &str| {
            if let Some(problem) = identifier_problem(name) {
                p.error(key, problem);
            }
        };
        for (i, m) in self.model.iter().enumerate() {
            ident(p, format!("model[{i}].name"), &m.name);
        }
        for (i, s) in self.signal.iter().enumerate() {
            ident(p, format!("signal[{i}].name"), &s.name);
            for (j, r) in s.roi.iter().enumerate() {
                ident(p, format!("signal[{i}].roi[{j}].name"), &r.name);
            }
        }
        for (i, r) in self.rule.iter().enumerate() {
            ident(p, format!("rule[{i}].name"), &r.name);
        }
        for (i, o) in self.output.iter().enumerate() {
            ident(p, format!("output[{i}].name"), &o.name);
            if let Some(j) = self.output[..i].iter().position(|q| q.name == o.name) {
                p.error(
                    format!("output[{i}].name"),
                    format!("`{}` is already the name of output[{j}]", o.name),
                );
            }
        }
    }

    fn check_sources(&self, p: &mut Problems) {
        if self.source.is_empty() {
            p.error(
                "source",
                "the rig has no [[source]]; add at least one camera",
            );
        }
        for (i, source) in self.source.iter().enumerate() {
            self.check_source(i, source, p);
        }
        if let Compression::Gzip { level } = self.recording.compression
            && !(1..=9).contains(&level)
        {
            p.error(
                "recording.compression.level",
                format!("{level} is not a gzip level 1–9"),
            );
        }
        if !["M", "F", "U", "O"].contains(&self.session.subject.sex.as_str()) {
            p.error(
                "session.subject.sex",
                format!("`{}` must be one of M, F, U, O", self.session.subject.sex),
            );
        }
    }

    /// The first problem of source `i` (later checks would only repeat it).
    fn check_source(&self, i: usize, source: &SourceConfig, p: &mut Problems) {
        let name = source.name();
        if let Some(problem) = identifier_problem(name) {
            return p.error(format!("source[{i}].name"), problem);
        }
        if let Some(j) = self.source[..i].iter().position(|s| s.name() == name) {
            return p.error(
                format!("source[{i}].name"),
                format!("`{name}` is already the name of source[{j}]"),
            );
        }
        if let SourceConfig::Miniscope(m) = source
            && let Some((key, reason)) = m.problem()
        {
            return p.error(format!("source[{i}].{key}"), reason);
        }
        let fps = source.fps();
        if !(fps > 0.0 && fps <= 1000.0) {
            return p.error(
                format!("source[{i}].fps"),
                format!("{fps} is not a frame rate between 0 and 1000"),
            );
        }
        let (w, h) = source.size();
        if !(8..=8192).contains(&w) || !(8..=8192).contains(&h) {
            let key = if (8..=8192).contains(&w) {
                "height"
            } else {
                "width"
            };
            return p.error(
                format!("source[{i}].{key}"),
                format!("{w}x{h} is not a frame size between 8x8 and 8192x8192"),
            );
        }
        if let SourceConfig::V4l2(v) = source
            && let Some((key, reason)) = v.problem()
        {
            return p.error(format!("source[{i}].{key}"), reason);
        }
        if let Some(Compression::Gzip { level }) = source.compression()
            && !(1..=9).contains(level)
        {
            p.error(
                format!("source[{i}].compression.level"),
                format!("{level} is not a gzip level 1–9"),
            );
        }
    }
}
