//! Ring handoff: a frame handle pushed on one thread and popped on another (rtrb SPSC ring
//! plus the pool slot's refcount), and the cost of taking, sharing and returning a pool slot.

use std::hint::black_box;
use std::time::Duration;

use behavd::frame::{Frame, FrameMeta, FramePool};
use criterion::{Criterion, criterion_group, criterion_main};

fn ring(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("frame_handle_round_trip_between_threads", |b| {
        let pool = FramePool::new(8, 64);
        let (mut to_echo, mut echo_rx) = rtrb::RingBuffer::<Frame>::new(4);
        let (mut echo_tx, mut back) = rtrb::RingBuffer::<Frame>::new(4);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let echo_stop = stop.clone();
        let echo = std::thread::spawn(move || {
            while !echo_stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(frame) = echo_rx.pop() {
                    while echo_tx.push(frame.clone()).is_err() {}
                }
            }
        });
        b.iter(|| {
            let frame = pool
                .try_acquire()
                .expect("slots return")
                .freeze(FrameMeta::default());
            while to_echo.push(frame.clone()).is_err() {}
            drop(frame);
            loop {
                if let Ok(f) = back.pop() {
                    break black_box(f);
                }
            }
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        echo.join().unwrap();
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

criterion_group!(benches, ring);
criterion_main!(benches);
