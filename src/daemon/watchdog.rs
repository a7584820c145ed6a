//! The watchdog supervisor: tells systemd `WATCHDOG=1` every half watchdog period, but only
//! while every data-plane thread has beaten its [`Heartbeat`] within its deadline. A wedged
//! capture, recorder, inference, rules or link thread thus stops the pings, and systemd kills
//! and restarts the service (`WatchdogSec=` with `Restart=on-failure` in the shipped unit).
//!
//! It is control plane: one plain thread that wakes once per period, reads one atomic per
//! heartbeat and sends one datagram. The set of heartbeats changes with the lifecycle (none
//! while idle, the engine's while live or recording): [`Watchdog::watch_source`] gives it the
//! lifecycle's current set, [`Watchdog::watch`] a fixed one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::monotonic_ns;
use crate::daemon::systemd::Notifier;
use crate::heartbeat::{Heartbeat, first_overdue};

/// Name of the supervisor's OS thread.
pub const THREAD_NAME: &str = "watchdog";

/// Why the supervisor stopped pinging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withheld {
    /// The first thread found past its deadline.
    pub thread: String,
    /// How long it had been silent when that was found.
    pub silent: Duration,
}

/// What the supervisor has done so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogState {
    /// Checks made (one per period).
    pub checks: u64,
    /// `WATCHDOG=1` messages sent.
    pub pings: u64,
    /// Set while pings are withheld.
    pub withheld: Option<Withheld>,
}

/// Where the supervisor reads the heartbeats to check, once per period: the lifecycle's
/// current set (the open engine's, or none while idle).
pub type HeartbeatSource = Arc<dyn Fn() -> Vec<Arc<Heartbeat>> + Send + Sync>;

struct Shared {
    source: Mutex<HeartbeatSource>,
    withheld: Mutex<Option<Withheld>>,
    checks: AtomicU64,
    pings: AtomicU64,
}

/// The running supervisor; stopped when dropped.
pub struct Watchdog {
    shared: Arc<Shared>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the supervisor for a unit whose watchdog timeout is `timeout` (`WatchdogSec=`):
    /// it checks and pings every `timeout / 2`.
    pub fn for_timeout(notifier: Arc<Notifier>, timeout: Duration) -> std::io::Result<Self> {
        Self::spawn(notifier, timeout / 2)
    }

