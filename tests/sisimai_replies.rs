//! How the shipped rules agree with Sisimai 5.1.0 on the diagnostic texts of real bounces
//! (`tests/data/sisimai_answers.jsonl`, from Sisimai's set-of-emails, BSD-2: `sisimai-LICENSE`).
//!
//! Sisimai is one mature system, not ground truth: its 34 reasons are mapped to our categories by
//! [`CROSSWALK`], rows where we disagree with it on purpose are listed in [`DISAGREEMENTS`] with
//! the reason, and rows that are not replies at all are left out with the count printed. The test
//! prints a table per Sisimai reason and every miss, and enforces the floor and what matters
//! most: no suppression on a reply whose cause is not the recipient's address, and every 5xx
//! unknown user or unknown domain suppressed.

use std::collections::BTreeMap;

use rebound_engine::{Reply, ReplyInput, RuleSet};
use serde::Deserialize;

use crate::util::{root, shipped_rules};

#[derive(Deserialize)]
struct SisimaiRow {
    /// `file#message#recipient index` in Sisimai's set of emails.
    id: String,
    /// Sisimai's reason; null where it parsed no reason.
    reason: Option<String>,
    /// The SMTP reply code Sisimai found.
    code: Option<u32>,
    /// The DSN status (enhanced code), or one of Sisimai's own pseudo-statuses (see [`enhanced`]).
    enhanced: Option<String>,
    /// The diagnostic code: the reply as the bounce carried it.
    text: String,
    recipient: String,
    remote_host: String,
}

/// What a Sisimai reason means for us.
enum Crosswalk {
    /// The categories that agree with the reason.
    Agree(&'static [&'static str]),
    /// Not a reply to judge: the row is left out of the agreement.
    NotAReply,
}

use Crosswalk::{Agree, NotAReply};

/// Sisimai's 34 reasons (5.1.0) and the categories of ours that agree with each.
const CROSSWALK: [(&str, Crosswalk); 34] = [
    // The mailbox does not exist. Our `mailbox` is the guide's "no mailbox at the domain", which
    // several seed rows give to unknown-user codes.
    ("userunknown", Agree(&["invalid_address", "mailbox"])),
    // The recipient's domain does not exist (or has no mail host): the guide's `invalid_address`
    // ("unknown domain"), or `mailbox` ("domain has no mailbox").
    ("hostunknown", Agree(&["invalid_address", "mailbox"])),
    // The address moved with no forwarding (551): the address here is gone.
    ("hasmoved", Agree(&["invalid_address"])),
    // The account is disabled or suspended: ours says the address cannot take mail.
    ("suspend", Agree(&["invalid_address", "mailbox"])),
    // Over quota.
    ("mailboxfull", Agree(&["mailbox_full"])),
    // The message exceeds the recipient's size limit (5.2.3): the guide gives 550 5.2.3 to
    // `rejection` and 554 5.2.3 to `blocked`.
    ("exceedlimit", Agree(&["rejection", "blocked"])),
    // The message is larger than the server takes (5.3.4): the size rule is `rejection`.
    ("mesgtoobig", Agree(&["rejection", "blocked"])),
    // The receiving system's disk is full: a server-side fault.
    ("systemfull", Agree(&["recipient_error"])),
    // Sisimai's `filtered` has two halves: a content or recipient filter refused the message
    // (`rejection`), and a "user unknown" given after DATA, which Sisimai reads as a filter and we
    // read as the unknown user the reply names (`invalid_address`).
    ("filtered", Agree(&["rejection", "invalid_address"])),
    // The sender's address or domain was refused.
    ("rejected", Agree(&["rejection"])),
    // The sending IP or host is blocked: ours splits block lists (`blocked`) from reputation.
    ("blocked", Agree(&["blocked", "sender_reputation"])),
    // The sender's reputation.
    ("badreputation", Agree(&["sender_reputation", "blocked"])),
    // Judged spam: our content rule is `rejection`; the guide's reputation row covers spam too.
    ("spamdetected", Agree(&["rejection", "sender_reputation"])),
    ("virusdetected", Agree(&["rejection"])),
    // Malformed content or headers, not RFC 5322 compliant.
    ("contenterror", Agree(&["rejection"])),
    ("notcompliantrfc", Agree(&["rejection"])),
    // Refused by the receiver's policy: a message policy (`rejection`) or a policy on the
    // sending host (`blocked`).
    ("policyviolation", Agree(&["rejection", "blocked"])),
    // SPF, DKIM, DMARC.
    ("authfailure", Agree(&["dmarc"])),
    // No reverse DNS for the sending IP: a DNS set-up fault on the sender's side.
    ("requireptr", Agree(&["rejection"])),
    // Authentication or TLS required, a refused sender identity: ours splits TLS
    // (`recipient_error`), SMTP AUTH and sender identities (`rejection`, `dmarc`).
    ("securityerror", Agree(&["recipient_error", "rejection", "dmarc"])),
    // Relaying denied: the receiving side does not take mail for the domain.
    ("norelaying", Agree(&["recipient_error"])),
    // The domain takes no mail (null MX, no MX): the guide's `mailbox`.
    ("notaccept", Agree(&["mailbox"])),
    // Delivery time expired: the receiving side could not be reached in time.
    ("expired", Agree(&["recipient_error"])),
    // DNS or connection failures on the way (`recipient_error`); Sisimai counts mail loops and
    // hop counts here too, which the guide gives to `rejection` (550 5.4.6, 5.4.12, 5.4.14).
    ("networkerror", Agree(&["recipient_error", "rejection"])),
    // The local delivery program failed.
    ("mailererror", Agree(&["recipient_error"])),
    // The receiving system failed.
    ("systemerror", Agree(&["recipient_error"])),
    // Too many connections, too fast.
    ("toomanyconn", Agree(&["rate_limit"])),
    ("speeding", Agree(&["rate_limit"])),
    // An SMTP protocol error (a bad command or sequence): the sender's MTA's fault.
    ("syntaxerror", Agree(&["rejection"])),
    // ARF feedback-loop reports (RFC 5965): complaints, not delivery replies.
    ("feedback", NotAReply),
    // Auto-replies (RFC 3834): the message was delivered.
    ("vacation", NotAReply),
    // Delivery reports of success.
    ("delivered", NotAReply),
    // Sisimai itself could not tell the cause.
    ("undefined", NotAReply),
    // Sisimai could not decide yet (a bounce it holds without a verdict).
    ("onhold", NotAReply),
];

