#!/usr/bin/env bash
# Boots the test guest (TCG only) with SHARE_DIR as its 9p share, runs SHARE_DIR/run.sh there
# and exits with that script's exit code (125 if the guest wrote none: crash, watchdog).
#   tests/vm/run-vm.sh SHARE_DIR [TIMEOUT_S]
# The console goes to stdout, and a copy to SHARE_DIR/console.log. The guest powers itself off
# after TIMEOUT_S (default 240); the host kills qemu 30 s later if it has not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
vm=${BEHAVD_VM_DIR:-$root/.behavd/vm}
share=$(cd "${1:?usage: run-vm.sh SHARE_DIR [TIMEOUT_S]}" && pwd)
limit=${2:-240}
for f in "$vm/vmlinux" "$vm/initramfs.cpio.gz"; do
  [ -f "$f" ] || { echo "run-vm: $f missing: run tests/vm/prepare.sh (or scripts/setup.sh --test)" >&2; exit 126; }
done
command -v qemu-system-x86_64 >/dev/null ||
  { echo "run-vm: qemu-system-x86_64 missing: apt-get install qemu-system-x86 (or scripts/setup.sh --test)" >&2; exit 126; }
rm -f "$share/run.rc"
# Never -accel kvm / -cpu host: this host's /dev/kvm cannot run a stock kernel (PVM).
set +e
timeout -k 5 $((limit + 30)) qemu-system-x86_64 -accel tcg -nographic -no-reboot -m 1536 -smp 2 \
  -kernel "$vm/vmlinux" -initrd "$vm/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet rig.timeout=$limit" \
  -virtfs "local,path=$share,mount_tag=rig,security_model=none,id=rig" </dev/null 2>&1 | tee "$share/console.log"
qemu_rc=${PIPESTATUS[0]}
set -e
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
  echo "run-vm: qemu killed after $((limit + 30)) s" >&2
fi
if [ -s "$share/run.rc" ]; then
  exit "$(cat "$share/run.rc")"
fi
echo "run-vm: the guest wrote no exit code (qemu exit $qemu_rc)" >&2
exit 125
