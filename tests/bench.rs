//! `rebound bench`: every mode runs bounded, against an in-process server, and reports JSON.

use std::time::Duration;

use serde_json::Value;

use crate::util::{rebound, run_guarded};

fn bench(args: &[&str]) -> Value {
    let (out, _) = run_guarded(
        rebound().arg("bench").args(args).arg("--json"),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_mode_reports_throughput_latency_and_errors() {
    for (mode, extra, classifications) in [
        ("unary", vec![], 40),
        ("batch", vec!["--batch-size", "25"], 40 * 25),
        ("stream", vec!["--window", "8"], 40),
    ] {
        let mut args = vec![
            "--mode",
            mode,
            "--requests",
            "40",
            "--concurrency",
            "4",
            "--duration",
            "60s",
        ];
        args.extend(extra);
        let report = bench(&args);
        assert_eq!(report["mode"], mode);
        assert_eq!(report["errors"], 0, "{report}");
        assert_eq!(report["requests"], 40, "{report}");
        assert_eq!(report["classifications"], classifications, "{report}");
        for field in [
            "requests_per_sec",
            "classifications_per_sec",
            "p50_us",
            "p90_us",
            "p99_us",
            "p999_us",
        ] {
            assert!(report[field].as_f64().is_some_and(|v| v > 0.0), "{field} in {report}");
        }
    }
    let baseline = bench(&[
        "--mode",
        "unary",
        "--baseline",
        "--requests",
        "10",
        "--concurrency",
        "2",
    ]);
    assert_eq!(
        (baseline["baseline"].as_bool(), baseline["errors"].as_u64()),
        (Some(true), Some(0))
    );
}

#[test]
fn rate_paces_sends_and_histogram_writes_the_distribution() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latency.json");
    for mode in ["unary", "stream"] {
        // 100 a second for one second: the schedule allows about 100 sends, never thousands.
        let report = bench(&[
            "--mode",
            mode,
            "--rate",
            "100",
            "--duration",
            "1s",
            "--concurrency",
            "4",
            "--histogram",
            file.to_str().unwrap(),
        ]);
        assert_eq!(report["rate"], 100.0, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        let sent = report["requests"].as_u64().unwrap();
        assert!((10..=110).contains(&sent), "{mode}: {sent} requests at 100/s in 1 s");
        let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(written["mode"], mode);
        let points = written["latency_us"].as_array().unwrap();
        assert_eq!(points.len(), 51, "0% to 99.999% in tenths of a decade");
        let latencies: Vec<u64> = points.iter().map(|p| p[1].as_u64().unwrap()).collect();
        assert!(latencies.windows(2).all(|w| w[0] <= w[1]), "{latencies:?}");
        assert_eq!(points[50][0].as_f64().map(|p| (p * 1000.0).round()), Some(99_999.0));
    }
    for bad in ["0", "-5", "NaN", "inf"] {
        let (out, _) = run_guarded(
            rebound().args(["bench", "--requests", "1", &format!("--rate={bad}")]),
            Duration::from_secs(60),
        );
        assert!(!out.status.success(), "--rate {bad} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--rate") && stderr.contains("requests per second"),
            "{stderr}"
        );
    }
}
