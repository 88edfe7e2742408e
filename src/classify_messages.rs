//! `rebound classify --messages`: reads bounce emails (`.eml` files, Maildir folders, mbox files,
//! standard input), answers each with the message reader and the rules, and writes one JSON line
//! per message in input order. Messages are read and classified on `--jobs` threads with a
//! bounded window of messages in flight, so memory stays flat however long the input is.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Cursor, IsTerminal as _, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, mpsc};
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use rebound_engine::RuleSet;
use rebound_message::mbox::{Mbox, MboxItem};
use rebound_message::{Kind, Limits, MessageAnswer, MessageError, ReadOptions, RecipientOutcome, Report, VerpPattern};
use serde::Serialize;

use crate::report::{ReportArgs, Seen, Summary};

/// How messages are read: the headers to return, the VERP pattern and the limits. Shared by
/// `classify --messages` and `explain --message`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReaderArgs {
    /// A header of the returned original to report under `original.headers` (repeatable), e.g.
    /// `--header X-Campaign-Id`.
    #[arg(long = "header", value_name = "NAME")]
    pub headers: Vec<String>,
    /// Where a bounce names no recipient, read it from the VERP return address with this
    /// pattern, e.g. `bounces+{local}={domain}@example.net`.
    #[arg(long, value_name = "PATTERN")]
    pub verp: Option<String>,
    /// Longest email, in bytes; a longer one is answered with a `too_large` error.
    #[arg(long, env = "REBOUND_MAX_EMAIL_BYTES", default_value_t = Limits::default().max_email_bytes)]
    pub max_email_bytes: usize,
    /// Deepest nesting of MIME parts (multiparts and attached messages).
    #[arg(long, env = "REBOUND_MAX_MIME_DEPTH", default_value_t = Limits::default().max_mime_depth)]
    pub max_mime_depth: usize,
    /// Most MIME parts in one message, nested ones included.
    #[arg(long, env = "REBOUND_MAX_MIME_PARTS", default_value_t = Limits::default().max_mime_parts)]
    pub max_mime_parts: usize,
}

impl ReaderArgs {
    /// The limits on one message.
    pub fn limits(&self) -> Limits {
        Limits {
            max_email_bytes: self.max_email_bytes,
            max_mime_depth: self.max_mime_depth,
            max_mime_parts: self.max_mime_parts,
        }
    }

    /// The compiled `--verp` pattern; an invalid one is an error naming the flag.
    pub fn verp(&self) -> anyhow::Result<Option<VerpPattern>> {
        self.verp
            .as_deref()
            .map(|p| VerpPattern::new(p).map_err(|e| anyhow::anyhow!("--verp: {e}")))
            .transpose()
    }

    /// The flag given that only means something for bounce emails, to refuse it on the reply
    /// path. The limits are left out: they also come from the environment (`REBOUND_MAX_*`,
    /// shared with `rebound serve`), where they must not break `rebound classify` of replies.
    pub fn given(&self) -> Option<&'static str> {
        if !self.headers.is_empty() {
            Some("--header")
        } else if self.verp.is_some() {
            Some("--verp")
        } else {
            None
        }
    }
}

/// One message to answer: its id and its bytes, or why they could not be had.
struct Job {
    id: String,
    input: Result<Vec<u8>, Failure>,
}

/// Why a message has no answer: the `error` object of its line.
#[derive(Debug, Serialize)]
pub(crate) struct Failure {
    /// A stable code (`too_large`, `unreadable`, ...).
    pub code: &'static str,
    /// The limit or field it is about (`max_email_bytes`, `message`, `file`).
    pub field: &'static str,
    /// For people.
    pub message: String,
}

impl From<&MessageError> for Failure {
    fn from(e: &MessageError) -> Failure {
        Failure {
            code: e.code(),
            field: e.field(),
            message: e.to_string(),
        }
    }
}

impl Failure {
    fn unreadable(e: &io::Error) -> Failure {
        Failure {
            code: "unreadable",
            field: "file",
            message: format!("cannot read the message: {e}"),
        }
    }

    fn internal(message: &str) -> Failure {
        Failure {
            code: "internal",
            field: "message",
            message: message.to_string(),
        }
    }
}

