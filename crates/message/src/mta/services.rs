//! Non-DSN report readers for hosted services and Exchange: Office 365, Outlook.com, Gmail, Yahoo, Amazon SES, Domino and the rest.

use super::Reader;

mod amazon;
mod domino;
mod exchange;
mod google;
mod misc;
mod yahoo;

/// This group's readers, most specific first: the services whose cues name them (a sender
/// address or a wording of their own) before Exchange, whose wording other systems quote.
pub(crate) static READERS: &[Reader] = &[
    google::GOOGLE_GROUPS,
    google::GMAIL,
    yahoo::YAHOO,
    amazon::SES_NOTIFICATION,
    amazon::WORKMAIL,
    domino::DOMINO,
    domino::NOTES,
    misc::GMX,
    misc::EINSUNDEINS,
    misc::ZOHO,
    misc::MIMECAST,
    misc::VERIZON,
    misc::BIGLOBE,
    exchange::EXCHANGE2003,
    exchange::EXCHANGE2007,
];

/// Test support: the recipients `reader` reads from the raw message `raw`.
#[cfg(test)]
pub(super) fn read_with(raw: &str, reader: &Reader) -> Vec<crate::report::RecipientReport> {
    use crate::{Limits, mime, mime::Mail};
    let Ok(message) = mime::parse(raw.as_bytes(), &Limits::default()) else {
        return Vec::new();
    };
    let Ok(mail) = Mail::new(&message, &Limits::default()) else {
        return Vec::new();
    };
    (reader.read)(&mail)
}
