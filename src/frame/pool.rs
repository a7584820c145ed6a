//! A fixed set of preallocated frame buffers per stream, handed out as reference-counted handles.
//!
//! The capture thread takes a free slot ([`FramePool::try_acquire`]), fills it through a unique
//! [`FrameMut`], then [`FrameMut::freeze`]s it into a shared [`Frame`] that can be cloned into
//! any number of consumer rings. When the last handle drops, the slot goes back to the free
//! list. Nothing here allocates or locks after [`FramePool::new`]: the free list is a lock-free
//! bounded queue and handles are an `Arc` clone (an atomic increment) plus a slot index.

use std::cell::UnsafeCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;

use super::FrameMeta;

struct Slot {
    refs: AtomicUsize,
    meta: UnsafeCell<FrameMeta>,
    pixels: UnsafeCell<Box<[u8]>>,
}

struct PoolInner {
    slots: Box<[Slot]>,
    free: ArrayQueue<u32>,
    frame_bytes: usize,
}

// SAFETY: a slot's cells are written only through the unique `FrameMut` (refs == 1, taken from
// the free list by exactly one thread) and read only through `Frame`s after `freeze`, which
// publishes the writes with a Release/Acquire pair on `refs`.
unsafe impl Sync for PoolInner {}
unsafe impl Send for PoolInner {}

/// A per-stream pool of `capacity` preallocated frame buffers of one size.
#[derive(Clone)]
pub struct FramePool {
    inner: Arc<PoolInner>,
}

impl FramePool {
    /// Allocates `capacity` buffers of `frame_bytes` bytes each (the only allocation the pool makes).
    pub fn new(capacity: usize, frame_bytes: usize) -> Self {
        assert!(
            capacity > 0 && capacity <= u32::MAX as usize,
            "pool capacity out of range"
        );
        let slots: Box<[Slot]> = (0..capacity)
            .map(|_| Slot {
                refs: AtomicUsize::new(0),
                meta: UnsafeCell::new(FrameMeta::default()),
                pixels: UnsafeCell::new(vec![0u8; frame_bytes].into_boxed_slice()),
            })
            .collect();
        let free = ArrayQueue::new(capacity);
        for i in 0..capacity {
            free.push(i as u32).expect("queue sized to capacity");
        }
        Self {
            inner: Arc::new(PoolInner {
                slots,
                free,
                frame_bytes,
            }),
        }
    }

    /// Takes a free slot for writing, or `None` when every slot is still held by a consumer.
    pub fn try_acquire(&self) -> Option<FrameMut> {
        let index = self.inner.free.pop()?;
        self.inner.slots[index as usize]
            .refs
            .store(1, Ordering::Relaxed);
        Some(FrameMut {
            frame: Frame {
                pool: Arc::clone(&self.inner),
                index,
            },
        })
    }

    /// Number of slots in the pool.
    pub fn capacity(&self) -> usize {
        self.inner.slots.len()
    }

    /// Number of slots currently free.
    pub fn available(&self) -> usize {
        self.inner.free.len()
    }

    /// Size of each frame buffer in bytes.
    pub fn frame_bytes(&self) -> usize {
        self.inner.frame_bytes
    }
}

/// A frame slot being filled by its capture thread; the only handle to that slot.
pub struct FrameMut {
    frame: Frame,
}

impl FrameMut {
    /// The pixel buffer to fill.
    pub fn pixels_mut(&mut self) -> &mut [u8] {
        // SAFETY: a FrameMut is the unique handle to its slot (refs == 1, not yet shared).
        unsafe { &mut *self.frame.slot().pixels.get() }
    }

    /// Stores the metadata and turns this into a shareable, read-only [`Frame`].
    pub fn freeze(self, meta: FrameMeta) -> Frame {
        let frame = self.frame;
        // SAFETY: still unique; the Release below publishes the write with the pixels.
        unsafe { *frame.slot().meta.get() = meta };
        frame.slot().refs.fetch_add(0, Ordering::Release);
        frame
    }
}

