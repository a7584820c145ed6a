// behavd stimulator protocol v1 codec. See protocol.h and PROTOCOL.md.
#include "protocol.h"

#include <string.h>

namespace bstim {

uint16_t crc16(const uint8_t* data, size_t len) {
  uint16_t crc = 0xFFFF;
  while (len--) {
    crc ^= (uint16_t)(*data++) << 8;
    for (uint8_t i = 0; i < 8; i++) crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
  }
  return crc;
}

size_t cobs_encode(const uint8_t* src, size_t len, uint8_t* dst) {
  size_t code_at = 0, o = 1;
  uint8_t code = 1;
  for (size_t i = 0; i < len; i++) {
    if (code == 0xFF) {  // full block and more data follows
      dst[code_at] = code;
      code_at = o++;
      code = 1;
    }
    if (src[i] == 0) {
      dst[code_at] = code;
      code_at = o++;
      code = 1;
    } else {
      dst[o++] = src[i];
      code++;
    }
  }
  dst[code_at] = code;
  return o;
}

int cobs_decode(const uint8_t* src, size_t len, uint8_t* dst, size_t cap) {
  size_t i = 0, o = 0;
  while (i < len) {
    uint8_t code = src[i];
    if (code == 0 || i + code > len) return -1;
    if (o + code - 1 > cap) return -1;
    memmove(dst + o, src + i + 1, code - 1);  // dst may be src: decoding in place
    o += code - 1;
    i += code;
    if (code < 0xFF && i < len) {
      if (o + 1 > cap) return -1;
      dst[o++] = 0;
    }
  }
  return (int)o;
}

// ---- message layouts -------------------------------------------------------------------------
enum Field : uint8_t {
  F_END = 0, F_PROTOCOL, F_TOKEN, F_SEQ, F_CHANNEL, F_WIDTH, F_COUNT16, F_PERIOD, F_LEVEL,
  F_MAX_ON, F_MAX_DUTY, F_DUTY_WIN, F_WATCHDOG, F_DEVICE_US, F_FW_MAJOR, F_FW_MINOR, F_FW_PATCH,
  F_CHANNELS, F_INPUTS, F_TICK_NS, F_BOARD, F_INDEX, F_RISE, F_FALL, F_FLAGS, F_REASON, F_INPUT,
  F_COUNT32, F_FAULTS, F_RX_ERRORS, F_CODE, F_DETAIL,
};

static uint8_t field_size(uint8_t f) {
  switch (f) {
    case F_TOKEN: case F_WIDTH: case F_PERIOD: case F_MAX_ON: case F_COUNT32: case F_DETAIL: return 4;
    case F_SEQ: case F_COUNT16: case F_MAX_DUTY: case F_DUTY_WIN: case F_WATCHDOG: case F_TICK_NS:
    case F_INDEX: case F_RX_ERRORS: return 2;
    case F_DEVICE_US: case F_RISE: case F_FALL: case F_BOARD: return 8;
    default: return 1;
  }
}

struct Layout { uint8_t type; uint8_t fields[9]; };
static const Layout kLayouts[] = {
  {T_HELLO, {F_PROTOCOL}},
  {T_PING, {F_TOKEN}},
  {T_PULSE, {F_SEQ, F_CHANNEL, F_WIDTH, F_COUNT16, F_PERIOD}},
  {T_SET_LEVEL, {F_SEQ, F_CHANNEL, F_LEVEL}},
  {T_STOP_ALL, {F_SEQ}},
  {T_SET_SAFETY, {F_SEQ, F_CHANNEL, F_MAX_ON, F_MAX_DUTY, F_DUTY_WIN, F_WATCHDOG}},
  {T_HEARTBEAT_HOST, {F_END}},
  {T_CLEAR_FAULTS, {F_SEQ}},
  {T_OK, {F_SEQ, F_DEVICE_US}},
  {T_CAPABILITIES, {F_PROTOCOL, F_FW_MAJOR, F_FW_MINOR, F_FW_PATCH, F_CHANNELS, F_INPUTS, F_TICK_NS, F_BOARD}},
  {T_PONG, {F_TOKEN, F_DEVICE_US}},
  {T_PULSE_DONE, {F_SEQ, F_CHANNEL, F_INDEX, F_RISE, F_FALL, F_FLAGS}},
  {T_NACK, {F_SEQ, F_REASON}},
  {T_INPUT_EVENT, {F_INPUT, F_LEVEL, F_DEVICE_US, F_COUNT32}},
  {T_HEARTBEAT, {F_DEVICE_US, F_FAULTS, F_RX_ERRORS}},
  {T_FAULT, {F_CODE, F_CHANNEL, F_DEVICE_US, F_DETAIL}},
};

static const Layout* layout_of(uint8_t type) {
  for (size_t i = 0; i < sizeof kLayouts / sizeof kLayouts[0]; i++)
    if (kLayouts[i].type == type) return &kLayouts[i];
  return 0;
}

static uint64_t get_field(const Msg& m, uint8_t f) {
  switch (f) {
    case F_PROTOCOL: return m.protocol;   case F_TOKEN: return m.token;
    case F_SEQ: return m.seq;             case F_CHANNEL: return m.channel;
    case F_WIDTH: return m.width_us;      case F_COUNT16: return m.count;
    case F_PERIOD: return m.period_us;    case F_LEVEL: return m.level;
    case F_MAX_ON: return m.max_on_us;    case F_MAX_DUTY: return m.max_duty_permille;
    case F_DUTY_WIN: return m.duty_window_ms; case F_WATCHDOG: return m.watchdog_ms;
    case F_DEVICE_US: return m.device_us; case F_FW_MAJOR: return m.fw_major;
    case F_FW_MINOR: return m.fw_minor;   case F_FW_PATCH: return m.fw_patch;
    case F_CHANNELS: return m.channels;   case F_INPUTS: return m.inputs;
    case F_TICK_NS: return m.tick_ns;     case F_INDEX: return m.index;
    case F_RISE: return m.rise_us;        case F_FALL: return m.fall_us;
    case F_FLAGS: return m.flags;         case F_REASON: return m.reason;
    case F_INPUT: return m.input;         case F_COUNT32: return m.count;
    case F_FAULTS: return m.faults;       case F_RX_ERRORS: return m.rx_errors;
    case F_CODE: return m.code;           case F_DETAIL: return m.detail;
    default: return 0;
  }
}

static void set_field(Msg& m, uint8_t f, uint64_t v) {
  switch (f) {
    case F_PROTOCOL: m.protocol = (uint8_t)v; break;   case F_TOKEN: m.token = (uint32_t)v; break;
    case F_SEQ: m.seq = (uint16_t)v; break;            case F_CHANNEL: m.channel = (uint8_t)v; break;
    case F_WIDTH: m.width_us = (uint32_t)v; break;     case F_COUNT16: m.count = (uint16_t)v; break;
    case F_PERIOD: m.period_us = (uint32_t)v; break;   case F_LEVEL: m.level = (uint8_t)v; break;
    case F_MAX_ON: m.max_on_us = (uint32_t)v; break;   case F_MAX_DUTY: m.max_duty_permille = (uint16_t)v; break;
    case F_DUTY_WIN: m.duty_window_ms = (uint16_t)v; break; case F_WATCHDOG: m.watchdog_ms = (uint16_t)v; break;
    case F_DEVICE_US: m.device_us = v; break;          case F_FW_MAJOR: m.fw_major = (uint8_t)v; break;
    case F_FW_MINOR: m.fw_minor = (uint8_t)v; break;   case F_FW_PATCH: m.fw_patch = (uint8_t)v; break;
    case F_CHANNELS: m.channels = (uint8_t)v; break;   case F_INPUTS: m.inputs = (uint8_t)v; break;
    case F_TICK_NS: m.tick_ns = (uint16_t)v; break;    case F_INDEX: m.index = (uint16_t)v; break;
    case F_RISE: m.rise_us = v; break;                 case F_FALL: m.fall_us = v; break;
    case F_FLAGS: m.flags = (uint8_t)v; break;         case F_REASON: m.reason = (uint8_t)v; break;
    case F_INPUT: m.input = (uint8_t)v; break;         case F_COUNT32: m.count = (uint32_t)v; break;
    case F_FAULTS: m.faults = (uint8_t)v; break;       case F_RX_ERRORS: m.rx_errors = (uint16_t)v; break;
    case F_CODE: m.code = (uint8_t)v; break;           case F_DETAIL: m.detail = (uint32_t)v; break;
    default: break;
  }
}

size_t encode_payload(const Msg& m, uint8_t* out) {
  const Layout* l = layout_of(m.type);
  if (!l) return 0;
  size_t o = 0;
  out[o++] = m.type;
  for (uint8_t i = 0; i < sizeof l->fields && l->fields[i] != F_END; i++) {
    uint8_t f = l->fields[i], n = field_size(f);
    if (f == F_BOARD) {
      memcpy(out + o, m.board, 8);
    } else {
      uint64_t v = get_field(m, f);
      for (uint8_t k = 0; k < n; k++) out[o + k] = (uint8_t)(v >> (8 * k));
    }
    o += n;
  }
  return o;
}

DecodeResult decode_payload(const uint8_t* p, size_t len, Msg& m) {
  memset(&m, 0, sizeof m);
  if (len < 1) return DEC_BAD_LENGTH;
  m.type = p[0];
  const Layout* l = layout_of(p[0]);
  if (!l) {
    if (len >= 3) m.seq = (uint16_t)(p[1] | (p[2] << 8));
    return DEC_UNKNOWN_TYPE;
  }
  size_t o = 1;
  for (uint8_t i = 0; i < sizeof l->fields && l->fields[i] != F_END; i++) {
    uint8_t f = l->fields[i], n = field_size(f);
    if (o + n > len) {
      m.seq = (len >= 3) ? (uint16_t)(p[1] | (p[2] << 8)) : 0;
      return DEC_BAD_LENGTH;
    }
    if (f == F_BOARD) {
      memcpy(m.board, p + o, 8);
    } else {
      uint64_t v = 0;
      for (uint8_t k = n; k-- > 0;) v = (v << 8) | p[o + k];
      set_field(m, f, v);
    }
    o += n;
  }
  return DEC_OK;
}

size_t frame_payload(const uint8_t* payload, size_t len, uint8_t* out) {
  uint8_t raw[kMaxRaw];
  if (len > kMaxPayload) return 0;
  memcpy(raw, payload, len);
  uint16_t c = crc16(payload, len);
  raw[len] = (uint8_t)c;
  raw[len + 1] = (uint8_t)(c >> 8);
  size_t n = cobs_encode(raw, len + 2, out);
  out[n++] = 0;
  return n;
}

size_t encode_frame(const Msg& m, uint8_t* out) {
  uint8_t p[kMaxPayload];
  size_t len = encode_payload(m, p);
  if (!len) return 0;
  return frame_payload(p, len, out);
}

FrameRx::Event FrameRx::push(uint8_t b) {
  if (b != 0) {
    if (discarding_) {
      discarded_++;
      return NONE;
    }
    if (n_ >= kMaxEncoded) {  // more than kMaxEncoded bytes without a delimiter
      discarding_ = true;
      discarded_ = (uint32_t)n_ + 1;
      n_ = 0;
      return NONE;
    }
    buf_[n_++] = b;
    return NONE;
  }
  // delimiter
  if (discarding_) {
    discarding_ = false;
    last_discarded_ = discarded_;
    discarded_ = 0;
    return OVERFLOW;
  }
  uint8_t n = n_;
  n_ = 0;
  if (n == 0) return NONE;  // empty frame / flush
  int d = cobs_decode(buf_, n, buf_, sizeof buf_);  // in place
  if (d < 3 || d > kMaxRaw) return ERROR;
  uint16_t c = crc16(buf_, (size_t)d - 2);
  if ((uint8_t)c != buf_[d - 2] || (uint8_t)(c >> 8) != buf_[d - 1]) return ERROR;
  plen_ = (uint8_t)(d - 2);
  return FRAME;
}

}  // namespace bstim
