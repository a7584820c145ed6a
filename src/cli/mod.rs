//! Command-line interface: argument parsing, logging set-up and the subcommands.

mod bench;
mod bench_api;
mod check;
mod check_words;
mod ctl;
mod ctl_print;
mod devices;
mod inspect;
mod predict;
mod progress;
mod run;
mod signals;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// behavd records UCLA Miniscope and behavior-camera sessions into one NWB file per session,
/// with every frame timestamped and every lost frame accounted for.
#[derive(Parser)]
#[command(name = "behavd", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record a session. Without --config, runs the built-in demo rig (a simulated Miniscope
    /// and behavior camera filming one simulated mouse). Stop with Ctrl-C, SIGTERM or SIGHUP;
    /// the file is closed cleanly (a second signal aborts at once, exit status 130).
    Run {
        /// Rig config (TOML). Default: the built-in demo rig (config/demo.toml).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Stop after this many seconds (default: run until Ctrl-C or SIGTERM).
        #[arg(short, long, value_name = "SECONDS")]
        duration: Option<f64>,
        /// Directory for the session file (default: [recording].output_dir, `./sessions`).
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// Print the end-of-session summary as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Check a rig config and print the rig it describes. Exit status 1 if it is invalid.
    Check {
        /// Rig config (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Print the result as JSON on stdout (ok, located errors, warnings, streams, models,
        /// rules, outputs with their limits).
        #[arg(long)]
        json: bool,
    },
    /// Measure this machine: synthetic frame cost, ring handoff latency, recorder throughput
    /// per compression setting (p50/p99/max, MB/s).
    Bench {
        /// A single benchmark instead of the whole set.
        #[command(subcommand)]
        what: Option<BenchWhat>,
        /// Fewer samples (a few seconds instead of about a minute).
        #[arg(long)]
        quick: bool,
        /// Rig config whose models and rules to measure (default: the demo rig).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        /// Only the real-time comparison: the closed loop under load with `[realtime]` off and
        /// on, alternating (2 rounds of 30 s each; 1 round of 10 s with --quick).
        #[arg(long)]
        realtime: bool,
    },
    /// Re-run a configured model over the frames of a recorded session (as it runs live: same
    /// preprocessing, recurrent state carried) and print its raw and decoded outputs as JSON.
    Predict {
        /// Rig config with the [[model]].
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Model name.
        #[arg(short, long)]
        model: String,
        /// Session file to read frames from.
        #[arg(short, long, value_name = "FILE")]
        session: PathBuf,
        /// Only the first N frames.
        #[arg(long, value_name = "N")]
        frames: Option<usize>,
        /// Write the JSON here instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List the serial ports a stimulator can be on (USB vendor, product, serial number) and
    /// the V4L2 cameras (card, driver, bus, formats with sizes and frame rates).
    Devices {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run as a service: load the rig, then keep it idle / live / recording as the control API
    /// (a Unix socket, optional TCP) asks; see docs/service.md. SIGTERM, SIGINT or SIGHUP end a
    /// running session cleanly (file finalized) and exit 0; a second one aborts (status 130).
    Serve {
        /// Rig config (TOML). Default: the built-in demo rig (config/demo.toml).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Unix socket of the API (overrides [daemon] socket; default /run/behavd/behavd.sock).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Also listen on TCP HOST:PORT (overrides [daemon] listen; a non-loopback address
        /// needs [daemon] token_file).
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
        /// Directory for session files (overrides [recording] output_dir).
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Talk to a running `behavd serve`: status, start, stop, note, sessions, set, arm, disarm,
    /// pulse, watch, config. Exit status: 0 done, 1 error, 2 usage, 4 refused by the daemon
    /// (4xx), 5 daemon unreachable.
    Ctl {
        #[command(flatten)]
        connection: ctl::Connection,
        #[command(subcommand)]
        command: ctl::CtlCommand,
    },
    /// Show what a session file holds: streams, frame counts, duration, frame rate, gaps, metadata.
    Inspect {
        /// The session file (.nwb).
        file: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The benchmarks `behavd bench` can run alone.
#[derive(Subcommand)]
enum BenchWhat {
    /// The control plane under load: two sessions of `behavd serve` on the rig, one quiet and
    /// one during a burst of status requests; frame drops and capture → decision percentiles of
    /// each, and the requests' latency.
    ApiLoad {
        /// Rig config (default: the demo rig).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Status requests per second.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// Seconds of burst (each session lasts 2 s longer).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Parses arguments, sets up logging and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    behavd::logging::init();
    // `run` keeps SIGPIPE ignored while it records (a closed stderr must not kill a session)
    // and makes it quiet once the file is finalized.
    // `serve` keeps it ignored too: a client that hangs up must not kill the daemon.
    if !matches!(cli.command, Command::Run { .. } | Command::Serve { .. }) {
        quiet_broken_pipe();
    }
    let result = match cli.command {
        Command::Run {
            config,
            duration,
            output,
            json,
        } => run::run(config.as_deref(), duration, output, json),
        Command::Check { config, json } => check::check(&config, json),
        Command::Serve {
            config,
            socket,
            listen,
            output,
        } => behavd::daemon::systemd_hooks::SystemdHooks::from_env()
            .and_then(|hooks| {
                behavd::daemon::serve(
                    behavd::daemon::ServeOptions {
                        config,
                        socket,
                        listen,
                        output,
                    },
                    std::sync::Arc::new(hooks),
                )
            })
            .map(|()| ExitCode::SUCCESS),
        Command::Ctl {
            connection,
            command,
        } => Ok(ctl::ctl(connection, command)),
        Command::Inspect { file, json } => inspect::inspect(&file, json),
        Command::Devices { json } => devices::devices(json),
        Command::Bench {
            what:
                Some(BenchWhat::ApiLoad {
                    config,
                    rate,
                    seconds,
                    json,
                }),
            ..
        } => bench_api::api_load(config.as_deref(), rate, seconds, json),
        Command::Bench {
            what: None,
            quick,
            json,
            config,
            realtime: true,
        } => bench::realtime(quick, json, config.as_deref()),
        Command::Bench {
            what: None,
            quick,
            json,
            config,
            realtime: false,
        } => bench::bench(quick, json, config.as_deref()),
        Command::Predict {
            config,
            model,
            session,
            frames,
            out,
        } => predict::predict(&config, &model, &session, frames, out.as_deref())
            .map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Restores the default action of SIGPIPE (which the Rust runtime ignores): when whoever reads
/// stdout goes away (`behavd inspect --json F | head`), behavd ends quietly, killed by SIGPIPE
/// like `cat` or `head` (a shell shows status 141), instead of panicking on the failed write.
fn quiet_broken_pipe() {
    // SAFETY: setting a signal's disposition to its default; no handler is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