/// One answered message: its JSON line and what the summary counts.
struct Answered {
    line: Vec<u8>,
    /// `None` for an error line.
    kind: Option<Kind>,
    recipients: usize,
    /// Each recipient's part of the `--report` summary; empty when none was asked for.
    seen: Vec<Seen>,
}

/// Counts for the closing summary.
#[derive(Default)]
struct Tally {
    messages: u64,
    /// Per kind, in [`KINDS`] order.
    kinds: [u64; 5],
    recipients: u64,
    errors: u64,
}

const KINDS: [Kind; 5] = [
    Kind::Bounce,
    Kind::AutoReply,
    Kind::Feedback,
    Kind::Challenge,
    Kind::NotBounce,
];

impl Tally {
    fn count(&mut self, answered: &Answered) {
        self.messages += 1;
        self.recipients += answered.recipients as u64;
        match answered.kind {
            Some(kind) => {
                if let Some(at) = KINDS.iter().position(|k| *k == kind) {
                    self.kinds[at] += 1;
                }
            }
            None => self.errors += 1,
        }
    }
}

/// Messages in flight per job: enough to keep every thread busy while one slow message holds
/// the output back, few enough that memory stays flat (each is at most `max_email_bytes`).
const WINDOW_PER_JOB: usize = 8;

