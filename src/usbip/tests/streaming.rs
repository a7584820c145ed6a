//! Streaming: payload framing, skips, FIFO losses, stream stop.

use super::*;

/// Collects payloads for `frames` whole frames with URBs of `urb_len`, advancing one
/// frame period whenever no URB can be answered.
fn stream_frames(h: &mut Host, urb_len: u32, frames: usize) -> Vec<Vec<u8>> {
    let mut payloads = Vec::new();
    let mut eofs = 0;
    let period = h.dev.committed().period_ns();
    let mut guard = 0;
    while eofs < frames {
        guard += 1;
        assert!(guard < 10_000, "stream stalled");
        let (seq, replies) = h.bulk(urb_len);
        let mut replies = replies;
        // Skipped frames produce ticks without data: keep ticking until the URB is served.
        for _ in 0..100 {
            if !replies.is_empty() {
                break;
            }
            replies = h.advance(period);
        }
        assert_eq!(replies.len(), 1, "one URB pending, one payload");
        let Reply::Submit {
            seqnum,
            status,
            actual_length,
            data,
        } = replies.remove(0)
        else {
            panic!()
        };
        assert_eq!((seqnum, status), (seq, 0));
        assert_eq!(actual_length as usize, data.len());
        assert!(data.len() <= urb_len as usize);
        if data[1] & BFH_EOF != 0 {
            eofs += 1;
        }
        payloads.push(data);
    }
    payloads
}

fn frames_of(payloads: &[Vec<u8>]) -> Vec<(bool, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut cur = Vec::new();
    let mut fid = None;
    for p in payloads {
        assert_eq!(usize::from(p[0]), PAYLOAD_HEADER_LEN);
        assert_eq!(p[1] & 0x80, 0x80, "EOH");
        let f = p[1] & BFH_FID != 0;
        if let Some(prev) = fid
            && !cur.is_empty()
        {
            assert_eq!(prev, f, "FID constant within a frame");
        }
        fid = Some(f);
        cur.extend_from_slice(&p[PAYLOAD_HEADER_LEN..]);
        if p[1] & BFH_EOF != 0 {
            frames.push((f, std::mem::take(&mut cur)));
        }
    }
    frames
}

#[test]
fn payload_framing_fid_toggles_eof_on_last_and_sizes_add_up() {
    for format in PixelFormat::ALL {
        let mut h = Host::new(no_spacing());
        h.start(format, 333_333);
        let payloads = stream_frames(&mut h, 32_768, 3);
        let frames = frames_of(&payloads);
        assert_eq!(frames.len(), 3);
        let per_frame = format.frame_bytes().div_ceil(32_768 - PAYLOAD_HEADER_LEN);
        assert_eq!(payloads.len(), 3 * per_frame);
        for p in &payloads {
            let eof = p[1] & BFH_EOF != 0;
            assert_eq!(
                p.len() < 32_768,
                eof,
                "only the last payload of a frame is short"
            );
        }
        for (i, (fid, frame)) in frames.iter().enumerate() {
            assert_eq!(*fid, i % 2 == 1, "FID toggles per frame");
            assert_eq!(frame.len(), format.frame_bytes());
            let counter = payload::frame_counter(format, frame).unwrap();
            assert_eq!(counter, i as u64 + 1);
            assert!(
                *frame == payload::reference_frame(format, counter as u32),
                "frame content"
            );
        }
    }
}

#[test]
fn small_urbs_and_the_pattern_cache_agree_with_the_formula() {
    let mut h = Host::new(no_spacing());
    h.start(PixelFormat::Yuy2, 1_000_000);
    let payloads = stream_frames(&mut h, 16_384, 2);
    assert!(payloads.iter().all(|p| p.len() <= 16_384));
    let frames = frames_of(&payloads);
    assert!(frames[1].1 == payload::reference_frame(PixelFormat::Yuy2, 2));
    // Arbitrary ranges straddling the counter bytes.
    let pat = FramePattern::new(PixelFormat::Grey);
    let full = payload::reference_frame(PixelFormat::Grey, 0x0102_0304);
    for (off, len) in [(0, 3), (3, 10), (7, 2), (100, 5000), (full.len() - 9, 9)] {
        let mut out = Vec::new();
        pat.append(0x0102_0304, off, len, &mut out);
        assert_eq!(out, full[off..off + len], "range {off}+{len}");
    }
}

#[test]
fn skipped_frames_advance_the_counter_without_being_sent() {
    let mut h = Host::new(LookalikeConfig {
        skip: SkipPolicy {
            every: Some(3),
            list: BTreeSet::from([5]),
        },
        ..no_spacing()
    });
    h.start(PixelFormat::Grey, 333_333);
    let frames = frames_of(&stream_frames(&mut h, 32_768, 4));
    let counters: Vec<u64> = frames
        .iter()
        .map(|(_, f)| payload::frame_counter(PixelFormat::Grey, f).unwrap())
        .collect();
    assert_eq!(counters, [1, 2, 4, 7], "3, 5 and 6 skipped");
    assert_eq!(h.dev.stats().skipped_frames, 3);
    assert_eq!(
        h.get_pu(PuSelector::Contrast, req::GET_CUR),
        7u16.to_le_bytes()
    );
}

#[test]
fn a_full_fifo_loses_sensor_frames_that_the_counter_still_shows() {
    let mut h = Host::new(LookalikeConfig {
        fifo_frames: 2,
        ..no_spacing()
    });
    h.start(PixelFormat::Grey, 333_333);
    assert!(h.advance(5 * 33_333_400).is_empty(), "no URB pending");
    assert_eq!(h.dev.queued_frames(), 2);
    assert_eq!(h.dev.stats().fifo_dropped_frames, 3);
    let frames = frames_of(&stream_frames(&mut h, 32_768, 3));
    let counters: Vec<u64> = frames
        .iter()
        .map(|(_, f)| payload::frame_counter(PixelFormat::Grey, f).unwrap())
        .collect();
    assert_eq!(counters, [1, 2, 6]);
}

#[test]
fn streamoff_by_clear_halt_or_alt_zero_stops_ticking_and_drops_the_fifo() {
    for stop in [(0x02u8, 1u8, 0u16, 0x83u16), (0x01, 11, 0, 1)] {
        let mut h = Host::new(no_spacing());
        h.start(PixelFormat::Grey, 333_333);
        h.advance(2 * 33_333_400);
        assert_eq!(h.dev.queued_frames(), 2);
        h.control(stop.0, stop.1, stop.2, stop.3, 0, &[]).unwrap();
        assert!(!h.dev.streaming());
        assert_eq!(h.dev.queued_frames(), 0);
        let before = h.dev.daq().frame_counter();
        let (_, r) = h.bulk(32_768);
        assert!(r.is_empty());
        assert!(
            h.advance(10 * 33_333_400).is_empty(),
            "URB stays pending, nothing sent"
        );
        assert_eq!(
            h.dev.daq().frame_counter(),
            before,
            "no end of frame while stopped"
        );
        assert_eq!(h.dev.stats().stream_stops, 1);
        // STREAMON again: FID restarts, counter continues.
        h.start(PixelFormat::Grey, 333_333);
        let replies = h.advance(33_333_400);
        assert_eq!(replies.len(), 1, "the pending URB gets the new frame");
    }
}
