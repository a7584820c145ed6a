//! Host-side tests of the look-alike: wire format, descriptors, control dispatch,
//! streaming and unlinks. Every exchange with the device goes through the byte encoding
//! (command bytes → `read_command` → device → reply bytes → `Reply::decode`), as on the
//! socket.

use std::collections::BTreeSet;

use super::descriptors::{self, FRAME_INTERVALS, PixelFormat, Speed, VIDEO_ENDPOINT, dt};
use super::device::{
    LogEntry, Lookalike, LookalikeConfig, PU_INFO, SkipPolicy, VS_COMMIT, VS_PROBE, req,
};
use super::payload::{self, BFH_EOF, BFH_FID, FramePattern, PAYLOAD_HEADER_LEN};
use super::protocol::{
    self, CmdSubmit, CmdUnlink, Command, Direction, HEADER_LEN, Reply, STATUS_STALL,
    STATUS_UNLINKED, Setup,
};
use super::vhci;
use crate::source::miniscope::packet::I2cPacket;
use crate::source::miniscope::uvc::PuSelector;
use crate::source::miniscope::{DaqConfig, DaqEvent};

// ---------------------------------------------------------------- wire format

fn submit(
    seqnum: u32,
    direction: Direction,
    ep: u32,
    len: u32,
    setup: Setup,
    data: Vec<u8>,
) -> Command {
    Command::Submit(CmdSubmit {
        seqnum,
        devid: 0x0001_0002,
        direction,
        ep,
        transfer_flags: 0,
        transfer_buffer_length: len,
        start_frame: 0,
        number_of_packets: 0,
        interval: 0,
        setup,
        data,
    })
}

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

// ---------------------------------------------------------------- descriptors