    /// Starts the supervisor, checking (and pinging when all is well) at once and then every
    /// `period`. It watches no heartbeat until [`Watchdog::watch`] gives it some.
    pub fn spawn(notifier: Arc<Notifier>, period: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            source: Mutex::new(Arc::new(Vec::new)),
            withheld: Mutex::new(None),
            checks: AtomicU64::new(0),
            pings: AtomicU64::new(0),
        });
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || supervise(&shared, &notifier, period, &stopped)
            })?;
        Ok(Self {
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Watches these heartbeats from now on (the engine's, or none while idle).
    pub fn watch(&self, beats: Vec<Arc<Heartbeat>>) {
        self.watch_source(Arc::new(move || beats.clone()));
    }

    /// Reads the heartbeats to check from `source` from now on, at every check.
    pub fn watch_source(&self, source: HeartbeatSource) {
        *lock(&self.shared.source) = source;
    }

    /// What the supervisor has done so far.
    pub fn state(&self) -> WatchdogState {
        WatchdogState {
            checks: self.shared.checks.load(Ordering::Acquire),
            pings: self.shared.pings.load(Ordering::Acquire),
            withheld: lock(&self.shared.withheld).clone(),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn supervise(shared: &Shared, notifier: &Notifier, period: Duration, stopped: &mpsc::Receiver<()>) {
    let mut send_failing = false;
    loop {
        let overdue = {
            let source = Arc::clone(&lock(&shared.source));
            let beats = source();
            first_overdue(&beats, monotonic_ns()).map(|(b, silent)| Withheld {
                thread: b.name().to_owned(),
                silent,
            })
        };
        let mut withheld = lock(&shared.withheld);
        match overdue {
            None => {
                match notifier.watchdog() {
                    Ok(()) => {
                        shared.pings.fetch_add(1, Ordering::AcqRel);
                        send_failing = false;
                    }
                    Err(e) if !send_failing => {
                        tracing::warn!("watchdog: {e}");
                        send_failing = true;
                    }
                    Err(_) => {}
                }
                if let Some(w) = withheld.take() {
                    tracing::warn!(thread = %w.thread, "watchdog: thread {} made progress again; pinging systemd again", w.thread);
                }
            }
            Some(w) => {
                if withheld.is_none() {
                    tracing::error!(
                        thread = %w.thread,
                        silent_ms = w.silent.as_millis() as u64,
                        "watchdog: thread {} has made no progress for {:.1} s; no longer telling systemd the service is alive (it will be restarted)",
                        w.thread,
                        w.silent.as_secs_f64()
                    );
                    *withheld = Some(w);
                }
            }
        }
        drop(withheld);
        shared.checks.fetch_add(1, Ordering::AcqRel);
        match stopped.recv_timeout(period) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;
    use std::time::Instant;

    use super::*;

    const PERIOD: Duration = Duration::from_millis(20);
    /// The thread the tests wedge.
    const DEADLINE: Duration = Duration::from_millis(500);
    /// The thread that keeps beating (long, so a busy machine cannot make it look wedged).
    const LONG_DEADLINE: Duration = Duration::from_secs(30);
    /// The longest any condition below may take to come true.
    const PATIENCE: Duration = Duration::from_secs(20);

    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let until = Instant::now() + PATIENCE;
        while !cond() {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::yield_now();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Datagrams waiting on the socket, without blocking.
    fn drain(socket: &UnixDatagram) -> Vec<String> {
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        while let Ok(n) = socket.recv(&mut buf) {
            got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        got
    }

    fn setup() -> (tempfile::TempDir, UnixDatagram, Arc<Notifier>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        let notifier = Arc::new(Notifier::connect(path.to_str().unwrap()).unwrap());
        (dir, socket, notifier)
    }

    #[test]
    fn pings_while_every_thread_beats_and_goes_silent_once_one_is_overdue() {
        let (_dir, socket, notifier) = setup();
        let capture = Heartbeat::new("capture-Miniscope", LONG_DEADLINE);
        let rules = Heartbeat::new("rules", DEADLINE);
        let dog = Watchdog::spawn(notifier, PERIOD).unwrap();
        dog.watch(vec![Arc::clone(&capture), Arc::clone(&rules)]);

        // Both threads beat: pings keep arriving.
        let mut received = Vec::new();
        wait_for("five pings while both threads beat", || {
            capture.beat();
            rules.beat();
            received.extend(drain(&socket));
            received.len() >= 5
        });
        assert!(received.iter().all(|m| m == "WATCHDOG=1"), "{received:?}");
        assert_eq!(dog.state().withheld, None);

        // `rules` wedges, `capture` keeps beating: the pings stop, naming `rules`.
        wait_for("the pings to be withheld", || {
            capture.beat();
            dog.state().withheld.is_some()
        });
        let state = dog.state();
        let withheld = state.withheld.clone().unwrap();
        assert_eq!(withheld.thread, "rules");
        assert!(withheld.silent > DEADLINE, "{withheld:?}");
        drain(&socket);
        // Several more checks, all still withholding: no datagram arrives.
        let pings = state.pings;
        wait_for("five more checks", || {
            capture.beat();
            dog.state().checks >= state.checks + 5
        });
        assert_eq!(drain(&socket), Vec::<String>::new());
        assert_eq!(dog.state().pings, pings);

        // `rules` makes progress again: pinging resumes.
        wait_for("a ping after rules beats again", || {
            capture.beat();
            rules.beat();
            !drain(&socket).is_empty()
        });
        assert_eq!(dog.state().withheld, None);
    }

    #[test]
    fn with_no_heartbeat_watched_the_process_counts_as_alive() {
        let (_dir, socket, notifier) = setup();
        let dog = Watchdog::spawn(notifier, PERIOD).unwrap();
        let mut received = Vec::new();
        wait_for("two pings", || {
            received.extend(drain(&socket));
            received.len() >= 2
        });
        // A set with one silent thread replaces the empty one: pings stop.
        let stale = Heartbeat::new("recorder", Duration::from_millis(1));
        wait_for("the recorder heartbeat to go stale", || {
            stale.overdue(monotonic_ns()).is_some()
        });
        dog.watch(vec![stale]);
        wait_for("the pings to be withheld", || {
            dog.state().withheld.is_some()
        });
        assert_eq!(dog.state().withheld.unwrap().thread, "recorder");
        // Back to idle (no engine): pings resume.
        dog.watch(Vec::new());
        wait_for("pings to resume", || dog.state().withheld.is_none());
    }

    #[test]
    fn a_source_is_read_at_every_check() {
        let (_dir, _socket, notifier) = setup();
        let dog = Watchdog::spawn(notifier, PERIOD).unwrap();
        // The lifecycle's current set, swapped as engines open and close.
        let current: Arc<Mutex<Vec<Arc<Heartbeat>>>> = Arc::default();
        dog.watch_source(Arc::new({
            let current = Arc::clone(&current);
            move || lock(&current).clone()
        }));
        let stale = Heartbeat::new("link-stim", Duration::from_millis(1));
        wait_for("the link heartbeat to go stale", || {
            stale.overdue(monotonic_ns()).is_some()
        });
        *lock(&current) = vec![stale];
        wait_for("the pings to be withheld", || {
            dog.state().withheld.is_some()
        });
        assert_eq!(dog.state().withheld.unwrap().thread, "link-stim");
        lock(&current).clear();
        wait_for("pings to resume", || dog.state().withheld.is_none());
    }

    #[test]
    fn dropping_the_supervisor_stops_its_thread() {
        let (_dir, socket, notifier) = setup();
        let dog = Watchdog::for_timeout(notifier, Duration::from_secs(3600)).unwrap();
        wait_for("the first check", || dog.state().checks >= 1);
        drop(dog); // joins: returns only because the thread ended
        assert_eq!(drain(&socket), vec!["WATCHDOG=1".to_owned()]);
    }
}
