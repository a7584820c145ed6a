//! Stimulator protocol codec: encoding one frame into a caller buffer, and decoding a stream of
//! frames with the streaming decoder (per frame), for the commands on the trigger path.

use std::hint::black_box;
use std::time::Duration;

use behavd::stim::codec::{FrameDecoder, MAX_FRAME, Message};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("stim_codec");
    group.measurement_time(Duration::from_secs(3));
    let pulse = Message::Pulse {
        seq: 0x1234,
        channel: 0,
        width_us: 10_000,
        count: 5,
        period_us: 50_000,
    };
    let done = Message::PulseDone {
        seq: 0x1234,
        channel: 0,
        index: 3,
        rise_us: 123_456_789,
        fall_us: 123_466_789,
        flags: 0,
    };
    group.bench_function("encode_pulse", |b| {
        let mut buf = [0u8; MAX_FRAME];
        b.iter(|| black_box(black_box(&pulse).encode(&mut buf)));
    });
    let mut stream = Vec::new();
    for _ in 0..100 {
        stream.extend_from_slice(done.to_frame().as_bytes());
    }
    group.throughput(Throughput::Elements(100));
    group.bench_function("decode_100_pulse_done", |b| {
        let mut d = FrameDecoder::new();
        b.iter(|| {
            let mut n = 0;
            for m in d.feed(black_box(&stream)) {
                n += m.is_ok() as usize;
            }
            assert_eq!(n, 100);
        });
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
