//! Splitting an mbox file into its messages as it is read, in constant memory beyond the
//! longest message kept.

use std::io::{self, BufRead, Read};

/// One message of an mbox: its bytes, or why it was skipped.
#[derive(Debug)]
pub enum MboxItem {
    /// The message, its `From ` separator line removed and `>From ` lines unescaped (mboxrd).
    Message(Vec<u8>),
    /// The message was longer than the limit; its bytes were read and dropped.
    TooLarge {
        /// How many bytes it had (at least).
        size: usize,
    },
}

/// The messages of an mbox, read one at a time.
pub struct Mbox<R> {
    reader: R,
    max_email_bytes: usize,
    line: Vec<u8>,
    /// The last piece read ended inside a line (a line longer than the limit is read in
    /// pieces): the next piece starts no line, so it is no separator.
    mid_line: bool,
    started: bool,
    done: bool,
}

impl<R: BufRead> Mbox<R> {
    /// Reads `reader` as an mbox; a message over `max_email_bytes` is skipped and reported.
    pub fn new(reader: R, max_email_bytes: usize) -> Mbox<R> {
        Mbox {
            reader,
            max_email_bytes,
            line: Vec::new(),
            mid_line: false,
            started: false,
            done: false,
        }
    }

    /// Reads one line into `self.line`, at most `max_email_bytes + 1` bytes of it so that a line
    /// that never ends costs no more memory than a message; false at the end of input.
    fn next_line(&mut self) -> io::Result<bool> {
        self.line.clear();
        let piece = u64::try_from(self.max_email_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let read = (&mut self.reader).take(piece).read_until(b'\n', &mut self.line)?;
        Ok(read > 0)
    }

    /// A `From ` separator line starts a message; the rest of a long line does not.
    fn at_separator(&mut self) -> bool {
        let starts_line = !self.mid_line;
        self.mid_line = self.line.last() != Some(&b'\n');
        starts_line && self.line.starts_with(b"From ")
    }
}

impl<R: BufRead> Iterator for Mbox<R> {
    type Item = io::Result<MboxItem>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut message = Vec::new();
        let mut size = 0usize;
        loop {
            // The separator of this message was read by the previous call, or is the first line.
            match self.next_line() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(false) => {
                    self.done = true;
                    break;
                }
                Ok(true) => {}
            }
            if self.at_separator() {
                if !self.started || size == 0 {
                    self.started = true;
                    continue;
                }
                break;
            }
            self.started = true;
            size += self.line.len();
            if size <= self.max_email_bytes {
                let unescaped = unescape(&self.line);
                message.extend_from_slice(unescaped);
            } else {
                message = Vec::new();
            }
        }
        if size == 0 {
            return None;
        }
        Some(Ok(if size > self.max_email_bytes {
            MboxItem::TooLarge { size }
        } else {
            MboxItem::Message(message)
        }))
    }
}

/// mboxrd: a line `>From `, `>>From `, ... loses one `>`.
fn unescape(line: &[u8]) -> &[u8] {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    if quotes > 0 && line[quotes..].starts_with(b"From ") {
        &line[1..]
    } else {
        line
    }
}
