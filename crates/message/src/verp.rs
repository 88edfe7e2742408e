//! VERP: the recipient encoded in a bounce address, read back with a pattern such as
//! `bounces+{local}={domain}@example.net`.

/// A compiled VERP pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerpPattern {
    source: String,
}

/// Why a VERP pattern is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("VERP pattern `{pattern}`: {reason}")]
pub struct VerpError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl VerpPattern {
    /// Compiles a pattern with `{local}` and `{domain}` placeholders.
    pub fn new(pattern: &str) -> Result<VerpPattern, VerpError> {
        if !pattern.contains("{local}") || !pattern.contains("{domain}") {
            return Err(VerpError {
                pattern: pattern.to_string(),
                reason: "it needs both {local} and {domain}".to_string(),
            });
        }
        Ok(VerpPattern {
            source: pattern.to_string(),
        })
    }

    /// The recipient encoded in `address`, when it fits the pattern.
    pub fn decode(&self, _address: &str) -> Option<String> {
        None
    }
}
