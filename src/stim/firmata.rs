//! A Firmata client codec for an unmodified Arduino running StandardFirmata (Firmata protocol
//! 2.x, `firmata/protocol` on GitHub, protocol.md): the commands behavd needs to drive output
//! pins and a streaming parser for what the board sends back.
//!
//! Firmata has no acknowledgements and no device clock, so a Firmata stimulator gives only
//! host-side timestamps of when a command was written; behavd's own protocol
//! ([`super::codec`]) is the one with device-timed edges.
//!
//! Encoders return fixed-size arrays (no allocation). The parser is MIDI-like: a byte ≥ 0x80 is a
//! command and starts a message, data bytes are < 0x80; a command byte arriving before the
//! previous message is complete aborts it (counted), as does a sysex longer than
//! [`MAX_SYSEX`] bytes. It never panics.

use thiserror::Error;

/// Command bytes (protocol.md, "Message Types").
pub mod cmd {
    /// Analog I/O message, `| pin` (0xE0–0xEF): LSB(bits 0-6), MSB(bits 7-13).
    pub const ANALOG_MESSAGE: u8 = 0xE0;
    /// Digital I/O message, `| port` (0x90–0x9F): pins 0-6 bitmask, pin 7 bitmask.
    pub const DIGITAL_MESSAGE: u8 = 0x90;
    /// Report analog pin, `| pin`: disable/enable.
    pub const REPORT_ANALOG: u8 = 0xC0;
    /// Report digital port, `| port`: disable/enable.
    pub const REPORT_DIGITAL: u8 = 0xD0;
    /// Start of a sysex message.
    pub const START_SYSEX: u8 = 0xF0;
    /// Set pin mode: pin, mode.
    pub const SET_PIN_MODE: u8 = 0xF4;
    /// Set digital pin value (Firmata ≥ 2.5): pin, value.
    pub const SET_DIGITAL_PIN_VALUE: u8 = 0xF5;
    /// End of a sysex message.
    pub const END_SYSEX: u8 = 0xF7;
    /// Protocol version report (and, sent alone, its request): major, minor.
    pub const REPORT_VERSION: u8 = 0xF9;
    /// System reset.
    pub const SYSTEM_RESET: u8 = 0xFF;
    /// Sysex: a string of 14-bit characters.
    pub const STRING_DATA: u8 = 0x71;
    /// Sysex: firmware name and version (query and report).
    pub const REPORT_FIRMWARE: u8 = 0x79;
}

/// Longest sysex body (command byte + data) the parser keeps; longer ones are discarded.
pub const MAX_SYSEX: usize = 1024;

/// Pin modes (protocol.md, "Supported Modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PinMode {
    /// DIGITAL_INPUT (0x00).
    Input = 0x00,
    /// DIGITAL_OUTPUT (0x01).
    Output = 0x01,
    /// ANALOG_INPUT (0x02).
    Analog = 0x02,
    /// PWM (0x03).
    Pwm = 0x03,
    /// SERVO (0x04).
    Servo = 0x04,
    /// SHIFT (0x05).
    Shift = 0x05,
    /// I2C (0x06).
    I2c = 0x06,
    /// ONEWIRE (0x07).
    OneWire = 0x07,
    /// STEPPER (0x08).
    Stepper = 0x08,
    /// ENCODER (0x09).
    Encoder = 0x09,
    /// SERIAL (0x0A).
    Serial = 0x0A,
    /// INPUT_PULLUP (0x0B).
    InputPullup = 0x0B,
}

/// A request the Firmata encoding cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FirmataError {
    /// Pins are 0–127 (7-bit data byte).
    #[error("pin {0} is out of Firmata's range 0-127")]
    PinOutOfRange(u8),
    /// Digital ports are 0–15 (the low nibble of the command byte).
    #[error("port {0} is out of Firmata's range 0-15")]
    PortOutOfRange(u8),
}

fn check_pin(pin: u8) -> Result<u8, FirmataError> {
    if pin < 0x80 {
        Ok(pin)
    } else {
        Err(FirmataError::PinOutOfRange(pin))
    }
}

