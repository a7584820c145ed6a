//! Device selectors → capture nodes, through sysfs: `/dev/videoN`, `/dev/v4l/by-id/...` (any
//! link to a node), `card:<card name>`, `usb:<USB serial number>`.

use std::path::{Path, PathBuf};

use super::error::V4l2Error;

/// What `VIDIOC_QUERYCAP` says about one node.
#[derive(Debug, Clone)]
pub struct NodeCaps {
    /// `/dev/videoN`.
    pub node: PathBuf,
    /// Driver name, e.g. `uvcvideo`.
    pub driver: String,
    /// Card name, e.g. the camera's USB product string.
    pub card: String,
    /// Bus, e.g. `usb-0000:00:14.0-1`.
    pub bus: String,
    /// Whether the node captures video (metadata nodes of UVC cameras do not).
    pub capture: bool,
}

/// The `/dev/videoN` nodes sysfs knows, in number order.
pub fn video_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir("/sys/class/video4linux")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix("video")?.parse().ok()?;
            Some((n, Path::new("/dev").join(name)))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, p)| p).collect()
}

/// Opens `node` briefly and asks what it is.
pub fn query(node: &Path) -> std::io::Result<NodeCaps> {
    let dev = v4l::Device::with_path(node)?;
    let caps = dev.query_caps()?;
    let flags = caps.capabilities;
    Ok(NodeCaps {
        node: node.to_path_buf(),
        driver: caps.driver,
        card: caps.card,
        bus: caps.bus,
        capture: flags.contains(v4l::capability::Flags::VIDEO_CAPTURE)
            && flags.contains(v4l::capability::Flags::STREAMING),
    })
}

/// The sysfs directory of the device behind `node` (for a UVC camera: its USB interface).
fn sysfs_device(node: &Path) -> Option<PathBuf> {
    let name = node.file_name()?;
    Path::new("/sys/class/video4linux")
        .join(name)
        .join("device")
        .canonicalize()
        .ok()
}

/// The USB serial number of the device behind `node`, if it is a USB device that has one.
pub fn usb_serial(node: &Path) -> Option<String> {
    let dev = sysfs_device(node)?;
    dev.ancestors()
        .find(|d| d.join("idVendor").is_file() && d.join("serial").is_file())
        .and_then(|d| std::fs::read_to_string(d.join("serial")).ok())
        .map(|s| s.trim().to_string())
}

/// USB vendor and product id of the device behind `node`: those of the nearest USB device
/// above its interface.
pub fn usb_id(node: &Path) -> Option<(u16, u16)> {
    let dev = sysfs_device(node)?;
    let usb = dev.ancestors().find(|d| d.join("idVendor").is_file())?;
    let read = |f: &str| {
        std::fs::read_to_string(usb.join(f))
            .ok()
            .and_then(|s| u16::from_str_radix(s.trim(), 16).ok())
    };
    Some((read("idVendor")?, read("idProduct")?))
}

/// `node (card)` for messages.
pub fn label(caps: &NodeCaps) -> String {
    format!("{} ({})", caps.node.display(), caps.card)
}

fn capture_nodes() -> Vec<NodeCaps> {
    video_nodes()
        .iter()
        .filter_map(|n| query(n).ok())
        .filter(|c| c.capture)
        .collect()
}

fn present(nodes: &[NodeCaps]) -> String {
    if nodes.is_empty() {
        return "none".into();
    }
    let list: Vec<String> = nodes
        .iter()
        .map(|c| match usb_serial(&c.node) {
            Some(s) => format!("{} usb:{s}", label(c)),
            None => label(c),
        })
        .collect();
    list.join(", ")
}

/// The capture node `selector` names now.
pub fn resolve(selector: &str) -> Result<NodeCaps, V4l2Error> {
    let not_found = |why: String, nodes: &[NodeCaps]| V4l2Error::NotFound {
        selector: selector.to_string(),
        why,
        present: present(nodes),
    };
    let pick = |why: &str, matches: Vec<NodeCaps>, nodes: &[NodeCaps]| match matches.len() {
        1 => Ok(matches.into_iter().next().unwrap()),
        0 => Err(not_found(why.to_string(), nodes)),
        _ => Err(not_found(
            format!("{why}: several match; use usb:<serial> or a /dev/v4l/by-id path"),
            &matches,
        )),
    };
    if let Some(card) = selector.strip_prefix("card:") {
        let nodes = capture_nodes();
        let matches = nodes.iter().filter(|c| c.card == card).cloned().collect();
        return pick("no card of that name", matches, &nodes);
    }
    if let Some(serial) = selector.strip_prefix("usb:") {
        let nodes = capture_nodes();
        let matches = nodes
            .iter()
            .filter(|c| usb_serial(&c.node).as_deref() == Some(serial))
            .cloned()
            .collect();
        // A UVC camera has one capture node and one metadata node; only the first counts.
        return pick("no USB device with that serial number", matches, &nodes);
    }
    let path = Path::new(selector);
    let node = path
        .canonicalize()
        .map_err(|e| not_found(format!("{}: {e}", path.display()), &capture_nodes()))?;
    let caps = query(&node).map_err(|e| V4l2Error::io(selector, "VIDIOC_QUERYCAP", e))?;
    if !caps.capture {
        return Err(V4l2Error::Unsupported {
            device: label(&caps),
            what: "is not a streaming video capture node (a UVC metadata node?)".into(),
        });
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_path_is_not_found_and_lists_what_is_there() {
        let err = resolve("/dev/v4l/by-id/no-such-camera").unwrap_err();
        assert!(err.is_gone(), "{err}");
        let text = err.to_string();
        assert!(text.contains("/dev/v4l/by-id/no-such-camera"), "{text}");
        assert!(text.contains("capture devices present:"), "{text}");
    }

    #[test]
    fn an_unknown_card_or_serial_is_not_found() {
        for selector in ["card:No Such Camera", "usb:000000000000"] {
            let err = resolve(selector).unwrap_err();
            assert!(matches!(err, V4l2Error::NotFound { .. }), "{err}");
            assert!(err.to_string().contains(selector), "{err}");
        }
    }
}
