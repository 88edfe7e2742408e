//! The files of a rule directory, read once and within bounds, with the content digest that names
//! a rule-set version.
//!
//! The directory is hostile input: an entry may be a FIFO (opening it waits for a writer
//! forever), a device (`/dev/zero` never ends), a symlink loop, or a runaway file. Only regular
//! files are read (a symlink is followed to one), each directory once by device and inode, and
//! every size, count and depth is capped, so a reload ends with an error naming the entry.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io::Read as _;
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
    /// Reads a rule directory recursively, following symlinks, within [`ReadLimits::DEFAULT`].
    pub fn from_dir(dir: &Path) -> Result<RuleSource, RuleErrors> {
        RuleSource::from_dir_within(dir, &ReadLimits::DEFAULT)
    }

    /// Reads a rule directory recursively, following symlinks, within `limits`.
    pub fn from_dir_within(dir: &Path, limits: &ReadLimits) -> Result<RuleSource, RuleErrors> {
        let mut walk = Walk {
            root: dir,
            limits,
            files: Vec::new(),
            errors: Vec::new(),
            entries: 0,
            total_bytes: 0,
            dirs_read: HashMap::new(),
            stopped: false,
        };
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {
                walk.enter(PathBuf::new(), &meta, 0);
            }
            // No file to name: the message names the directory.
            Ok(meta) => {
                let kind = kind_of(meta.file_type());
                let message = format!("the rule directory {}: a {kind}, not a directory", dir.display());
                walk.fail("", RuleErrorKind::Io(message));
            }
            Err(e) => walk.fail(
                "",
                RuleErrorKind::Io(format!("the rule directory {}: {e}", dir.display())),
            ),
        }
        if !walk.errors.is_empty() {
            // In path order, not the file system's listing order, so that each run reads the same.
            walk.errors.sort_by(|a, b| a.file.cmp(&b.file));
            return Err(RuleErrors(walk.errors));
        }
        Ok(RuleSource::from_files(walk.files))
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

/// Bounds on reading a rule directory. Each is far above any real rule set (the shipped one is
/// 42 files, 185 KB, two levels deep) and low enough that a mistaken or hostile directory ends in
/// an error quickly and in little memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest rule file or script, in bytes.
    pub max_file_bytes: u64,
    /// Largest sum of all rule files and scripts, in bytes.
    pub max_total_bytes: u64,
    /// Most directory entries listed, all directories together; hidden and ignored entries count,
    /// since listing them costs as much.
    pub max_entries: usize,
    /// Deepest directory nesting below the rule directory.
    pub max_depth: usize,
}

impl ReadLimits {
    /// What `rebound check`, `serve` and every reload use.
    pub const DEFAULT: ReadLimits = ReadLimits {
        max_file_bytes: 4 << 20,
        max_total_bytes: 32 << 20,
        max_entries: 10_000,
        max_depth: 16,
    };
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits::DEFAULT
    }
}

/// One reading of a rule directory.
struct Walk<'a> {
    root: &'a Path,
    limits: &'a ReadLimits,
    files: Vec<(PathBuf, String)>,
    errors: Vec<RuleError>,
    entries: usize,
    total_bytes: u64,
    /// Every directory read so far, by device and inode, with the path it was read as: a
    /// symlink back to one of them is a loop (or a second way to the same rules).
    dirs_read: HashMap<(u64, u64), PathBuf>,
    /// A limit on the whole walk was reached: read nothing more.
    stopped: bool,
}

