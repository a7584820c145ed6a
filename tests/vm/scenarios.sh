#!/bin/sh
# The V4L2 scenarios of tests/vm_v4l2.rs, run in the guest from the 9p share (/mnt): behavd's
# own binary (/mnt/bin/behavd, libraries in /mnt/lib) against vivid, one session per scenario.
# Each writes /mnt/out/<name>.{json,err,nwb} and prints
# "SCENARIO <name> rc=<behavd's exit> uptime=<guest seconds>".
export LD_LIBRARY_PATH=/mnt/lib HDF5_USE_FILE_LOCKING=FALSE
B=/mnt/bin/behavd
O=/mnt/out

save() { # dir name: the session file into the share (dd with 1 MiB blocks: 3-4x faster over
  # 9p under TCG than busybox cp)
  for f in "$1"/*.nwb; do dd if="$f" of="$O/$2.nwb" bs=1M 2>/dev/null; done
}
session() { # name duration_s
  mkdir -p "/tmp/$1"
  "$B" run --config "/mnt/$1.toml" --duration "$2" --json --output "/tmp/$1" > "$O/$1.json" 2> "$O/$1.err"
  echo "SCENARIO $1 rc=$? uptime=$(cut -d' ' -f1 /proc/uptime)"
  save "/tmp/$1" "$1"
  rm -rf "/tmp/$1"
}
# vivid with one capture node: an HDMI input (DV timings) or a webcam input (discrete sizes).
hdmi() { modprobe vivid n_devs=1 node_types=0x1 num_inputs=1 input_types=0x3; }
webcam() { modprobe vivid n_devs=1 node_types=0x1 num_inputs=1 input_types=0x0; }

# 1. A 608x608 GREY "sensor" at exactly 30 fps: CEA 720p30 timings cropped to 608x608.
hdmi
v4l2-ctl -d0 --set-dv-bt-timings index=5
v4l2-ctl -d0 --set-fmt-video=width=608,height=608,pixelformat=GREY \
  --set-selection target=crop,left=336,top=56,width=608,height=608 --set-ctrl osd_text_mode=1
session grey608 10
rmmod vivid

# 2. YUYV 640x360 with padded rows (bytesperline 1408 > 1280), stored as 8-bit luma; the
#    reference frame is captured by v4l2-ctl with packed rows. No OSD: every frame is the same.
webcam
v4l2-ctl -d0 --set-ctrl osd_text_mode=2 \
  --set-fmt-video=width=640,height=360,pixelformat=YUYV,bytesperline=1280 --set-parm=30 \
  --stream-mmap --stream-count=2 --stream-to="$O/reference.yuyv"
session yuyv_stride 6
"$B" devices --json > "$O/devices.json" 2>&1
echo "DEVICES listed uptime=$(cut -d' ' -f1 /proc/uptime)"
# An unknown control name: behavd refuses to start and lists the device's controls.
"$B" run --config /mnt/bad_control.toml --duration 2 > /dev/null 2> "$O/bad_control.err"
echo "SCENARIO bad_control rc=$? uptime=$(cut -d' ' -f1 /proc/uptime)"
rmmod vivid

# 3. vivid drops 10 % of the buffers (set by behavd from the config's controls).
webcam
session drops 6
rmmod vivid

# 4. The stream stalls (vivid drops every buffer for 2 s), then the device goes away (driver
#    unbound, module removed and loaded again) in the same session.
webcam
mkdir -p /tmp/replug
"$B" run --config /mnt/replug.toml --duration 18 --json --output /tmp/replug > "$O/replug.json" 2> "$O/replug.err" &
pid=$!
# Act 3 s into the recording (behavd takes a few seconds to start under TCG).
i=0
until grep -q "recording started" "$O/replug.err" 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && { echo "REPLUG behavd did not start"; break; }
  sleep 0.2
done
sleep 3
v4l2-ctl -d0 --set-ctrl percentage_of_dropped_buffers=100 && echo "REPLUG stalled"
sleep 2
v4l2-ctl -d0 --set-ctrl percentage_of_dropped_buffers=0 && echo "REPLUG flowing"
sleep 4
echo vivid.0 > /sys/bus/platform/drivers/vivid/unbind && echo "REPLUG unbound"
# rmmod succeeds only once behavd has closed the vanished node.
i=0
until rmmod vivid 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 50 ] && { echo "REPLUG rmmod still refused"; break; }
  sleep 0.1
done
echo "REPLUG removed after ${i} retries"
sleep 1
webcam && echo "REPLUG reloaded"
wait $pid
echo "SCENARIO replug rc=$? uptime=$(cut -d' ' -f1 /proc/uptime)"
save /tmp/replug replug
rmmod vivid
exit 0
