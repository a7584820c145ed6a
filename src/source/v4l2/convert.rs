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
        let row = &src[r * stride..r * stride + 2 * width];
        for (o, px) in out.iter_mut().zip(row.chunks_exact(2)) {
            *o = px[0];
        }
    }
}

/// YUYV rows (BT.601 limited range, as UVC cameras send) into packed RGB rows.
pub fn yuyv_to_rgb(src: &[u8], stride: usize, width: usize, rows: usize, dst: &mut [u8]) {
    for (r, out) in dst.chunks_exact_mut(3 * width).take(rows).enumerate() {
        let row = &src[r * stride..r * stride + 2 * width];
        for (pair, rgb) in row.chunks_exact(4).zip(out.chunks_exact_mut(6)) {
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