/// Rows where we disagree with Sisimai's reason on purpose: an `id` fragment (matching both the
/// LF and the CRLF copy of a message), Sisimai's reason, the categories we hold right, and why.
const DISAGREEMENTS: &[(&str, &str, &[&str], &str)] = &[
    (
        "lhost-googlegroups-",
        "rejected",
        &["recipient_error"],
        "Google Groups: 'the group may not exist, or you may not have permission to post'. A group \
         that takes posts only from members restricts who may send to it: the recipient's side, \
         and the sender's address is fine (Sisimai: the sender was rejected).",
    ),
    (
        "lhost-fml-02",
        "rejected",
        &["recipient_error"],
        "'You are not a member of this mailing list': a members-only list, as for Google Groups.",
    ),
    (
        "lhost-postfix-74",
        "rejected",
        &["sender_reputation"],
        "Yahoo's [TSS04] 'deferred due to unexpected volume or user complaints' names the sending \
         IP's complaints and volume: reputation, not a refused sender address.",
    ),
    (
        "rhost-yahooinc-02",
        "rejected",
        &["sender_reputation"],
        "The same Yahoo [TSS04] reply.",
    ),
    (
        "rhost-nttdocomo-0",
        "rejected",
        &["invalid_address"],
        "'550 Unknown user' after DATA: Sisimai reads docomo's answer after DATA as a refusal of \
         the sender; the reply names an unknown user, and rebound decides on the reply.",
    ),
    (
        "lhost-exim-57",
        "rejected",
        &["blocked"],
        "'sending to/from an address that has been blacklisted': a block list names the cause.",
    ),
    (
        "lhost-postfix-80",
        "userunknown",
        &["blocked"],
        "'MailFrom domain is listed in Spamhaus': the sender's domain is on a block list; nothing \
         in it is about the recipient (Sisimai's userunknown is plainly wrong here).",
    ),
    (
        "lhost-sendmail-57",
        "notaccept",
        &["rejection"],
        "'550 Host does not accept mail' with 5.7.27, RFC 7505's 'sender address has null MX': \
         the domain that takes no mail is the sender's.",
    ),
    (
        "lhost-qmail-04",
        "blocked",
        &["rejection"],
        "qmail's 'my name was rejected ... Invalid domain name': the HELO name was refused, a \
         sender set-up fault (`rejection`), not a block of the IP.",
    ),
    (
        "lhost-exim-46",
        "blocked",
        &["rejection"],
        "'Missing reverse DNS' at connection: the cause named is the PTR record, which we give to \
         `rejection` as Sisimai does with its own requireptr.",
    ),
    (
        "lhost-postfix-01",
        "mailererror",
        &["invalid_address"],
        "procmail could not create the mailbox because the local user does not exist ('No such \
         user', status 5.1.1): the address has no user behind it, whatever program said so.",
    ),
    (
        "lhost-sendmail-21",
        "blocked",
        &["recipient_error"],
        "'Connection refused by mx ... could not be delivered for 8 hours': the receiving host \
         could not be reached until the message expired; nothing says the sender is blocked.",
    ),
    (
        "rfc3464-35",
        "rejected",
        &["invalid_address"],
        "'<address> is not a registered gateway user': the receiving gateway says no user is \
         registered at the address, an unknown user; nothing in it is about the sender.",
    ),
    (
        "lhost-qmail-1",
        "notaccept",
        &["invalid_address"],
        "qmail's 'Sorry, I couldn't find a mail exchanger or IP address. (#5.4.4)': the recipient's \
         domain has neither MX nor A record, so no host can take its mail; we hold it as an unknown \
         domain, as Sisimai does with its own hostunknown.",
    ),
    (
        "rhost-aol-06",
        "notaccept",
        &["recipient_error"],
        "'Name service error ... Malformed or unexpected name server reply': the DNS lookup of the \
         recipient's domain failed, it did not say the domain takes no mail.",
    ),
    (
        "lhost-postfix-47",
        "systemerror",
        &["rejection"],
        "'554 Transaction failed (in reply to MAIL FROM command)': refused at MAIL FROM with no \
         cause named, so the envelope sender was refused (generic/rejection/refused-at-mail-from); \
         nothing says the receiving system failed.",
    ),
    (
        "lhost-postfix-50",
        "blocked",
        &["recipient_error"],
        "'refused to talk to me: 421 Service not available, closing transmission channel': RFC \
         5321's text for a server that cannot serve now; it names no block of the sender, and the \
         receiving side being unavailable is `recipient_error`.",
    ),
    (
        "lhost-x2-05",
        "expired",
        &["rate_limit"],
        "'Resources temporarily unavailable, please try again later ... I'm not going to try \
         again; this message has been in the queue too long': the reply names the cause the queue \
         kept meeting (the receiver too busy to take it), and a cause named wins over the retry \
         story, as for a full mailbox that expired in the queue.",
    ),
];

