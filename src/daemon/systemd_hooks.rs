//! What `behavd serve` tells systemd about itself, in one place: `READY=1` once the rig is
//! loaded and the API listens, `STATUS=` each time the one-line status changes, `STOPPING=1`
//! when it shuts down, and — when the unit has `WatchdogSec=` — the watchdog supervisor
//! ([`Watchdog`]) over the heartbeats of the engine that is open. It is the
//! [`ServiceHooks`] `behavd serve` runs with.
//!
//! Outside systemd (no `$NOTIFY_SOCKET`) every call only logs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::daemon::lifecycle::ServiceHooks;
use crate::daemon::systemd::{self, Notifier};
use crate::daemon::watchdog::{HeartbeatSource, Watchdog};

/// The service manager's side of the lifecycle.
pub struct SystemdHooks {
    notifier: Option<Arc<Notifier>>,
    watchdog: Option<Watchdog>,
}

impl SystemdHooks {
    /// From the environment systemd sets (`$NOTIFY_SOCKET`, `$WATCHDOG_USEC`, `$WATCHDOG_PID`);
    /// a bad value is an error naming the variable.
    pub fn from_env() -> anyhow::Result<Self> {
        let notifier = Notifier::from_env().context("the service manager's notification socket")?;
        let timeout = systemd::watchdog_timeout().context("the service manager's watchdog")?;
        Self::new(notifier, timeout)
    }

    /// Sending to `notifier` (none: only log), with the watchdog supervisor running when
    /// `watchdog_timeout` is given.
    pub fn new(
        notifier: Option<Notifier>,
        watchdog_timeout: Option<Duration>,
    ) -> anyhow::Result<Self> {
        let notifier = notifier.map(Arc::new);
        let watchdog = match (&notifier, watchdog_timeout) {
            (Some(n), Some(timeout)) => {
                tracing::info!(
                    "watchdog: telling systemd every {:.1} s that every data-plane thread makes progress (WatchdogSec={:.1}s)",
                    timeout.as_secs_f64() / 2.0,
                    timeout.as_secs_f64()
                );
                Some(
                    Watchdog::for_timeout(Arc::clone(n), timeout)
                        .context("cannot start the watchdog thread")?,
                )
            }
            (None, Some(_)) => {
                tracing::warn!(
                    "{} is set but {} is not: no watchdog pings can be sent",
                    systemd::WATCHDOG_USEC_ENV,
                    systemd::NOTIFY_SOCKET_ENV
                );
                None
            }
            (_, None) => None,
        };
        Ok(Self { notifier, watchdog })
    }

    /// Whether a service manager listens (`$NOTIFY_SOCKET` was set).
    pub fn notifying(&self) -> bool {
        self.notifier.is_some()
    }

    /// The watchdog supervisor, when the unit asked for one.
    pub fn watchdog(&self) -> Option<&Watchdog> {
        self.watchdog.as_ref()
    }

    fn send(&self, f: impl FnOnce(&Notifier) -> Result<(), systemd::NotifyError>) {
        if let Some(n) = &self.notifier
            && let Err(e) = f(n)
        {
            tracing::warn!("{e}");
        }
    }
}

impl ServiceHooks for SystemdHooks {
    /// `READY=1`: the rig is loaded and the API listens.
    fn ready(&self, status: &str) {
        tracing::info!(%status, "ready");
        self.send(|n| n.ready(status));
    }

    /// `STATUS=`: the one-line status changed.
    fn status(&self, status: &str) {
        self.send(|n| n.status(status));
    }

    /// `STOPPING=1`: the daemon is stopping (the session, if any, is being finalized).
    fn stopping(&self) {
        tracing::info!("stopping");
        self.send(|n| n.stopping("stopping: finalizing the session, closing devices"));
    }

    /// Where the watchdog reads the heartbeats from now on, at every check (the lifecycle's
    /// current set).
    fn watch(&self, source: HeartbeatSource) {
        if let Some(dog) = &self.watchdog {
            dog.watch_source(source);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;
    use std::time::Instant;

    use super::*;
    use crate::heartbeat::Heartbeat;

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 1024];
        let n = socket.recv(&mut buf).expect("a notification arrives");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn the_lifecycle_reaches_systemd_and_the_watchdog_follows_the_engine_heartbeats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let notifier = Notifier::connect(path.to_str().unwrap()).unwrap();
        // WatchdogSec=0.2s: pings every 0.1 s.
        let hooks = SystemdHooks::new(Some(notifier), Some(Duration::from_millis(200))).unwrap();
        assert!(hooks.notifying());

        // Nothing open yet: the watchdog pings.
        assert_eq!(receive(&socket), "WATCHDOG=1");
        hooks.ready("live: demo.toml");
        let next_other = |socket: &UnixDatagram| loop {
            let m = receive(socket);
            if m != "WATCHDOG=1" {
                break m;
            }
        };
        assert_eq!(next_other(&socket), "READY=1\nSTATUS=live: demo.toml");
        hooks.status("recording m042");
        assert_eq!(next_other(&socket), "STATUS=recording m042");

        // An engine whose rules thread never beats: the pings stop, naming it.
        let stale = Heartbeat::new("rules", Duration::from_millis(1));
        hooks.watch(Arc::new(move || vec![Arc::clone(&stale)]));
        let dog = hooks.watchdog().unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while dog.state().withheld.is_none() {
            assert!(Instant::now() < until, "the pings were never withheld");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(dog.state().withheld.unwrap().thread, "rules");

        hooks.stopping();
        assert_eq!(
            next_other(&socket),
            "STOPPING=1\nSTATUS=stopping: finalizing the session, closing devices"
        );
    }

    #[test]
    fn outside_systemd_nothing_is_sent_and_nothing_fails() {
        let hooks = SystemdHooks::new(None, Some(Duration::from_secs(1))).unwrap();
        assert!(!hooks.notifying());
        assert!(hooks.watchdog().is_none());
        hooks.ready("idle");
        hooks.status("live");
        hooks.watch(Arc::new(Vec::new));
        hooks.stopping();
    }
}
