//! An emulated Arduino Uno running StandardFirmata 2.5, reduced to what a stimulator needs, on
//! one end of a pseudo-terminal pair: the host opens a real `/dev/pts/N` as it would open
//! `/dev/ttyACM0`.
//!
//! Behaviour, from the Firmata protocol (protocol.md of `firmata/protocol`) and StandardFirmata's
//! documented behaviour (its sketch, `StandardFirmata.ino` in `firmata/arduino`):
//! - at start ("boot") the board sends REPORT_VERSION `F9 02 05`, then REPORT_FIRMWARE
//!   `F0 79 02 05 "StandardFirmata.ino" F7` (name as LSB/MSB 7-bit pairs);
//! - `F9` alone is answered with REPORT_VERSION, `F0 79 F7` with REPORT_FIRMWARE;
//! - SET_PIN_MODE `F4 pin mode` sets a pin's mode (pins 0–19; 0 and 1 are the UART and ignored);
//! - DIGITAL_MESSAGE `9p lsb msb` drives the pins of port `p` that are in OUTPUT mode to the
//!   bits given (other pins of the port are untouched); SET_DIGITAL_PIN_VALUE `F5 pin value`
//!   drives one OUTPUT pin;
//! - SYSTEM_RESET `FF` puts every pin back to INPUT, low;
//! - other messages are parsed and ignored (no capability, analog or I²C emulation).
//!
//! Every change of an output pin is logged with the host monotonic time the board applied it.
//! The board keeps no clock of its own and sends nothing back per write: Firmata has no
//! acknowledgements.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serialport::{SerialPort, TTYPort};

use super::firmata::{PinMode, cmd};
use crate::clock::monotonic_ns;

/// Digital pins of an Uno (D0–D13, A0–A5 as D14–D19).
pub const UNO_PINS: usize = 20;
/// Firmware name StandardFirmata reports.
pub const FIRMWARE_NAME: &str = "StandardFirmata.ino";

/// A change of an output pin, as the board applied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinChange {
    /// Arduino pin number.
    pub pin: u8,
    /// Level after the change.
    pub high: bool,
    /// Host monotonic ns when the board applied it.
    pub mono_ns: u64,
}

/// Why the emulated board could not start.
#[derive(Debug, thiserror::Error)]
pub enum FirmataBoardError {
    /// The pseudo-terminal could not be created or linked.
    #[error("emulated Firmata board: {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// serialport could not create the pair.
    #[error("emulated Firmata board: cannot create a pseudo-terminal: {0}")]
    Pty(#[from] serialport::Error),
}

#[derive(Default)]
struct Board {
    modes: [u8; UNO_PINS],
    levels: [bool; UNO_PINS],
    changes: Vec<PinChange>,
    /// Bytes received that were not part of a complete message.
    discarded: u64,
}

/// The running board.
pub struct FirmataBoard {
    path: String,
    link: Option<PathBuf>,
    board: Arc<Mutex<Board>>,
    stop: Arc<AtomicBool>,
    booted: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _slave: TTYPort,
}

fn lock(board: &Mutex<Board>) -> MutexGuard<'_, Board> {
    board.lock().unwrap_or_else(|e| e.into_inner())
}

/// The REPORT_FIRMWARE sysex StandardFirmata 2.5 sends.
pub fn firmware_report() -> Vec<u8> {
    let mut v = vec![cmd::START_SYSEX, cmd::REPORT_FIRMWARE, 2, 5];
    for c in FIRMWARE_NAME.bytes() {
        v.extend([c & 0x7F, c >> 7]);
    }
    v.push(cmd::END_SYSEX);
    v
}

impl FirmataBoard {
    /// Boots the board on a new pty (also reachable at `link`, a symlink, when given).
    pub fn start(link: Option<&Path>) -> Result<Self, FirmataBoardError> {
        Self::start_booted(link, true)
    }

    /// Powers the board on but keeps it in its bootloader: it ignores every byte (counted as
    /// discarded) and sends nothing until [`boot`](Self::boot), as an Uno does for a while
    /// after its port is opened (or forever, when its sketch is not StandardFirmata).
    pub fn start_held(link: Option<&Path>) -> Result<Self, FirmataBoardError> {
        Self::start_booted(link, false)
    }

    /// Ends the bootloader of a board started with [`start_held`](Self::start_held):
    /// StandardFirmata starts and sends its version and firmware reports.
    pub fn boot(&self) {
        self.booted.store(true, Ordering::Release);
    }

