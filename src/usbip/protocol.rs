//! The USB/IP wire protocol as `vhci_hcd` speaks it to a device (Linux
//! `Documentation/usb/usbip_protocol.rst`): 48-byte headers, every field big-endian.
//!
//! The device side receives `CMD_SUBMIT` (0x1, followed by the OUT data for OUT transfers)
//! and `CMD_UNLINK` (0x2), and answers `RET_SUBMIT` (0x3, followed by the IN data for IN
//! transfers) and `RET_UNLINK` (0x4). The first 20 bytes of every header are the same:
//! command, seqnum, devid (`busnum << 16 | devnum`), direction (0 = OUT, 1 = IN), endpoint
//! number.

use std::io::Read;

/// Length of every USB/IP header.
pub const HEADER_LEN: usize = 48;
/// `USBIP_CMD_SUBMIT`.
pub const CMD_SUBMIT: u32 = 0x0000_0001;
/// `USBIP_CMD_UNLINK`.
pub const CMD_UNLINK: u32 = 0x0000_0002;
/// `USBIP_RET_SUBMIT`.
pub const RET_SUBMIT: u32 = 0x0000_0003;
/// `USBIP_RET_UNLINK`.
pub const RET_UNLINK: u32 = 0x0000_0004;
/// Bytes of one isochronous packet descriptor following an ISO submit.
pub const ISO_DESCRIPTOR_LEN: usize = 16;
/// Largest OUT data stage the device accepts in one submit (a guard against a corrupt
/// length field, far above anything this device receives).
pub const MAX_OUT_TRANSFER: u32 = 1 << 20;

/// Linux `-EPIPE`: the endpoint stalled (unsupported request).
pub const STATUS_STALL: i32 = -32;
/// Linux `-ECONNRESET`: the URB was unlinked before it completed.
pub const STATUS_UNLINKED: i32 = -104;

/// Transfer direction as USB/IP encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Host to device (0).
    Out,
    /// Device to host (1).
    In,
}

impl Direction {
    fn from_wire(v: u32) -> Result<Self, ProtocolError> {
        match v {
            0 => Ok(Direction::Out),
            1 => Ok(Direction::In),
            other => Err(ProtocolError::BadDirection(other)),
        }
    }

    fn to_wire(self) -> u32 {
        match self {
            Direction::Out => 0,
            Direction::In => 1,
        }
    }
}

/// Why a USB/IP message could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The socket failed (or closed in the middle of a message).
    #[error("USB/IP socket read failed: {0}")]
    Io(#[from] std::io::Error),
    /// A header carried a command code the device side never receives.
    #[error("unexpected USB/IP command code 0x{0:08x} (expected CMD_SUBMIT 0x1 or CMD_UNLINK 0x2)")]
    UnknownCommand(u32),
    /// A direction field other than 0 or 1.
    #[error("USB/IP direction field is {0}, expected 0 (OUT) or 1 (IN)")]
    BadDirection(u32),
    /// An OUT submit announced more data than the device accepts.
    #[error("CMD_SUBMIT announces {0} bytes of OUT data (limit {MAX_OUT_TRANSFER})")]
    OutTooLarge(u32),
    /// An ISO submit announced an absurd number of packets.
    #[error("CMD_SUBMIT announces {0} isochronous packets")]
    TooManyIsoPackets(i32),
}

/// The 8-byte SETUP packet of a control transfer (little-endian fields, as on the bus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Setup {
    /// `bmRequestType`.
    pub request_type: u8,
    /// `bRequest`.
    pub request: u8,
    /// `wValue`.
    pub value: u16,
    /// `wIndex`.
    pub index: u16,
    /// `wLength`.
    pub length: u16,
}

impl Setup {
    /// Parses the 8 raw bytes.
    pub fn from_bytes(b: [u8; 8]) -> Self {
        Self {
            request_type: b[0],
            request: b[1],
            value: u16::from_le_bytes([b[2], b[3]]),
            index: u16::from_le_bytes([b[4], b[5]]),
            length: u16::from_le_bytes([b[6], b[7]]),
        }
    }

