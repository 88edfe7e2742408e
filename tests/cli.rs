//! The CLI contract: `classify` streams JSONL or plain lines with outputs aligned to inputs, and
//! `explain` says which rule won and why.
