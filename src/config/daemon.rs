//! `[daemon]`: how `behavd serve` offers its control API, keeps the rig while no session runs,
//! and watches its threads (docs/config.md, docs/service.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::RigConfig;
use super::validate::Problems;

/// Longest a data-plane thread may go without progress by default, seconds.
pub const DEFAULT_THREAD_DEADLINE_S: f64 = 5.0;

/// The Unix socket `behavd serve` listens on when neither the config nor `--socket` names one.
pub const DEFAULT_SOCKET: &str = "/run/behavd/behavd.sock";

/// `[daemon]`: the control API of `behavd serve`, its lifecycle and watchdog settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Whether the rules may send triggers to the stimulators while live (devices open, no
    /// session recorded). Default false: a live rule evaluates and counts but sends nothing;
    /// every rule is armed when a session begins.
    #[serde(default)]
    pub arm_in_live: bool,
    /// Longest a data-plane thread (capture, recorder, inference, rules, stimulator link) may
    /// go without making progress before it counts as wedged, seconds. Default 5.
    #[serde(default = "default_thread_deadline")]
    pub thread_deadline_s: f64,
    /// The Unix socket of the API. Default `/run/behavd/behavd.sock`.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Group given the socket (its members may use the API). Default: the daemon's own group.
    #[serde(default)]
    pub socket_group: Option<String>,
    /// Permission bits of the socket, e.g. `0o660`. Default `0o660` (owner and group).
    #[serde(default = "default_socket_mode")]
    pub socket_mode: u32,
    /// Optional TCP address of the API, `HOST:PORT`. A loopback address is open; any other
    /// requires the bearer token of `token_file`.
    #[serde(default)]
    pub listen: Option<String>,
    /// File holding the bearer token TCP clients must send (`Authorization: Bearer <token>`).
    /// Refused if it is readable by others than its owner and group.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

impl DaemonConfig {
    /// The thread deadline as a duration.
    pub fn thread_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.thread_deadline_s)
    }
}

fn default_thread_deadline() -> f64 {
    DEFAULT_THREAD_DEADLINE_S
}

fn default_socket() -> PathBuf {
    PathBuf::from(DEFAULT_SOCKET)
}

fn default_socket_mode() -> u32 {
    0o660
}

/// Why a `listen` address cannot be used, in words.
pub fn listen_problem(listen: &str) -> Option<String> {
    match listen.parse::<SocketAddr>() {
        Ok(_) => None,
        Err(_) => Some(format!(
            "`{listen}` is not an address HOST:PORT with a numeric host (e.g. `127.0.0.1:7878` or `[::1]:7878`)"
        )),
    }
}

