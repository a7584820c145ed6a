//! The JSON `sendCommand` schema (docs/miniscope.md) and its rendering into
//! an I2C packet for a control value.
//!
//! A command is `addressW`, `regLength` + `reg0..`, `dataLength` + `data0..`; each scalar is
//! a `"0x.."`/`"0b.."`/decimal string, a JSON number, or a value placeholder (`valueH24`,
//! `valueH16`, `valueH`, `valueL`/`value`, `value2H`, `value2L`). The packet is
//! `[addressW, reg.., data..]`, so multi-byte values go out MSB first.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::packet::{CoalesceKey, I2cPacket, KeyedPacket, MAX_PACKET_LEN};

/// Why a `sendCommand` object is not a command the DAQ can carry.
#[derive(Debug, thiserror::Error)]
pub enum SendCommandError {
    /// A scalar that is neither a byte/count nor a known placeholder.
    #[error("sendCommand field {field}: cannot read {text:?} as {expected}")]
    BadScalar {
        /// The JSON key (`addressW`, `reg0`, `data3`, ...).
        field: String,
        /// The text found.
        text: String,
        /// What was expected there.
        expected: &'static str,
    },
    /// `regLength`/`dataLength` promise a key that is missing.
    #[error("sendCommand is missing {field} (regLength/dataLength promise it)")]
    MissingField {
        /// The missing key.
        field: String,
    },
    /// A command that cannot become a DAQ packet (too long, odd address, address only).
    #[error("sendCommand to 0x{address:02X}: {reason}")]
    BadCommand {
        /// Its `addressW`.
        address: u8,
        /// What is wrong.
        reason: String,
    },
}

/// A JSON scalar as the catalog writes it: a number or a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Number(u64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Number(n) => n.to_string(),
            Scalar::Text(t) => t.clone(),
        }
    }

    /// The integer it spells (`0x..`, `0b..`, decimal, or a JSON number).
    fn integer(&self) -> Option<u64> {
        match self {
            Scalar::Number(n) => Some(*n),
            Scalar::Text(t) => {
                let t = t.trim();
                if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                    u64::from_str_radix(hex, 16).ok()
                } else if let Some(bin) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
                    u64::from_str_radix(bin, 2).ok()
                } else {
                    t.parse().ok()
                }
            }
        }
    }

    fn byte(&self, field: &str) -> Result<u8, SendCommandError> {
        self.integer()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| SendCommandError::BadScalar {
                field: field.to_owned(),
                text: self.text(),
                expected: "a byte (0..=255)",
            })
    }

    fn count(&self, field: &str) -> Result<usize, SendCommandError> {
        self.integer()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n < MAX_PACKET_LEN)
            .ok_or_else(|| SendCommandError::BadScalar {
                field: field.to_owned(),
                text: self.text(),
                expected: "a count below 6",
            })
    }
}

/// Which part of a control's "i2c value" a placeholder byte takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValuePart {
    /// `valueH24`: bits 31..24 of the value.
    H24,
    /// `valueH16`: bits 23..16.
    H16,
    /// `valueH`: bits 15..8.
    H,
    /// `valueL` or `value`: bits 7..0.
    L,
    /// `value2H`: bits 15..8 of the second value.
    Value2H,
    /// `value2L`: bits 7..0 of the second value.
    Value2L,
}

impl ValuePart {
    fn from_placeholder(text: &str) -> Option<ValuePart> {
        Some(match text {
            "valueH24" => ValuePart::H24,
            "valueH16" => ValuePart::H16,
            "valueH" => ValuePart::H,
            "valueL" | "value" => ValuePart::L,
            "value2H" => ValuePart::Value2H,
            "value2L" => ValuePart::Value2L,
            _ => return None,
        })
    }

    /// The byte this part takes from `value` / `value2`.
    pub fn extract(self, value: u32, value2: u32) -> u8 {
        let (v, shift) = match self {
            ValuePart::H24 => (value, 24),
            ValuePart::H16 => (value, 16),
            ValuePart::H => (value, 8),
            ValuePart::L => (value, 0),
            ValuePart::Value2H => (value2, 8),
            ValuePart::Value2L => (value2, 0),
        };
        (v >> shift) as u8
    }

    /// Whether it reads the second value.
    pub fn is_value2(self) -> bool {
        matches!(self, ValuePart::Value2H | ValuePart::Value2L)
    }
}

