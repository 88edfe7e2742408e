//! `rebound classify`: streams JSONL or plain reply lines through the engine, one output line
//! per input line, in constant memory. A bad line gets an `error` object and the run goes on.

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

pub fn run(rules_dir: Option<&Path>, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let rules = rebound::rules::load(rules_dir)?;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
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
) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        tally.lines += 1;
        progress.inc(n as u64);
        match parse_line(&buf) {
            Ok((id, reply)) => {
                serde_json::to_writer(
                    &mut *out,
                    &Answer {
                        id: &id,
                        outcome: rules.classify(&reply),
                    },
                )?;
            }
            Err((id, error)) => {
                tally.errors += 1;
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

/// A line is a JSON object when it starts with `{`, else the reply's text.
fn parse_line(raw: &[u8]) -> Result<(Value, Reply), (Value, String)> {
    let text = std::str::from_utf8(raw).map_err(|e| (Value::Null, format!("line is not UTF-8: {e}")))?;
    let text = text.trim_end_matches(['\n', '\r']);
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err((Value::Null, "empty line".into()));
    }
    if !trimmed.starts_with('{') {
        return Ok((Value::Null, Reply::from_text(text)));
    }
    let object: Map<String, Value> =
        serde_json::from_str(trimmed).map_err(|e| (Value::Null, format!("invalid JSON: {e}")))?;
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    let field = |name: &str| -> Result<&str, String> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(""),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(format!("{name}: expected a string")),
        }
    };
    let fields = (|| -> Result<Reply, String> {
        let code = match object.get("code") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("code: {n} is not a reply code (100-599, or 0 for absent)"))?,
            Some(Value::String(s)) => parse_code_string(s)?,
            Some(_) => return Err("code: expected a number or a string".into()),
        };
        let input = ReplyInput {
            code,
            enhanced: field("enhanced")?,
            text: field("text")?,
            recipient: field("recipient")?,
            remote_host: field("remote_host")?,
        };
        Reply::parse(&input).map_err(|e| e.to_string())
    })();
    match fields {
        Ok(reply) => Ok((id, reply)),
        Err(error) => Err((id, error)),
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
    t.parse()
        .map_err(|_| format!("code: {s:?} is not a reply code (100-599, or 0 for absent)"))
}
