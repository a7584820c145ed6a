//! Live controls against a capture thread driving the Miniscope DAQ emulator: the I²C packets
//! of a change reach the emulated firmware; refused changes never reach it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::frame::FramePool;
use crate::pipeline::CaptureLoop;
use crate::record::control_log::ControlLog;
use crate::source::Source;
use crate::source::miniscope::controls::{ControlValue, control_packets};
use crate::source::miniscope::daq::I2cWrite;
use crate::source::miniscope::test_rig::{EmulatedScope, v4_bno, writes_as_packets};
use crate::stats::StreamStats;

struct Running {
    controls: LiveControls,
    writes: Arc<std::sync::Mutex<Vec<I2cWrite>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<crate::pipeline::CaptureEnd>>,
    log: Arc<ControlLog>,
    _frames: rtrb::Consumer<crate::frame::Frame>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// A capture thread over the emulated Miniscope, with live controls recording into a log.
fn running(log_rows: usize) -> Running {
    let source = EmulatedScope::v4();
    let writes = Arc::clone(&source.writes);
    let info = source.info().clone();
    let inbox = Arc::new(StreamInbox::default());
    let log = Arc::new(ControlLog::new(log_rows));
    log.begin(crate::clock::monotonic_ns());
    let controls = LiveControls::new(LiveControlsSetup {
        streams: vec![StreamControls {
            name: info.name.clone(),
            controls: source.live_controls(),
            inbox: Arc::clone(&inbox),
            frame_period_ns: 50_000_000,
        }],
        rules: None,
        outputs: Vec::new(),
        log: Arc::clone(&log),
    });
    let (frames_tx, frames_rx) = rtrb::RingBuffer::new(4096);
    let (gaps_tx, _gaps_rx) = rtrb::RingBuffer::new(16);
    let stop = Arc::new(AtomicBool::new(false));
    let capture = CaptureLoop {
        source: Box::new(source),
        pool: FramePool::new(8, info.geometry.frame_bytes()),
        recorder: frames_tx,
        gaps: gaps_tx,
        stats: Arc::new(StreamStats::default()),
        stop: Arc::clone(&stop),
        mailboxes: Vec::new(),
        controls: inbox,
        gate: {
            let gate = crate::pipeline::gate::SessionGate::new();
            gate.open_at(0);
            gate
        },
        heartbeat: crate::heartbeat::Heartbeat::new(
            "capture-test",
            std::time::Duration::from_secs(5),
        ),
    };
    let thread = std::thread::spawn(move || capture.run());
    Running {
        controls,
        writes,
        stop,
        thread: Some(thread),
        log,
        _frames: frames_rx,
    }
}

impl Running {
    /// Waits until the emulated firmware has executed `expected` (in order, as a run).
    fn wait_for_packets(&self, expected: &[Vec<u8>]) -> Vec<I2cWrite> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let writes = self.writes.lock().unwrap().clone();
            let seen = writes_as_packets(&writes);
            if seen.windows(expected.len()).any(|w| w == expected) {
                return writes;
            }
            assert!(
                Instant::now() < deadline,
                "DAQ never executed {expected:?}; saw {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn frames_executed(&self) -> u32 {
        self.writes.lock().unwrap().last().map_or(0, |w| w.frame)
    }
}

fn expected(control: &str, value: ControlValue) -> Vec<Vec<u8>> {
    control_packets(&v4_bno(), control, &value)
        .unwrap()
        .iter()
        .map(|p| p.packet.as_bytes().to_vec())
        .collect()
}

#[test]
fn led_ewl_gain_and_frame_rate_reach_the_emulated_daq() {
    let rig = running(64);
    let before = crate::clock::monotonic_ns();
    let led = rig.controls.set("Miniscope", "led0", 20.0, "test").unwrap();
    assert!(led.applied_ns >= before, "applied after it was asked");
    assert!(led.recorded && led.session_s.is_some());
    rig.wait_for_packets(&expected("led0", ControlValue::Slider(20.0)));
    rig.controls.set("Miniscope", "ewl", -40.0, "test").unwrap();
    rig.wait_for_packets(&expected("ewl", ControlValue::Slider(-40.0)));
    let gain = rig.controls.set("Miniscope", "gain", 3.5, "test").unwrap();
    rig.wait_for_packets(&expected("gain", ControlValue::Choice("High".into())));
    rig.controls
        .set("Miniscope", "frameRate", 10.0, "test")
        .unwrap();
    rig.wait_for_packets(&expected("frameRate", ControlValue::Choice("10FPS".into())));
    // Every change is a row, in order, with what was asked.
    let rows: Vec<_> = std::iter::from_fn(|| rig.log.pop()).collect();
    let summary: Vec<(&str, f64, &str, &str)> = rows
        .iter()
        .map(|r| (r.name.as_str(), r.value, r.text.as_str(), r.result.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("led0", 20.0, "", "applied"),
            ("ewl", -40.0, "", "applied"),
            ("gain", 3.5, "High", "applied"),
            ("frameRate", 10.0, "10FPS", "applied"),
        ]
    );
    assert_eq!(rows[2].time_ns, gain.applied_ns);
    assert!(
        rows.iter()
            .all(|r| r.origin == "test" && r.target == "Miniscope")
    );
}

#[test]
fn refused_values_name_the_field_and_never_reach_the_device() {
    let rig = running(64);
    let err = rig
        .controls
        .set("Miniscope", "led0", 140.0, "test")
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("led0") && text.contains("140") && text.contains("0..=100"),
        "{text}"
    );
    let err = rig
        .controls
        .set("Miniscope", "gain", 2.5, "test")
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("gain") && text.contains("2.5") && text.contains("3.5 (High)"),
        "{text}"
    );
    let err = rig
        .controls
        .set("Miniscope", "focus", 1.0, "test")
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\"focus\"") && text.contains("led0, ewl"),
        "names the control and the known ones: {text}"
    );
    let err = rig
        .controls
        .set("Behavior", "led0", 1.0, "test")
        .unwrap_err();
    assert!(err.to_string().contains("\"Behavior\"") && err.to_string().contains("Miniscope"));
    let err = rig
        .controls
        .set("Miniscope", "led0", f64::NAN, "test")
        .unwrap_err();
    assert!(matches!(err, ControlError::NotAllowed { .. }), "{err}");
    // A good change afterwards: only its packets reach the firmware.
    rig.controls.set("Miniscope", "led0", 5.0, "test").unwrap();
    let writes = rig.wait_for_packets(&expected("led0", ControlValue::Slider(5.0)));
    assert_eq!(
        writes_as_packets(&writes),
        expected("led0", ControlValue::Slider(5.0)),
        "nothing of the refused changes was written"
    );
    assert!(rig.log.pop().is_some_and(|r| r.value == 5.0));
    assert!(rig.log.pop().is_none(), "refused requests are not changes");
}

