#!/usr/bin/env python3
"""Model parity: behavd's outputs against Python onnxruntime on the same frames.

    parity.py --config CFG --model NAME --session FILE.nwb --predictions behavd.json

`behavd.json` is what `behavd predict` wrote for the same config, model and session. This script
reads the same frames from the session file, preprocesses them with an independent numpy
implementation of the preprocessing documented in docs/models.md (crop, colour, resize taps,
scale/mean/std, temporal stack, layout), runs the ONNX graph(s) with onnxruntime carrying the
recurrent state, decodes the outputs, and prints the largest differences as JSON.
"""
import argparse
import json
import math
import os
import sys
import tomllib

import h5py
import numpy as np
import onnxruntime as ort


def taps(src, dst, interpolation):
    """Resize weights as a (dst, src) matrix."""
    m = np.zeros((dst, src), dtype=np.float64)
    scale = src / dst
    for i in range(dst):
        if interpolation == "nearest":
            m[i, min(int(math.floor((i + 0.5) * scale)), src - 1)] = 1.0
        elif interpolation == "area" and scale > 1.0:
            lo, hi = i * scale, (i + 1) * scale
            j = int(math.floor(lo))
            while j < hi and j < src:
                overlap = max(0.0, min(hi, j + 1.0) - max(lo, float(j)))
                if overlap > 0:
                    m[i, j] += overlap / scale
                j += 1
        else:
            s = min(max((i + 0.5) * scale - 0.5, 0.0), src - 1)
            x0 = int(math.floor(s))
            f = s - x0
            x1 = min(x0 + 1, src - 1)
            m[i, x0] += 1.0 - f
            m[i, x1] += f
    return m


def preprocess(frame, spec):
    """One frame (H, W) or (H, W, 3) uint8 -> CHW float32."""
    h, w = frame.shape[:2]
    cx, cy, cw, ch = spec.get("crop", [0, 0, w, h])
    img = frame[cy:cy + ch, cx:cx + cw].astype(np.float64)
    if img.ndim == 2:
        img = img[:, :, None]
    color = spec.get("color", "gray")
    if color == "gray" and img.shape[2] == 3:
        img = (0.299 * img[:, :, 0] + 0.587 * img[:, :, 1] + 0.114 * img[:, :, 2])[:, :, None]
    if color == "rgb" and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    ow, oh = spec.get("resize", [cw, ch])
    interpolation = spec.get("interpolation", "area")
    my, mx = taps(ch, oh, interpolation), taps(cw, ow, interpolation)
    out = np.stack([my @ img[:, :, c] @ mx.T for c in range(img.shape[2])]).astype(np.float32)
    if spec.get("dtype", "float32") == "uint8":
        return np.clip(np.round(out), 0, 255)
    c = out.shape[0]
    per = lambda v, d: np.array((v or [d]) * (c if len(v or [d]) == 1 else 1), dtype=np.float32)[:, None, None]
    scale = np.float32(spec.get("scale", 1.0 / 255.0))
    return (out * scale - per(spec.get("mean"), 0.0)) / per(spec.get("std"), 1.0)


def assemble(stack, spec):
    """Oldest-first list of CHW frames -> input tensor."""
    t = np.stack(stack)  # (T, C, H, W)
    layout, axis = spec.get("layout", "nchw"), spec.get("stack", "channel")
    T, C, H, W = t.shape
    if layout == "nchw":
        x = t.reshape(1, T * C, H, W) if axis == "channel" else t[None]
    elif axis == "channel":
        x = t.transpose(2, 3, 0, 1).reshape(1, H, W, T * C)
    else:
        x = t.transpose(0, 2, 3, 1)[None]
    return x.astype(np.uint8 if spec.get("dtype", "float32") == "uint8" else np.float32)


def activate(kind, v):
    if kind == "softmax":
        e = np.exp(v - v.max())
        return e / e.sum()
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-v))
    return v


