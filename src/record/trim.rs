//! Equal lengths after a failed or interrupted recording: every per-frame dataset of a series
//! (its `data`, its `timestamps` and every series linked to those timestamps: frame counters,
//! host times, head orientation, ground truth, pose confidences) and every column of a table
//! is cut to the rows all of them have. A full disk can stop the recorder between writing a
//! frame and its metadata, or between two columns of a flush; this runs in `finalize`'s
//! read-write open.

use hdf5::{Dataset, File, Group, LocationToken};

use super::h5::H5Result;

/// Top-level groups searched, and how deep below them series and tables are looked for
/// (`/processing/behavior/pose/nose` is three levels below `/processing`).
const ROOTS: [&str; 3] = ["/acquisition", "/processing", "/intervals"];
const MAX_DEPTH: usize = 3;

/// Datasets that must have equal lengths.
struct Set {
    /// The shared `timestamps` dataset of a series family (`None` for a table).
    key: Option<LocationToken>,
    members: Vec<(String, Dataset)>,
}

/// Cuts every set of per-row datasets to its shortest member. Returns one line per dataset
/// cut (`path: N → M rows`).
pub fn trim_to_common_length(file: &File) -> H5Result<Vec<String>> {
    let mut sets: Vec<Set> = Vec::new();
    for root in ROOTS {
        if let Ok(group) = file.group(root) {
            collect(&group, root, 0, &mut sets)?;
        }
    }
    let mut trimmed = Vec::new();
    for set in sets {
        let rows = |d: &Dataset| d.shape().first().copied().unwrap_or(0);
        let Some(common) = set.members.iter().map(|(_, d)| rows(d)).min() else {
            continue;
        };
        for (path, dataset) in &set.members {
            let n = rows(dataset);
            if n > common {
                let mut shape = dataset.shape();
                shape[0] = common;
                dataset.resize(shape)?;
                trimmed.push(format!("{path}: {n} → {common} rows"));
            }
        }
    }
    Ok(trimmed)
}

fn collect(group: &Group, path: &str, depth: usize, sets: &mut Vec<Set>) -> H5Result<()> {
    if let Ok(timestamps) = group.dataset("timestamps") {
        let key = timestamps.loc_info()?.token;
        let set = match sets.iter_mut().position(|s| s.key == Some(key)) {
            Some(i) => &mut sets[i],
            None => {
                sets.push(Set {
                    key: Some(key),
                    members: Vec::new(),
                });
                sets.last_mut().expect("just pushed")
            }
        };
        let own = format!("{path}/timestamps");
        let linked = set.members.iter().any(|(p, _)| p.ends_with("/timestamps"));
        if !linked {
            set.members.push((own, timestamps));
        }
        for name in ["data", "confidence"] {
            if let Ok(d) = group.dataset(name) {
                set.members.push((format!("{path}/{name}"), d));
            }
        }
    } else if group.attr("colnames").is_ok()
        && let Ok(id) = group.dataset("id")
    {
        let mut members = vec![(format!("{path}/id"), id)];
        let columns: Vec<hdf5::types::VarLenUnicode> = group.attr("colnames")?.read_raw()?;
        for column in columns {
            let column = column.as_str();
            let name = if group.link_exists(&format!("{column}_index")) {
                format!("{column}_index")
            } else {
                column.to_string()
            };
            if let Ok(d) = group.dataset(&name) {
                members.push((format!("{path}/{name}"), d));
            }
        }
        sets.push(Set { key: None, members });
    }
    if depth < MAX_DEPTH {
        for name in group.member_names()? {
            if let Ok(child) = group.group(&name) {
                collect(&child, &format!("{path}/{name}"), depth + 1, sets)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::h5;

    fn rows(file: &File, path: &str) -> usize {
        file.dataset(path).unwrap().shape()[0]
    }

    fn grow(ds: &Dataset, n: usize) {
        let mut shape = ds.shape();
        shape[0] = n;
        ds.resize(shape).unwrap();
    }

    #[test]
    fn series_sharing_timestamps_and_table_columns_are_cut_to_the_shortest() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("t.h5")).unwrap();
        let acq = file.create_group("acquisition").unwrap();
        let cam = acq.create_group("Cam").unwrap();
        grow(&h5::video_dataset(&cam, "data", &[4, 3], None).unwrap(), 12);
        grow(&h5::timestamps_dataset(&cam).unwrap(), 10);
        let counter = acq.create_group("CamFrameNumber").unwrap();
        counter
            .link_soft("/acquisition/Cam/timestamps", "timestamps")
            .unwrap();
        grow(
            &h5::extensible::<u32>(&counter, "data", &[], 64, None).unwrap(),
            11,
        );
        let other = acq.create_group("Other").unwrap();
        grow(&h5::timestamps_dataset(&other).unwrap(), 5);
        grow(
            &h5::extensible::<f32>(&other, "data", &[2], 64, None).unwrap(),
            5,
        );
        let intervals = file.create_group("intervals").unwrap();
        let table = intervals.create_group("Gaps").unwrap();
        h5::attr_str_array(&table, "colnames", &["start_time", "cause"]).unwrap();
        grow(
            &h5::extensible::<i64>(&table, "id", &[], 64, None).unwrap(),
            3,
        );
        grow(
            &h5::extensible::<f64>(&table, "start_time", &[], 64, None).unwrap(),
            4,
        );
        grow(
            &h5::extensible::<u8>(&table, "cause", &[], 64, None).unwrap(),
            4,
        );

        let trimmed = trim_to_common_length(&file).unwrap();
        assert_eq!(rows(&file, "acquisition/Cam/data"), 10);
        assert_eq!(
            file.dataset("acquisition/Cam/data").unwrap().shape(),
            [10, 4, 3]
        );
        assert_eq!(rows(&file, "acquisition/Cam/timestamps"), 10);
        assert_eq!(rows(&file, "acquisition/CamFrameNumber/data"), 10);
        assert_eq!(
            rows(&file, "acquisition/Other/data"),
            5,
            "a full series is kept"
        );
        assert_eq!(rows(&file, "intervals/Gaps/start_time"), 3);
        assert_eq!(rows(&file, "intervals/Gaps/cause"), 3);
        assert_eq!(
            trimmed.len(),
            4,
            "data, the counter and two columns were cut: {trimmed:?}"
        );
        assert!(trimmed.contains(&"/acquisition/Cam/data: 12 → 10 rows".to_string()));
    }
}
