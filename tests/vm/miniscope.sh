#!/bin/sh
# The Miniscope scenario of tests/vm_miniscope.rs, run in the guest from the 9p share (/mnt):
# the project's look-alike DAQ (04b4:00f9, attached through vhci-hcd so the real uvcvideo binds)
# driven by behavd's own binary with a kind = "miniscope" source. The look-alike logs every I2C
# packet its emulated DAQ executes to /mnt/out/i2c.jsonl and skips every 50th frame on purpose.
export LD_LIBRARY_PATH=/mnt/lib HDF5_USE_FILE_LOCKING=FALSE
O=/mnt/out
modprobe vhci-hcd && modprobe uvcvideo || { echo "MINISCOPE modules missing"; exit 2; }
/mnt/bin/behavd-miniscope-lookalike --log "$O/i2c.jsonl" --skip-every 50 --seconds 300 \
  2> "$O/lookalike.err" &
la=$!
i=0
while [ ! -e /dev/video0 ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
[ -e /dev/video0 ] || { echo "MINISCOPE no /dev/video0"; cat "$O/lookalike.err"; exit 3; }
echo "MINISCOPE attached"
mkdir -p /tmp/ms
/mnt/bin/behavd run --config /mnt/miniscope.toml --duration 15 --json --output /tmp/ms \
  > "$O/miniscope.json" 2> "$O/miniscope.err"
echo "SCENARIO miniscope rc=$?"
cp /tmp/ms/*.nwb "$O/miniscope.nwb" 2>/dev/null
kill $la
wait $la
echo "MINISCOPE lookalike exit=$?"
exit 0