/// One byte of a command template after the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateByte {
    /// A fixed byte.
    Const(u8),
    /// A byte of the control value.
    Value(ValuePart),
}

/// Bus a command goes to. Only I2C is ever sent; SPI is parsed and ignored, as in the
/// official app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// An I2C write tunnelled through the DAQ.
    I2c,
    /// Present in the schema, never sent.
    Spi,
}

/// The raw JSON shape of a `sendCommand` object.
#[derive(Debug, Deserialize)]
struct RawSendCommand {
    protocol: String,
    #[serde(rename = "addressW")]
    address_w: Scalar,
    #[serde(rename = "regLength")]
    reg_length: Scalar,
    #[serde(rename = "dataLength")]
    data_length: Scalar,
    #[serde(flatten)]
    rest: BTreeMap<String, Scalar>,
}

/// A parsed `sendCommand`: `[addressW, reg0.., data0..]` with value placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawSendCommand")]
pub struct SendCommand {
    /// Bus (only [`Protocol::I2c`] is sent).
    pub protocol: Protocol,
    /// 8-bit write address.
    pub address: u8,
    /// Number of register bytes at the start of `bytes`.
    pub reg_len: usize,
    /// Register bytes then data bytes (everything after the address).
    pub bytes: Vec<TemplateByte>,
}

impl TryFrom<RawSendCommand> for SendCommand {
    type Error = SendCommandError;

    fn try_from(raw: RawSendCommand) -> Result<Self, SendCommandError> {
        let protocol = match raw.protocol.as_str() {
            "I2C" => Protocol::I2c,
            "SPI" => Protocol::Spi,
            other => {
                return Err(SendCommandError::BadScalar {
                    field: "protocol".into(),
                    text: other.into(),
                    expected: "\"I2C\" or \"SPI\"",
                });
            }
        };
        let address = raw.address_w.byte("addressW")?;
        let reg_len = raw.reg_length.count("regLength")?;
        let data_len = raw.data_length.count("dataLength")?;
        let mut bytes = Vec::with_capacity(reg_len + data_len);
        let keys = (0..reg_len)
            .map(|i| format!("reg{i}"))
            .chain((0..data_len).map(|i| format!("data{i}")));
        for key in keys {
            let scalar = raw
                .rest
                .get(&key)
                .ok_or_else(|| SendCommandError::MissingField { field: key.clone() })?;
            let part = match scalar {
                Scalar::Text(t) => ValuePart::from_placeholder(t.trim()),
                Scalar::Number(_) => None,
            };
            bytes.push(match part {
                Some(p) => TemplateByte::Value(p),
                None => TemplateByte::Const(scalar.byte(&key)?),
            });
        }
        let len = 1 + bytes.len();
        let bad = |reason: String| SendCommandError::BadCommand { address, reason };
        if len > MAX_PACKET_LEN {
            return Err(bad(format!(
                "{len} bytes, the DAQ carries at most {MAX_PACKET_LEN}"
            )));
        }
        if len < 2 {
            return Err(bad(
                "address only: a 1-byte packet underflows the firmware's data count".into(),
            ));
        }
        if address & 1 != 0 {
            return Err(bad("odd address (read bit set)".into()));
        }
        Ok(Self {
            protocol,
            address,
            reg_len,
            bytes,
        })
    }
}

impl SendCommand {
    /// Whether any byte takes the second value (`value2H`/`value2L`).
    pub fn uses_value2(&self) -> bool {
        self.bytes
            .iter()
            .any(|b| matches!(b, TemplateByte::Value(p) if p.is_value2()))
    }

    /// The packet for control value `value` (and `value2`), keyed for coalescing on its
    /// constant bytes.
    pub fn render(&self, value: u32, value2: u32) -> Result<KeyedPacket, SendCommandError> {
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut value_mask = 0u8;
        buf[0] = self.address;
        for (i, b) in self.bytes.iter().enumerate() {
            buf[i + 1] = match *b {
                TemplateByte::Const(c) => c,
                TemplateByte::Value(p) => {
                    value_mask |= 1 << (i + 1);
                    p.extract(value, value2)
                }
            };
        }
        let packet = I2cPacket::new(&buf[..1 + self.bytes.len()]).map_err(|e| {
            SendCommandError::BadCommand {
                address: self.address,
                reason: e.to_string(),
            }
        })?;
        Ok(KeyedPacket {
            key: CoalesceKey::new(&packet, value_mask),
            packet,
        })
    }
}
