//! Listeners: connections that never handshake, descriptor exhaustion, what reflection lists.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rebound::pb;
use rebound::pb::classifier_client::ClassifierClient;
use rebound::server::ServerConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_stream::StreamExt as _;
use tonic::transport::{Channel, Endpoint};

use crate::grpc::TestServer;
use crate::service::free_port;

/// The client's HTTP/2 connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads what `addr` sends after `sent` until it closes the connection (true) or `wait`
/// passes (false).
async fn closes_within(addr: SocketAddr, sent: &[u8], wait: Duration) -> bool {
    let mut connection = tokio::net::TcpStream::connect(addr).await.unwrap();
    connection.write_all(sent).await.unwrap();
    let until = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(until, connection.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // The server's SETTINGS, sent before it reads anything.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_does_not_handshake_is_closed_and_one_that_did_is_kept() {
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let server = TestServer::embedded(config).await;
    let generous = Duration::from_secs(10);
    for addr in [server.addr, server.admin_addr] {
        assert!(
            closes_within(addr, b"", generous).await,
            "{addr}: a silent connection was kept"
        );
        assert!(
            closes_within(addr, &PREFACE[..10], generous).await,
            "{addr}: a connection that sent part of the preface was kept"
        );
    }
    // The preface and an empty SETTINGS frame: a handshake, kept past the limit.
    let mut handshake = PREFACE.to_vec();
    handshake.extend([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    assert!(
        !closes_within(server.addr, &handshake, Duration::from_millis(1_500)).await,
        "a connection that completed its handshake was closed"
    );
    // And a client that connected, then waited past the limit, is answered.
    let mut client = server.client().await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let request = pb::ClassifyRequest {
        text: "552 5.2.2 Mailbox full".into(),
        ..Default::default()
    };
    client.classify(request).await.unwrap();
    server.stop().await;
}

/// The services a port's reflection lists, through v1 and v1alpha.
async fn listed(channel: Channel) -> (Vec<String>, Vec<String>) {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let v1 = match answers.next().await.unwrap().unwrap().message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected reflection answer {other:?}"),
    };
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let mut answers = AlphaClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let v1alpha = match answers.next().await.unwrap().unwrap().message_response {
        Some(AlphaResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected v1alpha reflection answer {other:?}"),
    };
    (v1, v1alpha)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_on_each_port_only_what_it_serves() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let admin = Endpoint::from_shared(format!("http://{}", server.admin_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for (port, channel, serves, not) in [
        (
            "public",
            server.channel().await,
            "rebound.v1.Classifier",
            "rebound.v1.RuleAdmin",
        ),
        ("admin", admin, "rebound.v1.RuleAdmin", "rebound.v1.Classifier"),
    ] {
        let (mut v1, mut v1alpha) = listed(channel).await;
        v1.sort();
        v1alpha.sort();
        let expected = |reflection: &str| {
            let mut names = vec![serves.to_string(), "grpc.health.v1.Health".into(), reflection.into()];
            names.sort();
            names
        };
        assert_eq!(v1, expected("grpc.reflection.v1.ServerReflection"), "{port} (v1)");
        assert_eq!(
            v1alpha,
            expected("grpc.reflection.v1alpha.ServerReflection"),
            "{port} (v1alpha)"
        );
        assert!(!v1.iter().any(|s| s == not), "{port}");
    }
    server.stop().await;
}

/// Counts of the server's log lines, read as they come.
#[derive(Default)]
struct Logs {
    lines: usize,
    cannot_accept: usize,
    accepting_again: usize,
    /// The first lines about accepting, for the failure message.
    sample: Vec<String>,
}

/// A server process, killed when dropped (a failed test included).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `rebound serve` with at most `files` open file descriptors, and its log lines counted.
fn start_with_few_files(files: u32, extra: &[&str]) -> (Process, [SocketAddr; 3], Arc<Mutex<Logs>>) {
    let port = |p: u16| -> SocketAddr { format!("127.0.0.1:{p}").parse().unwrap() };
    let addrs = [port(free_port()), port(free_port()), port(free_port())];
    let mut child = std::process::Command::new("sh")
        .args(["-c", r#"ulimit -n "$0" && exec "$@""#, &files.to_string()])
        .arg(env!("CARGO_BIN_EXE_rebound"))
        .args([
            "serve",
            "--listen",
            &addrs[0].to_string(),
            "--admin-listen",
            &addrs[1].to_string(),
        ])
        .args(["--metrics-listen", &addrs[2].to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let logs = Arc::new(Mutex::new(Logs::default()));
    let stdout = child.stdout.take().unwrap();
    let tally = Arc::clone(&logs);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut logs = tally.lock().unwrap();
            logs.lines += 1;
            let about_accepting = if line.contains("cannot accept connections") {
                logs.cannot_accept += 1;
                true
            } else if line.contains("accepting connections again") {
                logs.accepting_again += 1;
                true
            } else {
                line.contains("accept")
            };
            if about_accepting && logs.sample.len() < 10 {
                logs.sample.push(line);
            }
        }
    });
    (Process(child), addrs, logs)
}

/// Classifies one reply on a new connection, retrying until `wait` passes.
async fn answers_within(addr: SocketAddr, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(2));
        if let Ok(channel) = endpoint.connect().await {
            let request = pb::ClassifyRequest {
                text: "552 5.2.2 Mailbox full".into(),
                ..Default::default()
            };
            if ClassifierClient::new(channel).classify(request).await.is_ok() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `/metrics`' whole response, retried until `wait` passes; what went wrong otherwise.
fn scrape_within(addr: SocketAddr, wait: Duration) -> String {
    let until = Instant::now() + wait;
    let mut last = String::new();
    while Instant::now() < until {
        let attempt = (|| {
            let mut connection = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            connection.set_read_timeout(Some(Duration::from_secs(2)))?;
            connection.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
            let mut response = String::new();
            connection.read_to_string(&mut response)?;
            Ok::<_, std::io::Error>(response)
        })();
        match attempt {
            Ok(response) if response.starts_with("HTTP/1.1 200") => return response,
            Ok(response) => last = response,
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

/// File descriptors the process has open.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// CPU time the process has used, all its threads (`/proc/<pid>/stat`: utime and stime, in
/// clock ticks).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse::<u64>().ok())
        .unwrap_or(100);
    Duration::from_millis(ticks * 1000 / per_second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_listeners_back_off_log_little_and_recover() {
    // Silent connections kept for the whole test: only closing them frees descriptors.
    let files = 64;
    let (process, [grpc, admin, metrics], logs) = start_with_few_files(files, &["--handshake-timeout", "120s"]);
    let pid = process.0.id();
    assert!(
        answers_within(grpc, Duration::from_secs(30)).await,
        "the server did not start"
    );

    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(TcpStream::connect(grpc).unwrap());
    }
    // Queued on the other two listeners while no descriptor is free.
    for addr in [admin, metrics] {
        held.push(TcpStream::connect(addr).unwrap());
    }
    let until = Instant::now() + Duration::from_secs(20);
    while open_files(pid) < files as usize - 2 {
        assert!(Instant::now() < until, "{} descriptors open", open_files(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Three seconds out of descriptors: a few lines at most, and no core spinning.
    let (lines, cpu) = (logs.lock().unwrap().lines, cpu_time(pid));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (lines, cpu) = (logs.lock().unwrap().lines - lines, cpu_time(pid) - cpu);
    println!("out of descriptors for 3s: {lines} log lines, {cpu:?} of CPU");
    {
        let logs = logs.lock().unwrap();
        assert!(
            lines <= 6 && logs.cannot_accept <= 6,
            "{lines} log lines in 3s, {} about failed accepts: {:?}",
            logs.cannot_accept,
            logs.sample
        );
    }
    let until = Instant::now() + Duration::from_secs(10);
    while logs.lock().unwrap().cannot_accept == 0 {
        assert!(Instant::now() < until, "failed accepts not logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cpu < Duration::from_millis(500),
        "{cpu:?} of CPU in 3s out of descriptors"
    );

    // Descriptors free again: every listener serves.
    drop(held);
    assert!(
        answers_within(grpc, Duration::from_secs(20)).await,
        "no answer once descriptors were free"
    );
    let scraped = tokio::task::spawn_blocking(move || scrape_within(metrics, Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(
        scraped.starts_with("HTTP/1.1 200"),
        "metrics not served again: {scraped}"
    );
    assert!(
        logs.lock().unwrap().accepting_again >= 1,
        "{:?}",
        logs.lock().unwrap().sample
    );
    drop(process);
}
