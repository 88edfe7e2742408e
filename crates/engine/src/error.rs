//! Typed errors: bad input to a classification, and problems found in a rule directory.

use std::fmt;
use std::path::PathBuf;

/// A reply field that cannot be normalised. Text is never an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A non-zero reply code outside 100-599.
    #[error("code: {0} is not a reply code (100-599, or 0 for absent)")]
    Code(u32),
    /// An enhanced code that is present but not `class.subject.detail`: the value's start, as
    /// [`InputError::enhanced`] quotes it.
    #[error("enhanced: {0:?} is not an enhanced status code (x.y.z with x in 2, 4, 5)")]
    Enhanced(String),
}

/// Characters of a bad value an error quotes: enough to recognise it, and a hostile value of
/// any size still makes a short error.
const QUOTED_CHARS: usize = 32;

impl InputError {
    /// The error for the enhanced code `raw`, quoting at most its first [`QUOTED_CHARS`] characters.
    pub(crate) fn enhanced(raw: &str) -> InputError {
        let quoted = match raw.char_indices().nth(QUOTED_CHARS) {
            Some((cut, _)) => format!("{}...", &raw[..cut]),
            None => raw.to_string(),
        };
        InputError::Enhanced(quoted)
    }
}

/// One problem in a rule directory, located as precisely as the source allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The file, relative to the rule directory.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// The rule (or category, provider, test) the problem belongs to, when known.
    pub item: Option<String>,
    /// What is wrong.
    pub kind: RuleErrorKind,
}

impl RuleError {
    pub(crate) fn new(file: impl Into<PathBuf>, line: Option<u64>, item: Option<String>, kind: RuleErrorKind) -> Self {
        RuleError {
            file: file.into(),
            line: line.filter(|&l| l > 0),
            item,
            kind,
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No file: a problem with the rule directory itself, which the message names.
        if !self.file.as_os_str().is_empty() {
            write!(f, "{}", self.file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            write!(f, ": ")?;
        }
        if let Some(item) = &self.item {
            write!(f, "{item}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for RuleError {}

/// What is wrong with a rule file or one of its entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleErrorKind {
    /// The file or directory could not be read.
    #[error("cannot read: {0}")]
    Io(String),
    /// A rule file or script that is a FIFO, socket or device (or a symlink to one): reading it
    /// could block forever or never end.
    #[error("is a {kind}, not a regular file (rule files and scripts must be regular files of at most {})", Bytes(*max_file_bytes))]
    NotRegularFile {
        /// `FIFO`, `socket`, `character device`, ...
        kind: &'static str,
        /// The size cap of one file, for the operator's benefit.
        max_file_bytes: u64,
    },
    /// A rule file or script over the size cap of one file.
    #[error("is {size} bytes, over the {} limit for one rule file or script", Bytes(*max_file_bytes))]
    FileTooLarge {
        /// Its size (for a file that grew while read, what was read: one byte over the cap).
        size: u64,
        /// The cap.
        max_file_bytes: u64,
    },
    /// The rule files together are over the total size cap; reading stopped at this file.
    #[error("the rule files and scripts together are over the {} limit; stopped reading here", Bytes(*max_total_bytes))]
    TotalTooLarge {
        /// The cap.
        max_total_bytes: u64,
    },
    /// The rule directory and its subdirectories hold more entries than the cap; reading stopped.
    #[error("the rule directory holds more than {max_entries} entries (subdirectories included); stopped reading here")]
    TooManyEntries {
        /// The cap.
        max_entries: usize,
    },
    /// Directories nested deeper than the cap.
    #[error("nested more than {max_depth} directories deep; not read")]
    TooDeep {
        /// The cap.
        max_depth: usize,
    },
    /// A directory reached a second time, through a symlink: a loop, or two links to one directory.
    #[error("is the directory `{}` again (a symlink loop, or a second link to it); each directory is read once", first.display())]
    RepeatedDirectory {
        /// The path it was first read as, relative to the rule directory.
        first: PathBuf,
    },
    /// The YAML is malformed, has an unknown or duplicate key, or breaks a parse budget.
    #[error("{0}")]
    Yaml(String),
    /// Two entries of one kind share an id.
    #[error("duplicate {what} id, first defined at {first}")]
    DuplicateId {
        /// `rule`, `category` or `provider`.
        what: &'static str,
        /// Where the first one is.
        first: String,
    },
    /// A rule names a category that no file defines.
    #[error("unknown category `{0}`")]
    UnknownCategory(String),
    /// A rule names a provider that no file defines.
    #[error("unknown provider `{0}`")]
    UnknownProvider(String),
    /// A `when` value is not one the rule format accepts.
    #[error("when.{field}: {message}")]
    BadCondition {
        /// `code`, `enhanced`, `text`, ...
        field: &'static str,
        /// Why.
        message: String,
    },
    /// A text pattern does not compile.
    #[error("{field}: bad regex {pattern:?}: {message}")]
    BadRegex {
        /// `text`, `not_text` or `markers`.
        field: &'static str,
        /// The pattern as written.
        pattern: String,
        /// The regex crate's explanation.
        message: String,
    },
    /// A host glob does not compile.
    #[error("hosts: bad glob {glob:?}: {message}")]
    BadGlob {
        /// The glob as written.
        glob: String,
        /// Why.
        message: String,
    },
    /// A script reference, file or function is wrong.
    #[error("script: {0}")]
    Script(String),
    /// Two rules that can match the same reply with nothing to choose between them.
    #[error(
        "as specific as rule `{other}` ({other_at}) and both can match the same reply; give one a `priority` or narrow its `when`"
    )]
    Ambiguous {
        /// The other rule's id.
        other: String,
        /// Where it is.
        other_at: String,
    },
    /// A category's or a rule's outcome is one the engine would never give.
    #[error("outcome: {0}")]
    Outcome(String),
    /// A rule's example or a test case is not decided as it says.
    #[error("{0}")]
    Expectation(String),
    /// Something the rule set as a whole needs is missing.
    #[error("{0}")]
    Missing(String),
}

/// A byte count as people write limits: `4 MiB`, `512 KiB`, else `1000 bytes`.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n >= 1 << 20 && n % (1 << 20) == 0 => write!(f, "{} MiB", n >> 20),
            n if n >= 1 << 10 && n % (1 << 10) == 0 => write!(f, "{} KiB", n >> 10),
            n => write!(f, "{n} bytes"),
        }
    }
}

