#!/usr/bin/env bash
# Instructions and cache misses per classification with the shipped rules, counted by callgrind
# (valgrind) in benches/instructions.rs. Two runs, of 20 and 100 rounds over the 121 provider
# replies; their difference leaves out compiling the rules and the first rounds, in which the
# lazy DFAs build their states. The "L2" is callgrind's last-level cache set to this machine's
# 1 MiB L2. Usage: bash benches/instructions.sh (from the repository root).
set -euo pipefail
bin=$(cargo bench --bench instructions --no-run --message-format=json 2>/dev/null |
  python3 -c 'import sys, json
for line in sys.stdin:
    m = json.loads(line)
    if m.get("executable") and m.get("target", {}).get("name") == "instructions":
        print(m["executable"])')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
totals() {
  valgrind --tool=callgrind --cache-sim=yes --LL=1048576,16,64 \
    --toggle-collect='instructions::classify_rounds' --callgrind-out-file="$out/$1" "$bin" "$1" >/dev/null 2>&1
  # awk reads to the end: stopping early would fail the pipe under pipefail.
  callgrind_annotate "$out/$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !seen { seen = 1; gsub(/\([^)]*\)|,/, ""); print }'
}
few=$(totals 20)
many=$(totals 100)
python3 - "$few" "$many" <<'PY'
import sys
few, many = ([int(x) for x in arg.split()[:9]] for arg in sys.argv[1:3])
per = [(b - a) / (80 * 121) for a, b in zip(few, many)]
ir, dr, dw, i1, d1r, d1w, li, ldr, ldw = per
print(f"per classification: {ir:,.0f} instructions, {i1 + d1r + d1w:,.1f} L1 misses, {li + ldr + ldw:,.1f} L2 misses")
PY
