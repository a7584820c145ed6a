#!/bin/sh
# The Miniscope scenario of tests/vm_miniscope.rs, run in the guest from the 9p share (/mnt):
# the project's look-alike DAQ (04b4:00f9, attached through vhci-hcd so the real uvcvideo binds)
# driven by behavd's own binary with a kind = "miniscope" source. The look-alike logs every I2C
# packet its emulated DAQ executes to /mnt/out/i2c.jsonl and skips every 50th frame on purpose.
# Mid-session the look-alike is stopped (the device vanishes) and a new one attached
# (/mnt/out/i2c2.jsonl): behavd must reconnect by itself and run the connect ritual again.
export LD_LIBRARY_PATH=/mnt/lib HDF5_USE_FILE_LOCKING=FALSE
O=/mnt/out
modprobe vhci-hcd && modprobe uvcvideo || { echo "MINISCOPE modules missing"; exit 2; }
wait_video() { i=0; while [ ! -e /dev/video0 ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done; [ -e /dev/video0 ]; }
wait_gone() { i=0; while [ -e /dev/video0 ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done; [ ! -e /dev/video0 ]; }
/mnt/bin/behavd-miniscope-lookalike --log "$O/i2c.jsonl" --skip-every 50 --seconds 300 \
  2> "$O/lookalike.err" &
la=$!
wait_video || { echo "MINISCOPE no /dev/video0"; cat "$O/lookalike.err"; exit 3; }
echo "MINISCOPE attached"
# What behavd devices says of it (the ABI query is valid only before streaming).
/mnt/bin/behavd devices --json > "$O/devices.json" 2> "$O/devices.err"
mkdir -p /tmp/ms
/mnt/bin/behavd run --config /mnt/miniscope.toml --duration 24 --json --output /tmp/ms \
  > "$O/miniscope.json" 2> "$O/miniscope.err" &
behavd=$!
# Unplug 8 s into the recording: the look-alike detaches; a new one comes back 1 s later.
i=0
until grep -q "recording started" "$O/miniscope.err" 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 200 ] && { echo "MINISCOPE behavd did not start"; break; }
  sleep 0.2
done
sleep 8
kill $la
wait $la
wait_gone && echo "MINISCOPE unplugged"
sleep 1
/mnt/bin/behavd-miniscope-lookalike --log "$O/i2c2.jsonl" --skip-every 50 --seconds 300 \
  2> "$O/lookalike2.err" &
la=$!
wait_video && echo "MINISCOPE replugged"
wait $behavd
echo "SCENARIO miniscope rc=$?"
# dd with 1 MiB blocks: busybox cp is 3-4x slower over 9p.
for f in /tmp/ms/*.nwb; do dd if="$f" of="$O/miniscope.nwb" bs=1M 2>/dev/null; done
kill $la
wait $la
echo "MINISCOPE lookalike exit=$?"
exit 0
