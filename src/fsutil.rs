//! Opening paths that must be regular files: rig configs, model files, session files.
//!
//! Opening a FIFO for reading blocks until a writer appears, a terminal would become the
//! process's controlling tty, and a directory or a device makes a library fail with a message
//! that does not say what is wrong ("not found", an HDF5 error stack). Every path behavd
//! reads a file from goes through [`open_regular_file`] first: it looks at the path, opens
//! it without blocking (`O_NONBLOCK | O_NOCTTY`), and checks what it opened, so that anything
//! but a regular file is a clear error naming the path and what it is.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a path that must be a regular file cannot be used: "model file m.onnx not found",
/// "config file rig.toml is a FIFO (named pipe), not a regular file".
#[derive(Debug, thiserror::Error)]
#[error("{what} {}{}{problem}", path.display(), if matches!(problem, PathProblem::Io(_)) { ": " } else { " " })]
pub struct PathError {
    /// What the file was wanted as (`config file`, `model file`, `session file`).
    pub what: &'static str,
    /// The path as given.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: PathProblem,
}

/// What is wrong with a path that must be a regular file.
#[derive(Debug, thiserror::Error)]
pub enum PathProblem {
    /// Nothing is there.
    #[error("not found")]
    NotFound,
    /// Something is there, but not a regular file.
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    /// It could not be opened or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a file type is, in words.
fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Opens `path` for reading if it is a regular file (following symlinks); `what` names the
/// file in the error. Never blocks on a FIFO or a device.
pub fn open_regular_file(path: &Path, what: &'static str) -> Result<File, PathError> {
    let err = |problem| PathError {
        what,
        path: path.to_path_buf(),
        problem,
    };
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => err(PathProblem::NotFound),
        _ => err(PathProblem::Io(e)),
    })?;
    if !metadata.is_file() {
        return Err(err(PathProblem::NotRegular(kind_of(metadata.file_type()))));
    }
    // The path may have been replaced since: open without blocking and look at what came.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| err(PathProblem::Io(e)))?;
    let opened = file.metadata().map_err(|e| err(PathProblem::Io(e)))?;
    if !opened.is_file() {
        return Err(err(PathProblem::NotRegular(kind_of(opened.file_type()))));
    }
    Ok(file)
}

/// Checks that `path` is a regular file that can be opened for reading (for libraries that
/// open it by name themselves: libhdf5, ONNX Runtime).
pub fn check_regular_file(path: &Path, what: &'static str) -> Result<(), PathError> {
    open_regular_file(path, what).map(drop)
}

/// Reads a regular file as UTF-8 text.
pub fn read_regular_file_to_string(path: &Path, what: &'static str) -> Result<String, PathError> {
    let mut text = String::new();
    open_regular_file(path, what)?
        .read_to_string(&mut text)
        .map_err(|e| PathError {
            what,
            path: path.to_path_buf(),
            problem: PathProblem::Io(e),
        })?;
    Ok(text)
}

/// Bytes an unprivileged process may still write on the filesystem holding `dir`
/// (`statvfs(3)`: available blocks × fragment size).
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` points to writable storage of the right
    // type; statvfs fills it on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    // fsblkcnt_t and c_ulong are u64 here but narrower on 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let (blocks, size) = (st.f_bavail as u64, st.f_frsize as u64);
    Ok(blocks.saturating_mul(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(path: &Path) -> String {
        open_regular_file(path, "test file")
            .expect_err("not a regular file")
            .to_string()
    }

    #[test]
    fn fifos_directories_devices_and_missing_paths_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(problem(&fifo).ends_with("is a FIFO (named pipe), not a regular file"));
        assert!(problem(dir.path()).ends_with("is a directory, not a regular file"));
        assert!(
            problem(Path::new("/dev/null")).ends_with("is a character device, not a regular file")
        );
        let missing = dir.path().join("missing.toml");
        assert_eq!(
            problem(&missing),
            format!("test file {} not found", missing.display())
        );
        let file = dir.path().join("ok.txt");
        std::fs::write(&file, "text").unwrap();
        assert_eq!(
            read_regular_file_to_string(&file, "test file").unwrap(),
            "text"
        );
        // A symlink to a FIFO is the FIFO.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(problem(&link).contains("FIFO"));
    }
}