/// Reasons whose cause is the sender, the message, the network or a system on the way, or
/// expiry: the recipient's address is not known to be bad, so none may suppress it.
const NEVER_SUPPRESS: [&str; 23] = [
    "rejected",
    "blocked",
    "badreputation",
    "authfailure",
    "requireptr",
    "securityerror",
    "policyviolation",
    "spamdetected",
    "virusdetected",
    "contenterror",
    "notcompliantrfc",
    "mesgtoobig",
    "exceedlimit",
    "norelaying",
    "toomanyconn",
    "speeding",
    "syntaxerror",
    "systemerror",
    "systemfull",
    "networkerror",
    "mailererror",
    "expired",
    "mailboxfull",
];

/// Reasons for an address that does not exist: a 5xx reply for one must suppress it.
const MUST_SUPPRESS: [&str; 2] = ["userunknown", "hostunknown"];

/// Rows of [`MUST_SUPPRESS`] reasons where Sisimai's reason is plainly wrong for the text: an
/// `id` fragment and why.
const MUST_SUPPRESS_EXCEPTIONS: &[(&str, &str)] = &[
    (
        "lhost-postfix-80",
        "'MailFrom domain is listed in Spamhaus' is a block of the sender's domain (see DISAGREEMENTS)",
    ),
    (
        "-outlook-08",
        "'550 Requested action not taken: mailbox unavailable' with 5.5.0 is RFC 5321's text for 550, \
         which receivers also give policy refusals; neither the words nor the code say the address is \
         bad, so it is not suppressed (`rfc5321/mailbox-unavailable`)",
    ),
    (
        "rhost-messagelabs-03",
        "'542 <address> Rejected' says only that the address was refused, not that it does not exist",
    ),
];

