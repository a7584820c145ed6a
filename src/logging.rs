//! Where log events go: the systemd journal through its native protocol when stderr is
//! connected to it (a service started by systemd), plain text on stderr otherwise.
//!
//! Under journald every event field becomes a journal field of its own (`session`, `stream`,
//! `rule`, `output`, `thread`, … → `SESSION`, `STREAM`, …), so `journalctl -u behavd
//! STREAM=Miniscope` or `journalctl -o json` find them without parsing text. The filter is
//! `$RUST_LOG` when set (tracing's `EnvFilter` syntax), else [`DEFAULT_FILTER`].

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing_journald::{Priority, PriorityMappings};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The log filter when `$RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,ort=warn";
/// Set by systemd to `DEVICE:INODE` of the journal stream it connected stdout/stderr to.
pub const JOURNAL_STREAM_ENV: &str = "JOURNAL_STREAM";
/// The `SYSLOG_IDENTIFIER` of behavd's journal entries.
pub const SYSLOG_IDENTIFIER: &str = "behavd";

/// Installs the global subscriber (once, at start-up): the journal when stderr is the journal
/// stream, else stderr (colours only on a terminal).
pub fn init() {
    if stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(journal) => {
                // syslog's meaning of the levels: info is 6 (informational), not 5 (notice).
                let priorities = PriorityMappings {
                    info: Priority::Informational,
                    debug: Priority::Debug,
                    trace: Priority::Debug,
                    ..PriorityMappings::new()
                };
                let journal = journal
                    .with_field_prefix(None)
                    .with_syslog_identifier(SYSLOG_IDENTIFIER.into())
                    .with_priority_mappings(priorities);
                tracing_subscriber::registry()
                    .with(filter())
                    .with(journal)
                    .init();
                return;
            }
            Err(e) => {
                init_stderr();
                tracing::warn!(
                    "stderr is the journal but its native socket is not usable ({e}); logging plain text to stderr"
                );
                return;
            }
        }
    }
    init_stderr();
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

fn init_stderr() {
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Whether stderr is the stream systemd connected to the journal: `$JOURNAL_STREAM` names its
/// device and inode (a child whose stderr was redirected elsewhere inherits the variable, so
/// the variable alone is not enough).
pub fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var(JOURNAL_STREAM_ENV) else {
        return false;
    };
    // fstat(2) of a duplicate of fd 2: the open file itself (for a socket, its sockfs inode).
    let meta = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata());
    match meta {
        Ok(meta) => journal_stream_matches(&value, meta.dev(), meta.ino()),
        Err(_) => false,
    }
}

/// Whether a `$JOURNAL_STREAM` value (`DEVICE:INODE`, decimal) names the file with `dev` and
/// `ino`.
pub fn journal_stream_matches(value: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_stream_is_recognised_by_device_and_inode() {
        let file = tempfile::tempfile().unwrap();
        let meta = file.metadata().unwrap();
        let value = format!("{}:{}", meta.dev(), meta.ino());
        assert!(journal_stream_matches(&value, meta.dev(), meta.ino()));
        // Another file (a redirected stderr) does not match.
        let other = tempfile::tempfile().unwrap().metadata().unwrap();
        assert!(!journal_stream_matches(&value, other.dev(), other.ino()));
        assert!(!journal_stream_matches("", meta.dev(), meta.ino()));
        assert!(!journal_stream_matches("garbage", meta.dev(), meta.ino()));
        assert!(!journal_stream_matches(
            &format!("{}", meta.dev()),
            meta.dev(),
            meta.ino()
        ));
    }
}
