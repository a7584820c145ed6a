// behavd stimulator protocol v1 codec (PROTOCOL.md): COBS, CRC-16/CCITT-FALSE, message
// encode/decode and a byte-at-a-time frame receiver. No Arduino or AVR dependencies: it builds
// with host g++ for the unit test and with avr-g++ / arm-none-eabi-g++ for boards.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace bstim {

const uint8_t kProtocol = 1;
const uint8_t kMaxPayload = 60;      // type + fields
const uint8_t kMaxRaw = kMaxPayload + 2;  // + crc16
const uint8_t kMaxEncoded = 64;      // receive buffer; longer runs are an overflow
const uint8_t kMaxFrame = kMaxRaw + 1 + 1;  // COBS(62 bytes) = 63 bytes, + delimiter

enum Type : uint8_t {
  T_HELLO = 0x01, T_PING = 0x02, T_PULSE = 0x03, T_SET_LEVEL = 0x04, T_STOP_ALL = 0x05,
  T_SET_SAFETY = 0x06, T_HEARTBEAT_HOST = 0x07, T_CLEAR_FAULTS = 0x08,
  T_OK = 0x80, T_CAPABILITIES = 0x81, T_PONG = 0x82, T_PULSE_DONE = 0x83, T_NACK = 0x84,
  T_INPUT_EVENT = 0x85, T_HEARTBEAT = 0x86, T_FAULT = 0x87,
};

enum NackReason : uint8_t {
  NACK_UNKNOWN_TYPE = 1, NACK_BAD_LENGTH = 2, NACK_BAD_CHANNEL = 3, NACK_BAD_ARGUMENT = 4,
  NACK_FAULT_LATCHED = 5, NACK_DUTY = 6, NACK_BUSY = 7,
};

enum FaultCode : uint8_t { FAULT_WATCHDOG = 1, FAULT_MAX_ON = 2, FAULT_DUTY = 3, FAULT_RX_OVERFLOW = 4 };
enum FaultBit : uint8_t { FB_WATCHDOG = 1, FB_MAX_ON = 2, FB_DUTY = 4, FB_RX_OVERFLOW = 8 };
enum PulseFlag : uint8_t { PF_MAX_ON = 1, PF_CUT = 2 };

// Every field of every message, named as in PROTOCOL.md. Only the fields of `type` matter.
struct Msg {
  uint8_t type;
  uint8_t protocol, channel, level, fw_major, fw_minor, fw_patch, channels, inputs;
  uint8_t flags, reason, input, faults, code;
  uint16_t seq, max_duty_permille, duty_window_ms, watchdog_ms, tick_ns, index, rx_errors;
  uint32_t token, width_us, period_us, max_on_us, detail;
  uint32_t count;  // u16 on the wire in PULSE, u32 in INPUT_EVENT
  uint64_t device_us, rise_us, fall_us;
  uint8_t board[8];
};

uint16_t crc16(const uint8_t* data, size_t len);

// COBS without delimiter. encode: dst must hold len + len / 254 + 1 bytes; returns the length.
size_t cobs_encode(const uint8_t* src, size_t len, uint8_t* dst);
// decode: returns the decoded length, or -1 on a malformed input or when it exceeds cap.
// dst may be src (decoding in place).
int cobs_decode(const uint8_t* src, size_t len, uint8_t* dst, size_t cap);

// Payload (type + fields, no CRC). Returns the length, or 0 for an unknown type.
size_t encode_payload(const Msg& m, uint8_t* out /* kMaxPayload */);

enum DecodeResult { DEC_OK = 0, DEC_UNKNOWN_TYPE = 1, DEC_BAD_LENGTH = 2 };
// Decodes a payload (CRC already checked and stripped). Extra trailing bytes are ignored.
// On DEC_UNKNOWN_TYPE / DEC_BAD_LENGTH, m.seq holds the u16 after the type if present, else 0.
DecodeResult decode_payload(const uint8_t* p, size_t len, Msg& m);

// Whole frame: COBS(payload ++ crc16_le) ++ 0x00. out must hold kMaxFrame. Returns the length
// including the delimiter, or 0 for an unknown type.
size_t encode_frame(const Msg& m, uint8_t* out);
size_t frame_payload(const uint8_t* payload, size_t len, uint8_t* out);

// Receiver state machine: feed bytes, get a payload when a good frame ends.
class FrameRx {
 public:
  enum Event { NONE = 0, FRAME, ERROR, OVERFLOW };
  FrameRx() { reset(); }
  void reset() { n_ = 0; discarding_ = false; discarded_ = 0; }
  // FRAME: payload()/payload_len() valid until the next push. ERROR: a bad frame ended.
  // OVERFLOW: an overflowed run ended at this 0x00; overflow_bytes() = bytes discarded.
  Event push(uint8_t b);
  const uint8_t* payload() const { return buf_; }
  uint8_t payload_len() const { return plen_; }
  uint32_t overflow_bytes() const { return last_discarded_; }

 private:
  uint8_t buf_[kMaxEncoded];  // encoded bytes, decoded in place when the frame ends
  uint8_t n_, plen_;
  bool discarding_;
  uint32_t discarded_, last_discarded_;
};

}  // namespace bstim
