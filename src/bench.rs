//! `rebound bench`: a gRPC load generator. Bounded by duration and request count, loopback by
//! default; without `--addr` it starts a server in this process (with `--baseline`, one that
//! answers without classifying: the transport ceiling to compare against).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use rebound::pb;
use rebound::pb::classifier_client::ClassifierClient;
use rebound::server::{BoundServer, RuleOrigin, RuleState, ServerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};

#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One Classify call per reply.
    Unary,
    /// ClassifyBatch calls of --batch-size replies.
    Batch,
    /// One ClassifyStream per worker, --window replies in flight.
    Stream,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Server to load (`host:port`, or a URL such as https://host:port); a server in this
    /// process on loopback when absent.
    #[arg(long)]
    addr: Option<String>,
    /// What to call.
    #[arg(long, value_enum, default_value = "unary")]
    mode: Mode,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Workers sending at once (spread over the connections).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Stop after this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop after this many requests (0: the duration decides).
    #[arg(long, default_value_t = 0)]
    requests: u64,
    /// Replies per ClassifyBatch.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Replies in flight per stream.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// JSONL replies ({"code","enhanced","text",...}); the provider replies built in when absent.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Rule directory for the in-process server.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// The in-process server answers one fixed response without classifying.
    #[arg(long)]
    baseline: bool,
    /// Ask for answers without the category's summary and remediation (`omit_advice`).
    #[arg(long)]
    omit_advice: bool,
    /// Ask for an explanation of every reply (`explain`).
    #[arg(long)]
    explain: bool,
    /// Send requests gzip-compressed and accept compressed answers.
    #[arg(long)]
    gzip: bool,
    /// Give each call this deadline (`grpc-timeout`; for a stream, the whole stream); none when
    /// absent. Calls past it count as errors, by status code.
    #[arg(long, value_parser = parse_duration)]
    deadline: Option<Duration>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Send at most this many requests per second in all (replies per second in stream mode),
    /// spread evenly over the workers; latency then counts from when each was due, so a server
    /// that falls behind shows it. As fast as answers come when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Also write the latency distribution (percentile, µs) as JSON to this file.
    #[arg(long)]
    histogram: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::serve::parse_duration(s)
}

/// The built-in sample: real replies from major receivers.
const SAMPLE: &str = include_str!("../tests/data/provider_replies.jsonl");

#[derive(Deserialize)]
struct InputReply {
    #[serde(default)]
    code: Option<u32>,
    #[serde(default)]
    enhanced: Option<String>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    remote_host: Option<String>,
}

fn load_replies(input: Option<&PathBuf>) -> anyhow::Result<Vec<pb::ClassifyRequest>> {
    let text = match input {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
        None => SAMPLE.to_string(),
    };
    let mut replies = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let r: InputReply = serde_json::from_str(line).with_context(|| format!("line {}", n + 1))?;
        replies.push(pb::ClassifyRequest {
            id: (n + 1).to_string(),
            code: r.code.unwrap_or(0),
            enhanced: r.enhanced.unwrap_or_default(),
            text: r.text,
            recipient: r.recipient.unwrap_or_default(),
            remote_host: r.remote_host.unwrap_or_default(),
            explain: false,
            omit_advice: false,
        });
    }
    anyhow::ensure!(!replies.is_empty(), "no replies to send");
    Ok(replies)
}

/// What one run measured.
#[derive(Serialize)]
pub struct Report {
    mode: Mode,
    requests_per_sec: f64,
    classifications_per_sec: f64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    p999_us: f64,
    errors: u64,
    /// Failed calls and item errors by gRPC status code.
    errors_by_code: BTreeMap<String, u64>,
    requests: u64,
    classifications: u64,
    seconds: f64,
    connections: usize,
    concurrency: usize,
    baseline: bool,
    /// Whether the answers left out the category's advice.
    omit_advice: bool,
    /// The --rate asked for, if any.
    rate: Option<f64>,
}

/// The latency distribution of one run, for plotting.
#[derive(Serialize)]
struct Distribution<'a> {
    mode: Mode,
    baseline: bool,
    rate: Option<f64>,
    classifications_per_sec: f64,
    /// `[percentile, µs]` pairs from 0 to 99.999.
    latency_us: &'a [(f64, u64)],
}