pub fn run(
    rules_dir: Option<&Path>,
    paths: &[PathBuf],
    args: &ReaderArgs,
    jobs: Option<usize>,
    report: &ReportArgs,
) -> anyhow::Result<ExitCode> {
    let limits = args.limits();
    let verp = args.verp()?;
    let stdin_only = [PathBuf::from("-")];
    let inputs = if paths.is_empty() { &stdin_only[..] } else { paths };
    // A path that is not there is a mistake on the command line, not a message to answer.
    for path in inputs.iter().filter(|p| p.as_os_str() != "-") {
        fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    let rules = rebound::rules::load(rules_dir)?;
    let options = ReadOptions {
        limits,
        headers: &args.headers,
        verp: verp.as_ref(),
    };
    let jobs = jobs
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1);
    let progress = progress_bar();
    // With --report-only the answers are counted, not written.
    let out: Box<dyn Write> = if report.report_only {
        Box::new(io::sink())
    } else {
        Box::new(BufWriter::with_capacity(64 * 1024, io::stdout().lock()))
    };
    let mut output = Output {
        out,
        tally: Tally::default(),
        progress: &progress,
        summary: report.summary(),
    };
    let reporting = output.summary.is_some();
    let started = Instant::now();
    let fed = if jobs == 1 {
        // One job runs on this thread: no hand-off cost, and `--jobs 1` is one core.
        let mut submit = |job: Job| output.write(&answer(&rules, &options, job, reporting));
        feed_all(inputs, limits.max_email_bytes, &progress, &mut submit)
    } else {
        in_parallel(
            &rules,
            &options,
            reporting,
            jobs,
            inputs,
            limits.max_email_bytes,
            &mut output,
        )
    };
    progress.finish_and_clear();
    fed?;
    output.out.flush().context("cannot write the output")?;
    let tally = &output.tally;
    let secs = started.elapsed().as_secs_f64();
    let kinds: Vec<String> = KINDS
        .iter()
        .zip(tally.kinds)
        .map(|(k, n)| format!("{n} {}", k.as_str()))
        .collect();
    eprintln!(
        "classified {} message(s) ({}; {} recipient(s)), {} error(s), in {:.2} s ({:.0} messages/s, {} job(s))",
        tally.messages,
        kinds.join(", "),
        tally.recipients,
        tally.errors,
        secs,
        tally.messages as f64 / secs.max(1e-9),
        jobs
    );
    if let Some(summary) = &output.summary {
        report.finish(summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Where answered lines go, in order.
struct Output<'p, W: Write> {
    out: W,
    tally: Tally,
    progress: &'p ProgressBar,
    /// The `--report` counts, when asked for.
    summary: Option<Summary>,
}

impl<W: Write> Output<'_, W> {
    fn write(&mut self, answered: &Answered) -> anyhow::Result<()> {
        self.out.write_all(&answered.line)?;
        self.out.write_all(b"\n")?;
        self.tally.count(answered);
        if let Some(summary) = &mut self.summary {
            if answered.kind.is_none() {
                summary.add_error();
            }
            for seen in &answered.seen {
                summary.add(seen);
            }
        }
        self.progress.inc(1);
        Ok(())
    }
}

/// Reads and classifies on `jobs` threads; this thread reads the input and writes the answers
/// in input order. At most `jobs × WINDOW_PER_JOB` messages are in flight: the reader waits
/// for the oldest answer before handing out one more.
fn in_parallel<W: Write>(
    rules: &RuleSet,
    options: &ReadOptions<'_>,
    reporting: bool,
    jobs: usize,
    inputs: &[PathBuf],
    max_email_bytes: usize,
    output: &mut Output<'_, W>,
) -> anyhow::Result<()> {
    let window = (jobs.saturating_mul(WINDOW_PER_JOB)) as u64;
    // Unbounded channels, bounded by the window: neither side ever blocks the other.
    let (job_tx, job_rx) = mpsc::channel::<(u64, Job)>();
    let (done_tx, done_rx) = mpsc::channel::<(u64, Answered)>();
    let job_rx = Mutex::new(job_rx);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let done_tx = done_tx.clone();
            let job_rx = &job_rx;
            scope.spawn(move || {
                loop {
                    let next = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, job)) = next else { return };
                    if done_tx.send((seq, answer(rules, options, job, reporting))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let progress = output.progress;
        let mut order = Reorder {
            pending: BTreeMap::new(),
            next: 0,
            sent: 0,
        };
        let mut submit = |job: Job| -> anyhow::Result<()> {
            job_tx
                .send((order.sent, job))
                .map_err(|_| anyhow::anyhow!("the classifying threads stopped"))?;
            order.sent += 1;
            while order.sent - order.next >= window {
                order.receive(&done_rx, output)?;
            }
            Ok(())
        };
        let fed = feed_all(inputs, max_email_bytes, progress, &mut submit);
        drop(job_tx);
        fed?;
        while order.next < order.sent {
            order.receive(&done_rx, output)?;
        }
        Ok(())
    })
}

/// Answers that came back out of order, held until the ones before them are written.
struct Reorder {
    pending: BTreeMap<u64, Answered>,
    /// The next sequence number to write.
    next: u64,
    /// How many were handed out.
    sent: u64,
}

impl Reorder {
    /// Waits for one answer, then writes every answer that is next in line.
    fn receive<W: Write>(
        &mut self,
        done: &mpsc::Receiver<(u64, Answered)>,
        output: &mut Output<'_, W>,
    ) -> anyhow::Result<()> {
        let (seq, answered) = done
            .recv()
            .map_err(|_| anyhow::anyhow!("the classifying threads stopped"))?;
        self.pending.insert(seq, answered);
        while let Some(answered) = self.pending.remove(&self.next) {
            output.write(&answered)?;
            self.next += 1;
        }
        Ok(())
    }
}

/// Reads, classifies and serialises one message. A panic in the reader (a bug, on input a
/// stranger wrote) becomes that message's error, so one message never ends the run.
fn answer(rules: &RuleSet, options: &ReadOptions<'_>, job: Job, reporting: bool) -> Answered {
    let Job { id, input } = job;
    let answered = input.and_then(|raw| {
        catch_unwind(AssertUnwindSafe(|| {
            answer_message(rules, options, &id, &raw, reporting)
        }))
        .unwrap_or_else(|_| {
            Err(Failure::internal(
                "the reader failed on this message (a bug: please report it)",
            ))
        })
    });
    answered.unwrap_or_else(|failure| Answered {
        line: error_line(&id, &failure),
        kind: None,
        recipients: 0,
        seen: Vec::new(),
    })
}

fn answer_message(
    rules: &RuleSet,
    options: &ReadOptions<'_>,
    id: &str,
    raw: &[u8],
    reporting: bool,
) -> Result<Answered, Failure> {
    let report = rebound_message::read(raw, options).map_err(|e| Failure::from(&e))?;
    let outcomes = rebound_message::classify(rules, &report);
    let line = serde_json::to_vec(&message_answer(id, &report, &outcomes))
        .map_err(|e| Failure::internal(&format!("cannot serialise the answer: {e}")))?;
    Ok(Answered {
        line,
        kind: Some(report.kind),
        recipients: report.recipients.len(),
        seen: if reporting {
            report
                .recipients
                .iter()
                .zip(&outcomes)
                .map(|(r, outcome)| Seen::of(outcome, &r.diagnostic))
                .collect()
        } else {
            Vec::new()
        },
    })
}

/// An unreadable message's line: its id and the `error` object.
fn error_line(id: &str, failure: &Failure) -> Vec<u8> {
    // `id` first, as in an answer (a `json!` object would sort its keys).
    #[derive(Serialize)]
    struct ErrorLine<'a> {
        id: &'a str,
        error: &'a Failure,
    }
    serde_json::to_vec(&ErrorLine { id, error: failure })
        // Strings only, so this cannot fail; the line must still be one JSON object.
        .unwrap_or_else(|_| b"{}".to_vec())
}

