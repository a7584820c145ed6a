//! Real-time scheduling of the data-plane threads, as `[realtime]` asks: SCHED_FIFO for the
//! capture, rules and stimulator link threads, optional CPU affinity per role, `mlockall`.
//!
//! [`install`] records the settings for the process (and locks memory) when a session starts;
//! each data-plane thread calls [`enter`] with its [`Role`] once, at its start. Where the
//! system does not permit it (EPERM: no `CAP_SYS_NICE` and `RLIMIT_RTPRIO` too low, or a
//! `LimitMEMLOCK` too small), ONE warning is logged for the process and the threads keep
//! normal scheduling: a session never fails for it.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::config::realtime::{
    DEFAULT_CAPTURE_PRIORITY, DEFAULT_LINK_PRIORITY, DEFAULT_RULES_PRIORITY, RealtimeConfig,
};

/// What a data-plane thread does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A capture thread (`capture-<stream>`): SCHED_FIFO.
    Capture,
    /// The rules thread: SCHED_FIFO.
    Rules,
    /// A stimulator link thread (`stim-<output>`): SCHED_FIFO.
    Link,
    /// A model or signal thread: normal scheduling.
    Inference,
    /// The recorder: normal scheduling.
    Recorder,
}

/// What [`enter`] did for the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// The SCHED_FIFO priority the thread runs at (None: normal scheduling).
    pub fifo_priority: Option<u8>,
    /// The thread was pinned to the role's CPUs.
    pub pinned: bool,
}

static SETTINGS: RwLock<Option<RealtimeConfig>> = RwLock::new(None);
static WARNED: AtomicBool = AtomicBool::new(false);
static REFUSALS: AtomicU64 = AtomicU64::new(0);

/// Records `config` for the threads started from now on, and locks the process' memory when
/// it asks to. Call when a session (or the live engine) starts, before its threads.
pub fn install(config: &RealtimeConfig) {
    *SETTINGS.write().unwrap_or_else(|e| e.into_inner()) = Some(config.clone());
    if config.enabled && config.mlockall {
        // SAFETY: mlockall takes flags only.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
            refused("mlockall", std::io::Error::last_os_error());
        }
    }
}

/// Applies the installed settings of `role` to the calling thread (a no-op when none are
/// installed or `[realtime] enabled` is false).
pub fn enter(role: Role) -> Applied {
    let settings = SETTINGS.read().unwrap_or_else(|e| e.into_inner());
    match settings.as_ref() {
        Some(config) if config.enabled => apply(config, role),
        _ => Applied::default(),
    }
}

/// Applies `config`'s settings of `role` to the calling thread; what is not permitted is
/// warned about once per process and skipped.
pub fn apply(config: &RealtimeConfig, role: Role) -> Applied {
    let (priority, cpus) = match role {
        Role::Capture => (
            config.capture.priority.unwrap_or(DEFAULT_CAPTURE_PRIORITY),
            &config.capture.cpus,
        ),
        Role::Rules => (
            config.rules.priority.unwrap_or(DEFAULT_RULES_PRIORITY),
            &config.rules.cpus,
        ),
        Role::Link => (
            config.link.priority.unwrap_or(DEFAULT_LINK_PRIORITY),
            &config.link.cpus,
        ),
        Role::Inference => (0, &config.inference.cpus),
        Role::Recorder => (0, &config.recorder.cpus),
    };
    let mut applied = Applied::default();
    if !cpus.is_empty() {
        match pin(cpus) {
            Ok(()) => applied.pinned = true,
            Err(e) => refused("CPU affinity", e),
        }
    }
    if priority > 0 {
        match set_fifo(priority) {
            Ok(()) => applied.fifo_priority = Some(priority),
            Err(e) => refused("SCHED_FIFO", e),
        }
    }
    tracing::debug!(?role, ?applied, "real-time settings of this thread");
    applied
}

/// Times something was refused in this process (the first one was warned about).
pub fn refusals() -> u64 {
    REFUSALS.load(Ordering::Relaxed)
}

fn refused(what: &str, error: std::io::Error) {
    REFUSALS.fetch_add(1, Ordering::Relaxed);
    if WARNED.swap(true, Ordering::Relaxed) {
        tracing::debug!(%what, %error, "real-time setting refused (warned once already)");
        return;
    }
    let hint = if error.raw_os_error() == Some(libc::EPERM) {
        " (not permitted: run under the shipped systemd unit, which grants LimitRTPRIO and \
         LimitMEMLOCK, or give behavd CAP_SYS_NICE / an RLIMIT_RTPRIO ≥ the priorities)"
    } else {
        ""
    };
    tracing::warn!(
        "[realtime]: {what} refused: {error}{hint}; the data-plane threads run with normal \
         scheduling where it is refused (this warning is shown once)"
    );
}

fn set_fifo(priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority as libc::c_int,
    };
    // SAFETY: pthread_self() is the calling thread; param outlives the call.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

fn pin(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET stays within it (cpus are checked
    // against CPU_SETSIZE by the config).
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            if cpu < libc::CPU_SETSIZE as usize {
                libc::CPU_SET(cpu, &mut set);
            }
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests;
