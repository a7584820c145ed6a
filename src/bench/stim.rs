//! Stimulator link latencies: behavd's own link thread driving behavd's emulated stimulator
//! (behavd protocol) and the emulated StandardFirmata board (Firmata) over real
//! pseudo-terminals, one trigger at a time.

use crate::config::output::{OutputLimits, OutputProtocol};
use crate::stim::emulator::{EmulatedStimulator, EmulatorConfig};
use crate::stim::firmata_board::FirmataBoard;
use crate::stim::test_rig::{LinkRig, RigConfig};

use super::Latency;

/// What one link measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkBench {
    /// `behavd` or `firmata`.
    pub protocol: &'static str,
    /// Rule decision → command written to the port.
    pub decision_to_write: Latency,
    /// Rule decision → the device's rising edge on the host clock (behavd protocol only).
    pub decision_to_edge: Option<Latency>,
    /// Clock-sync residual, µs (behavd protocol only).
    pub sync_residual_us: Option<f64>,
}

/// Sends `triggers` single 1 ms pulses through a link to an emulated device of `protocol`,
/// each after the previous one's record came back, and reports the link's latencies.
pub fn link_latency(protocol: OutputProtocol, triggers: usize) -> anyhow::Result<LinkBench> {
    let dir = super::scratch_dir("stim")?;
    let tty = dir.join("bench.tty");
    let limits = OutputLimits {
        max_duty: 1.0,
        ..OutputLimits::default()
    };
    let (emulator, board) = match protocol {
        OutputProtocol::Behavd => (
            Some(EmulatedStimulator::start(EmulatorConfig {
                link: Some(tty.clone()),
                ..EmulatorConfig::default()
            })?),
            None,
        ),
        OutputProtocol::Firmata => (None, Some(FirmataBoard::start(Some(&tty))?)),
    };
    let mut rig = LinkRig::start(RigConfig {
        protocol,
        channels: match protocol {
            OutputProtocol::Behavd => vec![0, 1],
            OutputProtocol::Firmata => vec![9, 10],
        },
        limits,
        ..RigConfig::new(tty.display().to_string())
    });
    rig.wait_connects(1);
    if protocol == OutputProtocol::Behavd {
        // Pings every 100 ms: a fit over 20 samples before the first trigger.
        rig.wait_for("20 clock-sync samples", |s| {
            s.sync_samples.load(std::sync::atomic::Ordering::Relaxed) >= 20
        });
    }
    for _ in 0..triggers {
        rig.send(0, 1, 1, 0);
        rig.next_record();
    }
    let report = rig.stop();
    if let Some(e) = emulator {
        e.stop();
    }
    if let Some(b) = board {
        b.stop();
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(LinkBench {
        protocol: match protocol {
            OutputProtocol::Behavd => "behavd",
            OutputProtocol::Firmata => "firmata",
        },
        decision_to_write: Latency::from_ns(&report.decision_to_write),
        decision_to_edge: (!report.host_timed).then(|| Latency::from_ns(&report.decision_to_edge)),
        sync_residual_us: report.fit.map(|f| f.residual_us),
    })
}
