use super::*;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn frame_of(m: &Message) -> Vec<u8> {
    m.to_frame().as_bytes().to_vec()
}

fn decode_all(bytes: &[u8]) -> Vec<Result<Message, FrameError>> {
    let mut d = FrameDecoder::new();
    d.feed(bytes).collect()
}

/// One example of every message type, with every field distinct and multi-byte fields using all
/// their bytes (so a swapped or truncated field shows).
pub(super) fn one_of_each() -> Vec<Message> {
    vec![
        Message::Hello { protocol: 1 },
        Message::Ping { token: 0xDEAD_BEEF },
        Message::Pulse {
            seq: 0x1234,
            channel: 1,
            width_us: 0x0102_0304,
            count: 0x0506,
            period_us: 0x0708_090A,
        },
        Message::SetLevel {
            seq: 0xFFFF,
            channel: 0,
            level: 1,
        },
        Message::StopAll { seq: 0 },
        Message::SetSafety {
            seq: 0xABCD,
            channel: 1,
            max_on_us: 5_000_000,
            max_duty_permille: 500,
            duty_window_ms: 1000,
            watchdog_ms: 1000,
        },
        Message::HostHeartbeat,
        Message::ClearFaults { seq: 0x0100 },
        Message::Ok {
            seq: 7,
            device_us: 0x0011_2233_4455_6677,
        },
        Message::Capabilities {
            protocol: 1,
            fw_major: 1,
            fw_minor: 0,
            fw_patch: 0,
            channels: 2,
            inputs: 1,
            tick_ns: 500,
            board: *b"uno\0\0\0\0\0",
        },
        Message::Pong {
            token: 7,
            device_us: u64::MAX,
        },
        Message::PulseDone {
            seq: 2,
            channel: 0,
            index: 4,
            rise_us: 1_000_000,
            fall_us: 1_010_000,
            flags: pulse_flag::MAX_ON_CUT | pulse_flag::CANCELLED,
        },
        Message::Nack {
            seq: 9,
            reason: nack::DUTY_CYCLE,
        },
        Message::InputEvent {
            input: 0,
            level: 1,
            device_us: 123_456_789,
            count: 0x8000_0001,
        },
        Message::DeviceHeartbeat {
            device_us: 250_000,
            faults: fault_bit::WATCHDOG | fault_bit::RX_OVERFLOW,
            rx_errors: 0xFFFF,
        },
        Message::Fault {
            code: fault::WATCHDOG,
            channel: 0xFF,
            device_us: 42,
            detail: 1001,
        },
    ]
}

#[test]
fn crc_check_value() {
    // PROTOCOL.md §1: check value of ASCII "123456789" = 0x29B1.
    assert_eq!(crc16(b"123456789"), 0x29B1);
    assert_eq!(crc16(b""), 0xFFFF);
}

#[test]
fn cobs_known_examples() {
    // Cheshire & Baker 1999 / the usual COBS examples.
    let cases: &[(&[u8], &[u8])] = &[
        (&[], &[0x01]),
        (&[0x00], &[0x01, 0x01]),
        (&[0x00, 0x00], &[0x01, 0x01, 0x01]),
        (&[0x11, 0x22, 0x00, 0x33], &[0x03, 0x11, 0x22, 0x02, 0x33]),
        (&[0x11, 0x22, 0x33, 0x44], &[0x05, 0x11, 0x22, 0x33, 0x44]),
        (&[0x11, 0x00, 0x00, 0x00], &[0x02, 0x11, 0x01, 0x01, 0x01]),
    ];
    for (raw, enc) in cases {
        let mut out = [0u8; 16];
        let n = cobs_encode(raw, &mut out);
        assert_eq!(&out[..n], *enc, "encode {raw:02x?}");
        let mut dec = [0u8; 16];
        let m = cobs_decode(enc, &mut dec).unwrap();
        assert_eq!(&dec[..m], *raw, "decode {enc:02x?}");
    }
}

#[test]
fn cobs_long_runs_round_trip() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    for len in 0..600 {
        let zero_rate = [0.0, 0.01, 0.5][len % 3];
        let raw: Vec<u8> = (0..len)
            .map(|_| {
                if rng.random_bool(zero_rate) {
                    0
                } else {
                    rng.random_range(1..=255)
                }
            })
            .collect();
        let mut enc = vec![0u8; cobs_max_encoded_len(len)];
        let n = cobs_encode(&raw, &mut enc);
        assert!(!enc[..n].contains(&0));
        let mut dec = vec![0u8; len + 1];
        let m = cobs_decode(&enc[..n], &mut dec).unwrap();
        assert_eq!(&dec[..m], &raw[..], "len {len}");
    }
}

