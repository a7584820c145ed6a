//! `[daemon]`: how `behavd serve` keeps the rig while no session runs, and how it watches its
//! threads. The socket, TCP listener and token keys join this table with the control plane.

use serde::{Deserialize, Serialize};

use super::RigConfig;
use super::validate::Problems;

/// Longest a data-plane thread may go without progress by default, seconds.
pub const DEFAULT_THREAD_DEADLINE_S: f64 = 5.0;

/// `[daemon]`: the service's lifecycle and watchdog settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Whether the rules may send triggers to the stimulators while live (devices open, no
    /// session recorded). Default false: a live rule evaluates and counts but sends nothing;
    /// every rule is armed when a session begins.
    #[serde(default)]
    pub arm_in_live: bool,
    /// Longest a data-plane thread (capture, recorder, inference, rules, stimulator link) may
    /// go without making progress before it counts as wedged, seconds. Default 5.
    #[serde(default = "default_thread_deadline")]
    pub thread_deadline_s: f64,
}

fn default_thread_deadline() -> f64 {
    DEFAULT_THREAD_DEADLINE_S
}

impl Default for DaemonConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

impl DaemonConfig {
    /// The thread deadline as a duration.
    pub fn thread_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.thread_deadline_s)
    }
}

/// Checks `[daemon]` and the disk-guard keys of `[recording]`, each error located at its key.
pub(super) fn check(config: &RigConfig, p: &mut Problems) {
    let d = &config.daemon;
    // Every wait of the data plane is well under 0.1 s; a shorter deadline would be noise.
    if !(d.thread_deadline_s.is_finite() && (0.1..=600.0).contains(&d.thread_deadline_s)) {
        p.error(
            "daemon.thread_deadline_s",
            format!("is {}; must be between 0.1 and 600 s", d.thread_deadline_s),
        );
    }
    let r = &config.recording;
    let disabled = r.min_free_mb == 0 && r.stop_free_mb == 0;
    if !disabled && r.stop_free_mb >= r.min_free_mb {
        p.error(
            "recording.stop_free_mb",
            format!(
                "is {} MB; must be below recording.min_free_mb ({} MB), or both 0 to turn the \
                 disk guard off: a session must be able to start with more room than the \
                 level at which it is stopped",
                r.stop_free_mb, r.min_free_mb
            ),
        );
    }
}
