//! Small helpers over `hdf5` for writing NWB-shaped objects: typed groups, string attributes,
//! extensible datasets and the NWB conventions for `data` and `timestamps`.

use hdf5::types::{VarLenUnicode, VarLenUnicode as Vstr};
use hdf5::{Dataset, Extents, Group, H5Type, Location, SimpleExtents};

/// The result type of every HDF5 helper.
pub type H5Result<T> = hdf5::Result<T>;

/// A variable-length UTF-8 string for HDF5 (NUL bytes are replaced by spaces).
pub fn vstr(text: &str) -> Vstr {
    text.replace('\0', " ")
        .parse::<VarLenUnicode>()
        .expect("no NUL bytes remain")
}

/// Writes a scalar variable-length UTF-8 string attribute.
pub fn attr_str(loc: &Location, name: &str, value: &str) -> H5Result<()> {
    loc.new_attr::<Vstr>()
        .shape(())
        .create(name)?
        .write_scalar(&vstr(value))
}

/// Writes a 1-D variable-length UTF-8 string array attribute.
pub fn attr_str_array(loc: &Location, name: &str, values: &[&str]) -> H5Result<()> {
    let data: Vec<Vstr> = values.iter().map(|v| vstr(v)).collect();
    loc.new_attr_builder().with_data(&data).create(name)?;
    Ok(())
}

/// Writes a scalar numeric attribute.
pub fn attr_scalar<T: H5Type>(loc: &Location, name: &str, value: T) -> H5Result<()> {
    loc.new_attr::<T>()
        .shape(())
        .create(name)?
        .write_scalar(&value)
}

/// Adds the three typing attributes (`neurodata_type`, `namespace`, a fresh `object_id`).
pub fn set_type(loc: &Location, neurodata_type: &str, namespace: &str) -> H5Result<()> {
    attr_str(loc, "namespace", namespace)?;
    attr_str(loc, "neurodata_type", neurodata_type)?;
    attr_str(loc, "object_id", &uuid::Uuid::new_v4().to_string())
}

/// Creates a group carrying the typing attributes.
pub fn typed_group(
    parent: &Group,
    name: &str,
    neurodata_type: &str,
    namespace: &str,
) -> H5Result<Group> {
    let group = parent.create_group(name)?;
    set_type(&group, neurodata_type, namespace)?;
    Ok(group)
}

/// Creates a scalar variable-length string dataset.
pub fn str_dataset(parent: &Group, name: &str, value: &str) -> H5Result<Dataset> {
    let ds = parent.new_dataset::<Vstr>().shape(()).create(name)?;
    ds.write_scalar(&vstr(value))?;
    Ok(ds)
}

/// Creates a 1-D variable-length string dataset.
pub fn str_array_dataset(parent: &Group, name: &str, values: &[&str]) -> H5Result<Dataset> {
    let data: Vec<Vstr> = values.iter().map(|v| vstr(v)).collect();
    parent.new_dataset_builder().with_data(&data).create(name)
}

/// Creates a scalar numeric dataset.
pub fn scalar_dataset<T: H5Type>(parent: &Group, name: &str, value: T) -> H5Result<Dataset> {
    let ds = parent.new_dataset::<T>().shape(()).create(name)?;
    ds.write_scalar(&value)?;
    Ok(ds)
}

/// Creates a 1-D numeric dataset with fixed contents.
pub fn array_dataset<T: H5Type>(parent: &Group, name: &str, values: &[T]) -> H5Result<Dataset> {
    parent.new_dataset_builder().with_data(values).create(name)
}

/// Bytes of the raw-data chunk cache each dataset of a session file gets: one chunk of the
/// largest non-video chunk (64 KiB); video frames (larger) are never cached.
pub const CHUNK_CACHE_BYTES: usize = 65_536;

/// Creates a new session file (fails if it exists): HDF5 1.10 format (SWMR) and a chunk cache
/// of one slot of [`CHUNK_CACHE_BYTES`] per dataset. The datasets are append-only, so only the
/// chunk being filled is touched again; the library's default (1 MiB and 521 slots per
/// dataset) kept every finished chunk, and the resident set grew with every chunk boundary.
/// It is set on the file, not per dataset, because `H5Fstart_swmr_write` reopens every
/// dataset with the file's defaults.
pub fn create_session_file(path: &std::path::Path) -> H5Result<hdf5::File> {
    hdf5::File::with_options()
        .with_fapl(|p| p.libver_v110().chunk_cache(1, CHUNK_CACHE_BYTES, 1.0))
        .create_excl(path)
}

/// Creates an empty dataset of shape `(0, tail...)` that grows along its first axis.
pub fn extensible<T: H5Type>(
    parent: &Group,
    name: &str,
    tail: &[usize],
    chunk_rows: usize,
    deflate: Option<u8>,
) -> H5Result<Dataset> {
    extensible_with::<T>(parent, name, tail, chunk_rows, deflate, false)
}

