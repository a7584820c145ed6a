//! `behavd inspect`: what a session file holds.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

/// Prints the report of a session file as text or JSON.
pub fn inspect(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let report = behavd::record::inspect::inspect(path)
        .with_context(|| format!("{}: cannot read as a behavd session file", path.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
