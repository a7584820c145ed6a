#!/usr/bin/env python3
"""Train, export, verify and document behavd's shipped ONNX models (models/*.onnx).

Run by hand on a developer machine, never in CI:

    python3 -m venv /tmp/models-venv
    /tmp/models-venv/bin/pip install torch==2.15.0 onnx==1.23.2 onnxruntime==1.31.1 h5py==3.16.0 numpy==2.4.6
    cargo build --release
    /tmp/models-venv/bin/python tools/train_models.py --behavd target/release/behavd \\
        --work /tmp/models-work --out models

Tested with torch 2.15.0, onnx 1.23.2, onnxruntime 1.31.1, h5py 3.16.0, numpy 2.4.6, Python 3.11
(CPU only).
No GPU is needed: on 2 CPU cores the whole run (data generation ~11 min, preprocessing ~4 min,
training ~21 min, export/evaluation ~1 min) takes about 40 minutes and ~50 GB of scratch
disk under --work (the raw NWB files; delete work/raw afterwards).  Training runs for fixed
wall-clock budgets (--budget-*), so a faster machine trains more steps.  Stages can be run
separately (``--stages gen,prep,train,export,eval,cards``); every stage caches its results
under ``--work`` so a later stage can be re-run alone, and --models limits train, export and
eval to some models (the others' results are kept in work/eval.json).  The per-animal
Miniscope model for another mouse (seed) alone, ~11 min:

    tools/train_models.py --behavd target/release/behavd --work /tmp/models-work --out models \\
        --stages gen_animal,prep_animal,train,export,eval,cards --models miniscope_cnn \\
        --miniscope-seed 7

What it does
  gen     writes rig configs and runs ``behavd run`` to record synthetic sessions:
          * a realtime session (30 fps, --seq-seconds of simulated time) with, per sequence
            seed, a Miniscope, a full 640x480 behavior camera (train seeds SEQ_TRAIN_SEEDS and
            the held-out TEST_SEED) and, for the Miniscope-only seeds, a tiny 64x48 behavior
            camera used only for its ground-truth labels (same seed = same simulated animal,
            frame k of every 30 fps stream is the animal at k/30 s);
          * fast-paced behavior-camera sessions (FRAME_SEEDS) whose recorder drops most frames,
            which gives many weakly correlated frames spread over a long simulated time;
          * (also stage gen_animal) the per-animal session: a realtime Miniscope of the
            --miniscope-seed animal plus a 64x48 label camera, --animal-seconds long.
  prep    reads the NWB files with h5py and stores 4x4 block sums (uint16, exact) of every
          frame plus ground truth and frame numbers as .npy files.
  train   trains the models (--models) with PyTorch on CPU:
          behavior_cnn, behavior_gru, pose on the camera seeds; miniscope_cnn per animal, on
          the first --mini-train-frac of the --miniscope-seed session (BPNN-style: one model
          per mouse); miniscope_xanimal, the cross-animal Miniscope model (not shipped, kept
          as the measured negative result quoted in the Miniscope card).
  export  exports ONNX (opset 17, legacy exporter) and checks it with onnx.checker; for the
          Miniscope model also checks the I/O contract and onnxruntime == torch.
  eval    evaluates the exported files with onnxruntime: camera models on the held-out seed
          TEST_SEED, miniscope_cnn on the last part of its animal's session (temporal split)
          and on other animals; verifies the recurrent model's step / unrolled / two-stage
          exports agree, and
  cards   writes models/<name>.md and models/README.md.

Preprocessing is exactly what behavd's runtime does: "area" resize by an integer factor k =
mean of each k x k block in float32 of the uint8 pixels, x = pixel * (1/255), (x - mean)/std.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CLASSES = ["explore", "grooming", "mid_rearing", "wall_rearing"]
KEYPOINTS = ["nose", "left_ear", "right_ear", "tail_base"]
TEST_SEED = 42                       # held out from every camera model (evaluation seed)
SEQ_TRAIN_SEEDS = [11, 12, 13]       # full behavior camera + Miniscope, realtime
MINI_ONLY_SEEDS = [14, 15]           # Miniscope + label camera, realtime
FRAME_SEEDS = list(range(101, 113))  # fast-paced behavior camera sessions
MINI_VAL_SEED = 15                   # validation animal of the cross-animal Miniscope model
MINI_ANIMAL_SEED = 7                 # the animal of the per-animal Miniscope model (the demo
                                     # rig's, config/demo.toml); --miniscope-seed overrides
FPS = 30.0
SCALE = np.float32(1.0 / 255.0)

SESSION_HEADER = """[session]
description = "behavd model training data (synthetic)"
experimenter = ["Models, Training"]
lab = "behavd"
institution = "behavd"
rig = "training"

[session.subject]
id = "sim{tag}"
species = "Mus musculus"
sex = "U"
age = "P90D"

