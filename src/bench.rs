//! `rebound bench`: a gRPC load generator. Bounded by duration and request count, loopback by
//! default; without `--addr` it starts a server in this process (with `--baseline`, one that
//! answers without classifying: the transport ceiling to compare against).

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
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
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
    requests: u64,
    classifications: u64,
    seconds: f64,
    connections: usize,
    concurrency: usize,
    baseline: bool,
}

/// One worker's tally.
struct Tally {
    latency: Histogram<u64>,
    requests: u64,
    classifications: u64,
    errors: u64,
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
        })
    }
    fn record(&mut self, started: Instant) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self.latency.record(us.min(60_000_000));
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let replies = Arc::new(load_replies(args.input.as_ref())?);
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
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "mode {:?}{}, {} connections, {} workers, {:.1} s",
            report.mode,
            if report.baseline { " (baseline)" } else { "" },
            report.connections,
            report.concurrency,
            report.seconds
        );
        println!("requests/s        {:>12.0}", report.requests_per_sec);
        println!("classifications/s {:>12.0}", report.classifications_per_sec);
        println!(
            "latency µs        p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}",
            report.p50_us, report.p90_us, report.p99_us, report.p999_us
        );
        println!("errors            {:>12}", report.errors);
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
        let client = ClassifierClient::new(channels[w % channels.len()].clone())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let replies = Arc::clone(&replies);
        let budget = Arc::clone(&budget);
        let (mode, batch_size, window) = (args.mode, args.batch_size.max(1), args.window.max(1));
        workers.push(tokio::spawn(async move {
            let take = || {
                budget
                    .fetch_update(
                        std::sync::atomic::Ordering::Relaxed,
                        std::sync::atomic::Ordering::Relaxed,
                        |b| b.checked_sub(1),
                    )
                    .is_ok()
            };
            let mut tally = Tally::new()?;
            match mode {
                Mode::Unary => unary(client, &replies, w, deadline, take, &mut tally).await,
                Mode::Batch => batch(client, &replies, w, batch_size, deadline, take, &mut tally).await,
                Mode::Stream => stream(client, &replies, w, window, deadline, take, &mut tally).await,
            }
            anyhow::Ok(tally)
        }));
    }
    let mut total = Tally::new()?;
    for worker in workers {
        let t = worker.await??;
        total.latency.add(&t.latency)?;
        total.requests += t.requests;
        total.classifications += t.classifications;
        total.errors += t.errors;
    }
    let seconds = started.elapsed().as_secs_f64();
    let q = |p: f64| total.latency.value_at_quantile(p) as f64;
    Ok(Report {
        mode: args.mode,
        requests_per_sec: total.requests as f64 / seconds,
        classifications_per_sec: total.classifications as f64 / seconds,
        p50_us: q(0.5),
        p90_us: q(0.9),
        p99_us: q(0.99),
        p999_us: q(0.999),
        errors: total.errors,
        requests: total.requests,
        classifications: total.classifications,
        seconds,
        connections: args.connections,
        concurrency: args.concurrency,
        baseline: args.baseline,
    })
}

async fn unary(
    mut client: ClassifierClient<Channel>,
    replies: &[pb::ClassifyRequest],
    worker: usize,
    deadline: Instant,
    take: impl Fn() -> bool,
    tally: &mut Tally,
) {
    let mut i = worker;
    while Instant::now() < deadline && take() {
        let started = Instant::now();
        match client.classify(replies[i % replies.len()].clone()).await {
            Ok(_) => tally.classifications += 1,
            Err(_) => tally.errors += 1,
        }
        tally.record(started);
        tally.requests += 1;
        i += 1;
    }
}

async fn batch(
    mut client: ClassifierClient<Channel>,
    replies: &[pb::ClassifyRequest],
    worker: usize,
    size: usize,
    deadline: Instant,
    take: impl Fn() -> bool,
    tally: &mut Tally,
) {
    let mut i = worker;
    while Instant::now() < deadline && take() {
        let items: Vec<_> = (0..size).map(|k| replies[(i + k) % replies.len()].clone()).collect();
        i += size;
        let started = Instant::now();
        match client.classify_batch(pb::ClassifyBatchRequest { items }).await {
            Ok(r) => {
                let r = r.into_inner();
                let bad = r.items.iter().filter(|a| a.error.is_some()).count() as u64;
                tally.classifications += r.items.len() as u64 - bad;
                tally.errors += bad;
            }
            Err(_) => tally.errors += 1,
        }
        tally.record(started);
        tally.requests += 1;
    }
}

/// Keeps `window` replies in flight on one stream; latency is send to answer, per reply.
async fn stream(
    mut client: ClassifierClient<Channel>,
    replies: &[pb::ClassifyRequest],
    worker: usize,
    window: usize,
    deadline: Instant,
    take: impl Fn() -> bool,
    tally: &mut Tally,
) {
    let (tx, rx) = mpsc::channel(window);
    let mut answers = match client.classify_stream(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(_) => {
            tally.errors += 1;
            return;
        }
    };
    let mut sent_at = std::collections::VecDeque::with_capacity(window);
    let mut i = worker;
    let mut open = true;
    loop {
        while open && sent_at.len() < window {
            if Instant::now() >= deadline || !take() {
                open = false;
                break;
            }
            sent_at.push_back(Instant::now());
            if tx.send(replies[i % replies.len()].clone()).await.is_err() {
                open = false;
            }
            i += 1;
        }
        if !open && sent_at.is_empty() {
            break;
        }
        match answers.next().await {
            Some(Ok(a)) => {
                if a.error.is_some() {
                    tally.errors += 1;
                } else {
                    tally.classifications += 1;
                }
                if let Some(t) = sent_at.pop_front() {
                    tally.record(t);
                }
                tally.requests += 1;
            }
            Some(Err(_)) | None => {
                tally.errors += sent_at.len() as u64;
                break;
            }
        }
    }
    drop(tx);
}