impl Walk<'_> {
    fn fail(&mut self, file: impl Into<PathBuf>, kind: RuleErrorKind) {
        self.errors.push(RuleError::new(file, None, None, kind));
    }

    /// Reads the directory `rel` (whose metadata is `meta`) unless it was read already.
    fn enter(&mut self, rel: PathBuf, meta: &Metadata, depth: usize) {
        if depth > self.limits.max_depth {
            let max_depth = self.limits.max_depth;
            return self.fail(rel, RuleErrorKind::TooDeep { max_depth });
        }
        if let Some(key) = dir_key(meta) {
            if let Some(first) = self.dirs_read.get(&key) {
                let first = if first.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    first.clone()
                };
                return self.fail(rel, RuleErrorKind::RepeatedDirectory { first });
            }
            self.dirs_read.insert(key, rel.clone());
        }
        let entries = match std::fs::read_dir(self.root.join(&rel)) {
            Ok(entries) => entries,
            Err(e) => return self.fail(rel, RuleErrorKind::Io(e.to_string())),
        };
        for entry in entries {
            if self.stopped {
                return;
            }
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                self.stopped = true;
                let max_entries = self.limits.max_entries;
                return self.fail(rel, RuleErrorKind::TooManyEntries { max_entries });
            }
            let name = match entry {
                Ok(entry) => entry.file_name(),
                Err(e) => {
                    self.fail(&rel, RuleErrorKind::Io(e.to_string()));
                    continue;
                }
            };
            if is_hidden(&name) {
                continue;
            }
            let rel_path = rel.join(&name);
            // `metadata` follows symlinks, as a ConfigMap mount needs, and never opens the
            // entry, so it cannot block on a FIFO.
            match std::fs::metadata(self.root.join(&rel_path)) {
                Ok(meta) if meta.is_dir() => self.enter(rel_path, &meta, depth + 1),
                Ok(meta) if is_rule_file(&rel_path) => self.read_file(rel_path, &meta),
                Ok(_) => {}
                // Removed while we list the directory (or a dangling link): the next reload sees the new state.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => self.fail(rel_path, RuleErrorKind::Io(e.to_string())),
            }
        }
    }

    fn read_file(&mut self, rel: PathBuf, meta: &Metadata) {
        let max_file_bytes = self.limits.max_file_bytes;
        if let Err(kind) = check_regular(meta, max_file_bytes) {
            return self.fail(rel, kind);
        }
        let file = match open_without_blocking(&self.root.join(&rel)) {
            Ok(file) => file,
            Err(e) => return self.fail(rel, RuleErrorKind::Io(e.to_string())),
        };
        // Again on what was opened: the entry may have been swapped since the stat above.
        let checked = file
            .metadata()
            .map_err(|e| RuleErrorKind::Io(e.to_string()))
            .and_then(|meta| check_regular(&meta, max_file_bytes).map(|()| meta.len()));
        let len = match checked {
            Ok(len) => len,
            Err(kind) => return self.fail(rel, kind),
        };
        // `take` holds a file that grows while it is read to one byte over the cap.
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        if let Err(e) = file.take(max_file_bytes.saturating_add(1)).read_to_end(&mut bytes) {
            return self.fail(rel, RuleErrorKind::Io(e.to_string()));
        }
        let size = bytes.len() as u64;
        if size > max_file_bytes {
            return self.fail(rel, RuleErrorKind::FileTooLarge { size, max_file_bytes });
        }
        self.total_bytes += size;
        if self.total_bytes > self.limits.max_total_bytes {
            self.stopped = true;
            let max_total_bytes = self.limits.max_total_bytes;
            return self.fail(rel, RuleErrorKind::TotalTooLarge { max_total_bytes });
        }
        match String::from_utf8(bytes) {
            Ok(text) => self.files.push((rel, text)),
            Err(e) => self.fail(rel, RuleErrorKind::Io(format!("not UTF-8: {}", e.utf8_error()))),
        }
    }
}

/// Refuses what is not a regular file, or is one over the cap, before a byte is read.
fn check_regular(meta: &Metadata, max_file_bytes: u64) -> Result<(), RuleErrorKind> {
    if !meta.is_file() {
        let kind = kind_of(meta.file_type());
        return Err(RuleErrorKind::NotRegularFile { kind, max_file_bytes });
    }
    if meta.len() > max_file_bytes {
        let size = meta.len();
        return Err(RuleErrorKind::FileTooLarge { size, max_file_bytes });
    }
    Ok(())
}

/// Opens for reading without waiting: a FIFO swapped in after the stat opens at once (and is
/// refused by type) instead of waiting for a writer that never comes. No effect on regular files.
fn open_without_blocking(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// What an entry is, in the words of `ls -l`'s documentation.
fn kind_of(file_type: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "FIFO";
        }
        if file_type.is_socket() {
            return "socket";
        }
        if file_type.is_char_device() {
            return "character device";
        }
        if file_type.is_block_device() {
            return "block device";
        }
    }
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

/// A directory's identity across the symlinks that lead to it.
#[cfg(unix)]
fn dir_key(meta: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    Some((meta.dev(), meta.ino()))
}

