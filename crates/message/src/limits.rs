//! Limits on one message, enforced before and while it is parsed.

/// Limits on one message. The defaults are the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest email, in bytes (named apart from the gRPC message limit, which is larger).
    pub max_email_bytes: usize,
    /// Deepest nesting of MIME parts (multiparts and attached messages).
    pub max_mime_depth: usize,
    /// Most MIME parts in one message, counting nested ones.
    pub max_mime_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_email_bytes: 10 * 1024 * 1024,
            max_mime_depth: 16,
            max_mime_parts: 512,
        }
    }
}
