#!/usr/bin/env bash
# Instructions per classification in batches of 1,000 through gRPC, client and server together
# (`rebound bench` with its in-process server), counted by callgrind (valgrind). The loopback's
# speed on this shared host moves by half within an hour; instruction counts do not. Two runs, of
# 8 and 48 batches; their difference leaves out start-up (compiling the rules). Kernel time
# (the socket copies) is not counted. With `--cache` first, callgrind also simulates the caches
# (its last level set to this machine's 1 MiB L2, shared by client and server as one) and the
# misses of that level are printed too; the run is slower. Other arguments go to `rebound bench`
# (`--omit-advice`, `--baseline`).
# Usage: bash benches/batch_instructions.sh [--cache] [--omit-advice] [--baseline]
# (from the repository root; builds the release binary first).
set -euo pipefail
cache=()
if [[ "${1:-}" == --cache ]]; then
  cache=(--cache-sim=yes --LL=1048576,16,64)
  shift
fi
cargo build --release --quiet
bin=target/release/rebound
count() {
  # "Collected :" lists the events: Ir, then with the cache simulation Dr Dw I1mr D1mr D1mw
  # ILmr DLmr DLmw.
  valgrind --tool=callgrind "${cache[@]}" --callgrind-out-file=/dev/null "$bin" bench --mode batch \
    --batch-size 1000 --concurrency 4 --requests "$1" --duration 900s --json "${@:2}" 2>&1 |
    awk '/Collected :/ { $1 = $2 = $3 = ""; gsub(/,/, ""); print }'
}
few=$(count 8 "$@")
many=$(count 48 "$@")
python3 - "$few" "$many" <<'PY'
import sys
few, many = ([int(x) for x in arg.split()] for arg in sys.argv[1:3])
per = [(b - a) / 40_000 for a, b in zip(few, many)]
line = f"per classification, client and server: {per[0]:,.0f} instructions"
if len(per) == 9:
    line += f", {per[6] + per[7] + per[8]:,.1f} last-level misses"
print(line)
PY
