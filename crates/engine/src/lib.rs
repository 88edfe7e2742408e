//! rebound's classifier: normalises SMTP replies, compiles YAML rule directories into an
//! immutable [`RuleSet`], and answers each reply with a category, advice and a suppression
//! decision. Synchronous and free of any runtime, so the server, the CLI and the benchmarks
//! all call the same code.
//!
//! ```
//! use rebound_engine::{Reply, RuleSet, RuleSource};
//!
//! let yaml = r#"
//! categories:
//!   - id: invalid_address
//!     name: Invalid Address
//!     summary: The address does not exist.
//!     outcome: { bounce_type: hard, suppress_recipient: true, retryable: false, responsible: recipient }
//!   - id: unclassified
//!     name: Unclassified
//!     summary: No rule matched.
//!     outcome: { bounce_type: undetermined, suppress_recipient: false, retryable: false, responsible: unknown }
//! rules:
//!   - id: user-unknown
//!     category: invalid_address
//!     when: { code: 5xx, text: 'user unknown|no such user' }
//!     examples: ["550 5.1.1 <bob@example.com>: User unknown"]
//! "#;
//! let source = RuleSource::from_files([("rules.yaml".into(), yaml.to_string())]);
//! let rules = RuleSet::load(&source).map_err(|e| e.to_string())?;
//! let outcome = rules.classify(&Reply::from_text("550 5.1.1 User unknown"));
//! assert_eq!(outcome.category.id, "invalid_address");
//! assert!(outcome.suppress_recipient);
//! # Ok::<(), String>(())
//! ```
#![forbid(unsafe_code)]

mod classify;
mod compile;
mod error;
pub mod model;
mod pattern;
mod provider;
mod reply;
mod script;
mod source;
mod tally;
mod template;
mod verify;
mod yaml;

pub use classify::{
    Candidate, ConditionResult, DetectedProvider, Evidence, Explanation, NormalisedReply, Outcome, Suppression,
    TranscriptReply,
};
pub use compile::{COMPLAINT, Category, NOT_BOUNCE, Rule, RuleSet, Specificity, UNCLASSIFIED};
pub use error::{InputError, RuleError, RuleErrorKind, RuleErrors};
pub use model::{BounceType, Responsible};
pub use pattern::{PrefilterLiteral, Work, prefix_within};
pub use provider::Provider;
pub use reply::{Command, Enhanced, Reply, ReplyInput, SeenReply, Transcript};
pub use script::{MAX_OPERATIONS, SCRIPT_TEXT_LIMIT, SCRIPT_TIME_LIMIT};
pub use source::RuleSource;
pub use tally::{Sighting, TEMPLATE_LIMIT, Unmatched, UnmatchedEntry};
pub use template::{MASK, TEMPLATED_BYTES, mask_addresses, reply_template, template};
pub use verify::Verified;
