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

mod control;
mod descriptor_set;
mod streaming;
mod unlinks;
mod wire;

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
