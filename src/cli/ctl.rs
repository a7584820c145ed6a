//! `behavd ctl`: the daemon's API from the shell (docs/service.md). Exit status: 0 done,
//! 1 error (the daemon failed, or anything else), 2 usage, 4 refused by the daemon (a 4xx
//! answer: the request or the state does not allow it), 5 daemon unreachable.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use behavd::daemon::client::{Answer, Client, ClientError, Endpoint};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use hyper::Method;
use serde_json::{Value, json};

use super::ctl_print::{WatchLine, event_line, print_sessions, print_status};

/// Exit status: done.
pub const EXIT_OK: u8 = 0;
/// Exit status: an error (the daemon failed, a 5xx, or a local problem).
pub const EXIT_ERROR: u8 = 1;
/// Exit status: bad arguments (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the daemon refused the request (4xx).
pub const EXIT_REFUSED: u8 = 4;
/// Exit status: no daemon answers.
pub const EXIT_UNREACHABLE: u8 = 5;

/// Where the daemon is and how to talk to it.
#[derive(Args, Debug)]
pub struct Connection {
    /// The daemon's Unix socket (default: $BEHAVD_SOCKET, else /run/behavd/behavd.sock).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The daemon's TCP address instead, http://HOST:PORT.
    #[arg(long, global = true, value_name = "URL", conflicts_with = "socket")]
    url: Option<String>,
    /// Bearer token for a TCP address that requires one (prefer --token-file: arguments are
    /// visible to other users).
    #[arg(long, global = true, value_name = "TOKEN")]
    token: Option<String>,
    /// File holding the bearer token.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// Print the daemon's JSON answer on stdout.
    #[arg(long, global = true)]
    json: bool,
}

