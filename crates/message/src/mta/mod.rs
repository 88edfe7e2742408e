//! Bounces that are not DSNs: each MTA's own report. Recognition is data: one [`Reader`] row per
//! MTA, with the cues that identify its reports and the function that reads its layout, so a
//! new MTA is a new row (and a file beside this one).

use std::sync::LazyLock;

use crate::mime::Mail;
use crate::report::RecipientReport;

/// What identifies an MTA's report. Any one cue is enough; strings are lower-case and matched
/// as substrings of the lower-cased field (the body's ASCII cues, ASCII case-insensitively).
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
    let in_body = body_cues_shown(&mail.body);
    readers().zip(in_body).filter_map(move |(r, in_body)| {
        let shown = in_body
            || r.cues.from.iter().any(|c| from.contains(c))
            || r.cues.subject.iter().any(|c| subject.contains(c))
            || r.cues.headers.iter().any(|h| mail.header(h).is_some());
        shown.then_some(r)
    })
}

/// Every reader, in table order.
fn readers() -> impl Iterator<Item = &'static Reader> {
    READERS.iter().flat_map(|group| group.iter())
}

/// Every reader's body cues in one automaton, so the body is scanned once for all of them
/// rather than once per cue (the cues are ASCII: matching them ASCII case-insensitively needs
/// no lower-cased copy of the body).
struct BodyCues {
    automaton: aho_corasick::AhoCorasick,
    /// The index in table order of the reader each cue (pattern) belongs to.
    reader_of: Vec<usize>,
}

static BODY_CUES: LazyLock<Option<BodyCues>> = LazyLock::new(|| {
    let (reader_of, cues): (Vec<usize>, Vec<&str>) = readers()
        .enumerate()
        .flat_map(|(at, r)| r.cues.body.iter().map(move |c| (at, *c)))
        .unzip();
    let automaton = aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(cues)
        .ok()?;
    Some(BodyCues { automaton, reader_of })
});

/// For each reader in table order, whether one of its body cues is in `body`.
fn body_cues_shown(body: &str) -> Vec<bool> {
    let mut shown = vec![false; readers().count()];
    match BODY_CUES.as_ref() {
        // Overlapping matches: every cue found is reported, even one inside another.
        Some(cues) => {
            for m in cues.automaton.find_overlapping_iter(body) {
                if let Some(reader) = cues.reader_of.get(m.pattern().as_usize())
                    && let Some(seen) = shown.get_mut(*reader)
                {
                    *seen = true;
                }
            }
        }
        // The automaton could not be built (it cannot for these few cues): a scan per cue.
        None => {
            let body = body.to_ascii_lowercase();
            for (seen, r) in shown.iter_mut().zip(readers()) {
                *seen = r.cues.body.iter().any(|c| body.contains(c));
            }
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::{body_cues_shown, readers};

    #[test]
    fn each_body_cue_shows_its_reader_whatever_its_case() {
        for (at, r) in readers().enumerate() {
            for cue in r.cues.body {
                let body = format!("Intro\n{}\nrest", cue.to_ascii_uppercase());
                let shown = body_cues_shown(&body);
                assert_eq!(shown.get(at), Some(&true), "{} {cue}", r.name);
            }
        }
        assert!(!body_cues_shown("nothing of any reader here").contains(&true));
    }
}
