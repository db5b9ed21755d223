#!/usr/bin/env bash
# Instructions the gateway executes per request, counted by callgrind: a figure that does not
# move with the machine's load, for changes too small for bench/run.sh's CPU-time differences
# (tracing on vs off, limits, a new header). See bench/README.md "How to run".
#
# usage: bench/instructions.sh [MODE...]      (default: plain traced)
#   plain    one key, one OpenAI-compatible route to the mock upstream, nothing else
#   traced   the same, exporting OTLP traces to the in-repo receiver (BENCH_TRACES_PROTOCOL)
#   local    the same route with a local request and token limit (as bench/run.sh's governed row)
#   redis    the same limit counted in Redis (a redis-server on a loopback port, as bench/governed.sh)
# Environment:
#   BENCH_DURATION  measured duration per mode, seconds (default 10)
#   BENCH_TRACES_PROTOCOL  grpc (default) or http/protobuf
#   BENCH_GATEWAY_ARGS  extra gateway flags
#   BENCH_RUNTIME_THREADS  the gateway's runtime threads (default 1; 2 lets a lone Redis admission
#                   wait inline, as it does on a multi-core machine)
#   BENCH_CALLGRIND_KEEP  a directory to keep each mode's callgrind.out in (for callgrind_annotate)
#   CARGO_TARGET_DIR  respected when locating the binaries
set -euo pipefail

NAME=instructions
DURATION=${BENCH_DURATION:-10}
PROTOCOL=${BENCH_TRACES_PROTOCOL:-grpc}
GATEWAY_ARGS=${BENCH_GATEWAY_ARGS:-}
THREADS=${BENCH_RUNTIME_THREADS:-1}
KEEP=${BENCH_CALLGRIND_KEEP:-}
MODES=("$@")
(( ${#MODES[@]} )) || MODES=(plain traced)
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in valgrind callgrind_control python3; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install -y valgrind)"
done

build_release

start_mock
start_receiver "$PROTOCOL"

write_config "$TMP/gateway.yaml" sk-instructions "routes:
  - model: plain
    backends: [{ provider: upstream, model: bench-upstream }]
$(governed_routes)"

# A Redis for the redis mode, started only when it is asked for.
REDIS_ARGS=()
if [[ " ${MODES[*]} " == *" redis "* ]]; then
    command -v redis-server >/dev/null || die "redis-server is required for the redis mode (apt-get install -y redis-server)"
    start_redis
    REDIS_ARGS=(--redis-url "redis://127.0.0.1:$REDIS_PORT")
fi

# usage: measure MODE  -> prints "MODE instructions-per-request requests"
measure() {
    local mode=$1 model=plain extra=()
    case $mode in
        plain) ;;
        traced) extra=(--otlp-endpoint "$OTLP" --otlp-protocol "$PROTOCOL") ;;
        local) model=local ;;
        redis) model=redis extra=("${REDIS_ARGS[@]}") ;;
        *) die "unknown mode $mode (plain, traced, local, redis)" ;;
    esac
    printf '{"model":"%s","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16}' \
        "$model" >"$TMP/body.json"
    local out=$TMP/callgrind.$mode
    # One runtime thread by default: callgrind serializes threads anyway, and a second worker
    # would only add wake-ups that depend on scheduling.
    # shellcheck disable=SC2086 # BENCH_GATEWAY_ARGS is a list of flags, split on purpose
    valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$out" \
        "$BIN/switchboard-gateway" --config "$TMP/gateway.yaml" --listen 127.0.0.1:0 \
        --admin-listen 127.0.0.1:0 --threads "$THREADS" "${extra[@]}" $GATEWAY_ARGS \
        >"$TMP/gateway.$mode.out" 2>"$TMP/gateway.$mode.err" &
    local pid=$!
    PIDS+=("$pid")
    local line api
    line=$(first_line "$pid" "$TMP/gateway.$mode.out" listening) \
        || { tail -n 20 "$TMP/gateway.$mode.err" >&2; die "gateway ($mode) did not start"; }
    api=$(sed -n 's/.*api=\([^ ]*\).*/\1/p' <<<"$line")
    local load=("$BIN/switchboard-loadgen" --url "http://$api/v1/chat/completions" --method POST
        --body-file "$TMP/body.json" -H 'Content-Type: application/json'
        -H 'Authorization: Bearer sk-instructions' --concurrency 1 --threads 1 --warmup 0s --json)
    "${load[@]}" --duration 3s >/dev/null
    callgrind_control -z "$pid" >/dev/null
    "${load[@]}" --duration "${DURATION}s" >"$TMP/load.$mode.json"
    # The export task runs on its schedule (OTEL_BSP_SCHEDULE_DELAY, 1 s): let it run inside the
    # counted window, so the export's cost is charged to the requests that caused it.
    sleep 1.5
    callgrind_control -d "$pid" >/dev/null
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    python3 - "$mode" "$TMP/load.$mode.json" "$out".* <<'PY'
import json
import sys

mode, load, dumps = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(load) as f:
    report = json.load(f)
requests = report["requests"]
errors = report["errors"] + report["transport_errors"]
# The dump taken by `callgrind_control -d` is the one with the highest part number.
dump = sorted(dumps, key=lambda p: int(p.rsplit(".", 1)[1]) if p.rsplit(".", 1)[1].isdigit() else 0)[-1]
with open(dump) as f:
    total = next(int(line.split()[1]) for line in f if line.startswith(("summary:", "totals:")))
print(f"{mode:8} {total / requests:10.0f} instructions per request  ({requests} requests, {errors} errors)")
PY
    if [[ -n $KEEP ]]; then
        mkdir -p "$KEEP"
        cp "$out".* "$KEEP/" 2>/dev/null || true
    fi
}

for mode in "${MODES[@]}"; do
    measure "$mode"
done