    fn start_booted(link: Option<&Path>, booted: bool) -> Result<Self, FirmataBoardError> {
        let (mut master, slave) = TTYPort::pair()?;
        let path = slave.name().unwrap_or_default();
        if let Some(link) = link {
            let io = |what: String| move |source| FirmataBoardError::Io { what, source };
            if std::fs::symlink_metadata(link).is_ok() {
                std::fs::remove_file(link).map_err(io(format!("removing {}", link.display())))?;
            }
            std::os::unix::fs::symlink(&path, link)
                .map_err(io(format!("linking {} -> {path}", link.display())))?;
            crate::cleanup::remove_at_abort(link);
        }
        master.set_timeout(Duration::from_millis(20))?;
        let board = Arc::new(Mutex::new(Board::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let booted = Arc::new(AtomicBool::new(booted));
        let thread = {
            let (board, stop, booted) =
                (Arc::clone(&board), Arc::clone(&stop), Arc::clone(&booted));
            std::thread::Builder::new()
                .name("firmata-board".into())
                .spawn(move || run(master, board, stop, booted))
                .map_err(|source| FirmataBoardError::Io {
                    what: "spawning its thread".into(),
                    source,
                })?
        };
        Ok(Self {
            path,
            link: link.map(Path::to_path_buf),
            board,
            stop,
            booted,
            thread: Some(thread),
            _slave: slave,
        })
    }

    /// The pty path the host opens.
    pub fn port_path(&self) -> &str {
        &self.path
    }

    /// Every output-pin change so far.
    pub fn changes(&self) -> Vec<PinChange> {
        lock(&self.board).changes.clone()
    }

    /// The mode byte of `pin` (0 = INPUT after boot).
    pub fn pin_mode(&self, pin: u8) -> u8 {
        lock(&self.board)
            .modes
            .get(pin as usize)
            .copied()
            .unwrap_or(0)
    }

    /// The level of `pin`.
    pub fn level(&self, pin: u8) -> bool {
        lock(&self.board)
            .levels
            .get(pin as usize)
            .copied()
            .unwrap_or(false)
    }

    /// Bytes received outside complete messages.
    pub fn discarded(&self) -> u64 {
        lock(&self.board).discarded
    }

    /// Powers the board off: its thread ends, the pty closes, the symlink is removed.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(link) = &self.link {
            let _ = std::fs::remove_file(link);
        }
    }
}

impl Drop for FirmataBoard {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Host → board parser state.
enum Rx {
    Idle,
    /// A command with fixed data bytes still to come.
    Data {
        command: u8,
        got: usize,
        data: [u8; 2],
    },
    Sysex {
        len: usize,
        first: u8,
    },
}

fn data_bytes(command: u8) -> Option<usize> {
    match command & 0xF0 {
        cmd::DIGITAL_MESSAGE | cmd::ANALOG_MESSAGE => Some(2),
        cmd::REPORT_ANALOG | cmd::REPORT_DIGITAL => Some(1),
        _ => match command {
            cmd::SET_PIN_MODE | cmd::SET_DIGITAL_PIN_VALUE => Some(2),
            _ => None,
        },
    }
}

fn run(
    mut port: TTYPort,
    board: Arc<Mutex<Board>>,
    stop: Arc<AtomicBool>,
    booted: Arc<AtomicBool>,
) {
    let mut version = [cmd::REPORT_VERSION, 2, 5].to_vec();
    version.extend(firmware_report());
    let mut rx = Rx::Idle;
    let mut buf = [0u8; 256];
    let mut reported = false;
    while !stop.load(Ordering::Relaxed) {
        if !reported && booted.load(Ordering::Acquire) {
            reported = true;
            let _ = port.write_all(&version);
        }
        let n = match port.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // No host has the port open (EIO on the master): wait for one.
            Err(_) => {
                std::thread::park_timeout(Duration::from_millis(5));
                continue;
            }
        };
        if !reported {
            // The bootloader: nothing reaches the sketch.
            lock(&board).discarded += n as u64;
            continue;
        }
        for &b in &buf[..n] {
            let mut reply: Option<Vec<u8>> = None;
            rx = step(rx, b, &board, &mut reply);
            if let Some(r) = reply {
                let _ = port.write_all(&r);
            }
        }
    }
}

/// One byte through the parser; complete messages take effect on `board`.
fn step(rx: Rx, b: u8, board: &Mutex<Board>, reply: &mut Option<Vec<u8>>) -> Rx {
    if b < 0x80 {
        return match rx {
            Rx::Idle => {
                lock(board).discarded += 1;
                Rx::Idle
            }
            Rx::Data {
                command,
                mut got,
                mut data,
            } => {
                data[got] = b;
                got += 1;
                if Some(got) == data_bytes(command) {
                    apply(command, data, board);
                    Rx::Idle
                } else {
                    Rx::Data { command, got, data }
                }
            }
            Rx::Sysex { len, first } => Rx::Sysex {
                len: len + 1,
                first: if len == 0 { b } else { first },
            },
        };
    }
    match (rx, b) {
        (Rx::Sysex { len, first }, cmd::END_SYSEX) => {
            if len == 1 && first == cmd::REPORT_FIRMWARE {
                *reply = Some(firmware_report());
            }
            return Rx::Idle;
        }
        (Rx::Idle, _) => {}
        _ => lock(board).discarded += 1,
    }
    match b {
        cmd::START_SYSEX => Rx::Sysex { len: 0, first: 0 },
        cmd::REPORT_VERSION => {
            *reply = Some(vec![cmd::REPORT_VERSION, 2, 5]);
            Rx::Idle
        }
        cmd::SYSTEM_RESET => {
            let mut bd = lock(board);
            let now = monotonic_ns();
            for pin in 0..UNO_PINS {
                if bd.levels[pin] {
                    bd.changes.push(PinChange {
                        pin: pin as u8,
                        high: false,
                        mono_ns: now,
                    });
                }
            }
            bd.modes = [PinMode::Input as u8; UNO_PINS];
            bd.levels = [false; UNO_PINS];
            Rx::Idle
        }
        command if data_bytes(command).is_some() => Rx::Data {
            command,
            got: 0,
            data: [0; 2],
        },
        _ => Rx::Idle,
    }
}

