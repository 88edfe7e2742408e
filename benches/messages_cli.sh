#!/usr/bin/env bash
# Throughput and memory of `rebound classify --messages` on the release binary, as BENCHMARKS.md
# reports them:
#   1. the corpus folder tests/data/sisimai-set-of-emails/maildir/bsd as one mbox, repeated 50
#      times (about 31,500 messages, 141 MB) under target/messages-bench/, classified with
#      --jobs 1 and --jobs 2 (the summary line on stderr gives messages per second);
#   2. peak RSS over an mbox of about a million messages streamed through standard input from a
#      generator (no file is written), against the same for about 10,000: flat means equal.
# Usage: cargo build --release --bin rebound && bash benches/messages_cli.sh [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${REBOUND_BIN:-target/release/rebound}
out=target/messages-bench
mkdir -p "$out"
repeats=${1:-3}

# One mbox of the corpus: each file a message (a file that is already an mbox is kept as it is),
# `From ` lines inside a message escaped as mboxrd does.
python3 - "$out/bsd.mbox" <<'EOF'
import os, sys
folder = "tests/data/sisimai-set-of-emails/maildir/bsd"
chunks = []
for name in sorted(os.listdir(folder)):
    raw = open(os.path.join(folder, name), "rb").read()
    if not raw.startswith(b"From "):
        lines = [b">" + l if l.lstrip(b">").startswith(b"From ") else l for l in raw.split(b"\n")]
        raw = b"From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n" + b"\n".join(lines)
    chunks.append(raw.rstrip(b"\n") + b"\n\n")
open(sys.argv[1], "wb").write(b"".join(chunks))
EOF
for _ in $(seq 50); do cat "$out/bsd.mbox"; done >"$out/bsd50.mbox"

# CPU time is the steadier figure on a shared host; starting and loading the rules is measured
# alone (one empty message) to be taken off.
echo "load: $(uptime)"
printf '' | /usr/bin/time -f "startup: user %U s, sys %S s" "$bin" classify --messages - 2>&1 >/dev/null | tail -1
for jobs in 1 2; do
    for _ in $(seq "$repeats"); do
        /usr/bin/time -f "user %U s, sys %S s, elapsed %e s" "$bin" classify --messages --jobs "$jobs" \
            "$out/bsd50.mbox" 2>&1 >/dev/null | tail -2 | tr '\n' ' '
        echo
    done
done
echo "load: $(uptime)"

# Peak RSS: ~10,000 messages, then ~1,000,000, both through stdin.
per=$("$bin" classify --messages --jobs 1 "$out/bsd.mbox" 2>/dev/null | wc -l)
for total in ${RSS_TOTALS:-10000 1000000}; do
    n=$(((total + per - 1) / per))
    echo "$((n * per)) messages through stdin:"
    (for _ in $(seq "$n"); do cat "$out/bsd.mbox"; done) |
        /usr/bin/time -v "$bin" classify --messages - 2>"$out/time.txt" >/dev/null || true
    grep -E "^classified" "$out/time.txt" || true
    grep -E "Maximum resident set size|Elapsed" "$out/time.txt"
done
echo "load: $(uptime)"