/// REPORT_VERSION query: `F9`. The board answers with its protocol version.
pub fn report_version_query() -> [u8; 1] {
    [cmd::REPORT_VERSION]
}

/// QUERY_FIRMWARE: `F0 79 F7`. The board answers with REPORT_FIRMWARE.
pub fn query_firmware() -> [u8; 3] {
    [cmd::START_SYSEX, cmd::REPORT_FIRMWARE, cmd::END_SYSEX]
}

/// SET_PIN_MODE: `F4 pin mode`.
pub fn set_pin_mode(pin: u8, mode: PinMode) -> Result<[u8; 3], FirmataError> {
    Ok([cmd::SET_PIN_MODE, check_pin(pin)?, mode as u8])
}

/// SET_DIGITAL_PIN_VALUE: `F5 pin value` (Firmata ≥ 2.5; for older firmware use
/// [`FirmataClient::digital_write`]).
pub fn set_digital_pin_value(pin: u8, high: bool) -> Result<[u8; 3], FirmataError> {
    Ok([cmd::SET_DIGITAL_PIN_VALUE, check_pin(pin)?, high as u8])
}

/// DIGITAL_MESSAGE: `9p LSB MSB` for port `p` (pins 8p..8p+7): bits 0-6 of `value`, then bit 7.
pub fn digital_message(port: u8, value: u8) -> Result<[u8; 3], FirmataError> {
    if port > 0x0F {
        return Err(FirmataError::PortOutOfRange(port));
    }
    Ok([cmd::DIGITAL_MESSAGE | port, value & 0x7F, value >> 7])
}

/// Client-side state: the output value of every digital port, so that writing one pin with a
/// DIGITAL_MESSAGE (which sets a whole port) keeps the other pins of the port as they were.
#[derive(Debug, Clone, Default)]
pub struct FirmataClient {
    ports: [u8; 16],
}

impl FirmataClient {
    /// All pins low.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `pin` in the tracked port state and returns the DIGITAL_MESSAGE for its port.
    pub fn digital_write(&mut self, pin: u8, high: bool) -> Result<[u8; 3], FirmataError> {
        let pin = check_pin(pin)?;
        let (port, bit) = (pin / 8, 1u8 << (pin % 8));
        let v = &mut self.ports[port as usize];
        if high {
            *v |= bit;
        } else {
            *v &= !bit;
        }
        digital_message(port, *v)
    }

    /// The tracked output value of `port` (pins 8·port .. 8·port+7), 0 for ports out of range.
    pub fn port_value(&self, port: u8) -> u8 {
        self.ports.get(port as usize).copied().unwrap_or(0)
    }
}

/// Something the board sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirmataEvent {
    /// REPORT_VERSION (`F9 major minor`): the Firmata protocol version.
    ProtocolVersion {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// REPORT_FIRMWARE (sysex 0x79): firmware version and name (e.g. "StandardFirmata").
    Firmware {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
        /// Name, decoded from LSB/MSB 7-bit pairs.
        name: String,
    },
    /// DIGITAL_MESSAGE: the input state of a port.
    DigitalPort {
        /// Port (pins 8·port .. 8·port+7).
        port: u8,
        /// Pin bitmask.
        value: u8,
    },
    /// ANALOG_MESSAGE: a 14-bit value of an analog pin.
    Analog {
        /// Analog pin.
        pin: u8,
        /// Value.
        value: u16,
    },
    /// STRING_DATA (sysex 0x71): a message from the board, often an error.
    Text(String),
    /// Any other complete sysex: its command byte and 7-bit data.
    Sysex {
        /// Sysex command byte.
        command: u8,
        /// Data bytes between the command and END_SYSEX.
        data: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    /// A channel or system message waiting for `need` more data bytes.
    Message {
        command: u8,
        need: u8,
    },
    Sysex,
    /// An over-long sysex: discard until END_SYSEX.
    SysexOverflow,
}

/// Streaming parser for bytes from a Firmata board.
#[derive(Debug, Clone)]
pub struct FirmataParser {
    state: State,
    data: [u8; 2],
    got: u8,
    sysex: Vec<u8>,
    discarded: u64,
}

impl Default for FirmataParser {
    fn default() -> Self {
        Self::new()
    }
}

/// Data bytes a command byte takes, or None for commands the parser ignores.
fn data_len(command: u8) -> Option<u8> {
    match command & 0xF0 {
        cmd::DIGITAL_MESSAGE | cmd::ANALOG_MESSAGE => Some(2),
        cmd::REPORT_ANALOG | cmd::REPORT_DIGITAL => Some(1),
        _ => match command {
            cmd::REPORT_VERSION | cmd::SET_PIN_MODE | cmd::SET_DIGITAL_PIN_VALUE => Some(2),
            _ => None,
        },
    }
}

fn decode_14bit_string(data: &[u8]) -> String {
    data.chunks_exact(2)
        .map(|p| {
            let c = p[0] as u32 | (p[1] as u32) << 7;
            char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER)
        })
        .collect()
}

