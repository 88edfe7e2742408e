#!/usr/bin/env bash
# Instructions per classification in batches of 1,000 through gRPC, client and server together
# (`rebound bench` with its in-process server), counted by callgrind (valgrind). The loopback's
# speed on this shared host moves by half within an hour; instruction counts do not. Two runs, of
# 8 and 48 batches; their difference leaves out start-up (compiling the rules). Kernel time
# (the socket copies) is not counted. Extra arguments go to `rebound bench` (`--omit-advice`,
# `--baseline`). Usage: bash benches/batch_instructions.sh [--omit-advice] [--baseline]
# (from the repository root; builds the release binary first).
set -euo pipefail
cargo build --release --quiet
bin=target/release/rebound
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" bench --mode batch --batch-size 1000 \
    --concurrency 4 --requests "$1" --duration 900s --json "${@:2}" 2>&1 |
    awk '/Collected :/ { gsub(/,/, "", $4); print $4 }'
}
few=$(count 8 "$@")
many=$(count 48 "$@")
python3 - "$few" "$many" <<'PY'
import sys
few, many = (int(x) for x in sys.argv[1:3])
print(f"per classification, client and server: {(many - few) / 40_000:,.0f} instructions")
PY