#[test]
fn cobs_decode_rejects() {
    let mut out = [0u8; 8];
    assert_eq!(
        cobs_decode(&[0x03, 0x11], &mut out),
        Err(CobsError::Truncated)
    );
    assert_eq!(
        cobs_decode(&[0x03, 0x00, 0x11], &mut out),
        Err(CobsError::ZeroByte)
    );
    assert_eq!(
        cobs_decode(&[0x05, 1, 2, 3, 4], &mut out[..2]),
        Err(CobsError::OutputTooSmall)
    );
}

#[test]
fn every_message_round_trips() {
    for m in one_of_each() {
        let f = frame_of(&m);
        assert_eq!(*f.last().unwrap(), 0);
        assert!(
            !f[..f.len() - 1].contains(&0),
            "{m:?}: 0x00 inside the frame"
        );
        assert!(f.len() <= MAX_FRAME);
        let mut payload = [0u8; MAX_PAYLOAD];
        let n = m.write_payload(&mut payload);
        assert_eq!(n, 1 + msg_type::body_len(m.msg_type()).unwrap(), "{m:?}");
        // COBS adds exactly one byte for frames this short, plus the delimiter.
        assert_eq!(f.len(), n + 2 + 1 + 1);
        assert_eq!(decode_all(&f), vec![Ok(m)]);
        assert_eq!(Message::decode(&payload[..n]), Ok(m));
    }
}

#[test]
fn encode_writes_exactly_the_frame() {
    let m = Message::Ping { token: 7 };
    let mut buf = [0xAAu8; 40];
    let n = m.encode(&mut buf);
    assert_eq!(n, 1 + 4 + 2 + 1 + 1);
    assert!(buf[n..].iter().all(|&b| b == 0xAA));
    // A buffer exactly as long as the frame is enough.
    let mut exact = vec![0u8; n];
    assert_eq!(m.encode(&mut exact), n);
    assert_eq!(exact, &buf[..n]);
}

#[test]
#[should_panic(expected = "frame buffer too small")]
fn encode_into_a_short_buffer_panics_with_a_message() {
    Message::Ping { token: 7 }.encode(&mut [0u8; 4]);
}

#[test]
fn encode_does_not_allocate() {
    let msgs = one_of_each();
    let mut buf = [0u8; MAX_FRAME];
    let mut d = FrameDecoder::new();
    let before = crate::test_alloc::allocations();
    for m in &msgs {
        let n = m.encode(&mut buf);
        for &b in &buf[..n] {
            if let Some(r) = d.push(b) {
                assert!(r.as_ref().ok() == Some(m));
            }
        }
    }
    assert_eq!(crate::test_alloc::allocations() - before, 0);
}

#[test]
fn protocol_md_hand_computed_frame() {
    // PING{token 7}: payload 02 07 00 00 00, CRC-16/CCITT-FALSE appended little-endian, COBS.
    let payload = [0x02, 0x07, 0x00, 0x00, 0x00];
    let crc = crc16(&payload).to_le_bytes();
    let raw = [0x02, 0x07, 0x00, 0x00, 0x00, crc[0], crc[1]];
    let mut expect = [0u8; 16];
    let n = cobs_encode(&raw, &mut expect);
    assert_eq!(&expect[..3], &[0x03, 0x02, 0x07]);
    let f = frame_of(&Message::Ping { token: 7 });
    assert_eq!(&f[..f.len() - 1], &expect[..n]);
    assert_eq!(f.len(), n + 1);
}