fn load() -> Vec<SisimaiRow> {
    let path = root().join("tests/data/sisimai_answers.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1)))
        .collect()
}

/// The row's enhanced code as a receiver sent it. Sisimai fills `status` with pseudo-statuses of
/// its own (`5.0.911` for "user unknown", `5.0.947` for "expired", ...: subject 0, detail 900 and
/// up) when the bounce carried none; no MTA sends them, and they encode Sisimai's answer, so the
/// classifier does not see them.
fn enhanced(row: &SisimaiRow) -> &str {
    let status = row.enhanced.as_deref().unwrap_or("");
    let pseudo = status
        .split_once(".0.")
        .is_some_and(|(class, detail)| class.len() == 1 && detail.len() == 3 && detail.starts_with('9'));
    if pseudo { "" } else { status }
}

fn crosswalk(reason: &str) -> &'static Crosswalk {
    CROSSWALK
        .iter()
        .find(|(r, _)| *r == reason)
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("Sisimai reason `{reason}` is not in the crosswalk"))
}

/// The categories that count as agreeing for this row: a disagreement on purpose, else the
/// crosswalk's; `None` when the row is not a reply to judge.
fn accepted(row: &SisimaiRow, reason: &str) -> Option<&'static [&'static str]> {
    if let Some((_, _, ours, _)) = DISAGREEMENTS
        .iter()
        .find(|(fragment, r, _, _)| row.id.contains(fragment) && *r == reason)
    {
        return Some(ours);
    }
    match crosswalk(reason) {
        Agree(categories) => Some(categories),
        NotAReply => None,
    }
}

struct Judged {
    right: usize,
    total: usize,
    not_replies: usize,
    no_text: usize,
    per_reason: BTreeMap<&'static str, (usize, usize)>,
    /// Keyed by the first category the crosswalk (or a disagreement) accepts for the row.
    per_category: BTreeMap<&'static str, (usize, usize)>,
    misses: Vec<String>,
    wrong_suppressions: Vec<String>,
    missed_suppressions: Vec<String>,
}

fn judge(rules: &RuleSet, rows: &[SisimaiRow]) -> Judged {
    let mut judged = Judged {
        right: 0,
        total: 0,
        not_replies: 0,
        no_text: 0,
        per_reason: BTreeMap::new(),
        per_category: BTreeMap::new(),
        misses: Vec::new(),
        wrong_suppressions: Vec::new(),
        missed_suppressions: Vec::new(),
    };
    for row in rows {
        let Some(reason) = row.reason.as_deref() else {
            judged.not_replies += 1;
            continue;
        };
        let Some(accept) = accepted(row, reason) else {
            judged.not_replies += 1;
            continue;
        };
        if row.text.trim().is_empty() {
            judged.no_text += 1;
            continue;
        }
        let input = ReplyInput {
            code: row.code.unwrap_or(0),
            enhanced: enhanced(row),
            text: &row.text,
            recipient: &row.recipient,
            remote_host: &row.remote_host,
        };
        let reply = Reply::parse(&input).unwrap_or_else(|e| panic!("{}: {e}", row.id));
        let outcome = rules.classify(&reply);
        let ours = outcome.category.id.as_str();
        let line = format!(
            "{} [{reason}] {} {} {:.110} -> {ours} by {}{}",
            row.id,
            row.code.unwrap_or(0),
            enhanced(row),
            row.text.replace('\n', " "),
            outcome.rule_id(),
            if outcome.suppress_recipient { " (suppress)" } else { "" }
        );
        let (key, _) = CROSSWALK.iter().find(|(r, _)| *r == reason).unwrap();
        let agrees = accept.contains(&ours);
        for tally in [
            judged.per_reason.entry(key).or_default(),
            judged.per_category.entry(accept[0]).or_default(),
        ] {
            tally.1 += 1;
            tally.0 += usize::from(agrees);
        }
        judged.total += 1;
        if agrees {
            judged.right += 1;
        } else {
            judged.misses.push(format!("  {line}"));
        }

        let transient = row.code.is_some_and(|c| (400..500).contains(&c))
            || enhanced(row).starts_with("4.")
            || (400..500).contains(&outcome.code);
        // A row we hold as an unknown address on purpose (DISAGREEMENTS) is judged as one.
        let held_unknown = accept.iter().any(|c| ["invalid_address", "mailbox"].contains(c));
        let never = NEVER_SUPPRESS.contains(&reason) && !held_unknown;
        if outcome.suppress_recipient && (never || transient) {
            judged.wrong_suppressions.push(format!("  {line}"));
        }
        let permanent = row.code.is_some_and(|c| (500..600).contains(&c)) || (500..600).contains(&outcome.code);
        let excepted = MUST_SUPPRESS_EXCEPTIONS
            .iter()
            .any(|(fragment, _)| row.id.contains(fragment));
        if MUST_SUPPRESS.contains(&reason) && permanent && !transient && !excepted && !outcome.suppress_recipient {
            judged.missed_suppressions.push(format!("  {line}"));
        }
    }
    judged
}

