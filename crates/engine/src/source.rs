//! The files of a rule directory, read once, with the content digest that names a rule-set version.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{RuleError, RuleErrorKind, RuleErrors};

/// The text of every rule file (`*.yaml`, `*.yml`) and script (`*.rhai`) of a directory,
/// keyed by path relative to it and sorted, so that the same content always gives the same
/// rule order and digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSource {
    files: Vec<(PathBuf, String)>,
}

/// Names starting with a dot are skipped: Kubernetes' `..data` and `..<timestamp>` directories
/// (reached through the visible symlinks instead) and editors' swap files.
fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

fn is_rule_file(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "rhai"))
}

impl RuleSource {
    /// Reads a rule directory recursively, following symlinks.
    pub fn from_dir(dir: &Path) -> Result<RuleSource, RuleErrors> {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        walk(dir, Path::new(""), &mut files, &mut errors, 0);
        if !errors.is_empty() {
            return Err(RuleErrors(errors));
        }
        Ok(RuleSource::from_files(files))
    }

    /// Builds a source from files already in memory (the embedded rules, tests).
    pub fn from_files(files: impl IntoIterator<Item = (PathBuf, String)>) -> RuleSource {
        let mut files: Vec<_> = files.into_iter().filter(|(p, _)| is_rule_file(p)).collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        files.dedup_by(|a, b| a.0 == b.0);
        RuleSource { files }
    }

    /// The files, sorted by path.
    pub fn files(&self) -> &[(PathBuf, String)] {
        &self.files
    }

    /// SHA-256 over every path and content, hex: equal digests mean equal rule sets.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for (path, text) in &self.files {
            let path = path.to_string_lossy();
            // Lengths first, so that no two different file lists hash the same byte stream.
            hasher.update((path.len() as u64).to_le_bytes());
            hasher.update(path.as_bytes());
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
        }
        hasher.finalize().iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

/// Depth bound against symlink cycles.
const MAX_DEPTH: usize = 16;

fn walk(root: &Path, rel: &Path, files: &mut Vec<(PathBuf, String)>, errors: &mut Vec<RuleError>, depth: usize) {
    let dir = root.join(rel);
    let io_error = |path: &Path, e: std::io::Error| RuleError::new(path, None, None, RuleErrorKind::Io(e.to_string()));
    if depth > MAX_DEPTH {
        errors.push(RuleError::new(
            &dir,
            None,
            None,
            RuleErrorKind::Io("directories nested too deep (a symlink loop?)".into()),
        ));
        return;
    }
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => return errors.push(io_error(&dir, e)),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                errors.push(io_error(&dir, e));
                continue;
            }
        };
        let name = entry.file_name();
        if is_hidden(&name) {
            continue;
        }
        let rel_path = rel.join(&name);
        let full = root.join(&rel_path);
        // `metadata` follows symlinks, as a ConfigMap mount needs.
        match std::fs::metadata(&full) {
            Ok(meta) if meta.is_dir() => walk(root, &rel_path, files, errors, depth + 1),
            Ok(_) if is_rule_file(&rel_path) => match std::fs::read_to_string(&full) {
                Ok(text) => files.push((rel_path, text)),
                Err(e) => errors.push(io_error(&rel_path, e)),
            },
            Ok(_) => {}
            // A file removed while we list the directory: the next reload sees the new state.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => errors.push(io_error(&rel_path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_names_and_contents() {
        let a = RuleSource::from_files([("a.yaml".into(), "x".into())]);
        let b = RuleSource::from_files([("b.yaml".into(), "x".into())]);
        let c = RuleSource::from_files([("a.yaml".into(), "y".into())]);
        assert_ne!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
        assert_eq!(
            a.digest(),
            RuleSource::from_files([("a.yaml".into(), "x".into())]).digest()
        );
        assert_eq!(a.digest().len(), 64);
    }

    #[test]
    fn reads_nested_directories_and_skips_hidden_entries() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("seed"))?;
        std::fs::create_dir_all(dir.path().join("..2026_01_01"))?;
        std::fs::write(dir.path().join("seed/a.yaml"), "rules: []")?;
        std::fs::write(dir.path().join("..2026_01_01/b.yaml"), "rules: []")?;
        std::fs::write(dir.path().join(".a.yaml.swp"), "junk")?;
        std::fs::write(dir.path().join("README.md"), "docs")?;
        let source = RuleSource::from_dir(dir.path()).map_err(|e| std::io::Error::other(e.to_string()))?;
        let names: Vec<_> = source.files().iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(names, [PathBuf::from("seed/a.yaml")]);
        Ok(())
    }
}
