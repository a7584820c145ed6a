//! After the recorder closed the file: cut per-frame datasets to equal lengths (they differ
//! only when a write failed, e.g. on a full disk), prune objects that never got a row and write
//! the session-end notes.
//!
//! Runs in a separate non-SWMR read-write open, so nothing here is needed for validity: a file
//! that never reaches this step (a crash) is still a valid NWB file up to its last flush.

use std::path::Path;

use hdf5::File;

use super::h5::{self, H5Result};

/// What [`finalize`] changed.
#[derive(Debug, Clone, Default)]
pub struct Finalized {
    /// Paths of the empty objects it removed.
    pub removed: Vec<String>,
    /// Datasets cut to the length of the rest of their series or table (`path: N → M rows`).
    pub trimmed: Vec<String>,
}

/// Trims per-row datasets to equal lengths, prunes empty series and tables and replaces
/// `general/notes` with `notes`.
pub fn finalize(path: &Path, notes: &str) -> H5Result<Finalized> {
    let file = File::open_rw(path)?;
    let trimmed = super::trim::trim_to_common_length(&file)?;
    let mut removed = Vec::new();
    // Series whose timestamps live in a removed series must go with it, so repeat until stable.
    loop {
        let mut changed = false;
        for parent in ["/acquisition", "/intervals"] {
            let group = file.group(parent)?;
            for name in group.member_names()? {
                let path = format!("{parent}/{name}");
                if is_empty_or_dangling(&file, &path) {
                    group.unlink(&name)?;
                    removed.push(path);
                    changed = true;
                }
            }
        }
        changed |= prune_processing(&file, &mut removed)?;
        if !changed {
            break;
        }
    }
    let general = file.group("/general")?;
    general.unlink("notes")?;
    h5::str_dataset(&general, "notes", notes)?;
    file.close()?;
    Ok(Finalized { removed, trimmed })
}

/// Removes empty outputs under `/processing/*` (a pose estimation with an empty series goes
/// whole), orphaned skeletons, and modules left empty. Returns whether anything changed.
fn prune_processing(file: &File, removed: &mut Vec<String>) -> H5Result<bool> {
    let mut changed = false;
    let processing = file.group("/processing")?;
    for module_name in processing.member_names()? {
        let module = processing.group(&module_name)?;
        let base = format!("/processing/{module_name}");
        let mut has_pose = false;
        for name in module.member_names()? {
            let path = format!("{base}/{name}");
            let Ok(group) = module.group(&name) else {
                continue;
            };
            let empty_pose_series = group.member_names()?.iter().any(|child| {
                group
                    .group(child)
                    .is_ok_and(|c| c.dataset("confidence").is_ok())
                    && is_empty_or_dangling(file, &format!("{path}/{child}"))
            });
            if empty_pose_series || is_empty_or_dangling(file, &path) {
                module.unlink(&name)?;
                removed.push(path);
                changed = true;
            } else if group.dataset("scorer").is_ok() {
                has_pose = true;
            }
        }
        if !has_pose && module.link_exists("Skeletons") {
            module.unlink("Skeletons")?;
            removed.push(format!("{base}/Skeletons"));
            changed = true;
        }
        if module.member_names()?.is_empty() {
            processing.unlink(&module_name)?;
            removed.push(base);
            changed = true;
        }
    }
    Ok(changed)
}

/// A series with no rows, a table with no ids, or a series whose timestamps link is broken.
fn is_empty_or_dangling(file: &File, path: &str) -> bool {
    let Ok(group) = file.group(path) else {
        return false;
    };
    let rows = |name: &str| {
        group
            .dataset(name)
            .ok()
            .map(|d| d.shape().first().copied().unwrap_or(0))
    };
    if group.link_exists("timestamps") && group.dataset("timestamps").is_err() {
        return true;
    }
    match (rows("data"), rows("id")) {
        (Some(n), _) => n == 0,
        (None, Some(n)) => n == 0,
        _ => false,
    }
}
