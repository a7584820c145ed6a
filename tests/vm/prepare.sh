#!/usr/bin/env bash
# Prepares the QEMU + vivid test rig (see tests/vm/README.md), cached under .behavd/vm:
#   .behavd/vm/debs/                     Debian's kernel image package and busybox-static
#   .behavd/vm/kernel-<abi>/             the kernel package, extracted (not installed)
#   .behavd/vm/vmlinux                   the uncompressed kernel (booted PVH-direct: no XZ under TCG)
#   .behavd/vm/initramfs.cpio.gz         busybox, the modules the tests need, v4l2-ctl, /init
#   .behavd/vm/abi                       the kernel ABI the files above were made for
# Everything comes from Debian's archive through apt. Host packages installed when missing:
# qemu-system-x86 v4l-utils kmod cpio python3. Re-running is cheap: nothing is redone unless the
# kernel ABI or this script (or the guest init) changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
vm=${BEHAVD_VM_DIR:-$root/.behavd/vm}
mkdir -p "$vm/debs"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in qemu-system-x86 v4l-utils kmod cpio python3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
updated=0
if [ "${#missing[@]}" -gt 0 ]; then
  echo "vm: installing ${missing[*]}"
  as_root apt-get update -qq
  updated=1
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The kernel ABI package linux-image-amd64 currently points at (e.g. linux-image-6.1.0-56-amd64).
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$kpkg" ] && [ "$updated" = 0 ]; then
  as_root apt-get update -qq
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$kpkg" ] || { echo "vm: apt-cache knows no linux-image-amd64 (run apt-get update)" >&2; exit 1; }
abi=${kpkg#linux-image-}

stamp="$abi $(cat "$here/prepare.sh" "$here/init" | sha256sum | cut -c1-16)"
if [ -f "$vm/abi" ] && [ "$(cat "$vm/abi")" = "$stamp" ] && [ -f "$vm/vmlinux" ] && [ -f "$vm/initramfs.cpio.gz" ]; then
  echo "vm: assets for $abi are up to date in $vm"
  exit 0
fi

echo "vm: preparing the guest for kernel $abi in $vm"
cd "$vm/debs"
for p in "$kpkg" busybox-static; do
  ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download -q "$p" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
  ls "${p}"_*.deb >/dev/null 2>&1 || { echo "vm: apt-get download $p failed" >&2; exit 1; }
done
kdeb=$(ls -t "${kpkg}"_*.deb | head -1)
bdeb=$(ls -t busybox-static_*.deb | head -1)

kroot="$vm/kernel-$abi"
if [ ! -f "$kroot/lib/modules/$abi/modules.dep" ]; then
  rm -rf "$kroot"
  dpkg -x "$kdeb" "$kroot"
  depmod -b "$kroot" "$abi"   # the .deb ships no modules.dep
fi

# The uncompressed kernel: the bzImage's XZ payload. CONFIG_PVH lets qemu boot the ELF directly.
python3 - "$kroot/boot/vmlinuz-$abi" "$vm/vmlinux.tmp" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
at = data.find(b"\xfd7zXZ\x00")
if at < 0:
    sys.exit(f"{sys.argv[1]}: no XZ payload (kernel compression changed?)")
open(sys.argv[2], "wb").write(lzma.LZMADecompressor().decompress(data[at:]))
PY
mv "$vm/vmlinux.tmp" "$vm/vmlinux"

# The initramfs.
st="$vm/initramfs.staging"
rm -rf "$st"
mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,mnt,etc,lib/modules/"$abi"}
bbroot="$vm/busybox"
rm -rf "$bbroot"; dpkg -x "$bdeb" "$bbroot"
cp "$bbroot/bin/busybox" "$st/bin/busybox"
for applet in $("$st/bin/busybox" --list); do
  [ -e "$st/bin/$applet" ] || ln -s busybox "$st/bin/$applet"
done
# vivid and what it needs; the 9p share over virtio; USB/IP + uvcvideo for UVC look-alikes.
mods="vivid 9p 9pnet_virtio virtio_pci vhci-hcd uvcvideo"
for m in $mods; do
  modprobe -d "$kroot" -S "$abi" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | sort -u | while read -r ko; do
  rel=${ko#"$kroot"/}
  mkdir -p "$st/$(dirname "$rel")"
  cp "$ko" "$st/$rel"
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
  cp "$kroot/lib/modules/$abi/$f" "$st/lib/modules/$abi/"
done
depmod -b "$st" "$abi"
# v4l2-ctl with its shared libraries (dynamic; the loader comes along).
for b in /usr/bin/v4l2-ctl; do
  cp "$b" "$st/usr/bin/"
  for lib in $(ldd "$b" | grep -o '/[^ ]*'); do
    mkdir -p "$st$(dirname "$lib")"
    cp -L "$lib" "$st$lib"
  done
done
cp "$here/init" "$st/init"
chmod +x "$st/init"
(cd "$st" && find . -print0 | cpio --null -o -H newc --quiet | gzip -6) > "$vm/initramfs.cpio.gz.tmp"
mv "$vm/initramfs.cpio.gz.tmp" "$vm/initramfs.cpio.gz"
rm -rf "$st" "$bbroot"
echo "$stamp" > "$vm/abi"
echo "vm: ready ($(du -h "$vm/vmlinux" | cut -f1) vmlinux, $(du -h "$vm/initramfs.cpio.gz" | cut -f1) initramfs)"
