//! Precise errors inside `[[source]]` tables.
//!
//! `[[source]]` is an internally tagged enum (`kind = ...`), and serde buffers such tables, so
//! toml's error positions and key paths stop at the table. To point at the exact key, the
//! failing table's text is cut out (line numbers kept), its `kind` line blanked, and it is
//! deserialised again directly as the struct of its kind.

use serde::de::DeserializeOwned;

use super::source::{
    MiniscopeConfig, NokhwaConfig, SyntheticBehaviorConfig, SyntheticMiniscopeConfig, V4l2Config,
};

/// A key path, byte offset into the original text and message for an error in `source[index]`,
/// or `None` if the table cannot be cut out or parses fine on its own.
pub(super) fn source_error(text: &str, index: usize) -> Option<(String, Option<usize>, String)> {
    let (start, end) = source_table_range(text, index)?;
    let mut kind = None;
    let mut body = String::with_capacity(end - start);
    for line in text[start..end].split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("kind") && trimmed[4..].trim_start().starts_with('=') {
            let value = trimmed.split_once('=')?.1.trim();
            kind = Some(value.trim_matches('"').to_string());
            body.push_str(&" ".repeat(line.trim_end_matches('\n').len()));
            body.push_str(&line[line.trim_end_matches('\n').len()..]);
        } else if let Some(rest) = trimmed.strip_prefix("[source.") {
            // `[source.faults]` → `[faults]`, padded so later offsets on the line stay put.
            let indent = line.len() - trimmed.len();
            let replaced = format!("{}[{rest}", " ".repeat(indent + "source.".len()));
            body.push_str(&replaced);
        } else {
            body.push_str(line);
        }
    }
    let result = match kind.as_deref()? {
        "synthetic-miniscope" => check::<SyntheticMiniscopeConfig>(&body),
        "synthetic-behavior" => check::<SyntheticBehaviorConfig>(&body),
        "v4l2" => check::<V4l2Config>(&body),
        "miniscope" => check::<MiniscopeConfig>(&body),
        "nokhwa" => check::<NokhwaConfig>(&body),
        _ => return None,
    };
    let (path, offset, message) = result?;
    Some((
        format!("source[{index}].{path}"),
        offset.map(|o| start + o),
        message,
    ))
}

fn check<T: DeserializeOwned>(body: &str) -> Option<(String, Option<usize>, String)> {
    let deserializer = toml::Deserializer::new(body);
    let err = serde_path_to_error::deserialize::<_, T>(deserializer).err()?;
    let path = err.path().to_string();
    let inner = err.into_inner();
    Some((
        path,
        inner.span().map(|s| s.start),
        inner.message().trim().to_string(),
    ))
}

/// Byte range of the body (after the header line) of the `index`-th `[[source]]` table,
/// including its `[source.*]` sub-tables.
fn source_table_range(text: &str, index: usize) -> Option<(usize, usize)> {
    let mut offset = 0;
    let mut seen = 0;
    let mut start = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let line_end = offset + line.len();
        if trimmed.starts_with('[') {
            let is_source = trimmed.starts_with("[[source]]");
            let is_sub = trimmed.starts_with("[source.") || trimmed.starts_with("[[source.");
            if let Some(s) = start {
                if !is_sub {
                    return Some((s, offset));
                }
            } else if is_source {
                if seen == index {
                    start = Some(line_end);
                }
                seen += 1;
            }
        }
        offset = line_end;
    }
    start.map(|s| (s, text.len()))
}
