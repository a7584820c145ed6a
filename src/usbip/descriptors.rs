//! The look-alike's USB descriptors: a UVC 1.00 camera with the Miniscope DAQ's identity
//! (04b4:00f9 SuperSpeed, 04b4:00f8 high speed; docs/miniscope.md) built
//! from the USB 3.x and UVC 1.1 specifications.
//!
//! Layout of the configuration: IAD → VideoControl interface 0 (header, Camera Terminal 1 →
//! Processing Unit 2 → Output Terminal 3, no interrupt endpoint) → VideoStreaming interface
//! 1 (one alternate setting, one bulk IN endpoint 0x83) with two uncompressed formats at
//! 608×608: YUY2 (index 1, what the real DAQ offers) and Y800/GREY (index 2, the rig
//! recipe's), each with one frame at 30/20/15/10 fps.

use crate::source::miniscope::uvc::{
    CAMERA_TERMINAL_ID, DAQ_PRODUCT_ID_HIGHSPEED, DAQ_PRODUCT_ID_SUPERSPEED, DAQ_VENDOR_ID,
    PROCESSING_UNIT_ID,
};

/// Unit id of the Output (streaming) Terminal.
pub const OUTPUT_TERMINAL_ID: u8 = 3;
/// Interface number of VideoStreaming.
pub const VS_INTERFACE: u8 = 1;
/// Address of the bulk video endpoint.
pub const VIDEO_ENDPOINT: u8 = 0x83;
/// Frame width and height (Miniscope V4).
pub const FRAME_SIDE: u16 = 608;
/// Frame intervals offered, in 100 ns units: 30, 20, 15, 10 fps.
pub const FRAME_INTERVALS: [u32; 4] = [333_333, 500_000, 666_666, 1_000_000];
/// Strings: index 1 manufacturer, 2 product, 3 serial.
pub const STRINGS: [&str; 3] = [
    "behavd",
    "Miniscope DAQ (behavd look-alike)",
    "LOOKALIKE0001",
];

/// Descriptor type codes used here.
pub mod dt {
    /// DEVICE.
    pub const DEVICE: u8 = 1;
    /// CONFIGURATION.
    pub const CONFIGURATION: u8 = 2;
    /// STRING.
    pub const STRING: u8 = 3;
    /// INTERFACE.
    pub const INTERFACE: u8 = 4;
    /// ENDPOINT.
    pub const ENDPOINT: u8 = 5;
    /// DEVICE_QUALIFIER.
    pub const DEVICE_QUALIFIER: u8 = 6;
    /// INTERFACE_ASSOCIATION.
    pub const INTERFACE_ASSOCIATION: u8 = 11;
    /// BOS.
    pub const BOS: u8 = 15;
    /// DEVICE CAPABILITY.
    pub const DEVICE_CAPABILITY: u8 = 16;
    /// SUPERSPEED_USB_ENDPOINT_COMPANION.
    pub const SS_ENDPOINT_COMPANION: u8 = 0x30;
    /// CS_INTERFACE (class-specific interface).
    pub const CS_INTERFACE: u8 = 0x24;
}

/// Link speed the device is attached at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speed {
    /// USB 2.0 high speed (vhci speed code 3).
    High,
    /// USB 3 SuperSpeed (vhci speed code 5), as the real DAQ needs.
    Super,
}

impl Speed {
    /// The kernel's `enum usb_device_speed` value written to vhci's `attach`.
    pub fn vhci_code(self) -> u32 {
        match self {
            Speed::High => 3,
            Speed::Super => 5,
        }
    }

    /// Bulk `wMaxPacketSize`.
    pub fn bulk_packet_size(self) -> u16 {
        match self {
            Speed::High => 512,
            Speed::Super => 1024,
        }
    }

    /// `dwMaxPayloadTransferSize`: one payload per URB as uvcvideo sizes its bulk URBs
    /// (32 packets of `wMaxPacketSize`).
    pub fn max_payload(self) -> u32 {
        u32::from(self.bulk_packet_size()) * 32
    }

    /// The product id the real DAQ enumerates with at this speed.
    pub fn product_id(self) -> u16 {
        match self {
            Speed::High => DAQ_PRODUCT_ID_HIGHSPEED,
            Speed::Super => DAQ_PRODUCT_ID_SUPERSPEED,
        }
    }
}

/// A pixel format the look-alike offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// YUY2, 2 bytes per pixel; luma in the even bytes (the real DAQ's format).
    Yuy2,
    /// Y800 (V4L2 GREY), 1 byte per pixel.
    Grey,
}

