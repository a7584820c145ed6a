//! Unwrapping narrow device frame counters (the Miniscope DAQ's is 16 bits) into 64 bits.

/// Turns a counter that wraps at `2^bits` into a monotonically increasing 64-bit counter,
/// assuming fewer than `2^bits` frames pass between two reads.
#[derive(Debug, Clone)]
pub struct CounterUnwrapper {
    mask: u64,
    last_raw: Option<u64>,
    unwrapped: u64,
}

impl CounterUnwrapper {
    /// An unwrapper for a counter of `bits` bits (1–64).
    pub fn new(bits: u32) -> Self {
        assert!(
            (1..=64).contains(&bits),
            "counter width {bits} out of range"
        );
        Self {
            mask: if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            },
            last_raw: None,
            unwrapped: 0,
        }
    }

    /// The unwrapped value of the next raw reading.
    pub fn unwrap(&mut self, raw: u64) -> u64 {
        let raw = raw & self.mask;
        match self.last_raw {
            None => self.unwrapped = raw,
            Some(last) => self.unwrapped += raw.wrapping_sub(last) & self.mask,
        }
        self.last_raw = Some(raw);
        self.unwrapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_counter_unwraps_across_the_wrap() {
        let mut u = CounterUnwrapper::new(16);
        assert_eq!(u.unwrap(65534), 65534);
        assert_eq!(u.unwrap(65535), 65535);
        assert_eq!(u.unwrap(0), 65536);
        assert_eq!(u.unwrap(1), 65537);
    }

    #[test]
    fn jumps_across_the_wrap_keep_their_size() {
        let mut u = CounterUnwrapper::new(16);
        u.unwrap(65530);
        assert_eq!(u.unwrap(3), 65539, "9 frames later, 8 of them lost");
    }

    #[test]
    fn many_wraps_accumulate() {
        let mut u = CounterUnwrapper::new(16);
        let mut last = 0;
        for i in 0..300_000u64 {
            last = u.unwrap(i % 65536);
        }
        assert_eq!(last, 299_999);
    }

    #[test]
    fn bits_above_the_width_are_ignored() {
        let mut u = CounterUnwrapper::new(16);
        assert_eq!(u.unwrap(0x1_0005), 5);
    }
}
