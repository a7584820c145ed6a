//! SCHED_FIFO and affinity as the kernel reports them for the thread (`pthread_getschedparam`,
//! `sched_getaffinity`), and the one warning when they are not permitted (a child process
//! with `RLIMIT_RTPRIO` 0 and no `CAP_SYS_NICE`).

use super::*;
use crate::config::realtime::{CpuRole, FifoRole};

fn enabled() -> RealtimeConfig {
    RealtimeConfig {
        enabled: true,
        rules: FifoRole {
            priority: Some(42),
            cpus: Vec::new(),
        },
        ..RealtimeConfig::default()
    }
}

/// (policy, priority) of the calling thread.
fn scheduling() -> (i32, i32) {
    let mut policy = 0;
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: out-parameters of the right types for the calling thread.
    let rc = unsafe { libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut param) };
    assert_eq!(rc, 0);
    (policy, param.sched_priority)
}

/// The CPUs the calling thread may run on.
fn affinity() -> Vec<usize> {
    // SAFETY: a zeroed set filled by the kernel, read with CPU_ISSET within its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Whether this process may use SCHED_FIFO at `priority` (root, or RLIMIT_RTPRIO allows it).
fn fifo_permitted(priority: u64) -> bool {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: out-parameter of the right type.
    unsafe { libc::getrlimit(libc::RLIMIT_RTPRIO, &mut limit) };
    // SAFETY: no arguments.
    let root = unsafe { libc::geteuid() } == 0;
    root || limit.rlim_cur >= priority
}

#[test]
fn the_rules_thread_runs_sched_fifo_at_its_priority() {
    let (applied, sched) = std::thread::spawn(|| {
        let applied = apply(&enabled(), Role::Rules);
        (applied, scheduling())
    })
    .join()
    .unwrap();
    if fifo_permitted(42) {
        assert_eq!(applied.fifo_priority, Some(42));
        assert_eq!(sched, (libc::SCHED_FIFO, 42));
    } else {
        assert_eq!(applied.fifo_priority, None);
        assert_eq!(sched.0, libc::SCHED_OTHER);
    }
}

#[test]
fn default_priorities_put_the_link_above_rules_above_capture() {
    let config = RealtimeConfig {
        enabled: true,
        ..RealtimeConfig::default()
    };
    if !fifo_permitted(80) {
        return; // the permitted path is what this checks; the refused one is the child test's
    }
    let got: Vec<(i32, i32)> = [Role::Capture, Role::Rules, Role::Link]
        .into_iter()
        .map(|role| {
            let config = config.clone();
            std::thread::spawn(move || {
                apply(&config, role);
                scheduling()
            })
            .join()
            .unwrap()
        })
        .collect();
    assert_eq!(
        got,
        [
            (libc::SCHED_FIFO, 60),
            (libc::SCHED_FIFO, 70),
            (libc::SCHED_FIFO, 80)
        ]
    );
}

#[test]
fn inference_and_recorder_keep_normal_scheduling_and_take_their_cpus() {
    let config = RealtimeConfig {
        enabled: true,
        inference: CpuRole { cpus: vec![0] },
        ..RealtimeConfig::default()
    };
    let (applied, sched, cpus) = std::thread::spawn(move || {
        let applied = apply(&config, Role::Inference);
        (applied, scheduling(), affinity())
    })
    .join()
    .unwrap();
    assert_eq!(applied.fifo_priority, None);
    assert!(applied.pinned);
    assert_eq!(sched.0, libc::SCHED_OTHER);
    assert_eq!(cpus, vec![0]);
    let sched = std::thread::spawn(|| {
        apply(&enabled(), Role::Recorder);
        scheduling()
    })
    .join()
    .unwrap();
    assert_eq!(sched.0, libc::SCHED_OTHER);
}

#[test]
fn installed_but_disabled_settings_change_nothing() {
    let mut config = enabled();
    config.enabled = false;
    install(&config);
    let (applied, sched) = std::thread::spawn(|| (enter(Role::Rules), scheduling()))
        .join()
        .unwrap();
    assert_eq!(applied, Applied::default());
    assert_eq!(sched.0, libc::SCHED_OTHER);
}

const CHILD: &str = "BEHAVD_REALTIME_REFUSAL_CHILD";

/// Runs in a child process (started by the test below): drops `RLIMIT_RTPRIO` to 0 and, as
/// root, the privileges (so `CAP_SYS_NICE` goes), then starts three SCHED_FIFO roles.
#[test]
fn refusal_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on this process.
    unsafe {
        assert_eq!(libc::setrlimit(libc::RLIMIT_RTPRIO, &zero), 0);
        if libc::geteuid() == 0 {
            assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
            assert_eq!(libc::setresgid(65534, 65534, 65534), 0);
            assert_eq!(libc::setresuid(65534, 65534, 65534), 0);
        }
    }
    let config = RealtimeConfig {
        enabled: true,
        mlockall: false,
        ..RealtimeConfig::default()
    };
    for role in [Role::Capture, Role::Rules, Role::Link] {
        let config = config.clone();
        let (applied, sched) = std::thread::spawn(move || (apply(&config, role), scheduling()))
            .join()
            .unwrap();
        assert_eq!(applied.fifo_priority, None, "{role:?}");
        assert_eq!(sched.0, libc::SCHED_OTHER, "{role:?}");
    }
    assert_eq!(refusals(), 3);
    println!("refusal child done");
}

#[test]
fn not_permitted_gives_one_warning_and_normal_scheduling() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "realtime::tests::refusal_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("refusal child done"), "{stdout}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("SCHED_FIFO refused") && warnings[0].contains("not permitted"),
        "{}",
        warnings[0]
    );
}
