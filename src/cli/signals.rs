//! Signals during `behavd run`: the first SIGINT, SIGTERM or SIGHUP asks for an orderly stop,
//! a second one aborts.
//!
//! SIGHUP (the terminal or ssh session went away) is a stop like SIGTERM: without it the
//! default action would kill behavd with the file unclosed. (A future long-running service
//! would rather treat SIGHUP as "reload the config"; `run` records one session and has
//! nothing to reload.)
//!
//! The signals are received on their own thread (through signal-hook's self-pipe), not acted
//! on inside a handler: the first sets the stop flag and wakes the main thread, which stops
//! capture, drains the rings and finalizes the file; during set-up the flag abandons the
//! set-up before any file is created. The second removes what [`behavd::cleanup`] holds (the
//! emulated stimulator's pty symlink) and exits at once with status 130 without closing the
//! file: it keeps everything flushed so far (at most `[recording].flush_interval_s` is lost)
//! and opens in SWMR mode.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Exit status of an abort (a second signal), as for a shell's interrupted command.
pub const ABORT_STATUS: i32 = 130;

fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// Starts the signal thread; returns the stop flag the first signal sets.
pub fn install() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install signal handlers")?;
    let main = std::thread::current();
    let flag = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut received = 0;
            for signal in signals.forever() {
                received += 1;
                if received == 1 {
                    tracing::info!(
                        signal = name(signal),
                        "stop requested (send it again to abort without closing the file)"
                    );
                    flag.store(true, Ordering::Relaxed);
                    main.unpark();
                    continue;
                }
                let removed = behavd::cleanup::run_abort_cleanup();
                tracing::warn!(
                    signal = name(signal),
                    removed = ?removed,
                    "second signal: aborting; the session file keeps what was flushed and is not finalized"
                );
                signal_hook::low_level::exit(ABORT_STATUS);
            }
        })
        .context("cannot start the signal thread")?;
    Ok(stop)
}
