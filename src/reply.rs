//! A one-shot answer from a data-plane thread to a control-plane caller that waits for it.
//!
//! The caller allocates the [`Reply`] (in an `Arc`) and hands it along with its request; the
//! data-plane thread claims it, does the work and fills it. Neither side takes a lock: the
//! state is an atomic, the answer a [`OnceLock`], and the waiting caller is woken with
//! [`std::thread::Thread::unpark`]. A caller that gives up first *abandons* the reply, after
//! which the data-plane thread's claim fails and the request is not carried out at all, so a
//! timed-out request never takes effect behind the caller's back.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

const PENDING: u8 = 0;
const CLAIMED: u8 = 1;
const ABANDONED: u8 = 2;

/// A one-shot answer of type `T`.
#[derive(Debug)]
pub struct Reply<T> {
    state: AtomicU8,
    answer: OnceLock<T>,
    waiter: Thread,
}

impl<T> Reply<T> {
    /// A reply the current thread will wait on.
    pub fn for_current_thread() -> Self {
        Self {
            state: AtomicU8::new(PENDING),
            answer: OnceLock::new(),
            waiter: std::thread::current(),
        }
    }

    /// Data plane: takes the request on. False when the caller has abandoned it (then do
    /// nothing) or it was claimed already.
    pub fn claim(&self) -> bool {
        self.state
            .compare_exchange(PENDING, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Data plane: the answer (the first one counts) and a wake-up for the caller.
    pub fn fill(&self, answer: T) {
        let _ = self.answer.set(answer);
        self.waiter.unpark();
    }

    /// Caller: the answer if it came by `deadline`. When it did not, the reply is abandoned
    /// if it was still unclaimed (`Err(true)`: the request will never be carried out); a
    /// claimed request is waited for up to `grace` more (`Err(false)` if even that passed:
    /// it may have been carried out).
    pub fn wait(&self, deadline: Instant, grace: Duration) -> Result<&T, bool> {
        loop {
            if let Some(answer) = self.answer.get() {
                return Ok(answer);
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::park_timeout(deadline - now);
        }
        if self
            .state
            .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return Err(true);
        }
        let end = deadline + grace;
        loop {
            if let Some(answer) = self.answer.get() {
                return Ok(answer);
            }
            let now = Instant::now();
            if now >= end {
                return Err(false);
            }
            std::thread::park_timeout(end - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn an_answer_from_another_thread_wakes_the_caller() {
        let reply = Arc::new(Reply::for_current_thread());
        let r = Arc::clone(&reply);
        let t = std::thread::spawn(move || {
            assert!(r.claim());
            r.fill(42u32);
        });
        let got = reply.wait(Instant::now() + Duration::from_secs(10), Duration::ZERO);
        assert_eq!(got, Ok(&42));
        t.join().unwrap();
    }

    #[test]
    fn an_abandoned_reply_cannot_be_claimed() {
        let reply: Reply<u32> = Reply::for_current_thread();
        assert_eq!(reply.wait(Instant::now(), Duration::ZERO), Err(true));
        assert!(!reply.claim(), "a request given up on is never carried out");
    }

    #[test]
    fn a_claimed_reply_is_waited_for_through_the_grace() {
        let reply: Reply<u32> = Reply::for_current_thread();
        assert!(reply.claim());
        assert!(!reply.claim());
        assert_eq!(reply.wait(Instant::now(), Duration::ZERO), Err(false));
    }
}
