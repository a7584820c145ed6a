//! The USB/IP wire format and the vhci helpers.

use super::*;

#[test]
fn cmd_submit_has_the_documented_byte_layout_and_round_trips() {
    let setup = Setup {
        request_type: 0x80,
        request: 6,
        value: 0x0100,
        index: 0,
        length: 64,
    };
    let cmd = Command::Submit(CmdSubmit {
        seqnum: 0x0102_0304,
        devid: 0x0001_0002,
        direction: Direction::In,
        ep: 0,
        transfer_flags: 0x0000_0200,
        transfer_buffer_length: 64,
        start_frame: -1,
        number_of_packets: 0,
        interval: 8,
        setup,
        data: Vec::new(),
    });
    let bytes = protocol::encode_command(&cmd);
    assert_eq!(bytes.len(), HEADER_LEN);
    #[rustfmt::skip]
    let expected: [u8; 48] = [
        0, 0, 0, 1,   1, 2, 3, 4,   0, 1, 0, 2,   0, 0, 0, 1,   0, 0, 0, 0,
        0, 0, 2, 0,   0, 0, 0, 64,  0xFF, 0xFF, 0xFF, 0xFF,   0, 0, 0, 0,   0, 0, 0, 8,
        0x80, 6, 0x00, 0x01, 0, 0, 64, 0,
    ];
    assert_eq!(bytes, expected);
    let back = protocol::read_command(&mut &bytes[..]).unwrap().unwrap();
    assert_eq!(back, cmd);
}

#[test]
fn out_submit_carries_its_data_and_iso_descriptors_are_skipped() {
    let setup = Setup {
        request_type: 0x21,
        request: 1,
        value: 0x0300,
        index: 0x0200,
        length: 2,
    };
    let cmd = submit(7, Direction::Out, 0, 2, setup, vec![0xC0, 0x03]);
    let mut bytes = protocol::encode_command(&cmd);
    assert_eq!(bytes.len(), HEADER_LEN + 2);
    // A second command right behind it must be read intact.
    let unlink = Command::Unlink(CmdUnlink {
        seqnum: 9,
        devid: 1,
        direction: Direction::Out,
        ep: 0,
        unlink_seqnum: 7,
    });
    bytes.extend(protocol::encode_command(&unlink));
    let mut r = &bytes[..];
    assert_eq!(protocol::read_command(&mut r).unwrap().unwrap(), cmd);
    assert_eq!(protocol::read_command(&mut r).unwrap().unwrap(), unlink);
    assert!(
        protocol::read_command(&mut r).unwrap().is_none(),
        "clean EOF is the host detaching"
    );

    // ISO: number_of_packets = 2 → 32 descriptor bytes after the data are consumed.
    let mut iso = protocol::encode_command(&cmd);
    iso[32..36].copy_from_slice(&2u32.to_be_bytes());
    iso.extend([0xAA; 32]);
    iso.extend(protocol::encode_command(&unlink));
    let mut r = &iso[..];
    protocol::read_command(&mut r).unwrap().unwrap();
    assert_eq!(protocol::read_command(&mut r).unwrap().unwrap(), unlink);
}

#[test]
fn unlink_layout_and_bad_headers() {
    let unlink = Command::Unlink(CmdUnlink {
        seqnum: 5,
        devid: 0x0001_0002,
        direction: Direction::In,
        ep: 3,
        unlink_seqnum: 0xA0B0_C0D0,
    });
    let b = protocol::encode_command(&unlink);
    assert_eq!(b.len(), HEADER_LEN);
    assert_eq!(&b[0..4], &[0, 0, 0, 2]);
    assert_eq!(&b[20..24], &[0xA0, 0xB0, 0xC0, 0xD0]);
    assert!(b[24..].iter().all(|&x| x == 0));

    let mut bad = b.clone();
    bad[3] = 3; // RET_SUBMIT is never sent to a device
    assert!(matches!(
        protocol::read_command(&mut &bad[..]),
        Err(protocol::ProtocolError::UnknownCommand(3))
    ));
    let mut bad = b.clone();
    bad[15] = 7;
    assert!(matches!(
        protocol::read_command(&mut &bad[..]),
        Err(protocol::ProtocolError::BadDirection(7))
    ));
    assert!(
        protocol::read_command(&mut &b[..20]).is_err(),
        "a truncated header is an error, not EOF"
    );
}

#[test]
fn ret_submit_and_ret_unlink_layouts() {
    let r = Reply::Submit {
        seqnum: 0x11,
        status: STATUS_STALL,
        actual_length: 3,
        data: vec![1, 2, 3],
    };
    let b = r.encode();
    assert_eq!(b.len(), HEADER_LEN + 3);
    assert_eq!(&b[0..4], &[0, 0, 0, 3]);
    assert_eq!(&b[4..8], &[0, 0, 0, 0x11]);
    assert_eq!(&b[8..20], &[0; 12], "devid, direction, ep are 0 in replies");
    assert_eq!(&b[20..24], &(-32i32).to_be_bytes());
    assert_eq!(&b[24..28], &[0, 0, 0, 3]);
    assert_eq!(&b[28..48], &[0; 20]);
    assert_eq!(Reply::decode(&b), Some(r));

    let u = Reply::Unlink {
        seqnum: 0x22,
        status: STATUS_UNLINKED,
    };
    let b = u.encode();
    assert_eq!(b.len(), HEADER_LEN);
    assert_eq!(&b[0..4], &[0, 0, 0, 4]);
    assert_eq!(&b[20..24], &(-104i32).to_be_bytes());
    assert_eq!(Reply::decode(&b), Some(u));
}

// ---------------------------------------------------------------- vhci helpers

#[test]
fn vhci_status_parsing_picks_a_free_port_of_the_right_hub() {
    let text = "hub port sta spd dev      sockfd local_busid\n\
                hs  0000 006 003 00010002 000003 1-1\n\
                hs  0001 004 000 00000000 000000 0-0\n\
                ss  0008 006 005 00010003 000004 2-1\n\
                ss  0009 004 000 00000000 000000 0-0\n";
    let ports = vhci::parse_status(text);
    assert_eq!(ports.len(), 4);
    assert_eq!(vhci::free_port(&ports, Speed::High), Some(1));
    assert_eq!(vhci::free_port(&ports, Speed::Super), Some(9));
    assert_eq!(vhci::free_port(&ports[..1], Speed::High), None);
    assert_eq!(
        vhci::attach_line(9, 5, 0x0001_0002, Speed::Super),
        "9 5 65538 5"
    );
    assert_eq!(vhci::attach_line(0, 5, 1, Speed::High), "0 5 1 3");
}

#[test]
fn attach_to_a_missing_controller_says_what_to_load() {
    let dir = tempfile::tempdir().unwrap();
    let err = vhci::attach(&dir.path().join("vhci_hcd.0"), Speed::Super, 1, None).unwrap_err();
    assert!(err.to_string().contains("modprobe vhci-hcd"), "{err}");
}
