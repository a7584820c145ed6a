//! Finding Miniscope DAQs among the V4L2 devices (USB 04b4:00f9, or 00f8 when enumerated on
//! USB 2) and asking their firmware ABI (SATURATION = 0x0002, then HUE answers 2 on ABI-2
//! firmware; docs/miniscope.md). For `behavd devices`.

use std::path::Path;
use std::time::Duration;

use super::frame_reads::{read_abi_answer, start_abi_query};
use super::uvc::{
    DAQ_PRODUCT_ID_HIGHSPEED, DAQ_PRODUCT_ID_SUPERSPEED, DAQ_VENDOR_ID, UvcControl, UvcError,
};
use super::v4l2_uvc::V4l2Uvc;
use crate::source::v4l2::select::usb_id;

/// One DAQ found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DaqInfo {
    /// `/dev/videoN`.
    pub path: String,
    /// `vvvv:pppp`.
    pub usb_id: String,
    /// `SuperSpeed` (00f9, the Miniscope sizes) or `USB 2` (00f8: the DAQ is on a USB 2 port
    /// or cable and will not stream Miniscope frames).
    pub link: &'static str,
    /// Firmware ABI: 2 if the DAQ answered the query, 1 if it did not (older firmware:
    /// counter and IMU by PU reads only), absent if the query itself failed.
    pub firmware_abi: Option<u16>,
    /// Why the query failed (device busy streaming elsewhere, permissions).
    pub error: Option<String>,
}

/// Every DAQ node, with its ABI (the query is only valid while the DAQ is not streaming).
pub fn list_daqs() -> Vec<DaqInfo> {
    crate::source::v4l2::select::video_nodes()
        .into_iter()
        .filter_map(|node| {
            let (v, p) = usb_id(&node)?;
            let link = match (v, p) {
                (DAQ_VENDOR_ID, DAQ_PRODUCT_ID_SUPERSPEED) => "SuperSpeed",
                (DAQ_VENDOR_ID, DAQ_PRODUCT_ID_HIGHSPEED) => "USB 2",
                _ => return None,
            };
            // uvcvideo also makes a metadata node per camera: list the capture node only.
            if !crate::source::v4l2::select::query(&node).is_ok_and(|c| c.capture) {
                return None;
            }
            let (firmware_abi, error) = match query_abi(&node) {
                Ok(abi) => (Some(abi), None),
                Err(e) => (None, Some(e)),
            };
            Some(DaqInfo {
                path: node.display().to_string(),
                usb_id: format!("{v:04x}:{p:04x}"),
                link,
                firmware_abi,
                error,
            })
        })
        .collect()
}

fn query_abi(node: &Path) -> Result<u16, String> {
    let mut uvc = V4l2Uvc::open(node).map_err(|e| e.to_string())?;
    firmware_abi(&mut uvc).map_err(|e| e.to_string())
}

/// Asks the DAQ's firmware ABI: 2 if it answers the query, else 1. Only valid while the DAQ
/// is not streaming; it clears the sync output (SATURATION is written).
pub fn firmware_abi(uvc: &mut impl UvcControl) -> Result<u16, UvcError> {
    start_abi_query(uvc)?;
    // The answer is readable once the write has settled (≥ 100 µs); older firmware never
    // answers, so a few polls decide.
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(2));
        if let Some(abi) = read_abi_answer(uvc)? {
            return Ok(abi);
        }
    }
    Ok(1)
}
