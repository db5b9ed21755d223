#!/usr/bin/env bash
# Switchboard propagation benchmark: time from a VirtualKey write to every gateway replica
# serving it, for several replica counts, with bytes per replica, CPU and memory. See
# bench/README.md, "Propagation".
#
# Environment:
#   BENCH_REPLICAS  replica counts to run, one run each   (default "1 3 10")
#   BENCH_KEYS      VirtualKeys loaded before the changes  (default 10000)
#   BENCH_CHANGES   timed one-key changes per run          (default 60)
#   BENCH_ARGS      extra switchboard-propagation flags, e.g. "--concurrency 32"
#   CARGO_TARGET_DIR  respected when locating the binaries
set -euo pipefail

REPLICAS=${BENCH_REPLICAS:-1 3 10}
KEYS=${BENCH_KEYS:-10000}
CHANGES=${BENCH_CHANGES:-60}
EXTRA_ARGS=${BENCH_ARGS:-}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/release

log() { echo "propagation: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v python3 >/dev/null || die "python3 is required (for the summary table)"
command -v setsid >/dev/null || die "setsid is required (util-linux)"

log "building (release)"
cargo build --release -p switchboard-gateway -p switchboard-operator -p switchboard-test-apiserver \
    -p switchboard-propagation

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$REPO/bench/results/propagation-$STAMP
mkdir -p "$OUT"
# Which code was measured: the commit, "-dirty" when the checkout has uncommitted changes.
REVISION=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
echo "$REVISION" >"$OUT/revision.txt"

# The bench runs in a process group of its own (setsid), and its children (API server,
# operator, gateways) stay in that group: on exit, Ctrl-C or failure the whole group is
# signalled, so nothing outlives the script even if the bench itself is killed hard. The bench
# also kills its children itself when it stops on SIGINT/SIGTERM.
BENCH_PID=
cleanup() {
    if [[ -n $BENCH_PID ]] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM -- "-$BENCH_PID" 2>/dev/null || true
        sleep 1
        kill -KILL -- "-$BENCH_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for n in $REPLICAS; do
    log "run: $n replica(s), $KEYS keys, $CHANGES changes"
    # shellcheck disable=SC2086 # BENCH_ARGS is a list of flags, split on purpose
    setsid "$BIN/switchboard-propagation" --bin-dir "$BIN" --replicas "$n" --keys "$KEYS" \
        --changes "$CHANGES" --json "$OUT/replicas-$n.json" --log-dir "$OUT/logs-$n" $EXTRA_ARGS \
        >"$OUT/replicas-$n.txt" &
    BENCH_PID=$!
    if ! wait "$BENCH_PID"; then
        BENCH_PID=
        die "the run with $n replica(s) failed; process logs in $OUT/logs-$n"
    fi
    BENCH_PID=
    cat "$OUT/replicas-$n.txt"
done

python3 - "$OUT" "$KEYS" "$CHANGES" "$REVISION" $REPLICAS <<'PY'
import json
import sys

out, keys, changes, revision, *replicas = sys.argv[1:]

def fmt(v, spec):
    return "-" if v is None else format(v, spec)

def p50(figures):
    return figures["p50"] if figures else None

cols = [
    ("replicas", 8, "s"), ("p50", 6, ".0f"), ("p90", 6, ".0f"), ("p99", 6, ".0f"), ("max", 6, ".0f"),
    ("published", 9, ".0f"), ("1st replica", 11, ".0f"), ("B/replica", 9, ".0f"),
    ("load writes s", 13, ".1f"), ("load served s", 13, ".1f"), ("op CPU ms", 9, ".0f"),
    ("gw CPU ms", 9, ".0f"), ("op RSS MiB", 10, ".0f"), ("gw RSS MiB", 10, ".0f"),
    ("other cores", 11, ".2f"), ("p99<1s", 6, "s"),
]
rows = []
for n in replicas:
    with open(f"{out}/replicas-{n}.json") as f:
        r = json.load(f)
    p = r["propagation_ms"]
    rss = r["peak_rss"]
    rows.append([
        n, p["p50"], p["p90"], p["p99"], p["max"],
        p50(r["operator_published_ms"]), p50(r["first_replica_ms"]), p50(r["sent_bytes_per_replica_change"]),
        r["load"]["api_writes_s"], r["load"]["all_served_s"],
        p50(r["operator_cpu_ms_per_change"]), p50(r["gateway_cpu_ms_per_change"]),
        rss["operator_kib"] / 1024, max(rss["gateways_kib"]) / 1024,
        r["others_cores_during_changes"], "PASS" if r["p99_under_1s"] else "FAIL",
    ])

print()
print(f"Propagation (rev {revision}), {keys} keys, {changes} changes per run. Times in ms from the API")
print("write; p50/p90/p99 are nearest-rank over the changes (with fewer than 100 changes p99 is the")
print("largest); 'published' is the operator's log line, '1st replica' the first replica serving;")
print("B/replica is per one-key change; CPU is per change (p50); 'other cores' is CPU other processes")
print("on the machine used meanwhile (above ~0.1 the run competed with other work).")
hdr = " ".join(f"{name:>{width}}" for name, width, _ in cols)
print(hdr)
print("-" * len(hdr))
for row in rows:
    print(" ".join(f"{fmt(v, spec):>{width}}" for v, (_, width, spec) in zip(row, cols)))
print()
print(f"results: {out}")
PY
