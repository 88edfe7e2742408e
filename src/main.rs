//! The `rebound` binary: the gRPC service and the offline CLI over the classification engine.
//! Wiring and adapters only; every decision lives in `rebound-engine`.
#![forbid(unsafe_code)]

mod bench;
mod check;
mod classify;
mod classify_messages;
mod explain;
mod report;
mod rule_new;
mod serve;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Classifies SMTP bounce replies with hot-reloadable YAML rules.
#[derive(Parser)]
#[command(name = "rebound", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC API (Classifier, RuleAdmin, health, reflection) and Prometheus metrics.
    Serve(Box<serve::ServeArgs>),
    /// Exit 0 only when the server at --addr reports SERVING (for container health checks).
    Health(serve::HealthArgs),
    /// Load-test the gRPC API (unary, batch or stream) and report throughput and latency.
    Bench(Box<bench::BenchArgs>),
    /// Validate a rule directory exactly as a reload would: schema, regexes, scripts, every
    /// rule's examples and rules/tests. Exit status 0 only when all pass.
    Check {
        /// The rule directory; the embedded default rules when omitted.
        dir: Option<PathBuf>,
    },
    /// Classify replies from JSONL objects ({"id","code","enhanced","text","recipient","remote_host"},
    /// any field optional) or plain reply lines; writes one JSON object per input line. With
    /// --messages, classify bounce emails instead: one JSON object per message.
    Classify {
        /// Rule directory to use instead of the embedded rules.
        #[arg(long, env = "REBOUND_RULES")]
        rules: Option<PathBuf>,
        /// Input files; standard input when none (or `-`). With --messages: `.eml` files, Maildir
        /// folders (or folders of message files), mbox files, or `-`.
        files: Vec<PathBuf>,
        #[command(flatten)]
        limits: classify::Limits,
        /// Read the inputs as bounce emails (DSNs, MTA reports, auto-replies, ARF complaints) and
        /// answer each message: its kind, the returned original, and every recipient classified.
        #[arg(long)]
        messages: bool,
        /// With --messages: threads that read and classify (output stays in input order).
        /// Default: the number of CPUs.
        #[arg(long, requires = "messages", value_parser = clap::value_parser!(u32).range(1..=1024))]
        jobs: Option<u32>,
        #[command(flatten)]
        reader: classify_messages::ReaderArgs,
        #[command(flatten)]
        report: report::ReportArgs,
    },
    /// Write rules: `rule new REPLY` scaffolds one for a reply the rules decide weakly.
    #[command(subcommand)]
    Rule(RuleCommand),
    /// Show which rules were candidates for a reply, which matched, which won and why. With
    /// --message FILE: what was read from a bounce email, from where, and how each recipient
    /// was decided.
    Explain {
        /// Rule directory to use instead of the embedded rules.
        #[arg(long, env = "REBOUND_RULES")]
        rules: Option<PathBuf>,
        /// Reply code, if not in the text.
        #[arg(long, default_value_t = 0)]
        code: u32,
        /// Enhanced status code, if not in the text.
        #[arg(long, default_value = "")]
        enhanced: String,
        /// Recipient address (for provider detection).
        #[arg(long, default_value = "")]
        recipient: String,
        /// Remote host that answered (for provider detection).
        #[arg(long, default_value = "")]
        remote_host: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// A bounce email (`.eml`, the first message of an mbox, or `-` for standard input) to
        /// explain instead of a reply.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["reply", "code", "enhanced", "recipient", "remote_host"])]
        message: Option<PathBuf>,
        #[command(flatten)]
        reader: classify_messages::ReaderArgs,
        /// The reply, e.g. "550 5.1.1 <bob@example.com>: User unknown".
        #[arg(required_unless_present = "message")]
        reply: Option<String>,
    },
}

#[derive(Subcommand)]
enum RuleCommand {
    /// Print a YAML rule for REPLY: an id, `when` from its codes and the stable words of its
    /// template, the category to fill in (or --category), and REPLY as its example.
    New(rule_new::RuleNewArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs to stdout; the CLI's stdout carries results, so it logs to stderr.
    let serving = matches!(cli.command, Command::Serve(_));
    init_tracing(serving);
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Health(args) => serve::health(args),
        Command::Bench(args) => bench::run(*args),
        Command::Check { dir } => check::run(dir.as_deref()),
        Command::Classify {
            rules,
            files,
            limits,
            messages,
            jobs,
            reader,
            report,
        } => {
            if messages {
                let jobs = jobs.and_then(|j| usize::try_from(j).ok());
                classify_messages::run(rules.as_deref(), &files, &reader, jobs, &report)
            } else if let Some(flag) = reader.given() {
                Err(anyhow::anyhow!("{flag} reads bounce emails: it needs --messages"))
            } else {
                classify::run(rules.as_deref(), &files, &limits, &report)
            }
        }
        Command::Rule(RuleCommand::New(args)) => rule_new::run(&args),
        Command::Explain {
            rules,
            code,
            enhanced,
            recipient,
            remote_host,
            json,
            message,
            reader,
            reply,
        } => match (message, reply) {
            (Some(path), _) => explain::run_message(rules.as_deref(), &path, &reader, json),
            (None, reply) => match reader.given() {
                Some(flag) => Err(anyhow::anyhow!("{flag} reads bounce emails: it needs --message")),
                None => {
                    let reply = reply.unwrap_or_default();
                    let input = rebound_engine::ReplyInput {
                        code,
                        enhanced: &enhanced,
                        text: &reply,
                        recipient: &recipient,
                        remote_host: &remote_host,
                    };
                    explain::run(rules.as_deref(), &input, json)
                }
            },
        },
    };
    match result {
        Ok(code) => code,
        // The reader went away (`rebound check | head -1`): what it wanted was written. Failing
        // with an error would be noise; Rust ignores SIGPIPE, so this is where a pipe ends.
        Err(err) if closed_stdout(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `err` is a write to a pipe whose reader has gone.
fn closed_stdout(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        let kind = match e.downcast_ref::<serde_json::Error>() {
            Some(json) => json.io_error_kind(),
            None => e.downcast_ref::<std::io::Error>().map(std::io::Error::kind),
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// Logs as JSON unless a person is watching; `REBOUND_LOG` filters (info for the server, warn
/// for the CLI by default).
fn init_tracing(serving: bool) {
    use tracing_subscriber::{EnvFilter, fmt};
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_env("REBOUND_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = fmt().with_env_filter(filter);
    match (
        serving,
        serving && std::io::stdout().is_terminal() || !serving && std::io::stderr().is_terminal(),
    ) {
        (true, true) => builder.init(),
        (true, false) => builder.json().flatten_event(true).init(),
        (false, true) => builder.with_writer(std::io::stderr).init(),
        (false, false) => builder.json().flatten_event(true).with_writer(std::io::stderr).init(),
    }
}
