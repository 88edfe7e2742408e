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
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
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
    /// A rule's example or a test case is not decided as it says.
    #[error("{0}")]
    Expectation(String),
    /// Something the rule set as a whole needs is missing.
    #[error("{0}")]
    Missing(String),
}

/// Every problem found in a rule directory; loading stops only after collecting them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
