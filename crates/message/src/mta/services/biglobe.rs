//! BIGLOBE's report: `----- The following addresses had delivery problems -----`, the
//! addresses, then `----- Non-delivered information -----` and the reason.

use crate::mime::Mail;
use crate::mta::text::{after_line_with, before_line_starting, failed_each, fold, lone_address};
use crate::mta::{Cues, Reader};
use crate::report::RecipientReport;

/// BIGLOBE (NEC's ISP).
pub(in crate::mta) const BIGLOBE: Reader = Reader {
    name: "biglobe",
    cues: Cues {
        from: &["@biglobe.ne.jp"],
        subject: &[],
        headers: &[],
        body: &["----- non-delivered information -----"],
    },
    read: read_biglobe,
};

/// `----- The following addresses had delivery problems -----`, the addresses, then
/// `----- Non-delivered information -----` and the reason.
fn read_biglobe(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let Some(list) = after_line_with(&mail.body, "----- the following addresses had delivery problems -----") else {
        return Vec::new();
    };
    let addresses: Vec<String> = before_line_starting(list, &["----- non-delivered information"])
        .lines()
        .filter_map(lone_address)
        .collect();
    let reason = after_line_with(list, "----- non-delivered information -----").unwrap_or("");
    let reason = fold(reason.trim_start_matches('\n').split("\n\n").next().unwrap_or(""));
    failed_each(addresses.iter().map(String::as_str), &reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::services::read_with as read;

    #[test]
    fn biglobe_reads_the_addresses_and_the_reason() {
        let raw = "From: postmaster@biglobe.ne.jp\nSubject: Returned mail: Service unavailable\n\n\
            \x20  ----- The following addresses had delivery problems -----\nann@example.org\n\n\
            \x20  ----- Non-delivered information -----\nThe number of messages in recipient's mailbox exceeded.\n\n";
        let got = read(raw, &BIGLOBE);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipient, "ann@example.org");
        assert!(got[0].diagnostic.starts_with("The number of messages"));
        let other = "From: ann@biglobe.ne.jp\nSubject: hi\n\nann@example.org\n";
        assert!(read(other, &BIGLOBE).is_empty());
    }
}
