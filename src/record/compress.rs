//! Video chunk compression on worker threads, so one core of deflate does not cap the frame rate.
//!
//! The recorder hands each frame (a cheap shared handle) and a recycled output buffer to the
//! pool; a worker transposes it to NWB order, deflates it with a zlib header (exactly what
//! HDF5's deflate filter stores) and hands the chunk back for a direct chunk write.

use crossbeam_channel::{Receiver, Sender};
use flate2::{Compress, Compression, FlushCompress, Status};

use super::transpose::transpose_into;
use crate::frame::{Frame, FrameGeometry, FrameMeta};

/// One frame to compress.
pub struct CompressJob {
    /// Index of the stream in the recorder.
    pub stream: usize,
    /// Position of the frame in its stream's write order.
    pub seq: u64,
    /// The frame.
    pub frame: Frame,
    /// Frame size and format.
    pub geometry: FrameGeometry,
    /// Deflate level 1–9.
    pub level: u8,
    /// A buffer to put the compressed bytes in (its capacity is reused).
    pub out: Vec<u8>,
}

/// A compressed chunk ready to be written.
pub struct CompressedChunk {
    /// Index of the stream in the recorder.
    pub stream: usize,
    /// Position of the frame in its stream's write order.
    pub seq: u64,
    /// The frame's metadata (the frame slot itself is already back in its pool).
    pub meta: FrameMeta,
    /// zlib-wrapped deflate stream of the transposed frame.
    pub bytes: Vec<u8>,
}

/// A fixed set of compression threads.
pub struct CompressorPool {
    jobs: Option<Sender<CompressJob>>,
    results: Receiver<CompressedChunk>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl CompressorPool {
    /// Starts `threads` workers (at least one).
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<CompressJob>();
        let (results_tx, results_rx) = crossbeam_channel::unbounded();
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let jobs = jobs_rx.clone();
            let results = results_tx.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("compress-{i}"))
                    .spawn(move || worker(jobs, results))?,
            );
        }
        Ok(Self {
            jobs: Some(jobs_tx),
            results: results_rx,
            workers,
        })
    }

    /// Queues a job (never blocks).
    pub fn submit(&self, job: CompressJob) {
        if let Some(jobs) = &self.jobs {
            jobs.send(job).expect("workers live as long as the pool");
        }
    }

    /// The channel finished chunks arrive on.
    pub fn results(&self) -> &Receiver<CompressedChunk> {
        &self.results
    }
}

impl Drop for CompressorPool {
    fn drop(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn worker(jobs: Receiver<CompressJob>, results: Sender<CompressedChunk>) {
    crate::realtime::enter(crate::realtime::Role::Recorder);
    let mut transposed = Vec::new();
    let mut level = 1u8;
    let mut deflate = Compress::new(Compression::new(level.into()), true);
    for mut job in jobs {
        let g = job.geometry;
        let input = job.frame.pixels();
        transposed.resize(input.len(), 0);
        transpose_into(
            input,
            &mut transposed,
            g.width as usize,
            g.height as usize,
            g.format.bytes_per_pixel(),
        );
        let meta = *job.frame.meta();
        drop(job.frame);
        if job.level != level {
            level = job.level;
            deflate = Compress::new(Compression::new(level.into()), true);
        }
        deflate_into(&mut deflate, &transposed, &mut job.out);
        let chunk = CompressedChunk {
            stream: job.stream,
            seq: job.seq,
            meta,
            bytes: job.out,
        };
        if results.send(chunk).is_err() {
            return;
        }
    }
}

/// Deflates `input` into `out` (cleared first) as one complete zlib stream.
fn deflate_into(deflate: &mut Compress, input: &[u8], out: &mut Vec<u8>) {
    deflate.reset();
    out.clear();
    out.reserve(input.len() + input.len() / 64 + 256);
    loop {
        let consumed = deflate.total_in() as usize;
        let status = deflate
            .compress_vec(&input[consumed..], out, FlushCompress::Finish)
            .expect("deflate of an in-memory buffer cannot fail");
        if status == Status::StreamEnd {
            return;
        }
        out.reserve(out.capacity().max(4096));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn chunks_inflate_back_to_the_transposed_frame() {
        let geometry = FrameGeometry {
            width: 64,
            height: 48,
            format: crate::frame::PixelFormat::Gray8,
        };
        let pool = crate::frame::FramePool::new(4, geometry.frame_bytes());
        let compressor = CompressorPool::start(2).unwrap();
        for seq in 0..4u64 {
            let mut slot = pool.try_acquire().unwrap();
            for (i, p) in slot.pixels_mut().iter_mut().enumerate() {
                *p = (i as u64 * 3 + seq) as u8;
            }
            let frame = slot.freeze(FrameMeta {
                index: seq,
                ..FrameMeta::default()
            });
            compressor.submit(CompressJob {
                stream: 0,
                seq,
                frame,
                geometry,
                level: 1,
                out: Vec::new(),
            });
        }
        let mut seen = [false; 4];
        for _ in 0..4 {
            let chunk = compressor.results().recv().unwrap();
            assert_eq!(chunk.meta.index, chunk.seq);
            let mut inflated = Vec::new();
            flate2::read::ZlibDecoder::new(&chunk.bytes[..])
                .read_to_end(&mut inflated)
                .unwrap();
            let original: Vec<u8> = (0..64 * 48).map(|i| (i * 3 + chunk.seq) as u8).collect();
            let mut expected = vec![0; original.len()];
            transpose_into(&original, &mut expected, 64, 48, 1);
            assert_eq!(inflated, expected);
            seen[chunk.seq as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(pool.available(), 4, "workers return frame slots");
    }
}