/// Checks `[daemon]` and the disk-guard keys of `[recording]`, each error located at its key.
pub(super) fn check(config: &RigConfig, p: &mut Problems) {
    let d = &config.daemon;
    // Every wait of the data plane is well under 0.1 s; a shorter deadline would be noise.
    if !(d.thread_deadline_s.is_finite() && (0.1..=600.0).contains(&d.thread_deadline_s)) {
        p.error(
            "daemon.thread_deadline_s",
            format!("is {}; must be between 0.1 and 600 s", d.thread_deadline_s),
        );
    }
    let r = &config.recording;
    let disabled = r.min_free_mb == 0 && r.stop_free_mb == 0;
    if !disabled && r.stop_free_mb >= r.min_free_mb {
        p.error(
            "recording.stop_free_mb",
            format!(
                "is {} MB; must be below recording.min_free_mb ({} MB), or both 0 to turn the \
                 disk guard off: a session must be able to start with more room than the \
                 level at which it is stopped",
                r.stop_free_mb, r.min_free_mb
            ),
        );
    }
    if d.socket.as_os_str().is_empty() {
        p.error("daemon.socket", "the socket path is empty");
    } else if d.socket.is_relative() {
        p.error(
            "daemon.socket",
            format!(
                "`{}` is relative; give an absolute path (the service's working directory is not yours)",
                d.socket.display()
            ),
        );
    }
    if d.socket_mode > 0o777 {
        p.error(
            "daemon.socket_mode",
            format!(
                "{:#o} is not a permission mode 0o000–0o777 (write it as an octal literal, e.g. 0o660)",
                d.socket_mode
            ),
        );
    } else if d.socket_mode & 0o600 != 0o600 {
        p.error(
            "daemon.socket_mode",
            format!(
                "{:#o} does not let the daemon's own user read and write the socket (0o600 at least)",
                d.socket_mode
            ),
        );
    }
    if let Some(group) = &d.socket_group
        && (group.is_empty() || group.contains(['\0', '/', ':']))
    {
        p.error(
            "daemon.socket_group",
            format!("`{group}` is not a group name"),
        );
    }
    if let Some(listen) = &d.listen
        && let Some(problem) = listen_problem(listen)
    {
        p.error("daemon.listen", problem);
    }
    if let Some(token) = &d.token_file
        && token.as_os_str().is_empty()
    {
        p.error("daemon.token_file", "the token file path is empty");
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, LoadedConfig};

    const MINIMAL: &str = "[[source]]\nkind = \"synthetic-miniscope\"\n";

    fn errors(daemon: &str) -> Vec<ConfigError> {
        let text = format!("{MINIMAL}\n[daemon]\n{daemon}");
        LoadedConfig::review_str(&text, "rig.toml").errors
    }

    #[test]
    fn defaults() {
        let d = LoadedConfig::from_str(MINIMAL, "rig.toml")
            .unwrap()
            .config
            .daemon;
        assert_eq!(d.socket, std::path::Path::new(super::DEFAULT_SOCKET));
        assert_eq!(d.socket_mode, 0o660);
        assert_eq!(d.listen, None);
        assert_eq!(d.token_file, None);
        assert_eq!(d.socket_group, None);
    }

    #[test]
    fn keys_parse() {
        let text = format!(
            "{MINIMAL}\n[daemon]\nsocket = \"/tmp/b.sock\"\nsocket_group = \"behavd\"\nsocket_mode = 0o600\nlisten = \"0.0.0.0:7878\"\ntoken_file = \"/etc/behavd/token\"\n"
        );
        let d = LoadedConfig::from_str(&text, "rig.toml")
            .unwrap()
            .config
            .daemon;
        assert_eq!(d.socket_mode, 0o600);
        assert_eq!(d.listen.as_deref(), Some("0.0.0.0:7878"));
        assert_eq!(d.socket_group.as_deref(), Some("behavd"));
    }

    #[test]
    fn bad_values_are_located_errors() {
        for (line, key, words) in [
            ("listen = \"localhost:80\"", "daemon.listen", "numeric host"),
            ("listen = \"127.0.0.1\"", "daemon.listen", "HOST:PORT"),
            ("socket = \"run/b.sock\"", "daemon.socket", "relative"),
            ("socket_mode = 0o1777", "daemon.socket_mode", "0o000–0o777"),
            ("socket_mode = 0o060", "daemon.socket_mode", "own user"),
            (
                "socket_group = \"a:b\"",
                "daemon.socket_group",
                "not a group",
            ),
        ] {
            let errors = errors(line);
            assert_eq!(errors.len(), 1, "{line}: {errors:?}");
            let e = &errors[0];
            assert_eq!(e.key(), Some(key), "{e}");
            assert_eq!(e.position().map(|p| p.0), Some(5), "{e}");
            assert!(e.to_string().contains(words), "{e}");
        }
    }

    #[test]
    fn unknown_key_is_refused_with_a_suggestion() {
        let errors = errors("tokenfile = \"/x\"\n");
        assert!(
            errors[0].to_string().contains("token_file"),
            "{}",
            errors[0]
        );
    }
}
