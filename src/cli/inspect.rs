//! `behavd inspect`: what a session file holds.

use std::path::Path;
use std::process::ExitCode;

use behavd::record::inspect::InspectError;

/// Prints the report of a session file as text or JSON.
pub fn inspect(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let report = match behavd::record::inspect::inspect(path) {
        Ok(report) => report,
        Err(e @ InspectError::Hdf5(_)) => {
            return Err(anyhow::Error::new(e).context(format!(
                "{}: cannot read as a behavd session file",
                path.display()
            )));
        }
        // These name the file and what is wrong with it already.
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
