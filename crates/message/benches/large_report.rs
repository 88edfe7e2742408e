//! A large report costs linearly more than a small one: every layout's cues and recipient lines
//! (the proptests' pieces) repeated into a 64 KiB body and a 1 MiB one, each read through
//! `rebound_message::read`. The small one is read 16 times in a row, as much text as one large
//! read; the run fails (exit status 1) when the large read costs more than `LINEAR_FACTOR`
//! times that plus `SLACK`: a reader whose cost grows with recipients times lines would cost
//! 16 times more again. Run with `cargo bench -p rebound-message --bench large_report`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../src/mta/servers/pieces.rs"]
mod pieces;

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rebound_message::{ReadOptions, read};

const SMALL: usize = 64 << 10;
const LARGE: usize = 1 << 20;
const IN_A_ROW: usize = LARGE / SMALL;
/// The large read may cost this many times the small ones in a row: 1 if each byte cost the
/// same, but a 1 MiB body leaves the caches a 64 KiB one fits in.
const LINEAR_FACTOR: f64 = 2.0;
/// Enough for a preempted run on a loaded machine; far below what a quadratic cost adds.
const SLACK: Duration = Duration::from_millis(20);
/// Each measure is the fastest of this many runs.
const RUNS: usize = 5;

fn report_of(size: usize) -> String {
    let block: String = pieces::PIECES.iter().map(|p| format!("{p}\n")).collect();
    let mut raw = "From: MAILER-DAEMON@mx.example.org\nSubject: Undeliverable Mail\nX-MLServer: fml\n\n".to_string();
    while raw.len() + block.len() <= size {
        raw.push_str(&block);
    }
    raw
}

fn fastest(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let options = ReadOptions::default();
    let (small, large) = (report_of(SMALL), report_of(LARGE));
    let recipients = |raw: &str| read(raw.as_bytes(), &options).map_or(0, |r| r.recipients.len());
    let small_in_a_row = fastest(RUNS, || {
        for _ in 0..IN_A_ROW {
            black_box(read(black_box(small.as_bytes()), &options).ok());
        }
    });
    let large_once = fastest(RUNS, || {
        black_box(read(black_box(large.as_bytes()), &options).ok());
    });
    let bound = small_in_a_row.mul_f64(LINEAR_FACTOR) + SLACK;
    println!(
        "{} B x {IN_A_ROW} ({} recipients each): {small_in_a_row:?}; {} B once ({} recipients): {large_once:?}; \
         bound {bound:?}",
        small.len(),
        recipients(&small),
        large.len(),
        recipients(&large),
    );
    if large_once > bound {
        println!("FAIL: the large report costs more than linearly more than the small one");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
