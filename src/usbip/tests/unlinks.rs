//! Unlinks, including one that arrives before its submit.

use super::*;

#[test]
fn unlink_of_a_pending_urb_cancels_it_and_of_a_completed_one_says_so() {
    let mut h = Host::new(no_spacing());
    h.start(PixelFormat::Grey, 333_333);
    let (a, r) = h.bulk(32_768);
    assert!(r.is_empty());
    let (b, _) = h.bulk(32_768);
    let u = h.next_seq();
    let r = h.exchange(Command::Unlink(CmdUnlink {
        seqnum: u,
        devid: 1,
        direction: Direction::Out,
        ep: 3,
        unlink_seqnum: a,
    }));
    assert_eq!(
        r,
        [Reply::Unlink {
            seqnum: u,
            status: STATUS_UNLINKED
        }]
    );
    assert_eq!(h.dev.pending_urbs(), 1);
    // The next payload goes to b, never to a.
    let r = h.advance(33_333_400);
    assert!(
        matches!(&r[..], [Reply::Submit { seqnum, status: 0, .. }] if *seqnum == b),
        "{r:?}"
    );
    // Unlinking b now (already completed) answers status 0.
    let u = h.next_seq();
    let r = h.exchange(Command::Unlink(CmdUnlink {
        seqnum: u,
        devid: 1,
        direction: Direction::Out,
        ep: 3,
        unlink_seqnum: b,
    }));
    assert_eq!(
        r,
        [Reply::Unlink {
            seqnum: u,
            status: 0
        }]
    );
    assert_eq!(h.dev.stats().unlinked, 1);
}

#[test]
fn an_unlink_before_its_submit_cancels_it_and_the_late_submit_gets_no_answer() {
    let mut h = Host::new(no_spacing());
    h.start(PixelFormat::Grey, 333_333);
    let future = h.seq + 1;
    let u = h.seq + 2;
    h.seq += 2;
    let r = h.exchange(Command::Unlink(CmdUnlink {
        seqnum: u,
        devid: 1,
        direction: Direction::Out,
        ep: 3,
        unlink_seqnum: future,
    }));
    assert_eq!(
        r,
        [Reply::Unlink {
            seqnum: u,
            status: STATUS_UNLINKED
        }]
    );
    // The late submit: no RET_SUBMIT may ever name it.
    let late = h.exchange(submit(
        future,
        Direction::In,
        3,
        32_768,
        Setup::default(),
        Vec::new(),
    ));
    assert!(late.is_empty());
    assert_eq!(h.dev.pending_urbs(), 0);
    let r = h.advance(10 * 33_333_400);
    assert!(r.is_empty(), "{r:?}");
    assert_eq!(
        (
            h.dev.stats().early_unlinks,
            h.dev.stats().late_submits_dropped
        ),
        (1, 1)
    );
    // A later URB is served normally (from the frames queued meanwhile).
    let (next, r) = h.bulk(32_768);
    assert!(matches!(&r[..], [Reply::Submit { seqnum, .. }] if *seqnum == next));
}

#[test]
fn submits_to_unknown_endpoints_stall() {
    let mut h = Host::new(no_spacing());
    let seq = h.next_seq();
    let r = h.exchange(submit(
        seq,
        Direction::Out,
        3,
        4,
        Setup::default(),
        vec![0; 4],
    ));
    assert!(matches!(
        &r[..],
        [Reply::Submit {
            status: STATUS_STALL,
            ..
        }]
    ));
    let seq = h.next_seq();
    let r = h.exchange(submit(
        seq,
        Direction::In,
        1,
        64,
        Setup::default(),
        Vec::new(),
    ));
    assert!(matches!(
        &r[..],
        [Reply::Submit {
            status: STATUS_STALL,
            ..
        }]
    ));
}
