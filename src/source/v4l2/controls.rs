//! Camera controls by name (`exposure_time_absolute`, `gain`, … as `v4l2-ctl -l` prints them).

use std::collections::BTreeMap;

use v4l::v4l_sys::{
    V4L2_CTRL_FLAG_DISABLED, V4L2_CTRL_FLAG_NEXT_COMPOUND, V4L2_CTRL_FLAG_NEXT_CTRL,
    V4L2_CTRL_FLAG_READ_ONLY, V4L2_CTRL_WHICH_CUR_VAL, v4l2_ext_control, v4l2_ext_controls,
    v4l2_query_ext_ctrl,
};
use v4l::v4l2::vidioc;

use super::error::V4l2Error;
use super::stream::xioctl;

/// Control types set through a single 64-bit value: integer, boolean, menu, button,
/// integer64, bitmask, integer menu.
const SCALAR_TYPES: [u32; 7] = [1, 2, 3, 4, 5, 8, 9];
const CTRL_CLASS: u32 = 6;

/// One control of a device.
#[derive(Debug, Clone)]
pub struct ControlInfo {
    /// V4L2 control id.
    pub id: u32,
    /// Name as `v4l2-ctl` prints it (`exposure_time_absolute`).
    pub name: String,
    /// `V4L2_CTRL_TYPE_*`.
    pub typ: u32,
    /// Smallest value.
    pub minimum: i64,
    /// Largest value.
    pub maximum: i64,
    /// `V4L2_CTRL_FLAG_*`.
    pub flags: u32,
}

/// `v4l2-ctl`'s form of a control name: lower case, runs of other characters as one `_`.
pub fn ctl_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// Every enabled control of the device on `fd` (class headings left out).
pub fn list(fd: i32) -> std::io::Result<Vec<ControlInfo>> {
    let mut out = Vec::new();
    // SAFETY: plain old data.
    let mut q: v4l2_query_ext_ctrl = unsafe { std::mem::zeroed() };
    loop {
        q.id |= V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND;
        match xioctl(fd, vidioc::VIDIOC_QUERY_EXT_CTRL, &mut q) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(out),
            Err(e) => return Err(e),
        }
        if q.type_ == CTRL_CLASS || q.flags & V4L2_CTRL_FLAG_DISABLED != 0 {
            continue;
        }
        let raw: Vec<u8> = q
            .name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        out.push(ControlInfo {
            id: q.id,
            name: ctl_name(&String::from_utf8_lossy(&raw)),
            typ: q.type_,
            minimum: q.minimum,
            maximum: q.maximum,
            flags: q.flags,
        });
    }
}

/// Sets each `name = value` on the device on `fd` (`device` names it in errors).
pub fn apply(fd: i32, device: &str, wanted: &BTreeMap<String, i64>) -> Result<(), V4l2Error> {
    if wanted.is_empty() {
        return Ok(());
    }
    let controls = list(fd).map_err(|e| V4l2Error::io(device, "VIDIOC_QUERY_EXT_CTRL", e))?;
    for (name, &value) in wanted {
        let Some(c) = controls.iter().find(|c| c.name == ctl_name(name)) else {
            let names: Vec<&str> = controls.iter().map(|c| c.name.as_str()).collect();
            return Err(V4l2Error::UnknownControl {
                device: device.to_string(),
                name: name.clone(),
                available: names.join(", "),
            });
        };
        let unsupported = |what: String| V4l2Error::Unsupported {
            device: device.to_string(),
            what: format!("control `{name}`: {what}"),
        };
        if !SCALAR_TYPES.contains(&c.typ) || c.flags & V4L2_CTRL_FLAG_READ_ONLY != 0 {
            return Err(unsupported(format!(
                "type {} / flags {:#x} cannot be set from a number",
                c.typ, c.flags
            )));
        }
        if !(c.minimum..=c.maximum).contains(&value) {
            return Err(unsupported(format!(
                "{value} is outside {}..={}",
                c.minimum, c.maximum
            )));
        }
        // SAFETY: plain old data; the control array outlives the ioctl.
        let mut ctrl: v4l2_ext_control = unsafe { std::mem::zeroed() };
        ctrl.id = c.id;
        ctrl.__bindgen_anon_1.value64 = value;
        let mut list: v4l2_ext_controls = unsafe { std::mem::zeroed() };
        list.__bindgen_anon_1.which = V4L2_CTRL_WHICH_CUR_VAL;
        list.count = 1;
        list.controls = &mut ctrl;
        xioctl(fd, vidioc::VIDIOC_S_EXT_CTRLS, &mut list).map_err(|e| {
            V4l2Error::io(device, format!("setting control `{name}` to {value}"), e)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ctl_name;

    #[test]
    fn names_follow_v4l2_ctl() {
        assert_eq!(
            ctl_name("Exposure Time, Absolute"),
            "exposure_time_absolute"
        );
        assert_eq!(
            ctl_name("White Balance, Auto & Preset"),
            "white_balance_auto_preset"
        );
        assert_eq!(ctl_name("Gain"), "gain");
        assert_eq!(ctl_name("OSD Text Mode"), "osd_text_mode");
        assert_eq!(
            ctl_name("Percentage of Dropped Buffers"),
            "percentage_of_dropped_buffers"
        );
    }
}