/// One worker's tally.
struct Tally {
    latency: Histogram<u64>,
    requests: u64,
    classifications: u64,
    errors: u64,
    errors_by_code: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> anyhow::Result<Tally> {
        // 1 µs to 60 s at 3 significant figures.
        let latency = Histogram::new_with_bounds(1, 60_000_000, 3)?;
        Ok(Tally {
            latency,
            requests: 0,
            classifications: 0,
            errors: 0,
            errors_by_code: BTreeMap::new(),
        })
    }

    /// `n` errors with the status code `code` (`OK` never comes here).
    fn failed(&mut self, code: &str, n: u64) {
        if n == 0 {
            return;
        }
        self.errors += n;
        *self.errors_by_code.entry(code.to_string()).or_default() += n;
    }

    fn failed_call(&mut self, status: &tonic::Status) {
        self.failed(&format!("{:?}", status.code()), 1);
    }
    fn record(&mut self, started: Instant) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self.latency.record(us.min(60_000_000));
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut out = std::io::stdout().lock();
    if let Some(rate) = args.rate {
        anyhow::ensure!(
            rate.is_finite() && rate >= 0.01,
            "--rate {rate}: give a number of requests per second, at least 0.01"
        );
    }
    let mut replies = load_replies(args.input.as_ref())?;
    for reply in &mut replies {
        reply.omit_advice = args.omit_advice;
        reply.explain = args.explain;
    }
    let replies = Arc::new(replies);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let stop_server = CancellationToken::new();
        let (url, server) = match &args.addr {
            // `host:port` as `rebound health --addr` takes it, or a URL (`https://...` for TLS).
            Some(addr) if addr.contains("://") => (addr.clone(), None),
            Some(addr) => (format!("http://{addr}"), None),
            None => {
                let origin = args.rules.clone().map_or(RuleOrigin::Embedded, RuleOrigin::Dir);
                let state = Arc::new(RuleState::load(origin).map_err(|e| anyhow::anyhow!("{e}"))?);
                let config = ServerConfig {
                    listen: "127.0.0.1:0".parse()?,
                    admin_listen: "127.0.0.1:0".parse()?,
                    baseline: args.baseline,
                    ..ServerConfig::default()
                };
                let bound = BoundServer::bind(config, state)?;
                let url = format!("http://{}", bound.addr);
                let stop = stop_server.clone();
                (
                    url,
                    Some(tokio::spawn(bound.serve(async move { stop.cancelled().await }))),
                )
            }
        };
        let report = load(&args, &url, replies).await;
        stop_server.cancel();
        if let Some(server) = server {
            let _ = server.await;
        }
        report
    })?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(
            out,
            "mode {:?}{}{}, {} connections, {} workers, {:.1} s",
            report.mode,
            if report.baseline { " (baseline)" } else { "" },
            if report.omit_advice { " (advice omitted)" } else { "" },
            report.connections,
            report.concurrency,
            report.seconds
        )?;
        writeln!(out, "requests/s        {:>12.0}", report.requests_per_sec)?;
        writeln!(out, "classifications/s {:>12.0}", report.classifications_per_sec)?;
        writeln!(
            out,
            "latency µs        p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}",
            report.p50_us, report.p90_us, report.p99_us, report.p999_us
        )?;
        writeln!(out, "errors            {:>12}", report.errors)?;
        for (code, n) in &report.errors_by_code {
            writeln!(out, "  {code:<16}{n:>12}")?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn load(args: &BenchArgs, url: &str, replies: Arc<Vec<pb::ClassifyRequest>>) -> anyhow::Result<Report> {
    let mut channels: Vec<Channel> = Vec::new();
    for _ in 0..args.connections.max(1) {
        let endpoint = Endpoint::from_shared(url.to_string())?.tcp_nodelay(true);
        channels.push(
            endpoint
                .connect()
                .await
                .with_context(|| format!("cannot connect to {url}"))?,
        );
    }
    let deadline = Instant::now() + args.duration;
    let budget = Arc::new(std::sync::atomic::AtomicU64::new(if args.requests == 0 {
        u64::MAX
    } else {
        args.requests
    }));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..args.concurrency.max(1) {
        let mut client = ClassifierClient::new(channels[w % channels.len()].clone())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        if args.gzip {
            client = client
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
        }
        let replies = Arc::clone(&replies);
        let budget = Arc::clone(&budget);
        let (mode, batch_size, window) = (args.mode, args.batch_size.max(1), args.window.max(1));
        let call_deadline = args.deadline;
        let pace = Pace::new(args.rate, args.concurrency.max(1), w);
        workers.push(tokio::spawn(async move {
            let mut worker = Worker {
                replies: &replies,
                next: w,
                deadline,
                call_deadline,
                budget: &budget,
                pace,
                tally: Tally::new()?,
            };
            match mode {
                Mode::Unary => unary(client, &mut worker).await,
                Mode::Batch => batch(client, &mut worker, batch_size).await,
                Mode::Stream => stream(client, &mut worker, window).await,
            }
            anyhow::Ok(worker.tally)
        }));
    }
    let mut total = Tally::new()?;
    for worker in workers {
        let t = worker.await??;
        total.latency.add(&t.latency)?;
        total.requests += t.requests;
        total.classifications += t.classifications;
        total.errors += t.errors;
        for (code, n) in t.errors_by_code {
            *total.errors_by_code.entry(code).or_default() += n;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let q = |p: f64| total.latency.value_at_quantile(p) as f64;
    if let Some(path) = &args.histogram {
        // Ten points per decade of 1 - p, up to 99.999%: the tail is where modes differ.
        let latency_us: Vec<(f64, u64)> = (0..=50)
            .map(|k| {
                let p = 1.0 - 10f64.powf(-f64::from(k) / 10.0);
                (p * 100.0, total.latency.value_at_quantile(p))
            })
            .collect();
        let distribution = Distribution {
            mode: args.mode,
            baseline: args.baseline,
            rate: args.rate,
            classifications_per_sec: total.classifications as f64 / seconds,
            latency_us: &latency_us,
        };
        std::fs::write(path, serde_json::to_string_pretty(&distribution)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(Report {
        mode: args.mode,
        requests_per_sec: total.requests as f64 / seconds,
        classifications_per_sec: total.classifications as f64 / seconds,
        p50_us: q(0.5),
        p90_us: q(0.9),
        p99_us: q(0.99),
        p999_us: q(0.999),
        errors: total.errors,
        errors_by_code: total.errors_by_code,
        requests: total.requests,
        classifications: total.classifications,
        seconds,
        connections: args.connections,
        concurrency: args.concurrency,
        baseline: args.baseline,
        omit_advice: args.omit_advice,
        rate: args.rate,
    })
}

/// Spaces one worker's sends to its share of `--rate`; without a rate it never waits.
struct Pace {
    next: Instant,
    every: Option<Duration>,
}

impl Pace {
    fn new(rate: Option<f64>, workers: usize, worker: usize) -> Pace {
        // `run` has checked the rate: finite and at least 0.01, so the interval is finite too.
        let every = rate.map(|r| Duration::from_secs_f64(workers as f64 / r));
        // Workers start spread over one interval, so their sends do not come in bursts.
        let offset = every.map_or(Duration::ZERO, |e| e.mul_f64(worker as f64 / workers as f64));
        Pace {
            next: Instant::now() + offset,
            every,
        }
    }

    /// Waits for the next send and returns the instant latency counts from: when the send was
    /// due if the worker is behind schedule (so a server that stalls cannot hide its queue), else
    /// when it woke (so tokio's millisecond timer slack is not counted as server latency).
    async fn due(&mut self) -> Instant {
        /// More than the timer's slack: beyond this, the worker is behind, not late to wake.
        const BEHIND: Duration = Duration::from_millis(2);
        let Some(every) = self.every else {
            return Instant::now();
        };
        // Cancel-safe: the slot is only used up once the wait completes.
        let due = self.next;
        tokio::time::sleep_until(due.into()).await;
        self.next += every;
        let now = Instant::now();
        if now.duration_since(due) > BEHIND { due } else { now }
    }
}

/// One worker's share of the run: its replies, limits, pace and tally.
struct Worker<'a> {
    replies: &'a [pb::ClassifyRequest],
    /// Index of the next reply to send (cycling).
    next: usize,
    deadline: Instant,
    /// Each call's own deadline (`--deadline`).
    call_deadline: Option<Duration>,
    /// Requests left for all workers together (`--requests`).
    budget: &'a std::sync::atomic::AtomicU64,
    pace: Pace,
    tally: Tally,
}

impl Worker<'_> {
    /// Whether another request may go: before the deadline and within the request budget.
    fn may_send(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        Instant::now() < self.deadline && self.budget.fetch_update(Relaxed, Relaxed, |b| b.checked_sub(1)).is_ok()
    }

    /// `message` as a call, with the call's deadline if there is one.
    fn call<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(deadline) = self.call_deadline {
            request.set_timeout(deadline);
        }
        request
    }

    fn next_reply(&mut self) -> pb::ClassifyRequest {
        let reply = self.replies[self.next % self.replies.len()].clone();
        self.next += 1;
        reply
    }
}

async fn unary(mut client: ClassifierClient<Channel>, w: &mut Worker<'_>) {
    while w.may_send() {
        let reply = w.next_reply();
        let started = w.pace.due().await;
        match client.classify(w.call(reply)).await {
            Ok(_) => w.tally.classifications += 1,
            Err(status) => w.tally.failed_call(&status),
        }
        w.tally.record(started);
        w.tally.requests += 1;
    }
}

async fn batch(mut client: ClassifierClient<Channel>, w: &mut Worker<'_>, size: usize) {
    while w.may_send() {
        let items: Vec<_> = (0..size).map(|_| w.next_reply()).collect();
        let started = w.pace.due().await;
        match client.classify_batch(w.call(pb::ClassifyBatchRequest { items })).await {
            Ok(r) => {
                for answer in r.into_inner().items {
                    match answer.error {
                        None => w.tally.classifications += 1,
                        Some(error) => w.tally.failed(&error.code, 1),
                    }
                }
            }
            Err(status) => w.tally.failed_call(&status),
        }
        w.tally.record(started);
        w.tally.requests += 1;
    }
}

/// Keeps `window` replies in flight on one stream; latency is send to answer, per reply.
async fn stream(mut client: ClassifierClient<Channel>, w: &mut Worker<'_>, window: usize) {
    let (tx, rx) = mpsc::channel(window);
    let mut answers = match client.classify_stream(w.call(ReceiverStream::new(rx))).await {
        Ok(r) => r.into_inner(),
        Err(status) => {
            w.tally.failed_call(&status);
            return;
        }
    };
    let mut sent_at = std::collections::VecDeque::with_capacity(window);
    let mut open = true;
    loop {
        if w.pace.every.is_none() {
            // Unpaced: fill the window, then wait for one answer.
            while open && sent_at.len() < window {
                if !w.may_send() {
                    open = false;
                    break;
                }
                sent_at.push_back(Instant::now());
                if tx.send(w.next_reply()).await.is_err() {
                    open = false;
                }
            }
            if sent_at.is_empty() || !answered(answers.next().await, &mut sent_at, &mut w.tally) {
                break;
            }
            continue;
        }
        let can_send = open && sent_at.len() < window;
        // Paced: answers first when there are any, so waiting to send never delays reading them.
        tokio::select! {
            biased;
            answer = answers.next(), if !sent_at.is_empty() => {
                if !answered(answer, &mut sent_at, &mut w.tally) {
                    break;
                }
            }
            due = w.pace.due(), if can_send => {
                if !w.may_send() {
                    open = false;
                    continue;
                }
                sent_at.push_back(due);
                if tx.send(w.next_reply()).await.is_err() {
                    open = false;
                }
            }
            else => break,
        }
    }
    drop(tx);
}

/// Tallies one answer of a stream against the oldest reply in flight; false when the stream ended.
fn answered(
    answer: Option<Result<pb::ClassifyResponse, tonic::Status>>,
    sent_at: &mut std::collections::VecDeque<Instant>,
    tally: &mut Tally,
) -> bool {
    match answer {
        Some(Ok(a)) => {
            match a.error {
                Some(error) => tally.failed(&error.code, 1),
                None => tally.classifications += 1,
            }
            if let Some(t) = sent_at.pop_front() {
                tally.record(t);
            }
            tally.requests += 1;
            true
        }
        Some(Err(status)) => {
            tally.failed(&format!("{:?}", status.code()), sent_at.len() as u64);
            false
        }
        None => {
            tally.failed("ended", sent_at.len() as u64);
            false
        }
    }
}