/// A tiny descriptor walker: (type, subtype-or-0, bytes) of each descriptor, checking
/// that the bLength chain exactly covers the buffer.
fn walk(buf: &[u8]) -> Vec<(u8, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let len = usize::from(buf[at]);
        assert!(len >= 2, "zero-length descriptor at {at}");
        assert!(at + len <= buf.len(), "descriptor at {at} overruns");
        let d = buf[at..at + len].to_vec();
        let sub = if d[1] == dt::CS_INTERFACE { d[2] } else { 0 };
        out.push((d[1], sub, d));
        at += len;
    }
    out
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[test]
fn configuration_descriptor_lengths_are_consistent_and_parse_back() {
    for speed in [Speed::Super, Speed::High] {
        let c = descriptors::configuration_descriptor(speed);
        let ds = walk(&c);
        assert_eq!(usize::from(le16(&c, 2)), c.len(), "wTotalLength");
        assert_eq!(ds[0].0, dt::CONFIGURATION);
        assert_eq!(ds[1].0, dt::INTERFACE_ASSOCIATION);
        assert_eq!(
            (ds[1].2[2], ds[1].2[3], ds[1].2[4]),
            (0, 2, 0x0E),
            "IAD covers interfaces 0-1, video"
        );

        let interfaces: Vec<&Vec<u8>> = ds
            .iter()
            .filter(|d| d.0 == dt::INTERFACE)
            .map(|d| &d.2)
            .collect();
        assert_eq!(interfaces.len(), c[4] as usize, "bNumInterfaces");
        assert_eq!(
            (interfaces[0][2], interfaces[0][6]),
            (0, 1),
            "VC interface 0"
        );
        assert_eq!(
            (interfaces[1][2], interfaces[1][6], interfaces[1][4]),
            (1, 2, 1),
            "VS interface 1, 1 ep"
        );

        // VC header: bcdUVC 1.00 and wTotalLength = the class-specific VC descriptors.
        let vc_start = ds
            .iter()
            .position(|d| d.0 == dt::CS_INTERFACE && d.1 == 0x01)
            .unwrap();
        let header = &ds[vc_start].2;
        assert_eq!(le16(header, 3), 0x0100);
        let vc_len: usize = ds[vc_start..]
            .iter()
            .take_while(|d| d.0 == dt::CS_INTERFACE)
            .map(|d| d.2.len())
            .sum();
        assert_eq!(usize::from(le16(header, 5)), vc_len);
        assert_eq!(header[12], 1, "baInterfaceNr");
        // The chain CT 1 → PU 2 → OT 3.
        let ct = &ds[vc_start + 1].2;
        assert_eq!((ct[2], ct[3], le16(ct, 4)), (0x02, 1, 0x0201));
        let pu = &ds[vc_start + 2].2;
        assert_eq!(
            (pu[2], pu[3], pu[4], pu[7], pu[8], pu[9]),
            (0x05, 2, 1, 2, 0x3F, 0x02)
        );
        let ot = &ds[vc_start + 3].2;
        assert_eq!((ot[2], ot[3], le16(ot, 4), ot[7]), (0x03, 3, 0x0101, 2));

        // VS input header: two formats, wTotalLength = the class-specific VS descriptors.
        // Class-specific subtypes mean different things per interface: walk the VS part
        // (everything after the second interface descriptor) separately.
        let vs_if = ds.iter().rposition(|d| d.0 == dt::INTERFACE).unwrap();
        let vs_start = vs_if + 1;
        assert_eq!(
            (ds[vs_start].0, ds[vs_start].1, ds[vs_start].2[3]),
            (dt::CS_INTERFACE, 0x01, 2)
        );
        let vs = &ds[vs_start].2;
        let vs_len: usize = ds[vs_start..]
            .iter()
            .take_while(|d| d.0 == dt::CS_INTERFACE)
            .map(|d| d.2.len())
            .sum();
        assert_eq!(usize::from(le16(vs, 4)), vs_len);
        assert_eq!(
            (vs[6], vs[8]),
            (VIDEO_ENDPOINT, 3),
            "endpoint and terminal link"
        );

        let formats: Vec<&Vec<u8>> = ds[vs_start..]
            .iter()
            .filter(|d| d.0 == dt::CS_INTERFACE && d.1 == 0x04)
            .map(|d| &d.2)
            .collect();
        assert_eq!(formats.len(), 2);
        assert_eq!(&formats[0][5..9], b"YUY2");
        assert_eq!((formats[0][3], formats[0][21]), (1, 16));
        assert_eq!(&formats[1][5..9], b"Y800");
        assert_eq!((formats[1][3], formats[1][21]), (2, 8));
        let frames: Vec<&Vec<u8>> = ds[vs_start..]
            .iter()
            .filter(|d| d.0 == dt::CS_INTERFACE && d.1 == 0x05)
            .map(|d| &d.2)
            .collect();
        assert_eq!(frames.len(), 2);
        for (f, fmt) in frames.iter().zip(PixelFormat::ALL) {
            assert_eq!((le16(f, 5), le16(f, 7)), (608, 608));
            assert_eq!(
                le32(f, 17) as usize,
                fmt.frame_bytes(),
                "dwMaxVideoFrameBufferSize"
            );
            assert_eq!(le32(f, 21), 333_333, "default interval 30 fps");
            assert_eq!(f[25], 4);
            let intervals: Vec<u32> = (0..4).map(|i| le32(f, 26 + 4 * i)).collect();
            assert_eq!(intervals, FRAME_INTERVALS);
        }

        let eps: Vec<&Vec<u8>> = ds
            .iter()
            .filter(|d| d.0 == dt::ENDPOINT)
            .map(|d| &d.2)
            .collect();
        assert_eq!(eps.len(), 1);
        assert_eq!(
            (eps[0][2], eps[0][3], le16(eps[0], 4)),
            (0x83, 0x02, speed.bulk_packet_size())
        );
        let companion = ds.iter().any(|d| d.0 == dt::SS_ENDPOINT_COMPANION);
        assert_eq!(companion, speed == Speed::Super);
        if speed == Speed::Super {
            assert_eq!(
                ds.last().unwrap().0,
                dt::SS_ENDPOINT_COMPANION,
                "companion follows its endpoint"
            );
        }
    }
}

