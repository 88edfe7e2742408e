//! Resident memory of `rebound serve`: with the shipped rules, and with 100,000 synthetic rules
//! (each with an example, so the reload verifies them all) added. Each server is loaded by
//! `rebound bench` (batches, then unary calls) in a separate process before its memory is read
//! from /proc. Run with `cargo bench --bench serving_memory` (Linux).

// Shared with the engine benchmark, which uses the rest of them.
#[allow(dead_code)]
mod replies;
#[allow(dead_code)]
mod synthetic;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REBOUND: &str = env!("CARGO_BIN_EXE_rebound");

fn main() {
    println!("| rules | ready after | RSS idle | RSS after load | peak RSS (VmHWM) |");
    println!("|---|---|---|---|---|");
    for extra in [0, 100_000] {
        measure(extra);
    }
}

fn measure(extra: usize) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let shipped = replies::shipped_source().files().to_vec();
    for (path, text) in shipped
        .into_iter()
        .chain(synthetic::rule_files_with_examples(extra, 42))
    {
        let to = dir.path().join(path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&to, text).unwrap_or_else(|e| panic!("{e}"));
    }
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let mut server = Server(
        Command::new(REBOUND)
            .args(["serve", "--rules"])
            .arg(dir.path())
            .args(["--listen", &addr])
            .args(["--admin-listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--metrics-listen", &format!("127.0.0.1:{}", free_port())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{REBOUND}: {e}")),
    );
    while !run(&["health", "--addr", &addr]) {
        assert!(started.elapsed() < Duration::from_secs(300), "server not ready");
        assert!(server.0.try_wait().ok().flatten().is_none(), "server exited");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ready = started.elapsed();
    let idle = status_kib(server.0.id(), "VmRSS");
    let load: [&[&str]; 2] = [
        &["--mode", "batch", "--batch-size", "1000", "--concurrency", "4"],
        &["--mode", "unary", "--concurrency", "32"],
    ];
    for args in load {
        assert!(
            run(&[&["bench", "--addr", &addr, "--duration", "5s"][..], args].concat()),
            "rebound bench failed"
        );
    }
    let after = status_kib(server.0.id(), "VmRSS");
    let peak = status_kib(server.0.id(), "VmHWM");
    let rules = if extra == 0 {
        "shipped".to_string()
    } else {
        format!("shipped + {extra}")
    };
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    println!(
        "| {rules} | {:.1} s | {} | {} | {} |",
        ready.as_secs_f64(),
        mib(idle),
        mib(after),
        mib(peak)
    );
    drop(server);
    drop(dir);
}

/// The server process, killed when dropped (also when a check above fails).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `rebound <args>` quietly; whether it succeeded.
fn run(args: &[&str]) -> bool {
    Command::new(REBOUND)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A `kB` field of /proc/<pid>/status.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))
        .unwrap_or_else(|e| panic!("{e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}
