//! Config errors that say where (file, line, column, key) and what to do.

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read config: {reason}")]
    Io {
        /// Config file path.
        file: String,
        /// OS error.
        reason: String,
    },
    /// The text is not valid TOML or does not match the schema.
    #[error("{file}:{line}:{column}: key `{key}`: {reason}{}", suggestion_text(.suggestion))]
    Parse {
        /// Config file path.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Dotted path of the offending key, e.g. `source[1].fps`.
        key: String,
        /// What is wrong.
        reason: String,
        /// The nearest valid key or value, for typos.
        suggestion: Option<String>,
    },
    /// The text itself is unusable at a place no key can be named for: bytes that are not
    /// UTF-8, a carriage return without a line feed, a TOML syntax error outside any key.
    #[error("{file}:{line}:{column}: {reason}")]
    Text {
        /// Config file path.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, naming the line's text where that helps.
        reason: String,
    },
    /// The values parse but make no sense together.
    #[error("{file}:{line}:{column}: key `{key}`: {reason}")]
    Invalid {
        /// Config file path.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Dotted path of the offending key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    /// The config file (or origin) the error is about.
    pub fn file(&self) -> &str {
        match self {
            ConfigError::Io { file, .. }
            | ConfigError::Parse { file, .. }
            | ConfigError::Text { file, .. }
            | ConfigError::Invalid { file, .. } => file,
        }
    }

    /// 1-based (line, column), when the error has a place in the text.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Parse { line, column, .. }
            | ConfigError::Text { line, column, .. }
            | ConfigError::Invalid { line, column, .. } => Some((*line, *column)),
        }
    }

    /// The dotted key the error concerns, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Parse { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Io { .. } | ConfigError::Text { .. } => None,
        }
    }

    /// What is wrong, without the location (the suggestion included).
    pub fn reason(&self) -> String {
        match self {
            ConfigError::Parse {
                reason, suggestion, ..
            } => format!("{reason}{}", suggestion_text(suggestion)),
            ConfigError::Io { reason, .. }
            | ConfigError::Text { reason, .. }
            | ConfigError::Invalid { reason, .. } => reason.clone(),
        }
    }
}

fn suggestion_text(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

/// Converts a deserialisation error into a [`ConfigError::Parse`] with position and suggestion.
pub(super) fn from_toml(
    err: serde_path_to_error::Error<toml::de::Error>,
    text: &str,
    origin: &str,
) -> ConfigError {
    let mut key = err.path().to_string();
    let inner = err.into_inner();
    let mut reason = inner.message().trim().to_string();
    let mut offset = inner.span().map(|s| s.start);
    if let Some(index) = source_index(&key)
        && let Some((path, at, message)) = super::reparse::source_error(text, index)
    {
        (key, offset, reason) = (path, at, message);
    }
    let (line, column) = match offset {
        Some(offset) => super::locate::line_column(text, offset),
        None => super::locate::position_of_key(text, &key),
    };
    let key = match offending_name(&reason) {
        Some(name) if key == "." || key.is_empty() => name.to_string(),
        Some(name) if !key.ends_with(name) => format!("{key}.{name}"),
        _ => key,
    };
    let reason = super::text::reason_in_words(&reason);
    if key == "." || key.is_empty() {
        // A syntax error: serde never reached a key. Name the key written on the line, or
        // the line itself.
        return match super::text::key_on_line(text, line) {
            Some(key) => ConfigError::Parse {
                file: origin.to_string(),
                line,
                column,
                key,
                reason,
                suggestion: None,
            },
            None => ConfigError::Text {
                file: origin.to_string(),
                line,
                column,
                reason: format!("{reason} (in {})", super::text::describe_line(text, line)),
            },
        };
    }
    ConfigError::Parse {
        file: origin.to_string(),
        line,
        column,
        suggestion: suggest(&reason),
        key,
        reason,
    }
}

/// `Some(i)` when `path` is exactly `source[i]` (an error serde could not place inside the table).
fn source_index(path: &str) -> Option<usize> {
    path.strip_prefix("source[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The name in "unknown field `x`, ..." / "unknown variant `x`, ...".
fn offending_name(reason: &str) -> Option<&str> {
    let rest = reason
        .strip_prefix("unknown field `")
        .or_else(|| reason.strip_prefix("unknown variant `"))?;
    rest.split('`').next()
}

/// For "unknown field `x`, expected one of `a`, `b`": the candidate closest to `x`.
fn suggest(reason: &str) -> Option<String> {
    let given = offending_name(reason)?;
    let expected = reason.split_once("expected ")?.1;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|candidate| (strsim::damerau_levenshtein(given, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len().max(given.len()) / 2).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.to_string())
}