    /// The 8 raw bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        let v = self.value.to_le_bytes();
        let i = self.index.to_le_bytes();
        let l = self.length.to_le_bytes();
        [
            self.request_type,
            self.request,
            v[0],
            v[1],
            i[0],
            i[1],
            l[0],
            l[1],
        ]
    }

    /// Whether the data stage goes device → host (bit 7 of `bmRequestType`).
    pub fn is_in(self) -> bool {
        self.request_type & 0x80 != 0
    }
}

/// A `CMD_SUBMIT`: one URB the host wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdSubmit {
    /// Sequence number; the answer carries the same.
    pub seqnum: u32,
    /// `busnum << 16 | devnum` as the host attached it.
    pub devid: u32,
    /// Direction of the data stage.
    pub direction: Direction,
    /// Endpoint number (0–15, no direction bit).
    pub ep: u32,
    /// URB transfer flags (informational here).
    pub transfer_flags: u32,
    /// Size of the host's buffer (IN) or of the data that follows (OUT).
    pub transfer_buffer_length: u32,
    /// ISO start frame.
    pub start_frame: i32,
    /// ISO packet count (0, or 0xffffffff, for non-ISO transfers).
    pub number_of_packets: i32,
    /// Polling interval.
    pub interval: i32,
    /// SETUP packet (meaningful on endpoint 0 only).
    pub setup: Setup,
    /// OUT data stage (empty for IN).
    pub data: Vec<u8>,
}

/// A `CMD_UNLINK`: cancel the URB with `unlink_seqnum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmdUnlink {
    /// This request's own sequence number.
    pub seqnum: u32,
    /// `busnum << 16 | devnum`.
    pub devid: u32,
    /// Direction field (informational).
    pub direction: Direction,
    /// Endpoint field (informational).
    pub ep: u32,
    /// The submit to cancel.
    pub unlink_seqnum: u32,
}

/// A message from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `CMD_SUBMIT`.
    Submit(CmdSubmit),
    /// `CMD_UNLINK`.
    Unlink(CmdUnlink),
}

/// A message to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `RET_SUBMIT`: the URB `seqnum` completed with `status` (0, or a negative errno) and
    /// `data` (IN transfers) or `actual_length` bytes consumed (OUT transfers).
    Submit {
        /// The submit's sequence number.
        seqnum: u32,
        /// 0 or a negative Linux errno.
        status: i32,
        /// Bytes transferred; equals `data.len()` for IN transfers.
        actual_length: u32,
        /// IN data (empty for OUT).
        data: Vec<u8>,
    },
    /// `RET_UNLINK`: the answer to the unlink `seqnum`; `status` is -ECONNRESET when the
    /// URB was cancelled, 0 when it had already completed.
    Unlink {
        /// The unlink request's own sequence number.
        seqnum: u32,
        /// -ECONNRESET or 0.
        status: i32,
    },
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes one host→device header; `Ok` tells how many OUT-data and ISO-descriptor bytes
/// follow it on the wire.
pub fn decode_command_header(
    h: &[u8; HEADER_LEN],
) -> Result<(Command, usize, usize), ProtocolError> {
    let command = be32(h, 0);
    let seqnum = be32(h, 4);
    let devid = be32(h, 8);
    let direction = Direction::from_wire(be32(h, 12))?;
    let ep = be32(h, 16);
    match command {
        CMD_SUBMIT => {
            let transfer_buffer_length = be32(h, 24);
            let number_of_packets = be32(h, 32) as i32;
            let data_len = if direction == Direction::Out {
                if transfer_buffer_length > MAX_OUT_TRANSFER {
                    return Err(ProtocolError::OutTooLarge(transfer_buffer_length));
                }
                transfer_buffer_length as usize
            } else {
                0
            };
            // 0 and -1 both mean "not ISO" (kernels differ in which they send).
            let iso_len = if number_of_packets > 0 {
                if number_of_packets > 1024 {
                    return Err(ProtocolError::TooManyIsoPackets(number_of_packets));
                }
                number_of_packets as usize * ISO_DESCRIPTOR_LEN
            } else {
                0
            };
            let mut setup = [0u8; 8];
            setup.copy_from_slice(&h[40..48]);
            Ok((
                Command::Submit(CmdSubmit {
                    seqnum,
                    devid,
                    direction,
                    ep,
                    transfer_flags: be32(h, 20),
                    transfer_buffer_length,
                    start_frame: be32(h, 28) as i32,
                    number_of_packets,
                    interval: be32(h, 36) as i32,
                    setup: Setup::from_bytes(setup),
                    data: Vec::new(),
                }),
                data_len,
                iso_len,
            ))
        }
        CMD_UNLINK => Ok((
            Command::Unlink(CmdUnlink {
                seqnum,
                devid,
                direction,
                ep,
                unlink_seqnum: be32(h, 20),
            }),
            0,
            0,
        )),
        other => Err(ProtocolError::UnknownCommand(other)),
    }
}