/// Without inode numbers, only the depth and entry caps stop a loop.
#[cfg(not(unix))]
fn dir_key(_: &Metadata) -> Option<(u64, u64)> {
    None
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

    fn read(dir: &Path, limits: &ReadLimits) -> Result<Vec<PathBuf>, Vec<RuleErrorKind>> {
        match RuleSource::from_dir_within(dir, limits) {
            Ok(source) => Ok(source.files().iter().map(|(p, _)| p.clone()).collect()),
            Err(errors) => Err(errors.0.into_iter().map(|e| e.kind).collect()),
        }
    }

    #[cfg(unix)]
    #[test]
    fn follows_configmap_symlinks_to_files_and_directories() -> std::io::Result<()> {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("..2026_01_01");
        std::fs::create_dir_all(data.join("seed"))?;
        std::fs::write(data.join("a.yaml"), "rules: []")?;
        std::fs::write(data.join("seed/b.yaml"), "rules: []")?;
        symlink("..2026_01_01", dir.path().join("..data"))?;
        symlink("..data/a.yaml", dir.path().join("a.yaml"))?;
        symlink("..data/seed", dir.path().join("seed"))?;
        let files = read(dir.path(), &ReadLimits::DEFAULT);
        assert_eq!(files, Ok(vec![PathBuf::from("a.yaml"), PathBuf::from("seed/b.yaml")]));
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_reached_twice_is_one_error_not_a_walk() -> std::io::Result<()> {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("sub"))?;
        std::fs::write(dir.path().join("sub/a.yaml"), "rules: []")?;
        symlink("..", dir.path().join("sub/up"))?;
        let errors = RuleSource::from_dir(dir.path()).map(|_| ()).map_err(|e| e.0);
        let back = RuleErrorKind::RepeatedDirectory { first: ".".into() };
        assert_eq!(errors, Err(vec![RuleError::new("sub/up", None, None, back)]));

        // A second link to a directory (not a loop) would read its rules twice.
        std::fs::remove_file(dir.path().join("sub/up"))?;
        symlink("sub", dir.path().join("again"))?;
        let Err(kinds) = read(dir.path(), &ReadLimits::DEFAULT) else {
            panic!("a directory was read twice");
        };
        assert!(
            matches!(&kinds[..], [RuleErrorKind::RepeatedDirectory { first }] if first == Path::new("sub") || first == Path::new("again")),
            "{kinds:?}"
        );
        Ok(())
    }

    #[test]
    fn directories_nested_past_the_depth_cap_are_an_error() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("1/2/3"))?;
        std::fs::write(dir.path().join("1/2/a.yaml"), "rules: []")?;
        let limits = ReadLimits {
            max_depth: 2,
            ..ReadLimits::DEFAULT
        };
        assert_eq!(
            read(dir.path(), &limits),
            Err(vec![RuleErrorKind::TooDeep { max_depth: 2 }])
        );
        std::fs::remove_dir(dir.path().join("1/2/3"))?;
        assert_eq!(read(dir.path(), &limits), Ok(vec![PathBuf::from("1/2/a.yaml")]));
        Ok(())
    }

    #[test]
    fn listing_stops_at_the_entry_cap() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        for i in 0..10 {
            std::fs::write(dir.path().join(format!("{i}.md")), "not a rule file")?;
        }
        let limits = ReadLimits {
            max_entries: 9,
            ..ReadLimits::DEFAULT
        };
        assert_eq!(
            read(dir.path(), &limits),
            Err(vec![RuleErrorKind::TooManyEntries { max_entries: 9 }])
        );
        let limits = ReadLimits {
            max_entries: 10,
            ..ReadLimits::DEFAULT
        };
        assert_eq!(read(dir.path(), &limits), Ok(vec![]));
        Ok(())
    }

    #[test]
    fn sizes_are_capped_per_file_and_in_total() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("a.yaml"), "x".repeat(100))?;
        std::fs::write(dir.path().join("b.yaml"), "x".repeat(100))?;
        let limits = ReadLimits {
            max_file_bytes: 100,
            max_total_bytes: 200,
            ..ReadLimits::DEFAULT
        };
        assert_eq!(read(dir.path(), &limits).map(|f| f.len()), Ok(2));

        let limits = ReadLimits {
            max_file_bytes: 99,
            ..ReadLimits::DEFAULT
        };
        let too_large = RuleErrorKind::FileTooLarge {
            size: 100,
            max_file_bytes: 99,
        };
        assert_eq!(read(dir.path(), &limits), Err(vec![too_large.clone(), too_large]));

        let limits = ReadLimits {
            max_total_bytes: 199,
            ..ReadLimits::DEFAULT
        };
        let over = RuleErrorKind::TotalTooLarge { max_total_bytes: 199 };
        assert_eq!(read(dir.path(), &limits), Err(vec![over]));
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_device_is_refused_by_type_without_reading() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join("x.yaml"))
            .status()?;
        assert!(status.success());
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.rhai"))?;
        let Err(mut kinds) = read(dir.path(), &ReadLimits::DEFAULT) else {
            panic!("a FIFO and a device were read");
        };
        kinds.sort_by_key(|k| k.to_string());
        let max_file_bytes = ReadLimits::DEFAULT.max_file_bytes;
        let refused = |kind| RuleErrorKind::NotRegularFile { kind, max_file_bytes };
        assert_eq!(kinds, [refused("FIFO"), refused("character device")]);
        // Opening without blocking is what keeps a FIFO swapped in after the type check harmless.
        assert!(open_without_blocking(&dir.path().join("x.yaml")).is_ok());
        Ok(())
    }

    #[test]
    fn a_missing_directory_is_named() {
        let errors = RuleSource::from_dir(Path::new("/nonexistent/rebound-rules")).map(|_| ());
        let message = errors.map_err(|e| e.to_string());
        assert!(
            message
                .as_ref()
                .is_err_and(|m| m.starts_with("cannot read: the rule directory /nonexistent/rebound-rules: ")),
            "{message:?}"
        );
    }
}
