//! Device rows → frame rows: stride removal and YUYV → gray / RGB, without allocating.

/// Copies `rows` rows of `row_bytes` from `src` (rows `stride` bytes apart) into `dst`
/// (rows packed). `src` must hold `(rows - 1) * stride + row_bytes` bytes.
pub fn copy_rows(src: &[u8], stride: usize, row_bytes: usize, rows: usize, dst: &mut [u8]) {
    if stride == row_bytes {
        let n = row_bytes * rows;
        dst[..n].copy_from_slice(&src[..n]);
        return;
    }
    for (r, out) in dst.chunks_exact_mut(row_bytes).take(rows).enumerate() {
        out.copy_from_slice(&src[r * stride..r * stride + row_bytes]);
    }
}

/// The luma (every other byte) of YUYV rows `stride` bytes apart into packed 8-bit gray rows
/// of `width` pixels.
pub fn yuyv_to_gray(src: &[u8], stride: usize, width: usize, rows: usize, dst: &mut [u8]) {
    for (r, out) in dst.chunks_exact_mut(width).take(rows).enumerate() {
        luma_row(&src[r * stride..r * stride + 2 * width], out);
    }
}

/// Every other byte of `yuyv` (2 × `out.len()` bytes) into `out`.
fn luma_row(yuyv: &[u8], out: &mut [u8]) {
    let done = luma_blocks(yuyv, out);
    let (pairs, _) = yuyv[2 * done..].as_chunks::<2>();
    for (o, px) in out[done..].iter_mut().zip(pairs) {
        *o = px[0];
    }
}

/// The leading multiple of 16 pixels of [`luma_row`] with SSE2; returns how many it did.
#[cfg(target_arch = "x86_64")]
fn luma_blocks(yuyv: &[u8], out: &mut [u8]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_loadu_si128, _mm_packus_epi16, _mm_set1_epi16, _mm_storeu_si128,
    };
    // SSE2 is part of x86_64: keep the low byte of each 16-bit pair, 16 pixels at a time.
    let blocks = out.len() / 16;
    for b in 0..blocks {
        let src = &yuyv[32 * b..32 * b + 32];
        let dst = &mut out[16 * b..16 * b + 16];
        // SAFETY: `src` has 32 readable bytes and `dst` 16 writable ones (unaligned
        // loads/stores); SSE2 is always available on x86_64.
        unsafe {
            let mask = _mm_set1_epi16(0x00FF);
            let lo = _mm_and_si128(_mm_loadu_si128(src.as_ptr() as *const __m128i), mask);
            let hi = _mm_and_si128(_mm_loadu_si128(src[16..].as_ptr() as *const __m128i), mask);
            _mm_storeu_si128(dst.as_mut_ptr() as *mut __m128i, _mm_packus_epi16(lo, hi));
        }
    }
    blocks * 16
}

#[cfg(not(target_arch = "x86_64"))]
fn luma_blocks(_yuyv: &[u8], _out: &mut [u8]) -> usize {
    0
}

/// YUYV rows (BT.601 limited range, as UVC cameras send) into packed RGB rows.
pub fn yuyv_to_rgb(src: &[u8], stride: usize, width: usize, rows: usize, dst: &mut [u8]) {
    for (r, out) in dst.chunks_exact_mut(3 * width).take(rows).enumerate() {
        let (quads, _) = src[r * stride..r * stride + 2 * width].as_chunks::<4>();
        let (pixels, _) = out.as_chunks_mut::<6>();
        for (pair, rgb) in quads.iter().zip(pixels) {
            let (u, v) = (i32::from(pair[1]) - 128, i32::from(pair[3]) - 128);
            for (y, px) in [pair[0], pair[2]].into_iter().zip(rgb.chunks_exact_mut(3)) {
                let c = 298 * (i32::from(y) - 16);
                px[0] = clamp((c + 409 * v + 128) >> 8);
                px[1] = clamp((c - 100 * u - 208 * v + 128) >> 8);
                px[2] = clamp((c + 516 * u + 128) >> 8);
            }
        }
    }
}

fn clamp(x: i32) -> u8 {
    x.clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_rows_lose_their_padding() {
        // 3 rows of 4 pixels, each row padded to 6 bytes with 0xEE.
        let src: Vec<u8> = (0..3u8)
            .flat_map(|r| (0..4).map(move |c| r * 10 + c).chain([0xEE, 0xEE]))
            .collect();
        let mut dst = [0u8; 12];
        copy_rows(&src[..16], 6, 4, 3, &mut dst);
        assert_eq!(dst, [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23]);
    }

    #[test]
    fn packed_rows_are_copied_whole() {
        let src: Vec<u8> = (0..12).collect();
        let mut dst = [0u8; 12];
        copy_rows(&src, 4, 4, 3, &mut dst);
        assert_eq!(&dst[..], &src[..]);
    }

    #[test]
    fn yuyv_luma_comes_out_row_by_row_past_the_padding() {
        // 2 rows, 4 pixels: Y = 10*row + x, U = 0x80, V = 0x81, padding 0xEE.
        let mut src = Vec::new();
        for r in 0..2u8 {
            for pair in 0..2u8 {
                src.extend([10 * r + 2 * pair, 0x80, 10 * r + 2 * pair + 1, 0x81]);
            }
            src.extend([0xEE; 4]);
        }
        let mut dst = [0u8; 8];
        yuyv_to_gray(&src, 12, 4, 2, &mut dst);
        assert_eq!(dst, [0, 1, 2, 3, 10, 11, 12, 13]);
    }

    #[test]
    fn wide_yuyv_rows_take_the_fast_path_and_the_tail_alike() {
        // 37 pixels (two 16-pixel blocks + a tail of 5) per row, rows padded to 80 bytes.
        let (w, h, stride) = (37usize, 3usize, 80usize);
        let src: Vec<u8> = (0..stride * h).map(|i| (i * 13 % 256) as u8).collect();
        let mut dst = vec![0u8; w * h];
        yuyv_to_gray(&src, stride, w, h, &mut dst);
        for r in 0..h {
            for x in 0..w {
                assert_eq!(dst[r * w + x], src[r * stride + 2 * x], "row {r} pixel {x}");
            }
        }
    }

    #[test]
    fn yuyv_primaries_convert_to_rgb() {
        // Limited-range BT.601: white (235,128,128), black (16,128,128), red (81,90,240).
        let src = [235, 128, 16, 128, 81, 90, 81, 240];
        let mut dst = [0u8; 12];
        yuyv_to_rgb(&src, 8, 4, 1, &mut dst);
        assert_eq!(&dst[..6], &[255, 255, 255, 0, 0, 0]);
        let red = &dst[6..9];
        assert!(red[0] >= 250 && red[1] <= 5 && red[2] <= 5, "{red:?}");
    }
}

#[cfg(test)]
mod alloc_tests {
    #[test]
    fn conversions_do_not_allocate() {
        let src = vec![7u8; 2 * 64 * 8 + 64];
        let mut gray = vec![0u8; 64 * 8];
        let mut rgb = vec![0u8; 3 * 64 * 8];
        let before = crate::test_alloc::allocations();
        super::copy_rows(&src, 72, 64, 8, &mut gray);
        super::yuyv_to_gray(&src, 136, 64, 8, &mut gray);
        super::yuyv_to_rgb(&src, 136, 64, 8, &mut rgb);
        assert_eq!(crate::test_alloc::allocations() - before, 0);
    }
}
