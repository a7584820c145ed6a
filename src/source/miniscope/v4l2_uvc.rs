//! The DAQ's control channel through Linux `uvcvideo`: the Processing-Unit and Camera-Terminal
//! controls the DAQ repurposes are ordinary V4L2 controls on its `/dev/videoN` node, so
//! [`UvcControl`] maps onto `VIDIOC_S_CTRL` / `VIDIOC_G_CTRL` (and one `VIDIOC_G_EXT_CTRLS`
//! for the two halves of the atomic pan/tilt quaternion read).
//!
//! Mapping (uvcvideo's standard UVC → V4L2 control mappings): PU brightness, contrast, hue,
//! saturation, sharpness, gamma, gain → `V4L2_CID_BRIGHTNESS` … `V4L2_CID_GAIN`; CT exposure
//! time absolute → `V4L2_CID_EXPOSURE_ABSOLUTE`; CT pan/tilt absolute → the pair
//! `V4L2_CID_PAN_ABSOLUTE`, `V4L2_CID_TILT_ABSOLUTE`. Values are 16-bit words on the wire and
//! `i32` in V4L2: words go out as their unsigned value and come back truncated to 16 bits, so a
//! signed control (brightness, hue) round-trips its bit pattern. uvcvideo clamps a written
//! value to the control's GET_MIN/GET_MAX: a device must report the full 16-bit range for the
//! packed I2C words to pass unchanged (what the real DAQ reports is unconfirmed; see
//! `docs/miniscope.md`). Nothing allocates per call.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::uvc::{CAMERA_TERMINAL_ID, CtSelector, PuSelector, UvcControl, UvcError};

const CID_USER_BASE: u32 = 0x0098_0900;
const CID_CAMERA_BASE: u32 = 0x009A_0900;
/// `V4L2_CID_EXPOSURE_ABSOLUTE`.
const CID_EXPOSURE_ABSOLUTE: u32 = CID_CAMERA_BASE + 2;
/// `V4L2_CID_PAN_ABSOLUTE`.
const CID_PAN_ABSOLUTE: u32 = CID_CAMERA_BASE + 8;
/// `V4L2_CID_TILT_ABSOLUTE`.
const CID_TILT_ABSOLUTE: u32 = CID_CAMERA_BASE + 9;
/// `V4L2_CTRL_WHICH_CUR_VAL`.
const WHICH_CUR_VAL: u32 = 0;

/// `_IOWR('V', nr, size)`.
const fn iowr(nr: u32, size: usize) -> libc::c_ulong {
    ((3u32 << 30) | ((size as u32) << 16) | ((b'V' as u32) << 8) | nr) as libc::c_ulong
}

#[repr(C)]
struct V4l2Control {
    id: u32,
    value: i32,
}

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct V4l2ExtControl {
    id: u32,
    size: u32,
    reserved2: u32,
    value: i64,
}

#[repr(C)]
struct V4l2ExtControls {
    which: u32,
    count: u32,
    error_idx: u32,
    request_fd: i32,
    reserved: u32,
    controls: *mut V4l2ExtControl,
}

/// `VIDIOC_G_CTRL`.
pub const VIDIOC_G_CTRL: libc::c_ulong = iowr(27, std::mem::size_of::<V4l2Control>());
/// `VIDIOC_S_CTRL`.
pub const VIDIOC_S_CTRL: libc::c_ulong = iowr(28, std::mem::size_of::<V4l2Control>());
/// `VIDIOC_G_EXT_CTRLS`.
pub const VIDIOC_G_EXT_CTRLS: libc::c_ulong = iowr(71, std::mem::size_of::<V4l2ExtControls>());

/// The V4L2 control id uvcvideo gives a DAQ Processing-Unit selector.
pub fn pu_cid(selector: PuSelector) -> u32 {
    CID_USER_BASE
        + match selector {
            PuSelector::Brightness => 0,
            PuSelector::Contrast => 1,
            PuSelector::Saturation => 2,
            PuSelector::Hue => 3,
            PuSelector::Gamma => 16,
            PuSelector::Gain => 19,
            PuSelector::Sharpness => 27,
        }
}

/// The DAQ's controls on an open V4L2 node.
#[derive(Debug)]
pub struct V4l2Uvc {
    fd: OwnedFd,
    device: String,
}

impl V4l2Uvc {
    /// Opens `path` (a `/dev/videoN` node of the DAQ) for control access.
    pub fn open(path: &Path) -> Result<Self, UvcError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| UvcError::Disconnected(format!("{}: {e}", path.display())))?;
        Ok(Self {
            fd: file.into(),
            device: path.display().to_string(),
        })
    }

    /// Uses an already open node (e.g. the capture's own descriptor, duplicated).
    pub fn from_fd(fd: OwnedFd, device: impl Into<String>) -> Self {
        Self {
            fd,
            device: device.into(),
        }
    }

    fn error(&self, what: &str, unit: u8, selector: u8) -> UvcError {
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) => {
                UvcError::Disconnected(format!("{}: {what}: {e}", self.device))
            }
            // uvcvideo answers EINVAL for a control the device does not have, EIO when the
            // device stalls the request.
            Some(libc::EINVAL) | Some(libc::EIO) if unit == CAMERA_TERMINAL_ID => {
                UvcError::Unsupported { unit, selector }
            }
            _ => UvcError::Transfer(format!("{}: {what}: {e}", self.device)),
        }
    }

    fn ioctl<T>(&self, request: libc::c_ulong, arg: &mut T) -> bool {
        // SAFETY: `arg` is a live, properly laid out argument for `request` (the structs above
        // mirror videodev2.h), and the fd is open for the lifetime of `self`.
        unsafe { libc::ioctl(self.fd.as_raw_fd(), request, arg as *mut T) == 0 }
    }
}

