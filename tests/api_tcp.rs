//! The API over TCP: a loopback address is open (the peer's address is the origin of a change);
//! any other address needs the bearer token from `[daemon] token_file` — requests without it or
//! with a wrong one get 401 naming `authorization` — and the daemon refuses to start with a
//! world-readable token file or with no token file at all.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use behavd::daemon::client::{Client, Endpoint};
use behavd::record::inspect::inspect;
use common::daemon::*;
use hyper::Method;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// This machine's address on its default route (not loopback), if it has one: what a client
/// on the lab network would connect to.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the route.
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

fn token_file(dir: &std::path::Path, mode: u32) -> PathBuf {
    let path = dir.join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn daemon_with(extra: &str, args: &[&str]) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let rig = emulated_rig() + extra;
    let d = Daemon::spawn(&rig, args);
    (d, dir)
}

#[test]
fn loopback_tcp_is_open_and_the_peer_address_is_the_origin() {
    let (d, _dir) = daemon_with("", &["--listen", "127.0.0.1:0"]);
    d.wait_ready();
    let address = d.tcp_address();
    assert!(address.ip().is_loopback());
    let client = Client::new(Endpoint::Tcp(address.to_string()), None, "tcp-test");
    let status = client.send_blocking(Method::GET, "/v1/status", "").unwrap();
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["state"], "idle");
    let start = client
        .send_blocking(Method::POST, "/v1/sessions", r#"{"subject": "tcp1"}"#)
        .unwrap();
    assert_eq!(start.status, 201, "{}", start.json());
    let stop = client
        .send_blocking(Method::POST, "/v1/sessions/current/stop", "")
        .unwrap();
    assert_eq!(stop.status, 200, "{}", stop.json());
    let path = PathBuf::from(start.json()["path"].as_str().unwrap());
    let notes = file_notes(&path);
    assert!(
        notes.contains("stopped by tcp-test (127.0.0.1:"),
        "the stop with the peer address as its origin: {notes}"
    );
    assert!(!inspect(&path).unwrap().open_for_write);
}

#[test]
fn a_non_loopback_address_needs_the_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), 0o600);
    let extra = format!(
        "\n[daemon]\nlisten = \"0.0.0.0:0\"\ntoken_file = \"{}\"\n",
        token.display()
    );
    let (d, _keep) = daemon_with(&extra, &[]);
    d.wait_ready();
    let port = d.tcp_address().port();
    // Through the machine's own network address when it has one (else the wildcard
    // listener's loopback side: the listen address, not the path, decides).
    let host = non_loopback_ip()
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let endpoint = Endpoint::Tcp(format!("{host}:{port}"));
    let anonymous = Client::new(endpoint.clone(), None, "tcp-test");
    let refused = anonymous
        .send_blocking(Method::GET, "/v1/status", "")
        .unwrap();
    assert_eq!(refused.status, 401, "{}", refused.json());
    assert_eq!(refused.json()["field"], "authorization");
    let start = anonymous
        .send_blocking(Method::POST, "/v1/sessions", "{}")
        .unwrap();
    assert_eq!(start.status, 401);
    let wrong = Client::new(endpoint.clone(), Some("not-the-token-at-all".into()), "t");
    assert_eq!(
        wrong
            .send_blocking(Method::GET, "/v1/status", "")
            .unwrap()
            .status,
        401
    );
    let client = Client::new(endpoint, Some(TOKEN.into()), "tcp-test");
    let status = client.send_blocking(Method::GET, "/v1/status", "").unwrap();
    assert_eq!(status.status, 200, "{}", status.json());
    let start = client
        .send_blocking(Method::POST, "/v1/sessions", r#"{"subject": "tok"}"#)
        .unwrap();
    assert_eq!(start.status, 201, "{}", start.json());
    let stop = client
        .send_blocking(Method::POST, "/v1/sessions/current/stop", "")
        .unwrap();
    assert_eq!(stop.status, 200);
    // Nothing was started by the refused requests: one file.
    assert_eq!(std::fs::read_dir(&d.output).unwrap().count(), 1);
    // The Unix socket (file permissions guard it) needs no token.
    assert_ne!(d.status()["state"], "recording");
}

#[test]
fn a_world_readable_or_missing_token_file_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let readable = token_file(dir.path(), 0o644);
    for (extra, words) in [
        (
            format!(
                "\n[daemon]\nlisten = \"0.0.0.0:0\"\ntoken_file = \"{}\"\n",
                readable.display()
            ),
            "readable by every user",
        ),
        (
            format!(
                "\n[daemon]\nlisten = \"0.0.0.0:0\"\ntoken_file = \"{}\"\n",
                dir.path().join("missing").display()
            ),
            "cannot be read",
        ),
        (
            "\n[daemon]\nlisten = \"0.0.0.0:0\"\n".to_string(),
            "not a loopback address",
        ),
    ] {
        let (mut d, _keep) = daemon_with(&extra, &[]);
        let (status, stderr) = d.wait_exit(Duration::from_secs(15));
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(words), "`{words}` in {stderr}");
        assert!(!d.socket.exists(), "nothing left listening");
    }
}
