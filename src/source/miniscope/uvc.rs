//! How the DAQ's control channel looks from the host: the UVC Processing-Unit and
//! Camera-Terminal selectors it repurposes, and the [`UvcControl`] trait through which the
//! control writer and the read-back reach either real hardware or the emulator.
//!
//! Facts (docs/miniscope.md): PU controls live on unit 2 of
//! VideoControl interface 0, are 2 bytes long and little-endian; the CT read-backs
//! (frame counter, atomic quaternion) need firmware ABI ≥ 2.

/// `bmRequestType` of a class SET_CUR to the VideoControl interface.
pub const SET_CUR_REQUEST_TYPE: u8 = 0x21;
/// `bRequest` of SET_CUR.
pub const SET_CUR: u8 = 0x01;
/// `bmRequestType` of a class GET_CUR from the VideoControl interface.
pub const GET_CUR_REQUEST_TYPE: u8 = 0xA1;
/// `bRequest` of GET_CUR.
pub const GET_CUR: u8 = 0x81;
/// The VideoControl interface number.
pub const VC_INTERFACE: u8 = 0;
/// Unit id of the Camera Terminal.
pub const CAMERA_TERMINAL_ID: u8 = 1;
/// Unit id of the Processing Unit.
pub const PROCESSING_UNIT_ID: u8 = 2;
/// USB vendor id of the DAQ (Cypress).
pub const DAQ_VENDOR_ID: u16 = 0x04B4;
/// USB product id of the DAQ on a SuperSpeed link (the only one that offers Miniscope sizes).
pub const DAQ_PRODUCT_ID_SUPERSPEED: u16 = 0x00F9;
/// USB product id of the DAQ enumerated on a High-Speed (USB2) link.
pub const DAQ_PRODUCT_ID_HIGHSPEED: u16 = 0x00F8;

/// A UVC Processing-Unit control as the DAQ firmware uses it (docs/miniscope.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PuSelector {
    /// 0x02. Read: BNO quaternion z.
    Brightness,
    /// 0x03. Write: I2C word 0 (head, restarts packet assembly). Read: frame counter low 16 bits.
    Contrast,
    /// 0x04. Read: BNO quaternion y.
    Gain,
    /// 0x06. Read: BNO quaternion x, or the ABI version once after an ABI query.
    Hue,
    /// 0x07. Write: bit 0 = recording (sync output), 0x0002 = ABI query. Read: BNO w.
    Saturation,
    /// 0x08. Write: I2C word 2 (tail). Read: nothing useful.
    Sharpness,
    /// 0x09. Write: I2C word 1 (body). Read: external trigger input level.
    Gamma,
}

impl PuSelector {
    /// Every selector, in selector-code order.
    pub const ALL: [PuSelector; 7] = [
        PuSelector::Brightness,
        PuSelector::Contrast,
        PuSelector::Gain,
        PuSelector::Hue,
        PuSelector::Saturation,
        PuSelector::Sharpness,
        PuSelector::Gamma,
    ];

    /// The UVC selector code (the high byte of `wValue`).
    pub fn code(self) -> u8 {
        match self {
            PuSelector::Brightness => 0x02,
            PuSelector::Contrast => 0x03,
            PuSelector::Gain => 0x04,
            PuSelector::Hue => 0x06,
            PuSelector::Saturation => 0x07,
            PuSelector::Sharpness => 0x08,
            PuSelector::Gamma => 0x09,
        }
    }

    /// The selector with this code, if the DAQ uses it.
    pub fn from_code(code: u8) -> Option<PuSelector> {
        PuSelector::ALL.into_iter().find(|s| s.code() == code)
    }

    /// `wValue` of a request for this control (`selector << 8`).
    pub fn w_value(self) -> u16 {
        u16::from(self.code()) << 8
    }