#[test]
fn protocol_md_conversation_values() {
    // PROTOCOL.md §6: the example conversation's messages encode and decode unchanged.
    let conv = [
        Message::Hello { protocol: 1 },
        Message::Capabilities {
            protocol: 1,
            fw_major: 1,
            fw_minor: 0,
            fw_patch: 0,
            channels: 2,
            inputs: 1,
            tick_ns: 500,
            board: *b"uno\0\0\0\0\0",
        },
        Message::SetSafety {
            seq: 1,
            channel: 0,
            max_on_us: 5_000_000,
            max_duty_permille: 500,
            duty_window_ms: 1000,
            watchdog_ms: 1000,
        },
        Message::Ok {
            seq: 1,
            device_us: 1_000_123,
        },
        Message::Ping { token: 7 },
        Message::Pong {
            token: 7,
            device_us: 1_000_456,
        },
        Message::Pulse {
            seq: 2,
            channel: 0,
            width_us: 10_000,
            count: 5,
            period_us: 50_000,
        },
        Message::PulseDone {
            seq: 2,
            channel: 0,
            index: 0,
            rise_us: 1_001_000,
            fall_us: 1_011_000,
            flags: 0,
        },
        Message::HostHeartbeat,
        Message::DeviceHeartbeat {
            device_us: 1_250_000,
            faults: 0,
            rx_errors: 0,
        },
    ];
    let mut stream = vec![0u8]; // the host's leading flush
    for m in &conv {
        stream.extend_from_slice(m.to_frame().as_bytes());
    }
    let got: Vec<_> = decode_all(&stream)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, conv);
    // Field layout spot checks against §3 (little-endian, in table order).
    let mut p = [0u8; MAX_PAYLOAD];
    let n = conv[6].write_payload(&mut p);
    assert_eq!(
        &p[..n],
        &[0x03, 2, 0, 0, 0x10, 0x27, 0, 0, 5, 0, 0x50, 0xC3, 0, 0]
    );
    let n = conv[1].write_payload(&mut p);
    assert_eq!(
        &p[..n],
        &[
            0x81, 1, 1, 0, 0, 2, 1, 0xF4, 0x01, b'u', b'n', b'o', 0, 0, 0, 0, 0
        ]
    );
}

#[test]
fn extra_trailing_bytes_are_ignored() {
    // PROTOCOL.md §7: receivers accept and ignore extra trailing bytes up to the maximum payload.
    let mut payload = vec![msg_type::PING, 7, 0, 0, 0];
    payload.extend(std::iter::repeat_n(0xEE, MAX_PAYLOAD - payload.len()));
    let mut f = [0u8; MAX_FRAME];
    let n = encode_frame(&payload, &mut f);
    assert_eq!(decode_all(&f[..n]), vec![Ok(Message::Ping { token: 7 })]);
}

fn frame_raw(payload_and_crc: &[u8]) -> Vec<u8> {
    let mut enc = vec![0u8; cobs_max_encoded_len(payload_and_crc.len())];
    let n = cobs_encode(payload_and_crc, &mut enc);
    enc.truncate(n);
    enc.push(0);
    enc
}

fn with_crc(payload: &[u8]) -> Vec<u8> {
    let mut v = payload.to_vec();
    v.extend_from_slice(&crc16(payload).to_le_bytes());
    v
}

#[test]
fn bad_frames_are_rejected_with_the_right_error() {
    // Bad CRC: flip one payload bit.
    let mut raw = with_crc(&[msg_type::PING, 7, 0, 0, 0]);
    raw[1] ^= 0x01;
    let r = decode_all(&frame_raw(&raw));
    assert!(matches!(r[..], [Err(FrameError::Crc { .. })]), "{r:?}");

    // Short: two bytes after COBS.
    assert_eq!(
        decode_all(&frame_raw(&[0x02, 0x07])),
        vec![Err(FrameError::Short { len: 2 })]
    );
    // Unknown type (valid CRC).
    assert_eq!(
        decode_all(&frame_raw(&with_crc(&[0x09, 1, 2]))),
        vec![Err(FrameError::UnknownType(0x09))]
    );
    assert_eq!(
        decode_all(&frame_raw(&with_crc(&[0x88]))),
        vec![Err(FrameError::UnknownType(0x88))]
    );
    // Bad length: a PULSE with 12 field bytes instead of 13.
    let mut pulse = vec![msg_type::PULSE];
    pulse.extend_from_slice(&[1; 12]);
    assert_eq!(
        decode_all(&frame_raw(&with_crc(&pulse))),
        vec![Err(FrameError::BadLength {
            msg_type: msg_type::PULSE,
            len: 12,
            expected: 13
        })]
    );
    // Too long: 61 payload bytes.
    let long = with_crc(&[msg_type::HOST_HEARTBEAT; 61]);
    assert_eq!(
        decode_all(&frame_raw(&long)),
        vec![Err(FrameError::TooLong { len: 61 })]
    );
    // Bad COBS: a code byte pointing past the end.
    assert_eq!(
        decode_all(&[0x09, 0x01, 0x02, 0x00]),
        vec![Err(FrameError::Cobs(CobsError::Truncated))]
    );
}

