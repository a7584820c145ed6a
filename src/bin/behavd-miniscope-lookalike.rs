//! `behavd-miniscope-lookalike`: a user-space USB device that looks like the UCLA
//! Miniscope DAQ (04b4:00f9, UVC, I2C tunnelled through Processing-Unit controls),
//! attached to the running kernel through USB/IP's `vhci_hcd`, so the real `uvcvideo`
//! driver binds to it. Needs root and `modprobe vhci-hcd`. See
//! `docs/miniscope-lookalike.md`.
//!
//! Every I2C packet the emulated DAQ executes is logged as one JSON line to `--log`
//! (flushed per line), followed by a summary line when the program ends (SIGTERM, SIGINT,
//! `--seconds`, or the host detaching the device).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use behavd::source::miniscope::{DaqConfig, DaqEvent};
use behavd::usbip::protocol::{self, Command};
use behavd::usbip::{LogEntry, Lookalike, LookalikeConfig, SkipPolicy, Speed, vhci};
use clap::{Parser, ValueEnum};
use crossbeam_channel::RecvTimeoutError;
use serde_json::json;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SpeedArg {
    /// USB 3 SuperSpeed, 32 KiB payloads, product id 0x00f9 (as the real DAQ needs).
    Super,
    /// USB 2 high speed, 16 KiB payloads, product id 0x00f8.
    High,
}

/// Pose as a Miniscope DAQ on vhci_hcd so uvcvideo binds to it.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Link speed to attach at.
    #[arg(long, value_enum, default_value = "super")]
    speed: SpeedArg,
    /// vhci port number (default: the first free port of the speed's hub).
    #[arg(long)]
    port: Option<u32>,
    /// The vhci controller's sysfs directory.
    #[arg(long, default_value = vhci::DEFAULT_SYSFS)]
    sysfs: PathBuf,
    /// USB/IP devid (busnum << 16 | devnum) to announce.
    #[arg(long, default_value_t = 0x0001_0002)]
    devid: u32,
    /// JSON-lines log of executed I2C packets, stream changes and the final summary.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Exit (detaching the device) after this many seconds.
    #[arg(long)]
    seconds: Option<f64>,
    /// Do not send frames whose DAQ counter is a multiple of N (the counter still moves).
    #[arg(long, value_name = "N")]
    skip_every: Option<u32>,
    /// Do not send the frames with these DAQ counter values (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "COUNTERS")]
    skip_list: Vec<u32>,
    /// Frames buffered for transmission before sensor frames are lost.
    #[arg(long, default_value_t = 3)]
    fifo_frames: usize,
    /// Count frames and run the I2C queue even when nobody streams (the real DAQ does not).
    #[arg(long)]
    free_run: bool,
    /// Accept SET_CURs at any pace (the real FX3 loses a write that follows another
    /// within 100 µs).
    #[arg(long)]
    no_write_spacing: bool,
}

enum FromHost {
    Cmd(Command),
    Detached,
    Failed(String),
}

struct Log(Option<File>);