def decode(model, raw, frame_hw, input_wh):
    out = model["output"]
    kind = out["kind"]
    if kind == "vector":
        return raw.ravel()
    if kind == "classes":
        return activate(out.get("activation", "softmax"), raw.ravel().astype(np.float64))
    spec = model["input"]
    h, w = frame_hw
    cx, cy, cw, ch = spec.get("crop", [0, 0, w, h])
    iw, ih = input_wh
    sx, sy = cw / iw, ch / ih
    act = out.get("activation", "sigmoid")
    k = len(out["names"])
    res = []
    if out.get("decode", "heatmap") == "direct":
        r = raw.reshape(k, 3)
        for i in range(k):
            u, v, c = r[i]
            res += [(u + 0.5) * sx - 0.5 + cx, (v + 0.5) * sy - 0.5 + cy, activate(act, np.array([c]))[0]]
        return np.array(res)
    hm = raw.reshape(k, raw.shape[-2], raw.shape[-1]).astype(np.float64)
    hh, hw = hm.shape[1:]
    for i in range(k):
        m = hm[i]
        py, px = np.unravel_index(int(np.argmax(m)), m.shape)
        def off(l, c, r):
            d = l - 2 * c + r
            return 0.0 if d >= 0 else float(np.clip(0.5 * (l - r) / d, -0.5, 0.5))
        dx = off(m[py, px - 1], m[py, px], m[py, px + 1]) if 0 < px < hw - 1 else 0.0
        dy = off(m[py - 1, px], m[py, px], m[py + 1, px]) if 0 < py < hh - 1 else 0.0
        u = (px + dx + 0.5) * (iw / hw) - 0.5
        v = (py + dy + 0.5) * (ih / hh) - 0.5
        res += [(u + 0.5) * sx - 0.5 + cx, (v + 0.5) * sy - 0.5 + cy, activate(act, np.array([m[py, px]]))[0]]
    return np.array(res)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--session", required=True)
    ap.add_argument("--predictions", required=True)
    ap.add_argument("--unrolled", help="also run this sequence model (input [T, ...] -> output [T, ...], "
                    "zero initial state) on all frames at once and compare it with behavd's step-by-step raw outputs")
    a = ap.parse_args()
    with open(a.config, "rb") as f:
        config = tomllib.load(f)
    base = os.path.dirname(os.path.abspath(a.config))
    by_name = {m["name"]: m for m in config["model"]}
    chain, name = [], a.model
    while True:
        chain.insert(0, by_name[name])
        src = by_name[name]["source"]
        if not src.startswith("model:"):
            break
        name = src[len("model:"):]
    with open(a.predictions) as f:
        pred = json.load(f)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sessions = [ort.InferenceSession(os.path.join(base, m["path"]), so, providers=["CPUExecutionProvider"]) for m in chain]
    states = []
    for m, s in zip(chain, sessions):
        shapes = {i.name: [d if isinstance(d, int) else 1 for d in i.shape] for i in s.get_inputs()}
        states.append({p["input"]: np.zeros(shapes[p["input"]], np.float32) for p in m.get("state", [])})
    first = chain[0]
    stack = []
    inputs_seen = []
    max_raw = max_values = 0.0
    with h5py.File(a.session, "r") as f:
        data = f[f"acquisition/{first['source']}/data"]
        for row, index in enumerate(pred["frames"]):
            stored = data[index]
            frame = stored.T if stored.ndim == 2 else stored.transpose(1, 0, 2)
            x = preprocess(frame, first["input"])
            n = first["input"].get("frames", 1)
            stack = [x] * n if not stack else (stack + [x])[-n:]
            feed = assemble(stack, first["input"])
            inputs_seen.append(feed)
            for m, s, st in zip(chain, sessions, states):
                inputs = {m["input"]["name"]: feed, **st}
                out_names = [m["output"]["name"]] + [p["output"] for p in m.get("state", [])]
                outs = s.run(out_names, inputs)
                for p, v in zip(m.get("state", []), outs[1:]):
                    st[p["input"]] = v
                raw = outs[0]
                ih, iw = feed.shape[-2:] if m["input"].get("layout", "nchw") == "nchw" else feed.shape[1:3]
                values = decode(m, raw, frame.shape[:2], (iw, ih))
                feed = values.astype(np.float32).reshape(1, -1)
            max_raw = max(max_raw, float(np.max(np.abs(raw.ravel() - np.array(pred["raw"][row])))))
            max_values = max(max_values, float(np.max(np.abs(values - np.array(pred["values"][row])))))
    result = {"model": a.model, "frames": len(pred["frames"]), "max_abs_diff_raw": max_raw,
              "max_abs_diff_values": max_values}
    if a.unrolled:
        seq = ort.InferenceSession(a.unrolled, so, providers=["CPUExecutionProvider"])
        batch = np.concatenate(inputs_seen, axis=0)
        out = seq.run(None, {seq.get_inputs()[0].name: batch})[0]
        result["max_abs_diff_unrolled"] = float(np.max(np.abs(out.reshape(len(inputs_seen), -1) - np.array(pred["raw"]))))
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
