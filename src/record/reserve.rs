//! Disk space held back for closing the file: a hidden file of [`RESERVE_BYTES`] allocated
//! next to the session file at start and deleted when a write fails (a full disk), so that the
//! pending metadata, the file's close and `finalize` (trimming, notes) still have room.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Bytes held back. Closing and finalizing a session file after a failed write needs well
/// under a megabyte (pending metadata rows, the chunk indexes, the notes); this leaves margin.
pub const RESERVE_BYTES: u64 = 4 << 20;

const PREFIX: &str = ".behavd-";
const SUFFIX: &str = ".reserve";

/// Allocated space, released by [`Reserve::release`] or when dropped.
#[derive(Debug)]
pub struct Reserve {
    path: Option<PathBuf>,
}

impl Reserve {
    /// Allocates `bytes` in `dir` (really allocated, not a sparse file). Fails when the disk
    /// cannot hold it; a reserve file of a process that no longer runs is removed first.
    pub fn create(dir: &Path, bytes: u64) -> std::io::Result<Self> {
        remove_stale(dir);
        let path = dir.join(format!("{PREFIX}{}{SUFFIX}", std::process::id()));
        let file = File::create(&path)?;
        // SAFETY: a valid open descriptor and a non-negative length.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, bytes as libc::off_t) };
        if rc != 0 {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        Ok(Self { path: Some(path) })
    }

    /// Deletes the reserve file, returning its space to the filesystem. Returns whether there
    /// was one to delete.
    pub fn release(&mut self) -> bool {
        match self.path.take() {
            Some(path) => std::fs::remove_file(path).is_ok(),
            None => false,
        }
    }
}

impl Drop for Reserve {
    fn drop(&mut self) {
        self.release();
    }
}

/// Holds back disk space for closing the file (see [`Reserve`]). A disk too full for it fails
/// the start; a filesystem that cannot allocate ahead only gets a warning.
pub fn hold_back_space(file: &Path) -> Result<Option<Reserve>, super::RecordError> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match Reserve::create(dir, RESERVE_BYTES) {
        Ok(r) => Ok(Some(r)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) => {
            Err(super::RecordError::Reserve {
                dir: dir.display().to_string(),
                mib: RESERVE_BYTES >> 20,
                cause: e,
            })
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot hold back disk space for closing the file; a full disk may leave it unfinished");
            Ok(None)
        }
    }
}

/// Removes reserve files left in `dir` by processes that are gone (a `kill -9`).
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_reserve_is_allocated_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let mut reserve = Reserve::create(dir.path(), 1 << 20).unwrap();
        let path = reserve.path.clone().unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 1 << 20);
        assert!(
            meta.blocks() * 512 >= 1 << 20,
            "blocks are allocated, not a hole"
        );
        assert!(reserve.release());
        assert!(!path.exists());
        assert!(!reserve.release());
    }

    #[test]
    fn a_dead_process_reserve_is_removed_and_a_live_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A pid that cannot exist (above the kernel's maximum) and our parent's, which does.
        let dead = dir.path().join(format!("{PREFIX}{}{SUFFIX}", i32::MAX));
        // SAFETY: getppid has no preconditions.
        let live = dir
            .path()
            .join(format!("{PREFIX}{}{SUFFIX}", unsafe { libc::getppid() }));
        std::fs::write(&dead, b"x").unwrap();
        std::fs::write(&live, b"x").unwrap();
        let _reserve = Reserve::create(dir.path(), 4096).unwrap();
        assert!(!dead.exists());
        assert!(live.exists());
    }
}
