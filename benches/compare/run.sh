#!/usr/bin/env bash
# Side-by-side run: Prometheus, VictoriaMetrics, InfluxDB (Debian packages) and
# Chronolith load the same generated devops data set (1,000 series x 1 day at 10 s,
# 8.64M samples) in one run, then answer the same six range queries over HTTP.
# Prints ingest rate, bytes per sample and query latency for all of them.
#
# It drives the shared scripts in ../shared/bench (gen_devops.py, run_*.sh,
# run_candidate.sh, summarize.py); Chronolith is the candidate:
#   ingest  `chronolith import --seal` of the OpenMetrics file (the same file promtool
#           loads), timed whole-process: read, parse, append (WAL, periodic fsync),
#           seal into blocks, close; du of the store afterwards
#   queries `chronolith serve`'s /api/v1/query_range (skipped, with a message, while
#           this build has no `serve` subcommand)
# Afterwards check_chronolith.py checks that the store holds all 8.64 M samples and that
# the six queries (offline through `chronolith query`, and over HTTP when served) give
# the reference answers under left-open windows; a mismatch fails the run.
#
# Usage (as root on a Debian machine, from the project root):
#   benches/compare/run.sh                 # everything, ~15 min
#   INGEST_RUNS=1 QRUNS=5 benches/compare/run.sh   # quicker
#   SKIP_PEERS=1 benches/compare/run.sh    # Chronolith only, peers' last results kept
#   SHARED=/path/to/shared/bench benches/compare/run.sh   # scripts elsewhere
# Results: $TMPDIR/chronolith-peers/results/*/summary.json and the printed tables.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
[ -d "$SHARED" ] || { echo "no shared benchmark scripts at $SHARED (set SHARED=...)" >&2; exit 1; }

need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v victoria-metrics >/dev/null || need+=(victoria-metrics)
command -v influxd >/dev/null || need+=(influxdb)
command -v zstd >/dev/null || need+=(zstd)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} from Debian" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

(cd "$ROOT" && cargo build --release --locked -q -p chronolith --bin chronolith)
BIN=$ROOT/target/release/chronolith
export DATA=${DATA:-${TMPDIR:-/tmp}/chronolith-peers/devops}
if [ ! -f "$DATA/manifest.json" ]; then
  python3 "$SHARED/gen_devops.py" --outdir "$DATA"
fi

export CAND_NAME=chronolith
# Durable when it exits: import seals the head into blocks (so the store is all blocks,
# like promtool's output) and closes (fsyncs) the database at the end.
export CAND_INGEST="$BIN import --seal --data-dir \$STORE \$DATA/om.txt"
if "$BIN" serve --help >/dev/null 2>&1; then
  export CAND_SERVE="$BIN serve --data-dir \$STORE --listen 127.0.0.1:\$PORT"
else
  echo "this chronolith has no serve subcommand: its query latencies are skipped" >&2
  export CAND_SERVE=
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

if [ "${SKIP_PEERS:-0}" = 1 ]; then
  bash "$SHARED/run_candidate.sh"
  python3 "$SHARED/summarize.py"
else
  bash "$SHARED/run_all.sh"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo
WORK=${WORK:-${TMPDIR:-/tmp}/chronolith-peers/work}
RES=${RES:-${TMPDIR:-/tmp}/chronolith-peers/results}
python3 "$ROOT/benches/compare/check_chronolith.py" "$BIN" "$WORK/chronolith/store" "$DATA" "$RES" "$SHARED"
