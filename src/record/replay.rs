//! Reading frames back from a session file (for re-running models offline on a recording).

use std::path::Path;

use hdf5::File;

use super::transpose_into;
use crate::frame::{FrameGeometry, PixelFormat};

/// Why frames could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file or dataset could not be read.
    #[error("{file}: {doing}: {source}")]
    Hdf5 {
        /// Session file.
        file: String,
        /// What was being read.
        doing: String,
        /// libhdf5's error.
        source: hdf5::Error,
    },
    /// The path is not a regular file (a FIFO, a directory, a device, missing).
    #[error(transparent)]
    Path(#[from] crate::fsutil::PathError),
    /// The dataset is not a video of this layout.
    #[error("{file}: {reason}")]
    Layout {
        /// Session file.
        file: String,
        /// What is wrong.
        reason: String,
    },
}

/// The frames of one recorded stream, read as the camera delivered them (rows top to bottom).
pub struct RecordedFrames {
    file: File,
    path: String,
    stream: String,
    /// Frame geometry.
    pub geometry: FrameGeometry,
    /// Frames in the file.
    pub count: usize,
}

impl RecordedFrames {
    /// Opens `/acquisition/<stream>/data` of a session file.
    pub fn open(path: &Path, stream: &str) -> Result<Self, ReplayError> {
        let file_name = path.display().to_string();
        let hdf5_err = |doing: String| {
            let file = file_name.clone();
            move |source| ReplayError::Hdf5 {
                file,
                doing,
                source,
            }
        };
        crate::fsutil::check_regular_file(path, "session file")?;
        let file = File::open(path).map_err(hdf5_err("opening".into()))?;
        let ds = file
            .dataset(&format!("/acquisition/{stream}/data"))
            .map_err(hdf5_err(format!("reading acquisition/{stream}/data")))?;
        let shape = ds.shape();
        let geometry = match shape.as_slice() {
            [_, w, h] => FrameGeometry {
                width: *w as u32,
                height: *h as u32,
                format: PixelFormat::Gray8,
            },
            [_, w, h, 3] => FrameGeometry {
                width: *w as u32,
                height: *h as u32,
                format: PixelFormat::Rgb8,
            },
            _ => {
                return Err(ReplayError::Layout {
                    file: file_name,
                    reason: format!(
                        "acquisition/{stream}/data has shape {shape:?}, not (frames, width, height[, 3])"
                    ),
                });
            }
        };
        Ok(Self {
            file,
            path: file_name,
            stream: stream.to_string(),
            geometry,
            count: shape[0],
        })
    }

    /// Reads frame `index` into `out` (rows top to bottom; the file stores it transposed).
    pub fn read(&self, index: usize, out: &mut [u8]) -> Result<(), ReplayError> {
        let ds = self
            .file
            .dataset(&format!("/acquisition/{}/data", self.stream))
            .map_err(|source| ReplayError::Hdf5 {
                file: self.path.clone(),
                doing: "reading frames".into(),
                source,
            })?;
        let (w, h) = (self.geometry.width as usize, self.geometry.height as usize);
        let channels = self.geometry.format.bytes_per_pixel();
        let read = if channels == 1 {
            ds.read_slice::<u8, _, ndarray::IxDyn>(ndarray::s![index..index + 1, .., ..])
        } else {
            ds.read_slice::<u8, _, ndarray::IxDyn>(ndarray::s![index..index + 1, .., .., ..])
        };
        let stored: Vec<u8> = read
            .map(|a| a.iter().copied().collect())
            .map_err(|source| ReplayError::Hdf5 {
                file: self.path.clone(),
                doing: format!("reading frame {index}"),
                source,
            })?;
        // Stored as (width, height[, channels]); transposing it as a height=width image gives rows.
        transpose_into(&stored, out, h, w, channels);
        Ok(())
    }
}