fn table(judged: &Judged) -> String {
    let mut out = String::from("  reason            ours (accepted)                              right/total\n");
    for (reason, (right, total)) in &judged.per_reason {
        let accept = match crosswalk(reason) {
            Agree(categories) => categories.join("|"),
            NotAReply => String::new(),
        };
        out.push_str(&format!("  {reason:<17} {accept:<44} {right:>3}/{total:<3}\n"));
    }
    out.push_str("  ours (first accepted)     right/total\n");
    for (category, (right, total)) in &judged.per_category {
        out.push_str(&format!("  {category:<25} {right:>3}/{total:<3}\n"));
    }
    out
}

fn report(judged: &Judged) -> String {
    let pct = 100.0 * judged.right as f64 / judged.total.max(1) as f64;
    format!(
        "sisimai_answers.jsonl: {}/{} ({pct:.1}%) agree with Sisimai's reason through the crosswalk; \
         left out: {} rows that are not replies (feedback, vacation, delivered, undefined, onhold, no reason), \
         {} rows with no diagnostic text\n{}misses:\n{}",
        judged.right,
        judged.total,
        judged.not_replies,
        judged.no_text,
        table(judged),
        judged.misses.join("\n")
    )
}

#[test]
fn crosswalk_covers_every_reason_once_and_every_row() {
    let mut seen = std::collections::HashSet::new();
    for (reason, _) in &CROSSWALK {
        assert!(seen.insert(*reason), "`{reason}` is in the crosswalk twice");
    }
    for row in load() {
        if let Some(reason) = row.reason.as_deref() {
            crosswalk(reason);
        }
    }
    for (fragment, reason, ours, why) in DISAGREEMENTS {
        assert!(
            !why.is_empty() && !ours.is_empty(),
            "{fragment}: say what we hold and why"
        );
        assert!(
            load()
                .iter()
                .any(|r| r.id.contains(fragment) && r.reason.as_deref() == Some(reason)),
            "disagreement `{fragment}` ({reason}) matches no row"
        );
    }
}

#[test]
fn sisimai_texts_agree_at_least_90_percent() {
    let rows = load();
    assert!(rows.len() >= 700, "{} rows", rows.len());
    let judged = judge(&shipped_rules(), &rows);
    let report = report(&judged);
    println!("{report}");
    let pct = 100.0 * judged.right as f64 / judged.total as f64;
    assert!(pct >= 90.0, "{pct:.1}% is below 90%\n{report}");
}

#[test]
fn sisimai_texts_suppress_only_unknown_recipients() {
    let judged = judge(&shipped_rules(), &load());
    assert!(
        judged.wrong_suppressions.is_empty() && judged.missed_suppressions.is_empty(),
        "suppressed on a reply whose cause is not the recipient's address, or on a 4xx:\n{}\n\
         not suppressed on a 5xx unknown user or unknown domain:\n{}",
        judged.wrong_suppressions.join("\n"),
        judged.missed_suppressions.join("\n")
    );
}
