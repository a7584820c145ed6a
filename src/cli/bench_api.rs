//! `behavd bench api-load`: the control plane under load. A `behavd serve` child on the rig
//! (default: the demo rig) records two sessions of the same length: one quiet, one during a
//! burst of `GET /v1/status` at a fixed rate on loopback TCP. Reports, for each, frames dropped
//! and the capture → decision percentiles, and the status requests' latency (each on a new
//! connection: the worst case for the daemon). A benchmark, not an assertion.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use behavd::daemon::client::{Client, Endpoint};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use hyper::Method;
use serde_json::{Value, json};

/// The serve child and what it logged.
struct Served {
    child: Child,
    log: Arc<Mutex<String>>,
    dir: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serve(config: Option<&Path>) -> anyhow::Result<(Served, String)> {
    let dir = std::env::temp_dir().join(format!("behavd-api-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("serve");
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let mut child = cmd
        .arg("--socket")
        .arg(dir.join("behavd.sock"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--output")
        .arg(dir.join("sessions"))
        .env("RUST_LOG", "info,ort=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start behavd serve")?;
    let log = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().expect("piped");
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
            s.push_str(&line);
            s.push('\n');
        }
    });
    let served = Served { child, log, dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = served.log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if text.contains(" ready ")
            && let Some(address) = text
                .lines()
                .find(|l| l.contains("API listening on TCP"))
                .and_then(|l| l.split("address=").nth(1))
                .and_then(|a| a.split_whitespace().next())
        {
            return Ok((served, address.to_string()));
        }
        if Instant::now() > deadline {
            bail!("behavd serve did not get ready within 60 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The status requests of a burst.
#[derive(Default)]
struct Burst {
    latency_us: Option<Histogram<u64>>,
    ok: u64,
    failed: u64,
    seconds: f64,
}

async fn burst(client: &Client, rate: u32, seconds: f64) -> Burst {
    let histogram = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
    ));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = (f64::from(rate) * seconds).round() as u64;
    let started = Instant::now();
    for _ in 0..total {
        ticks.tick().await;
        let (client, histogram, failed) =
            (client.clone(), Arc::clone(&histogram), Arc::clone(&failed));
        tasks.spawn(async move {
            let t0 = Instant::now();
            match client.send(Method::GET, "/v1/status", "").await {
                Ok(a) if a.status == 200 => {
                    let us = t0.elapsed().as_micros().max(1) as u64;
                    let _ = histogram
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .record(us.min(60_000_000));
                }
                _ => {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        // Reap finished requests as we go (keeps the set small).
        while tasks.try_join_next().is_some() {}
    }
    let sent_s = started.elapsed().as_secs_f64();
    while tasks.join_next().await.is_some() {}
    let h = histogram.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Burst {
        ok: h.len(),
        failed: failed.load(std::sync::atomic::Ordering::Relaxed),
        latency_us: Some(h),
        seconds: sent_s,
    }
}

/// Records one session of `seconds + 2` s, with a burst during it or not; returns its summary.
async fn session(
    client: &Client,
    seconds: f64,
    rate: Option<u32>,
) -> anyhow::Result<(Value, Option<Burst>)> {
    let mut events = Box::pin(
        client
            .events()
            .await?
            .map_err(|a| anyhow::anyhow!("events refused: {}", a.json()))?,
    );
    // Live (or idle) first: after a session the devices reopen before the next may begin.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = client
            .request(Method::GET, "/v1/status", None)
            .await?
            .json()["state"]
            .clone();
        if state == "live" || state == "idle" {
            break;
        }
        if Instant::now() > deadline {
            bail!("the daemon did not settle (state {state}) within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let start = client
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&json!({"subject": "apiload", "duration_s": seconds + 2.0})),
        )
        .await?;
    if start.status != 201 {
        bail!("the session did not start: {}", start.json());
    }
    let burst = match rate {
        Some(rate) => Some(burst(client, rate, seconds).await),
        None => None,
    };
    while let Some(event) = events.next().await {
        if event?.kind == "session_ended" {
            break;
        }
    }
    let status = client.request(Method::GET, "/v1/status", None).await?;
    Ok((status.json()["last_session"].clone(), burst))
}

fn session_figures(summary: &Value) -> Value {
    let streams: Vec<Value> = summary["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let dropped: u64 = s["stats"]["dropped"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, v)| v.as_u64())
                .sum();
            json!({"name": s["name"], "captured": s["stats"]["captured"],
                   "in_file": s["frames_in_file"], "dropped": dropped})
        })
        .collect();
    json!({
        "duration_s": summary["duration_s"],
        "streams": streams,
        "capture_to_decision": summary["closed_loop"]["capture_to_decision"],
        "producers": summary["closed_loop"]["producers"].as_array().into_iter().flatten()
            .map(|p| json!({"name": p["name"], "skipped": p["skipped"],
                            "capture_to_output": p["capture_to_output"]}))
            .collect::<Vec<_>>(),
        "triggers": summary["closed_loop"]["triggers_sent"],
    })
}

/// Runs the benchmark.
pub fn api_load(
    config: Option<&Path>,
    rate: u32,
    seconds: f64,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(rate >= 1, "--rate must be at least 1 request per second");
    anyhow::ensure!(
        seconds > 0.0 && seconds.is_finite(),
        "--seconds must be positive"
    );
    let (served, address) = serve(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = Client::new(Endpoint::Tcp(address), None, "bench");
    let (quiet, loud, burst) = runtime.block_on(async {
        let (quiet, _) = session(&client, seconds, None).await?;
        let (loud, burst) = session(&client, seconds, Some(rate)).await?;
        anyhow::Ok((quiet, loud, burst.expect("a burst")))
    })?;
    drop(served);
    let h = burst
        .latency_us
        .clone()
        .unwrap_or_else(|| Histogram::new(3).expect("h"));
    let latency = json!({
        "requests_ok": burst.ok,
        "requests_failed": burst.failed,
        "rate_achieved_per_s": (burst.ok + burst.failed) as f64 / burst.seconds.max(1e-9),
        "p50_ms": h.value_at_quantile(0.5) as f64 / 1e3,
        "p99_ms": h.value_at_quantile(0.99) as f64 / 1e3,
        "max_ms": h.max() as f64 / 1e3,
    });
    let report = json!({
        "rig": config.map(|c| c.display().to_string()).unwrap_or_else(|| "built-in demo".into()),
        "rate_per_s": rate,
        "burst_s": seconds,
        "without_burst": session_figures(&quiet),
        "with_burst": session_figures(&loud),
        "status_latency": latency,
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &Value) {
    println!(
        "control plane under load: {} status requests/s for {} s on loopback TCP, rig {}",
        r["rate_per_s"],
        r["burst_s"],
        r["rig"].as_str().unwrap_or_default()
    );
    for (label, key) in [
        ("without burst", "without_burst"),
        ("with burst", "with_burst"),
    ] {
        let s = &r[key];
        let c = &s["capture_to_decision"];
        let drops: Vec<String> = s["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|st| {
                format!(
                    "{} {} of {}",
                    st["name"].as_str().unwrap_or_default(),
                    st["dropped"],
                    st["captured"]
                )
            })
            .collect();
        println!(
            "{label:<14} capture→decision p50 {:.2} ms p99 {:.2} ms max {:.2} ms ({} triggers); dropped: {}",
            c["p50_ms"].as_f64().unwrap_or(f64::NAN),
            c["p99_ms"].as_f64().unwrap_or(f64::NAN),
            c["max_ms"].as_f64().unwrap_or(f64::NAN),
            c["count"],
            drops.join(", ")
        );
        for p in s["producers"].as_array().into_iter().flatten() {
            let o = &p["capture_to_output"];
            println!(
                "{:<14}   {:<14} capture→output p50 {:.2} ms p99 {:.2} ms, skipped {}",
                "",
                p["name"].as_str().unwrap_or_default(),
                o["p50_ms"].as_f64().unwrap_or(f64::NAN),
                o["p99_ms"].as_f64().unwrap_or(f64::NAN),
                p["skipped"]
            );
        }
    }
    let l = &r["status_latency"];
    println!(
        "GET /v1/status: {} ok, {} failed, {:.0} requests/s; latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
        l["requests_ok"],
        l["requests_failed"],
        l["rate_achieved_per_s"].as_f64().unwrap_or(0.0),
        l["p50_ms"].as_f64().unwrap_or(0.0),
        l["p99_ms"].as_f64().unwrap_or(0.0),
        l["max_ms"].as_f64().unwrap_or(0.0)
    );
}