[session.imaging]
location = "CA1"
indicator = "GCaMP6f"
"""


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ----------------------------------------------------------------------------- gen
def behavior_source(name, seed, pacing, width=640, height=480):
    return (f'[[source]]\nkind = "synthetic-behavior"\nname = "{name}"\nfps = {FPS}\n'
            f'width = {width}\nheight = {height}\npixel_format = "gray8"\nseed = {seed}\n'
            f'pacing = "{pacing}"\n\n')


def miniscope_source(name, seed, pacing):
    return (f'[[source]]\nkind = "synthetic-miniscope"\nname = "{name}"\nfps = {FPS}\n'
            f'neurons = 120\nseed = {seed}\npacing = "{pacing}"\n\n')


def recording(ring):
    return (f'[recording]\noutput_dir = "sessions"\ncompression = {{ codec = "none" }}\n'
            f'compress_threads = 0\nflush_interval_s = 1.0\nring_seconds = {ring}\n')


def run_behavd(behavd, cfg_text, cfg_path, out_dir, seconds):
    cfg_path.write_text(cfg_text)
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in out_dir.glob("*.nwb"):
        f.unlink()
    log("behavd run", cfg_path.name, f"{seconds}s")
    subprocess.run([behavd, "run", "--config", str(cfg_path), "--duration", str(seconds),
                    "--output", str(out_dir)], check=True, stdout=subprocess.DEVNULL)
    files = sorted(out_dir.glob("*.nwb"))
    assert len(files) == 1, files
    return files[0]


def stage_gen(a, work):
    raw = work / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    # Realtime session: contiguous 30 fps streams for the recurrent and Miniscope models.
    text = SESSION_HEADER.format(tag="seq")
    for s in SEQ_TRAIN_SEEDS + [TEST_SEED]:
        text += behavior_source(f"Beh{s}", s, "realtime")
        text += miniscope_source(f"Mini{s}", s, "realtime")
    for s in MINI_ONLY_SEEDS:
        text += behavior_source(f"Lab{s}", s, "realtime", 64, 48)
        text += miniscope_source(f"Mini{s}", s, "realtime")
    text += recording(20.0)
    run_behavd(a.behavd, text, raw / "seq.toml", raw / "seq", a.seq_seconds)
    # Fast sessions: many decorrelated frames for the per-frame models.
    for s in FRAME_SEEDS:
        text = SESSION_HEADER.format(tag=s) + behavior_source("BehaviorCam0", s, "fast")
        text += recording(4.0)
        run_behavd(a.behavd, text, raw / f"fast{s}.toml", raw / f"fast{s}", a.fast_seconds)
    stage_gen_animal(a, work)


def stage_gen_animal(a, work):
    """Realtime session of one animal for the per-animal Miniscope model: its Miniscope and a
    tiny 64x48 behavior camera of the same seed (same animal) for the ground-truth labels."""
    s = a.miniscope_seed
    text = SESSION_HEADER.format(tag=f"animal{s}")
    text += behavior_source(f"Lab{s}", s, "realtime", 64, 48)
    text += miniscope_source(f"Mini{s}", s, "realtime")
    text += recording(20.0)
    run_behavd(a.behavd, text, work / "raw" / f"animal{s}.toml", work / "raw" / f"animal{s}",
               a.animal_seconds)


# ----------------------------------------------------------------------------- prep
def block_sums(data, k=4, chunk=256):
    """uint8 (n, W, H) as stored (transposed) -> uint16 (n, H/k, W/k) sums of k x k blocks."""
    n, w, h = data.shape
    out = np.empty((n, h // k, w // k), np.uint16)
    for i in range(0, n, chunk):
        x = data[i:i + chunk].astype(np.uint16)
        x = x.reshape(-1, w // k, k, h // k, k).sum(axis=(2, 4), dtype=np.uint16)
        out[i:i + chunk] = x.transpose(0, 2, 1)
    return out


def unwrap(counter, bits):
    c = counter.astype(np.int64)
    d = np.diff(c)
    d[d < 0] += 1 << bits
    return np.concatenate([[c[0]], c[0] + np.cumsum(d)]) if len(c) else c


def save_behavior(prep, f, stream, tag, full=True):
    g = f["acquisition"]
    fn = unwrap(g[f"{stream}FrameNumber/data"][:], 32)
    lab = g[f"{stream}GroundTruthBehavior/data"][:].astype(np.uint8)
    np.save(prep / f"{tag}_fn.npy", fn)
    np.save(prep / f"{tag}_lab.npy", lab)
    if full:
        np.save(prep / f"{tag}_kp.npy", g[f"{stream}GroundTruthKeypoints/data"][:])
        np.save(prep / f"{tag}_x.npy", block_sums(g[f"{stream}/data"]))
    log("prep", tag, len(fn), "frames, labels", np.bincount(lab, minlength=4))


def save_mini(prep, f, stream, tag):
    g = f["acquisition"]
    fn = unwrap(g[f"{stream}DAQFrameNumber/data"][:], 16)
    np.save(prep / f"{tag}_fn.npy", fn)
    np.save(prep / f"{tag}_x.npy", block_sums(g[f"{stream}/data"]))
    log("prep", tag, len(fn), "frames")


def stage_prep_animal(a, work):
    import h5py
    s = a.miniscope_seed
    prep = work / "prep"
    prep.mkdir(parents=True, exist_ok=True)
    path = next((work / "raw" / f"animal{s}").glob("*.nwb"))
    with h5py.File(path, "r") as f:
        save_behavior(prep, f, f"Lab{s}", f"beh{s}", full=False)
        save_mini(prep, f, f"Mini{s}", f"mini{s}")


def stage_prep(a, work):
    import h5py
    prep = work / "prep"
    prep.mkdir(parents=True, exist_ok=True)
    stage_prep_animal(a, work)

    seq = next((work / "raw" / "seq").glob("*.nwb"))
    with h5py.File(seq, "r") as f:
        for s in SEQ_TRAIN_SEEDS + [TEST_SEED]:
            save_behavior(prep, f, f"Beh{s}", f"beh{s}")
            save_mini(prep, f, f"Mini{s}", f"mini{s}")
        for s in MINI_ONLY_SEEDS:
            save_behavior(prep, f, f"Lab{s}", f"beh{s}", full=False)
            save_mini(prep, f, f"Mini{s}", f"mini{s}")
    for s in FRAME_SEEDS:
        path = next((work / "raw" / f"fast{s}").glob("*.nwb"))
        with h5py.File(path, "r") as f:
            save_behavior(prep, f, "BehaviorCam0", f"fast{s}")


# ----------------------------------------------------------------------------- models
def torch_setup(a):
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    return torch


def build_nets():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def cbr(cin, cout, stride=1, dil=1):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dil, dil, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def stem(cin, cout):
        """Non-overlapping 4x4 patches (cheap on CPU)."""
        return nn.Sequential(nn.Conv2d(cin, cout, 4, 4, 0, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class Encoder(nn.Module):
        """[N,1,120,160] -> [N,64] behavior features."""
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(stem(1, 16), cbr(16, 32, 2), cbr(32, 32),
                                      cbr(32, 64, 2), cbr(64, 64, 2))  # 30x40 .. 4x5
            self.fc = nn.Sequential(nn.Linear(128, 64), nn.ReLU(inplace=True))

        def forward(self, x):
            y = self.body(x)
            y = torch.cat([y.mean(dim=(2, 3)), y.amax(dim=(2, 3))], 1)
            return self.fc(y)

    class BehaviorCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()
            self.head = nn.Linear(64, 4)

        def forward(self, frame):
            return self.head(self.encoder(frame))

    class GRUHead(nn.Module):
        """(features [N,64], h [N,64]) -> (logits [N,4], h' [N,64]) via a GRUCell."""
        def __init__(self):
            super().__init__()
            self.cell = nn.GRUCell(64, 64)
            self.out = nn.Linear(64 + 64, 4)

        def forward(self, features, h_in):
            h = self.cell(features, h_in)
            return self.out(torch.cat([h, features], 1)), h

    class BehaviorGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()
            self.head = GRUHead()

        def forward(self, frame, h_in):
            return self.head(self.encoder(frame), h_in)

    class BehaviorGRUSeq(nn.Module):
        """frames [T,1,120,160] -> logits [T,4] from zero state (unrolled)."""
        def __init__(self, gru):
            super().__init__()
            self.gru = gru
            # The same GRUCell weights in a torch.nn.GRU, exported as one ONNX GRU node that
            # handles the dynamic T.
            cell = gru.head.cell
            self.rnn = nn.GRU(64, 64)
            with torch.no_grad():
                self.rnn.weight_ih_l0.copy_(cell.weight_ih)
                self.rnn.weight_hh_l0.copy_(cell.weight_hh)
                self.rnn.bias_ih_l0.copy_(cell.bias_ih)
                self.rnn.bias_hh_l0.copy_(cell.bias_hh)

        def forward(self, frames):
            feats = self.gru.encoder(frames)
            gru = self.rnn
            hs, _ = gru(feats.unsqueeze(1))
            hs = hs.squeeze(1)
            return self.gru.head.out(torch.cat([hs, feats], 1))

    class Pose(nn.Module):
        """[N,1,120,160] -> heatmap logits [N,4,30,40]."""
        def __init__(self):
            super().__init__()
            self.c1 = stem(1, 24)          # 30x40
            self.c3 = cbr(24, 32, 2)       # 15x20
            self.c4 = cbr(32, 32, 1, 2)
            self.c5 = cbr(32, 32, 1, 4)
            self.red = nn.Sequential(nn.Conv2d(32, 24, 1, bias=False), nn.BatchNorm2d(24),
                                     nn.ReLU(inplace=True))
            self.c6 = cbr(24, 24)
            self.out = nn.Conv2d(24, 4, 1)

        def forward(self, frame):
            a = self.c1(frame)
            b = self.c5(self.c4(self.c3(a)))
            b = F.interpolate(self.red(b), scale_factor=2.0, mode="nearest")
            return self.out(self.c6(a + b))

    class MiniscopeXAnimal(nn.Module):
        """Cross-animal variant (not shipped): [N,4,152,152] raw frames (oldest first) ->
        logits [N,4] from frame differences only, globally pooled."""
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(stem(4, 24), cbr(24, 32, 2), cbr(32, 48, 2),
                                      cbr(48, 64, 2))  # 38x38 .. 5x5
            self.fc = nn.Sequential(nn.Linear(128, 64), nn.ReLU(inplace=True),
                                    nn.Linear(64, 4))

        def forward(self, frames):
            # Only temporal changes: consecutive differences and newest - oldest. Absolute
            # images identify the training animals' neurons and do not transfer to a new one.
            d = frames[:, 1:] - frames[:, :-1]
            x = torch.cat([d, frames[:, 3:] - frames[:, :1]], 1) * 8.0
            y = self.body(x)
            y = torch.cat([y.mean(dim=(2, 3)), y.amax(dim=(2, 3))], 1)
            return self.fc(y)

    class MiniscopeCNN(nn.Module):
        """Per-animal: [N,4,152,152] raw frames (oldest first) -> logits [N,4]. Channels
        inside the network: each frame minus the 4-frame mean (4), the mean image (1) and the
        frame-to-frame differences x4 (3). The 5x5 map of the last layer is flattened, not
        pooled, so the classifier knows *where* activity is: which of this animal's neurons
        fire."""
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(stem(8, 24), cbr(24, 32, 2), cbr(32, 48, 2),
                                      cbr(48, 64, 2))  # 38x38 .. 5x5
            self.fc = nn.Sequential(nn.Linear(64 * 5 * 5, 64), nn.ReLU(inplace=True),
                                    nn.Linear(64, 4))

        def forward(self, frames):
            m = frames.mean(dim=1, keepdim=True)
            d = frames[:, 1:] - frames[:, :-1]
            x = torch.cat([frames - m, m, d * 4.0], 1)
            return self.fc(self.body(x).flatten(1))

    return dict(Encoder=Encoder, BehaviorCNN=BehaviorCNN, GRUHead=GRUHead,
                BehaviorGRU=BehaviorGRU, BehaviorGRUSeq=BehaviorGRUSeq, Pose=Pose,
                MiniscopeXAnimal=MiniscopeXAnimal, MiniscopeCNN=MiniscopeCNN)


# ----------------------------------------------------------------------------- data
def to_input(sums):
    """uint16 4x4 block sums -> float32 network input, exactly as the runtime computes it."""
    x = sums.astype(np.float32) * np.float32(1.0 / 16.0)   # block mean (exact)
    x = x * SCALE
    return (x - np.float32(0.5)) / np.float32(0.25)


def mini_input(sums):
    return sums.astype(np.float32) * np.float32(1.0 / 16.0) * SCALE


def load(work, tag, what):
    return np.load(work / "prep" / f"{tag}_{what}.npy", mmap_mode="r")


def frame_dataset(work):
    """Per-frame training set: all fast-session frames + every 3rd realtime train frame."""
    xs, ys, kps = [], [], []
    for s in FRAME_SEEDS:
        xs.append(np.asarray(load(work, f"fast{s}", "x")))
        ys.append(np.asarray(load(work, f"fast{s}", "lab")))
        kps.append(np.asarray(load(work, f"fast{s}", "kp")))
    for s in SEQ_TRAIN_SEEDS:
        xs.append(np.asarray(load(work, f"beh{s}", "x")[::3]))
        ys.append(np.asarray(load(work, f"beh{s}", "lab")[::3]))
        kps.append(np.asarray(load(work, f"beh{s}", "kp")[::3]))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(kps)


def flip_batch(x, kp=None, rng=None):
    """Random horizontal / vertical mirror of a batch of [N,120,160] inputs (and keypoints in
    640x480 frame pixels; a single mirror swaps left and right ears)."""
    n = len(x)
    fh = rng.random(n) < 0.5
    fv = rng.random(n) < 0.5
    x = x.copy()
    x[fh] = x[fh, :, ::-1]
    x[fv] = x[fv, ::-1, :]
    if kp is None:
        return x, None
    kp = kp.copy()
    kp[fh, :, 0] = 639.0 - kp[fh, :, 0]
    kp[fv, :, 1] = 479.0 - kp[fv, :, 1]
    swap = fh ^ fv
    kp[swap] = kp[swap][:, [0, 2, 1, 3]]
    return x, kp


def class_weights(y, power=0.5):
    c = np.bincount(y, minlength=4).astype(np.float64) + 1
    w = (c.sum() / c) ** power
    return (w / (w * c).sum() * c.sum()).astype(np.float32)


def fit(torch, model, batch_fn, loss_fn, budget_s, lr=3e-3, wd=1e-4, name="model"):
    """Trains for budget_s seconds of wall time with a cosine learning-rate schedule over that
    time (robust to a machine shared with other jobs)."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                            weight_decay=wd)
    model.train()
    t0 = time.time()
    step, losses = 0, []
    while True:
        frac = (time.time() - t0) / budget_s
        if frac >= 1.0:
            break
        for g in opt.param_groups:
            g["lr"] = lr * (0.5 * (1 + np.cos(np.pi * frac)) * 0.97 + 0.03) * min(1, (step + 1) / 30)
        inputs, target = batch_fn()
        loss = loss_fn(model(*inputs), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 100 == 0:
            log(f"{name}: step {step} ({frac:.0%} of {budget_s:.0f} s) loss {np.mean(losses[-100:]):.4f}")
    model.eval()
    log(f"{name}: {step} steps in {time.time() - t0:.0f} s")
    return time.time() - t0


def gaussian_targets(kp, sigma):
    """Heatmap targets [N,4,30,40] centred at hx = (x + 0.5)/16 - 0.5."""
    hx = (kp[..., 0] + 0.5) / 16.0 - 0.5
    hy = (kp[..., 1] + 0.5) / 16.0 - 0.5
    gx = np.arange(40, dtype=np.float32)
    gy = np.arange(30, dtype=np.float32)
    ex = np.exp(-(gx[None, None, :] - hx[..., None]) ** 2 / (2 * sigma ** 2))
    ey = np.exp(-(gy[None, None, :] - hy[..., None]) ** 2 / (2 * sigma ** 2))
    return (ey[..., :, None] * ex[..., None, :]).astype(np.float32)


def mini_samples(work, seed):
    """Indices k (into the recorded Miniscope frames) whose 3 predecessors are the previous
    3 device frames, with the ground-truth behavior at device frame k."""
    fn = np.asarray(load(work, f"mini{seed}", "fn"))
    ok = np.zeros(len(fn), bool)
    ok[3:] = (fn[3:] - fn[:-3]) == 3
    bfn = np.asarray(load(work, f"beh{seed}", "fn"))
    blab = np.asarray(load(work, f"beh{seed}", "lab"))
    j = np.clip(np.searchsorted(bfn, fn), 0, len(bfn) - 1)
    jm = np.clip(j - 1, 0, len(bfn) - 1)
    j = np.where(np.abs(bfn[jm] - fn) < np.abs(bfn[j] - fn), jm, j)
    lab = blab[j]
    ok &= np.abs(bfn[j] - fn) <= 1
    return np.nonzero(ok)[0], lab


def animal_split(work, a):
    """Temporal split of the per-animal session: windows whose newest frame is before
    cut - gap train, windows whose oldest frame is at or after cut test (cut at
    --mini-train-frac of the session's device-frame span)."""
    s = a.miniscope_seed
    fn = np.asarray(load(work, f"mini{s}", "fn"))
    idx, lab = mini_samples(work, s)
    cut = fn[0] + int(round(a.mini_train_frac * (fn[-1] - fn[0] + 1)))
    gap = int(round(a.mini_gap_s * FPS))
    train = idx[fn[idx] < cut - gap]
    test = idx[fn[idx - 3] >= cut]
    info = {"seed": s, "frames": int(len(fn)), "cut_frame": int(cut), "span_s": float((fn[-1] - fn[0] + 1) / FPS),
            "cut_s": float((cut - fn[0]) / FPS), "gap_s": gap / FPS,
            "train_windows": int(len(train)), "test_windows": int(len(test)),
            "train_span_s": float((cut - gap - fn[0]) / FPS),
            "test_span_s": float((fn[-1] + 1 - cut) / FPS)}
    return train, test, lab, fn, info


def stage_train(a, work):
    torch = torch_setup(a)
    import torch.nn.functional as F
    nets = build_nets()
    ck = work / "ckpt"
    ck.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    times = {}
    todo = a.models.split(",")

    if "behavior_cnn" in todo or "pose" in todo:
        X, Y, KP = frame_dataset(work)
        log("frame dataset", X.shape, np.bincount(Y, minlength=4))

    if "behavior_cnn" in todo:
        w = torch.tensor(class_weights(Y))
        log("behavior_cnn class weights", w.numpy())
        model = nets["BehaviorCNN"]()

        def batch():
            idx = rng.integers(0, len(X), 64)
            x, _ = flip_batch(X[idx], rng=rng)
            return (torch.from_numpy(to_input(x))[:, None],), torch.from_numpy(Y[idx].astype(np.int64))

        times["behavior_cnn"] = fit(torch, model, batch,
                                    lambda o, t: F.cross_entropy(o, t, weight=w, label_smoothing=0.02),
                                    a.budget_cnn, name="behavior_cnn")
        torch.save(model.state_dict(), ck / "behavior_cnn.pt")

    if "behavior_gru" in todo:
        cnn = nets["BehaviorCNN"]()
        cnn.load_state_dict(torch.load(ck / "behavior_cnn.pt"))
        cnn.eval()
        feats, labs = [], []
        with torch.no_grad():
            for s in SEQ_TRAIN_SEEDS:
                xs = load(work, f"beh{s}", "x")
                fn = np.asarray(load(work, f"beh{s}", "fn"))
                f = np.concatenate([cnn.encoder(torch.from_numpy(to_input(np.asarray(xs[i:i + 256])))[:, None]).numpy()
                                    for i in range(0, len(xs), 256)])
                # split at recording gaps: each contiguous run is one sequence
                cut = np.nonzero(np.diff(fn) != 1)[0] + 1
                lab = np.asarray(load(work, f"beh{s}", "lab"))
                for fs, ls in zip(np.split(f, cut), np.split(lab, cut)):
                    feats.append(fs)
                    labs.append(ls)
        log("gru sequences", [len(f) for f in feats])
        allY = np.concatenate(labs)
        w = torch.tensor(class_weights(allY))
        head = nets["GRUHead"]()
        T = 48

        def batch():
            xb, yb = [], []
            while len(xb) < 32:
                i = rng.integers(len(feats))
                step = 1 if rng.random() < 0.7 else 2
                need = T * step
                if len(feats[i]) <= need:
                    continue
                s0 = rng.integers(0, len(feats[i]) - need)
                xb.append(feats[i][s0:s0 + need:step])
                yb.append(labs[i][s0:s0 + need:step])
            xb = torch.from_numpy(np.stack(xb, 1))  # [T,B,64]
            xb = xb * (1 + 0.1 * torch.randn_like(xb))
            return (xb,), torch.from_numpy(np.stack(yb, 1).astype(np.int64))

        def run_head(xb):
            h = torch.zeros(xb.shape[1], 64)
            outs = []
            for t in range(xb.shape[0]):
                o, h = head(xb[t], h)
                outs.append(o)
            return torch.stack(outs)

        class Wrap(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.head = head

            def forward(self, xb):
                return run_head(xb)

        def loss(o, t):
            o, t = o[4:], t[4:]   # first frames: state still warming up
            return F.cross_entropy(o.reshape(-1, 4), t.reshape(-1), weight=w, label_smoothing=0.02)

        times["behavior_gru"] = fit(torch, Wrap(), batch, loss, a.budget_gru, lr=3e-3,
                                    name="behavior_gru")
        gru = nets["BehaviorGRU"]()
        gru.encoder.load_state_dict(cnn.encoder.state_dict())
        gru.head.load_state_dict(head.state_dict())
        torch.save(gru.state_dict(), ck / "behavior_gru.pt")

    if "pose" in todo:
        model = nets["Pose"]()
        sigma = 1.2

        def batch():
            idx = rng.integers(0, len(X), 32)
            x, kp = flip_batch(X[idx], KP[idx], rng=rng)
            return (torch.from_numpy(to_input(x))[:, None],), torch.from_numpy(gaussian_targets(kp, sigma))

        def loss(o, t):
            wgt = 1.0 + 9.0 * t   # emphasise the peak region over the empty background
            return F.binary_cross_entropy_with_logits(o, t, weight=wgt, reduction="sum") / o.shape[0] / 40

        times["pose"] = fit(torch, model, batch, loss, a.budget_pose, name="pose")
        torch.save(model.state_dict(), ck / "pose.pt")

    if "miniscope_cnn" in todo:
        # Per animal (like BPNN): the first part of one animal's session, temporal split.
        sd = a.miniscope_seed
        MX = np.asarray(load(work, f"mini{sd}", "x"))
        train, test, lab, mfn, info = animal_split(work, a)
        log("miniscope_cnn split", json.dumps(info), "train labels",
            np.bincount(lab[train], minlength=4))
        # windows at stride 2 too (the runtime's stack holds the frames it processed, so a
        # slow model sees every 2nd frame): those whose 7 frames are contiguous
        ok2 = np.zeros(len(mfn), bool)
        ok2[6:] = (mfn[6:] - mfn[:-6]) == 6
        train2 = train[ok2[train]]
        w = torch.tensor(class_weights(lab[train], power=0.5))
        model = nets["MiniscopeCNN"]()

        def batch():
            r = rng.random()
            if r < 0.75:      # the contract: the last 4 frames
                k = rng.choice(train, 32)
                x = np.stack([MX[i - 3:i + 1] for i in k])
            elif r < 0.95:    # every 2nd frame
                k = rng.choice(train2, 32)
                x = np.stack([MX[i - 6:i + 1:2] for i in k])
            else:             # just after a reset the runtime fills all 4 slots with one frame
                k = rng.choice(train, 32)
                x = np.stack([np.repeat(MX[i][None], 4, 0) for i in k])
            x = mini_input(x) * rng.uniform(0.95, 1.05, (32, 1, 1, 1)).astype(np.float32)
            return (torch.from_numpy(x),), torch.from_numpy(lab[k].astype(np.int64))

        times["miniscope_cnn"] = fit(torch, model, batch,
                                     lambda o, t: F.cross_entropy(o, t, weight=w, label_smoothing=0.02),
                                     a.budget_mini, lr=2e-3, wd=1e-3, name="miniscope_cnn")
        torch.save(model.state_dict(), ck / "miniscope_cnn.pt")

    if "miniscope_xanimal" in todo:
        seeds = [s for s in SEQ_TRAIN_SEEDS + MINI_ONLY_SEEDS if s != MINI_VAL_SEED]
        MX, samples = [], []
        for si, s in enumerate(seeds):
            MX.append(np.asarray(load(work, f"mini{s}", "x")))
            idx, lab = mini_samples(work, s)
            samples += [(si, k, lab[k]) for k in idx]
        samples = np.array(samples)
        log("miniscope samples", len(samples), np.bincount(samples[:, 2], minlength=4))
        w = torch.tensor(class_weights(samples[:, 2], power=0.25))
        model = nets["MiniscopeXAnimal"]()

        def batch():
            pick = samples[rng.integers(0, len(samples), 32)]
            x = np.stack([MX[si][k - 3:k + 1] for si, k, _ in pick])
            x = mini_input(x)
            x *= rng.uniform(0.85, 1.15, (len(x), 1, 1, 1)).astype(np.float32)
            r = rng.integers(4)
            x = np.rot90(x, r, axes=(2, 3))
            if rng.random() < 0.5:
                x = x[:, :, :, ::-1]
            return (torch.from_numpy(np.ascontiguousarray(x)),), torch.from_numpy(pick[:, 2].astype(np.int64))

        times["miniscope_xanimal"] = fit(torch, model, batch,
                                         lambda o, t: F.cross_entropy(o, t, weight=w, label_smoothing=0.05),
                                         a.budget_xanimal, lr=2e-3, name="miniscope_xanimal")
        torch.save(model.state_dict(), ck / "miniscope_xanimal.pt")

    tf = work / "train_times.json"
    old = json.loads(tf.read_text()) if tf.exists() else {}
    old.update(times)
    tf.write_text(json.dumps(old, indent=1))


# ----------------------------------------------------------------------------- export
def stage_export(a, work):
    torch = torch_setup(a)
    import onnx
    nets = build_nets()
    ck = work / "ckpt"
    out = a.out
    out.mkdir(parents=True, exist_ok=True)

    def export(model, args, path, inputs, outputs, dynamic=None):
        model.eval()
        torch.onnx.export(model, args, str(path), opset_version=17, dynamo=False,
                          input_names=inputs, output_names=outputs, dynamic_axes=dynamic,
                          do_constant_folding=True, external_data=False)
        m = onnx.load(str(path))
        onnx.checker.check_model(m, full_check=True)
        log("exported", path, f"{path.stat().st_size / 1024:.1f} KiB")

    todo = a.models.split(",")
    frame = torch.zeros(1, 1, 120, 160)
    h = torch.zeros(1, 64)
    if "behavior_cnn" in todo:
        cnn = nets["BehaviorCNN"]()
        cnn.load_state_dict(torch.load(ck / "behavior_cnn.pt"))
        export(cnn, (frame,), out / "behavior_cnn.onnx", ["frame"], ["logits"])

    if "behavior_gru" in todo:
        export_gru(torch, nets, ck, out, export, frame, h)

    if "pose" in todo:
        pose = nets["Pose"]()
        pose.load_state_dict(torch.load(ck / "pose.pt"))
        export(pose, (frame,), out / "pose.onnx", ["frame"], ["heatmaps"])

    if "miniscope_xanimal" in todo:   # not shipped: exported to --work for its evaluation
        mini = nets["MiniscopeXAnimal"]()
        mini.load_state_dict(torch.load(ck / "miniscope_xanimal.pt"))
        export(mini, (torch.zeros(1, 4, 152, 152),), work / "miniscope_xanimal.onnx", ["frames"],
               ["logits"])

    if "miniscope_cnn" in todo:
        mini = nets["MiniscopeCNN"]()
        mini.load_state_dict(torch.load(ck / "miniscope_cnn.pt"))
        path = out / "miniscope_cnn.onnx"
        export(mini, (torch.zeros(1, 4, 152, 152),), path, ["frames"], ["logits"])
        check_mini_export(a, work, torch, mini, path)


def check_mini_export(a, work, torch, mini, path):
    """The exported file has exactly the card's contract and computes what the torch model
    computes (max |diff| <= 1e-5 on real held-out windows)."""
    import onnx
    m = onnx.load(str(path))
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))

    def sig(vs):
        return [(v.name, onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type),
                 [d.dim_value if d.HasField("dim_value") else d.dim_param
                  for d in v.type.tensor_type.shape.dim]) for v in vs]

    external = [t.name for t in m.graph.initializer
                if t.data_location == onnx.TensorProto.EXTERNAL]
    s = ort_session(path, a.threads)
    ins = [(i.name, i.type, i.shape) for i in s.get_inputs()]
    outs = [(o.name, o.type, o.shape) for o in s.get_outputs()]
    assert opset == 17, opset
    assert sig(m.graph.input) == [("frames", "FLOAT", [1, 4, 152, 152])], sig(m.graph.input)
    assert sig(m.graph.output) == [("logits", "FLOAT", [1, 4])], sig(m.graph.output)
    assert ins == [("frames", "tensor(float)", [1, 4, 152, 152])], ins
    assert outs == [("logits", "tensor(float)", [1, 4])], outs
    assert not external
    size = path.stat().st_size
    assert size < 1 << 20, size
    _, test, _, _, _ = animal_split(work, a)
    mx = load(work, f"mini{a.miniscope_seed}", "x")
    pick = test[np.linspace(0, len(test) - 1, 200).astype(int)]
    diff = 0.0
    with torch.no_grad():
        for k in pick:
            x = mini_input(np.asarray(mx[k - 3:k + 1]))[None]
            ref = mini(torch.from_numpy(x)).numpy()
            got = s.run(["logits"], {"frames": x})[0]
            diff = max(diff, float(np.abs(ref - got).max()))
    log("miniscope_cnn onnxruntime vs torch: max |diff|", diff, "over", len(pick), "windows")
    assert diff <= 1e-5, diff
    (work / "miniscope_export_check.json").write_text(json.dumps(
        {"opset": opset, "inputs": sig(m.graph.input), "outputs": sig(m.graph.output),
         "external_data": external, "bytes": size, "windows": len(pick),
         "max_abs_diff_ort_vs_torch": diff}, indent=1))


