//! `behavd devices`: the serial ports a stimulator can be on, the V4L2 cameras, and the
//! Miniscope DAQs among them (with their firmware ABI).

use std::process::ExitCode;

use behavd::source::miniscope::identify::{DaqInfo, list_daqs};
use behavd::source::v4l2::list::{CameraInfo, list_cameras};
use behavd::stim::ports::list_ports;

/// Lists serial ports with their USB identity, V4L2 cameras with their formats and Miniscope
/// DAQs with their firmware ABI (or JSON: `{"serial_ports": [...], "cameras": [...],
/// "miniscope_daqs": [...]}`).
pub fn devices(json: bool) -> anyhow::Result<ExitCode> {
    let ports = list_ports();
    let cameras = list_cameras();
    let daqs = list_daqs();
    if json {
        let all = serde_json::json!({ "serial_ports": ports, "cameras": cameras, "miniscope_daqs": daqs });
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
    print_daqs(&daqs);
    Ok(ExitCode::SUCCESS)
}

fn print_daqs(daqs: &[DaqInfo]) {
    for d in daqs {
        let abi = match (d.firmware_abi, &d.error) {
            (Some(abi), _) => format!("firmware ABI {abi}"),
            (None, Some(e)) => format!("firmware ABI unknown ({e})"),
            (None, None) => "firmware ABI unknown".into(),
        };
        println!(
            "{:<16} Miniscope DAQ USB {} ({}), {abi}; config: kind = \"miniscope\", device = \"{}\"",
            d.path, d.usb_id, d.link, d.path
        );
    }
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
