//! behavd's own binary against a real V4L2 driver: vivid in Debian's kernel under QEMU
//! (`tests/vm/`). One guest boot runs every scenario of `tests/vm/scenarios.sh`; each test here
//! checks one scenario's session file on the host.

mod common;
#[path = "vm/rig.rs"]
mod rig;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;

/// A v4l2 source config writing uncompressed frames (the guest's CPU is emulated).
fn config(name: &str, source: &str) -> String {
    format!(
        "[session]\nname = \"{name}\"\ndescription = \"vivid in a VM: {name}\"\n\n\
         [[source]]\nkind = \"v4l2\"\nname = \"Cam\"\n{source}\n\
         [recording]\ncompression = {{ codec = \"none\" }}\ncompress_threads = 0\nflush_interval_s = 2.0\n\
         # the guest's /tmp is a small RAM disk: a lower disk guard than a rig's default\n\
         min_free_mb = 64\nstop_free_mb = 16\n"
    )
}

struct Guest {
    share: rig::Share,
    run: rig::GuestRun,
}

/// Boots the guest once for all tests (a failure to boot is reported by every test).
fn guest() -> &'static Guest {
    static GUEST: OnceLock<Result<Guest, String>> = OnceLock::new();
    let result = GUEST.get_or_init(|| {
        std::panic::catch_unwind(boot).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match result {
        Ok(guest) => guest,
        Err(e) => panic!("the guest could not run the scenarios: {e}"),
    }
}

fn boot() -> Guest {
    rig::require_rig();
    let share = rig::Share::new("vm_v4l2");
    share.stage_binary(Path::new(env!("CARGO_BIN_EXE_behavd")), "behavd");
    let script =
        std::fs::read_to_string(rig::project_root().join("tests/vm/scenarios.sh")).unwrap();
    share.write("run.sh", &script, true);
    let grey = "device = \"/dev/video0\"\nformat = \"grey\"\nwidth = 608\nheight = 608\nfps = 30.0\nbuffers = 8\n";
    share.write("grey608.toml", &config("grey608", grey), false);
    let yuyv = "device = \"/dev/video0\"\nformat = \"yuyv\"\nwidth = 640\nheight = 360\nfps = 30.0\n\
                bytesperline = 1408\nbuffers = 8\ncontrols = { osd_text_mode = 2 }\n";
    share.write("yuyv_stride.toml", &config("yuyv_stride", yuyv), false);
    let bad = "device = \"/dev/video0\"\nformat = \"yuyv\"\nwidth = 640\nheight = 360\n\
               controls = { exposure_nonsense = 3 }\n";
    share.write("bad_control.toml", &config("bad_control", bad), false);
    let drops = "device = \"card:vivid\"\nformat = \"grey\"\nwidth = 320\nheight = 180\nfps = 30.0\n\
                 controls = { percentage_of_dropped_buffers = 10 }\n";
    share.write("drops.toml", &config("drops", drops), false);
    let replug =
        "device = \"card:vivid\"\nformat = \"grey\"\nwidth = 320\nheight = 180\nfps = 30.0\n";
    share.write("replug.toml", &config("replug", replug), false);
    let run = share.boot(240);
    eprintln!(
        "guest: {:.1} s wall, run.sh exit {}",
        run.wall.as_secs_f64(),
        run.rc
    );
    assert_eq!(run.rc, 0, "the guest's script failed:\n{}", run.console);
    Guest { share, run }
}

impl Guest {
    /// behavd's exit code in scenario `name`.
    fn rc(&self, name: &str) -> i32 {
        let prefix = format!("SCENARIO {name} rc=");
        let rc = self
            .run
            .lines_with(&prefix)
            .next()
            .unwrap_or_else(|| panic!("scenario {name} did not run:\n{}", self.run.console));
        rc.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// The session file of a scenario that must have succeeded, and behavd's JSON summary.
    fn session(&self, name: &str) -> (PathBuf, serde_json::Value) {
        assert_eq!(
            self.rc(name),
            0,
            "behavd failed in scenario {name}:\n{}",
            self.share.read(&format!("out/{name}.err"))
        );
        let summary = serde_json::from_str(&self.share.read(&format!("out/{name}.json"))).unwrap();
        (self.share.path().join(format!("out/{name}.nwb")), summary)
    }
}

/// Frame counters, timestamps (s) and gap rows of stream `Cam` after checking the file reads
/// as valid NWB, timestamps increase, and every counter jump is exactly one gap row.
struct Stream {
    counters: Vec<u64>,
    times: Vec<f64>,
    gaps: Vec<serde_json::Value>,
}

/// pynwb reads the file, the validator finds nothing, and nwbinspector reports nothing serious
/// but the orientation of data with fewer frames than pixels in a row (these sessions are short).
fn assert_readable_nwb(report: &serde_json::Value) {
    assert_eq!(report["pynwb"]["ok"], true, "{:#}", report["pynwb"]);
    assert_eq!(
        report["validator"]["errors"].as_array().map(Vec::len),
        Some(0),
        "{:#}",
        report["validator"]
    );
    let serious: Vec<&serde_json::Value> = report["inspector"]["messages"]
        .as_array()
        .expect("inspector messages")
        .iter()
        .filter(|m| m["importance"] != "BEST_PRACTICE_SUGGESTION")
        .filter(|m| m["check_name"] != "check_data_orientation")
        .collect();
    assert!(serious.is_empty(), "nwbinspector: {serious:#?}");
}

fn check_stream(file: &Path) -> Stream {
    let report = check_session(file, false);
    assert_readable_nwb(&report);
    let counters = read_dataset_u64(file, "acquisition/CamFrameNumber/data");
    let times = read_dataset_f64(file, "acquisition/Cam/timestamps");
    assert_eq!(counters.len(), times.len());
    assert!(counters.len() > 10, "{} frames", counters.len());
    for pair in times.windows(2) {
        assert!(pair[1] > pair[0], "timestamps increase: {pair:?}");
    }
    let gaps: Vec<serde_json::Value> = report["h5py"]["frame_gaps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|g| g["stream_name"] == "Cam")
        .collect();
    let mut jumps = BTreeMap::new();
    for pair in counters.windows(2) {
        assert!(pair[1] > pair[0], "counter increases: {pair:?}");
        if pair[1] > pair[0] + 1 {
            jumps.insert(pair[0] + 1, pair[1] - pair[0] - 1);
        }
    }
    let recorded: BTreeMap<u64, u64> = gaps
        .iter()
        .filter(|g| g["cause_name"] == "device" || g["cause_name"] == "disconnected")
        .map(|g| {
            (
                g["first_lost_counter"].as_u64().unwrap(),
                g["frames_lost"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(jumps, recorded, "every sequence gap is one gap row");
    Stream {
        counters,
        times,
        gaps,
    }
}

impl Stream {
    /// Frames a 30 fps camera makes between the first and last stored frame.
    fn expected_at(&self, fps: f64) -> f64 {
        (self.times.last().unwrap() - self.times[0]) * fps + 1.0
    }

    fn lost(&self, cause: &str) -> u64 {
        self.gaps
            .iter()
            .filter(|g| g["cause_name"] == cause)
            .map(|g| g["frames_lost"].as_u64().unwrap())
            .sum()
    }
}

#[test]
fn grey_608_at_30_fps_arrives_whole_with_monotonic_timestamps() {
    let (file, summary) = guest().session("grey608");
    let s = check_stream(&file);
    let expected = s.expected_at(30.0);
    let ratio = s.counters.len() as f64 / expected;
    eprintln!(
        "grey608: {} frames of {expected:.0} expected ({:.1} %), {} lost by the device",
        s.counters.len(),
        100.0 * ratio,
        s.lost("device")
    );
    assert!(
        ratio >= 0.95,
        "{} frames of {expected:.0}",
        s.counters.len()
    );
    let fps = (s.counters.len() - 1) as f64 / (s.times.last().unwrap() - s.times[0]);
    assert!((28.0..=31.0).contains(&fps), "{fps} fps");
    assert_eq!(summary["streams"][0]["stats"]["reconnects"], 0);
    let frame = read_frame(&file, "acquisition/Cam/data", 0);
    assert_eq!(frame.len(), 608 * 608);
}

#[test]
fn padded_yuyv_rows_come_out_as_the_exact_luma_of_the_device() {
    let g = guest();
    let (file, _) = g.session("yuyv_stride");
    let log = g.share.read("out/yuyv_stride.err");
    assert!(
        log.contains("stride=1408"),
        "behavd asked for padded rows:\n{log}"
    );
    let s = check_stream(&file);
    assert!(s.counters.len() as f64 >= 0.95 * s.expected_at(30.0));
    let reference = std::fs::read(g.share.path().join("out/reference.yuyv")).unwrap();
    assert_eq!(reference.len(), 2 * 640 * 360 * 2, "two packed YUYV frames");
    let luma: Vec<u8> = reference[..640 * 360 * 2]
        .iter()
        .step_by(2)
        .copied()
        .collect();
    for index in [0, s.counters.len() - 1] {
        let frame = read_frame(&file, "acquisition/Cam/data", index);
        assert_eq!(frame.len(), luma.len());
        if let Some(row) = (0..360).find(|r| frame[r * 640..][..640] != luma[r * 640..][..640]) {
            panic!(
                "frame {index} row {row} differs from v4l2-ctl's frame:\n{:?}\n{:?}",
                &frame[row * 640..][..32],
                &luma[row * 640..][..32]
            );
        }
    }
    assert!(
        luma.iter().any(|&y| y > 150) && luma.iter().any(|&y| y < 50),
        "the test pattern has light and dark bars"
    );
}

#[test]
fn an_unknown_control_is_refused_with_the_device_controls() {
    let g = guest();
    assert_ne!(g.rc("bad_control"), 0);
    let err = g.share.read("out/bad_control.err");
    for needle in [
        "no control named `exposure_nonsense`",
        "osd_text_mode",
        "brightness",
        "/dev/video0",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
}

#[test]
fn every_buffer_vivid_drops_is_counted_as_a_device_gap() {
    let (file, summary) = guest().session("drops");
    let s = check_stream(&file);
    let range = s.counters.last().unwrap() - s.counters[0] + 1;
    let lost = s.lost("device");
    eprintln!(
        "drops: {} frames stored + {lost} lost = {range} sequence numbers ({:.1} % lost)",
        s.counters.len(),
        100.0 * lost as f64 / range as f64
    );
    assert_eq!(s.counters.len() as u64 + lost, range);
    assert!(
        (0.03..=0.25).contains(&(lost as f64 / range as f64)),
        "vivid drops about 10 %: {lost} of {range}"
    );
    let counted = summary["streams"][0]["stats"]["dropped"]["device"]
        .as_u64()
        .unwrap();
    assert_eq!(counted, lost, "live counter = gaps in the file");
}

#[test]
fn a_stalled_stream_and_a_removed_device_are_reopened_and_both_outages_recorded() {
    let g = guest();
    let console: Vec<&str> = g.run.lines_with("REPLUG ").collect();
    for step in ["stalled", "flowing", "unbound", "reloaded"] {
        assert!(console.contains(&step), "{step}: {}", g.run.console);
    }
    let (file, summary) = g.session("replug");
    let log = g.share.read("out/replug.err");
    assert!(log.contains("stream stalled"), "stall reported:\n{log}");
    assert!(log.contains("No such device"), "removal reported:\n{log}");
    let s = check_stream(&file);
    assert!(
        summary["streams"][0]["stats"]["reconnects"]
            .as_u64()
            .unwrap()
            >= 2
    );
    let outages: Vec<&serde_json::Value> = s
        .gaps
        .iter()
        .filter(|g| g["cause_name"] == "disconnected")
        .collect();
    assert_eq!(outages.len(), 2, "a stall and a removal: {:#?}", s.gaps);
    for outage in &outages {
        let lost = outage["frames_lost"].as_u64().unwrap();
        let seconds =
            outage["stop_time"].as_f64().unwrap() - outage["start_time"].as_f64().unwrap();
        eprintln!("replug: outage of {seconds:.2} s, {lost} frames lost");
        assert!(seconds >= 1.0, "away for over a second: {seconds} s");
        assert!(
            (lost as f64 - seconds * 30.0).abs() <= 3.0,
            "{lost} frames in {seconds} s"
        );
    }
    let last = outages[1]["first_lost_counter"].as_u64().unwrap()
        + outages[1]["frames_lost"].as_u64().unwrap();
    let after = s.counters.iter().filter(|&&c| c >= last).count();
    assert!(after >= 60, "frames flow again after the removal: {after}");
}

#[test]
fn devices_lists_the_vivid_camera_with_its_formats() {
    let g = guest();
    let text = g.share.read("out/devices.json");
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let cams = json["cameras"].as_array().expect("cameras");
    assert_eq!(cams.len(), 1, "{json:#}");
    let cam = &cams[0];
    assert_eq!(cam["path"], "/dev/video0");
    assert_eq!(cam["driver"], "vivid");
    assert_eq!(cam["card"], "vivid");
    assert_eq!(cam["bus"], "platform:vivid-000");
    let yuyv = cam["formats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fourcc"] == "YUYV")
        .expect("YUYV offered");
    let size = yuyv["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["size"] == "640x360")
        .expect("640x360 offered");
    assert!(
        size["fps"].as_array().unwrap().iter().any(|f| f == 30.0),
        "{size}"
    );
    assert!(json["serial_ports"].is_array());
}