/// `behavd ctl` subcommands.
#[derive(Subcommand, Debug)]
pub enum CtlCommand {
    /// State, session, streams (fps, drops by cause), models, rules, outputs, disk, uptime.
    Status,
    /// Start a session; prints the session file's path.
    Start {
        /// Subject id (overrides [session.subject] id).
        #[arg(long)]
        subject: Option<String>,
        /// Session description.
        #[arg(long)]
        description: Option<String>,
        /// Notes written into the file.
        #[arg(long)]
        notes: Option<String>,
        /// End the session after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        duration: Option<f64>,
        /// Experimenter, "Last, First" (repeat for several).
        #[arg(long)]
        experimenter: Vec<String>,
    },
    /// Stop the running session (the file is finalized); prints its summary.
    Stop {
        /// Why (recorded in the file's notes).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Add a timestamped note to the running session.
    Note {
        /// The note.
        text: String,
    },
    /// The session files in the output directory with their summaries.
    Sessions,
    /// Change a stream control live (e.g. `set Miniscope led 30`).
    Set {
        /// Stream name.
        stream: String,
        /// Control (led, ewl, gain, fps — as the device allows).
        control: String,
        /// New value.
        value: f64,
    },
    /// Arm a rule.
    Arm {
        /// Rule name.
        rule: String,
    },
    /// Disarm a rule.
    Disarm {
        /// Rule name.
        rule: String,
    },
    /// A manual test pulse on an output (through the same limits as the rules' pulses).
    Pulse {
        /// Output name.
        output: String,
        /// Pulse length in ms.
        #[arg(long, value_name = "MS")]
        on_ms: f64,
    },
    /// Open the devices without recording (idle → live).
    Live,
    /// Release the devices (live → idle).
    Idle,
    /// Follow the event stream: a status line redrawn on a terminal, one line per event
    /// otherwise (one JSON object per line with --json).
    Watch {
        /// Stop after this many events (the first is the current state).
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// The rig config: get, validate or load one.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `behavd ctl config` subcommands.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// The config in use (file, text, parsed).
    Get,
    /// Check a config as `behavd check` does, without loading it.
    Validate {
        /// Config file (its path on the daemon's machine).
        file: PathBuf,
        /// Send the file's text instead of its path (for a daemon on another machine).
        #[arg(long)]
        text: bool,
    },
    /// Load a config (only while idle; on error the old one stays).
    Load {
        /// Config file (its path on the daemon's machine).
        file: PathBuf,
        /// Send the file's text instead of its path.
        #[arg(long)]
        text: bool,
    },
}

/// What a command failed with, and its exit status.
struct Failure(u8, String);

/// Runs a `ctl` command; returns its exit status.
pub fn ctl(connection: Connection, command: CtlCommand) -> ExitCode {
    let json = connection.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result =
        client(&connection).and_then(|client| runtime.block_on(run(&client, command, json)));
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(Failure(code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

fn client(c: &Connection) -> Result<Client, Failure> {
    let endpoint = match &c.url {
        Some(url) => Endpoint::from_url(url).map_err(client_failure)?,
        None => Endpoint::Unix(
            c.socket
                .clone()
                .or_else(|| std::env::var_os("BEHAVD_SOCKET").map(PathBuf::from))
                .unwrap_or_else(|| behavd::config::daemon::DEFAULT_SOCKET.into()),
        ),
    };
    let token = match (&c.token, &c.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| Failure(EXIT_USAGE, format!("--token-file {}: {e}", path.display())))?
                .trim()
                .to_string(),
        ),
        (None, None) => std::env::var("BEHAVD_TOKEN").ok(),
    };
    Ok(Client::new(endpoint, token, "ctl"))
}

fn client_failure(e: ClientError) -> Failure {
    let code = match e {
        ClientError::Unreachable { .. } => EXIT_UNREACHABLE,
        ClientError::Protocol { .. } => EXIT_ERROR,
        ClientError::Usage(_) => EXIT_USAGE,
    };
    Failure(code, e.to_string())
}

/// The answer's JSON, or the failure its status means.
fn expect_ok(answer: Answer, json_out: bool) -> Result<Value, Failure> {
    let body = answer.json();
    if answer.ok() {
        return Ok(body);
    }
    if json_out {
        println!("{}", pretty(&body));
    }
    let message = match (body["error"].as_str(), body["field"].as_str()) {
        (Some(e), Some(f)) => format!("{e} (field `{f}`)"),
        (Some(e), None) => e.to_string(),
        _ => format!(
            "HTTP {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ),
    };
    let code = if (400..500).contains(&answer.status) {
        EXIT_REFUSED
    } else {
        EXIT_ERROR
    };
    // A config that did not load: every error, as `behavd check` prints them.
    if let Some(errors) = body["report"]["errors"].as_array()
        && !json_out
    {
        for e in errors.iter().skip(1) {
            eprintln!("error: {}", e["text"].as_str().unwrap_or_default());
        }
    }
    Err(Failure(code, message))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

async fn call(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<Value>,
    json_out: bool,
) -> Result<Value, Failure> {
    let answer = client
        .request(method, path, body.as_ref())
        .await
        .map_err(client_failure)?;
    let value = expect_ok(answer, json_out)?;
    if json_out {
        println!("{}", pretty(&value));
    }
    Ok(value)
}

fn segment(name: &str) -> String {
    // Names are identifiers (letters, digits, `_`); anything else is escaped.
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn run(client: &Client, command: CtlCommand, json_out: bool) -> Result<(), Failure> {
    let human = !json_out;
    match command {
        CtlCommand::Status => {
            let v = call(client, Method::GET, "/v1/status", None, json_out).await?;
            if human {
                print_status(&v);
            }
        }
        CtlCommand::Start {
            subject,
            description,
            notes,
            duration,
            experimenter,
        } => {
            let mut body = json!({});
            let fields = [
                ("subject", subject.map(Value::from)),
                ("description", description.map(Value::from)),
                ("notes", notes.map(Value::from)),
                ("duration_s", duration.map(Value::from)),
                (
                    "experimenter",
                    (!experimenter.is_empty()).then(|| Value::from(experimenter)),
                ),
            ];
            for (key, value) in fields {
                if let Some(value) = value {
                    body[key] = value;
                }
            }
            let v = call(client, Method::POST, "/v1/sessions", Some(body), json_out).await?;
            if human {
                println!("recording {}", v["path"].as_str().unwrap_or_default());
            }
        }
        CtlCommand::Stop { reason } => {
            let body = reason.map(|r| json!({"reason": r}));
            let v = call(
                client,
                Method::POST,
                "/v1/sessions/current/stop",
                body,
                json_out,
            )
            .await?;
            if human {
                println!(
                    "session file: {} ({:.1} MB, {:.1} s)",
                    v["path"].as_str().unwrap_or_default(),
                    v["file_bytes"].as_f64().unwrap_or(0.0) / 1e6,
                    v["duration_s"].as_f64().unwrap_or(0.0)
                );
                if let Some(e) = v["recording_error"].as_str() {
                    println!("recording failed: {e}");
                }
            }
        }
        CtlCommand::Note { text } => {
            let v = call(
                client,
                Method::POST,
                "/v1/sessions/current/notes",
                Some(json!({"text": text})),
                json_out,
            )
            .await?;
            if human {
                println!("noted: {}", applied(&v));
            }
        }
        CtlCommand::Sessions => {
            let v = call(client, Method::GET, "/v1/sessions", None, json_out).await?;
            if human {
                print_sessions(&v);
            }
        }
        CtlCommand::Set {
            stream,
            control,
            value,
        } => {
            let body = json!({"stream": stream, "control": control, "value": value});
            let v = call(client, Method::POST, "/v1/controls", Some(body), json_out).await?;
            if human {
                println!("{}", applied(&v));
            }
        }
        CtlCommand::Arm { rule } => {
            let path = format!("/v1/rules/{}/arm", segment(&rule));
            let v = call(client, Method::POST, &path, None, json_out).await?;
            if human {
                println!("{}", applied(&v));
            }
        }
        CtlCommand::Disarm { rule } => {
            let path = format!("/v1/rules/{}/disarm", segment(&rule));
            let v = call(client, Method::POST, &path, None, json_out).await?;
            if human {
                println!("{}", applied(&v));
            }
        }
        CtlCommand::Pulse { output, on_ms } => {
            let path = format!("/v1/outputs/{}/pulse", segment(&output));
            let v = call(
                client,
                Method::POST,
                &path,
                Some(json!({"on_ms": on_ms})),
                json_out,
            )
            .await?;
            if human {
                println!("{}", applied(&v));
            }
        }
        CtlCommand::Live => {
            let v = call(client, Method::POST, "/v1/live", None, json_out).await?;
            if human {
                println!("{}", v["status"].as_str().unwrap_or_default());
            }
        }
        CtlCommand::Idle => {
            let v = call(client, Method::POST, "/v1/idle", None, json_out).await?;
            if human {
                println!("{}", v["status"].as_str().unwrap_or_default());
            }
        }
        CtlCommand::Watch { count } => watch(client, count, json_out).await?,
        CtlCommand::Config(c) => config(client, c, json_out).await?,
    }
    Ok(())
}

/// A change the daemon made, in words: `target name = value: result`.
fn applied(v: &Value) -> String {
    if let Some(a) = v["applied"].as_str() {
        return a.to_string();
    }
    match (v["target"].as_str(), v["name"].as_str()) {
        (Some(target), Some(name)) => format!(
            "{target} {name} = {}: {}",
            v["value"],
            v["result"].as_str().unwrap_or_default()
        ),
        _ => v.to_string(),
    }
}

async fn config(client: &Client, command: ConfigCommand, json_out: bool) -> Result<(), Failure> {
    let body = |file: &PathBuf, text: bool| -> Result<Value, Failure> {
        if text {
            let t = std::fs::read_to_string(file)
                .map_err(|e| Failure(EXIT_USAGE, format!("{}: {e}", file.display())))?;
            Ok(json!({"text": t}))
        } else {
            let path = std::path::absolute(file)
                .map_err(|e| Failure(EXIT_USAGE, format!("{}: {e}", file.display())))?;
            Ok(json!({"path": path}))
        }
    };
    match command {
        ConfigCommand::Get => {
            let v = call(client, Method::GET, "/v1/config", None, json_out).await?;
            if !json_out {
                println!("# {}", v["file"].as_str().unwrap_or_default());
                print!("{}", v["text"].as_str().unwrap_or_default());
            }
        }
        ConfigCommand::Validate { file, text } => {
            let v = call(
                client,
                Method::POST,
                "/v1/config/validate",
                Some(body(&file, text)?),
                json_out,
            )
            .await?;
            let errors = v["errors"].as_array().cloned().unwrap_or_default();
            if !json_out {
                for e in &errors {
                    eprintln!("error: {}", e["text"].as_str().unwrap_or_default());
                }
                for w in v["warnings"].as_array().into_iter().flatten() {
                    eprintln!(
                        "warning: {}:{}:{}: key `{}`: {}",
                        w["file"].as_str().unwrap_or_default(),
                        w["line"],
                        w["column"],
                        w["key"].as_str().unwrap_or_default(),
                        w["message"].as_str().unwrap_or_default()
                    );
                }
                if errors.is_empty() {
                    println!("{}: OK", v["file"].as_str().unwrap_or_default());
                }
            }
            if !errors.is_empty() {
                return Err(Failure(
                    EXIT_ERROR,
                    format!("{} error(s) in the config", errors.len()),
                ));
            }
        }
        ConfigCommand::Load { file, text } => {
            let v = call(
                client,
                Method::POST,
                "/v1/config/load",
                Some(body(&file, text)?),
                json_out,
            )
            .await?;
            if !json_out {
                println!("loaded {}", v["config"].as_str().unwrap_or_default());
            }
        }
    }
    Ok(())
}

async fn watch(client: &Client, count: Option<u64>, json_out: bool) -> Result<(), Failure> {
    let stream = client.events().await.map_err(client_failure)?;
    let mut stream = match stream {
        Ok(s) => Box::pin(s),
        Err(answer) => return expect_ok(answer, json_out).map(|_| ()),
    };
    let tty = std::io::stdout().is_terminal() && !json_out;
    let mut line = WatchLine::default();
    let mut seen = 0u64;
    let mut stdout = std::io::stdout();
    while let Some(item) = stream.next().await {
        let event = item.map_err(client_failure)?;
        seen += 1;
        if json_out {
            println!("{}", serde_json::to_string(&event.data).unwrap_or_default());
        } else {
            line.update(&event.kind, &event.data);
            if tty {
                let _ = write!(stdout, "\r\x1b[2K{}", line.render());
                let _ = stdout.flush();
            } else {
                println!("{}", event_line(&event.kind, &event.data));
            }
        }
        if count.is_some_and(|c| seen >= c) {
            break;
        }
    }
    if tty {
        println!();
    }
    if count.is_none_or(|c| seen < c) {
        eprintln!("the event stream ended (the daemon stopped)");
    }
    Ok(())
}
