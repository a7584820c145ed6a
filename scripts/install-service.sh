#!/usr/bin/env bash
# Installs behavd as a systemd service on this machine (Debian 12) and starts it.
#   scripts/install-service.sh [--binary FILE] [--onnxruntime DIR] [--rig FILE] [--no-start]
#
#   --binary FILE       the behavd executable to install (default: target/release/behavd,
#                       built with scripts/setup.sh + cargo when missing)
#   --onnxruntime DIR   directory holding libonnxruntime.so* (default: .behavd/onnxruntime/lib,
#                       fetched by scripts/setup.sh)
#   --rig FILE          rig config to install as /etc/behavd/rig.toml when that does not exist
#                       (default: the demo rig, its model paths made absolute)
#   --no-start          install and enable, but do not start now
#
# What goes where (docs/service.md):
#   /usr/local/bin/behavd                           the binary
#   /usr/local/lib/behavd/libonnxruntime.so*        ONNX Runtime (the unit's ORT_DYLIB_PATH)
#   /usr/local/share/behavd/{models,examples}/      the shipped models and the demo rig
#   /usr/local/share/doc/behavd/service.md          docs/service.md (`systemctl help behavd`)
#   /usr/local/lib/sysusers.d/behavd.conf           the behavd user, in the groups video, dialout
#   /usr/local/lib/systemd/system/behavd.service    the unit (site changes: systemctl edit behavd)
#   /etc/udev/rules.d/70-behavd.rules               /dev/behavd/miniscope-*, /dev/behavd/stim-*
#   /etc/behavd/rig.toml                            the rig (kept when it exists)
#   /var/lib/behavd/sessions/                       session files (created by systemd)
# Running it again upgrades the binary, unit and rules, and restarts the service.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
ort_dir=.behavd/onnxruntime/lib
rig=""
start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --onnxruntime) ort_dir=$2; shift 2 ;;
    --rig) rig=$2; shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "install-service: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
die() { echo "install-service: $*" >&2; exit 1; }

command -v systemctl >/dev/null || die "systemctl not found: this machine does not run systemd"
command -v systemd-sysusers >/dev/null || die "systemd-sysusers not found (Debian package systemd)"

if [ -z "$binary" ]; then
  binary=target/release/behavd
  if [ ! -x "$binary" ]; then
    scripts/setup.sh
    cargo build --release --quiet
  fi
fi
[ -x "$binary" ] || die "$binary: not an executable"
ls "$ort_dir"/libonnxruntime.so* >/dev/null 2>&1 \
  || die "$ort_dir: no libonnxruntime.so* there (run scripts/setup.sh, or pass --onnxruntime DIR)"
[ -z "$rig" ] || [ -f "$rig" ] || die "$rig: no such rig config"

prefix=/usr/local
share=$prefix/share/behavd
lib=$prefix/lib/behavd
unit_dir=$prefix/lib/systemd/system

echo "install-service: the behavd user and its groups"
as_root install -D -m 0644 packaging/systemd/behavd.sysusers "$prefix/lib/sysusers.d/behavd.conf"
as_root systemd-sysusers "$prefix/lib/sysusers.d/behavd.conf"

echo "install-service: binary, ONNX Runtime, models and the demo rig under $prefix"
as_root install -D -m 0755 "$binary" "$prefix/bin/behavd"
as_root install -d -m 0755 "$lib" "$share/models" "$share/examples"
as_root cp -P "$ort_dir"/libonnxruntime*.so* "$lib/"
as_root install -m 0644 models/*.onnx models/*.md "$share/models/"
as_root install -m 0644 config/demo.toml "$share/examples/demo.toml"
as_root install -D -m 0644 docs/service.md "$prefix/share/doc/behavd/service.md"

if [ ! -e /etc/behavd/rig.toml ]; then
  as_root install -d -m 0755 /etc/behavd
  if [ -n "$rig" ]; then
    echo "install-service: /etc/behavd/rig.toml from $rig"
    as_root install -m 0644 "$rig" /etc/behavd/rig.toml
  else
    echo "install-service: /etc/behavd/rig.toml from the demo rig (edit it for your rig)"
    sed -e "s|\"\.\./models/|\"$share/models/|" \
        -e 's|^output_dir = .*|output_dir = "/var/lib/behavd/sessions"|' \
        config/demo.toml | as_root tee /etc/behavd/rig.toml >/dev/null
  fi
else
  echo "install-service: keeping the existing /etc/behavd/rig.toml"
fi
echo "install-service: checking /etc/behavd/rig.toml"
ORT_DYLIB_PATH="$lib/libonnxruntime.so" "$prefix/bin/behavd" check --config /etc/behavd/rig.toml >/dev/null \
  || die "/etc/behavd/rig.toml is not a valid rig (the errors are above); fix it and run this again"

echo "install-service: the unit and the udev rules"
as_root install -D -m 0644 packaging/systemd/behavd.service "$unit_dir/behavd.service"
as_root install -D -m 0644 packaging/udev/70-behavd.rules /etc/udev/rules.d/70-behavd.rules
if command -v udevadm >/dev/null && [ -S /run/udev/control ]; then   # udevd is running
  as_root udevadm control --reload
  as_root udevadm trigger --action=add --subsystem-match=tty --subsystem-match=video4linux
fi

as_root systemctl daemon-reload
if [ "$start" = 1 ]; then
  echo "install-service: enabling and (re)starting behavd.service"
  as_root systemctl enable --quiet behavd.service
  as_root systemctl restart behavd.service
  as_root systemctl --no-pager --lines=0 status behavd.service || true
else
  as_root systemctl enable --quiet behavd.service
  echo "install-service: enabled; start it with: sudo systemctl start behavd"
fi
cat <<EOF
install-service: done.
  status:   systemctl status behavd     logs: journalctl -u behavd -f
  control:  behavd ctl status           (as root, or as a member of the group behavd:
                                         sudo usermod -aG behavd \$USER, then log in again)
  sessions: /var/lib/behavd/sessions/
EOF
