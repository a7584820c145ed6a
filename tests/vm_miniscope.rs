//! behavd's Miniscope source against the project's look-alike DAQ bound by the real `uvcvideo`
//! driver in Debian's kernel under QEMU (`tests/vm/`, `docs/miniscope-lookalike.md`): behavd
//! runs the connect ritual and sets LED, EWL, gain and frame rate; the look-alike's emulated DAQ
//! must have executed exactly the I2C packets the protocol facts give, in order, and the LEDs-off
//! packets at shutdown; it skips every 50th frame on purpose and behavd's DAQ counter must
//! account for every frame (recorded + counted as lost = the counter's span). Mid-session the
//! look-alike goes away and a new one is attached: behavd reconnects by itself, runs the ritual
//! again on the new device and records the outage.

mod common;
#[path = "vm/rig.rs"]
mod rig;

use std::path::Path;
use std::sync::OnceLock;

use behavd::source::miniscope::catalog::builtin_catalog;
use behavd::source::miniscope::controls::{ConnectStep, ControlValue, connect_sequence};
use common::*;

const CONFIG: &str = r#"[session]
name = "miniscope"
description = "behavd's Miniscope source against the look-alike DAQ in a VM"

[[source]]
kind = "miniscope"
device = "auto"
device_type = "Miniscope_V4_BNO"
[source.controls]
led0 = 50.0
ewl = 20.0
gain = "High"
frameRate = "20FPS"

[recording]
compression = { codec = "none" }
compress_threads = 0
flush_interval_s = 2.0
# The guest's /tmp is a small RAM disk: a lower disk guard than a rig's default.
min_free_mb = 64
stop_free_mb = 16
"#;

struct Guest {
    share: rig::Share,
    run: rig::GuestRun,
}

fn guest() -> &'static Guest {
    static GUEST: OnceLock<Guest> = OnceLock::new();
    GUEST.get_or_init(|| {
        rig::require_rig();
        let share = rig::Share::new("vm_miniscope");
        share.stage_binary(Path::new(env!("CARGO_BIN_EXE_behavd")), "behavd");
        share.stage_binary(
            Path::new(env!("CARGO_BIN_EXE_behavd-miniscope-lookalike")),
            "behavd-miniscope-lookalike",
        );
        let script =
            std::fs::read_to_string(rig::project_root().join("tests/vm/miniscope.sh")).unwrap();
        share.write("run.sh", &script, true);
        share.write("miniscope.toml", CONFIG, false);
        let run = share.boot(240);
        eprintln!("miniscope guest: {:.1} s wall", run.wall.as_secs_f64());
        Guest { share, run }
    })
}

/// The executed I2C packets in a look-alike's log, as hex strings, in order.
fn executed_packets(g: &Guest, log: &str) -> Vec<String> {
    g.share
        .read(log)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "i2c")
        .filter_map(|v| v["packet_hex"].as_str().map(str::to_owned))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn behavd_records_the_lookalike_and_the_run_ends_cleanly() {
    let g = guest();
    let rc: Vec<&str> = g.run.lines_with("SCENARIO miniscope rc=").collect();
    assert_eq!(
        rc,
        ["0"],
        "behavd's exit in the guest; stderr:\n{}\nconsole:\n{}",
        std::fs::read_to_string(g.share.path().join("out/miniscope.err")).unwrap_or_default(),
        g.run.console
    );
    let summary: serde_json::Value =
        serde_json::from_str(&g.share.read("out/miniscope.json")).expect("summary JSON");
    let stream = &summary["streams"][0];
    let captured = stream["stats"]["captured"].as_u64().unwrap();
    // 15 s at 20 fps under TCG (the look-alike streams 16–28 fps of 30 there): a ratio.
    assert!(captured >= 100, "{captured} frames captured: {stream}");
    let file = g.share.path().join("out/miniscope.nwb");
    let report = check_session(&file, false);
    assert_eq!(report["pynwb"]["ok"], true, "{:#}", report["pynwb"]);
}

