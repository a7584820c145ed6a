//! What a process that aborts (a second Ctrl-C or SIGTERM, which skips the orderly stop) must
//! still undo: the symlinks behavd made to its emulated devices' pseudo-terminals
//! (`/tmp/behavd-<pid>-<output>.tty`), which would otherwise be left pointing at nothing.
//!
//! Whoever creates such a link registers it with [`remove_at_abort`]; the abort path calls
//! [`run_abort_cleanup`] on its own thread (not in a signal handler) just before exiting.
//! The orderly stop removes the links itself; a registered path that is gone by then is
//! skipped, and only symlinks are ever removed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static AT_ABORT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Registers a symlink this process created, to be removed if it aborts.
pub fn remove_at_abort(link: &Path) {
    let mut paths = AT_ABORT.lock().unwrap_or_else(|e| e.into_inner());
    if !paths.iter().any(|p| p == link) {
        paths.push(link.to_path_buf());
    }
}

/// Removes every registered path that is still a symlink; returns the ones removed.
pub fn run_abort_cleanup() -> Vec<PathBuf> {
    remove_symlinks(std::mem::take(
        &mut *AT_ABORT.lock().unwrap_or_else(|e| e.into_inner()),
    ))
}

fn remove_symlinks(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths
        .into_iter()
        .filter(|p| {
            std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
                && std::fs::remove_file(p).is_ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_symlinks_are_removed_and_other_files_kept() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("stim.tty");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "keep").unwrap();
        // Registration only (the global cleanup would also remove other tests' links).
        remove_at_abort(&link);
        remove_at_abort(&link);
        let registered = AT_ABORT
            .lock()
            .unwrap()
            .iter()
            .filter(|p| **p == link)
            .count();
        assert_eq!(registered, 1);
        let removed = remove_symlinks(vec![link.clone(), plain.clone(), dir.path().join("gone")]);
        assert_eq!(removed, vec![link.clone()]);
        assert!(std::fs::symlink_metadata(&link).is_err());
        assert!(plain.exists(), "only symlinks are removed");
    }
}
