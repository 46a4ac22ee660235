#!/usr/bin/env bash
# Import speed side by side: `chronolith import` and `promtool tsdb create-blocks-from
# openmetrics` load the same OpenMetrics file (gen_devops.py's om.txt: 1,000 series x
# 1 day at 10 s = 8.64 M samples, 1.8 GB), timed whole-process with GNU time (read,
# parse, append, seal, close/fsync). Chronolith runs before and after promtool, so a
# change in machine load during the session shows. Issue 5's floor: 20x promtool.
#
# Usage (from the project root):
#   benches/compare/import_vs_promtool.sh            # 3 + 1 + 3 runs
#   RUNS=1 PROMTOOL_RUNS=1 benches/compare/import_vs_promtool.sh
#   IMPORT_ARGS="--seal" FILE=/path/om.txt benches/compare/import_vs_promtool.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${DATA:-${TMPDIR:-/tmp}/chronolith-peers/devops}
FILE=${FILE:-$DATA/om.txt}
RUNS=${RUNS:-3}
PROMTOOL_RUNS=${PROMTOOL_RUNS:-1}
IMPORT_ARGS=${IMPORT_ARGS:-}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/import-vs-promtool.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
[ -f "$FILE" ] || { echo "no $FILE: run ../shared/bench/gen_devops.py first" >&2; exit 1; }
command -v promtool >/dev/null || { echo "promtool missing: apt-get install -y prometheus" >&2; exit 1; }
SAMPLES=$(python3 -c "import json;print(json.load(open('$DATA/manifest.json'))['samples'])" 2>/dev/null || echo 8640000)
(cd "$ROOT" && cargo build --release --locked -q -p chronolith --bin chronolith)
BIN=$ROOT/target/release/chronolith
cat "$FILE" > /dev/null   # into the page cache, for both

rows=()
run() {  # run NAME CMD...
  local name=$1; shift
  rm -rf "$WORK/store"; sync
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/t" "$@" > "$WORK/log" 2>&1 || { cat "$WORK/log" >&2; exit 1; }
  read -r wall user sys rss < "$WORK/t"
  local bytes; bytes=$(du -sb "$WORK/store" | cut -f1)
  rows+=("$(printf '| %s | %s | %s | %.2f | %d MiB | %.3f | %s |' "$name" \
    "$(python3 -c "print(f'{round($SAMPLES / $wall):,}')")" "$wall" "$(python3 -c "print($user + $sys)")" \
    $((rss / 1024)) "$(python3 -c "print($bytes / $SAMPLES)")" "$load")")
  echo "${rows[-1]}" >&2
  echo "$wall" >> "$WORK/$name.walls"
}
for i in $(seq 1 "$RUNS"); do run chronolith "$BIN" import $IMPORT_ARGS --data-dir "$WORK/store" "$FILE"; done
for i in $(seq 1 "$PROMTOOL_RUNS"); do run promtool promtool tsdb create-blocks-from openmetrics "$FILE" "$WORK/store"; done
for i in $(seq 1 "$RUNS"); do run chronolith "$BIN" import $IMPORT_ARGS --data-dir "$WORK/store" "$FILE"; done

echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r); chronolith import $IMPORT_ARGS; $(promtool --version 2>&1 | head -1)"
echo
echo "| tool | samples/s | wall s | CPU s | peak RSS | bytes/sample on disk | load avg (1 min) at start |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
python3 - "$WORK" <<EOF
import statistics, sys
w = lambda n: [float(x) for x in open(sys.argv[1] + "/" + n + ".walls")]
c, p = statistics.median(w("chronolith")), statistics.median(w("promtool"))
print("\nmedian wall: chronolith %.2f s, promtool %.2f s: chronolith is %.1fx promtool (floor: 20x)" % (c, p, p / c))
EOF
