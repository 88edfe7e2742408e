#!/usr/bin/env bash
# The unmatched-reply tally's cost on the serving path: `rebound bench` against two servers of the
# same binary, one with `--unmatched-capacity 0` (off) and one with the default 10,000 (on), in
# alternating rounds so that a noisy machine hurts both alike.
#
# Two loads:
# - `weak` (the default), the worst case for the tally: every reply is weakly decided (reply_code,
#   enhanced_code or none), so every one is templated and recorded. 20,000 replies over 5,000
#   wordings no rule knows, each with its own address, IP and queue id (what template() masks),
#   so the tally holds 5,000 templates of the 10,000 it may.
# - a JSONL file of replies, such as tests/data/sisimai_answers.jsonl: the diagnostic texts of
#   real bounces from dozens of MTAs, of which the shipped rules decide about one in eight weakly.
#
# Batches and streams are loaded as BENCHMARKS.md's targets are (batches of 1,000, 4 workers);
# the order of off and on swaps each round.
#
# Run: benches/unmatched_tally.sh [target/release/rebound] [rounds] [seconds per run] [mode] [weak|FILE]
set -euo pipefail

bin=${1:-target/release/rebound}
rounds=${2:-3}
seconds=${3:-10}
mode=${4:-batch}
load=${5:-weak}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

input=$load
if [ "$load" = weak ]; then
input=$work/weak.jsonl
python3 - "$input" <<'EOF'
import json, sys
syllables = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "ze",
             "ba", "do", "fe", "gi", "ho", "ju", "ki", "lu", "mo", "ne"]
def word(i):
    return syllables[i % 20] + syllables[i // 20 % 20] + syllables[i // 400 % 20]
with open(sys.argv[1], "w") as out:
    for n in range(20_000):
        i = n % 5_000
        who = f"user{n}@example{n % 97}.com"
        ip = f"192.0.2.{n % 250}"
        queue = f"{n * 2654435761 % 2**32:08X}"
        shape = [f"550 5.2.1 <{who}>: {word(i)} gateway turned the message away from [{ip}] id={queue}",
                 f"451 {word(i)} gateway busy for <{who}> ({ip}), queued as {queue}",
                 f"{word(i)} gateway said no to {who} at {ip} ({queue})"][i % 3]
        out.write(json.dumps({"text": shape}) + "\n")
EOF
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() {
  local addr=127.0.0.1:$(port)
  "$bin" serve --listen "$addr" --admin-listen 127.0.0.1:$(port) --metrics-listen off "$@" >/dev/null 2>&1 &
  for _ in $(seq 100); do
    "$bin" bench --addr "$addr" --requests 1 --json >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "$addr"
}
off=$(start --unmatched-capacity 0)
on=$(start)

case $mode in
  batch) shape=(--batch-size 1000 --concurrency 4) ;;
  stream) shape=(--concurrency 4) ;;
  *) shape=() ;;
esac
rate() {
  "$bin" bench --addr "$1" --mode "$mode" "${shape[@]}" --duration "${seconds}s" --input "$input" --json |
    python3 -c 'import json,sys; r=json.loads(sys.stdin.read().splitlines()[-1]); print(round(r["classifications_per_sec"]), "p99", round(r["p99_us"]), "us", "errors", r["errors"])'
}
echo "mode=$mode load=$load seconds=$seconds rounds=$rounds (classifications per second)"
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then
    first=$(rate "$off")
    second=$(rate "$on")
    echo "round $round: off $first  on $second"
  else
    first=$(rate "$on")
    second=$(rate "$off")
    echo "round $round: on $first  off $second"
  fi
done
