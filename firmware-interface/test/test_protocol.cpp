// Host test of arduino/behavd_stim/protocol.cpp against test-vectors/*.json (via the header
// that `make_vectors.py --header` generates from the JSON files). Build and run:
//   make -C firmware-interface test
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

#include "protocol.h"
#include "vectors.h"

using namespace bstim;
typedef std::vector<uint8_t> Bytes;

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    checks++;                                              \
    if (!(cond)) {                                         \
      failures++;                                          \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);          \
      printf(__VA_ARGS__);                                 \
      printf("\n");                                        \
    }                                                      \
  } while (0)

static Bytes unhex(const char* h) {
  Bytes b;
  if (!h) return b;
  for (size_t i = 0; h[i] && h[i + 1]; i += 2) {
    char t[3] = {h[i], h[i + 1], 0};
    b.push_back((uint8_t)strtoul(t, 0, 16));
  }
  return b;
}

static std::string hex(const uint8_t* p, size_t n) {
  std::string s;
  char t[3];
  for (size_t i = 0; i < n; i++) {
    snprintf(t, sizeof t, "%02x", p[i]);
    s += t;
  }
  return s;
}

static void test_messages() {
  for (const MsgVec& v : kMsgVecs) {
    Msg m;
    v.fill(m);
    uint8_t p[kMaxPayload];
    size_t n = encode_payload(m, p);
    CHECK(hex(p, n) == v.payload_hex, "%s: payload %s != %s", v.name, hex(p, n).c_str(), v.payload_hex);
    CHECK(crc16(p, n) == v.crc16, "%s: crc %u != %u", v.name, crc16(p, n), v.crc16);
    uint8_t f[kMaxFrame];
    size_t fn = encode_frame(m, f);
    CHECK(hex(f, fn) == v.frame_hex, "%s: frame %s != %s", v.name, hex(f, fn).c_str(), v.frame_hex);
    // receive the vector's frame, decode, compare every field by re-encoding and field access
    FrameRx rx;
    Bytes fb = unhex(v.frame_hex);
    int frames = 0;
    for (size_t i = 0; i < fb.size(); i++) {
      FrameRx::Event e = rx.push(fb[i]);
      if (e == FrameRx::FRAME) {
        frames++;
        Msg d;
        CHECK(decode_payload(rx.payload(), rx.payload_len(), d) == DEC_OK, "%s: decode", v.name);
        uint8_t p2[kMaxPayload];
        size_t n2 = encode_payload(d, p2);
        CHECK(hex(p2, n2) == v.payload_hex, "%s: re-encode %s", v.name, hex(p2, n2).c_str());
        CHECK(d.seq == m.seq && d.device_us == m.device_us && d.rise_us == m.rise_us &&
                  d.fall_us == m.fall_us && d.count == m.count && d.token == m.token &&
                  d.width_us == m.width_us && d.period_us == m.period_us && d.detail == m.detail &&
                  !memcmp(d.board, m.board, 8),
              "%s: decoded fields differ", v.name);
      } else {
        CHECK(e == FrameRx::NONE, "%s: unexpected event %d", v.name, (int)e);
      }
    }
    CHECK(frames == 1, "%s: %d frames", v.name, frames);
    // too short by one byte -> bad length (only for messages with fields)
    if (n > 1) {
      Msg d;
      CHECK(decode_payload(p, n - 1, d) == DEC_BAD_LENGTH, "%s: short decode", v.name);
      // extra trailing bytes are accepted and ignored
      uint8_t longer[kMaxPayload + 1];
      memcpy(longer, p, n);
      longer[n] = 0xAB;
      CHECK(decode_payload(longer, n + 1, d) == DEC_OK, "%s: trailing byte", v.name);
    }
  }
  Msg d;
  uint8_t unk[] = {0x7E, 0x34, 0x12, 0x00};
  CHECK(decode_payload(unk, sizeof unk, d) == DEC_UNKNOWN_TYPE && d.seq == 0x1234, "unknown type seq");
  uint8_t shortpulse[] = {0x03, 0x09, 0x00, 0x00};
  CHECK(decode_payload(shortpulse, sizeof shortpulse, d) == DEC_BAD_LENGTH && d.seq == 9, "short seq");
}

static void test_framing() {
  const char* s = "123456789";
  CHECK(crc16((const uint8_t*)s, 9) == kCrcCheck && kCrcCheck == 0x29B1, "crc check value");
  for (const CobsVec& v : kCobsVecs) {
    Bytes d = unhex(v.data_hex), e = unhex(v.encoded_hex);
    std::vector<uint8_t> out(d.size() + d.size() / 254 + 2);
    size_t n = cobs_encode(d.data(), d.size(), out.data());
    CHECK(hex(out.data(), n) == v.encoded_hex, "cobs %s: %s", v.name, hex(out.data(), n).c_str());
    std::vector<uint8_t> back(e.size() + 1);
    int m = cobs_decode(e.data(), e.size(), back.data(), back.size());
    CHECK(m == (int)d.size() && !memcmp(back.data(), d.data(), d.size()), "cobs decode %s", v.name);
  }
  for (const FrameVec& v : kFrameVecs) {
    Bytes p = unhex(v.payload_hex);
    CHECK(crc16(p.data(), p.size()) == v.crc16, "frame %s crc", v.name);
    uint8_t f[kMaxFrame];
    size_t n = frame_payload(p.data(), p.size(), f);
    CHECK(hex(f, n) == v.frame_hex, "frame %s: %s", v.name, hex(f, n).c_str());
    FrameRx rx;
    Bytes fb = unhex(v.frame_hex);
    int got = 0;
    for (uint8_t b : fb)
      if (rx.push(b) == FrameRx::FRAME) {
        got++;
        CHECK(hex(rx.payload(), rx.payload_len()) == v.payload_hex, "frame %s rx payload", v.name);
      }
    CHECK(got == 1, "frame %s: got %d", v.name, got);
  }
}

static void test_bad_frames() {
  for (const BadVec& v : kBadVecs) {
    FrameRx rx;
    Bytes s = unhex(v.stream_hex);
    std::vector<std::string> got;
    unsigned errors = 0, overflow = 0;
    for (uint8_t b : s) {
      switch (rx.push(b)) {
        case FrameRx::FRAME: got.push_back(hex(rx.payload(), rx.payload_len())); break;
        case FrameRx::ERROR: errors++; break;
        case FrameRx::OVERFLOW: errors++; overflow += rx.overflow_bytes(); break;
        default: break;
      }
    }
    CHECK((int)got.size() == v.n_valid, "bad %s: %d valid frames, want %d", v.name, (int)got.size(), v.n_valid);
    for (int i = 0; i < v.n_valid && i < (int)got.size(); i++)
      CHECK(got[i] == v.valid[i], "bad %s: payload %d %s", v.name, i, got[i].c_str());
    CHECK(errors == v.rx_errors, "bad %s: %u errors, want %u", v.name, errors, v.rx_errors);
    CHECK(overflow == v.overflow_discarded, "bad %s: overflow %u, want %u", v.name, overflow, v.overflow_discarded);
  }
}

int main() {
  test_messages();
  test_framing();
  test_bad_frames();
  printf("protocol host test: %d checks, %d failures (%zu message, %zu cobs, %zu frame, %zu bad-stream vectors)\n",
         checks, failures, sizeof kMsgVecs / sizeof kMsgVecs[0], sizeof kCobsVecs / sizeof kCobsVecs[0],
         sizeof kFrameVecs / sizeof kFrameVecs[0], sizeof kBadVecs / sizeof kBadVecs[0]);
  return failures ? 1 : 0;
}