impl UvcControl for V4l2Uvc {
    fn set_pu(&mut self, selector: PuSelector, value: u16) -> Result<(), UvcError> {
        let mut c = V4l2Control {
            id: pu_cid(selector),
            value: i32::from(value),
        };
        if self.ioctl(VIDIOC_S_CTRL, &mut c) {
            Ok(())
        } else {
            Err(self.error("VIDIOC_S_CTRL", 2, selector.code()))
        }
    }

    fn get_pu(&mut self, selector: PuSelector) -> Result<u16, UvcError> {
        let mut c = V4l2Control {
            id: pu_cid(selector),
            value: 0,
        };
        if self.ioctl(VIDIOC_G_CTRL, &mut c) {
            Ok(c.value as u16)
        } else {
            Err(self.error("VIDIOC_G_CTRL", 2, selector.code()))
        }
    }

    fn get_ct(&mut self, selector: CtSelector, out: &mut [u8]) -> Result<(), UvcError> {
        if out.len() != selector.payload_len() {
            return Err(UvcError::BufferSize {
                selector: selector.code(),
                expected: selector.payload_len(),
                got: out.len(),
            });
        }
        let ids: &[u32] = match selector {
            CtSelector::ExposureTimeAbsolute => &[CID_EXPOSURE_ABSOLUTE],
            CtSelector::PanTiltAbsolute => &[CID_PAN_ABSOLUTE, CID_TILT_ABSOLUTE],
        };
        let mut controls = [V4l2ExtControl {
            id: 0,
            size: 0,
            reserved2: 0,
            value: 0,
        }; 2];
        for (c, &id) in controls.iter_mut().zip(ids) {
            c.id = id;
        }
        let mut request = V4l2ExtControls {
            which: WHICH_CUR_VAL,
            count: ids.len() as u32,
            error_idx: 0,
            request_fd: 0,
            reserved: 0,
            controls: controls.as_mut_ptr(),
        };
        if !self.ioctl(VIDIOC_G_EXT_CTRLS, &mut request) {
            return Err(self.error("VIDIOC_G_EXT_CTRLS", CAMERA_TERMINAL_ID, selector.code()));
        }
        // One GET_CUR of the whole UVC control fills both V4L2 halves; each half is the
        // control's 4 bytes, little-endian, as the DAQ packed them.
        for (chunk, c) in out.chunks_mut(4).zip(controls.iter()) {
            let value = c.value as i32;
            chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request numbers and control ids equal those of the kernel's videodev2.h.
    #[test]
    fn request_numbers_and_ids_match_videodev2() {
        assert_eq!(VIDIOC_G_CTRL, 0xC008_561B);
        assert_eq!(VIDIOC_S_CTRL, 0xC008_561C);
        assert_eq!(VIDIOC_G_EXT_CTRLS, 0xC020_5647);
        assert_eq!(std::mem::size_of::<V4l2ExtControl>(), 20);
        assert_eq!(pu_cid(PuSelector::Contrast), 0x0098_0901);
        assert_eq!(pu_cid(PuSelector::Gamma), 0x0098_0910);
        assert_eq!(pu_cid(PuSelector::Sharpness), 0x0098_091B);
        assert_eq!(pu_cid(PuSelector::Gain), 0x0098_0913);
        assert_eq!(CID_EXPOSURE_ABSOLUTE, 0x009A_0902);
        assert_eq!(CID_PAN_ABSOLUTE, 0x009A_0908);
    }

    /// A node that is not a video device: the ioctl fails and the error names the device.
    #[test]
    fn a_non_video_node_fails_with_the_device_named() {
        let mut uvc = V4l2Uvc::open(Path::new("/dev/null")).unwrap();
        let e = uvc.set_pu(PuSelector::Contrast, 0x0320).unwrap_err();
        assert!(
            matches!(&e, UvcError::Transfer(m) if m.contains("/dev/null") && m.contains("VIDIOC_S_CTRL")),
            "{e}"
        );
        let mut out = [0u8; 8];
        assert!(uvc.get_ct(CtSelector::PanTiltAbsolute, &mut out).is_err());
        let mut short = [0u8; 3];
        assert!(matches!(
            uvc.get_ct(CtSelector::ExposureTimeAbsolute, &mut short),
            Err(UvcError::BufferSize {
                expected: 4,
                got: 3,
                ..
            })
        ));
        assert!(matches!(
            V4l2Uvc::open(Path::new("/dev/video-none")),
            Err(UvcError::Disconnected(m)) if m.contains("/dev/video-none")
        ));
    }
}
