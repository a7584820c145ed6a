//! Row-major camera buffers `(height, width[, channels])` to NWB's `(width, height[, channels])`.

const BLOCK: usize = 32;

/// Writes the transpose of `src` (`height` rows of `width` pixels of `channels` bytes) into `dst`,
/// so that `dst[(x * height + y) * channels + c] == src[(y * width + x) * channels + c]`.
/// Works in cache-sized blocks; allocates nothing.
pub fn transpose_into(src: &[u8], dst: &mut [u8], width: usize, height: usize, channels: usize) {
    assert_eq!(src.len(), width * height * channels, "source size");
    assert_eq!(dst.len(), src.len(), "destination size");
    for y0 in (0..height).step_by(BLOCK) {
        let y1 = (y0 + BLOCK).min(height);
        for x0 in (0..width).step_by(BLOCK) {
            let x1 = (x0 + BLOCK).min(width);
            if channels == 1 {
                for y in y0..y1 {
                    let row = &src[y * width..(y + 1) * width];
                    for x in x0..x1 {
                        dst[x * height + y] = row[x];
                    }
                }
            } else {
                for y in y0..y1 {
                    for x in x0..x1 {
                        let s = (y * width + x) * channels;
                        let d = (x * height + y) * channels;
                        dst[d..d + channels].copy_from_slice(&src[s..s + channels]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_transpose_moves_every_pixel() {
        let (w, h) = (37, 70);
        let src: Vec<u8> = (0..w * h).map(|i| (i * 7 % 251) as u8).collect();
        let mut dst = vec![0; w * h];
        transpose_into(&src, &mut dst, w, h, 1);
        for y in 0..h {
            for x in 0..w {
                assert_eq!(dst[x * h + y], src[y * w + x], "x={x} y={y}");
            }
        }
    }

    #[test]
    fn rgb_transpose_keeps_channels_together() {
        let (w, h) = (5, 3);
        let src: Vec<u8> = (0..w * h * 3).map(|i| i as u8).collect();
        let mut dst = vec![0; src.len()];
        transpose_into(&src, &mut dst, w, h, 3);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    assert_eq!(dst[(x * h + y) * 3 + c], src[(y * w + x) * 3 + c]);
                }
            }
        }
    }
}
