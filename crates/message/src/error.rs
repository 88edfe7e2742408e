//! Why a message could not be read: each error names the limit or field it is about.

/// A message that could not be read. Every variant names what it is about, so a caller can
/// tell a limit (raise it or drop the message) from damaged input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The message is empty.
    #[error("the message is empty")]
    Empty,
    /// The message is longer than `max_email_bytes`.
    #[error("the message is {size} bytes, over the limit of {limit} (max_email_bytes)")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// MIME parts nest deeper than `max_mime_depth`.
    #[error("MIME parts nest deeper than {limit} levels (max_mime_depth)")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The message has more MIME parts than `max_mime_parts`.
    #[error("the message has more than {limit} MIME parts (max_mime_parts)")]
    TooManyParts {
        /// The limit.
        limit: usize,
    },
    /// Not a message: no header could be read and no body text either.
    #[error("not an email message: {reason}")]
    NotAMessage {
        /// What was missing.
        reason: String,
    },
}

impl MessageError {
    /// A stable machine-readable code (`too_large`, `too_deep`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            MessageError::Empty => "empty",
            MessageError::TooLarge { .. } => "too_large",
            MessageError::TooDeep { .. } => "too_deep",
            MessageError::TooManyParts { .. } => "too_many_parts",
            MessageError::NotAMessage { .. } => "not_a_message",
        }
    }

    /// The limit or field the error is about (`max_email_bytes`, `message`).
    pub fn field(&self) -> &'static str {
        match self {
            MessageError::Empty | MessageError::NotAMessage { .. } => "message",
            MessageError::TooLarge { .. } => "max_email_bytes",
            MessageError::TooDeep { .. } => "max_mime_depth",
            MessageError::TooManyParts { .. } => "max_mime_parts",
        }
    }
}
