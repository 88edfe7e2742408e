//! The rule file format as written by operators: categories, providers, rules and tests.
//!
//! These types only describe the YAML; `compile` checks what they mean. Every struct denies
//! unknown fields so that a typo (`priorty`) is an error, not a silently ignored key.

use serde::Deserialize;

/// A value with the line it was written on, as the YAML layer reports it.
#[derive(Debug, Clone)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// 1-based line of the value's first token, 0 when unknown.
    pub line: u64,
}

/// One YAML file of a rule directory. Each section is optional.
#[derive(Debug, Default)]
pub struct RuleFile {
    /// Category definitions (normally only in `categories.yaml`).
    pub categories: Vec<Located<CategoryDef>>,
    /// Provider detection entries.
    pub providers: Vec<Located<ProviderDef>>,
    /// Classification rules.
    pub rules: Vec<Located<RuleDef>>,
    /// Test cases: a reply and the category (and rule) it must get.
    pub tests: Vec<Located<TestDef>>,
}

/// Whether a bounce is permanent, temporary or a block by the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceType {
    /// The address will not work; do not send again.
    Hard,
    /// A temporary condition; a later attempt can succeed.
    Soft,
    /// The receiver refused the sender (policy, authentication, reputation).
    Block,
    /// Not enough information to say.
    Undetermined,
}

impl BounceType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            BounceType::Hard => "hard",
            BounceType::Soft => "soft",
            BounceType::Block => "block",
            BounceType::Undetermined => "undetermined",
        }
    }
}

/// Whose side has to act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Responsible {
    /// The recipient (or their address) is the problem.
    Recipient,
    /// The sender: configuration, authentication, reputation, volume.
    Sender,
    /// The receiving mail system.
    RecipientServer,
    /// Not known.
    Unknown,
}

impl Responsible {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Responsible::Recipient => "recipient",
            Responsible::Sender => "sender",
            Responsible::RecipientServer => "recipient_server",
            Responsible::Unknown => "unknown",
        }
    }
}

/// The full outcome a category gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeDef {
    /// hard, soft, block or undetermined.
    pub bounce_type: BounceType,
    /// Stop mailing this address.
    pub suppress_recipient: bool,
    /// The same message can succeed later.
    pub retryable: bool,
    /// Whose side has to act.
    pub responsible: Responsible,
}

/// A rule's partial override of its category's outcome.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeOverride {
    /// Overrides the category's bounce type.
    pub bounce_type: Option<BounceType>,
    /// Overrides the category's suppression decision.
    pub suppress_recipient: Option<bool>,
    /// Overrides the category's retry advice.
    pub retryable: Option<bool>,
    /// Overrides whose side has to act.
    pub responsible: Option<Responsible>,
}

/// A category of the taxonomy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryDef {
    /// Stable id (`mailbox_full`).
    pub id: String,
    /// Display name (`Mailbox Full`).
    pub name: String,
    /// What the category means.
    pub summary: String,
    /// What to do about it.
    #[serde(default)]
    pub remediation: Vec<String>,
    /// The outcome every rule of the category gives unless it overrides it.
    pub outcome: OutcomeDef,
}

/// How to recognise a provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderDef {
    /// Stable id (`google`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Globs over the remote host (`*.google.com`).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Recipient domains (`gmail.com`); subdomains match too.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Literal markers in the reply text (`gsmtp`), case-insensitive.
    #[serde(default)]
    pub markers: Vec<String>,
}

/// A scalar that may be written as a number or as a string (`550`, `5xx`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// Written as a number.
    Number(u64),
    /// Written as a string.
    Text(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Number(n) => write!(f, "{n}"),
            Scalar::Text(s) => write!(f, "{s}"),
        }
    }
}

/// One value or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

/// The conditions of a rule; all that are present must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Reply codes: `550`, `[550, 554]`, `5xx`.
    pub code: Option<OneOrMany<Scalar>>,
    /// Enhanced codes: `5.1.1`, `5.7.*`, `5.*.*`, or `none` for a reply without one.
    pub enhanced: Option<OneOrMany<String>>,
    /// Regexes over the lower-cased text; any one must match.
    pub text: Option<OneOrMany<String>>,
    /// Regexes over the lower-cased text; none may match.
    pub not_text: Option<OneOrMany<String>>,
    /// Provider ids; the detected provider must be one of them.
    pub provider: Option<OneOrMany<String>>,
    /// A rhai predicate, `file.rhai::function`, relative to the rule file's directory.
    pub script: Option<String>,
}

/// A reply written in a rule file: a plain string, or the fields of a request.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ReplyDef {
    /// `"550 5.1.1 User unknown"`: code and enhanced code are read from the text.
    Text(String),
    /// The fields of a request.
    Fields(ReplyFields),
}

/// The fields of a reply written out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyFields {
    /// Reply code.
    pub code: Option<Scalar>,
    /// Enhanced code.
    #[serde(default)]
    pub enhanced: String,
    /// Diagnostic text.
    #[serde(default)]
    pub text: String,
    /// Recipient address.
    #[serde(default)]
    pub recipient: String,
    /// Remote host.
    #[serde(default)]
    pub remote_host: String,
}

/// A classification rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// Stable, unique id (`seed/mailbox_full/552-5.2.2`).
    pub id: String,
    /// The category id it answers.
    pub category: String,
    /// The conditions; a rule without any matches every reply (a last-resort fallback).
    #[serde(default)]
    pub when: When,
    /// What this reply means, returned as `definition`.
    pub definition: Option<String>,
    /// Settles a choice between equally specific rules; higher wins.
    #[serde(default)]
    pub priority: i32,
    /// Changes to the category's outcome for this rule only.
    pub outcome: Option<OutcomeOverride>,
    /// Replies this rule must decide; checked on every load.
    #[serde(default)]
    pub examples: Vec<ReplyDef>,
    /// Why the rule exists; for people, not matched.
    pub note: Option<String>,
}

/// A test case: a reply and what it must be classified as.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestDef {
    /// The reply.
    pub reply: ReplyDef,
    /// The category it must get.
    pub category: String,
    /// The rule that must decide it, if it matters.
    pub rule: Option<String>,
    /// Whether the recipient must be suppressed, if it matters.
    pub suppress_recipient: Option<bool>,
}
