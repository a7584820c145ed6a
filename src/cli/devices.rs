//! `behavd devices`: the serial ports a stimulator can be on.

use std::process::ExitCode;

use behavd::stim::ports::list_ports;

/// Lists serial ports with their USB identity (or JSON).
pub fn devices(json: bool) -> anyhow::Result<ExitCode> {
    let ports = list_ports();
    if json {
        println!("{}", serde_json::to_string_pretty(&ports)?);
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
    Ok(ExitCode::SUCCESS)
}
