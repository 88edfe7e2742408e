//! `rebound classify`: streams JSONL or plain reply lines through the engine, one output line
//! per input line, in constant memory. A bad line gets an `error` object and the run goes on.
//!
//! The server's limits apply by default: a field over its limit is an error naming the limit's
//! flag, and a line longer than any acceptable one is never held whole: it is read through a
//! bounded buffer, skipped to its end, and answered with an error.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal as _, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rebound_engine::{Outcome, Reply, ReplyInput, RuleSet};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::report::{ReportArgs, Seen, Summary};

/// One answered line.
#[derive(Serialize)]
struct Answer<'a> {
    id: &'a Value,
    #[serde(flatten)]
    outcome: Outcome<'a>,
}

/// One line that could not be classified.
#[derive(Serialize)]
struct Failure<'a> {
    id: &'a Value,
    line: u64,
    error: String,
}

/// Counts for the closing summary.
#[derive(Default)]
struct Tally {
    lines: u64,
    errors: u64,
}

/// Limits on one input line; the defaults are `rebound serve`'s.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Limits {
    /// Longest reply text, in bytes (the `text` field, or a whole plain line).
    #[arg(long, env = "REBOUND_MAX_TEXT_BYTES", default_value_t = 64 * 1024)]
    pub max_text_bytes: usize,
    /// Longest `recipient`, in bytes (RFC 5321: 254 for an address).
    #[arg(long, env = "REBOUND_MAX_RECIPIENT_BYTES", default_value_t = 254)]
    pub max_recipient_bytes: usize,
    /// Longest `remote_host`, in bytes (RFC 5321: 255 for a host name).
    #[arg(long, env = "REBOUND_MAX_REMOTE_HOST_BYTES", default_value_t = 255)]
    pub max_remote_host_bytes: usize,
    /// Longest `id`, in bytes (a non-string id counts as its JSON text).
    #[arg(long, env = "REBOUND_MAX_ID_BYTES", default_value_t = 1024)]
    pub max_id_bytes: usize,
    /// Longest input line, in bytes; a longer one is skipped unread. Default: 8 × --max-text-bytes
    /// + 64 KiB, room for a JSON object whose text is at its limit written all in `\uXXXX` escapes.
    #[arg(long)]
    pub max_line_bytes: Option<usize>,
}

impl Limits {
    fn line_bytes(&self) -> usize {
        self.max_line_bytes
            .unwrap_or_else(|| self.max_text_bytes.saturating_mul(8).saturating_add(64 * 1024))
    }
}

pub fn run(
    rules_dir: Option<&Path>,
    files: &[PathBuf],
    limits: &Limits,
    report: &ReportArgs,
) -> anyhow::Result<ExitCode> {
    let rules = rebound::rules::load(rules_dir)?;
    let stdout = io::stdout();
    // With --report-only the answers are counted, not written.
    let mut out: Box<dyn Write> = if report.report_only {
        Box::new(io::sink())
    } else {
        Box::new(BufWriter::with_capacity(64 * 1024, stdout.lock()))
    };
    let mut summary = report.summary();
    let started = Instant::now();
    let mut tally = Tally::default();
    let stdin_only = [PathBuf::from("-")];
    let inputs = if files.is_empty() { &stdin_only[..] } else { files };
    for path in inputs {
        let (reader, size): (Box<dyn Read>, Option<u64>) = if path.as_os_str() == "-" {
            (Box::new(io::stdin().lock()), None)
        } else {
            let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let size = file.metadata().ok().map(|m| m.len());
            (Box::new(file), size)
        };
        let progress = progress_bar(size, path);
        classify_stream(
            &rules,
            BufReader::with_capacity(64 * 1024, reader),
            &mut out,
            &progress,
            &mut tally,
            limits,
            summary.as_mut(),
        )
        .with_context(|| format!("while reading {}", path.display()))?;
        progress.finish_and_clear();
    }
    out.flush().context("cannot write the output")?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "classified {} line(s), {} error(s), in {:.2} s ({:.0} lines/s)",
        tally.lines,
        tally.errors,
        secs,
        tally.lines as f64 / secs.max(1e-9)
    );
    if let Some(summary) = &summary {
        report.finish(summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A byte-count bar for files, a spinner for standard input; drawn only on a terminal.
fn progress_bar(size: Option<u64>, path: &Path) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(size, ProgressDrawTarget::hidden());
    }
    let (bar, template) = match size {
        Some(total) => (
            ProgressBar::new(total),
            "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{msg} {spinner} {bytes} read, {bytes_per_sec}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(path.display().to_string());
    bar
}

fn classify_stream(
    rules: &RuleSet,
    mut reader: impl BufRead,
    out: &mut impl Write,
    progress: &ProgressBar,
    tally: &mut Tally,
    limits: &Limits,
    mut summary: Option<&mut Summary>,
) -> anyhow::Result<()> {
    let max_line = limits.line_bytes();
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        // At most one byte past the limit is read: enough to know the line is too long.
        let limit = u64::try_from(max_line).unwrap_or(u64::MAX).saturating_add(1);
        let n = (&mut reader).take(limit).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        tally.lines += 1;
        progress.inc(n as u64);
        let ended = buf.last() == Some(&b'\n');
        let parsed = if ended || n <= max_line {
            parse_line(&buf, limits, summary.is_some())
        } else {
            let (rest, consumed) = skip_line(&mut reader)?;
            progress.inc(consumed);
            let length = (n as u64).saturating_add(rest);
            Err((
                Value::Null,
                format!("line: {length} bytes is over the limit of {max_line} (--max-line-bytes); skipped"),
            ))
        };
        match parsed {
            Ok((id, reply, raw_text)) => {
                let outcome = rules.classify(&reply);
                if let Some(summary) = summary.as_deref_mut() {
                    // The raw text, as the server templates it: codes and all.
                    summary.add(&Seen::of(&outcome, raw_text.as_deref().unwrap_or(&reply.text)));
                }
                serde_json::to_writer(&mut *out, &Answer { id: &id, outcome })?;
            }
            Err((id, error)) => {
                tally.errors += 1;
                if let Some(summary) = summary.as_deref_mut() {
                    summary.add_error();
                }
                serde_json::to_writer(
                    &mut *out,
                    &Failure {
                        id: &id,
                        line: line_no,
                        error,
                    },
                )?;
            }
        }
        out.write_all(b"\n")?;
    }
}

/// Consumes the rest of the current line without keeping it: returns its length without the
/// newline, and the bytes consumed.
fn skip_line(reader: &mut impl BufRead) -> io::Result<(u64, u64)> {
    let mut length = 0u64;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((length, length));
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(at) => {
                reader.consume(at + 1);
                length += at as u64;
                return Ok((length, length + 1));
            }
            None => {
                let read = available.len();
                reader.consume(read);
                length += read as u64;
            }
        }
    }
}

