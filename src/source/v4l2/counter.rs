//! V4L2 sequence numbers → one device counter that stays continuous across reopenings.

/// Turns the driver's 32-bit sequence numbers into the stream's device counter.
///
/// Within one streaming session the counter is the sequence number (relative to the first
/// frame, so it survives the 32-bit wrap); the first session starts at the first sequence
/// number itself. A reopened device restarts its sequence at 0, so the first frame after a
/// reopening continues from the last counter by the number of frame periods that passed
/// between the two frames' timestamps: the frames due while the device was away show up as a
/// counter jump, which the capture loop records as a gap.
#[derive(Debug, Default, Clone)]
pub struct SeqCounter {
    session: Option<(u32, u64)>,
    last: Option<(u64, u64)>,
}

impl SeqCounter {
    /// The counter of a frame with sequence `seq` stamped `time_ns`, for a device delivering a
    /// frame every `period_ns`.
    pub fn next(&mut self, seq: u32, time_ns: u64, period_ns: u64) -> u64 {
        let counter = match self.session {
            Some((s0, c0)) => c0 + u64::from(seq.wrapping_sub(s0)),
            None => {
                let c = match self.last {
                    None => u64::from(seq),
                    Some((last, last_ns)) => {
                        let periods = (time_ns.saturating_sub(last_ns) as f64
                            / period_ns.max(1) as f64)
                            .round();
                        last + (periods as u64).max(1)
                    }
                };
                self.session = Some((seq, c));
                c
            }
        };
        self.last = Some((counter, time_ns));
        counter
    }

    /// The device was closed; its next frame starts a new sequence.
    pub fn reopened(&mut self) {
        self.session = None;
    }
}

#[cfg(test)]
mod tests {
    use super::SeqCounter;

    const P: u64 = 33_333_333;

    #[test]
    fn sequence_numbers_are_the_counter_and_gaps_stay_gaps() {
        let mut c = SeqCounter::default();
        assert_eq!(c.next(5, 0, P), 5);
        assert_eq!(c.next(6, P, P), 6);
        assert_eq!(c.next(9, 4 * P, P), 9, "two frames dropped by the driver");
    }

    #[test]
    fn the_32_bit_sequence_wraps_into_a_growing_counter() {
        let mut c = SeqCounter::default();
        assert_eq!(c.next(u32::MAX - 1, 0, P), u64::from(u32::MAX) - 1);
        assert_eq!(c.next(u32::MAX, P, P), u64::from(u32::MAX));
        assert_eq!(c.next(0, 2 * P, P), u64::from(u32::MAX) + 1);
    }

    #[test]
    fn a_reopened_device_continues_by_the_time_that_passed() {
        let mut c = SeqCounter::default();
        assert_eq!(c.next(0, 0, P), 0);
        assert_eq!(c.next(1, P, P), 1);
        c.reopened();
        // 2 s later the device restarts at sequence 0: 60 periods after frame 1.
        assert_eq!(c.next(0, P + 2_000_000_000, P), 61);
        assert_eq!(c.next(1, 2 * P + 2_000_000_000, P), 62);
        c.reopened();
        // Even a frame stamped too early moves the counter on.
        assert_eq!(c.next(0, 0, P), 63);
    }
}