impl PixelFormat {
    /// Formats in `bFormatIndex` order (index = position + 1).
    pub const ALL: [PixelFormat; 2] = [PixelFormat::Yuy2, PixelFormat::Grey];

    /// Bytes per pixel.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Yuy2 => 2,
            PixelFormat::Grey => 1,
        }
    }

    /// The UVC format GUID.
    pub fn guid(self) -> [u8; 16] {
        let fourcc = match self {
            PixelFormat::Yuy2 => *b"YUY2",
            PixelFormat::Grey => *b"Y800",
        };
        let mut g = [0u8; 16];
        g[..4].copy_from_slice(&fourcc);
        g[4..].copy_from_slice(&[
            0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
        ]);
        g
    }

    /// `bFormatIndex` (1-based).
    pub fn index(self) -> u8 {
        match self {
            PixelFormat::Yuy2 => 1,
            PixelFormat::Grey => 2,
        }
    }

    /// The format with this `bFormatIndex`.
    pub fn from_index(i: u8) -> Option<PixelFormat> {
        PixelFormat::ALL.into_iter().find(|f| f.index() == i)
    }

    /// Bytes of one 608×608 frame.
    pub fn frame_bytes(self) -> usize {
        usize::from(FRAME_SIDE) * usize::from(FRAME_SIDE) * self.bytes_per_pixel()
    }
}

fn push16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn push32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

/// The 18-byte device descriptor.
pub fn device_descriptor(speed: Speed) -> Vec<u8> {
    let mut d = vec![18, dt::DEVICE];
    push16(
        &mut d,
        if speed == Speed::Super {
            0x0300
        } else {
            0x0200
        },
    );
    // Miscellaneous class / common class / IAD: the composite-with-IAD triple UVC uses.
    d.extend_from_slice(&[0xEF, 0x02, 0x01]);
    d.push(if speed == Speed::Super { 9 } else { 64 }); // SuperSpeed: 2^9 = 512
    push16(&mut d, DAQ_VENDOR_ID);
    push16(&mut d, speed.product_id());
    push16(&mut d, 0x0100);
    d.extend_from_slice(&[1, 2, 3, 1]);
    d
}

/// The BOS descriptor with one SuperSpeed USB device capability (USB 3 devices need one).
pub fn bos_descriptor() -> Vec<u8> {
    let mut d = vec![5, dt::BOS, 0, 0, 1];
    // SuperSpeed USB capability: no LTM, speeds FS|HS|SS, lowest full functionality HS,
    // U1/U2 exit latencies 0 (no LPM worth speaking of on a virtual link).
    d.extend_from_slice(&[10, dt::DEVICE_CAPABILITY, 0x03, 0x00]);
    push16(&mut d, 0x000E);
    d.extend_from_slice(&[0x02, 0x00]);
    push16(&mut d, 0x0000);
    let total = d.len() as u16;
    d[2..4].copy_from_slice(&total.to_le_bytes());
    d
}

/// String descriptor `index` (0 = the language list, English US).
pub fn string_descriptor(index: u8) -> Option<Vec<u8>> {
    if index == 0 {
        return Some(vec![4, dt::STRING, 0x09, 0x04]);
    }
    let s = STRINGS.get(usize::from(index) - 1)?;
    let mut d = vec![0, dt::STRING];
    for u in s.encode_utf16() {
        push16(&mut d, u);
    }
    d[0] = d.len() as u8;
    Some(d)
}