#[test]
fn a_full_log_refuses_the_change_before_it_is_made() {
    let rig = running(1);
    rig.controls.set("Miniscope", "led0", 30.0, "test").unwrap();
    let err = rig
        .controls
        .set("Miniscope", "led0", 60.0, "test")
        .unwrap_err();
    assert!(matches!(err, ControlError::LogFull(_)), "{err}");
    assert!(err.to_string().contains("full"), "{err}");
    // The recorder takes the row: there is room again.
    assert!(rig.log.pop().is_some());
    rig.controls.set("Miniscope", "ewl", 10.0, "test").unwrap();
    let writes = rig.wait_for_packets(&expected("ewl", ControlValue::Slider(10.0)));
    let led60 = expected("led0", ControlValue::Slider(60.0));
    assert!(
        !writes_as_packets(&writes).iter().any(|p| led60.contains(p)),
        "the refused LED 60 % never reached the device"
    );
    assert!(rig.frames_executed() > 0);
}

/// Nobody serves the inbox: the call gives up, and the request is then never carried out.
#[test]
fn an_unanswered_change_times_out_and_is_never_applied_later() {
    let mut source = EmulatedScope::v4();
    let inbox = Arc::new(StreamInbox::default());
    let log = Arc::new(ControlLog::new(8));
    log.begin(crate::clock::monotonic_ns());
    let controls = LiveControls::new(LiveControlsSetup {
        streams: vec![StreamControls {
            name: "Miniscope".into(),
            controls: source.live_controls(),
            inbox: Arc::clone(&inbox),
            frame_period_ns: 0,
        }],
        rules: None,
        outputs: Vec::new(),
        log: Arc::clone(&log),
    });
    let err = controls.set("Miniscope", "led0", 50.0, "test").unwrap_err();
    assert!(
        matches!(err, ControlError::Timeout { what, .. } if what.starts_with("not applied")),
        "{err}"
    );
    inbox.serve(&mut source);
    assert!(
        source.control.is_idle(),
        "the abandoned change was not queued on the writer"
    );
    assert!(log.pop().is_none());
    // Once the capture thread has ended, a change fails at once.
    inbox.close();
    let err = controls.set("Miniscope", "led0", 50.0, "test").unwrap_err();
    assert!(
        err.to_string().contains("capture thread has ended"),
        "{err}"
    );
}

#[test]
fn the_inbox_is_bounded() {
    let inbox = StreamInbox::default();
    let request = || crate::source::live::ControlRequest {
        control: 0,
        value: 1.0,
        reply: Arc::new(crate::reply::Reply::for_current_thread()),
    };
    for _ in 0..INBOX_SLOTS {
        assert!(inbox.push(request()).is_ok());
    }
    assert!(inbox.push(request()).is_err());
}

