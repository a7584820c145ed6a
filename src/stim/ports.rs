//! Serial ports on this machine (`behavd devices`), from sysfs: every tty with a device behind
//! it, with the USB vendor, product, serial number and driver where the port is a USB device,
//! and its stable `/dev/serial/by-id` name. Also resolves `usb:<serial>` port selectors.

use std::path::{Path, PathBuf};

/// One serial port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PortInfo {
    /// Device node, e.g. `/dev/ttyACM0`.
    pub path: String,
    /// Kernel driver (e.g. `cdc_acm`, `ftdi_sio`, `serial8250`).
    pub driver: Option<String>,
    /// USB vendor id (hex).
    pub vendor_id: Option<String>,
    /// USB product id (hex).
    pub product_id: Option<String>,
    /// USB manufacturer string.
    pub manufacturer: Option<String>,
    /// USB product string.
    pub product: Option<String>,
    /// USB serial number (use it as `port = "usb:<serial>"`: stable across re-plugging).
    pub serial_number: Option<String>,
    /// `/dev/serial/by-id/...` links to this port.
    pub by_id: Vec<String>,
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The USB device directory above a tty's device (the one with `idVendor`), if any.
fn usb_device_dir(device: &Path) -> Option<PathBuf> {
    let mut dir = device.canonicalize().ok()?;
    for _ in 0..6 {
        if dir.join("idVendor").is_file() {
            return Some(dir);
        }
        dir = dir.parent()?.to_path_buf();
    }
    None
}

/// Serial ports found under `sys_class_tty` (normally `/sys/class/tty`), with by-id links from
/// `by_id_dir` (normally `/dev/serial/by-id`).
pub fn list_ports_in(sys_class_tty: &Path, by_id_dir: &Path) -> Vec<PortInfo> {
    let by_id: Vec<(PathBuf, String)> = std::fs::read_dir(by_id_dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let target = std::fs::canonicalize(e.path()).ok()?;
                    Some((target, e.path().display().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let Ok(entries) = std::fs::read_dir(sys_class_tty) else {
        return Vec::new();
    };
    let mut ports: Vec<PortInfo> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let device = e.path().join("device");
            if !device.exists() {
                return None; // virtual consoles, ptys
            }
            let driver = std::fs::read_link(device.join("driver"))
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
            // Legacy 8250 UARTs exist as ttyS0..31 whether or not hardware is there.
            if driver.as_deref() == Some("serial8250") && !name.ends_with('0') {
                return None;
            }
            let usb = usb_device_dir(&device);
            let attr = |file: &str| usb.as_ref().and_then(|d| read_trimmed(&d.join(file)));
            let path = format!("/dev/{name}");
            let links = by_id
                .iter()
                .filter(|(target, _)| target == Path::new(&path))
                .map(|(_, link)| link.clone())
                .collect();
            Some(PortInfo {
                driver,
                vendor_id: attr("idVendor"),
                product_id: attr("idProduct"),
                manufacturer: attr("manufacturer"),
                product: attr("product"),
                serial_number: attr("serial"),
                by_id: links,
                path,
            })
        })
        .collect();
    ports.sort_by(|a, b| a.path.cmp(&b.path));
    ports
}

/// Serial ports of this machine.
pub fn list_ports() -> Vec<PortInfo> {
    list_ports_in(Path::new("/sys/class/tty"), Path::new("/dev/serial/by-id"))
}

/// Resolves a config `port`: `usb:<serial>` → the port with that USB serial number; anything
/// else is a path.
pub fn resolve_port(selector: &str) -> Option<String> {
    match selector.strip_prefix("usb:") {
        Some(serial) => list_ports()
            .into_iter()
            .find(|p| p.serial_number.as_deref() == Some(serial))
            .map(|p| p.path),
        None => Some(selector.to_string()),
    }
}

/// Opens `port` (a path, or a `usb:<serial>` selector resolved now, so a board plugged in
/// later is found) for a link; the error says why in words.
pub fn open_port(port: &str, baud: u32) -> Result<serialport::TTYPort, String> {
    let path = resolve_port(port).ok_or_else(|| {
        format!("{port}: no serial port with that USB serial number is plugged in (see `behavd devices`)")
    })?;
    serialport::new(&path, baud)
        .timeout(std::time::Duration::from_millis(5))
        .open_native()
        .map_err(|e| open_error(&path, &e))
}

/// Why `port` could not be opened as a serial port, in words: a missing path, an empty one,
/// a regular file or directory, or a device that is no terminal (such as `/dev/null`) are
/// named as such; other errors are given as the OS reported them.
pub fn open_error(port: &str, error: &serialport::Error) -> String {
    use std::os::unix::fs::FileTypeExt;
    if port.is_empty() {
        return "the port is empty (set `port` to the device path, e.g. /dev/ttyACM0)".into();
    }
    match std::fs::metadata(port) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("{port}: no such port (not plugged in? see `behavd devices`)")
        }
        Ok(m) if m.is_file() => format!("{port}: a regular file, not a serial port"),
        Ok(m) if m.is_dir() => format!("{port}: a directory, not a serial port"),
        Ok(m) if m.file_type().is_char_device() && not_a_tty(error) => {
            format!("{port}: a device that is not a serial port (not a terminal)")
        }
        _ => format!("{port}: {error}"),
    }
}

