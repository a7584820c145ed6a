use super::*;
use jpeg_encoder::{ColorType, Encoder};

/// A gradient with a bright square, 64 × 48, gray and RGB.
fn picture() -> (Vec<u8>, Vec<u8>) {
    let (w, h) = (64usize, 48usize);
    let mut gray = Vec::with_capacity(w * h);
    let mut rgb = Vec::with_capacity(3 * w * h);
    for y in 0..h {
        for x in 0..w {
            let inside = (16..32).contains(&x) && (16..32).contains(&y);
            let g = if inside { 230 } else { (x * 3 + y) as u8 };
            gray.push(g);
            rgb.extend([g, 255 - g, (y * 4) as u8]);
        }
    }
    (gray, rgb)
}

fn encode(pixels: &[u8], color: ColorType) -> Vec<u8> {
    let mut jpeg = Vec::new();
    Encoder::new(&mut jpeg, 100)
        .encode(pixels, 64, 48, color)
        .unwrap();
    jpeg
}

fn assert_close(decoded: &[u8], original: &[u8]) {
    assert_eq!(decoded.len(), original.len());
    let max = decoded
        .iter()
        .zip(original)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    let mean = decoded
        .iter()
        .zip(original)
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / original.len() as f64;
    assert!(max <= 24 && mean < 2.0, "max error {max}, mean {mean}");
}

#[test]
fn a_gray_jpeg_decodes_to_its_pixels() {
    let (gray, _) = picture();
    let mut out = vec![0u8; 64 * 48];
    decode(
        &encode(&gray, ColorType::Luma),
        64,
        48,
        PixelFormat::Gray8,
        &mut out,
    )
    .unwrap();
    assert_close(&out, &gray);
}

#[test]
fn a_color_jpeg_decodes_to_rgb_or_to_its_luma() {
    let (_, rgb) = picture();
    let jpeg = encode(&rgb, ColorType::Rgb);
    let mut out = vec![0u8; 3 * 64 * 48];
    decode(&jpeg, 64, 48, PixelFormat::Rgb8, &mut out).unwrap();
    assert_close(&out, &rgb);
    let mut luma = vec![0u8; 64 * 48];
    decode(&jpeg, 64, 48, PixelFormat::Gray8, &mut luma).unwrap();
    let expected: Vec<u8> = rgb
        .chunks_exact(3)
        .map(|p| {
            (0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])).round()
                as u8
        })
        .collect();
    assert_close(&luma, &expected);
}

#[test]
fn a_jpeg_of_the_wrong_size_or_garbage_is_refused() {
    let (gray, _) = picture();
    let jpeg = encode(&gray, ColorType::Luma);
    let mut out = vec![0u8; 32 * 32];
    let err = decode(&jpeg, 32, 32, PixelFormat::Gray8, &mut out).unwrap_err();
    assert!(err.contains("expected 32x32"), "{err}");
    let mut out = vec![0u8; 64 * 48];
    assert!(decode(&[0xFF, 0xD8, 1, 2, 3], 64, 48, PixelFormat::Gray8, &mut out).is_err());
}

#[test]
fn the_decoder_thread_hands_frames_back_in_order_one_behind() {
    let (gray, _) = picture();
    let jpeg = encode(&gray, ColorType::Luma);
    let mut dec = MjpegDecoder::start("test", 64, 48, PixelFormat::Gray8, 64 * 1024).unwrap();
    let stamp = |k: u64| CaptureStamp {
        raw_counter: k,
        ..CaptureStamp::default()
    };
    let mut out = vec![0u8; 64 * 48];
    assert!(dec.submit(&jpeg, stamp(0)));
    for k in 1..6 {
        assert!(dec.submit(&jpeg, stamp(k)));
        assert_eq!(dec.in_flight(), 2);
        assert!(!dec.submit(&jpeg, stamp(99)), "only two jobs exist");
        let got = dec.receive(&mut out).unwrap();
        assert_eq!(got.raw_counter, k - 1);
        assert_close(&out, &gray);
    }
    // A corrupt frame comes back as an error and its job is reusable.
    assert!(dec.submit(&[0xFF, 0xD8, 0, 0], stamp(7)));
    assert_eq!(dec.receive(&mut out).unwrap().raw_counter, 5);
    assert!(dec.receive(&mut out).is_err());
    assert!(dec.submit(&jpeg, stamp(8)));
    dec.discard();
    assert_eq!(dec.in_flight(), 0);
}

#[test]
fn handing_frames_to_the_decoder_and_taking_them_back_does_not_allocate() {
    let (gray, _) = picture();
    let jpeg = encode(&gray, ColorType::Luma);
    let mut dec = MjpegDecoder::start("alloc", 64, 48, PixelFormat::Gray8, 64 * 1024).unwrap();
    let mut out = vec![0u8; 64 * 48];
    assert!(dec.submit(&jpeg, CaptureStamp::default()));
    // Warm up the channels once, then count the capture thread's allocations.
    assert!(dec.submit(&jpeg, CaptureStamp::default()));
    dec.receive(&mut out).unwrap();
    let before = crate::test_alloc::allocations();
    for _ in 0..20 {
        assert!(dec.submit(&jpeg, CaptureStamp::default()));
        dec.receive(&mut out).unwrap();
    }
    assert_eq!(crate::test_alloc::allocations() - before, 0);
}