/// DESIGN.md's message answer (`id`, `kind`, `reporting_mta`, `arrival_date`, `original`,
/// `feedback`, `recipients` with every outcome field), as the reader crate writes it for the
/// server and the CLI alike.
pub(crate) fn message_answer<'a>(
    id: &'a str,
    report: &'a Report,
    outcomes: &'a [RecipientOutcome<'a>],
) -> MessageAnswer<'a> {
    MessageAnswer { id, report, outcomes }
}

/// A message counter on a terminal; hidden otherwise.
fn progress_bar() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {human_pos} messages, {rate} {wide_msg}") {
        bar.set_style(
            style.with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", state.per_sec());
            }),
        );
    }
    bar
}

/// Hands every message of every input to `submit`, in order.
fn feed_all(
    inputs: &[PathBuf],
    max_email_bytes: usize,
    progress: &ProgressBar,
    submit: &mut dyn FnMut(Job) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for path in inputs {
        progress.set_message(path.display().to_string());
        if path.as_os_str() == "-" {
            feed_stream("-", io::stdin().lock(), None, max_email_bytes, submit)?;
            continue;
        }
        let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            // A folder's file is one message, as Maildir defines it: a `From ` first line there
            // is the delivery agent's envelope line, not an mbox.
            for file in folder_messages(path)? {
                feed_file(&file, Holds::One, max_email_bytes, submit)?;
            }
        } else {
            feed_file(path, Holds::OneOrMbox, max_email_bytes, submit)?;
        }
    }
    Ok(())
}

/// The message files of a folder, sorted by name for a stable order: a Maildir's `cur/` then
/// `new/` (its `tmp/` holds deliveries in progress), or else the folder's own files. Hidden
/// files are left out (Maildir++ and Dovecot keep their state there).
fn folder_messages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let maildir: Vec<PathBuf> = ["cur", "new"]
        .iter()
        .map(|sub| dir.join(sub))
        .filter(|sub| sub.is_dir())
        .collect();
    let folders = if maildir.is_empty() {
        vec![dir.to_path_buf()]
    } else {
        maildir
    };
    let mut files = Vec::new();
    for folder in folders {
        let mut names = Vec::new();
        for entry in fs::read_dir(&folder).with_context(|| format!("cannot list {}", folder.display()))? {
            let entry = entry.with_context(|| format!("cannot list {}", folder.display()))?;
            let name = entry.file_name();
            if name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            // Symbolic links are followed: a folder of links to messages is a folder of messages.
            if fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
                names.push(name);
            }
        }
        names.sort();
        files.extend(names.into_iter().map(|n| folder.join(n)));
    }
    Ok(files)
}

/// What a file holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// One message (a folder's file).
    One,
    /// One message, or an mbox when its first line starts with `From ` (a path given).
    OneOrMbox,
}

fn feed_file(
    path: &Path,
    holds: Holds,
    max_email_bytes: usize,
    submit: &mut dyn FnMut(Job) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let id = path.display().to_string();
    match fs::File::open(path) {
        Ok(file) => {
            let size = file.metadata().ok().map(|m| m.len());
            if holds == Holds::One {
                let reader = BufReader::with_capacity(64 * 1024, file);
                return submit(Job {
                    id,
                    input: read_one(reader, size, max_email_bytes),
                });
            }
            feed_stream(&id, file, size, max_email_bytes, submit)
        }
        Err(e) => submit(Job {
            id,
            input: Err(Failure::unreadable(&e)),
        }),
    }
}

