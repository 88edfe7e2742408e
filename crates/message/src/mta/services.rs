//! Non-DSN report readers for hosted services and Exchange: Office 365, Outlook.com, Gmail, Yahoo, Amazon SES, Domino and the rest.

use super::Reader;

/// This group's readers, most specific first.
pub(crate) static READERS: &[Reader] = &[];