#[test]
fn notes_need_a_recording_and_text() {
    let log = Arc::new(ControlLog::new(8));
    let controls = LiveControls::new(LiveControlsSetup {
        streams: Vec::new(),
        rules: Some((vec!["a".into(), "b".into()], RuleArming::new(2, true))),
        outputs: Vec::new(),
        log: Arc::clone(&log),
    });
    assert_eq!(
        controls.note("hello", "ctl"),
        Err(ControlError::NotRecording)
    );
    // Arming while not recording works and says it is not in a file.
    let off = controls.arm("b", false, "ctl").unwrap();
    assert!(!off.recorded && off.session_s.is_none());
    assert_eq!(controls.rules(), [("a".into(), true), ("b".into(), false)]);
    let err = controls.arm("c", true, "ctl").unwrap_err().to_string();
    assert!(err.contains("\"c\"") && err.contains("a, b"), "{err}");
    log.begin(crate::clock::monotonic_ns());
    assert!(matches!(
        controls.note("  ", "ctl"),
        Err(ControlError::Invalid { field: "text", .. })
    ));
    assert!(matches!(
        controls.note("x", ""),
        Err(ControlError::Invalid {
            field: "origin",
            ..
        })
    ));
    let n = controls.note("mouse groomed", "ctl").unwrap();
    assert!(n.recorded);
    let row = log.pop().unwrap();
    assert_eq!(
        (row.name.as_str(), row.text.as_str()),
        ("note", "mouse groomed")
    );
    assert_eq!(row.time_ns, n.applied_ns);
    controls.close();
    assert_eq!(controls.note("late", "ctl"), Err(ControlError::Closed));
    let err = controls.pulse("laser", 5.0, "ctl").unwrap_err();
    assert_eq!(err, ControlError::Closed);
}

/// A source with one knob, whose change allocates nothing (as the synthetic Miniscope's LED).
struct Knob {
    info: crate::source::StreamInfo,
    value: f64,
}

impl Source for Knob {
    fn info(&self) -> &crate::source::StreamInfo {
        &self.info
    }
    fn watch_stop(&mut self, _: crate::source::CaptureStop) {}
    fn next_frame(
        &mut self,
        _: &mut [u8],
    ) -> Result<crate::frame::CaptureStamp, crate::source::SourceError> {
        Err(crate::source::SourceError::Stopped)
    }
    fn reconnect(&mut self) -> Result<(), crate::source::SourceError> {
        Ok(())
    }
    fn apply_control(&mut self, _: usize, value: f64) -> Result<(), String> {
        self.value = value;
        Ok(())
    }
}

/// What the data-plane threads do for the live controls allocates nothing: the capture
/// thread's check of an empty inbox and its applying of a change, the link thread's taking and
/// answering of a manual pulse.
#[test]
fn the_data_plane_side_allocates_nothing() {
    use crate::record::loop_records::TriggerRecord;
    use crate::stim::manual::{ManualInbox, ManualPulse, ManualPulses};
    let mut knob = Knob {
        info: EmulatedScope::v4().info,
        value: 0.0,
    };
    let inbox = StreamInbox::default();
    let replies: Vec<_> = (0..4)
        .map(|_| Arc::new(crate::reply::Reply::for_current_thread()))
        .collect();
    let pulses = Arc::new(ManualPulses::default());
    let mut link_end = ManualInbox::new(Arc::clone(&pulses));
    let pulse_reply = Arc::new(crate::reply::Reply::for_current_thread());
    let before = crate::test_alloc::allocations();
    for _ in 0..1000 {
        inbox.serve(&mut knob);
    }
    for (i, reply) in replies.iter().enumerate() {
        let pushed = inbox.push(crate::source::live::ControlRequest {
            control: 0,
            value: i as f64,
            reply: Arc::clone(reply),
        });
        assert!(pushed.is_ok());
        inbox.serve(&mut knob);
    }
    assert!(pulses.push(ManualPulse {
        record: TriggerRecord {
            manual: 9,
            ..TriggerRecord::default()
        },
        reply: Arc::clone(&pulse_reply),
    }));
    let taken = link_end.take().expect("the pulse");
    link_end.finish(&taken, None);
    assert_eq!(crate::test_alloc::allocations() - before, 0);
    assert_eq!(knob.value, 3.0);
    assert!(
        replies
            .iter()
            .all(|r| matches!(r.wait(Instant::now(), Duration::ZERO), Ok(Ok(_))))
    );
    assert_eq!(
        pulse_reply
            .wait(Instant::now(), Duration::ZERO)
            .unwrap()
            .record
            .manual,
        9
    );
}
