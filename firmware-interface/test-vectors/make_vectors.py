#!/usr/bin/env python3
"""Reference encoder for the behavd stimulator protocol v1 (PROTOCOL.md).

Independent of the firmware's C++ codec: stdlib only. Writes the test vectors

    messages.json    every message type of PROTOCOL.md section 3, with edge values
    framing.json     CRC check value, raw COBS cases (incl. 254/255-byte runs) and
                     payloads containing zeros
    bad_frames.json  byte streams a receiver must reject (bad CRC, too short, bad COBS,
                     too long, overflow without delimiter) and what it must still accept

Usage:
    python3 make_vectors.py            # (re)write the JSON files next to this script
    python3 make_vectors.py --check    # exit 1 if the JSON files differ from what it generates
    python3 make_vectors.py --header OUT.h
                                       # read the *.json files (not this encoder) and emit a
                                       # C++ header for the host test of protocol.cpp
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_PAYLOAD = 60
MAX_ENCODED = 64  # receiver buffer: more than this without a 0x00 is an overflow

# type -> (name, direction, [(field, struct code)])
MESSAGES = {
    0x01: ("HELLO", "host_to_device", [("protocol", "B")]),
    0x02: ("PING", "host_to_device", [("token", "I")]),
    0x03: ("PULSE", "host_to_device", [("seq", "H"), ("channel", "B"), ("width_us", "I"),
                                        ("count", "H"), ("period_us", "I")]),
    0x04: ("SET_LEVEL", "host_to_device", [("seq", "H"), ("channel", "B"), ("level", "B")]),
    0x05: ("STOP_ALL", "host_to_device", [("seq", "H")]),
    0x06: ("SET_SAFETY", "host_to_device", [("seq", "H"), ("channel", "B"), ("max_on_us", "I"),
                                             ("max_duty_permille", "H"), ("duty_window_ms", "H"),
                                             ("watchdog_ms", "H")]),
    0x07: ("HEARTBEAT", "host_to_device", []),
    0x08: ("CLEAR_FAULTS", "host_to_device", [("seq", "H")]),
    0x80: ("OK", "device_to_host", [("seq", "H"), ("device_us", "Q")]),
    0x81: ("CAPABILITIES", "device_to_host", [("protocol", "B"), ("fw_major", "B"),
                                               ("fw_minor", "B"), ("fw_patch", "B"),
                                               ("channels", "B"), ("inputs", "B"),
                                               ("tick_ns", "H"), ("board", "8s")]),
    0x82: ("PONG", "device_to_host", [("token", "I"), ("device_us", "Q")]),
    0x83: ("PULSE_DONE", "device_to_host", [("seq", "H"), ("channel", "B"), ("index", "H"),
                                             ("rise_us", "Q"), ("fall_us", "Q"), ("flags", "B")]),
    0x84: ("NACK", "device_to_host", [("seq", "H"), ("reason", "B")]),
    0x85: ("INPUT_EVENT", "device_to_host", [("input", "B"), ("level", "B"), ("device_us", "Q"),
                                              ("count", "I")]),
    0x86: ("HEARTBEAT", "device_to_host", [("device_us", "Q"), ("faults", "B"),
                                            ("rx_errors", "H")]),
    0x87: ("FAULT", "device_to_host", [("code", "B"), ("channel", "B"), ("device_us", "Q"),
                                        ("detail", "I")]),
}

U64 = 0xFFFFFFFFFFFFFFFF
U32 = 0xFFFFFFFF


def crc16_ccitt_false(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def cobs_encode(data: bytes) -> bytes:
    """COBS without the trailing delimiter. A final block of 254 data bytes is not
    followed by an extra 0x01 code byte (the Cheshire & Baker / Wikipedia convention)."""
    out = bytearray([0])
    code_at, code = 0, 1
    for b in data:
        if code == 0xFF:  # block full and more data follows
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
        if b == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
        else:
            out.append(b)
            code += 1
    out[code_at] = code
    return bytes(out)


def cobs_decode(enc: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(enc):
        code = enc[i]
        if code == 0 or i + code > len(enc):
            raise ValueError("bad COBS")
        out += enc[i + 1:i + code]
        i += code
        if code < 0xFF and i < len(enc):
            out.append(0)
    return bytes(out)


def encode_payload(mtype: int, fields: dict) -> bytes:
    _, _, layout = MESSAGES[mtype]
    out = bytearray([mtype])
    for fname, code in layout:
        v = fields[fname]
        if code == "8s":
            raw = v.encode("ascii")
            assert len(raw) <= 8
            out += raw.ljust(8, b"\0")
        else:
            out += struct.pack("<" + code, v)
    assert len(out) <= MAX_PAYLOAD
    return bytes(out)


def frame(payload: bytes) -> bytes:
    crc = crc16_ccitt_false(payload)
    return cobs_encode(payload + struct.pack("<H", crc)) + b"\0"


def vector(name: str, mtype: int, **fields) -> dict:
    mname, direction, layout = MESSAGES[mtype]
    assert set(fields) == {f for f, _ in layout}, (name, set(fields))
    payload = encode_payload(mtype, fields)
    fr = frame(payload)
    assert cobs_decode(fr[:-1])[:-2] == payload
    return {
        "name": name,
        "message": mname,
        "direction": direction,
        "type": "0x%02X" % mtype,
        "fields": {f: fields[f] for f, _ in layout},
        "payload_hex": payload.hex(),
        "crc16": crc16_ccitt_false(payload),
        "frame_hex": fr.hex(),
    }


def messages():
    v = []
    # host -> device
    v.append(vector("hello", 0x01, protocol=1))
    v.append(vector("ping", 0x02, token=7))
    v.append(vector("ping_token_max", 0x02, token=U32))
    v.append(vector("ping_token_zero", 0x02, token=0))
    v.append(vector("pulse_train_10ms_5x_50ms", 0x03, seq=2, channel=0, width_us=10000,
                    count=5, period_us=50000))
    v.append(vector("pulse_single_1us_ch1", 0x03, seq=3, channel=1, width_us=1, count=1,
                    period_us=0))
    v.append(vector("pulse_seq_max_20hz_5s", 0x03, seq=65535, channel=1, width_us=5000,
                    count=100, period_us=50000))
    v.append(vector("pulse_edge_max_values", 0x03, seq=65535, channel=255, width_us=U32 - 1,
                    count=65535, period_us=U32))
    v.append(vector("set_level_on", 0x04, seq=4, channel=0, level=1))
    v.append(vector("set_level_off_seq0", 0x04, seq=0, channel=1, level=0))
    v.append(vector("stop_all", 0x05, seq=5))
    v.append(vector("stop_all_seq_max", 0x05, seq=65535))
    v.append(vector("set_safety_typical", 0x06, seq=1, channel=0, max_on_us=5000000,
                    max_duty_permille=500, duty_window_ms=1000, watchdog_ms=1000))
    v.append(vector("set_safety_no_limits", 0x06, seq=6, channel=1, max_on_us=0,
                    max_duty_permille=1000, duty_window_ms=0, watchdog_ms=0))
    v.append(vector("set_safety_edge_max", 0x06, seq=65535, channel=1, max_on_us=U32,
                    max_duty_permille=1, duty_window_ms=65535, watchdog_ms=65535))
    v.append(vector("heartbeat_host", 0x07))
    v.append(vector("clear_faults", 0x08, seq=8))
    # device -> host
    v.append(vector("ok", 0x80, seq=1, device_us=1234567))
    v.append(vector("ok_edge_max", 0x80, seq=65535, device_us=U64))
    v.append(vector("ok_zero", 0x80, seq=0, device_us=0))
    v.append(vector("capabilities_uno", 0x81, protocol=1, fw_major=1, fw_minor=0, fw_patch=0,
                    channels=2, inputs=1, tick_ns=500, board="uno"))
    v.append(vector("capabilities_full_board_name", 0x81, protocol=1, fw_major=2, fw_minor=10,
                    fw_patch=255, channels=8, inputs=4, tick_ns=1000, board="teensy41"))
    v.append(vector("pong", 0x82, token=7, device_us=2500123))
    v.append(vector("pong_edge_max", 0x82, token=U32, device_us=U64))
    v.append(vector("pulse_done", 0x83, seq=2, channel=0, index=0, rise_us=3000000,
                    fall_us=3010000, flags=0))
    v.append(vector("pulse_done_cut_max_on", 0x83, seq=9, channel=1, index=4,
                    rise_us=86400000000, fall_us=86400500000, flags=1))
    v.append(vector("pulse_done_cut_stop", 0x83, seq=10, channel=0, index=65534,
                    rise_us=123456789012, fall_us=123456789512, flags=2))
    v.append(vector("pulse_done_edge_max", 0x83, seq=65535, channel=1, index=65535,
                    rise_us=U64 - 1, fall_us=U64, flags=3))
    for reason in range(1, 8):
        v.append(vector("nack_reason_%d" % reason, 0x84, seq=100 + reason, reason=reason))
    v.append(vector("nack_seq_max", 0x84, seq=65535, reason=5))
    v.append(vector("input_event_rise", 0x85, input=0, level=1, device_us=33333, count=1))
    v.append(vector("input_event_fall", 0x85, input=0, level=0, device_us=50000, count=2))
    v.append(vector("input_event_edge_max", 0x85, input=0, level=1, device_us=U64, count=U32))
    v.append(vector("heartbeat_device", 0x86, device_us=250000, faults=0, rx_errors=0))
    v.append(vector("heartbeat_device_faults", 0x86, device_us=9876543210, faults=0x0F,
                    rx_errors=65535))
    v.append(vector("fault_watchdog", 0x87, code=1, channel=0, device_us=5000000, detail=1000))
    v.append(vector("fault_max_on", 0x87, code=2, channel=1, device_us=6000000,
                    detail=5000000))
    v.append(vector("fault_duty", 0x87, code=3, channel=0, device_us=7000000, detail=3))
    v.append(vector("fault_overflow", 0x87, code=4, channel=0, device_us=U64, detail=70))
    seen = {int(x["type"], 16) for x in v}
    assert seen == set(MESSAGES), set(MESSAGES) - seen
    return v


def framing():
    cobs = []

    def c(name, data):
        enc = cobs_encode(data)
        assert cobs_decode(enc) == data
        assert 0 not in enc
        cobs.append({"name": name, "data_hex": data.hex(), "encoded_hex": enc.hex()})

    c("empty", b"")
    c("one_zero", b"\x00")
    c("two_zeros", b"\x00\x00")
    c("zero_in_middle", b"\x11\x22\x00\x33")
    c("no_zeros", b"\x11\x22\x33\x44")
    c("trailing_zero", b"\x11\x00")
    c("all_zero_62", bytes(62))
    c("nonzero_62", bytes(range(1, 63)))
    # The runs below exceed the protocol's 62-byte frame; they pin down the COBS
    # convention for full 254-byte blocks and are checked by the COBS routines only.
    c("run_253_nonzero", bytes((i % 255) + 1 for i in range(253)))
    c("run_254_nonzero", bytes((i % 255) + 1 for i in range(254)))
    c("run_255_nonzero", bytes((i % 255) + 1 for i in range(255)))
    c("zero_then_254_nonzero", b"\x00" + bytes((i % 255) + 1 for i in range(254)))
    c("run_254_then_zero", bytes((i % 255) + 1 for i in range(254)) + b"\x00")

    frames = []

    def f(name, payload, note=""):
        fr = frame(payload)
        e = {"name": name, "payload_hex": payload.hex(), "crc16": crc16_ccitt_false(payload),
             "frame_hex": fr.hex()}
        if note:
            e["note"] = note
        frames.append(e)

    # Payloads here need not be valid messages: the framing layer does not look at them.
    f("min_payload_type_only", b"\x07")
    f("payload_zeros", b"\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
    f("payload_all_zero_60", bytes(60), "maximum payload, every byte 0")
    f("payload_nonzero_60", bytes(range(1, 61)), "maximum payload, no zero")
    f("payload_0xff_60", b"\xff" * 60)
    crc_zero = None
    for i in range(65536):  # a payload whose CRC has a zero byte
        p = b"\x02" + struct.pack("<I", i)
        if crc16_ccitt_false(p) & 0xFF == 0:
            crc_zero = p
            break
    f("crc_low_byte_zero", crc_zero, "the CRC's low byte is 0x00 and is COBS-stuffed")
    for i in range(65536):
        p = b"\x02" + struct.pack("<I", i)
        if crc16_ccitt_false(p) >> 8 == 0:
            f("crc_high_byte_zero", p, "the frame ends with a stuffed 0x00 CRC byte")
            break
    return {
        "crc16": {"algorithm": "CRC-16/CCITT-FALSE", "poly": 0x1021, "init": 0xFFFF,
                  "check_input_ascii": "123456789",
                  "check": crc16_ccitt_false(b"123456789")},
        "cobs": cobs,
        "frames": frames,
    }


def bad_frames():
    good = encode_payload(0x02, {"token": 7})  # PING{7}
    good_fr = frame(good)
    out = []

    def b(name, stream: bytes, valid, errors, overflow_bytes=0, note=""):
        e = {"name": name, "stream_hex": stream.hex(),
             "valid_payloads_hex": [p.hex() for p in valid], "rx_errors": errors,
             "overflow_discarded": overflow_bytes}
        if note:
            e["note"] = note
        out.append(e)

    raw = good + struct.pack("<H", crc16_ccitt_false(good))
    bad_crc = bytearray(raw)
    bad_crc[-1] ^= 0x01
    b("bad_crc", cobs_encode(bytes(bad_crc)) + b"\0", [], 1)
    flipped = bytearray(raw)
    flipped[2] ^= 0x40
    b("bad_crc_payload_bit_flip", cobs_encode(bytes(flipped)) + b"\0", [], 1)
    b("too_short_1_byte", cobs_encode(b"\x07") + b"\0", [], 1, note="decoded length 1 < 3")
    b("too_short_2_bytes", cobs_encode(b"\x07\x00") + b"\0", [], 1,
      note="decoded length 2 < 3 (a type byte and one CRC byte)")
    b("type_only_crc_of_nothing",
      cobs_encode(struct.pack("<H", crc16_ccitt_false(b""))) + b"\0", [], 1,
      note="two bytes that are the CRC of an empty payload: still too short")
    b("cobs_code_overruns", bytes([0x05, 0x11, 0x22]) + b"\0", [], 1,
      note="code byte 5 announces 4 data bytes but only 2 follow")
    b("too_long_payload_61",
      cobs_encode(bytes(range(1, 62)) + struct.pack("<H", crc16_ccitt_false(bytes(range(1, 62)))))
      + b"\0", [], 1, note="61-byte payload with a valid CRC: over the 60-byte maximum")
    b("empty_frames_are_not_errors", b"\0\0\0" + good_fr + b"\0", [good], 0,
      note="a lone 0x00 flushes; empty frames are ignored and not counted")
    b("garbage_then_valid", b"\x41\x42\x43\x0d\x0a\0" + good_fr, [good], 1)
    b("truncated_then_valid", good_fr[:4] + b"\0" + good_fr, [good], 1,
      note="a frame cut short by a delimiter (e.g. port reopened) is one error")
    b("valid_bad_valid", good_fr + cobs_encode(bytes(bad_crc)) + b"\0" + good_fr,
      [good, good], 1)
    b("exactly_64_bytes_no_overflow", b"\x11" * 64 + b"\0" + good_fr, [good], 1,
      note="64 bytes fit the buffer: counted as a bad frame (COBS), not as an overflow")
    b("overflow_65_bytes", b"\x11" * 65 + b"\0" + good_fr, [good], 1, 65,
      note="more than 64 bytes without 0x00: discarded up to the next 0x00, one error, "
           "FAULT 4 with detail = bytes discarded")
    b("overflow_200_bytes", bytes((i % 255) + 1 for i in range(200)) + b"\0" + good_fr,
      [good], 1, 200)
    b("overflow_then_bad_then_valid", b"\x22" * 100 + b"\0" + b"\x01\0" + good_fr, [good], 2,
      100, note="overflow (1 error), then a 1-byte frame (1 error), then a valid frame")
    return out


def generate():
    return {
        "messages.json": {
            "protocol": 1,
            "doc": "PROTOCOL.md section 3. payload_hex = type byte + fields (no CRC); "
                   "crc16 = CRC-16/CCITT-FALSE of the payload (appended little-endian); "
                   "frame_hex = COBS(payload + crc16_le) + 00. 'board' is ASCII, zero padded "
                   "to 8 bytes on the wire. Generated by make_vectors.py.",
            "vectors": messages(),
        },
        "framing.json": dict(
            doc="CRC check value; raw COBS cases (encoded_hex has no delimiter; runs over 62 "
                "bytes exceed the protocol frame and only pin down the COBS convention); "
                "frames with zeros (frame_hex includes the CRC and the trailing 00). "
                "Generated by make_vectors.py.",
            **framing()),
        "bad_frames.json": {
            "doc": "Byte streams fed to a freshly started receiver (in sync). It must deliver "
                   "exactly valid_payloads_hex (payload = type + fields, CRC stripped), count "
                   "rx_errors dropped frames, and, for an overflow (over 64 bytes without a "
                   "0x00), discard overflow_discarded bytes (FAULT 4 detail on the device). "
                   "Generated by make_vectors.py.",
            "max_payload": MAX_PAYLOAD,
            "max_encoded": MAX_ENCODED,
            "streams": bad_frames(),
        },
    }


def dump(obj):
    return json.dumps(obj, indent=1) + "\n"


def cstr(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def emit_header(path):
    """C++ header from the JSON files (not from this encoder) for test_protocol.cpp."""
    with open(os.path.join(HERE, "messages.json")) as fh:
        msgs = json.load(fh)["vectors"]
    with open(os.path.join(HERE, "framing.json")) as fh:
        fr = json.load(fh)
    with open(os.path.join(HERE, "bad_frames.json")) as fh:
        bad = json.load(fh)["streams"]
    L = ["// generated by make_vectors.py --header from test-vectors/*.json; do not edit",
         "#pragma once", "#include \"protocol.h\"", "#include <string.h>", ""]
    for i, v in enumerate(msgs):
        L.append("static void vec_fields_%d(bstim::Msg& m) {" % i)
        L.append("  memset(&m, 0, sizeof m); m.type = %s;" % v["type"])
        for k, val in v["fields"].items():
            if k == "board":
                L.append("  memcpy(m.board, %s, %d);" % (cstr(val), len(val)))
            else:
                L.append("  m.%s = %dULL;" % (k, val))
        L.append("}")
    L.append("struct MsgVec { const char* name; void (*fill)(bstim::Msg&); const char* payload_hex;"
             " unsigned crc16; const char* frame_hex; };")
    L.append("static const MsgVec kMsgVecs[] = {")
    for i, v in enumerate(msgs):
        L.append("  {%s, vec_fields_%d, %s, %du, %s}," % (cstr(v["name"]), i, cstr(v["payload_hex"]),
                                                       v["crc16"], cstr(v["frame_hex"])))
    L.append("};")
    L.append("static const unsigned kCrcCheck = %du;" % fr["crc16"]["check"])
    L.append("struct CobsVec { const char* name; const char* data_hex; const char* encoded_hex; };")
    L.append("static const CobsVec kCobsVecs[] = {")
    for v in fr["cobs"]:
        L.append("  {%s, %s, %s}," % (cstr(v["name"]), cstr(v["data_hex"]), cstr(v["encoded_hex"])))
    L.append("};")
    L.append("struct FrameVec { const char* name; const char* payload_hex; unsigned crc16;"
             " const char* frame_hex; };")
    L.append("static const FrameVec kFrameVecs[] = {")
    for v in fr["frames"]:
        L.append("  {%s, %s, %du, %s}," % (cstr(v["name"]), cstr(v["payload_hex"]), v["crc16"],
                                         cstr(v["frame_hex"])))
    L.append("};")
    L.append("struct BadVec { const char* name; const char* stream_hex; int n_valid;"
             " const char* valid[4]; unsigned rx_errors; unsigned overflow_discarded; };")
    L.append("static const BadVec kBadVecs[] = {")
    for v in bad:
        vals = v["valid_payloads_hex"]
        assert len(vals) <= 4
        L.append("  {%s, %s, %d, {%s}, %du, %du}," % (
            cstr(v["name"]), cstr(v["stream_hex"]), len(vals),
            ", ".join(cstr(x) for x in vals) or "nullptr", v["rx_errors"],
            v["overflow_discarded"]))
    L.append("};")
    with open(path, "w") as fh:
        fh.write("\n".join(L) + "\n")


def main(argv):
    if len(argv) >= 2 and argv[0] == "--header":
        emit_header(argv[1])
        return 0
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    files = generate()
    bad = 0
    for name, obj in files.items():
        path = os.path.join(HERE, name)
        text = dump(obj)
        if argv[:1] == ["--check"]:
            with open(path) as fh:
                if fh.read() != text:
                    print("differs:", path)
                    bad = 1
        else:
            with open(path, "w") as fh:
                fh.write(text)
            print("wrote", path)
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
