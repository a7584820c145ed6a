//! The scope control plane driven like a capture thread would, on a simulated clock, against
//! the DAQ emulator: the ritual in order, live changes coalesced, counter gaps, reboot
//! detection by IMU and by rate, sync output and LEDs off.

use super::controls::{ConnectStep, ControlValue, connect_sequence};
use super::daq::{DaqConfig, DaqEmulator};
use super::frame_reads::{CounterSource, FrameReadback, ImuSource, ReadbackPlan};
use super::readback::DEFAULT_NORM_ERROR_LIMIT;
use super::scope::{IMU_BAD_FRAMES_FOR_REBOOT, ScopeAction, ScopeControl, ScopeSettings};
use super::test_rig::{bytes_of, v4_bno, writes_as_packets};
use super::writer::{Wake, WriterConfig};

const PERIOD_NS: u64 = 50_000_000; // 20 fps
const UNIT_QUATERNION: [i16; 4] = [16384, 0, 0, 0];

struct Drive {
    ctl: ScopeControl,
    daq: DaqEmulator,
    now: u64,
    streaming: bool,
    next_frame: u64,
    stream_starts: u32,
    readbacks: Vec<FrameReadback>,
}

impl Drive {
    fn new(values: Vec<(String, ControlValue)>, expected_fps: Option<f64>) -> Self {
        let ctl = ScopeControl::new(ScopeSettings {
            device: v4_bno(),
            values,
            readback: ReadbackPlan {
                counter: Some(CounterSource::Contrast),
                imu: Some(ImuSource::PanTilt),
                trigger: None,
                norm_error_limit: DEFAULT_NORM_ERROR_LIMIT,
            },
            writer: WriterConfig::default(),
            expected_fps,
        })
        .unwrap();
        let mut daq = DaqEmulator::new(DaqConfig::default());
        daq.set_bno_quaternion(UNIT_QUATERNION);
        Self {
            ctl,
            daq,
            now: 1_000_000_000,
            streaming: false,
            next_frame: u64::MAX,
            stream_starts: 0,
            readbacks: Vec::new(),
        }
    }

    /// One frame: the DAQ ends it, the host dequeues it (or loses it: `delivered` false).
    fn frame(&mut self, delivered: bool) {
        self.daq.set_time_ns(self.now);
        self.daq.end_of_frame();
        if delivered {
            let r = self.ctl.after_frame(self.now, &mut self.daq);
            self.readbacks.push(r);
        }
        self.next_frame += PERIOD_NS;
    }

    /// Runs the control plane and the stream until `until` (ns after now).
    fn run_for(&mut self, duration_ns: u64) {
        let end = self.now + duration_ns;
        for _ in 0..1_000_000 {
            self.daq.set_time_ns(self.now);
            let wake = match self.ctl.step(self.now, &mut self.daq).unwrap() {
                ScopeAction::StartStream { width, height, .. } => {
                    assert_eq!((width, height), (608, 608));
                    self.stream_starts += 1;
                    self.streaming = true;
                    self.ctl.stream_started();
                    self.next_frame = self.now + PERIOD_NS;
                    continue;
                }
                ScopeAction::Continue(w) => w,
            };
            let next_ctl = match wake {
                Wake::At(t) => t.max(self.now + 1),
                Wake::NextFrame | Wake::Idle => u64::MAX,
            };
            let next = next_ctl.min(self.next_frame);
            if next > end {
                self.now = end;
                return;
            }
            self.now = next;
            if self.streaming && self.now >= self.next_frame {
                self.frame(true);
            }
        }
        panic!("the control plane never settled");
    }

    fn connect(&mut self) {
        self.ctl.begin_connect(false).unwrap();
        self.run_for(2_000_000_000);
        assert!(!self.ctl.is_connecting() && self.ctl.is_idle());
    }
}

/// What a connect ritual with `values` writes to the headstage, in order (DAQ commands to
/// 0xFE are the DAQ's own, not I²C writes).
fn ritual_writes(values: &[(&str, ControlValue)]) -> Vec<Vec<u8>> {
    connect_sequence(&v4_bno(), values)
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            ConnectStep::Send(p) => Some(bytes_of(p)),
            _ => None,
        })
        .flatten()
        .filter(|p| p[0] != 0xFE)
        .collect()
}

#[test]
fn the_ritual_reaches_the_daq_in_order_and_live_changes_coalesce() {
    let led = ControlValue::Slider(50.0);
    let mut d = Drive::new(vec![("led0".into(), led.clone())], None);
    d.connect();
    assert_eq!(d.stream_starts, 1);
    let writes = d.daq.take_writes();
    assert_eq!(writes_as_packets(&writes), ritual_writes(&[("led0", led)]));
    assert_eq!(d.daq.lost_writes(), 0);
    assert!(d.daq.bno_polling(), "the init's BNO command ran");
    // Two changes of the same control between two frames: only the last reaches the scope.
    d.ctl
        .set_control("led0", ControlValue::Slider(10.0))
        .unwrap();
    d.ctl
        .set_control("led0", ControlValue::Slider(20.0))
        .unwrap();
    d.run_for(3 * PERIOD_NS);
    let expected = super::test_rig::packets(&v4_bno(), "led0", ControlValue::Slider(20.0));
    assert_eq!(writes_as_packets(&d.daq.take_writes()), bytes_of(&expected));
    assert_eq!(d.ctl.stats().connects, 1);
}

