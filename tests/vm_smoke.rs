//! The V4L2 test guest itself: Debian's kernel boots under QEMU, loads vivid and streams with
//! v4l2-ctl into the 9p share, and the exit code of the guest's script comes back.

#[path = "vm/rig.rs"]
mod rig;

#[test]
fn guest_streams_from_vivid_with_v4l2_ctl() {
    let share = rig::Share::new("vm_smoke");
    share.write(
        "run.sh",
        r#"#!/bin/sh
set -e
modprobe vivid n_devs=1 node_types=0x1 num_inputs=1 input_types=0x0
echo "CARD $(cat /sys/class/video4linux/video0/name)"
v4l2-ctl -d /dev/video0 --set-fmt-video=width=640,height=480,pixelformat=YUYV --set-parm=25 \
  --stream-mmap --stream-count=10 --stream-to=/mnt/out/frames.yuyv
exit 7
"#,
        true,
    );
    let run = share.boot(60);
    assert_eq!(run.rc, 7, "run.sh's exit code comes back:\n{}", run.console);
    assert_eq!(
        run.lines_with("CARD ").collect::<Vec<_>>(),
        ["vivid-000-vid-cap"],
        "{}",
        run.console
    );
    let bytes = std::fs::metadata(share.path().join("out/frames.yuyv"))
        .expect("v4l2-ctl wrote the frames into the share")
        .len();
    assert_eq!(bytes, 10 * 640 * 480 * 2, "ten 640x480 YUYV frames");
    eprintln!(
        "guest boot + 10 frames: {:.1} s wall",
        run.wall.as_secs_f64()
    );
}
