//! Shared helpers: the built binary, the shipped rules, scratch rule directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rebound_engine::RuleSet;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped rule set, loaded and verified once per test.
pub fn shipped_rules() -> RuleSet {
    RuleSet::load_dir(&root().join("rules")).unwrap_or_else(|e| panic!("shipped rules do not load:\n{e}"))
}

/// A command for the built `rebound` binary.
pub fn rebound() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rebound"))
}

/// Runs a command with stdin closed, killing it if it hangs: a hang guard, not a timing assertion.
pub fn run_guarded(cmd: &mut Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            return (child.wait_with_output().unwrap(), started.elapsed());
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("command did not finish within {limit:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A scratch rule directory holding the shipped categories plus the given files.
pub fn rule_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("rules/categories.yaml"), dir.path().join("categories.yaml")).unwrap();
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    dir
}

pub fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}
