#!/usr/bin/env python3
"""Checks that Chronolith holds what the comparison loaded, so its figures are about
a complete and correct store:
  1. `chronolith inspect --json`: every generated sample (blocks + head) and series;
  2. the comparison's six range queries through `chronolith query --format json`
     (offline, no server) give the reference fingerprints (series / points / sum) of
     reference_answers.py under left-open windows `(t-w, t]`, Chronolith's rule;
  3. if the run also queried `chronolith serve` over HTTP (summary.json has queries),
     those answers give the same fingerprints.
Exit status 1 on any mismatch.

Usage: check_chronolith.py BIN STORE DATA RESULTS SHARED
  (the store must not be open in another process; run it after the comparison)
"""
import json
import os
import subprocess
import sys

BIN, STORE, DATA, RES, SHARED = sys.argv[1:6]
sys.path.insert(0, SHARED)
import query_bench  # noqa: E402  (the comparison's own query list)

man = json.load(open(os.path.join(DATA, "manifest.json")))
t0 = man["first_ts_ms"] // 1000
t1 = t0 + man["params"]["duration_s"]
failures = []

inspect = json.loads(subprocess.run([BIN, "inspect", "--data-dir", STORE, "--json"], check=True,
                                    capture_output=True, text=True).stdout)
# Raw blocks only: a rollup block's "samples" are its buckets.
raw = [b for b in inspect["blocks"] if b["resolution_ms"] == 0]
in_blocks = sum(b["samples"] for b in raw)
held = in_blocks + inspect["head"]["samples"]
print("store: %d series, %d samples (%d in %d raw blocks, %d in the head), %d block bytes, %d WAL bytes" % (
    inspect["series"], held, in_blocks, len(raw), inspect["head"]["samples"],
    inspect["block_bytes"], inspect["wal"]["bytes"]))
if held != man["samples"] or inspect["series"] != man["series"]:
    failures.append("store holds %d series / %d samples, the data set has %d / %d" % (
        inspect["series"], held, man["series"], man["samples"]))

# reference_answers.py always writes here, whatever RES is.
ref_dir = os.path.join(os.environ.get("TMPDIR", "/tmp"), "chronolith-peers", "results")
ref_path = os.path.join(ref_dir, "reference.json")
if not os.path.exists(ref_path):
    os.makedirs(ref_dir, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(SHARED, "reference_answers.py"), DATA], check=True,
                   stdout=subprocess.DEVNULL)
ref = json.load(open(ref_path))["leftopen"]


def fingerprint(series):
    values = [float(v[1]) for s in series for v in s["values"]]
    return (len(series), len(values), sum(values))


def same(got, want):
    return got[0] == want[0] and got[1] == want[1] and abs(got[2] - want[2]) <= 1e-6 * max(1.0, abs(want[2]))


summary_path = os.path.join(RES, "chronolith", "summary.json")
served = (json.load(open(summary_path)).get("queries") or {}) if os.path.exists(summary_path) else {}
print("%-24s %-28s %-28s %s" % ("query", "chronolith query (offline)", "reference, left-open", "serve (HTTP)"))
for name, promql, step, _desc in query_bench.queries(t0, t1):
    out = subprocess.run([BIN, "query", "--data-dir", STORE, promql, "--start", str(t0 + step), "--end", str(t1),
                          "--step", str(step), "--format", "json"], check=True, capture_output=True, text=True).stdout
    got = fingerprint(json.loads(out)["data"]["result"])
    want = tuple(ref[name])
    http = served.get(name)
    http_fp = (http["result_series"], http["result_points"], http["result_sum"]) if http else None
    fmt = lambda f: "%d/%d/%.4f" % f if f else "-"
    print("%-24s %-28s %-28s %s" % (name, fmt(got), fmt(want), fmt(http_fp)))
    if not same(got, want):
        failures.append("%s: chronolith query gave %s, reference %s" % (name, fmt(got), fmt(want)))
    if http_fp and not same(http_fp, want):
        failures.append("%s: chronolith serve gave %s, reference %s" % (name, fmt(http_fp), fmt(want)))

if failures:
    print("\nFAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("\nchronolith: all %d samples present; every query matches the left-open reference" % man["samples"])
