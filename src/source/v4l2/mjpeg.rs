//! MJPEG frames decoded on their own thread, one frame behind the capture thread, so that a
//! slow decode never delays dequeuing (and requeuing) the driver's buffers.
//!
//! Two jobs (compressed bytes + decoded frame, allocated once) circulate between the capture
//! thread and the decoder: while the decoder works on frame `k`, `next_frame` hands out `k-1`.

use crossbeam_channel::{Receiver, Sender};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::frame::{CaptureStamp, PixelFormat};

/// Largest JPEG side the decoder accepts (its header is checked against the frame size after).
const MAX_SIDE: usize = 16384;

/// Frames decoding at once (one being decoded while the previous one is handed out).
const DEPTH: usize = 2;

struct Job {
    jpeg: Vec<u8>,
    len: usize,
    out: Vec<u8>,
    stamp: CaptureStamp,
    error: Option<String>,
}

/// The decoder thread of one MJPEG stream and the jobs it shares with the capture thread.
pub struct MjpegDecoder {
    jobs: Option<Sender<Job>>,
    done: Receiver<Job>,
    spare: Vec<Job>,
    in_flight: usize,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Decodes one JPEG into `out` (`width × height` gray or RGB, packed rows).
pub fn decode(
    jpeg: &[u8],
    width: usize,
    height: usize,
    format: PixelFormat,
    out: &mut [u8],
) -> Result<(), String> {
    let colorspace = match format {
        PixelFormat::Gray8 => ColorSpace::Luma,
        PixelFormat::Rgb8 => ColorSpace::RGB,
    };
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(colorspace)
        .set_max_width(MAX_SIDE)
        .set_max_height(MAX_SIDE);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
    decoder
        .decode_headers()
        .map_err(|e| format!("bad JPEG header: {e:?}"))?;
    match decoder.dimensions() {
        Some((w, h)) if (w, h) == (width, height) => {}
        other => return Err(format!("JPEG is {other:?}, expected {width}x{height}")),
    }
    if decoder.output_buffer_size() != Some(out.len()) {
        return Err(format!(
            "JPEG decodes to {:?} bytes, the frame holds {}",
            decoder.output_buffer_size(),
            out.len()
        ));
    }
    decoder
        .decode_into(out)
        .map_err(|e| format!("bad JPEG data: {e:?}"))
}

impl MjpegDecoder {
    /// Starts the decoder thread of stream `name` for `width × height` frames stored as
    /// `format`, from compressed frames of at most `max_jpeg` bytes.
    pub fn start(
        name: &str,
        width: u32,
        height: u32,
        format: PixelFormat,
        max_jpeg: usize,
    ) -> std::io::Result<Self> {
        let (jobs_tx, jobs_rx) = crossbeam_channel::bounded::<Job>(DEPTH);
        let (done_tx, done_rx) = crossbeam_channel::bounded::<Job>(DEPTH);
        let (w, h) = (width as usize, height as usize);
        let thread = std::thread::Builder::new()
            .name(format!("mjpeg-{name}"))
            .spawn(move || {
                for mut job in jobs_rx {
                    job.error = decode(&job.jpeg[..job.len], w, h, format, &mut job.out).err();
                    if done_tx.send(job).is_err() {
                        break;
                    }
                }
            })?;
        let frame_bytes = w * h * format.bytes_per_pixel();
        let spare = (0..DEPTH)
            .map(|_| Job {
                jpeg: vec![0; max_jpeg],
                len: 0,
                out: vec![0; frame_bytes],
                stamp: CaptureStamp::default(),
                error: None,
            })
            .collect();
        Ok(Self {
            jobs: Some(jobs_tx),
            done: done_rx,
            spare,
            in_flight: 0,
            thread: Some(thread),
        })
    }

    /// Frames handed to the decoder and not yet taken back.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Hands a compressed frame to the decoder (copied; the caller can requeue its buffer).
    /// Returns false, dropping the frame, if every job is taken or the frame is too large.
    pub fn submit(&mut self, jpeg: &[u8], stamp: CaptureStamp) -> bool {
        let Some(mut job) = self.spare.pop() else {
            return false;
        };
        if jpeg.len() > job.jpeg.len() {
            self.spare.push(job);
            return false;
        }
        job.jpeg[..jpeg.len()].copy_from_slice(jpeg);
        job.len = jpeg.len();
        job.stamp = stamp;
        let Some(jobs) = &self.jobs else {
            self.spare.push(job);
            return false;
        };
        match jobs.send(job) {
            Ok(()) => {
                self.in_flight += 1;
                true
            }
            Err(e) => {
                self.spare.push(e.into_inner());
                false
            }
        }
    }

    /// Waits for the oldest frame in flight and copies it into `pixels`: its stamp, or why it
    /// could not be decoded (the frame is then lost).
    pub fn receive(&mut self, pixels: &mut [u8]) -> Result<CaptureStamp, String> {
        if self.in_flight == 0 {
            return Err("no frame in flight".into());
        }
        let mut job = self
            .done
            .recv()
            .map_err(|_| "the MJPEG decoder thread ended".to_string())?;
        self.in_flight -= 1;
        let result = match job.error.take() {
            None => {
                pixels.copy_from_slice(&job.out);
                Ok(job.stamp)
            }
            Some(e) => Err(e),
        };
        self.spare.push(job);
        result
    }

    /// Drops every frame in flight (after a disconnection).
    pub fn discard(&mut self) {
        while self.in_flight > 0 {
            match self.done.recv() {
                Ok(job) => self.spare.push(job),
                Err(_) => break,
            }
            self.in_flight -= 1;
        }
    }
}

impl Drop for MjpegDecoder {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
#[path = "mjpeg_tests.rs"]
mod tests;
