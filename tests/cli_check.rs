//! `behavd check`: a valid config prints the rig; a broken one exits 1 naming file, line, key.

mod common;

use common::*;

#[test]
fn a_valid_config_is_accepted_and_described() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml");
    let out = run_ok(behavd().args(["check", "--config", demo]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Miniscope") && text.contains("608x608 @ 30 fps"),
        "{text}"
    );
    assert!(
        text.contains("BehaviorCam0") && text.contains("640x480"),
        "{text}"
    );
}

#[test]
fn a_typo_exits_1_with_file_line_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rig.toml");
    std::fs::write(
        &path,
        "[[source]]\nkind = \"synthetic-miniscope\"\nfsp = 30\n",
    )
    .unwrap();
    let out = behavd()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:1", path.display())), "{err}");
    assert!(err.contains("did you mean `fps`"), "{err}");
}

#[test]
fn run_refuses_a_broken_config_without_creating_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rig.toml");
    std::fs::write(
        &path,
        "[[source]]\nkind = \"synthetic-behavior\"\nfps = -5.0\n",
    )
    .unwrap();
    let out = behavd()
        .args(["run", "--duration", "1", "--config"])
        .arg(&path)
        .arg("--output")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("source[0].fps"), "{err}");
    assert!(!dir.path().join("out").exists(), "nothing was recorded");
}
