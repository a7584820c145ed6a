//! A latest-wins, single-frame mailbox from a capture thread to one consumer (an inference or
//! signal thread). Publishing replaces the waiting frame (counted as skipped); taking empties
//! the box. Lock-free and allocation-free: the box holds a frame's slot index in one atomic
//! word, and ownership of the slot's reference moves with an atomic swap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::Thread;
use std::time::Duration;

use crate::frame::{Frame, FramePool};

/// One consumer's latest-wins mailbox.
pub struct Mailbox {
    pool: FramePool,
    /// 0 = empty, otherwise slot index + 1.
    slot: AtomicU64,
    skipped: AtomicU64,
    published: AtomicU64,
    consumer: std::sync::OnceLock<Thread>,
}

impl Mailbox {
    /// An empty mailbox for frames of `pool`.
    pub fn new(pool: FramePool) -> Self {
        Self {
            pool,
            slot: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            published: AtomicU64::new(0),
            consumer: std::sync::OnceLock::new(),
        }
    }

    /// Registers the consumer thread to wake on publish (call from the consumer).
    pub fn register_consumer(&self) {
        let _ = self.consumer.set(std::thread::current());
    }

    /// Puts `frame` in the box, dropping (and counting) any frame still waiting there.
    pub fn publish(&self, frame: Frame) {
        debug_assert!(frame.is_from(&self.pool));
        let raw = frame.into_raw() as u64 + 1;
        let old = self.slot.swap(raw, Ordering::AcqRel);
        self.published.fetch_add(1, Ordering::Relaxed);
        if old != 0 {
            // SAFETY: `old` was put there by `publish` and the swap made us its only owner.
            drop(unsafe { self.pool.frame_from_raw((old - 1) as u32) });
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(thread) = self.consumer.get() {
            thread.unpark();
        }
    }

    /// Takes the waiting frame, if any.
    pub fn take(&self) -> Option<Frame> {
        let raw = self.slot.swap(0, Ordering::AcqRel);
        // SAFETY: as in `publish`: the swap transferred the reference to us.
        (raw != 0).then(|| unsafe { self.pool.frame_from_raw((raw - 1) as u32) })
    }

    /// Waits up to `timeout` for a frame (the consumer parks; `publish` unparks it).
    pub fn wait(&self, timeout: Duration) -> Option<Frame> {
        if let Some(frame) = self.take() {
            return Some(frame);
        }
        std::thread::park_timeout(timeout);
        self.take()
    }

    /// Frames replaced before the consumer took them.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Frames published.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        drop(self.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameMeta;

    fn frame(pool: &FramePool, index: u64) -> Frame {
        let slot = pool.try_acquire().expect("free slot");
        slot.freeze(FrameMeta {
            index,
            ..FrameMeta::default()
        })
    }

    #[test]
    fn newest_frame_wins_and_replaced_slots_return_to_the_pool() {
        let pool = FramePool::new(3, 4);
        let mailbox = Mailbox::new(pool.clone());
        assert!(mailbox.take().is_none());
        mailbox.publish(frame(&pool, 0));
        mailbox.publish(frame(&pool, 1));
        assert_eq!(
            pool.available(),
            2,
            "the replaced frame's slot is free again"
        );
        mailbox.publish(frame(&pool, 2));
        assert_eq!(mailbox.skipped(), 2);
        assert_eq!(mailbox.published(), 3);
        let got = mailbox.take().unwrap();
        assert_eq!(got.meta().index, 2);
        assert!(mailbox.take().is_none());
        drop(got);
        assert_eq!(pool.available(), 3);
        mailbox.publish(frame(&pool, 3));
        drop(mailbox);
        assert_eq!(
            pool.available(),
            3,
            "a frame left in the box is released with it"
        );
    }

    #[test]
    fn a_consumer_on_another_thread_sees_increasing_frames_and_every_slot_comes_back() {
        let pool = FramePool::new(4, 8);
        let mailbox = std::sync::Arc::new(Mailbox::new(pool.clone()));
        let consumer = {
            let mailbox = mailbox.clone();
            std::thread::spawn(move || {
                mailbox.register_consumer();
                let mut last = None;
                let mut seen = 0u64;
                loop {
                    if let Some(f) = mailbox.wait(Duration::from_millis(50)) {
                        let i = f.meta().index;
                        assert!(
                            f.pixels().iter().all(|&p| p == (i % 251) as u8),
                            "torn frame {i}"
                        );
                        assert!(last.is_none_or(|l| i > l), "frames went backwards");
                        last = Some(i);
                        seen += 1;
                        if i == 19_999 {
                            return seen;
                        }
                    }
                }
            })
        };
        let mut i = 0u64;
        while i < 20_000 {
            let Some(mut slot) = pool.try_acquire() else {
                std::thread::yield_now();
                continue;
            };
            slot.pixels_mut().fill((i % 251) as u8);
            mailbox.publish(slot.freeze(FrameMeta {
                index: i,
                ..FrameMeta::default()
            }));
            i += 1;
        }
        let seen = consumer.join().unwrap();
        assert_eq!(seen + mailbox.skipped(), 20_000);
        drop(mailbox);
        assert_eq!(pool.available(), 4);
    }
}

#[cfg(test)]
mod allocation_tests {
    use super::*;
    use crate::frame::FrameMeta;

    #[test]
    fn publishing_and_taking_allocate_nothing() {
        let pool = FramePool::new(4, 16);
        let mailbox = Mailbox::new(pool.clone());
        mailbox.register_consumer();
        let before = crate::test_alloc::allocations();
        for i in 0..1000 {
            let frame = pool.try_acquire().unwrap().freeze(FrameMeta {
                index: i,
                ..FrameMeta::default()
            });
            mailbox.publish(frame);
            if i % 3 == 0 {
                drop(mailbox.take());
            }
        }
        assert_eq!(crate::test_alloc::allocations() - before, 0);
        assert!(mailbox.skipped() > 0);
    }
}