/// Changes through a handle from another thread land like direct ones; a bad one is refused
/// and counted, and the scope carries on.
#[test]
fn a_handle_changes_settings_from_another_thread() {
    let mut d = Drive::new(Vec::new(), None);
    d.connect();
    d.daq.take_writes();
    let handle = d.ctl.handle();
    std::thread::spawn(move || {
        assert!(handle.set_control("led0", ControlValue::Slider(20.0)));
        assert!(handle.set_control("led9", ControlValue::Slider(20.0)));
        assert!(handle.set_recording(true));
    })
    .join()
    .unwrap();
    d.run_for(4 * PERIOD_NS);
    let expected = super::test_rig::packets(&v4_bno(), "led0", ControlValue::Slider(20.0));
    assert_eq!(writes_as_packets(&d.daq.take_writes()), bytes_of(&expected));
    assert_eq!(d.ctl.stats().commands_refused, 1);
    assert!(d.daq.recording());
}

#[test]
fn frames_the_host_lost_show_as_counter_gaps() {
    let mut d = Drive::new(Vec::new(), None);
    d.connect();
    d.readbacks.clear();
    d.frame(true);
    for _ in 0..3 {
        d.frame(false);
    }
    d.frame(true);
    let gaps: Vec<u64> = d
        .readbacks
        .iter()
        .map(|r| r.counter.expect("counter read").gap)
        .collect();
    assert_eq!(gaps, [0, 3]);
}

#[test]
fn a_silent_headstage_reboot_reruns_the_ritual_without_restarting_the_stream() {
    let mut d = Drive::new(Vec::new(), None);
    d.connect();
    d.daq.take_writes();
    d.run_for(10 * PERIOD_NS);
    assert_eq!(
        d.ctl.stats().reboots_detected,
        0,
        "a steady scope is left alone"
    );
    // The headstage reboots: its BNO reads zeros until re-initialised.
    d.daq.set_bno_quaternion([0; 4]);
    d.run_for((IMU_BAD_FRAMES_FOR_REBOOT as u64 + 2) * PERIOD_NS);
    assert_eq!(d.ctl.stats().reboots_detected, 1);
    d.daq.set_bno_quaternion(UNIT_QUATERNION);
    d.run_for(2_000_000_000);
    assert_eq!(d.ctl.stats().connects, 2);
    assert_eq!(d.stream_starts, 1, "the stream was not restarted");
    assert_eq!(writes_as_packets(&d.daq.take_writes()), ritual_writes(&[]));
}

#[test]
fn a_frame_rate_above_the_configured_one_is_taken_as_a_reboot() {
    let mut d = Drive::new(Vec::new(), Some(20.0));
    d.connect();
    d.run_for(70 * PERIOD_NS);
    assert_eq!(d.ctl.stats().reboots_detected, 0);
    // The sensor back at its 30+ fps default: the DAQ counts two frames per host frame here.
    for _ in 0..70 {
        d.daq.set_time_ns(d.now);
        d.daq.end_of_frame();
        d.now += PERIOD_NS;
        d.frame(true);
    }
    assert!(d.ctl.stats().reboots_detected >= 1);
}

#[test]
fn recording_toggles_the_sync_output_and_shutdown_turns_the_leds_off() {
    let mut d = Drive::new(vec![("led0".into(), ControlValue::Slider(40.0))], None);
    d.connect();
    d.daq.take_writes();
    d.ctl.set_recording(true);
    d.run_for(4 * PERIOD_NS);
    let (_, edges) = d.daq.sync_output();
    assert!(
        d.ctl.is_recording() && d.daq.recording() && edges >= 3,
        "{edges} sync edges"
    );
    d.ctl.set_recording(false);
    d.run_for(2 * PERIOD_NS);
    let (_, after_stop) = d.daq.sync_output();
    d.run_for(3 * PERIOD_NS);
    assert!(!d.ctl.is_recording() && !d.daq.recording());
    assert_eq!(
        d.daq.sync_output().1,
        after_stop,
        "no sync edges after the stop"
    );
    d.ctl.leds_off().unwrap();
    d.run_for(3 * PERIOD_NS);
    assert!(d.ctl.is_idle());
    assert_eq!(
        writes_as_packets(&d.daq.take_writes()),
        [vec![0x20, 0x01, 0xFF], vec![0x58, 0x00, 0x72, 0xFF]]
    );
}