/// A line is a JSON object when it starts with `{`, else the reply's text.
/// The line's id and reply, and its raw text when `keep_text` (for the report's templates).
fn parse_line(raw: &[u8], limits: &Limits, keep_text: bool) -> Result<(Value, Reply, Option<String>), (Value, String)> {
    let text = std::str::from_utf8(raw).map_err(|e| (Value::Null, format!("line is not UTF-8: {e}")))?;
    let text = text.trim_end_matches(['\n', '\r']);
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err((Value::Null, "empty line".into()));
    }
    if !trimmed.starts_with('{') {
        within("text", text.len(), limits.max_text_bytes, "--max-text-bytes").map_err(|e| (Value::Null, e))?;
        return Ok((Value::Null, Reply::from_text(text), keep_text.then(|| text.to_string())));
    }
    let object: Map<String, Value> =
        serde_json::from_str(trimmed).map_err(|e| (Value::Null, format!("invalid JSON: {e}")))?;
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    // An id over its limit is not echoed: the error line carries a null id instead.
    within("id", json_len(&id), limits.max_id_bytes, "--max-id-bytes").map_err(|e| (Value::Null, e))?;
    let field = |name: &str, limit: Option<(usize, &str)>| -> Result<&str, String> {
        let value = match object.get(name) {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s,
            Some(_) => return Err(format!("{name}: expected a string")),
        };
        if let Some((max, flag)) = limit {
            within(name, value.len(), max, flag)?;
        }
        Ok(value)
    };
    let fields = (|| -> Result<(Reply, Option<String>), String> {
        let code = match object.get("code") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("code: {n} is not a reply code (100-599, or 0 for absent)"))?,
            Some(Value::String(s)) => parse_code_string(s)?,
            Some(_) => return Err("code: expected a number or a string".into()),
        };
        let enhanced = field("enhanced", None)?;
        // Nothing valid is this long; the engine's error would quote the whole value.
        if enhanced.trim().len() > MAX_ENHANCED_BYTES {
            return Err(format!(
                "enhanced: {} is not an enhanced status code (x.y.z with x in 2, 4, 5)",
                quote_prefix(enhanced)
            ));
        }
        let input = ReplyInput {
            code,
            enhanced,
            text: field("text", Some((limits.max_text_bytes, "--max-text-bytes")))?,
            recipient: field("recipient", Some((limits.max_recipient_bytes, "--max-recipient-bytes")))?,
            remote_host: field(
                "remote_host",
                Some((limits.max_remote_host_bytes, "--max-remote-host-bytes")),
            )?,
        };
        let reply = Reply::parse(&input).map_err(|e| e.to_string())?;
        Ok((reply, keep_text.then(|| input.text.to_string())))
    })();
    match fields {
        Ok((reply, raw_text)) => Ok((id, reply, raw_text)),
        Err(error) => Err((id, error)),
    }
}

/// Longer than any enhanced code, even wrapped (`(5.1.10)`) or padded.
const MAX_ENHANCED_BYTES: usize = 32;

/// `field: N bytes is over the limit of M (--flag)`, the server's wording plus the flag.
fn within(field: &str, length: usize, max: usize, flag: &str) -> Result<(), String> {
    if length > max {
        return Err(format!("{field}: {length} bytes is over the limit of {max} ({flag})"));
    }
    Ok(())
}

/// The size of an id: a string's bytes, or any other value's JSON text.
fn json_len(value: &Value) -> usize {
    match value {
        Value::Null => 0,
        Value::String(s) => s.len(),
        other => other.to_string().len(),
    }
}

/// A bad value for an error message: quoted, cut to a short prefix on a character boundary.
fn quote_prefix(value: &str) -> String {
    const SHOWN: usize = 32;
    match value.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{:?}... ({} bytes)", &value[..at], value.len()),
        None => format!("{value:?}"),
    }
}

/// `"550"`, and the guide's markers for a missing value (`""`, `-`, `NA`, `Missing`).
fn parse_code_string(s: &str) -> Result<u32, String> {
    let t = s.trim();
    if ["", "-", "na", "n/a", "missing"]
        .iter()
        .any(|m| t.eq_ignore_ascii_case(m))
    {
        return Ok(0);
    }
    t.parse().map_err(|_| {
        format!(
            "code: {} is not a reply code (100-599, or 0 for absent)",
            quote_prefix(s)
        )
    })
}
