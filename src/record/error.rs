//! Why recording failed, in words: HDF5 error stacks carry the operating system's `errno` of a
//! failed write deep inside their text (`... errno = 28, error message = 'No space left on
//! device' ...`); this finds it so the message names the cause instead of the HDF5 call.

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// An HDF5 call failed.
    /// (The library's error is in the text, not a `source`: printed again as a cause it
    /// would repeat HDF5's long driver message.)
    #[error("{file}: {} while {doing}{}", cause_text(error), hdf5_context(error))]
    Hdf5 {
        /// The session file.
        file: String,
        /// What the recorder was doing.
        doing: &'static str,
        /// The library's error.
        error: hdf5::Error,
    },
    /// The disk cannot even hold the space kept back for closing the file.
    #[error(
        "{dir}: cannot hold back {mib} MiB of disk space for closing the session file: {cause}; free some space first"
    )]
    Reserve {
        /// The output directory.
        dir: String,
        /// Mebibytes that were to be held back.
        mib: u64,
        /// Why the allocation failed.
        cause: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start recorder thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The recorder thread is no longer there to take a session.
    #[error("{0}")]
    Stopped(String),
}

impl RecordError {
    /// The operating-system error behind the failure (e.g. `ENOSPC`), when HDF5 reported one.
    pub fn os_error(&self) -> Option<std::io::Error> {
        match self {
            RecordError::Hdf5 { error, .. } => os_error_of(error),
            RecordError::Reserve { cause: e, .. } | RecordError::Thread(e) => {
                e.raw_os_error().map(std::io::Error::from_raw_os_error)
            }
            RecordError::Stopped(_) => None,
        }
    }
}

/// The `errno` an HDF5 error stack reports for a failed system call, as an [`std::io::Error`].
pub fn os_error_of(error: &hdf5::Error) -> Option<std::io::Error> {
    let stack = error.stack()?;
    stack
        .iter()
        .find_map(|frame| errno_in(frame.desc()))
        .map(std::io::Error::from_raw_os_error)
}

/// Parses `errno = N` out of an HDF5 error description.
fn errno_in(text: &str) -> Option<i32> {
    let rest = text.split("errno = ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&n| n > 0)
}

/// The cause first: the OS error when there is one, else HDF5's own description.
fn cause_text(error: &hdf5::Error) -> String {
    match os_error_of(error) {
        Some(os) => os.to_string(),
        None => format!("HDF5 error: {error}"),
    }
}

/// When the cause is an OS error, the HDF5 call that met it (short: its outermost frame).
fn hdf5_context(error: &hdf5::Error) -> String {
    if os_error_of(error).is_none() {
        return String::new();
    }
    match error
        .stack()
        .and_then(|s| s.top().map(|f| f.description().to_string()))
    {
        Some(top) => format!(" (HDF5: {top})"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_is_found_in_the_sec2_driver_message() {
        let text = "file write failed: time = Thu Dec  3 13:26:56 2026\n, filename = 'x.nwb', \
                    file descriptor = 3, errno = 28, error message = 'No space left on device', \
                    buf = 0x7f, total write size = 10647";
        assert_eq!(errno_in(text), Some(28));
        assert_eq!(errno_in("can't write data"), None);
        assert_eq!(errno_in("errno = 0"), None);
    }

    #[test]
    fn a_plain_hdf5_error_keeps_its_description() {
        let e = RecordError::Hdf5 {
            file: "f.nwb".into(),
            doing: "writing a frame",
            error: hdf5::Error::from("H5Dwrite_chunk failed"),
        };
        assert_eq!(
            e.to_string(),
            "f.nwb: HDF5 error: H5Dwrite_chunk failed while writing a frame"
        );
        assert!(e.os_error().is_none());
    }

    #[test]
    fn an_os_error_from_the_library_is_named_in_words() {
        // A real failing call: opening a file in a directory that does not exist sets errno.
        let dir = tempfile::tempdir().unwrap();
        let err = hdf5::File::open(dir.path().join("missing/none.h5")).unwrap_err();
        let e = RecordError::Hdf5 {
            file: "none.h5".into(),
            doing: "opening",
            error: err,
        };
        let os = e.os_error().expect("HDF5 reports the errno of open(2)");
        assert_eq!(os.kind(), std::io::ErrorKind::NotFound);
        assert!(
            e.to_string()
                .starts_with("none.h5: No such file or directory"),
            "{e}"
        );
    }
}