/// Like [`extensible`] for video: one frame per chunk and no chunk cache, so every frame goes
/// to the file when it is written (its write fails then, not at a later flush, on a full
/// disk) and no frame is held in the library's memory.
pub fn video_dataset(
    parent: &Group,
    name: &str,
    tail: &[usize],
    deflate: Option<u8>,
) -> H5Result<Dataset> {
    extensible_with::<u8>(parent, name, tail, 1, deflate, true)
}

fn extensible_with<T: H5Type>(
    parent: &Group,
    name: &str,
    tail: &[usize],
    chunk_rows: usize,
    deflate: Option<u8>,
    uncached: bool,
) -> H5Result<Dataset> {
    let mut dims = vec![hdf5::Extent::resizable(0)];
    dims.extend(tail.iter().map(|&d| hdf5::Extent::fixed(d)));
    let mut chunk = vec![chunk_rows];
    chunk.extend_from_slice(tail);
    let mut builder = parent
        .new_dataset::<T>()
        .chunk(chunk)
        .shape(Extents::Simple(SimpleExtents::from_vec(dims)));
    if let Some(level) = deflate {
        builder = builder.deflate(level);
    }
    if uncached {
        builder = builder.chunk_cache(1, 0, 1.0);
    }
    builder.create(name)
}

/// The NWB `TimeSeries.data` attributes (`conversion`, `offset`, `resolution`, `unit`).
pub fn data_attrs(ds: &Dataset, unit: &str) -> H5Result<()> {
    attr_scalar(ds, "conversion", 1.0f32)?;
    attr_scalar(ds, "offset", 0.0f32)?;
    attr_scalar(ds, "resolution", -1.0f32)?;
    attr_str(ds, "unit", unit)
}

/// Creates the empty float64 `timestamps` dataset of a series (seconds from session start).
pub fn timestamps_dataset(series: &Group) -> H5Result<Dataset> {
    let ds = extensible::<f64>(series, "timestamps", &[], 4096, None)?;
    attr_scalar(&ds, "interval", 1i32)?;
    attr_str(&ds, "unit", "seconds")?;
    Ok(ds)
}

/// Sets the `description` and `comments` attributes every NWB `TimeSeries` carries.
pub fn series_attrs(series: &Group, description: &str) -> H5Result<()> {
    attr_str(series, "description", description)?;
    attr_str(series, "comments", "no comments")
}

/// Writes an object reference attribute (`hobj_ref_t`, what pynwb writes) to `target`.
pub fn attr_object_ref(
    loc: &Location,
    name: &str,
    file: &hdf5::File,
    target: &str,
) -> H5Result<()> {
    let reference: hdf5::ObjectReference1 = file.reference(target)?;
    loc.new_attr::<hdf5::ObjectReference1>()
        .shape(())
        .create(name)?
        .write_scalar(&reference)
}

/// Marks a table column as `VectorData` with its description.
pub fn vector_data(ds: &Dataset, description: &str) -> H5Result<()> {
    set_type(ds, "VectorData", "hdmf-common")?;
    attr_str(ds, "description", description)
}

/// Bytes the HDF5 metadata cache of `file` holds now (0 if the library cannot say).
pub fn metadata_cache_bytes(file: &hdf5::File) -> usize {
    let (mut max, mut min_clean, mut current, mut entries) = (0usize, 0usize, 0usize, 0i32);
    let status = hdf5::sync::sync(|| {
        // SAFETY: a valid file id and out-pointers to locals.
        unsafe {
            hdf5_sys::h5f::H5Fget_mdc_size(
                file.id(),
                &mut max,
                &mut min_clean,
                &mut current,
                &mut entries,
            )
        }
    });
    if status < 0 { 0 } else { current }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After `start_swmr` (which reopens the datasets) an appended dataset still caches one
    /// chunk, not the library's default 1 MiB, and appends across many chunks keep every row.
    #[test]
    fn session_datasets_cache_one_chunk_after_swmr_starts() {
        let dir = tempfile::tempdir().unwrap();
        let file = create_session_file(&dir.path().join("t.h5")).unwrap();
        let root = file.group("/").unwrap();
        let ds = extensible::<f64>(&root, "x", &[], 256, None).unwrap();
        file.start_swmr().unwrap();
        let cache = ds.access_plist().unwrap().chunk_cache();
        assert_eq!((cache.nslots, cache.nbytes), (1, CHUNK_CACHE_BYTES));
        let mut col = super::super::column::Column::<f64>::new(ds, &[], 16);
        for flush in 0..1024 {
            for i in 0..10 {
                col.push_one((flush * 10 + i) as f64);
            }
            col.write_pending().unwrap();
        }
        let back: Vec<f64> = col.dataset().read_raw().unwrap();
        assert_eq!(back.len(), 10_240);
        assert!(back.iter().enumerate().all(|(i, &v)| v == i as f64));
    }
}