def export_gru(torch, nets, ck, out, export, frame, h):
    gru = nets["BehaviorGRU"]()
    gru.load_state_dict(torch.load(ck / "behavior_gru.pt"))
    gru.eval()
    export(gru, (frame, h), out / "behavior_gru.onnx", ["frame", "h_in"], ["logits", "h_out"])
    seq = nets["BehaviorGRUSeq"](gru)
    export(seq, (torch.zeros(5, 1, 120, 160),), out / "behavior_gru_seq.onnx", ["frames"],
           ["logits"], {"frames": {0: "T"}, "logits": {0: "T"}})
    export(gru.encoder, (frame,), out / "behavior_gru_encoder.onnx", ["frame"], ["features"])
    export(gru.head, (torch.zeros(1, 64), h), out / "behavior_gru_head.onnx",
           ["features", "h_in"], ["logits", "h_out"])


# ----------------------------------------------------------------------------- eval
def ort_session(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def class_report(y, p):
    """Per-class precision/recall/F1, accuracy, confusion matrix (rows true, cols predicted)."""
    pred = p.argmax(1)
    cm = np.zeros((4, 4), np.int64)
    np.add.at(cm, (y, pred), 1)
    rep = {"n": int(len(y)), "accuracy": float((pred == y).mean()), "confusion": cm.tolist(),
           "classes": {}}
    for c, name in enumerate(CLASSES):
        tp = cm[c, c]
        prec = tp / max(cm[:, c].sum(), 1)
        rec = tp / max(cm[c].sum(), 1)
        f1 = 2 * prec * rec / max(prec + rec, 1e-12)
        rep["classes"][name] = {"precision": float(prec), "recall": float(rec), "f1": float(f1),
                                "support": int(cm[c].sum())}
    rep["macro_f1"] = float(np.mean([v["f1"] for v in rep["classes"].values()]))
    return rep


def confident_report(y, p, fn, thr=0.8):
    """Per class: precision of frames with p > thr, and the fraction of true bouts (runs of
    the class in consecutive device frames) containing at least one such frame."""
    out = {}
    for c, name in enumerate(CLASSES):
        hit = p[:, c] > thr
        prec = float((y[hit] == c).mean()) if hit.any() else float("nan")
        bouts, caught = 0, 0
        i = 0
        while i < len(y):
            if y[i] != c:
                i += 1
                continue
            j = i
            while j + 1 < len(y) and y[j + 1] == c and fn[j + 1] - fn[j] <= 2:
                j += 1
            bouts += 1
            caught += bool(hit[i:j + 1].any())
            i = j + 1
        out[name] = {"threshold": thr, "frames_above": int(hit.sum()), "precision": prec,
                     "bouts": bouts, "bouts_detected": caught,
                     "bout_recall": caught / bouts if bouts else float("nan")}
    return out


def decode_heatmaps(hm):
    """behavd's heatmap decoding: [K,h,w] logits -> [K,2] frame pixels and [K] confidence."""
    k, hh, ww = hm.shape
    xy = np.zeros((k, 2), np.float64)
    conf = np.zeros(k, np.float64)
    for c in range(k):
        m = hm[c]
        i = int(np.argmax(m))          # first maximum in row-major order
        py, px = divmod(i, ww)
        v = float(m[py, px])

        def refine(l, r):
            den = l - 2 * v + r
            if den >= 0:
                return 0.0
            return float(np.clip(0.5 * (l - r) / den, -0.5, 0.5))

        ox = refine(float(m[py, px - 1]), float(m[py, px + 1])) if 0 < px < ww - 1 else 0.0
        oy = refine(float(m[py - 1, px]), float(m[py + 1, px])) if 0 < py < hh - 1 else 0.0
        hx, hy = px + ox, py + oy
        u, w_ = (hx + 0.5) * 4 - 0.5, (hy + 0.5) * 4 - 0.5
        xy[c] = ((u + 0.5) * 4 - 0.5, (w_ + 0.5) * 4 - 0.5)
        conf[c] = 1 / (1 + np.exp(-v))
    return xy, conf


def stage_eval(a, work):
    """Evaluates the models in --models; results are merged into work/eval.json."""
    out = a.out
    ef = work / "eval.json"
    res = json.loads(ef.read_text()) if ef.exists() else {}
    todo = a.models.split(",")
    if any(m in todo for m in ["behavior_cnn", "behavior_gru", "pose"]):
        eval_camera(a, work, res, todo)
    if "miniscope_xanimal" in todo:
        eval_xanimal(a, work, res)
    if "miniscope_cnn" in todo:
        eval_miniscope(a, work, res)
    ef.write_text(json.dumps(res, indent=1))


def mini_scores(session, work, seed, idx, lab, stride=1):
    """onnxruntime over the windows ending at idx (newest frame k, `stride` frames apart)."""
    mx = load(work, f"mini{seed}", "x")
    mfn = np.asarray(load(work, f"mini{seed}", "fn"))
    logits = np.concatenate([
        session.run(["logits"], {"frames": mini_input(np.asarray(mx[k - 3 * stride:k + 1:stride]))[None]})[0]
        for k in idx])
    p = softmax(logits)
    y = lab[idx].astype(np.int64)
    r = {"seed": seed, "report": class_report(y, p), "confident": confident_report(y, p, mfn[idx]),
         "majority_baseline_accuracy": float((y == 0).mean())}
    # where the errors are: windows whose newest frame is within 0.5 s of a behavior change
    change = mfn[np.nonzero(np.diff(lab.astype(np.int64)) != 0)[0] + 1]
    if len(change):
        dist = np.abs(mfn[idx][:, None] - change[None, :]).min(1)
        near = dist < int(FPS / 2)
        wrong = p.argmax(1) != y
        r["near_change"] = {"windows": int(near.sum()), "errors": int(wrong[near].sum()),
                            "errors_total": int(wrong.sum())}
    return r


def eval_xanimal(a, work, res):
    """The cross-animal Miniscope model (not shipped) on two animals it never saw."""
    s = ort_session(work / "miniscope_xanimal.onnx", a.threads)
    for seed, key in [(TEST_SEED, "miniscope_xanimal"), (MINI_VAL_SEED, "miniscope_xanimal_val")]:
        idx, lab = mini_samples(work, seed)
        res[key] = mini_scores(s, work, seed, idx, lab)
        log(key, json.dumps(res[key]["report"]))


def eval_miniscope(a, work, res):
    """Per-animal model: the held-out last part of its animal's session (the contract's
    stride 1, and stride 2 as a slow runtime would feed it), then other animals."""
    s = ort_session(a.out / "miniscope_cnn.onnx", a.threads)
    sd = a.miniscope_seed
    train, test, lab, mfn, info = animal_split(work, a)
    r = mini_scores(s, work, sd, test, lab)
    r["split"] = info
    ok2 = np.zeros(len(mfn), bool)
    ok2[6:] = (mfn[6:] - mfn[:-6]) == 6
    t2 = test[ok2[test] & (mfn[test - 6] >= info["cut_frame"])]
    r["stride2"] = mini_scores(s, work, sd, t2, lab, stride=2)["report"]
    res["miniscope_cnn"] = r
    log("miniscope_cnn", json.dumps(info), json.dumps(r["report"]))
    log("miniscope_cnn stride 2", r["stride2"]["accuracy"], r["stride2"]["macro_f1"])
    other = {}
    for seed in [TEST_SEED] + SEQ_TRAIN_SEEDS + MINI_ONLY_SEEDS:
        if seed == sd or not (work / "prep" / f"mini{seed}_x.npy").exists():
            continue
        idx, olab = mini_samples(work, seed)
        other[str(seed)] = mini_scores(s, work, seed, idx, olab)
        log("miniscope_cnn on seed", seed, other[str(seed)]["report"]["accuracy"],
            other[str(seed)]["report"]["macro_f1"], "majority",
            other[str(seed)]["majority_baseline_accuracy"])
    res["miniscope_cnn_other"] = other
    res["miniscope_export_check"] = json.loads((work / "miniscope_export_check.json").read_text())


def eval_camera(a, work, res, todo):
    out = a.out
    xs = load(work, f"beh{TEST_SEED}", "x")
    y = np.asarray(load(work, f"beh{TEST_SEED}", "lab")).astype(np.int64)
    fn = np.asarray(load(work, f"beh{TEST_SEED}", "fn"))
    kp = np.asarray(load(work, f"beh{TEST_SEED}", "kp"))
    n = len(y)
    log("eval on seed", TEST_SEED, n, "frames", np.bincount(y, minlength=4))

    if "behavior_cnn" in todo:
        eval_behavior_cnn(a, out, res, xs, y, fn, n)
    if "behavior_gru" in todo:
        eval_behavior_gru(a, out, res, xs, y, fn, n)
    if "pose" in todo:
        eval_pose(a, out, res, xs, y, kp, n)


def eval_behavior_cnn(a, out, res, xs, y, fn, n):
    s = ort_session(out / "behavior_cnn.onnx", a.threads)
    logits = np.concatenate([s.run(["logits"], {"frame": to_input(np.asarray(xs[i:i + 1]))[:, None]})[0]
                             for i in range(n)])
    p = softmax(logits)
    res["behavior_cnn"] = {"report": class_report(y, p), "confident": confident_report(y, p, fn)}
    log("behavior_cnn", json.dumps(res["behavior_cnn"]["report"]["classes"]))



def eval_behavior_gru(a, out, res, xs, y, fn, n):
    # behavior_gru: step by step over the whole held-out session, state reset at gaps
    s = ort_session(out / "behavior_gru.onnx", a.threads)
    h = np.zeros((1, 64), np.float32)
    logits = np.zeros((n, 4), np.float32)
    for i in range(n):
        if i > 0 and fn[i] - fn[i - 1] != 1:
            h[:] = 0
        li, h = s.run(["logits", "h_out"], {"frame": to_input(np.asarray(xs[i:i + 1]))[:, None], "h_in": h})
        logits[i] = li[0]
    p = softmax(logits)
    res["behavior_gru"] = {"report": class_report(y, p), "confident": confident_report(y, p, fn),
                           "gaps": int((np.diff(fn) != 1).sum())}
    log("behavior_gru", json.dumps(res["behavior_gru"]["report"]["classes"]))

    # behavior_gru equivalence: step == seq == encoder -> head
    seq = ort_session(out / "behavior_gru_seq.onnx", a.threads)
    enc = ort_session(out / "behavior_gru_encoder.onnx", a.threads)
    head = ort_session(out / "behavior_gru_head.onnx", a.threads)
    T = 64
    t0 = max(0, min(1000, n - T))
    frames = to_input(np.asarray(xs[t0:t0 + T]))[:, None]
    lseq = seq.run(["logits"], {"frames": frames})[0]
    h1 = np.zeros((1, 64), np.float32)
    h2 = np.zeros((1, 64), np.float32)
    d_seq, d_two = 0.0, 0.0
    for t in range(T):
        l1, h1 = s.run(["logits", "h_out"], {"frame": frames[t:t + 1], "h_in": h1})
        f = enc.run(["features"], {"frame": frames[t:t + 1]})[0]
        l2, h2n = head.run(["logits", "h_out"], {"features": f, "h_in": h2})
        d_seq = max(d_seq, float(np.abs(l1 - lseq[t:t + 1]).max()))
        d_two = max(d_two, float(np.abs(l1 - l2).max()), float(np.abs(h1 - h2n).max()))
        h2 = h2n
    res["behavior_gru"]["equivalence"] = {"T": T, "max_abs_diff_step_vs_seq": d_seq,
                                          "max_abs_diff_step_vs_encoder_head": d_two}
    log("gru equivalence", d_seq, d_two)
    assert d_seq <= 1e-5 and d_two <= 1e-5, (d_seq, d_two)



def eval_pose(a, out, res, xs, y, kp, n):
    s = ort_session(out / "pose.onnx", a.threads)
    err = np.zeros((n, 4))
    confs = np.zeros((n, 4))
    for i in range(n):
        hm = s.run(["heatmaps"], {"frame": to_input(np.asarray(xs[i:i + 1]))[:, None]})[0][0]
        xy, c = decode_heatmaps(hm)
        err[i] = np.linalg.norm(xy - kp[i], axis=1)
        confs[i] = c
    res["pose"] = {"n": n, "keypoints": {}}
    for k, name in enumerate(KEYPOINTS):
        e = err[:, k]
        res["pose"]["keypoints"][name] = {
            "mean_px": float(e.mean()), "median_px": float(np.median(e)),
            "p90_px": float(np.percentile(e, 90)), "max_px": float(e.max()),
            "mean_confidence": float(confs[:, k].mean())}
    res["pose"]["by_behavior_mean_px"] = {CLASSES[c]: float(err[y == c].mean()) for c in range(4) if (y == c).any()}
    log("pose", json.dumps(res["pose"]))




# ----------------------------------------------------------------------------- cards
INPUT_BEHAVIOR = """[model.input]
name = "frame"
resize = [160, 120]          # width, height
interpolation = "area"
color = "gray"
layout = "nchw"
scale = 0.00392156862745098
mean = [0.5]
std = [0.25]
frames = 1"""

CLASSES_OUT = """[model.output]
kind = "classes"
name = "logits"
labels = ["explore", "grooming", "mid_rearing", "wall_rearing"]
activation = "softmax\""""

CONFIG_BLOCKS = {
    "behavior_cnn": f"""[[model]]
name = "behavior"
path = "models/behavior_cnn.onnx"
source = "BehaviorCam0"
{INPUT_BEHAVIOR}
{CLASSES_OUT}""",
    "behavior_gru": f"""[[model]]
name = "behavior_gru"
path = "models/behavior_gru.onnx"
source = "BehaviorCam0"
{INPUT_BEHAVIOR}
[[model.state]]
input = "h_in"
output = "h_out"
{CLASSES_OUT}""",
    "behavior_gru_two_stage": f"""[[model]]
name = "behavior_features"
path = "models/behavior_gru_encoder.onnx"
source = "BehaviorCam0"
{INPUT_BEHAVIOR}
[model.output]
kind = "vector"
name = "features"

[[model]]
name = "behavior_gru"
path = "models/behavior_gru_head.onnx"
source = "model:behavior_features"
[model.input]
name = "features"
[[model.state]]
input = "h_in"
output = "h_out"
{CLASSES_OUT}""",
    "miniscope_cnn": f"""[[model]]
name = "neural"
path = "models/miniscope_cnn.onnx"
source = "Miniscope"
[model.input]
name = "frames"
resize = [152, 152]          # width, height
interpolation = "area"
color = "gray"
layout = "nchw"
scale = 0.00392156862745098
frames = 4                   # last 4 frames on the channel axis, oldest first
stack = "channel"
{CLASSES_OUT}""",
    "pose": f"""[[model]]
name = "pose"
path = "models/pose.onnx"
source = "BehaviorCam0"
{INPUT_BEHAVIOR}
[model.output]
kind = "keypoints"
name = "heatmaps"
names = ["nose", "left_ear", "right_ear", "tail_base"]
decode = "heatmap"
activation = "sigmoid\"""",
}


PATH_NOTE = ("`path` is relative to the directory of the config file that contains it: the\n"
             "block above assumes a config file in the repository root; the demo rig\n"
             "(`config/demo.toml`) writes `../models/<file>`.")


def file_facts(path):
    import onnx
    b = path.read_bytes()
    m = onnx.load(str(path))
    params = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    return {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest(),
            "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
            "params": params}


def facts_table(out, names):
    rows = ["| file | size | parameters | opset | sha256 |", "|---|---|---|---|---|"]
    for n in names:
        f = file_facts(out / f"{n}.onnx")
        rows.append(f"| `{n}.onnx` | {f['bytes']:,} bytes | {f['params']:,} | {f['opset']} | `{f['sha256']}` |")
    return "\n".join(rows)


def report_md(rep, conf=None):
    lines = [f"Accuracy **{rep['accuracy']:.3f}**, macro F1 {rep['macro_f1']:.3f}, "
             f"{rep['n']} frames.", "",
             "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for c in CLASSES:
        v = rep["classes"][c]
        lines.append(f"| {c} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |")
    lines += ["", "Confusion matrix (rows: true, columns: predicted, same class order):", "",
              "| true \\ pred | " + " | ".join(CLASSES) + " |", "|---" * 5 + "|"]
    for c, row in zip(CLASSES, rep["confusion"]):
        lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
    if conf:
        lines += ["", "Confident predictions (p > 0.8), as a closed-loop rule such as "
                  "`wall_rearing > 0.8` would see them; a bout is a run of consecutive frames "
                  "with the same true behavior:", "",
                  "| class | frames with p > 0.8 | precision of those | true bouts | bouts with ≥ 1 such frame |",
                  "|---|---|---|---|---|"]
        for c in CLASSES:
            v = conf[c]
            prec = "–" if v["frames_above"] == 0 else f"{v['precision']:.3f}"
            lines.append(f"| {c} | {v['frames_above']} | {prec} | {v['bouts']} | "
                         f"{v['bouts_detected']} ({v['bout_recall']:.0%}) |")
    return "\n".join(lines)


def data_facts(work):
    def frames(tag):
        return len(np.load(work / "prep" / f"{tag}_fn.npy", mmap_mode="r"))

    def span(tag):
        fn = np.load(work / "prep" / f"{tag}_fn.npy", mmap_mode="r")
        return (fn[-1] - fn[0] + 1) / FPS

    fast = sum(frames(f"fast{s}") for s in FRAME_SEEDS)
    fast_span = sum(span(f"fast{s}") for s in FRAME_SEEDS)
    return {"fast_frames": fast, "fast_sim_s": fast_span,
            "seq_frames": {s: frames(f"beh{s}") for s in SEQ_TRAIN_SEEDS + [TEST_SEED]},
            "mini_frames": {s: frames(f"mini{s}") for s in SEQ_TRAIN_SEEDS + MINI_ONLY_SEEDS + [TEST_SEED]},
            "seq_s": span(f"beh{TEST_SEED}")}


def stage_cards(a, work):
    out = a.out
    ev = json.loads((work / "eval.json").read_text())
    tt = json.loads((work / "train_times.json").read_text())
    d = data_facts(work)
    cmd = ("python tools/train_models.py --behavd target/release/behavd --work /tmp/models-work "
           "--out models")
    prov = (f"Produced by `tools/train_models.py` ({cmd}); synthetic data from behavd's "
            "`synthetic-behavior` / `synthetic-miniscope` sources. Exported with "
            "`torch.onnx.export(..., opset_version=17, dynamo=False)`, checked with "
            "`onnx.checker`; all scores in this card were computed with onnxruntime on the "
            "exported files.")
    seq_train = ", ".join(str(s) for s in SEQ_TRAIN_SEEDS)
    frame_data = (f"* {d['fast_frames']:,} frames from {len(FRAME_SEEDS)} fast-paced sessions "
                  f"(seeds {FRAME_SEEDS[0]}–{FRAME_SEEDS[-1]}; the recorder keeps runs of frames "
                  f"spread over {d['fast_sim_s'] / 60:.0f} simulated minutes in all), and\n"
                  f"* every 3rd frame of the realtime 30 fps sessions of seeds {seq_train} "
                  f"({', '.join(str(d['seq_frames'][s]) for s in SEQ_TRAIN_SEEDS)} frames, "
                  f"{d['seq_s']:.0f} s each).\n"
                  "* Augmentation: random horizontal and vertical mirroring (ears swapped for the "
                  "pose model).")
    held = (f"Held out: the whole realtime session of seed **{TEST_SEED}** (never used for "
            f"training): {d['seq_frames'][TEST_SEED]} frames, "
            f"{d['seq_s']:.0f} s at 30 fps. Each seed also has its own arena texture and "
            "lighting.")
    synthetic_limit = ("Trained only on behavd's synthetic mouse (a rendered sprite on a rendered "
                       "arena). It will not work on real video without retraining on labelled "
                       "real frames.")

    # behavior_cnn
    e = ev["behavior_cnn"]
    (out / "behavior_cnn.md").write_text(f"""# behavior_cnn — per-frame behavior classifier (behavior camera)

A small CNN (4×4 patch stem, four 3×3 conv/BN/ReLU layers, average + max pooling, 64-d feature
layer, linear classifier) that classifies every behavior-camera frame on its own.

{facts_table(out, ["behavior_cnn"])}

## Input

`frame`, float32 `[1, 1, 120, 160]` (NCHW): the 640×480 gray frame area-downsampled 4× (mean
of each 4×4 block, in float32), times 1/255, then `(x - 0.5) / 0.25`.

## Output

`logits`, float32 `[1, 4]`, class order `explore, grooming, mid_rearing, wall_rearing`;
the runtime applies softmax.

## behavd config

```toml
{CONFIG_BLOCKS["behavior_cnn"]}
```

{PATH_NOTE}

## Training data

{frame_data}
* Loss: cross-entropy with class weights ∝ 1/√(class frequency) and label smoothing 0.02,
  AdamW, cosine schedule, {tt.get("behavior_cnn", 0):.0f} s on 2 CPU cores.

## Held-out scores

{held}

{report_md(e["report"], e["confident"])}

## Limitations

* {synthetic_limit}
* Frame-by-frame: the first frames of a bout (the simulated animal takes ~0.1–0.25 s to
  change posture) and the last frames are where most errors are.
  `behavior_gru` uses temporal context.
* Fixed 640×480 framing of the whole arena (the synthetic camera's); other resolutions must be
  resized by an integer factor to 160×120 by the runtime.

{prov}
""")

    # behavior_gru
    e = ev["behavior_gru"]
    eq = e["equivalence"]
    (out / "behavior_gru.md").write_text(f"""# behavior_gru — streaming recurrent behavior classifier (behavior camera)

The `behavior_cnn` encoder (same architecture, initialised from and frozen at the trained
`behavior_cnn` weights) followed by a GRU cell (64 → 64) and a linear classifier over
`[h, features]`. One frame in, one prediction out, the hidden state carried by the runtime.

Four exports of the **same weights**:

{facts_table(out, ["behavior_gru", "behavior_gru_seq", "behavior_gru_encoder", "behavior_gru_head"])}

| file | inputs | outputs |
|---|---|---|
| `behavior_gru.onnx` | `frame` [1,1,120,160], `h_in` [1,64] | `logits` [1,4], `h_out` [1,64] |
| `behavior_gru_seq.onnx` | `frames` [T,1,120,160] (T dynamic) | `logits` [T,4] (from zero state) |
| `behavior_gru_encoder.onnx` | `frame` [1,1,120,160] | `features` [1,64] |
| `behavior_gru_head.onnx` | `features` [1,64], `h_in` [1,64] | `logits` [1,4], `h_out` [1,64] |

Verified with onnxruntime on {eq["T"]} consecutive held-out frames: step-by-step
`behavior_gru` vs `behavior_gru_seq` max |Δlogits| = {eq["max_abs_diff_step_vs_seq"]:.2e};
vs `behavior_gru_encoder` → `behavior_gru_head` max |Δ| (logits and state) =
{eq["max_abs_diff_step_vs_encoder_head"]:.2e}.

## Input

`frame`: as `behavior_cnn` — the 640×480 gray frame area-downsampled 4×, × 1/255, then
`(x - 0.5) / 0.25`. `h_in`: zeros at the start (and after a gap), then the previous `h_out`.

## Output

`logits` [1,4] (`explore, grooming, mid_rearing, wall_rearing`, softmax applied by the
runtime); `h_out` [1,64] the next state.

## behavd config

Single model:

```toml
{CONFIG_BLOCKS["behavior_gru"]}
```

Two-stage (encoder output consumed by the recurrent head):

```toml
{CONFIG_BLOCKS["behavior_gru_two_stage"]}
```

{PATH_NOTE}

## Training data

* Encoder: `behavior_cnn`'s (see its card), frozen.
* GRU + classifier: the realtime 30 fps sessions of seeds {seq_train}
  ({", ".join(str(d["seq_frames"][s]) for s in SEQ_TRAIN_SEEDS)} frames), split at recording
  gaps; random windows of 48 steps taken at stride 1 (70 %) or 2 (30 %, i.e. 15 fps, as when the
  runtime skips frames), from zero state, loss on steps 5–48; class weights ∝ 1/√frequency;
  multiplicative feature noise; {tt.get("behavior_gru", 0):.0f} s on 2 CPU cores.

## Held-out scores

{held} Run step by step through the whole session from zero state (the state was reset at
each recording gap: {e["gaps"]}), exactly as the runtime feeds it.

{report_md(e["report"], e["confident"])}

## Limitations

* {synthetic_limit}
* Trained on windows of ≤ 96 frames (~3 s); evaluated on a continuous {d["seq_s"]:.0f} s
  stream, which is the scores above, but hours-long streams were not tested.
* Assumes ~30 fps (or 15 fps) input; a very different frame rate changes the dynamics the
  GRU learned.

{prov}
""")

    # miniscope
    e = ev["miniscope_cnn"]
    sp = e["split"]
    sd = sp["seed"]
    xc = ev["miniscope_export_check"]
    oth = ev["miniscope_cnn_other"]
    o42 = oth[str(TEST_SEED)]
    xa = ev["miniscope_xanimal"]
    xv = ev["miniscope_xanimal_val"]
    other_rows = "\n".join(
        f"| {k} | {v['report']['n']} | {v['report']['accuracy']:.3f} | {v['report']['macro_f1']:.3f} | "
        f"{v['majority_baseline_accuracy']:.3f} |" for k, v in oth.items())
    cross_seeds = ", ".join(f"{s}" for s in SEQ_TRAIN_SEEDS + MINI_ONLY_SEEDS if s != MINI_VAL_SEED)
    (out / "miniscope_cnn.md").write_text(f"""# miniscope_cnn — behavior decoded from raw Miniscope frames ("BPNN"), per animal

Decodes the animal's behavior directly from the last 4 raw calcium-imaging frames, without
cell extraction. Like the published approach, the model is **per animal**: it learns where
*this* mouse's neurons are and which of them fire in which behavior. This file is trained
for the simulated animal of seed **{sd}**, the animal of the demo rig (`config/demo.toml`); on
any other animal it is at chance (measured below).

Network: inside it, each frame minus the 4-frame mean (4 channels), the 4-frame mean image
(1) and the 3 frame-to-frame differences ×4 (3) form 8 channels; a 4×4 patch stem (38×38),
three stride-2 3×3 conv/BN/ReLU layers (5×5×64), and the 5×5 map **flattened, not pooled**
(so the classifier sees which part of the field of view is active) into two linear layers
(1600 → 64 → 4).

{facts_table(out, ["miniscope_cnn"])}

Export checked: opset {xc["opset"]}, input `frames` float32 [1,4,152,152], output `logits`
float32 [1,4], no external data; onnxruntime vs the PyTorch model on {xc["windows"]} held-out
windows: max |Δlogits| = {xc["max_abs_diff_ort_vs_torch"]:.1e}.

## Input

`frames`, float32 `[1, 4, 152, 152]`: the last 4 Miniscope frames on the channel axis
(channel 0 oldest, channel 3 newest), each 608×608 area-downsampled 4× (4×4 block mean in
float32), × 1/255 (no mean/std normalisation).

## Output

`logits` [1,4], `explore, grooming, mid_rearing, wall_rearing` (softmax by the runtime); the
label is the behavior at the newest frame's time.

## behavd config

```toml
{CONFIG_BLOCKS["miniscope_cnn"]}
```

{PATH_NOTE}
The source must be a Miniscope filming animal {sd} (in the demo, the `synthetic-miniscope`
source with `seed = {sd}`).

## Training data

* One realtime 30 fps Miniscope session (120 neurons) of seed {sd}: {sp["frames"]} frames,
  {sp["span_s"]:.0f} s; labels from the ground-truth behavior of a 64×48 behavior camera with
  the same seed (same simulated animal, matched by device frame number). Only 4-frame windows
  without a recording gap are used.
* **Temporal split:** trained on the first {sp["train_span_s"]:.0f} s ({sp["train_windows"]}
  windows), then {sp["gap_s"]:.0f} s unused (calcium decays over ~1 s; no window straddles the
  boundary), tested on the last {sp["test_span_s"]:.0f} s ({sp["test_windows"]} windows).
* Batches: 75 % windows of the last 4 frames (the contract), 20 % every 2nd frame (the
  runtime's stack holds the frames it *processed*, so a model that falls behind sees every
  2nd frame), 5 % one frame repeated 4× (the stack just after a reset); gain ×0.95–1.05.
  No spatial augmentation: the layout of the field of view is what the model learns.
* Cross-entropy with class weights ∝ 1/√frequency, label smoothing 0.02, AdamW (weight decay
  1e-3), cosine schedule, {tt.get("miniscope_cnn", 0):.0f} s on 2 CPU cores.

## Held-out scores (same animal, later in time)

Held out: the last {sp["test_span_s"]:.0f} s of the seed-{sd} session (after the
{sp["gap_s"]:.0f} s gap), 4-frame windows at stride 1 as the runtime feeds them.

{report_md(e["report"], e["confident"])}

Always answering `explore` would score accuracy {e["majority_baseline_accuracy"]:.3f} here.
{e["near_change"]["errors"]} of the {e["near_change"]["errors_total"]} errors are in the
{e["near_change"]["windows"]} windows whose newest frame is within 0.5 s of a behavior change.
Fed every 2nd frame instead (a runtime that falls behind): accuracy
{e["stride2"]["accuracy"]:.3f}, macro F1 {e["stride2"]["macro_f1"]:.3f} ({e["stride2"]["n"]} windows).

## Other animals (does not transfer)

The same file on whole sessions of other seeds — each has its own neuron layout, tuning and
tissue:

| seed | windows | accuracy | macro F1 | always-`explore` accuracy |
|---|---|---|---|---|
{other_rows}

On seed {TEST_SEED} in detail:

{report_md(o42["report"], o42["confident"])}

A **cross-animal** model was also tried and measured (`miniscope_xanimal` in
`tools/train_models.py`, not shipped): frame differences only, globally pooled, random
rotations/mirroring, trained on seeds {cross_seeds} (4 animals), {tt.get("miniscope_xanimal", 0):.0f} s.
On animals it never saw it is at chance: seed {TEST_SEED} accuracy {xa["report"]["accuracy"]:.3f}, macro F1
{xa["report"]["macro_f1"]:.3f} (always-`explore` {xa["majority_baseline_accuracy"]:.3f}); seed {MINI_VAL_SEED}
accuracy {xv["report"]["accuracy"]:.3f}, macro F1 {xv["report"]["macro_f1"]:.3f} (always-`explore`
{xv["majority_baseline_accuracy"]:.3f}); its confident predictions (p > 0.8) of grooming and wall
rearing on seed {TEST_SEED} were {xa["confident"]["grooming"]["precision"]:.0%} and
{xa["confident"]["wall_rearing"]["precision"]:.0%} correct. In the simulation, as in BPNN, the
field of view carries behavior mainly through *which* neurons fire, which differs per animal.

## Limitations

* Trained only on behavd's simulated Miniscope (rendered neurons, tissue and brain motion).
  It will not work on a real Miniscope without retraining on labelled frames of that animal.
* **Per animal: retrain for every mouse** (as BPNN does), e.g. with `--miniscope-seed`; on
  another animal it is at chance (above). It also assumes the same field of view: a remounted
  or shifted Miniscope, or a different focal plane, needs retraining.
* Trained on {sp["train_span_s"] / 60:.1f} min of one session and tested on the next
  {sp["test_span_s"] / 60:.1f} min; drift over hours or days (bleaching, tissue changes) is not
  tested.
* The simulated animal of a seed behaves the same in every run, so in the demo rig the first
  ~{sp["train_span_s"] / 60:.0f} min of a session replay the stretch of behavior the model was trained on;
  the held-out scores above are for the stretch after it.
* Calcium lags behavior (rise ~tens of ms, decay ~1 s): most errors are within 0.5 s of a
  behavior change (above), i.e. around the onsets and ends of bouts.

{prov}
""")

    # pose
    e = ev["pose"]
    rows = ["| keypoint | mean (px) | median (px) | p90 (px) | max (px) | mean confidence |",
            "|---|---|---|---|---|---|"]
    for k in KEYPOINTS:
        v = e["keypoints"][k]
        rows.append(f"| {k} | {v['mean_px']:.2f} | {v['median_px']:.2f} | {v['p90_px']:.2f} | "
                    f"{v['max_px']:.1f} | {v['mean_confidence']:.3f} |")
    byb = ", ".join(f"{k} {v:.2f} px" for k, v in e["by_behavior_mean_px"].items())
    (out / "pose.md").write_text(f"""# pose — keypoints of the behavior camera (nose, ears, tail base)

A small heatmap network: 4×4 patch stem (30×40), a stride-2 layer and two dilated 3×3
layers at 15×20, nearest upsampling added back to the 30×40 stem features, one 3×3 layer and a
1×1 output of 4 heatmaps (stride 4 in the 120×160 input).

{facts_table(out, ["pose"])}

## Input

`frame`, float32 `[1, 1, 120, 160]`: as `behavior_cnn` (640×480 gray frame area-downsampled 4×,
× 1/255, `(x - 0.5) / 0.25`).

## Output

`heatmaps`, float32 `[1, 4, 30, 40]` logits, channels `nose, left_ear, right_ear, tail_base`
(left/right from the animal's point of view, as in behavd's ground truth).

Decoding (behavd's `decode = "heatmap"`): per channel the first maximum in row-major order;
sub-pixel refinement by a parabola through the peak and its two neighbours, in x and in y
separately (offset `0.5·(l − r)/(l − 2c + r)`, clamped to ±0.5, skipped at the border or when
the denominator is ≥ 0); heatmap cell → input pixel `u = (hx + 0.5)·4 − 0.5`; input pixel →
frame pixel `x = (u + 0.5)·4 − 0.5`; confidence = sigmoid(peak logit).

Trained with Gaussian targets (σ = 1.2 cells) centred at `hx = (x + 0.5)/16 − 0.5` and a
weighted binary cross-entropy on the logits, so sigmoid(peak) is a meaningful confidence
(≈ 1 on a clear keypoint).

## behavd config

```toml
{CONFIG_BLOCKS["pose"]}
```

{PATH_NOTE}

## Training data

{frame_data}
* {tt.get("pose", 0):.0f} s of AdamW on 2 CPU cores.

## Held-out scores

{held} Error = Euclidean distance in 640×480 frame pixels between the decoded keypoint and
ground truth, decoded exactly as above (1 heatmap cell = 16 frame pixels).

{chr(10).join(rows)}

Mean error by true behavior: {byb}.

## Limitations

* {synthetic_limit}
* Ground truth is the simulated skeleton's projection; during rearing the nose and ears are
  raised and drawn larger, errors are larger there.
* One animal per frame: with several animals the argmax picks one of them per keypoint.

{prov}
""")

    total = sum(tt.values())
    sizes = "\n".join(
        f"| `{n}.onnx` | {(out / f'{n}.onnx').stat().st_size / 1024:.0f} KiB | {desc} |" for n, desc in [
            ("behavior_cnn", "per-frame behavior classifier, behavior camera → 4 classes; card [behavior_cnn.md](behavior_cnn.md)"),
            ("behavior_gru", "recurrent (GRU) behavior classifier, one frame + state per step; card [behavior_gru.md](behavior_gru.md)"),
            ("behavior_gru_seq", "the same weights unrolled over T frames (tests)"),
            ("behavior_gru_encoder", "the same weights, stage 1: frame → 64 features"),
            ("behavior_gru_head", "the same weights, stage 2: features + state → logits + state"),
            ("miniscope_cnn", f"behavior from the last 4 raw Miniscope frames (BPNN idea), **per animal**: trained for seed {a.miniscope_seed}, the demo rig's animal; card [miniscope_cnn.md](miniscope_cnn.md)"),
            ("pose", "4 keypoints (nose, ears, tail base) as heatmaps; card [pose.md](pose.md)")])
    bc = ev["behavior_cnn"]["report"]
    bg = ev["behavior_gru"]["report"]
    mc = ev["miniscope_cnn"]["report"]
    msp = ev["miniscope_cnn"]["split"]
    m42 = ev["miniscope_cnn_other"][str(TEST_SEED)]["report"]
    pk = ev["pose"]["keypoints"]
    (out / "README.md").write_text(f"""# Shipped models

Small ONNX models (opset 17, float32, CPU-friendly) trained on behavd's own synthetic rig, for
the live inference and closed-loop features and their tests. Each has a card with its exact
input preprocessing, outputs, a ready-to-paste `[[model]]` config block, training data,
held-out scores and limitations.

| file | size | what |
|---|---|---|
{sizes}

Held-out scores, computed with onnxruntime on these files. Camera models: the whole session
of seed {TEST_SEED}, an animal and arena never trained on. Miniscope model (per animal): the last
{msp['test_span_s']:.0f} s of its animal's (seed {msp['seed']}) session, after training on the first
{msp['train_span_s']:.0f} s.

| model | held out | accuracy | macro F1 | notes |
|---|---|---|---|---|
| behavior_cnn | seed {TEST_SEED} | {bc['accuracy']:.3f} | {bc['macro_f1']:.3f} | wall_rearing precision {bc['classes']['wall_rearing']['precision']:.3f}, grooming precision {bc['classes']['grooming']['precision']:.3f} |
| behavior_gru | seed {TEST_SEED} | {bg['accuracy']:.3f} | {bg['macro_f1']:.3f} | wall_rearing precision {bg['classes']['wall_rearing']['precision']:.3f}, grooming precision {bg['classes']['grooming']['precision']:.3f} |
| miniscope_cnn | seed {msp['seed']}, last {msp['test_span_s']:.0f} s | {mc['accuracy']:.3f} | {mc['macro_f1']:.3f} | wall_rearing precision {mc['classes']['wall_rearing']['precision']:.3f}; on another animal (seed {TEST_SEED}) {m42['accuracy']:.3f} / {m42['macro_f1']:.3f}, chance: retrain per mouse |
| pose | seed {TEST_SEED} | – | – | mean error {", ".join(f"{k} {v['mean_px']:.1f}" for k, v in pk.items())} px (640×480 frame) |

The `[[model]]` blocks in the cards write `path = "models/<file>"`: model paths are relative
to the directory of the config file, so those blocks fit a config file in the repository root;
the demo rig (`config/demo.toml`, in `config/`) uses `../models/<file>`. The demo rig films
seed {msp['seed']} with both sources: an animal none of the camera models was trained on, and the
animal the per-animal Miniscope model was trained for.

All were produced by one script, [`tools/train_models.py`](../tools/train_models.py) (run by
hand, never in CI; ~{total / 60:.0f} min of training on 2 CPU cores, no GPU needed), which
generates the data with `behavd run`, trains, exports, verifies with onnxruntime and writes
these cards. They only know the synthetic mouse: retrain on labelled real data before using
them on a real rig.
""")
    log("cards written")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--behavd", default="target/release/behavd")
    ap.add_argument("--work", default="/tmp/models-work", type=Path)
    ap.add_argument("--out", default="models", type=Path)
    ap.add_argument("--stages", default="gen,prep,train,export,eval,cards",
                    help="comma-separated; gen_animal / prep_animal redo only the per-animal "
                         "Miniscope session (gen / prep include them)")
    ap.add_argument("--seq-seconds", type=float, default=240.0)
    ap.add_argument("--fast-seconds", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models",
                    default="behavior_cnn,behavior_gru,pose,miniscope_cnn,miniscope_xanimal",
                    help="models the train, export and eval stages handle")
    ap.add_argument("--miniscope-seed", type=int, default=MINI_ANIMAL_SEED,
                    help="the animal of the per-animal Miniscope model")
    ap.add_argument("--animal-seconds", type=float, default=360.0,
                    help="length of the per-animal session")
    ap.add_argument("--mini-train-frac", type=float, default=0.65,
                    help="per-animal model: train on this first fraction of the session")
    ap.add_argument("--mini-gap-s", type=float, default=5.0,
                    help="seconds between the train and test parts left unused")
    ap.add_argument("--budget-cnn", type=float, default=350.0,
                    help="wall-clock training seconds (each model)")
    ap.add_argument("--budget-gru", type=float, default=75.0)
    ap.add_argument("--budget-pose", type=float, default=300.0)
    ap.add_argument("--budget-mini", type=float, default=240.0)
    ap.add_argument("--budget-xanimal", type=float, default=300.0)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    stages = a.stages.split(",")
    for name in ["gen", "gen_animal", "prep", "prep_animal", "train", "export", "eval", "cards"]:
        if name in stages:
            t0 = time.time()
            globals()[f"stage_{name}"](a, a.work)
            log(f"stage {name} done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
