//! Bounces that are not DSNs: each MTA's own report. Recognition is data: one [`Reader`] row per
//! MTA, with the cues that identify its reports and the function that reads its layout, so a
//! new MTA is a new row (and a file beside this one).

use crate::mime::Mail;
use crate::report::RecipientReport;

/// What identifies an MTA's report. Any one cue is enough; strings are lower-case and matched
/// as substrings of the lower-cased field.
pub(crate) struct Cues {
    /// In the top-level `From` address.
    pub from: &'static [&'static str],
    /// In the top-level `Subject`.
    pub subject: &'static [&'static str],
    /// Names of top-level headers whose presence identifies the MTA (`x-failed-recipients`).
    pub headers: &'static [&'static str],
    /// In the body text.
    pub body: &'static [&'static str],
}

/// One MTA's report reader.
pub(crate) struct Reader {
    /// The format's name, reported as `Report.format` (`exim`, `qmail`, ...).
    pub name: &'static str,
    /// What identifies its reports.
    pub cues: Cues,
    /// Reads the recipients from a report it recognised; empty when the layout did not hold.
    pub read: fn(&Mail<'_>) -> Vec<RecipientReport>,
}

mod servers;
mod services;
pub(crate) mod text;

/// Every non-DSN reader, most specific first: hosted services and Exchange (whose reports
/// often quote a server's words), then mail server software.
pub(crate) static READERS: [&[Reader]; 2] = [services::READERS, servers::READERS];

/// The readers whose cues the message shows, in table order.
pub(crate) fn candidates<'m>(mail: &'m Mail<'_>) -> impl Iterator<Item = &'static Reader> + 'm {
    let from = mail.from_address().to_ascii_lowercase();
    let subject = mail.subject().to_lowercase();
    let body = mail.body.to_lowercase();
    READERS.iter().flat_map(|group| group.iter()).filter(move |r| {
        r.cues.from.iter().any(|c| from.contains(c))
            || r.cues.subject.iter().any(|c| subject.contains(c))
            || r.cues.headers.iter().any(|h| mail.header(h).is_some())
            || r.cues.body.iter().any(|c| body.contains(c))
    })
}
