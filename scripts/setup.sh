#!/usr/bin/env bash
# Installs what behavd needs on a fresh Debian 12 machine, skipping what is already there.
#   scripts/setup.sh          system packages + the ONNX Runtime library (for running behavd)
#   scripts/setup.sh --test   the same + a Python venv (.venv) with the NWB readers the tests use,
#                             the stimulator firmware + simavr harness (firmware-interface/), and
#                             the QEMU + vivid guest of the V4L2 tests (tests/vm/prepare.sh) and
#                             systemd-nspawn for the service tests
set -euo pipefail
cd "$(dirname "$0")/.."

want_test_env=0
[ "${1:-}" = "--test" ] && want_test_env=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# System packages: libhdf5 (the session files) and its tools (h5dump, h5clear); libclang for
# bindgen in the `v4l` crate (V4L2 cameras).
packages=(pkg-config libhdf5-dev hdf5-tools python3-venv libclang-dev)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)
# Tests: the stimulator firmware toolchain (avr-gcc + the Arduino core) and simavr for its harness.
if [ "$want_test_env" = 1 ]; then
  packages+=(make g++ gcc-avr avr-libc binutils-avr arduino-core-avr libsimavr-dev libsimavr2)
  # The V4L2 test guest: QEMU (TCG), v4l2-ctl for the guest, kmod/cpio to build its initramfs.
  packages+=(qemu-system-x86 v4l-utils kmod cpio)
  # promtool (Prometheus' own checker) for the /metrics exposition test.
  packages+=(prometheus)
  # The service tests boot the machine's own systemd as PID 1 of a container (systemd-nspawn)
  # and parse the udev rules with udevadm.
  packages+=(systemd-container udev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ONNX Runtime shared library, taken from the PyPI wheel (no build-time download, no Python at run time).
ORT_VERSION=1.31.1
ORT_DIR=.behavd/onnxruntime/lib
if [ ! -e "$ORT_DIR/libonnxruntime.so.$ORT_VERSION" ]; then
  echo "setup: fetching ONNX Runtime $ORT_VERSION"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 "onnxruntime==$ORT_VERSION" -d "$tmp"
  mkdir -p "$ORT_DIR"
  python3 - "$tmp" "$ORT_DIR" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "onnxruntime-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime"):
            with z.open(name) as src, open(os.path.join(sys.argv[2], base), "wb") as dst:
                dst.write(src.read())
PY
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so.1"
  ln -sf libonnxruntime.so.1 "$ORT_DIR/libonnxruntime.so"
  rm -rf "$tmp"
fi

# Python readers for the tests (h5py, pynwb, nwbinspector), in a project-local venv.
if [ "$want_test_env" = 1 ]; then
  stamp=.venv/.requirements.installed
  if [ ! -x .venv/bin/python ] || ! cmp -s tests/python/requirements.txt "$stamp"; then
    echo "setup: creating .venv with the test readers"
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -r tests/python/requirements.txt
    cp tests/python/requirements.txt "$stamp"
  fi
fi

# The stimulator test rig: the reference firmware (avr-gcc), its host codec test, and the simavr
# harness the hardware-in-the-loop tests drive (the Makefile installs gcc-avr, avr-libc,
# arduino-core-avr and libsimavr-dev from Debian when missing).
if [ "$want_test_env" = 1 ]; then
  echo "setup: building the stimulator firmware and its simavr harness"
  NO_APT=1 make -s -C firmware-interface all harness test
fi

# The V4L2 test rig: Debian's kernel (vivid) booted under QEMU, assets cached in .behavd/vm.
if [ "$want_test_env" = 1 ]; then
  tests/vm/prepare.sh
fi
