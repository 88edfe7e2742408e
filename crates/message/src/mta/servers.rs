//! Non-DSN report readers for mail server software: Exim, qmail, Sendmail, Postfix, Courier, OpenSMTPD and the rest.

use super::Reader;

/// This group's readers, most specific first.
pub(crate) static READERS: &[Reader] = &[];
