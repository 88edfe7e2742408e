//! Auto-replies (RFC 3834 and vacation programs' own cues) and challenge-response requests,
//! recognised by cues that such programs write; the recipient is the replying party.

use crate::mime::Mail;

/// What gave an auto-reply or a challenge away, for the trace.
pub(crate) type Cue = String;

/// Subjects vacation programs start with, lower-case, in the languages seen in the wild.
const VACATION_SUBJECTS: &[&str] = &[
    "auto:",
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "autorespons",
    "out of office",
    "out of the office",
    "ooo:",
    "vacation",
    "on vacation",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "risposta automatica",
    "respuesta automática",
    "respuesta automatica",
    "resposta automática",
    "automatisch antwoord",
    "afwezigheidsmelding",
    "automatyczna odpowiedź",
    "automatiskt svar",
    "automatisk svar",
    "自動応答",
    "自動返信",
    "自动回复",
    "自動回覆",
    "자동 응답",
    "автоответ",
];

/// Headers whose presence marks a vacation program's reply.
const AUTOREPLY_HEADERS: &[&str] = &["X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply"];

/// The cue that marks `mail` as an auto-reply, if any.
pub(crate) fn auto_reply(mail: &Mail<'_>) -> Option<Cue> {
    if let Some(v) = mail.header("Auto-Submitted")
        && v.trim().to_ascii_lowercase().starts_with("auto-replied")
    {
        return Some("header Auto-Submitted: auto-replied (RFC 3834)".to_string());
    }
    if let Some(h) = AUTOREPLY_HEADERS.iter().find(|h| mail.header(h).is_some()) {
        return Some(format!("header {h}"));
    }
    if mail
        .header("Precedence")
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("auto_reply"))
    {
        return Some("header Precedence: auto_reply".to_string());
    }
    let subject = mail.subject().trim().to_lowercase();
    VACATION_SUBJECTS
        .iter()
        .find(|s| subject.starts_with(*s))
        .map(|s| format!("subject starting with \"{s}\""))
}

/// Words of well-known challenge-response systems asking the sender to prove they are a person.
const CHALLENGE_PHRASES: &[&str] = &[
    "please confirm you are human",
    "confirm that you are a human",
    "prove you are a human",
    "prove that you are a human",
    "verify that you are a human",
    "verify you are a human",
    "confirm that you are a real person",
    "verify that you are a real person",
    "i use a challenge-response",
    "challenge-response system",
    "spam arrest",
];

/// The sender domains of challenge-response services.
const CHALLENGE_SENDERS: &[&str] = &["spamarrest.com", "boxbe.com", "mailsbestfriend.com"];

/// The cue that marks `mail` as a challenge-response request, if any.
pub(crate) fn challenge(mail: &Mail<'_>) -> Option<Cue> {
    if mail.header("X-Spam-Challenge").is_some() {
        return Some("header X-Spam-Challenge".to_string());
    }
    let from = mail.from_address().to_ascii_lowercase();
    if let Some(d) = CHALLENGE_SENDERS.iter().find(|d| from.ends_with(*d)) {
        return Some(format!("sender at {d}"));
    }
    let subject = mail.subject().to_lowercase();
    let body = mail.body.to_lowercase();
    CHALLENGE_PHRASES
        .iter()
        .find(|p| subject.contains(*p) || body.contains(*p))
        .map(|p| format!("the words \"{p}\""))
}

/// Whether the challenge came from a service on the recipient's behalf (its `From` is the
/// service's), so the recipient is the original's `To`, not the `From`.
pub(crate) fn sent_by_service(from: &str) -> bool {
    let from = from.to_ascii_lowercase();
    CHALLENGE_SENDERS.iter().any(|d| from.ends_with(d))
}