#[test]
fn device_bos_and_string_descriptors() {
    let d = descriptors::device_descriptor(Speed::Super);
    assert_eq!(d.len(), 18);
    assert_eq!(
        (le16(&d, 2), d[7], le16(&d, 8), le16(&d, 10)),
        (0x0300, 9, 0x04B4, 0x00F9)
    );
    let d = descriptors::device_descriptor(Speed::High);
    assert_eq!((le16(&d, 2), d[7], le16(&d, 10)), (0x0200, 64, 0x00F8));
    let bos = descriptors::bos_descriptor();
    assert_eq!(usize::from(le16(&bos, 2)), bos.len());
    let caps = walk(&bos);
    assert_eq!(caps.len(), 1 + usize::from(bos[4]));
    assert_eq!((caps[1].0, caps[1].2[2]), (dt::DEVICE_CAPABILITY, 0x03));
    assert_eq!(
        descriptors::string_descriptor(0).unwrap(),
        [4, 3, 0x09, 0x04]
    );
    let s = descriptors::string_descriptor(2).unwrap();
    let text: Vec<u16> = s[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(String::from_utf16(&text).unwrap(), descriptors::STRINGS[1]);
    assert_eq!(usize::from(s[0]), s.len());
    assert!(descriptors::string_descriptor(9).is_none());
}

// ---------------------------------------------------------------- a host simulator

/// Talks to the device through the byte encoding, as vhci would.
struct Host {
    dev: Lookalike,
    seq: u32,
    now_ns: u64,
}

impl Host {
    fn new(config: LookalikeConfig) -> Self {
        Self {
            dev: Lookalike::new(config),
            seq: 0,
            now_ns: 1_000_000,
        }
    }

    fn exchange(&mut self, cmd: Command) -> Vec<Reply> {
        let bytes = protocol::encode_command(&cmd);
        let decoded = protocol::read_command(&mut &bytes[..]).unwrap().unwrap();
        self.dev
            .handle(decoded, self.now_ns)
            .into_iter()
            .map(|r| Reply::decode(&r.encode()).unwrap())
            .collect()
    }

    fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    /// A control transfer; `Ok(data)` or `Err(status)`.
    fn control(
        &mut self,
        request_type: u8,
        request: u8,
        value: u16,
        index: u16,
        length: u16,
        data: &[u8],
    ) -> Result<Vec<u8>, i32> {
        // Controls are spaced well apart, as separate ioctls are (the DAQ needs ≥ 100 µs).
        self.now_ns += 1_000_000;
        let setup = Setup {
            request_type,
            request,
            value,
            index,
            length,
        };
        let dir = if setup.is_in() {
            Direction::In
        } else {
            Direction::Out
        };
        let seq = self.next_seq();
        let replies = self.exchange(submit(seq, dir, 0, u32::from(length), setup, data.to_vec()));
        let ret = replies
            .into_iter()
            .find(|r| matches!(r, Reply::Submit { seqnum, .. } if *seqnum == seq))
            .expect("control transfers are answered at once");
        match ret {
            Reply::Submit {
                status: 0,
                data,
                actual_length,
                ..
            } => {
                if dir == Direction::In {
                    assert_eq!(actual_length as usize, data.len());
                } else {
                    assert_eq!(actual_length as usize, usize::from(length));
                }
                Ok(data)
            }
            Reply::Submit { status, .. } => Err(status),
            Reply::Unlink { .. } => unreachable!(),
        }
    }

    fn get_descriptor(&mut self, kind: u8, index: u8, length: u16) -> Result<Vec<u8>, i32> {
        self.control(
            0x80,
            6,
            u16::from(kind) << 8 | u16::from(index),
            0,
            length,
            &[],
        )
    }

    fn set_pu(&mut self, sel: PuSelector, value: u16) {
        self.control(
            0x21,
            req::SET_CUR,
            sel.w_value(),
            PuSelector::w_index(),
            2,
            &value.to_le_bytes(),
        )
        .unwrap();
    }

    fn get_pu(&mut self, sel: PuSelector, request: u8) -> Vec<u8> {
        let len = if request == req::GET_INFO { 1 } else { 2 };
        self.control(
            0xA1,
            request,
            sel.w_value(),
            PuSelector::w_index(),
            len,
            &[],
        )
        .unwrap()
    }

    fn vs(&mut self, request: u8, selector: u8, data: &[u8]) -> Result<Vec<u8>, i32> {
        let len = if request == req::SET_CUR {
            data.len() as u16
        } else {
            26
        };
        let rt = if request & 0x80 != 0 { 0xA1 } else { 0x21 };
        self.control(rt, request, u16::from(selector) << 8, 1, len, data)
    }

    /// Probe then commit `format` at `interval`, like uvcvideo's STREAMON.
    fn start(&mut self, format: PixelFormat, interval: u32) {
        let mut probe = vec![0u8; 26];
        probe[2] = format.index();
        probe[3] = 1;
        probe[4..8].copy_from_slice(&interval.to_le_bytes());
        self.vs(req::SET_CUR, VS_PROBE, &probe).unwrap();
        let got = self.vs(req::GET_CUR, VS_PROBE, &[]).unwrap();
        self.vs(req::SET_CUR, VS_COMMIT, &got).unwrap();
    }

    fn bulk(&mut self, len: u32) -> (u32, Vec<Reply>) {
        let seq = self.next_seq();
        let r = self.exchange(submit(
            seq,
            Direction::In,
            3,
            len,
            Setup::default(),
            Vec::new(),
        ));
        (seq, r)
    }

    fn advance(&mut self, ns: u64) -> Vec<Reply> {
        self.now_ns += ns;
        self.dev.poll(self.now_ns)
    }
}

fn no_spacing() -> LookalikeConfig {
    LookalikeConfig {
        daq: DaqConfig {
            min_write_spacing_ns: None,
            ..DaqConfig::default()
        },
        ..LookalikeConfig::default()
    }
}

// ---------------------------------------------------------------- control requests

#[test]
fn enumeration_requests_are_answered_and_truncated_to_wlength() {
    let mut h = Host::new(LookalikeConfig::default());
    let d = h.get_descriptor(dt::DEVICE, 0, 64).unwrap();
    assert_eq!(d, descriptors::device_descriptor(Speed::Super));
    let d8 = h.get_descriptor(dt::DEVICE, 0, 8).unwrap();
    assert_eq!(d8, d[..8]);
    let head = h.get_descriptor(dt::CONFIGURATION, 0, 9).unwrap();
    let total = le16(&head, 2);
    let full = h.get_descriptor(dt::CONFIGURATION, 0, total).unwrap();
    assert_eq!(full.len(), usize::from(total));
    assert_eq!(h.get_descriptor(dt::BOS, 0, 5).unwrap()[1], dt::BOS);
    assert_eq!(h.get_descriptor(dt::STRING, 0, 255).unwrap(), [4, 3, 9, 4]);
    assert_eq!(
        h.get_descriptor(dt::DEVICE_QUALIFIER, 0, 10),
        Err(STATUS_STALL)
    );
    assert_eq!(
        h.control(0x80, 8, 0, 0, 1, &[]).unwrap(),
        [0],
        "unconfigured"
    );
    h.control(0x00, 9, 1, 0, 0, &[]).unwrap();
    assert_eq!(h.control(0x80, 8, 0, 0, 1, &[]).unwrap(), [1]);
    assert_eq!(
        h.control(0x00, 9, 2, 0, 0, &[]),
        Err(STATUS_STALL),
        "only configuration 1"
    );
    h.control(0x01, 11, 0, 1, 0, &[]).unwrap(); // SET_INTERFACE VS alt 0
    assert_eq!(
        h.control(0x01, 11, 1, 1, 0, &[]),
        Err(STATUS_STALL),
        "no alt 1"
    );
    assert_eq!(h.control(0x80, 0, 0, 0, 2, &[]).unwrap(), [0, 0]);
    assert_eq!(
        h.control(0x40, 0x99, 0, 0, 0, &[]),
        Err(STATUS_STALL),
        "vendor request"
    );

    let hs = Host::new(LookalikeConfig {
        speed: Speed::High,
        ..LookalikeConfig::default()
    });
    let mut hs = hs;
    assert_eq!(
        hs.get_descriptor(dt::BOS, 0, 5),
        Err(STATUS_STALL),
        "no BOS at high speed"
    );
}

#[test]
fn probe_commit_negotiates_format_and_interval() {
    let mut h = Host::new(LookalikeConfig::default());
    let def = h.vs(req::GET_DEF, VS_PROBE, &[]).unwrap();
    assert_eq!(def.len(), 26, "UVC 1.0 probe block");
    assert_eq!((def[2], def[3], le32(&def, 4)), (1, 1, 333_333));
    assert_eq!(le32(&def, 18) as usize, PixelFormat::Yuy2.frame_bytes());
    assert_eq!(le32(&def, 22), 32_768, "SuperSpeed payload size");
    assert_eq!(
        le32(&h.vs(req::GET_MAX, VS_PROBE, &[]).unwrap(), 4),
        1_000_000
    );

    // GREY at 21 fps → snapped to 20 fps.
    let mut probe = vec![0u8; 26];
    probe[2] = 2;
    probe[3] = 1;
    probe[4..8].copy_from_slice(&476_190u32.to_le_bytes());
    h.vs(req::SET_CUR, VS_PROBE, &probe).unwrap();
    let got = h.vs(req::GET_CUR, VS_PROBE, &[]).unwrap();
    assert_eq!((got[2], le32(&got, 4)), (2, 500_000));
    assert_eq!(le32(&got, 18) as usize, PixelFormat::Grey.frame_bytes());
    assert!(!h.dev.streaming());
    h.vs(req::SET_CUR, VS_COMMIT, &got).unwrap();
    assert!(h.dev.streaming());
    assert_eq!(h.dev.committed().interval, 500_000);
    assert_eq!(h.dev.committed().format, PixelFormat::Grey);
    assert_eq!(h.vs(req::GET_CUR, VS_COMMIT, &[]).unwrap(), got);
    // An unknown format index keeps the previous format.
    probe[2] = 9;
    h.vs(req::SET_CUR, VS_PROBE, &probe).unwrap();
    assert_eq!(h.vs(req::GET_CUR, VS_PROBE, &[]).unwrap()[2], 2);
    assert_eq!(h.vs(req::GET_INFO, VS_PROBE, &[]).map(|v| v[0]), Ok(3));
}

#[test]
fn pu_contrast_gamma_sharpness_becomes_the_daq_packet_at_the_next_end_of_frame() {
    let mut h = Host::new(LookalikeConfig::default());
    h.start(PixelFormat::Grey, 333_333);
    let packet = I2cPacket::new(&[0x20, 0x01, 0x10]).unwrap();
    let words = packet.pack();
    h.set_pu(PuSelector::Contrast, words.contrast);
    h.set_pu(PuSelector::Gamma, words.gamma);
    h.set_pu(PuSelector::Sharpness, words.sharpness);
    assert!(
        h.dev.take_log().is_empty(),
        "nothing runs before the end of frame"
    );
    h.advance(33_333_400);
    let log = h.dev.take_log();
    assert_eq!(log.len(), 1, "{log:?}");
    let LogEntry::I2c(w) = &log[0] else {
        panic!("{log:?}")
    };
    assert_eq!(
        (w.frame, w.address, w.data.as_slice()),
        (1, 0x20, &[0x01, 0x10][..])
    );
    assert_eq!(h.dev.daq().lost_writes(), 0);
}

#[test]
fn writes_closer_than_the_fx3_spacing_are_lost_and_logged() {
    let mut h = Host::new(LookalikeConfig::default());
    h.start(PixelFormat::Grey, 333_333);
    // Two SET_CURs 10 µs apart: the first is overwritten before the firmware takes it.
    let seq = h.next_seq();
    let setup = |v: u16| Setup {
        request_type: 0x21,
        request: req::SET_CUR,
        value: v,
        index: 0x0200,
        length: 2,
    };
    h.exchange(submit(
        seq,
        Direction::Out,
        0,
        2,
        setup(0x0300),
        vec![0xC0, 0x03],
    ));
    h.now_ns += 10_000;
    let seq = h.next_seq();
    h.exchange(submit(
        seq,
        Direction::Out,
        0,
        2,
        setup(0x0900),
        vec![0x1F, 0x10],
    ));
    let log = h.dev.take_log();
    assert!(
        log.iter().any(|e| matches!(
            e,
            LogEntry::Event(DaqEvent::LostWrite {
                selector: PuSelector::Contrast,
                value: 0x03C0
            })
        )),
        "{log:?}"
    );
}

#[test]
fn get_cur_contrast_is_the_live_frame_counter_and_get_info_says_autoupdate() {
    let mut h = Host::new(no_spacing());
    assert_eq!(h.get_pu(PuSelector::Contrast, req::GET_INFO), [PU_INFO]);
    assert_eq!(PU_INFO & 0x08, 0x08, "AUTOUPDATE bit");
    assert_eq!(h.get_pu(PuSelector::Contrast, req::GET_CUR), [0, 0]);
    h.start(PixelFormat::Yuy2, 333_333);
    h.advance(5 * 33_333_400);
    assert_eq!(
        h.get_pu(PuSelector::Contrast, req::GET_CUR),
        5u16.to_le_bytes()
    );
    h.advance(2 * 33_333_400);
    assert_eq!(
        h.get_pu(PuSelector::Contrast, req::GET_CUR),
        7u16.to_le_bytes()
    );
    // Ranges: unsigned for contrast, signed for brightness.
    assert_eq!(h.get_pu(PuSelector::Contrast, req::GET_MAX), [0xFF, 0xFF]);
    assert_eq!(h.get_pu(PuSelector::Brightness, req::GET_MIN), [0x00, 0x80]);
    assert_eq!(h.get_pu(PuSelector::Gamma, req::GET_RES), [1, 0]);
    // CT exposure read-back (ABI 2) is the counter too.
    let ct = h
        .control(0xA1, req::GET_CUR, 0x0400, 0x0100, 4, &[])
        .unwrap();
    assert_eq!(ct, [7, 0, 0, 0]);
    // An unadvertised PU control (white balance 0x0A) stalls, and the error code says why.
    assert_eq!(
        h.control(0xA1, req::GET_CUR, 0x0A00, 0x0200, 2, &[]),
        Err(STATUS_STALL)
    );
    assert_eq!(
        h.control(0xA1, req::GET_CUR, 0x0200, 0x0000, 1, &[])
            .unwrap(),
        [0x06]
    );
}

#[test]
fn nothing_ticks_before_streaming_unless_free_running() {
    let mut h = Host::new(no_spacing());
    h.advance(1_000_000_000);
    assert_eq!(
        h.dev.daq().frame_counter(),
        0,
        "the DAQ counts frames only while streaming"
    );
    let mut f = Host::new(LookalikeConfig {
        free_run: true,
        ..no_spacing()
    });
    f.advance(1);
    f.advance(10 * 33_333_400);
    assert_eq!(f.dev.daq().frame_counter(), 10);
    assert_eq!(f.dev.stats().sent_frames, 0);
}

// ---------------------------------------------------------------- streaming

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

// ---------------------------------------------------------------- unlinks

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
