//! Finding and loading `libonnxruntime` (ort's `load-dynamic`): one process-wide environment.
//!
//! Discovery order: the `[inference] onnxruntime` config key, `ORT_DYLIB_PATH`, next to the
//! executable, the project-local install made by `scripts/setup.sh` (`.behavd/onnxruntime/lib`
//! in the current directory or above the executable), then Python's `onnxruntime` package
//! (located with `importlib.util.find_spec`, without importing it).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;

use super::InferError;

/// The ONNX Runtime version behavd is built against (`api-31`); older libraries are refused.
pub const REQUIRED_VERSION: &str = "1.31";

const INSTALL_HINT: &str = "install it with `scripts/setup.sh` (puts libonnxruntime 1.31.1 from the \
     onnxruntime==1.31.1 PyPI wheel into .behavd/onnxruntime/lib), or `pip install onnxruntime==1.31.1`, \
     or point `[inference] onnxruntime` / ORT_DYLIB_PATH at libonnxruntime.so.1.31.x";

static ENVIRONMENT: OnceLock<Result<(Environment, PathBuf), String>> = OnceLock::new();

/// Loads ONNX Runtime once per process and returns its environment and the library's path.
///
/// Later calls return the first result, whatever `configured` says.
pub fn environment(
    configured: Option<&str>,
) -> Result<(&'static Environment, &'static Path), InferError> {
    let loaded = ENVIRONMENT.get_or_init(|| load(configured).map_err(|e| e.to_string()));
    match loaded {
        Ok((env, path)) => Ok((env, path.as_path())),
        Err(message) => Err(InferError::Runtime(message.clone())),
    }
}

fn load(configured: Option<&str>) -> Result<(Environment, PathBuf), InferError> {
    for (what, explicit) in [
        ("[inference] onnxruntime", configured.map(PathBuf::from)),
        (
            "ORT_DYLIB_PATH",
            std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from),
        ),
    ] {
        if let Some(p) = explicit
            && !p.is_file()
            && !(p.is_relative() && exe_dir().is_some_and(|d| d.join(&p).is_file()))
        {
            return Err(InferError::Runtime(format!(
                "{what} names {}, which does not exist; {INSTALL_HINT}",
                p.display()
            )));
        }
    }
    let (path, tried) = find_library(configured);
    let Some(path) = path else {
        return Err(InferError::Runtime(format!(
            "libonnxruntime not found (tried: {}); {INSTALL_HINT}",
            tried.join(", ")
        )));
    };
    let builder = ort::init_from(&path).map_err(|e| {
        InferError::Runtime(format!(
            "cannot load ONNX Runtime from {}: {e}; it must be version {REQUIRED_VERSION} or newer: {INSTALL_HINT}",
            path.display()
        ))
    })?;
    let env = builder
        .with_name("behavd")
        .with_telemetry(false)
        .build()
        .map_err(|e| InferError::Runtime(format!("ONNX Runtime environment: {e}")))?;
    tracing::info!(library = %path.display(), "ONNX Runtime loaded");
    Ok((env, path))
}

/// Looks for the library in discovery order; returns the first that exists and every place tried.
pub fn find_library(configured: Option<&str>) -> (Option<PathBuf>, Vec<String>) {
    let mut tried = Vec::new();
    let mut candidates: Vec<(String, PathBuf)> = Vec::new();
    if let Some(p) = configured {
        candidates.push(("[inference] onnxruntime".into(), PathBuf::from(p)));
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        let p = match (p.is_relative(), exe_dir()) {
            (true, Some(dir)) if dir.join(&p).exists() => dir.join(&p),
            _ => p,
        };
        candidates.push(("ORT_DYLIB_PATH".into(), p));
    }
    if let Some(dir) = exe_dir() {
        for name in ["libonnxruntime.so", "libonnxruntime.so.1"] {
            candidates.push(("next to the executable".into(), dir.join(name)));
        }
        for ancestor in dir.ancestors() {
            candidates.push((
                "project install".into(),
                ancestor.join(".behavd/onnxruntime/lib/libonnxruntime.so.1"),
            ));
        }
    }
    if let Ok(cwd) = std::env::current_dir() {
        candidates.push((
            "project install".into(),
            cwd.join(".behavd/onnxruntime/lib/libonnxruntime.so.1"),
        ));
    }
    for (what, path) in candidates {
        if path.is_file() {
            return (Some(path), tried);
        }
        tried.push(format!("{} ({what})", path.display()));
    }
    match python_library() {
        Some(path) => (Some(path), tried),
        None => {
            tried.push("Python onnxruntime package (find_spec)".into());
            (None, tried)
        }
    }
}

fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// Asks Python where the `onnxruntime` package is (25 ms; `import onnxruntime` would take 340 ms).
fn python_library() -> Option<PathBuf> {
    let python = std::env::var("BEHAVD_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import importlib.util as u; s = u.find_spec('onnxruntime'); \
             print(s.submodule_search_locations[0] if s else '')",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let dir = String::from_utf8(output.stdout).ok()?;
    let capi = Path::new(dir.trim()).join("capi");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&capi)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    found.sort();
    found.pop()
}
