//! Ring handoff latency: a frame handle pushed on one thread and popped on another
//! (rtrb SPSC ring + pool slot refcount), measured as half the ping-pong round trip.

use std::hint::black_box;
use std::time::{Duration, Instant};

use behavd::frame::{Frame, FrameMeta, FramePool};
use criterion::{Criterion, criterion_group, criterion_main};

fn ring_handoff(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("frame_handle_one_way_latency", |b| {
        b.iter_custom(|iters| {
            let pool = FramePool::new(8, 64);
            let (mut to_echo, mut echo_rx) = rtrb::RingBuffer::<Frame>::new(4);
            let (mut echo_tx, mut back) = rtrb::RingBuffer::<Frame>::new(4);
            let echo = std::thread::spawn(move || {
                for _ in 0..iters {
                    let frame = loop {
                        if let Ok(f) = echo_rx.pop() {
                            break f;
                        }
                        std::hint::spin_loop();
                    };
                    while echo_tx.push(frame.clone()).is_err() {}
                }
            });
            let start = Instant::now();
            for i in 0..iters {
                let frame = pool.try_acquire().expect("slots return").freeze(FrameMeta {
                    index: i,
                    ..FrameMeta::default()
                });
                while to_echo.push(frame.clone()).is_err() {}
                drop(frame);
                let returned = loop {
                    if let Ok(f) = back.pop() {
                        break f;
                    }
                    std::hint::spin_loop();
                };
                black_box(returned.meta().index);
            }
            let elapsed = start.elapsed();
            echo.join().unwrap();
            elapsed / 2
        })
    });
    group.bench_function("acquire_freeze_clone_drop", |b| {
        let pool = FramePool::new(4, 608 * 608);
        b.iter(|| {
            let frame = pool.try_acquire().unwrap().freeze(FrameMeta::default());
            let copy = frame.clone();
            black_box(copy.meta().index);
        })
    });
    group.finish();
}

criterion_group!(benches, ring_handoff);
criterion_main!(benches);