/// The ritual with the configured values, as the packets the headstage should receive.
fn ritual() -> Vec<String> {
    let device = builtin_catalog()
        .unwrap()
        .device("Miniscope_V4_BNO")
        .unwrap()
        .clone();
    let values = [
        ("led0", ControlValue::Slider(50.0)),
        ("ewl", ControlValue::Slider(20.0)),
        ("gain", ControlValue::Choice("High".into())),
        ("frameRate", ControlValue::Choice("20FPS".into())),
    ];
    connect_sequence(&device, &values)
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            ConnectStep::Send(p) => Some(p.clone()),
            _ => None,
        })
        .flatten()
        .map(|p| p.packet.as_bytes().to_vec())
        .filter(|b| b[0] != 0xFE)
        .map(|b| hex(&b))
        .collect()
}

#[test]
fn the_connect_ritual_and_the_settings_reach_the_headstage_exactly() {
    let g = guest();
    let expected = ritual();
    // The first device: the ritual, nothing else (it vanished mid-session).
    assert_eq!(
        executed_packets(g, "out/i2c.jsonl"),
        expected,
        "first device"
    );
    // The device that came back: the whole ritual again, then the LEDs off at shutdown.
    let executed = executed_packets(g, "out/i2c2.jsonl");
    assert!(
        executed.len() >= expected.len(),
        "executed {executed:#?}\nexpected {expected:#?}"
    );
    assert_eq!(
        &executed[..expected.len()],
        &expected[..],
        "the ritual, in order"
    );
    // The worked examples among them (docs/miniscope.md, "Value conversion"): LED 50 % and the pot.
    assert!(expected.contains(&"20 01 7f".to_string()), "{expected:?}");
    // LEDs off at shutdown: behavd's last packets on the second device.
    let tail = &executed[expected.len()..];
    assert_eq!(
        tail,
        ["20 01 ff", "58 00 72 ff"],
        "only the LEDs-off pair after the ritual"
    );
}

#[test]
fn behavd_devices_identifies_the_daq_and_its_firmware_abi() {
    let g = guest();
    let devices: serde_json::Value =
        serde_json::from_str(&g.share.read("out/devices.json")).expect("behavd devices --json");
    let daqs = devices["miniscope_daqs"].as_array().expect("a DAQ list");
    assert_eq!(daqs.len(), 1, "{devices:#}");
    assert_eq!(daqs[0]["usb_id"], "04b4:00f9");
    assert_eq!(daqs[0]["link"], "SuperSpeed");
    assert_eq!(daqs[0]["firmware_abi"], 2, "{devices:#}");
}

/// The look-alike's BNO turns the head 1° about the vertical axis per DAQ frame; behavd reads
/// the quaternion after every frame (atomically through CT pan/tilt on this ABI-2 firmware)
/// and stores it with the frame.
#[test]
fn head_orientation_is_read_back_every_frame() {
    let g = guest();
    let file = g.share.path().join("out/miniscope.nwb");
    let q = read_dataset_f64(&file, "acquisition/MiniscopeHeadOrientation/data");
    let counters = read_dataset_u64(&file, "acquisition/MiniscopeDAQFrameNumber/data");
    // The first device's frames (the second look-alike's head starts turning from 0 again).
    let first = counters
        .windows(2)
        .position(|w| w[1] - w[0] > 30)
        .map_or(counters.len(), |i| i + 1);
    let rows: Vec<&[f64]> = q.chunks(4).take(first).collect();
    let good: Vec<&[f64]> = rows.iter().copied().filter(|r| r[0].is_finite()).collect();
    assert!(
        good.len() * 10 >= rows.len() * 9,
        "{} of {} quaternions valid",
        good.len(),
        rows.len()
    );
    for r in &good {
        let norm = r.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!(
            (norm - 1.0).abs() < 0.05 && r[1] == 0.0 && r[2] == 0.0,
            "{r:?}"
        );
    }
    // Unwrapped rotation angle over the session ≈ the DAQ frames that passed (1° each).
    let angle = |r: &[f64]| 2.0 * r[3].atan2(r[0]).to_degrees();
    let mut turned = 0.0;
    for w in good.windows(2) {
        turned += (angle(w[1]) - angle(w[0]) + 540.0).rem_euclid(360.0) - 180.0;
    }
    let frames = (counters[first - 1] - counters[0]) as f64;
    assert!(
        (turned - frames).abs() <= 0.1 * frames + 15.0,
        "head turned {turned:.0}° over {frames} DAQ frames"
    );
}