fn apply(command: u8, [d0, d1]: [u8; 2], board: &Mutex<Board>) {
    let mut bd = lock(board);
    let now = monotonic_ns();
    let drive = |bd: &mut Board, pin: usize, high: bool| {
        if (2..UNO_PINS).contains(&pin) && bd.modes[pin] == PinMode::Output as u8 {
            if bd.levels[pin] != high {
                bd.changes.push(PinChange {
                    pin: pin as u8,
                    high,
                    mono_ns: now,
                });
            }
            bd.levels[pin] = high;
        }
    };
    match command & 0xF0 {
        cmd::DIGITAL_MESSAGE => {
            let port = (command & 0x0F) as usize;
            let value = d0 | (d1 & 1) << 7;
            for bit in 0..8 {
                drive(&mut bd, port * 8 + bit, value & (1 << bit) != 0);
            }
        }
        _ if command == cmd::SET_DIGITAL_PIN_VALUE => drive(&mut bd, d0 as usize, d1 != 0),
        _ if command == cmd::SET_PIN_MODE => {
            let pin = d0 as usize;
            if (2..UNO_PINS).contains(&pin) {
                bd.modes[pin] = d1;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stim::firmata::{FirmataEvent, FirmataParser};

    fn open(board: &FirmataBoard) -> TTYPort {
        serialport::new(board.port_path(), 57_600)
            .timeout(Duration::from_millis(20))
            .open_native()
            .unwrap()
    }

    fn read_until(port: &mut TTYPort, pred: impl Fn(&FirmataEvent) -> bool) -> FirmataEvent {
        let mut parser = FirmataParser::new();
        let mut buf = [0u8; 256];
        for _ in 0..250 {
            if let Ok(n) = port.read(&mut buf)
                && let Some(e) = parser.feed(&buf[..n]).into_iter().find(|e| pred(e))
            {
                return e;
            }
        }
        panic!("the board did not answer");
    }

    /// The exchange the Firmata protocol documents (raw Firmata bytes): the firmware query is
    /// answered with StandardFirmata 2.5, `F4 0D 01` makes D13 an output, `91 20 00` /
    /// `91 00 00` switch it on and off, `F5 0D 01` / `F5 0D 00` likewise; a pin not in OUTPUT
    /// mode ignores writes.
    #[test]
    fn answers_queries_and_drives_output_pins_as_standard_firmata() {
        let board = FirmataBoard::start(None).unwrap();
        let mut port = open(&board);
        port.write_all(&[0xF0, 0x79, 0xF7]).unwrap();
        let e = read_until(&mut port, |e| matches!(e, FirmataEvent::Firmware { .. }));
        assert_eq!(
            e,
            FirmataEvent::Firmware {
                major: 2,
                minor: 5,
                name: FIRMWARE_NAME.into()
            }
        );
        port.write_all(&[0xF9]).unwrap();
        let e = read_until(&mut port, |e| {
            matches!(e, FirmataEvent::ProtocolVersion { .. })
        });
        assert_eq!(e, FirmataEvent::ProtocolVersion { major: 2, minor: 5 });
        // D12 is not an output: this write must not move it.
        port.write_all(&[0x91, 0x10, 0x00]).unwrap();
        port.write_all(&[0xF4, 0x0D, 0x01]).unwrap();
        port.write_all(&[0x91, 0x20, 0x00, 0x91, 0x00, 0x00])
            .unwrap();
        port.write_all(&[0xF5, 0x0D, 0x01, 0xF5, 0x0D, 0x00])
            .unwrap();
        // A query after the writes: once it is answered, the writes were applied.
        port.write_all(&[0xF9]).unwrap();
        read_until(&mut port, |e| {
            matches!(e, FirmataEvent::ProtocolVersion { .. })
        });
        let levels: Vec<(u8, bool)> = board.changes().iter().map(|c| (c.pin, c.high)).collect();
        assert_eq!(levels, [(13, true), (13, false), (13, true), (13, false)]);
        assert_eq!(board.pin_mode(13), PinMode::Output as u8);
        assert_eq!(board.pin_mode(12), PinMode::Input as u8);
        assert_eq!(board.discarded(), 0);
        board.stop();
    }
}