/// Every problem found in a rule directory; loading stops only after collecting them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleErrors(pub Vec<RuleError>);

impl RuleErrors {
    /// How many problems the message lists before "and N more": a broken directory can have
    /// thousands, and the message goes into logs and GetStatus.
    pub const LISTED: usize = 20;
    /// The longest line the message gives one problem, in bytes; a longer one is cut (a bad
    /// value quoted whole could be megabytes).
    pub const LINE_BYTES: usize = 1_000;
}

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().take(Self::LISTED).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let line = e.to_string();
            if line.len() > Self::LINE_BYTES {
                write!(f, "{}...", crate::pattern::prefix_within(&line, Self::LINE_BYTES))?;
            } else {
                write!(f, "{line}")?;
            }
        }
        if let Some(more) = self.0.len().checked_sub(Self::LISTED).filter(|&n| n > 0) {
            write!(f, "\n... and {more} more")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_list_of_errors_is_cut_to_a_bounded_message() {
        let error = |i: usize| {
            RuleError::new(
                format!("{i}.yaml"),
                Some(1),
                None,
                RuleErrorKind::Yaml("é".repeat(5_000)),
            )
        };
        let message = RuleErrors((0..1_000).map(error).collect()).to_string();
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), RuleErrors::LISTED + 1);
        assert!(
            lines
                .iter()
                .take(RuleErrors::LISTED)
                .all(|l| l.len() <= RuleErrors::LINE_BYTES + 3 && l.ends_with("..."))
        );
        assert_eq!(lines.last(), Some(&"... and 980 more"));
        let short = RuleErrors(vec![RuleError::new(
            "a.yaml",
            Some(2),
            None,
            RuleErrorKind::Yaml("bad".into()),
        )]);
        assert_eq!(short.to_string(), "a.yaml:2: bad");
    }

    #[test]
    fn limits_are_written_as_people_write_them() {
        assert_eq!(Bytes(4 << 20).to_string(), "4 MiB");
        assert_eq!(Bytes(512 << 10).to_string(), "512 KiB");
        assert_eq!(Bytes(1000).to_string(), "1000 bytes");
    }
}