#[test]
fn the_sync_output_is_on_while_recording_and_off_at_the_stop() {
    let g = guest();
    let switches = |log: &str| -> Vec<bool> {
        g.share
            .read(log)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["kind"] == "recording")
            .map(|v| v["on"].as_bool().unwrap())
            .collect()
    };
    assert_eq!(
        switches("out/i2c.jsonl"),
        [true],
        "on, until the device vanished"
    );
    assert_eq!(
        switches("out/i2c2.jsonl"),
        [true, false],
        "on again after the reconnection, off at the stop"
    );
}

#[test]
fn every_frame_the_daq_made_is_recorded_or_counted_as_lost() {
    let g = guest();
    let file = g.share.path().join("out/miniscope.nwb");
    let counters = read_dataset_u64(&file, "acquisition/MiniscopeDAQFrameNumber/data");
    assert!(
        counters.len() >= 100,
        "{} frames in the file",
        counters.len()
    );
    assert!(
        counters.windows(2).all(|w| w[1] > w[0]),
        "DAQ counters strictly increase"
    );
    let lost: u64 = read_dataset_u64(&file, "intervals/FrameGaps/frames_lost")
        .iter()
        .sum();
    let span = counters.last().unwrap() - counters[0] + 1;
    // Drops are handed on once they outlast the stream backlog (≤ 12 frames late), so the
    // last few of each connection may still be pending when it ends.
    let accounted = counters.len() as u64 + lost;
    assert!(
        accounted <= span && span - accounted <= 24,
        "{} recorded + {lost} lost vs a counter span of {span}",
        counters.len()
    );
    // The look-alike skipped every 50th frame: at least that many were lost.
    let skipped = (counters[0]..=*counters.last().unwrap())
        .filter(|c| c % 50 == 0)
        .count() as u64;
    assert!(
        lost + 24 >= skipped,
        "{lost} frames counted lost, {skipped} skipped on purpose in the span"
    );
}

/// The device vanished and came back: one reconnection, the outage recorded as a
/// "disconnected" gap, and frames recorded after it.
#[test]
fn the_vanished_daq_comes_back_without_a_restart() {
    let g = guest();
    assert_eq!(
        g.run.lines_with("MINISCOPE unplugged").count(),
        1,
        "{}",
        g.run.console
    );
    assert_eq!(
        g.run.lines_with("MINISCOPE replugged").count(),
        1,
        "{}",
        g.run.console
    );
    let summary: serde_json::Value =
        serde_json::from_str(&g.share.read("out/miniscope.json")).expect("summary JSON");
    assert_eq!(
        summary["streams"][0]["stats"]["reconnects"], 1,
        "{summary:#}"
    );
    let file = g.share.path().join("out/miniscope.nwb");
    let causes = read_dataset_u64(&file, "intervals/FrameGaps/cause");
    let start = read_dataset_f64(&file, "intervals/FrameGaps/start_time");
    let stop = read_dataset_f64(&file, "intervals/FrameGaps/stop_time");
    let outages: Vec<usize> = (0..causes.len()).filter(|&i| causes[i] == 1).collect();
    assert_eq!(outages.len(), 1, "one disconnected gap: {causes:?}");
    let i = outages[0];
    assert!(
        stop[i] - start[i] >= 1.0,
        "the outage lasted {} s",
        stop[i] - start[i]
    );
    let times = read_dataset_f64(&file, "acquisition/Miniscope/timestamps");
    assert!(
        times.iter().filter(|&&t| t > stop[i]).count() >= 50,
        "frames recorded after the reconnection"
    );
}