    /// `wIndex` of every PU request (`unit << 8 | interface`, i.e. 0x0200).
    pub fn w_index() -> u16 {
        u16::from(PROCESSING_UNIT_ID) << 8 | u16::from(VC_INTERFACE)
    }
}

/// A Camera-Terminal control the DAQ answers (firmware ABI ≥ 2, docs/miniscope.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtSelector {
    /// 0x04, 4 bytes: frame counter low 16 bits (LE) in bytes 0–1, bytes 2–3 zero.
    ExposureTimeAbsolute,
    /// 0x0D, 8 bytes: BNO quaternion w, x, y, z as little-endian int16, read atomically.
    PanTiltAbsolute,
}

impl CtSelector {
    /// The UVC selector code.
    pub fn code(self) -> u8 {
        match self {
            CtSelector::ExposureTimeAbsolute => 0x04,
            CtSelector::PanTiltAbsolute => 0x0D,
        }
    }

    /// Length in bytes of the control's GET_CUR payload.
    pub fn payload_len(self) -> usize {
        match self {
            CtSelector::ExposureTimeAbsolute => 4,
            CtSelector::PanTiltAbsolute => 8,
        }
    }
}

/// Why a control transfer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UvcError {
    /// The device stalled the request: it does not implement this control (e.g. a CT
    /// read-back on firmware older than ABI 2).
    #[error("control selector 0x{selector:02X} on unit {unit} is not supported by the device")]
    Unsupported {
        /// Unit id (1 = camera terminal, 2 = processing unit).
        unit: u8,
        /// Selector code.
        selector: u8,
    },
    /// A buffer of the wrong size was handed to a read.
    #[error("control selector 0x{selector:02X} returns {expected} bytes, buffer holds {got}")]
    BufferSize {
        /// Selector code.
        selector: u8,
        /// Bytes the control returns.
        expected: usize,
        /// Bytes the caller offered.
        got: usize,
    },
    /// The device went away.
    #[error("DAQ disconnected: {0}")]
    Disconnected(String),
    /// Any other transfer failure (timeout, pipe error), as the backend describes it.
    #[error("control transfer failed: {0}")]
    Transfer(String),
}

/// The DAQ's control channel: SET_CUR / GET_CUR on Processing-Unit controls, and GET_CUR on
/// the two Camera-Terminal read-backs. Implemented by the real UVC backend and by
/// [`super::daq::DaqEmulator`], so the writer and read-back code cannot tell them apart.
pub trait UvcControl {
    /// SET_CUR of a 2-byte PU control (the payload goes out little-endian).
    fn set_pu(&mut self, selector: PuSelector, value: u16) -> Result<(), UvcError>;

    /// GET_CUR of a 2-byte PU control.
    fn get_pu(&mut self, selector: PuSelector) -> Result<u16, UvcError>;

    /// GET_CUR of a Camera-Terminal control into `out`, which must be exactly
    /// [`CtSelector::payload_len`] bytes. Devices without ABI 2 answer [`UvcError::Unsupported`],
    /// which is also what this default does.
    fn get_ct(&mut self, selector: CtSelector, out: &mut [u8]) -> Result<(), UvcError> {
        let _ = out;
        Err(UvcError::Unsupported {
            unit: CAMERA_TERMINAL_ID,
            selector: selector.code(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_codes_match_the_reference_table() {
        let codes: Vec<u8> = PuSelector::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, [0x02, 0x03, 0x04, 0x06, 0x07, 0x08, 0x09]);
        for s in PuSelector::ALL {
            assert_eq!(PuSelector::from_code(s.code()), Some(s));
        }
        assert_eq!(PuSelector::from_code(0x05), None);
        assert_eq!(PuSelector::Contrast.w_value(), 0x0300);
        assert_eq!(PuSelector::w_index(), 0x0200);
        assert_eq!(CtSelector::PanTiltAbsolute.code(), 0x0D);
        assert_eq!(CtSelector::ExposureTimeAbsolute.payload_len(), 4);
    }
}
