//! What the reader makes of one message: its kind, the report's per-message fields, the
//! returned original's headers, and one entry per recipient.

use serde::Serialize;

/// What kind of message it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One or more recipients failed or were delayed.
    Bounce,
    /// A vacation or out-of-office reply (RFC 3834 or a vacation program's own cues).
    AutoReply,
    /// A feedback-loop complaint (ARF, RFC 5965).
    Feedback,
    /// A challenge-response system asking the sender to prove they are human.
    Challenge,
    /// None of these.
    NotBounce,
}

impl Kind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bounce => "bounce",
            Kind::AutoReply => "auto_reply",
            Kind::Feedback => "feedback",
            Kind::Challenge => "challenge",
            Kind::NotBounce => "not_bounce",
        }
    }
}

/// What happened to one recipient (RFC 3464 `Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Delivery failed for good.
    Failed,
    /// Delivery is delayed; the sending MTA keeps trying.
    Delayed,
    /// Delivered.
    Delivered,
    /// Relayed to a system that sends no DSNs.
    Relayed,
    /// Delivered and expanded to other recipients (a list or alias).
    Expanded,
}

impl Action {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }
}

/// One recipient as the message reports it. Empty strings mean "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecipientReport {
    /// The final recipient address (`bob@example.com`), without angle brackets.
    pub recipient: String,
    /// The original recipient, when the report gives one that differs.
    pub original_recipient: String,
    /// What happened; `None` when the message does not say (auto-replies, complaints).
    pub action: Option<Action>,
    /// The enhanced status code as reported (`5.1.1`).
    pub status: String,
    /// The SMTP reply code, read from the diagnostic; 0 when there is none.
    pub reply_code: u16,
    /// The host that answered (`mx.example.com`).
    pub remote_mta: String,
    /// The diagnostic's type (`smtp`, `x-unix`, `x-postfix`).
    pub diagnostic_type: String,
    /// The diagnostic text: the remote server's reply, unfolded to one line.
    pub diagnostic: String,
    /// The SMTP command that failed (`RCPT`, `DATA`), when the report says.
    pub command: String,
    /// When delivery was last tried, as written.
    pub last_attempt: String,
    /// Until when the sending MTA retries, as written.
    pub will_retry_until: String,
}

/// The returned original message's identifying headers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Original {
    /// `Message-ID`, without angle brackets.
    pub message_id: String,
    /// `From`.
    pub from: String,
    /// `To`.
    pub to: String,
    /// `Subject`.
    pub subject: String,
    /// `Date`, as written.
    pub date: String,
    /// The headers the caller asked for, in the order asked and named as asked, each once
    /// (case-insensitively): its first value (RFC 2047 words decoded, folding undone), or ""
    /// when the original lacks it, so every asked name is answered.
    pub headers: Vec<(String, String)>,
}

/// An ARF complaint's fields (RFC 5965).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Feedback {
    /// `Feedback-Type`: abuse, fraud, virus, not-spam, other, ...
    #[serde(rename = "type")]
    pub feedback_type: String,
    /// `User-Agent`.
    pub user_agent: String,
    /// `Source-IP`.
    pub source_ip: String,
}

/// Where one fact was read, for `explain --message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    /// What was read (`kind`, `recipient bob@example.com`, `original.message_id`).
    pub what: String,
    /// Where from (`message/delivery-status part`, `exim body`, `header X-Failed-Recipients`).
    pub from: String,
}

/// What the reader made of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The message kind.
    pub kind: Kind,
    /// Which reader recognised it (`rfc3464`, `qmail`, `exim`, `arf`, `rfc3834`, ...).
    pub format: &'static str,
    /// `Reporting-MTA`, when given.
    pub reporting_mta: String,
    /// `Arrival-Date`, when given.
    pub arrival_date: String,
    /// The returned message's headers, when the bounce carries them.
    pub original: Option<Original>,
    /// The complaint's fields, for `feedback`.
    pub feedback: Option<Feedback>,
    /// One entry per recipient, in the order the message gives them.
    pub recipients: Vec<RecipientReport>,
    /// Where each fact was read.
    #[serde(skip)]
    pub trace: Vec<Trace>,
}
