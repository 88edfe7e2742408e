//! rebound's bounce-message reader: turns a raw RFC 5322 bounce (a DSN, an MTA's own report, an
//! auto-reply, an ARF complaint) into a [`Report`] of who failed and how, and classifies each
//! failed or delayed recipient with the rule engine. Synchronous and free of any runtime, like
//! the engine, so the server, the CLI and the benchmarks call the same code.
#![forbid(unsafe_code)]

mod answer;
mod arf;
mod autoreply;
mod classify;
mod dsn;
mod error;
mod limits;
pub mod mbox;
mod mime;
mod mta;
mod original;
mod read;
mod report;
mod verp;

pub use answer::{ErrorAnswer, MessageAnswer};
pub use classify::{RecipientOutcome, classify, explain};
pub use error::MessageError;
pub use limits::Limits;
pub use read::{ReadOptions, read};
pub use report::{Action, Feedback, Kind, Original, RecipientReport, Report, Trace};
pub use verp::{VerpError, VerpPattern};