#[test]
fn overflow_discards_until_delimiter_and_counts_once() {
    let good = frame_of(&Message::Ping { token: 1 });
    let mut stream = vec![0x55u8; 100];
    stream.push(0);
    stream.extend_from_slice(&good);
    let mut d = FrameDecoder::new();
    let got: Vec<_> = d.feed(&stream).collect();
    assert_eq!(
        got,
        vec![
            Err(FrameError::Overflow { discarded: 100 }),
            Ok(Message::Ping { token: 1 })
        ]
    );
    assert_eq!(d.stats().overflow, 1);
    assert_eq!(d.stats().overflow_bytes, 100);
    assert_eq!(d.stats().frames_ok, 1);
    assert_eq!(d.stats().frames_bad(), 1);

    // Exactly 64 bytes then a delimiter is not an overflow (it is a bad frame).
    let mut d = FrameDecoder::new();
    let mut s = vec![0x55u8; 64];
    s.push(0);
    let got: Vec<_> = d.feed(&s).collect();
    assert_eq!(got.len(), 1);
    assert!(!matches!(got[0], Err(FrameError::Overflow { .. })));
}

#[test]
fn lone_delimiters_are_silent() {
    let mut d = FrameDecoder::new();
    assert_eq!(d.feed(&[0, 0, 0]).count(), 0);
    assert_eq!(*d.stats(), DecoderStats::default());
}

#[test]
fn byte_at_a_time_equals_whole_chunk() {
    let mut stream = vec![0u8];
    for m in one_of_each() {
        stream.extend_from_slice(m.to_frame().as_bytes());
    }
    let whole = decode_all(&stream);
    let mut d = FrameDecoder::new();
    let mut bytewise = Vec::new();
    for &b in &stream {
        bytewise.extend(d.feed(&[b]));
    }
    assert_eq!(whole, bytewise);
    assert_eq!(whole.len(), 16);
}

#[test]
fn push_raw_gives_the_payload_of_unknown_types() {
    let mut d = FrameDecoder::new();
    let f = frame_raw(&with_crc(&[0x7E, 0x34, 0x12]));
    let mut got = None;
    for &b in &f {
        if let Some(r) = d.push_raw(b) {
            got = Some(r.map(<[u8]>::to_vec));
        }
    }
    assert_eq!(got, Some(Ok(vec![0x7E, 0x34, 0x12])));
}

/// Property: random garbage never panics, and every valid frame that follows a 0x00 is recovered
/// intact whatever came before it.
#[test]
fn random_streams_never_panic_and_frames_after_a_delimiter_survive() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x5717_C0DE);
    let catalogue = one_of_each();
    for iter in 0..20_000 {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..rng.random_range(0..6) {
            // Garbage: biased to sometimes look like frames (few zeros, long runs).
            let glen = rng.random_range(0..150);
            let zero_p = [0.0, 0.02, 0.3][rng.random_range(0..3)];
            for _ in 0..glen {
                stream.push(if rng.random_bool(zero_p) {
                    0
                } else {
                    rng.random()
                });
            }
            if rng.random_bool(0.7) {
                let mut m = catalogue[rng.random_range(0..catalogue.len())];
                if let Message::Ping { token } = &mut m {
                    *token = rng.random();
                }
                stream.push(0);
                stream.extend_from_slice(m.to_frame().as_bytes());
                expected.push(m);
            }
        }
        // Feed in random chunk sizes.
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        let mut pos = 0;
        while pos < stream.len() {
            let n = rng.random_range(1..=40).min(stream.len() - pos);
            got.extend(d.feed(&stream[pos..pos + n]).filter_map(Result::ok));
            pos += n;
        }
        // Garbage may itself decode to a valid message (CRC collision, ~2^-16 per candidate);
        // every expected message must be found, in order, as a subsequence.
        let mut it = got.iter();
        for e in &expected {
            assert!(
                it.any(|g| g == e),
                "iteration {iter}: lost {e:?}; got {got:?}"
            );
        }
        let s = d.stats();
        assert!(s.frames_ok >= expected.len() as u64);
    }
}

/// Vectors written by the firmware side (`firmware-interface/test-vectors/`).
mod vectors;
