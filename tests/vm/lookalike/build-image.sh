#!/bin/sh
# Builds (once) the kernel + initramfs for the Miniscope look-alike proof under
# .behavd/vm-lookalike/ (git-ignored): Debian's own kernel package (ABI resolved through
# linux-image-amd64), busybox-static, the modules vhci-hcd + uvcvideo + 9p, v4l2-ctl and
# its libraries. Needs: apt-get, dpkg, depmod (kmod), cpio, gzip, python3, v4l-utils.
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
CACHE=$ROOT/.behavd/vm-lookalike
mkdir -p "$CACHE/debs"
cd "$CACHE"

KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
KV=${KPKG#linux-image-}
echo "kernel package: $KPKG (ABI $KV)"
if ! ls debs/"$KPKG"_*.deb >/dev/null 2>&1 || ! ls debs/busybox-static_*.deb >/dev/null 2>&1; then
    (cd debs && apt-get download "$KPKG" busybox-static)
fi
if [ ! -d kpkg/lib/modules/"$KV" ]; then
    rm -rf kpkg && dpkg -x debs/"$KPKG"_*.deb kpkg
    depmod -b kpkg "$KV"  # the .deb ships no modules.dep
fi
if [ ! -f vmlinux ]; then
    # Uncompressed ELF: qemu boots it PVH-direct, skipping ~6 s of XZ under TCG.
    python3 -c "import lzma,sys;d=open(sys.argv[1],'rb').read();o=d.find(b'\xfd7zXZ\x00');open('vmlinux','wb').write(lzma.LZMADecompressor().decompress(d[o:]))" kpkg/boot/vmlinuz-"$KV"
fi
if [ ! -d bb ]; then dpkg -x debs/busybox-static_*.deb bb; fi

ST=$CACHE/initramfs.d
rm -rf "$ST" && mkdir -p "$ST"/bin "$ST"/sbin "$ST"/usr/bin "$ST"/proc "$ST"/sys "$ST"/dev "$ST"/tmp "$ST"/mnt "$ST"/lib/modules/"$KV"
cp bb/bin/busybox "$ST"/bin/
for a in $("$ST"/bin/busybox --list); do [ -e "$ST/bin/$a" ] || ln -s busybox "$ST/bin/$a"; done
MODS="vhci-hcd uvcvideo 9p 9pnet_virtio virtio_pci"
for m in $MODS; do modprobe -d "$CACHE/kpkg" -S "$KV" --show-depends "$m" | awk '$1=="insmod"{print $2}'; done | sort -u |
    while read -r ko; do rel=${ko#"$CACHE"/kpkg/}; mkdir -p "$ST/$(dirname "$rel")"; cp "$ko" "$ST/$rel"; done
cp kpkg/lib/modules/"$KV"/modules.order kpkg/lib/modules/"$KV"/modules.builtin kpkg/lib/modules/"$KV"/modules.builtin.modinfo "$ST"/lib/modules/"$KV"/
depmod -b "$ST" "$KV"
for b in /usr/bin/v4l2-ctl /usr/bin/v4l2-compliance; do
    cp "$b" "$ST"/usr/bin/
    for l in $(ldd "$b" | grep -o '/[^ ]*'); do mkdir -p "$ST$(dirname "$l")"; cp -L "$l" "$ST$l"; done
done
cp "$ROOT"/tests/vm/lookalike/init "$ST"/init
chmod +x "$ST"/init
(cd "$ST" && find . -print0 | cpio --null -o -H newc --quiet | gzip -6) > initramfs.cpio.gz
echo "built $CACHE/vmlinux and $CACHE/initramfs.cpio.gz ($(du -h initramfs.cpio.gz | cut -f1))"
