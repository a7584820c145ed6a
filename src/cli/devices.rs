//! `behavd devices`: the serial ports a stimulator can be on, and the V4L2 cameras.

use std::process::ExitCode;

use behavd::source::v4l2::list::{CameraInfo, list_cameras};
use behavd::stim::ports::list_ports;

/// Lists serial ports with their USB identity and V4L2 cameras with their formats (or JSON:
/// `{"serial_ports": [...], "cameras": [...]}`).
pub fn devices(json: bool) -> anyhow::Result<ExitCode> {
    let ports = list_ports();
    let cameras = list_cameras();
    if json {
        let all = serde_json::json!({ "serial_ports": ports, "cameras": cameras });
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    if ports.is_empty() {
        println!(
            "no serial ports found (a USB stimulator shows up as /dev/ttyACM* or /dev/ttyUSB*)"
        );
    }
    for p in &ports {
        let usb = match (&p.vendor_id, &p.product_id) {
            (Some(v), Some(d)) => format!(
                " USB {v}:{d} {} {} serial {}",
                p.manufacturer.as_deref().unwrap_or(""),
                p.product.as_deref().unwrap_or(""),
                p.serial_number.as_deref().unwrap_or("-")
            ),
            _ => String::new(),
        };
        println!(
            "{:<16} driver {}{usb}",
            p.path,
            p.driver.as_deref().unwrap_or("?")
        );
        for link in &p.by_id {
            println!("{:<16} also {link}", "");
        }
        if let Some(serial) = &p.serial_number {
            println!("{:<16} config: port = \"usb:{serial}\"", "");
        }
    }
    print_cameras(&cameras);
    Ok(ExitCode::SUCCESS)
}

fn print_cameras(cameras: &[CameraInfo]) {
    if cameras.is_empty() {
        println!("no V4L2 cameras found (a camera shows up as /dev/video*)");
    }
    for c in cameras {
        println!(
            "{:<16} camera {:?} driver {} bus {}",
            c.path, c.card, c.driver, c.bus
        );
        for link in &c.links {
            println!("{:<16} also {link}", "");
        }
        match &c.usb_serial {
            Some(serial) => println!("{:<16} config: device = \"usb:{serial}\"", ""),
            None => println!("{:<16} config: device = \"card:{}\"", "", c.card),
        }
        for f in &c.formats {
            println!("{:<16} {} ({})", "", f.fourcc, f.description);
            for s in &f.sizes {
                let fps: Vec<String> = s.fps.iter().map(|r| format!("{r}")).collect();
                println!("{:<16}   {} @ {} fps", "", s.size, fps.join(", "));
            }
        }
    }
}