/// One message, or an mbox of many when the input's first line starts with `From `. `size` is
/// the input's length when known, so a single message over the limit is not read at all.
fn feed_stream(
    id: &str,
    reader: impl Read,
    size: Option<u64>,
    max_email_bytes: usize,
    submit: &mut dyn FnMut(Job) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (is_mbox, reader) = match peek_mbox(reader) {
        Ok(peeked) => peeked,
        Err(e) => {
            return submit(Job {
                id: id.to_string(),
                input: Err(Failure::unreadable(&e)),
            });
        }
    };
    if !is_mbox {
        return submit(Job {
            id: id.to_string(),
            input: read_one(reader, size, max_email_bytes),
        });
    }
    for (n, item) in Mbox::new(reader, max_email_bytes).enumerate() {
        let id = format!("{id}#{}", n + 1);
        let (input, stop) = match item {
            Ok(MboxItem::Message(raw)) => (Ok(raw), false),
            Ok(MboxItem::TooLarge { size }) => (
                Err(Failure::from(&MessageError::TooLarge {
                    size,
                    limit: max_email_bytes,
                })),
                false,
            ),
            // The mbox cannot be read on: this message is its last.
            Err(e) => (Err(Failure::unreadable(&e)), true),
        };
        submit(Job { id, input })?;
        if stop {
            break;
        }
    }
    Ok(())
}

/// An input whose first bytes were read to tell an mbox, put back in front of the rest.
type Peeked<R> = BufReader<io::Chain<Cursor<Vec<u8>>, R>>;

/// Whether `reader` starts with an mbox `From ` line, and a buffered reader over all of it.
fn peek_mbox<R: Read>(mut reader: R) -> io::Result<(bool, Peeked<R>)> {
    const SEPARATOR: &[u8] = b"From ";
    let mut head = Vec::with_capacity(SEPARATOR.len());
    (&mut reader).take(SEPARATOR.len() as u64).read_to_end(&mut head)?;
    let is_mbox = head == SEPARATOR;
    Ok((
        is_mbox,
        BufReader::with_capacity(64 * 1024, Cursor::new(head).chain(reader)),
    ))
}

/// The whole of one message, or `too_large` without keeping more than the limit.
fn read_one(mut reader: impl BufRead, size: Option<u64>, max_email_bytes: usize) -> Result<Vec<u8>, Failure> {
    let limit = u64::try_from(max_email_bytes).unwrap_or(u64::MAX);
    let too_large = |size: u64| {
        Failure::from(&MessageError::TooLarge {
            size: usize::try_from(size).unwrap_or(usize::MAX),
            limit: max_email_bytes,
        })
    };
    if let Some(size) = size.filter(|&s| s > limit) {
        return Err(too_large(size));
    }
    let mut raw = Vec::new();
    (&mut reader)
        .take(limit.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|e| Failure::unreadable(&e))?;
    if raw.len() as u64 > limit {
        // Counted, not kept: the error says how large it was.
        let rest = io::copy(&mut reader, &mut io::sink()).map_err(|e| Failure::unreadable(&e))?;
        return Err(too_large((raw.len() as u64).saturating_add(rest)));
    }
    Ok(raw)
}

/// The first message of `path` (of an mbox, its first; `-` is standard input), for
/// `explain --message`.
pub(crate) fn first_message(path: &Path, max_email_bytes: usize) -> anyhow::Result<Vec<u8>> {
    let cannot = || format!("cannot read {}", path.display());
    let (reader, size): (Box<dyn Read>, Option<u64>) = if path.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let file = fs::File::open(path).with_context(cannot)?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let (is_mbox, reader) = peek_mbox(reader).with_context(cannot)?;
    let first = if is_mbox {
        match Mbox::new(reader, max_email_bytes).next() {
            Some(Ok(MboxItem::Message(raw))) => Ok(raw),
            Some(Ok(MboxItem::TooLarge { size })) => Err(Failure::from(&MessageError::TooLarge {
                size,
                limit: max_email_bytes,
            })),
            Some(Err(e)) => Err(Failure::unreadable(&e)),
            None => Err(Failure::from(&MessageError::Empty)),
        }
    } else {
        read_one(reader, size, max_email_bytes)
    };
    first.map_err(|f| anyhow::anyhow!("{}: {} ({}: {})", path.display(), f.message, f.code, f.field))
}
