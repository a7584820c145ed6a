#!/bin/sh
# Boots the look-alike VM once (TCG only) and runs guest.sh in it.
# Usage: tests/vm/lookalike/run.sh [BINARY] [TIMEOUT_S]
#   BINARY defaults to target/debug/behavd-miniscope-lookalike (build it first).
# Results land in .behavd/vm-lookalike/share/out/: guest.log (the scenario's output),
# i2c*.jsonl (the look-alike's logs), console.log (serial console), guest.rc.
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
CACHE=$ROOT/.behavd/vm-lookalike
BIN=${1:-$ROOT/target/debug/behavd-miniscope-lookalike}
TMO=${2:-400}
[ -f "$CACHE/initramfs.cpio.gz" ] && [ -f "$CACHE/vmlinux" ] || sh "$ROOT/tests/vm/lookalike/build-image.sh"
SHARE=$CACHE/share
rm -rf "$SHARE" && mkdir -p "$SHARE/out" "$SHARE/lib"
# The binary and the libraries it links (the initramfs's loader runs it).
strip -o "$SHARE/behavd-miniscope-lookalike" "$BIN"
for l in $(ldd "$BIN" | grep -o '/[^ ]*'); do cp -L "$l" "$SHARE/lib/"; done
cp "$ROOT/tests/vm/lookalike/guest.sh" "$SHARE/guest.sh"
chmod +x "$SHARE/guest.sh"
START=$(date +%s.%N)
# TCG only: the host's /dev/kvm is a PVM hypervisor that cannot run a stock kernel.
timeout "$((TMO + 30))" qemu-system-x86_64 -accel tcg -nographic -no-reboot -m 1024 -smp 2 \
    -kernel "$CACHE/vmlinux" -initrd "$CACHE/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet rig.timeout=$TMO" \
    -virtfs local,path="$SHARE",mount_tag=rig,security_model=none,id=rig \
    > "$SHARE/out/console.log" 2>&1 || true
END=$(date +%s.%N)
echo "qemu wall: $(echo "$END - $START" | bc) s"
grep '^RIG:' "$SHARE/out/console.log" || true
RC=$(cat "$SHARE/out/guest.rc" 2>/dev/null || echo 125)
echo "guest.sh rc=$RC; output: $SHARE/out/guest.log"
exit "$RC"
