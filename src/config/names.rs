//! Names that end up in file names or paths must stay inside the output directory:
//! `session.name` (the file is `<output_dir>/<name>.nwb`), `session.subject.id` (the default
//! session name starts with it), the stream, model, signal and rule names (NWB object names)
//! and the output names (the emulated stimulator's link is `/tmp/behavd-<pid>-<output>.tty`).

/// Longest session name accepted, in bytes (file names may be 255 bytes; room is left for
/// `-<n>.nwb`).
pub const MAX_SESSION_NAME: usize = 200;
/// Longest subject id, stream, model, signal group, ROI, rule or output name, in bytes.
pub const MAX_NAME: usize = 64;

/// Why `name` cannot be a file name, if it cannot: empty, too long, a path separator, `..`,
/// a NUL or another control character, or a leading `.` or `-`.
pub fn file_name_problem(name: &str, max: usize) -> Option<String> {
    if name.trim().is_empty() {
        return Some("is empty".into());
    }
    if name.len() > max {
        return Some(format!(
            "is {} bytes long; at most {max} are allowed",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Some(format!(
            "holds the control character U+{:04X}; names are printable text",
            c as u32
        ));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\')) {
        return Some(format!(
            "`{name}` holds the path separator `{c}`; the name becomes a file name inside the output directory"
        ));
    }
    if name.contains("..") {
        return Some(format!(
            "`{name}` holds `..`; the name becomes a file name inside the output directory"
        ));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Some(format!(
            "`{name}` starts with `{}`; start it with a letter or digit",
            &name[..1]
        ));
    }
    None
}

/// Why `name` cannot be an identifier (stream, model, signal, ROI, rule, output): anything but
/// ASCII letters, digits and `_`, or longer than [`MAX_NAME`].
pub fn identifier_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty; use letters, digits or `_`".into());
    }
    if name.len() > MAX_NAME {
        return Some(format!(
            "is {} bytes long; at most {MAX_NAME} are allowed",
            name.len()
        ));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        let shown: String = name
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        return Some(format!(
            "`{shown}` must be letters, digits or `_` (it names NWB objects and files)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_leave_the_directory_are_refused() {
        for bad in [
            "../escape",
            "a/b",
            "a\\b",
            "..",
            "x..y",
            ".hidden",
            "-rf",
            "nul\0byte",
            "tab\tname",
            "",
            "   ",
        ] {
            assert!(
                file_name_problem(bad, MAX_SESSION_NAME).is_some(),
                "{bad:?}"
            );
        }
        assert!(file_name_problem(&"a".repeat(201), MAX_SESSION_NAME).is_some());
        for good in ["m042_2026-01-02", "session 1", "Maus_ü", &"a".repeat(200)] {
            assert_eq!(file_name_problem(good, MAX_SESSION_NAME), None, "{good:?}");
        }
    }

    #[test]
    fn identifiers_are_letters_digits_and_underscores() {
        assert_eq!(identifier_problem("BehaviorCam0"), None);
        assert!(identifier_problem("../x").is_some());
        assert!(identifier_problem("a b").is_some());
        assert!(identifier_problem(&"a".repeat(65)).is_some());
    }
}
