//! BIGLOBE's report: addresses under "----- The following addresses had delivery problems -----",
//! the reason under "----- Non-delivered information -----".

use super::layout::{after_line, before_line};
use crate::mime::Mail;
use crate::mta::text::{address_in, each_failed};
use crate::report::RecipientReport;

const LIST: &[&str] = &["----- the following addresses had delivery problems -----"];
const INFORMATION: &[&str] = &["----- non-delivered information -----"];

pub(super) fn read(mail: &Mail<'_>) -> Vec<RecipientReport> {
    let body = mail.body.as_str();
    let (Some(list), Some(information)) = (after_line(body, LIST), after_line(body, INFORMATION)) else {
        return Vec::new();
    };
    let reason: Vec<&str> = information
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let reason = reason.join("\n");
    let addresses = before_line(list, INFORMATION)
        .lines()
        .map(str::trim)
        .filter(|l| !l.contains(' '))
        .filter_map(address_in);
    each_failed(addresses, &reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::servers::tests::mail_of;

    #[test]
    fn the_listed_addresses_share_the_information_below() {
        let raw = r#"From: postmaster@mx.example.ne.jp
Subject: Returned mail: Service unavailable

   ----- The following addresses had delivery problems -----
bob@example.net

   ----- Non-delivered information -----
The number of messages in recipient's mailbox exceeded the local limit.
"#;
        let got = mail_of(raw, read);
        assert_eq!((got.len(), got[0].recipient.as_str()), (1, "bob@example.net"));
        assert!(got[0].diagnostic.starts_with("The number of messages"));
    }

    #[test]
    fn a_message_without_the_layout_gives_nobody() {
        assert!(mail_of("From: a@example.org\nSubject: x\n\nbob@example.net\n", read).is_empty());
    }
}
