//! The repository's documentation and comments stand on their own: they cite public sources and
//! the project's own files, never notes outside the repository that a user does not have, and
//! every relative link in the Markdown docs points at a file that exists.

use std::path::{Path, PathBuf};

/// Text that only makes sense to someone holding files from outside this repository (each
/// written in two pieces, so that this file does not cite them itself).
const OUTSIDE_REFERENCES: [&str; 10] = [
    concat!("../", "shared/"),
    concat!("shared", "/reference"),
    concat!("shared", "/design"),
    concat!("test-rigs", ".md"),
    concat!("miniscope-daq", ".md"),
    concat!("nwb-layout", ".md"),
    concat!("build-deps", ".md"),
    concat!("systemd-rig", ".md"),
    concat!("browser-rig", ".md"),
    concat!("rust-anchors", ".md"),
];

/// Folders and files whose text is checked.
const CHECKED: [&str; 10] = [
    "README.md",
    "BENCHMARKS.md",
    "docs",
    "src",
    "tests",
    "tools",
    "scripts",
    "config",
    "firmware-interface",
    "packaging",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "build" || name == "__pycache__" || name.starts_with('.') {
            return;
        }
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for entry in entries {
            text_files(&entry, out);
        }
    } else if std::fs::read_to_string(path).is_ok() {
        out.push(path.to_path_buf());
    }
}

#[test]
fn no_file_cites_documents_outside_the_repository() {
    let root = root();
    let mut files = Vec::new();
    for entry in CHECKED {
        text_files(&root.join(entry), &mut files);
    }
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut hits = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for needle in OUTSIDE_REFERENCES {
                if line.contains(needle) {
                    hits.push(format!(
                        "{}:{}: cites `{needle}`",
                        file.strip_prefix(&root).unwrap().display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(hits.is_empty(), "outside references:\n{}", hits.join("\n"));
}

/// `[text](target)` links in Markdown whose target is a relative path.
fn relative_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = &rest[..end];
        let path = target.split('#').next().unwrap_or("");
        if !path.is_empty() && !path.contains("://") && !path.starts_with("mailto:") {
            links.push(path.to_string());
        }
    }
    links
}

#[test]
fn every_relative_markdown_link_resolves() {
    let root = root();
    let mut files = Vec::new();
    for entry in CHECKED {
        text_files(&root.join(entry), &mut files);
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        for link in relative_links(&text) {
            checked += 1;
            let target = file.parent().unwrap().join(&link);
            if !target.exists() {
                broken.push(format!(
                    "{}: `{link}`",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(checked > 10, "only {checked} links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn link_finder_sees_relative_links_only() {
    let links = relative_links("see [a](docs/a.md#x), [b](https://x.org/b) and [c](../c.txt)");
    assert_eq!(links, ["docs/a.md", "../c.txt"]);
}
