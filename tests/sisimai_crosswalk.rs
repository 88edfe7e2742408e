//! Sisimai 5.1.0's 34 reasons mapped to our categories, and the rows where we disagree with
//! Sisimai on purpose. Shared by the reply test (`tests/sisimai_replies.rs`) and the message
//! test (`crates/message/tests/sisimai_messages.rs`, which includes this file by path).

use Crosswalk::{Agree, NotAReply};

/// What a Sisimai reason means for us.
pub enum Crosswalk {
    /// The categories that agree with the reason.
    Agree(&'static [&'static str]),
    /// Not a reply to judge: the row is left out of the agreement.
    NotAReply,
}

/// Sisimai's 34 reasons (5.1.0) and the categories of ours that agree with each.
pub const CROSSWALK: [(&str, Crosswalk); 34] = [
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
pub const DISAGREEMENTS: &[(&str, &str, &[&str], &str)] = &[
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
