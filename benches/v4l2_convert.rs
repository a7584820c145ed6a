//! What the V4L2 capture thread does to each frame once the driver hands it a buffer: the
//! row copy out of the mmap buffer (packed and padded rows), YUYV → 8-bit luma and → RGB; and
//! what the MJPEG decoder thread does per frame.

use std::hint::black_box;
use std::time::Duration;

use behavd::frame::PixelFormat;
use behavd::source::v4l2::{convert, mjpeg};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn conversions(c: &mut Criterion) {
    let mut group = c.benchmark_group("v4l2");
    group.measurement_time(Duration::from_secs(3));
    for (w, h) in [(608usize, 608usize), (1280, 720)] {
        group.throughput(Throughput::Elements(1));
        let packed = pattern(w * h);
        let padded = pattern((w + 64) * h);
        let mut gray = vec![0u8; w * h];
        group.bench_function(format!("grey_copy_packed_{w}x{h}"), |b| {
            b.iter(|| convert::copy_rows(black_box(&packed), w, w, h, &mut gray))
        });
        group.bench_function(format!("grey_copy_padded_{w}x{h}"), |b| {
            b.iter(|| convert::copy_rows(black_box(&padded), w + 64, w, h, &mut gray))
        });
        let yuyv = pattern(2 * w * h);
        group.bench_function(format!("yuyv_to_gray_{w}x{h}"), |b| {
            b.iter(|| convert::yuyv_to_gray(black_box(&yuyv), 2 * w, w, h, &mut gray))
        });
        let mut rgb = vec![0u8; 3 * w * h];
        group.bench_function(format!("yuyv_to_rgb_{w}x{h}"), |b| {
            b.iter(|| convert::yuyv_to_rgb(black_box(&yuyv), 2 * w, w, h, &mut rgb))
        });
    }
    // A 640x480 JPEG of a smooth picture (quality 90), decoded to gray as the decoder thread does.
    let (w, h) = (640u16, 480u16);
    let rgb: Vec<u8> = (0..usize::from(w) * usize::from(h))
        .flat_map(|i| {
            let (x, y) = (i % usize::from(w), i / usize::from(w));
            [(x / 3) as u8, (y / 2) as u8, ((x + y) / 5) as u8]
        })
        .collect();
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 90)
        .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let mut out = vec![0u8; usize::from(w) * usize::from(h)];
    group.bench_function("mjpeg_decode_to_gray_640x480", |b| {
        b.iter(|| mjpeg::decode(black_box(&jpeg), 640, 480, PixelFormat::Gray8, &mut out).unwrap())
    });
    group.finish();
}

criterion_group!(benches, conversions);
criterion_main!(benches);