/// ENOTTY, as serialport reports it ("Not a typewriter" / "Inappropriate ioctl for device").
fn not_a_tty(error: &serialport::Error) -> bool {
    let text = error.to_string();
    text.contains("typewriter") || text.contains("ioctl")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake sysfs: one USB CDC-ACM device with its attributes two levels up, one virtual
    /// tty without a device, and a by-id link.
    #[test]
    fn usb_attributes_and_by_id_links_are_found() {
        let root = tempfile::tempdir().unwrap();
        let usb = root.path().join("devices/usb1/1-1");
        let iface = usb.join("1-1:1.0");
        std::fs::create_dir_all(iface.join("tty/ttyACM0")).unwrap();
        std::fs::create_dir_all(root.path().join("drivers/cdc_acm")).unwrap();
        std::os::unix::fs::symlink(root.path().join("drivers/cdc_acm"), iface.join("driver"))
            .unwrap();
        for (file, value) in [
            ("idVendor", "2341"),
            ("idProduct", "0043"),
            ("manufacturer", "Arduino (www.arduino.cc)"),
            ("product", "Arduino Uno"),
            ("serial", "85736323838351F0E1A1"),
        ] {
            std::fs::write(usb.join(file), format!("{value}\n")).unwrap();
        }
        let class = root.path().join("class/tty");
        std::fs::create_dir_all(class.join("ttyACM0")).unwrap();
        std::os::unix::fs::symlink(&iface, class.join("ttyACM0/device")).unwrap();
        std::fs::create_dir_all(class.join("tty5")).unwrap();
        let ports = list_ports_in(&class, &root.path().join("no-by-id"));
        assert_eq!(ports.len(), 1, "{ports:?}");
        let p = &ports[0];
        assert_eq!(p.path, "/dev/ttyACM0");
        assert_eq!(p.driver.as_deref(), Some("cdc_acm"));
        assert_eq!(p.vendor_id.as_deref(), Some("2341"));
        assert_eq!(p.product.as_deref(), Some("Arduino Uno"));
        assert_eq!(p.serial_number.as_deref(), Some("85736323838351F0E1A1"));
    }

    /// Every way of not being a serial port is named in words.
    #[test]
    fn open_errors_say_what_the_port_is() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain.txt");
        std::fs::write(&file, "x").unwrap();
        let file = file.display().to_string();
        let missing = dir.path().join("ttyNOPE0").display().to_string();
        for (port, expected) in [
            ("", "the port is empty"),
            (missing.as_str(), "no such port"),
            (file.as_str(), "a regular file, not a serial port"),
            ("/dev/null", "a device that is not a serial port"),
            (
                "usb:NO-SUCH-SERIAL",
                "no serial port with that USB serial number",
            ),
        ] {
            let why = open_port(port, 115_200).map(|_| ()).unwrap_err();
            assert!(why.contains(expected), "{port:?}: {why}");
        }
    }
}
