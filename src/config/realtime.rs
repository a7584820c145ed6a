//! `[realtime]`: real-time scheduling of the data-plane threads (see `crate::realtime`):
//! SCHED_FIFO priorities for capture, rules and the stimulator links, optional CPU affinity per
//! role, and `mlockall`. Off unless `enabled = true`; never fails a session when not permitted.

use serde::{Deserialize, Serialize};

use super::RigConfig;
use super::validate::Problems;

/// Highest SCHED_FIFO priority Linux allows.
pub const MAX_PRIORITY: u8 = 99;
/// Highest CPU number a CPU set may name (`CPU_SETSIZE` − 1).
pub const MAX_CPU: usize = 1023;
/// Default SCHED_FIFO priority of the capture threads.
pub const DEFAULT_CAPTURE_PRIORITY: u8 = 60;
/// Default SCHED_FIFO priority of the rules thread.
pub const DEFAULT_RULES_PRIORITY: u8 = 70;
/// Default SCHED_FIFO priority of the stimulator link threads (the last step to the animal).
pub const DEFAULT_LINK_PRIORITY: u8 = 80;

/// `[realtime]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Apply the settings below (default false: every thread keeps normal scheduling).
    #[serde(default)]
    pub enabled: bool,
    /// Lock the process' memory (`mlockall(MCL_CURRENT | MCL_FUTURE)`) so no data-plane page is
    /// ever paged out. Default false.
    #[serde(default)]
    pub mlockall: bool,
    /// `[realtime.capture]`: the capture threads (`capture-<stream>`).
    #[serde(default)]
    pub capture: FifoRole,
    /// `[realtime.rules]`: the rules thread.
    #[serde(default)]
    pub rules: FifoRole,
    /// `[realtime.link]`: the stimulator link threads (`stim-<output>`).
    #[serde(default)]
    pub link: FifoRole,
    /// `[realtime.inference]`: model and signal threads (normal scheduling; CPUs only).
    #[serde(default)]
    pub inference: CpuRole,
    /// `[realtime.recorder]`: the recorder thread (normal scheduling; CPUs only).
    #[serde(default)]
    pub recorder: CpuRole,
}

/// A role that runs SCHED_FIFO.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FifoRole {
    /// SCHED_FIFO priority 1–99 (0: normal scheduling). Default: capture 60, rules 70, link 80.
    #[serde(default)]
    pub priority: Option<u8>,
    /// CPUs the threads may run on (empty: any).
    #[serde(default)]
    pub cpus: Vec<usize>,
}

/// A role that keeps normal scheduling, optionally pinned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuRole {
    /// CPUs the threads may run on (empty: any).
    #[serde(default)]
    pub cpus: Vec<usize>,
}

/// Every problem of `[realtime]`.
pub(super) fn check(config: &RigConfig, p: &mut Problems) {
    let rt = &config.realtime;
    let online = std::thread::available_parallelism().map_or(0, |n| n.get());
    for (name, role) in [
        ("capture", &rt.capture),
        ("rules", &rt.rules),
        ("link", &rt.link),
    ] {
        if let Some(prio) = role.priority
            && prio > MAX_PRIORITY
        {
            p.error(
                format!("realtime.{name}.priority"),
                format!("is {prio}; must be 0–{MAX_PRIORITY} (SCHED_FIFO; 0 = normal scheduling)"),
            );
        }
    }
    let cpu_roles = [
        ("capture", &rt.capture.cpus),
        ("rules", &rt.rules.cpus),
        ("link", &rt.link.cpus),
        ("inference", &rt.inference.cpus),
        ("recorder", &rt.recorder.cpus),
    ];
    for (name, cpus) in cpu_roles {
        let key = format!("realtime.{name}.cpus");
        if let Some(&cpu) = cpus.iter().find(|&&c| c > MAX_CPU) {
            p.error(
                &key,
                format!("CPU {cpu} is out of range; CPUs are numbered 0–{MAX_CPU}"),
            );
        } else if online > 0
            && let Some(&cpu) = cpus.iter().find(|&&c| c >= online)
        {
            p.warn(
                &key,
                format!(
                    "CPU {cpu} is not on this machine (it has {online}: 0–{}); the pinning is \
                     skipped here with a warning",
                    online - 1
                ),
            );
        }
        let mut sorted = cpus.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            p.error(&key, "names a CPU twice");
        }
    }
    if !rt.enabled && *rt != RealtimeConfig::default() {
        p.warn(
            "realtime",
            "settings given but `enabled` is false: threads keep normal scheduling",
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, LoadedConfig};

    const MINIMAL: &str = "[[source]]\nkind = \"synthetic-miniscope\"\n";

    fn load(extra: &str) -> Result<LoadedConfig, ConfigError> {
        LoadedConfig::from_str(&format!("{MINIMAL}{extra}"), "rig.toml")
    }

    #[test]
    fn realtime_is_off_by_default_and_parses_every_role() {
        assert!(!load("").unwrap().config.realtime.enabled);
        let rt = load(
            "[realtime]\nenabled = true\nmlockall = true\n[realtime.link]\npriority = 90\ncpus = [1]\n\
             [realtime.inference]\ncpus = [0]\n",
        )
        .unwrap()
        .config
        .realtime;
        assert!(rt.enabled && rt.mlockall);
        assert_eq!(
            (rt.link.priority, rt.link.cpus.as_slice()),
            (Some(90), &[1][..])
        );
        assert_eq!(rt.inference.cpus, [0]);
        assert_eq!(
            rt.capture.priority, None,
            "the default (60) is applied at thread start"
        );
    }

    #[test]
    fn a_priority_above_99_names_file_line_and_key() {
        let err =
            load("[realtime]\nenabled = true\n[realtime.rules]\npriority = 120\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("rig.toml:6:"), "{text}");
        assert!(
            text.contains("realtime.rules.priority") && text.contains("0–99"),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_key_is_refused_with_a_suggestion() {
        let err = load("[realtime]\nenabled = true\nmlock_all = true\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("mlock_all") && text.contains("mlockall"),
            "{text}"
        );
    }

    #[test]
    fn inference_has_no_priority_key() {
        let err = load("[realtime.inference]\npriority = 10\n").unwrap_err();
        assert!(
            err.to_string().contains("realtime.inference.priority"),
            "{err}"
        );
    }

    #[test]
    fn a_cpu_twice_or_out_of_range_is_an_error() {
        let err = load("[realtime.capture]\ncpus = [0, 0]\n").unwrap_err();
        assert!(
            err.to_string().contains("realtime.capture.cpus") && err.to_string().contains("twice"),
            "{err}"
        );
        let err = load("[realtime.recorder]\ncpus = [5000]\n").unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