/// The full configuration descriptor set (wTotalLength bytes).
pub fn configuration_descriptor(speed: Speed) -> Vec<u8> {
    let mut c = vec![9, dt::CONFIGURATION, 0, 0, 2, 1, 0, 0x80];
    c.push(if speed == Speed::Super { 25 } else { 250 }); // 200 mA (8 mA / 2 mA units)

    // Interface association: interfaces 0–1 are one video function; iFunction = product.
    c.extend_from_slice(&[8, dt::INTERFACE_ASSOCIATION, 0, 2, 0x0E, 0x03, 0x00, 2]);

    // VideoControl interface 0, no endpoints.
    c.extend_from_slice(&[9, dt::INTERFACE, 0, 0, 0, 0x0E, 0x01, 0x00, 2]);
    let vc_start = c.len();
    // VC header: bcdUVC 1.00, wTotalLength (patched), dwClockFrequency 48 MHz, one VS
    // interface (1).
    c.extend_from_slice(&[13, dt::CS_INTERFACE, 0x01]);
    push16(&mut c, 0x0100);
    push16(&mut c, 0);
    push32(&mut c, 48_000_000);
    c.extend_from_slice(&[1, VS_INTERFACE]);
    // Camera Terminal 1 (ITT_CAMERA 0x0201): exposure-time-absolute (D3) and
    // pan-tilt-absolute (D11), the DAQ's ABI-2 read-backs.
    c.extend_from_slice(&[18, dt::CS_INTERFACE, 0x02, CAMERA_TERMINAL_ID]);
    push16(&mut c, 0x0201);
    c.extend_from_slice(&[0, 0]);
    push16(&mut c, 0);
    push16(&mut c, 0);
    push16(&mut c, 0);
    c.extend_from_slice(&[3, 0x08, 0x08, 0x00]);
    // Processing Unit 2 (UVC 1.0 layout, no bmVideoStandards): brightness, contrast,
    // hue, saturation, sharpness, gamma (0x3F) and gain (0x02), as the DAQ firmware.
    c.extend_from_slice(&[
        11,
        dt::CS_INTERFACE,
        0x05,
        PROCESSING_UNIT_ID,
        CAMERA_TERMINAL_ID,
    ]);
    push16(&mut c, 0);
    c.extend_from_slice(&[2, 0x3F, 0x02, 0]);
    // Output Terminal 3 (TT_STREAMING 0x0101) fed by the PU.
    c.extend_from_slice(&[9, dt::CS_INTERFACE, 0x03, OUTPUT_TERMINAL_ID]);
    push16(&mut c, 0x0101);
    c.extend_from_slice(&[0, PROCESSING_UNIT_ID, 0]);
    let vc_total = (c.len() - vc_start) as u16;
    c[vc_start + 5..vc_start + 7].copy_from_slice(&vc_total.to_le_bytes());

    // VideoStreaming interface 1, alternate setting 0, one (bulk) endpoint.
    c.extend_from_slice(&[9, dt::INTERFACE, VS_INTERFACE, 0, 1, 0x0E, 0x02, 0x00, 0]);
    let vs_start = c.len();
    let nformats = PixelFormat::ALL.len() as u8;
    // Input header: formats, wTotalLength (patched), endpoint, bmInfo 0, terminal link 3,
    // no still capture, no trigger, one 1-byte bmaControls per format (none).
    c.extend_from_slice(&[13 + nformats, dt::CS_INTERFACE, 0x01, nformats]);
    push16(&mut c, 0);
    c.extend_from_slice(&[VIDEO_ENDPOINT, 0, OUTPUT_TERMINAL_ID, 0, 0, 0, 1]);
    c.extend(std::iter::repeat_n(0u8, usize::from(nformats)));
    for f in PixelFormat::ALL {
        // Uncompressed format: one frame descriptor, default frame 1.
        c.extend_from_slice(&[27, dt::CS_INTERFACE, 0x04, f.index(), 1]);
        c.extend_from_slice(&f.guid());
        c.extend_from_slice(&[(8 * f.bytes_per_pixel()) as u8, 1, 0, 0, 0, 0]);
        // Uncompressed frame 1: 608×608, discrete intervals.
        let frame = f.frame_bytes() as u32;
        c.extend_from_slice(&[
            26 + 4 * FRAME_INTERVALS.len() as u8,
            dt::CS_INTERFACE,
            0x05,
            1,
            0,
        ]);
        push16(&mut c, FRAME_SIDE);
        push16(&mut c, FRAME_SIDE);
        push32(&mut c, frame * 8 * 10); // min bit rate: 10 fps
        push32(&mut c, frame * 8 * 30); // max bit rate: 30 fps
        push32(&mut c, frame);
        push32(&mut c, FRAME_INTERVALS[0]);
        c.push(FRAME_INTERVALS.len() as u8);
        for i in FRAME_INTERVALS {
            push32(&mut c, i);
        }
        // Colour matching: BT.709 primaries, BT.709 transfer, SMPTE 170M matrix.
        c.extend_from_slice(&[6, dt::CS_INTERFACE, 0x0D, 1, 1, 4]);
    }
    let vs_total = (c.len() - vs_start) as u16;
    c[vs_start + 4..vs_start + 6].copy_from_slice(&vs_total.to_le_bytes());

    // Bulk IN endpoint 0x83.
    c.extend_from_slice(&[7, dt::ENDPOINT, VIDEO_ENDPOINT, 0x02]);
    push16(&mut c, speed.bulk_packet_size());
    c.push(0);
    if speed == Speed::Super {
        // Companion: bursts of 16 packets, no streams.
        c.extend_from_slice(&[6, dt::SS_ENDPOINT_COMPANION, 15, 0, 0, 0]);
    }

    let total = c.len() as u16;
    c[2..4].copy_from_slice(&total.to_le_bytes());
    c
}