/// A shared, read-only handle to a filled frame slot. Cloning is allocation-free.
pub struct Frame {
    pool: Arc<PoolInner>,
    index: u32,
}

impl Frame {
    fn slot(&self) -> &Slot {
        &self.pool.slots[self.index as usize]
    }

    /// The frame's pixels, rows top to bottom.
    pub fn pixels(&self) -> &[u8] {
        // SAFETY: after freeze no handle writes the slot until every handle is dropped.
        unsafe { &*self.slot().pixels.get() }
    }

    /// The frame's metadata.
    pub fn meta(&self) -> &FrameMeta {
        // SAFETY: as for `pixels`.
        unsafe { &*self.slot().meta.get() }
    }
}

impl Frame {
    /// Gives up this handle's reference as a bare slot index (the slot stays held). Pair with
    /// [`FramePool::frame_from_raw`] on the same pool exactly once.
    pub fn into_raw(self) -> u32 {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again; only its Arc is released here.
        drop(unsafe { std::ptr::read(&this.pool) });
        this.index
    }

    /// Whether this frame's slot belongs to `pool`.
    pub fn is_from(&self, pool: &FramePool) -> bool {
        Arc::ptr_eq(&self.pool, &pool.inner)
    }
}

impl FramePool {
    /// Re-creates the handle given up by [`Frame::into_raw`].
    ///
    /// # Safety
    /// `index` must come from `into_raw` of a frame of this pool, and be used at most once.
    pub unsafe fn frame_from_raw(&self, index: u32) -> Frame {
        Frame {
            pool: Arc::clone(&self.inner),
            index,
        }
    }
}

impl Clone for Frame {
    fn clone(&self) -> Self {
        self.slot().refs.fetch_add(1, Ordering::Relaxed);
        Frame {
            pool: Arc::clone(&self.pool),
            index: self.index,
        }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        if self.slot().refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Last handle: the slot is free again. The queue cannot be full because each index
            // is in at most one place (free list or handles).
            let _ = self.pool.free.push(self.index);
        }
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("slot", &self.index)
            .field("meta", self.meta())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(index: u64) -> FrameMeta {
        FrameMeta {
            index,
            ..FrameMeta::default()
        }
    }

    #[test]
    fn slots_return_to_the_pool_when_the_last_handle_drops() {
        let pool = FramePool::new(2, 4);
        let mut a = pool.try_acquire().unwrap();
        a.pixels_mut().copy_from_slice(&[1, 2, 3, 4]);
        let a = a.freeze(meta(7));
        let a2 = a.clone();
        assert_eq!(pool.available(), 1);
        drop(a);
        assert_eq!(pool.available(), 1, "a clone still holds the slot");
        assert_eq!(a2.pixels(), &[1, 2, 3, 4]);
        assert_eq!(a2.meta().index, 7);
        drop(a2);
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn exhausted_pool_says_none_instead_of_blocking() {
        let pool = FramePool::new(1, 8);
        let held = pool.try_acquire().unwrap().freeze(meta(0));
        assert!(pool.try_acquire().is_none());
        drop(held);
        assert!(pool.try_acquire().is_some());
    }

    #[test]
    fn frames_cross_threads_intact() {
        let pool = FramePool::new(4, 1024);
        let (mut tx, mut rx) = rtrb::RingBuffer::<Frame>::new(4);
        let producer_pool = pool.clone();
        let producer = std::thread::spawn(move || {
            let mut sent = 0u64;
            while sent < 1000 {
                if let Some(mut slot) = producer_pool.try_acquire() {
                    slot.pixels_mut().fill(sent as u8);
                    let frame = slot.freeze(meta(sent));
                    if tx.push(frame).is_ok() {
                        sent += 1;
                    }
                } else {
                    std::thread::yield_now();
                }
            }
        });
        let mut received = 0u64;
        while received < 1000 {
            if let Ok(frame) = rx.pop() {
                assert_eq!(frame.meta().index, received);
                assert!(frame.pixels().iter().all(|&p| p == received as u8));
                received += 1;
            } else {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(pool.available(), 4);
    }
}