impl FirmataParser {
    /// A parser waiting for a command byte.
    pub fn new() -> Self {
        Self {
            state: State::Idle,
            data: [0; 2],
            got: 0,
            sysex: Vec::new(),
            discarded: 0,
        }
    }

    /// Bytes or messages dropped so far: stray data bytes, messages cut short by a command byte,
    /// over-long sysex messages (each counted once).
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Feeds a chunk and returns the events it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<FirmataEvent> {
        chunk.iter().filter_map(|&b| self.push(b)).collect()
    }

    /// Pushes one byte; returns an event when it completes one.
    pub fn push(&mut self, b: u8) -> Option<FirmataEvent> {
        if b >= 0x80 {
            return self.command(b);
        }
        match self.state {
            State::Idle => {
                self.discarded += 1;
                None
            }
            State::Message { command, need } => {
                self.data[self.got as usize] = b;
                self.got += 1;
                if self.got < need {
                    return None;
                }
                self.state = State::Idle;
                self.message(command)
            }
            State::Sysex => {
                if self.sysex.len() == MAX_SYSEX {
                    self.discarded += 1;
                    self.sysex.clear();
                    self.state = State::SysexOverflow;
                } else {
                    self.sysex.push(b);
                }
                None
            }
            State::SysexOverflow => None,
        }
    }

    fn command(&mut self, b: u8) -> Option<FirmataEvent> {
        match (self.state, b) {
            (State::Sysex, cmd::END_SYSEX) => {
                self.state = State::Idle;
                return self.sysex_done();
            }
            (State::SysexOverflow, cmd::END_SYSEX) => {
                self.state = State::Idle;
                return None;
            }
            (State::Idle, _) => {}
            // A command byte before the previous message was complete: drop that message.
            _ => self.discarded += 1,
        }
        self.state = State::Idle;
        if b == cmd::START_SYSEX {
            self.sysex.clear();
            self.state = State::Sysex;
        } else if let Some(need) = data_len(b) {
            self.got = 0;
            self.state = State::Message { command: b, need };
        }
        None
    }

    fn message(&mut self, command: u8) -> Option<FirmataEvent> {
        let [lsb, msb] = self.data;
        match command & 0xF0 {
            cmd::DIGITAL_MESSAGE => Some(FirmataEvent::DigitalPort {
                port: command & 0x0F,
                value: lsb | (msb & 1) << 7,
            }),
            cmd::ANALOG_MESSAGE => Some(FirmataEvent::Analog {
                pin: command & 0x0F,
                value: lsb as u16 | (msb as u16) << 7,
            }),
            _ if command == cmd::REPORT_VERSION => Some(FirmataEvent::ProtocolVersion {
                major: lsb,
                minor: msb,
            }),
            // Host → board commands echoed back or sent by a peer: nothing to report.
            _ => None,
        }
    }

