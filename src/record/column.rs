//! An appendable dataset whose rows are buffered in memory and written in one call per flush.

use hdf5::{Dataset, H5Type};

use super::h5::H5Result;

/// Rows of a growing dataset, appended in batches: `push` is a memory copy, `write_pending`
/// extends the dataset once and writes every pending row.
pub struct Column<T: H5Type + Copy> {
    dataset: Dataset,
    /// Elements per row (product of the non-growing dimensions).
    row_len: usize,
    tail: Vec<usize>,
    pending: Vec<T>,
    written_rows: usize,
}

impl<T: H5Type + Copy> Column<T> {
    /// Wraps an empty extensible dataset of shape `(0, tail...)`; `expected_rows` sizes the buffer.
    pub fn new(dataset: Dataset, tail: &[usize], expected_rows: usize) -> Self {
        let row_len = tail.iter().product::<usize>().max(1);
        Self {
            dataset,
            row_len,
            tail: tail.to_vec(),
            pending: Vec::with_capacity(expected_rows * row_len),
            written_rows: 0,
        }
    }

    /// Queues one row (`row.len()` must equal the row length).
    pub fn push(&mut self, row: &[T]) {
        debug_assert_eq!(row.len(), self.row_len);
        self.pending.extend_from_slice(row);
    }

    /// Queues one scalar row.
    pub fn push_one(&mut self, value: T) {
        debug_assert_eq!(self.row_len, 1);
        self.pending.push(value);
    }

    /// The dataset the rows go to.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// Rows written plus rows pending.
    pub fn rows(&self) -> usize {
        self.written_rows + self.pending.len() / self.row_len
    }

    /// Rows already in the file.
    pub fn written_rows(&self) -> usize {
        self.written_rows
    }

    /// Writes pending rows to the file (no-op when none).
    pub fn write_pending(&mut self) -> H5Result<()> {
        let new_rows = self.pending.len() / self.row_len;
        if new_rows == 0 {
            return Ok(());
        }
        let start = self.written_rows;
        let end = start + new_rows;
        let mut shape = vec![end];
        shape.extend_from_slice(&self.tail);
        self.dataset.resize(shape.as_slice())?;
        let mut view_shape = vec![new_rows];
        view_shape.extend_from_slice(&self.tail);
        let view = ndarray::ArrayViewD::from_shape(view_shape, &self.pending)
            .expect("pending holds whole rows");
        let mut selection: Vec<hdf5::SliceOrIndex> = vec![(start..end).into()];
        selection.extend(self.tail.iter().map(|_| hdf5::SliceOrIndex::from(..)));
        self.dataset
            .write_slice(view, hdf5::Hyperslab::from(selection))?;
        self.written_rows = end;
        self.pending.clear();
        Ok(())
    }
}
