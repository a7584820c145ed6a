//! The control plane: `behavd serve` (the lifecycle idle / live / recording behind an HTTP +
//! JSON API on a Unix socket and optional TCP) and the client `behavd ctl` uses.
//!
//! Async (tokio, axum, hyper) and only here: the data plane (src/pipeline, source, infer,
//! rules, stim, record) never imports this module. The engine is driven from one plain thread
//! ([`lifecycle`]); handlers read published snapshots. See docs/service.md.

pub mod api;
pub mod client;
pub mod config_ops;
pub mod engine_thread;
pub mod error;
pub mod events;
pub mod lifecycle;
pub mod listen;
pub mod metrics;
pub mod requests;
pub mod systemd;
pub mod systemd_hooks;
pub mod watchdog;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::middleware;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::LoadedConfig;
use crate::pipeline::engine::EngineOptions;
use api::Peer;
use lifecycle::{Lifecycle, ServiceHooks};

/// `behavd serve`'s arguments: each overrides its config key.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Rig config (default: the built-in demo rig).
    pub config: Option<PathBuf>,
    /// Overrides `[daemon] socket`.
    pub socket: Option<PathBuf>,
    /// Overrides `[daemon] listen`.
    pub listen: Option<String>,
    /// Overrides `[recording] output_dir`.
    pub output: Option<PathBuf>,
}

/// Exit status of an abort (a second signal while stopping).
pub const ABORT_STATUS: i32 = 130;

/// How long the servers may take to close their connections once the engine has stopped
/// (event streams are cut after it).
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Loads and checks the rig, then serves until SIGTERM / SIGINT / SIGHUP, which end a running
/// session cleanly (file finalized).
pub fn serve(options: ServeOptions, hooks: Arc<dyn ServiceHooks>) -> anyhow::Result<()> {
    let checked = match &options.config {
        Some(path) => config_ops::check_file(path),
        None => {
            let demo = LoadedConfig::demo();
            config_ops::check_review(
                crate::config::Review {
                    loaded: Some(demo.clone()),
                    errors: Vec::new(),
                    warnings: Vec::new(),
                },
                demo.origin,
            )
        }
    };
    for w in &checked.warnings {
        tracing::warn!("{w}");
    }
    let Some(loaded) = checked.loaded else {
        let errors: Vec<String> = checked.errors.iter().map(|e| e.to_string()).collect();
        anyhow::bail!("the rig config is invalid:\n  {}", errors.join("\n  "));
    };
    let mut daemon = loaded.config.daemon.clone();
    if let Some(socket) = options.socket.clone() {
        daemon.socket = socket;
    }
    if let Some(listen) = options.listen.clone() {
        daemon.listen = Some(listen);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("daemon-api")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(loaded, daemon, options.output, hooks))
}

async fn run(
    loaded: LoadedConfig,
    daemon: crate::config::daemon::DaemonConfig,
    output: Option<PathBuf>,
    hooks: Arc<dyn ServiceHooks>,
) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;

    let unix = listen::unix_socket(
        &daemon.socket,
        daemon.socket_mode,
        daemon.socket_group.as_deref(),
    )?;
    let socket_path = daemon.socket.clone();
    let _remove_socket = RemoveOnDrop(socket_path.clone());
    let tcp = match &daemon.listen {
        Some(address) => Some(listen::tcp(address, daemon.token_file.as_deref()).await?),
        None => None,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let (lifecycle, engine_thread) = Lifecycle::start(
        loaded,
        EngineOptions {
            output_dir: output,
            cancel: Some(Arc::clone(&cancel)),
        },
        Arc::clone(&hooks),
    )?;
    // The service watchdog checks the open engine's heartbeats (none while idle).
    hooks.watch(Arc::new({
        let lifecycle = Arc::clone(&lifecycle);
        move || lifecycle.heartbeats()
    }));

    let (close_tx, close_rx) = tokio::sync::watch::channel(false);
    let closed = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|c| *c).await;
    };
    let app = api::router(Arc::clone(&lifecycle));
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(
        axum::serve(
            unix,
            app.clone().into_make_service_with_connect_info::<Peer>(),
        )
        .with_graceful_shutdown(closed(close_rx.clone()))
        .into_future(),
    );
    tracing::info!(socket = %socket_path.display(), "API listening");
    if let Some((listener, token)) = tcp {
        let address = listener.local_addr()?;
        let app = match token {
            Some(token) => {
                let token = Arc::new(token);
                app.layer(middleware::from_fn(move |request, next| {
                    api::require_token(Arc::clone(&token), request, next)
                }))
            }
            None => app,
        };
        servers.spawn(
            axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
                .with_graceful_shutdown(closed(close_rx.clone()))
                .into_future(),
        );
        tracing::info!(%address, "API listening on TCP");
    }
    lifecycle.ready();

    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
        _ = hangup.recv() => "SIGHUP",
        Some(ended) = servers.join_next() => {
            let _ = lifecycle.shutdown("the API server failed".into()).await;
            return match ended {
                Ok(Ok(())) => Err(anyhow::anyhow!("the API server ended")),
                Ok(Err(e)) => Err(e).context("the API server failed"),
                Err(e) => Err(e).context("the API server failed"),
            };
        }
    };
    tracing::info!(
        signal = name,
        "stop requested (send it again to abort without closing the file)"
    );
    cancel.store(true, Ordering::Relaxed);
    let done = lifecycle.shutdown(format!("daemon stopped by {name}"));
    tokio::select! {
        _ = done => {}
        _ = terminate.recv() => abort(),
        _ = interrupt.recv() => abort(),
        _ = hangup.recv() => abort(),
    }
    let _ = engine_thread.join();
    let _ = close_tx.send(true);
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    servers.abort_all();
    tracing::info!("stopped");
    Ok(())
}

fn abort() -> ! {
    let removed = crate::cleanup::run_abort_cleanup();
    tracing::warn!(removed = ?removed, "second signal: aborting; the session file keeps what was flushed and is not finalized");
    std::process::exit(ABORT_STATUS);
}

/// Removes the socket when the daemon ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