/// Reads one command (header, OUT data, ISO descriptors, which are skipped). `Ok(None)` on a
/// clean end of stream before a header: the host detached.
pub fn read_command(r: &mut impl Read) -> Result<Option<Command>, ProtocolError> {
    let mut h = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (mut cmd, data_len, iso_len) = decode_command_header(&h)?;
    if let Command::Submit(s) = &mut cmd {
        s.data = vec![0; data_len];
        r.read_exact(&mut s.data)?;
        let mut iso = vec![0; iso_len];
        r.read_exact(&mut iso)?;
    }
    Ok(Some(cmd))
}

/// Encodes a host→device command (used by tests and by a host-side simulator).
pub fn encode_command(cmd: &Command) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    match cmd {
        Command::Submit(s) => {
            for v in [
                CMD_SUBMIT,
                s.seqnum,
                s.devid,
                s.direction.to_wire(),
                s.ep,
                s.transfer_flags,
                s.transfer_buffer_length,
                s.start_frame as u32,
                s.number_of_packets as u32,
                s.interval as u32,
            ] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.extend_from_slice(&s.setup.to_bytes());
            out.extend_from_slice(&s.data);
        }
        Command::Unlink(u) => {
            for v in [
                CMD_UNLINK,
                u.seqnum,
                u.devid,
                u.direction.to_wire(),
                u.ep,
                u.unlink_seqnum,
            ] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.resize(HEADER_LEN, 0);
        }
    }
    out
}

impl Reply {
    /// The wire bytes: the 48-byte header, then the IN data if any. devid, direction and
    /// ep are sent as 0, as the protocol document specifies for replies.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the wire bytes to `out` (one copy of the payload, for the send path).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let (words, data): (&[u32], &[u8]) = match self {
            Reply::Submit {
                seqnum,
                status,
                actual_length,
                data,
            } => (
                &[RET_SUBMIT, *seqnum, 0, 0, 0, *status as u32, *actual_length],
                data,
            ),
            Reply::Unlink { seqnum, status } => {
                (&[RET_UNLINK, *seqnum, 0, 0, 0, *status as u32], &[])
            }
        };
        out.reserve(HEADER_LEN + data.len());
        for v in words {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.resize(start + HEADER_LEN, 0);
        out.extend_from_slice(data);
    }

    /// Decodes a reply (the host side's view; used by tests).
    pub fn decode(b: &[u8]) -> Option<Reply> {
        if b.len() < HEADER_LEN {
            return None;
        }
        match be32(b, 0) {
            RET_SUBMIT => {
                let actual_length = be32(b, 24);
                Some(Reply::Submit {
                    seqnum: be32(b, 4),
                    status: be32(b, 20) as i32,
                    actual_length,
                    data: b[HEADER_LEN..].to_vec(),
                })
            }
            RET_UNLINK => Some(Reply::Unlink {
                seqnum: be32(b, 4),
                status: be32(b, 20) as i32,
            }),
            _ => None,
        }
    }
}
