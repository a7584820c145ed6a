//! The API's listeners: the Unix socket (its directory created, group and mode set, a stale
//! socket removed, another daemon's refused) and the optional TCP address with its token.

use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Why a listener cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Another process answers on the socket.
    #[error(
        "another behavd (or another program) answers on {0}; stop it, or give this one another --socket"
    )]
    InUse(PathBuf),
    /// The socket path holds something else.
    #[error("{0} exists and is not a socket; remove it or give another --socket")]
    NotASocket(PathBuf),
    /// The token file is unusable.
    #[error("token file {path}: {why}")]
    Token {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A non-loopback address without a token.
    #[error(
        "listen = {0} is not a loopback address: it needs [daemon] token_file (a bearer token every TCP client must send)"
    )]
    NeedsToken(SocketAddr),
}

/// Binds the Unix socket at `path` with `mode` and `group`.
pub fn unix_socket(
    path: &Path,
    mode: u32,
    group: Option<&str>,
) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the socket directory {}", dir.display()))?;
        // Others may need to traverse it to reach the socket; the socket's mode decides.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(ListenError::NotASocket(path.to_path_buf()).into());
            }
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ListenError::InUse(path.to_path_buf()).into());
            }
            tracing::info!(socket = %path.display(), "removing a stale socket (nobody answers on it)");
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot look at {}", path.display())),
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    let permissions = || -> anyhow::Result<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set mode {mode:#o} on {}", path.display()))?;
        if let Some(group) = group {
            let gid = group_id(group)?;
            std::os::unix::fs::chown(path, None, Some(gid)).with_context(|| {
                format!(
                    "cannot give {} to group {group} (the daemon's user must be a member of it)",
                    path.display()
                )
            })?;
        }
        Ok(())
    };
    if let Err(e) = permissions() {
        // Not left behind half set up.
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(listener)
}

/// The id of group `name`.
fn group_id(name: &str) -> anyhow::Result<u32> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let c = std::ffi::CString::new(name).context("group name with a NUL byte")?;
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; the buffer outlives it.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut group,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        bail!("socket_group `{name}`: no such group on this machine");
    }
    Ok(group.gr_gid)
}

/// Reads the bearer token from `path`, refusing a file others may read.
pub fn read_token(path: &Path) -> Result<String, ListenError> {
    let err = |why: String| ListenError::Token {
        path: path.to_path_buf(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot be read: {e}")))?;
    if !meta.is_file() {
        return Err(err("is not a regular file".into()));
    }
    if meta.mode() & 0o004 != 0 {
        return Err(err(format!(
            "is readable by every user (mode {:#o}); `chmod o-rwx {}` first",
            meta.mode() & 0o777,
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot be read: {e}")))?;
    let token = text.trim().to_string();
    if token.len() < 16 {
        return Err(err(format!(
            "holds a token of {} characters; use at least 16 (e.g. `openssl rand -hex 32`)",
            token.len()
        )));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(
            "the token has spaces or control characters inside; one line of printable characters"
                .into(),
        ));
    }
    Ok(token)
}

/// The TCP listener and the token its clients must send (None: open, loopback only).
pub async fn tcp(
    address: &str,
    token_file: Option<&Path>,
) -> anyhow::Result<(tokio::net::TcpListener, Option<String>)> {
    let address: SocketAddr = address.parse().map_err(|_| {
        anyhow::anyhow!(
            "listen: {}",
            crate::config::daemon::listen_problem(address).unwrap_or_default()
        )
    })?;
    let token = match token_file {
        Some(path) => Some(read_token(path)?),
        None if address.ip().is_loopback() => None,
        None => return Err(ListenError::NeedsToken(address).into()),
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    Ok((listener, token))
}
