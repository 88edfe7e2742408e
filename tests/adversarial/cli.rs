//! `rebound classify`: the server's limits by default and constant memory on hostile lines.

use std::io::{Read as _, Write as _};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::rebound;

/// Runs `rebound classify ARGS`, streaming `chunks` to its standard input from a thread (the
/// child answers while it reads), and returns its output lines; killed if it hangs.
fn classify_streamed(args: &[&str], chunks: Vec<Vec<u8>>) -> Vec<Value> {
    let mut child = rebound()
        .arg("classify")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for chunk in chunks {
            stdin.write_all(&chunk)?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).map(|_| out)
    });
    wait_guarded(&mut child, Duration::from_secs(60));
    writer.join().unwrap().unwrap();
    let out = reader.join().unwrap().unwrap();
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn wait_guarded(child: &mut Child, limit: Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            assert!(status.success(), "{stderr}");
            return;
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("rebound classify did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_over_long_line_is_skipped_and_the_run_goes_on() {
    // 4 MiB of one line, sent in 64 KiB pieces, then a good line.
    let piece = b"550 5.1.1 no such user ".repeat(64 * 1024 / 23);
    let mut chunks: Vec<Vec<u8>> = std::iter::repeat_n(piece.clone(), 4 * 1024 * 1024 / piece.len()).collect();
    let long = chunks.iter().map(Vec::len).sum::<usize>();
    chunks.push(b"\n".to_vec());
    chunks.push(br#"{"id":"good","text":"550 5.1.1 <bob@example.com>: User unknown"}"#.to_vec());
    chunks.push(b"\n".to_vec());
    let out = classify_streamed(&[], chunks);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0]["line"], 1);
    let error = out[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("line: {long} bytes is over the limit of")) && error.contains("--max-line-bytes"),
        "{error}"
    );
    assert_eq!(out[1]["id"], "good");
    assert_eq!(out[1]["category"], "invalid_address");
}

#[test]
fn fields_over_the_servers_limits_are_errors_naming_the_limit() {
    let long_text = "y".repeat(64 * 1024 + 1);
    let lines = [
        long_text.clone(),
        format!(r#"{{"id":"t","text":"{long_text}"}}"#),
        format!(
            r#"{{"id":"r","recipient":"{}@example.com","text":"550 x"}}"#,
            "a".repeat(250)
        ),
        format!(
            r#"{{"id":"h","remote_host":"{}.example.com","text":"550 x"}}"#,
            "h".repeat(250)
        ),
        format!(r#"{{"id":"{}","text":"550 x"}}"#, "i".repeat(1025)),
        format!(r#"{{"id":"e","enhanced":"{}","text":"550 x"}}"#, "5".repeat(5000)),
        r#"{"id":"ok","code":550,"text":"user unknown"}"#.to_string(),
    ];
    let input = lines.join("\n").into_bytes();
    let out = classify_streamed(&[], vec![input]);
    assert_eq!(out.len(), lines.len(), "{out:?}");
    let error = |i: usize| out[i]["error"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        error(0),
        "text: 65537 bytes is over the limit of 65536 (--max-text-bytes)"
    );
    assert_eq!(
        (out[1]["id"].as_str(), error(1).as_str()),
        (Some("t"), error(0).as_str())
    );
    assert_eq!(
        error(2),
        "recipient: 262 bytes is over the limit of 254 (--max-recipient-bytes)"
    );
    assert_eq!(
        error(3),
        "remote_host: 262 bytes is over the limit of 255 (--max-remote-host-bytes)"
    );
    // The id over its limit is not echoed.
    assert_eq!(out[4]["id"], Value::Null);
    assert_eq!(error(4), "id: 1025 bytes is over the limit of 1024 (--max-id-bytes)");
    // A bad value is quoted by a short prefix only.
    assert!(
        error(5).starts_with("enhanced: ") && error(5).len() < 200,
        "{}",
        error(5)
    );
    assert_eq!(out[6]["category"], "invalid_address");
}

#[test]
fn the_limits_are_flags() {
    let input = b"550 5.1.1 user unknown\n{\"id\":\"x\",\"text\":\"550 5.1.1 user unknown\"}\n".to_vec();
    let out = classify_streamed(&["--max-text-bytes", "10", "--max-line-bytes", "30"], vec![input]);
    assert_eq!(
        out[0]["error"],
        "text: 22 bytes is over the limit of 10 (--max-text-bytes)"
    );
    assert_eq!(
        out[1]["error"],
        "line: 42 bytes is over the limit of 30 (--max-line-bytes); skipped"
    );
}
