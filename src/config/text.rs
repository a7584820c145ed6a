//! Checks on the raw config text before TOML parsing, and the words for TOML's own errors:
//! bytes that are not UTF-8 and carriage returns without a line feed are named by line, an
//! oversized file is refused before parsing, and a syntax error names the key on its line or
//! the line itself.

use super::ConfigError;
use super::locate::line_column;

/// The largest config text accepted (a rig config is a few kilobytes).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// The text of `bytes`, or an error naming the line and column of the first byte that is not
/// UTF-8.
pub(super) fn decode(bytes: Vec<u8>, origin: &str) -> Result<String, ConfigError> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let good = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
        let (line, column) = line_column(good, good.len());
        ConfigError::Text {
            file: origin.to_string(),
            line,
            column,
            reason: format!(
                "byte 0x{:02x} is not UTF-8 text; save the config as UTF-8",
                bytes[at]
            ),
        }
    })
}

/// Refuses text no config can be: over [`MAX_CONFIG_BYTES`], or with a carriage return that
/// is not followed by a line feed (old Mac line endings, which TOML does not allow).
pub(super) fn precheck(text: &str, origin: &str) -> Result<(), ConfigError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::Text {
            file: origin.to_string(),
            line: 1,
            column: 1,
            reason: format!(
                "the config is {} bytes; at most {MAX_CONFIG_BYTES} are accepted",
                text.len()
            ),
        });
    }
    let bytes = text.as_bytes();
    if let Some(at) =
        (0..bytes.len()).find(|&i| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
    {
        let (line, column) = line_column(text, at);
        return Err(ConfigError::Text {
            file: origin.to_string(),
            line,
            column,
            reason: "a carriage return (CR) without a line feed: TOML lines end with LF or CR LF; \
                     save the file with Unix or Windows line endings"
                .into(),
        });
    }
    Ok(())
}

/// TOML's message on one line, never empty.
pub(super) fn reason_in_words(message: &str) -> String {
    let joined = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.is_empty() {
        "this is not valid TOML here".into()
    } else {
        joined
    }
}

/// Line `line` (1-based) quoted for a message, shortened: "line 7 `[[source`".
pub(super) fn describe_line(text: &str, line: usize) -> String {
    let content = text.split('\n').nth(line.saturating_sub(1)).unwrap_or("");
    let content = content.trim();
    let short: String = content.chars().take(60).collect();
    let shown: String = short
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if content.is_empty() {
        format!("line {line}, which is empty")
    } else if short.len() < content.len() {
        format!("line {line} `{shown}...`")
    } else {
        format!("line {line} `{shown}`")
    }
}

/// The dotted key (`source[1].fps`) written as `name = ...` on line `line`, resolved against
/// the table headers above it; `None` when the line holds no plain `key =`.
pub(super) fn key_on_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let target = lines.get(line.checked_sub(1)?)?.trim();
    let (name, _) = target.split_once('=')?;
    let name = name.trim();
    let bare = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|p| {
                !p.trim().is_empty()
                    && p.trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
    };
    if !bare(name) {
        return None;
    }
    let name: Vec<&str> = name.split('.').map(str::trim).collect();
    let mut arrays: Vec<(String, usize)> = Vec::new();
    let mut table = String::new();
    for l in &lines[..line - 1] {
        let l = l.trim();
        if let Some(h) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let h = h.trim().to_string();
            // A new element of `h` starts fresh arrays of its own sub-tables.
            let prefix = format!("{h}.");
            arrays.retain(|(n, _)| !n.starts_with(&prefix));
            match arrays.iter_mut().find(|(n, _)| *n == h) {
                Some((_, count)) => *count += 1,
                None => arrays.push((h.clone(), 1)),
            }
            table = resolve(&h, &arrays);
        } else if let Some(h) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = resolve(h.trim(), &arrays);
        }
    }
    let key = name.join(".");
    Some(if table.is_empty() {
        key
    } else {
        format!("{table}.{key}")
    })
}

/// `source.controls` → `source[2].controls` when `source` is an array of tables seen 3 times.
fn resolve(header: &str, arrays: &[(String, usize)]) -> String {
    let mut out = String::new();
    let mut raw = String::new();
    for part in header.split('.').map(str::trim) {
        if !raw.is_empty() {
            raw.push('.');
            out.push('.');
        }
        raw.push_str(part);
        out.push_str(part);
        if let Some((_, count)) = arrays.iter().find(|(n, _)| *n == raw) {
            out.push_str(&format!("[{}]", count - 1));
        }
    }
    out
}
