//! Streams: malformed items, idle and never-reading clients.
