//! The QEMU + vivid guest for integration tests (see `tests/vm/README.md`): a share directory
//! with a `run.sh` and the binaries it needs, booted once under TCG by `tests/vm/run-vm.sh`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The project root.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails the test, saying how to install it, unless everything the guest needs is there.
pub fn require_rig() {
    let vm = std::env::var_os("BEHAVD_VM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join(".behavd/vm"));
    let how = "run `scripts/setup.sh --test` (or `tests/vm/prepare.sh`) to install QEMU and \
               build the guest kernel + initramfs";
    let qemu = Command::new("qemu-system-x86_64").arg("--version").output();
    assert!(
        qemu.is_ok_and(|o| o.status.success()),
        "qemu-system-x86_64 not found: {how}"
    );
    for file in ["vmlinux", "initramfs.cpio.gz"] {
        let path = vm.join(file);
        assert!(path.is_file(), "{} missing: {how}", path.display());
    }
}

/// A 9p share for one guest boot: a directory under cargo's target tmp dir, emptied when made
/// and left in place afterwards (the guest's console, logs and session files stay there for a
/// look after a failure; the next run replaces them).
pub struct Share {
    dir: PathBuf,
}

/// What one boot gave.
pub struct GuestRun {
    /// Exit code of `run.sh` (125: the guest wrote none).
    pub rc: i32,
    /// The serial console.
    pub console: String,
    /// Wall time from qemu's start to its exit.
    pub wall: Duration,
}

impl Share {
    /// An empty share `<target tmp>/<name>` with an `out/` directory for the guest's results.
    pub fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .unwrap_or_else(|e| panic!("cannot empty {}: {e}", dir.display()));
        }
        std::fs::create_dir_all(dir.join("out")).unwrap();
        Self { dir }
    }

    /// The share directory on the host (`/mnt` in the guest).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `name` into the share (`/mnt/<name>` in the guest), executable if `exec`.
    pub fn write(&self, name: &str, text: &str, exec: bool) {
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        if exec {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    /// Copies a dynamically linked host binary to `/mnt/bin/<name>` and the libraries `ldd`
    /// lists to `/mnt/lib` (run it in the guest with `LD_LIBRARY_PATH=/mnt/lib`).
    pub fn stage_binary(&self, binary: &Path, name: &str) {
        let bin = self.path().join("bin");
        let lib = self.path().join("lib");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::copy(binary, bin.join(name))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", binary.display()));
        let out = Command::new("ldd").arg(binary).output().expect("ldd runs");
        assert!(out.status.success(), "ldd {} failed", binary.display());
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(path) = line.split_whitespace().find(|w| w.starts_with('/')) else {
                continue;
            };
            let path = Path::new(path);
            let target = lib.join(path.file_name().unwrap());
            if !target.exists() {
                std::fs::copy(path, &target)
                    .unwrap_or_else(|e| panic!("cannot copy {}: {e}", path.display()));
            }
        }
    }

    /// Boots the guest on this share (at most `timeout_s` of guest time) and waits for it.
    pub fn boot(&self, timeout_s: u32) -> GuestRun {
        require_rig();
        let start = Instant::now();
        let out = Command::new(project_root().join("tests/vm/run-vm.sh"))
            .arg(self.path())
            .arg(timeout_s.to_string())
            .output()
            .expect("tests/vm/run-vm.sh starts");
        let wall = start.elapsed();
        let mut console = String::from_utf8_lossy(&out.stdout).into_owned();
        console.push_str(&String::from_utf8_lossy(&out.stderr));
        GuestRun {
            rc: out.status.code().unwrap_or(-1),
            console,
            wall,
        }
    }

    /// The text of a file the guest wrote (relative to the share), or a failure naming it.
    pub fn read(&self, name: &str) -> String {
        let path = self.path().join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the guest wrote no {}: {e}", path.display()))
    }
}

impl GuestRun {
    /// The console lines starting with `marker`.
    pub fn lines_with<'a>(&'a self, marker: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.console
            .lines()
            .filter_map(move |l| l.trim_start().strip_prefix(marker))
    }
}