impl Log {
    fn line(&mut self, v: serde_json::Value) -> anyhow::Result<()> {
        if let Some(f) = &mut self.0 {
            let mut s = v.to_string();
            s.push('\n');
            f.write_all(s.as_bytes()).context("writing the log")?;
            f.flush().context("flushing the log")?;
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn log_entries(log: &mut Log, entries: Vec<LogEntry>) -> anyhow::Result<()> {
    for e in entries {
        let v = match e {
            LogEntry::I2c(w) => {
                let mut all = vec![w.address];
                all.extend(&w.data);
                eprintln!(
                    "lookalike: frame {} I2C 0x{:02x} [{}]",
                    w.frame,
                    w.address,
                    hex(&w.data)
                );
                json!({"kind": "i2c", "frame": w.frame, "address": w.address,
                       "address_hex": format!("0x{:02x}", w.address), "data": w.data, "packet_hex": hex(&all)})
            }
            LogEntry::Event(DaqEvent::Command { frame, command }) => {
                json!({"kind": "daq_command", "frame": frame, "command": command})
            }
            LogEntry::Event(DaqEvent::BadLength { frame, length }) => {
                json!({"kind": "bad_length", "frame": frame, "length": length})
            }
            LogEntry::Event(DaqEvent::LostWrite { selector, value }) => {
                json!({"kind": "lost_write", "selector": format!("{selector:?}"), "value": value})
            }
            LogEntry::Recording { on, frame } => {
                json!({"kind": "recording", "on": on, "frame": frame})
            }
        };
        log.line(v)?;
    }
    Ok(())
}

/// User + system CPU seconds of this process (from `/proc/self/stat`), if readable.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks as f64 / 100.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let speed = match args.speed {
        SpeedArg::Super => Speed::Super,
        SpeedArg::High => Speed::High,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing a signal handler")?;
    }
    let mut log = Log(match &args.log {
        Some(p) => {
            Some(File::create(p).with_context(|| format!("creating the log {}", p.display()))?)
        }
        None => None,
    });
    let config = LookalikeConfig {
        speed,
        fifo_frames: args.fifo_frames,
        skip: SkipPolicy {
            every: args.skip_every,
            list: args.skip_list.iter().copied().collect::<BTreeSet<u32>>(),
        },
        free_run: args.free_run,
        daq: DaqConfig {
            min_write_spacing_ns: if args.no_write_spacing {
                None
            } else {
                DaqConfig::default().min_write_spacing_ns
            },
            ..DaqConfig::default()
        },
    };
    let mut dev = Lookalike::new(config);

    let start = Instant::now();
    let attachment = vhci::attach(&args.sysfs, speed, args.devid, args.port)?;
    let port = attachment.port;
    eprintln!(
        "lookalike: attached to {} port {port} ({speed:?})",
        args.sysfs.display()
    );
    log.line(
        json!({"kind": "attached", "port": port, "speed": format!("{speed:?}"), "devid": args.devid,
                    "t_s": start.elapsed().as_secs_f64()}),
    )?;
    let mut writer = attachment.stream;
    let mut reader = writer.try_clone().context("cloning the USB/IP socket")?;

    let (tx, rx) = crossbeam_channel::unbounded();
    let reader_thread = std::thread::spawn(move || {
        loop {
            let msg = match protocol::read_command(&mut reader) {
                Ok(Some(cmd)) => FromHost::Cmd(cmd),
                Ok(None) => FromHost::Detached,
                Err(e) => FromHost::Failed(e.to_string()),
            };
            let last = !matches!(msg, FromHost::Cmd(_));
            if tx.send(msg).is_err() || last {
                break;
            }
        }
    });

    let deadline = args.seconds.map(|s| start + Duration::from_secs_f64(s));
    let now_ns = |start: Instant| start.elapsed().as_nanos() as u64;
    let mut was_streaming = false;
    let mut first_descriptor: Option<f64> = None;
    let mut out = Vec::with_capacity(1 << 16);
    let reason = 'run: loop {
        if stop.load(Ordering::Relaxed) {
            break 'run "signal".to_string();
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break 'run "seconds elapsed".to_string();
        }
        let now = now_ns(start);
        let mut wait = Duration::from_millis(50);
        if let Some(t) = dev.next_deadline_ns() {
            wait = wait.min(Duration::from_nanos(t.saturating_sub(now)));
        }
        let mut msgs = Vec::new();
        match rx.recv_timeout(wait) {
            Ok(m) => msgs.push(m),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break 'run "reader ended".to_string(),
        }
        msgs.extend(rx.try_iter());
        out.clear();
        for m in msgs {
            match m {
                FromHost::Cmd(cmd) => {
                    if first_descriptor.is_none() {
                        first_descriptor = Some(start.elapsed().as_secs_f64());
                    }
                    for r in dev.handle(cmd, now_ns(start)) {
                        r.encode_into(&mut out);
                    }
                }
                FromHost::Detached => break 'run "host detached".to_string(),
                FromHost::Failed(e) => break 'run format!("USB/IP error: {e}"),
            }
        }
        for r in dev.poll(now_ns(start)) {
            r.encode_into(&mut out);
        }
        if !out.is_empty()
            && let Err(e) = writer.write_all(&out)
        {
            break 'run format!("host gone (write failed: {e})");
        }
        log_entries(&mut log, dev.take_log())?;
        if dev.streaming() != was_streaming {
            was_streaming = dev.streaming();
            let c = dev.committed();
            eprintln!(
                "lookalike: stream {} ({:?}, interval {})",
                if was_streaming { "on" } else { "off" },
                c.format,
                c.interval
            );
            log.line(
                json!({"kind": "stream", "on": was_streaming, "format": format!("{:?}", c.format),
                            "interval_100ns": c.interval, "daq_counter": dev.daq().frame_counter(),
                            "t_s": start.elapsed().as_secs_f64()}),
            )?;
        }
    };

    let detached_by_us = !reason.starts_with("host") && !reason.starts_with("USB/IP");
    if detached_by_us && let Err(e) = vhci::detach(&attachment.sysfs, port) {
        eprintln!("lookalike: {e}");
    }
    let _ = writer.shutdown(std::net::Shutdown::Both);
    let _ = reader_thread.join();
    log_entries(&mut log, dev.take_log())?;
    let elapsed = start.elapsed().as_secs_f64();
    let stats = dev.stats().clone();
    let summary = json!({"kind": "summary", "reason": reason, "elapsed_s": elapsed,
        "first_request_s": first_descriptor, "daq_counter": dev.daq().frame_counter(),
        "i2c_lost_writes": dev.daq().lost_writes(), "cpu_s": cpu_seconds(), "stats": stats});
    eprintln!("lookalike: {summary}");
    log.line(summary)?;
    Ok(())
}