    fn sysex_done(&mut self) -> Option<FirmataEvent> {
        let (&command, data) = self.sysex.split_first()?;
        Some(match command {
            cmd::REPORT_FIRMWARE if data.len() >= 2 => FirmataEvent::Firmware {
                major: data[0],
                minor: data[1],
                name: decode_14bit_string(&data[2..]),
            },
            cmd::STRING_DATA => FirmataEvent::Text(decode_14bit_string(data)),
            _ => FirmataEvent::Sysex {
                command,
                data: data.to_vec(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// `F0 79 major minor name(LSB, MSB)… F7` as StandardFirmata sends it.
    fn firmware_report(major: u8, minor: u8, name: &str) -> Vec<u8> {
        let mut v = vec![0xF0, 0x79, major, minor];
        for c in name.bytes() {
            v.extend([c & 0x7F, c >> 7]);
        }
        v.push(0xF7);
        v
    }

    #[test]
    fn queries_match_the_spec() {
        // protocol.md "Control Messages Expansion" → "Request version report":
        // 0  request version report (0xF9)
        assert_eq!(report_version_query(), [0xF9]);
        // protocol.md "Query Firmware Name and Version":
        // 0 START_SYSEX (0xF0), 1 queryFirmware (0x79), 2 END_SYSEX (0xF7)
        assert_eq!(query_firmware(), [0xF0, 0x79, 0xF7]);
    }

    #[test]
    fn pin_commands_match_the_spec() {
        // protocol.md "Set pin mode": 0 set digital pin mode (0xF4), 1 pin number (0-127),
        // 2 mode; "Supported Modes": DIGITAL_OUTPUT (0x01), INPUT_PULLUP (0x0B).
        assert_eq!(set_pin_mode(13, PinMode::Output), Ok([0xF4, 0x0D, 0x01]));
        assert_eq!(
            set_pin_mode(2, PinMode::InputPullup),
            Ok([0xF4, 0x02, 0x0B])
        );
        assert_eq!(set_pin_mode(127, PinMode::Input), Ok([0xF4, 0x7F, 0x00]));
        assert_eq!(
            set_pin_mode(128, PinMode::Output),
            Err(FirmataError::PinOutOfRange(128))
        );
        // protocol.md "Set digital pin value (added in v2.5)": 0xF5, pin (0-127), value (0/1).
        assert_eq!(set_digital_pin_value(13, true), Ok([0xF5, 0x0D, 0x01]));
        assert_eq!(set_digital_pin_value(4, false), Ok([0xF5, 0x04, 0x00]));
        assert!(set_digital_pin_value(200, true).is_err());
    }

    #[test]
    fn digital_write_tracks_the_port() {
        // protocol.md "Data Message Expansion": 0 digital data 0x90-0x9F (low nibble = port),
        // 1 digital pins 0-6 bitmask, 2 digital pin 7 bitmask. "0x92 is the third port".
        let mut c = FirmataClient::new();
        // Pin 13 = port 1, bit 5.
        assert_eq!(c.digital_write(13, true), Ok([0x91, 0x20, 0x00]));
        // Pin 7 = port 0, bit 7: carried in the second data byte.
        assert_eq!(c.digital_write(7, true), Ok([0x90, 0x00, 0x01]));
        // Pin 2 joins pin 7 on port 0; the port message carries both.
        assert_eq!(c.digital_write(2, true), Ok([0x90, 0x04, 0x01]));
        assert_eq!(c.digital_write(7, false), Ok([0x90, 0x04, 0x00]));
        assert_eq!(c.port_value(0), 0x04);
        assert_eq!(c.port_value(1), 0x20);
        // Pin 17 = port 2 = 0x92.
        assert_eq!(c.digital_write(17, true), Ok([0x92, 0x02, 0x00]));
        assert_eq!(digital_message(15, 0xFF), Ok([0x9F, 0x7F, 0x01]));
        assert_eq!(
            digital_message(16, 0),
            Err(FirmataError::PortOutOfRange(16))
        );
        assert_eq!(
            c.digital_write(128, true),
            Err(FirmataError::PinOutOfRange(128))
        );
    }

    #[test]
    fn parses_version_and_firmware_reports() {
        let mut p = FirmataParser::new();
        // protocol.md "Version report format": 0xF9, major (0-127), minor (0-127).
        assert_eq!(
            p.feed(&[0xF9, 0x02, 0x05]),
            vec![FirmataEvent::ProtocolVersion { major: 2, minor: 5 }]
        );
        // protocol.md "Receive Firmware Name and Version (after query)": 0xF0, 0x79, major,
        // minor, first 7 bits of name, second 7 bits, …, 0xF7.
        let bytes = firmware_report(2, 5, "StandardFirmata");
        assert_eq!(&bytes[..6], &[0xF0, 0x79, 0x02, 0x05, b'S', 0x00]);
        assert_eq!(
            p.feed(&bytes),
            vec![FirmataEvent::Firmware {
                major: 2,
                minor: 5,
                name: "StandardFirmata".into()
            }]
        );
        assert_eq!(p.discarded(), 0);
    }

    #[test]
    fn boot_chatter_split_across_chunks() {
        // StandardFirmata sends REPORT_VERSION then REPORT_FIRMWARE at start; the host may also
        // see port reports and strings interleaved, split anywhere.
        let mut stream = vec![0xF9, 0x02, 0x05];
        stream.extend(firmware_report(2, 5, "StandardFirmata.ino"));
        stream.extend([0x91, 0x7F, 0x01]); // port 1 all high
        stream.extend([0xE3, 0x7F, 0x07]); // analog pin 3 = 1023
        stream.extend([0xF0, 0x71, b'h', 0, b'i', 0, 0xF7]);
        stream.extend([0xF0, 0x6A, 0x7F, 0x7F, 0x00, 0xF7]); // analog mapping response
        for split in 0..stream.len() {
            let mut p = FirmataParser::new();
            let mut ev = p.feed(&stream[..split]);
            ev.extend(p.feed(&stream[split..]));
            assert_eq!(
                ev,
                vec![
                    FirmataEvent::ProtocolVersion { major: 2, minor: 5 },
                    FirmataEvent::Firmware {
                        major: 2,
                        minor: 5,
                        name: "StandardFirmata.ino".into()
                    },
                    FirmataEvent::DigitalPort {
                        port: 1,
                        value: 0xFF
                    },
                    FirmataEvent::Analog {
                        pin: 3,
                        value: 1023
                    },
                    FirmataEvent::Text("hi".into()),
                    FirmataEvent::Sysex {
                        command: 0x6A,
                        data: vec![0x7F, 0x7F, 0x00]
                    },
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn resynchronises_after_junk() {
        let mut p = FirmataParser::new();
        // Stray data bytes, a version report cut short by a new command, an over-long sysex.
        let mut s = vec![0x01, 0x02, 0xF9, 0x02, 0xF9, 0x02, 0x06];
        s.push(0xF0);
        s.extend(std::iter::repeat_n(0x11, MAX_SYSEX + 10));
        s.push(0xF7);
        s.extend([0xF9, 0x02, 0x05]);
        let ev = p.feed(&s);
        assert_eq!(
            ev,
            vec![
                FirmataEvent::ProtocolVersion { major: 2, minor: 6 },
                FirmataEvent::ProtocolVersion { major: 2, minor: 5 }
            ]
        );
        assert_eq!(p.discarded(), 2 + 1 + 1);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut p = FirmataParser::new();
        for _ in 0..200 {
            let chunk: Vec<u8> = (0..rng.random_range(0..3000))
                .map(|_| rng.random())
                .collect();
            let _ = p.feed(&chunk);
        }
        // Still in sync afterwards, once a command byte starts a message.
        assert_eq!(
            p.feed(&[0xF9, 0x02, 0x05]),
            vec![FirmataEvent::ProtocolVersion { major: 2, minor: 5 }]
        );
    }
}
