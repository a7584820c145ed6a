//! `[daemon]`: how `behavd serve` offers its control API (docs/config.md, docs/service.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::RigConfig;
use super::validate::Problems;

/// The Unix socket `behavd serve` listens on when neither the config nor `--socket` names one.
pub const DEFAULT_SOCKET: &str = "/run/behavd/behavd.sock";

/// `[daemon]`: the control API of `behavd serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
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

/// The `[daemon]` problems of a parsed config.
pub(super) fn check(config: &RigConfig, p: &mut Problems) {
    let d = &config.daemon;
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
