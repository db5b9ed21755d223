#!/usr/bin/env bash
# Switchboard benchmark: the gateway's added latency, CPU per request and memory, measured
# side by side with the mock upstream hit directly, in one run. See bench/README.md.
#
# Environment:
#   BENCH_DURATION  measured duration of each run      (default 10s)
#   BENCH_WARMUP    warmup before each measured run    (default 2s; 0 disables)
#   BENCH_RATE      fixed-rate scenario, requests/s    (default 2000)
#   BENCH_CONNECTIONS  connections for the fixed-rate scenario (default 64)
#   BENCH_KEYS      virtual keys in the gateway config (default 10000)
#   BENCH_LOADGEN_THREADS  load generator tokio threads (default 1)
#   BENCH_GATEWAY_ARGS  extra gateway flags, e.g. "--threads 1" (default none)
#   BENCH_GATEWAY_BIN  another gateway binary to measure (an older build, for an A/B run
#                      against the same mocks and load generator); default: the one built here
#   BENCH_TRACES    1 (default): also run closed_c1 through a second gateway exporting OTLP
#                   traces to the in-repo receiver (tests/otlp-receiver), tracing on vs off
#                   side by side; 0 skips it
#   BENCH_TRACES_PROTOCOL  grpc (default) or http/protobuf
#   BENCH_GOVERNED_ROUNDS  interleaved rounds of the governed comparison (default 5)
#   BENCH_GOVERNED_DURATION  measured duration of each governed run (default 5s)
#   CARGO_TARGET_DIR  respected when locating the binaries
set -euo pipefail

DURATION=${BENCH_DURATION:-10s}
MAIN_DURATION=$DURATION
GOVERNED_ROUNDS=${BENCH_GOVERNED_ROUNDS:-5}
GOVERNED_DURATION=${BENCH_GOVERNED_DURATION:-5s}
WARMUP=${BENCH_WARMUP:-2s}
RATE=${BENCH_RATE:-2000}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
KEYS=${BENCH_KEYS:-10000}
LOADGEN_THREADS=${BENCH_LOADGEN_THREADS:-1}
GATEWAY_ARGS=${BENCH_GATEWAY_ARGS:-}
GATEWAY_BIN=${BENCH_GATEWAY_BIN:-}
TRACES=${BENCH_TRACES:-1}
TRACES_PROTOCOL=${BENCH_TRACES_PROTOCOL:-grpc}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/release

log() { echo "bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in python3 curl getconf; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

# --- 1. build --------------------------------------------------------------------------------
log "building (release)"
cargo build --release -p switchboard-gateway -p switchboard-mock-upstream -p switchboard-loadgen \
    -p switchboard-mock-providers -p switchboard-otlp-receiver

LOADGEN=$BIN/switchboard-loadgen
for b in switchboard-gateway switchboard-mock-upstream switchboard-loadgen switchboard-mock-providers \
    switchboard-otlp-receiver; do
    [[ -x $BIN/$b ]] || die "missing binary $BIN/$b"
done
GATEWAY_BIN=${GATEWAY_BIN:-$BIN/switchboard-gateway}
[[ -x $GATEWAY_BIN ]] || die "missing gateway binary $GATEWAY_BIN"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench.XXXXXX")
MOCK_PID=
ANTHROPIC_PID=
GATEWAY_PID=
REDIS_PID=
TRACED_PID=
RECEIVER_PID=
cleanup() {
    local pid
    for pid in $GATEWAY_PID $TRACED_PID $RECEIVER_PID $MOCK_PID $ANTHROPIC_PID $REDIS_PID; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits for the first stdout line starting with "listening" from a background process.
# usage: wait_listening PID OUTFILE NAME
wait_listening() {
    local pid=$1 out=$2 name=$3 line
    for _ in $(seq 1 200); do
        line=$(grep -m1 '^listening' "$out" 2>/dev/null || true)
        if [[ -n $line ]]; then
            echo "$line"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited early; stderr:"
            tail -n 30 "$TMP/$name.err" >&2 || true
            return 1
        fi
        sleep 0.05
    done
    log "$name did not print its listening line within 10 s"
    return 1
}

# --- 2. mock upstream ------------------------------------------------------------------------
"$BIN/switchboard-mock-upstream" --listen 127.0.0.1:0 --threads 1 >"$TMP/mock.out" 2>"$TMP/mock.err" &
MOCK_PID=$!
line=$(wait_listening "$MOCK_PID" "$TMP/mock.out" mock) || die "mock upstream did not start"
MOCK_ADDR=${line#listening }
log "mock upstream at $MOCK_ADDR (pid $MOCK_PID)"

# The strict Anthropic Messages mock (tests/mock-providers), for the translation scenarios.
"$BIN/switchboard-mock-providers" --anthropic 127.0.0.1:0 --gemini 127.0.0.1:0 --threads 1 \
    >"$TMP/anthropic.out" 2>"$TMP/anthropic.err" &
ANTHROPIC_PID=$!
line=$(wait_listening "$ANTHROPIC_PID" "$TMP/anthropic.out" anthropic) || die "anthropic mock did not start"
ANTHROPIC_ADDR=$(sed -n 's/.*anthropic=\([^ ]*\).*/\1/p' <<<"$line")
log "anthropic mock at $ANTHROPIC_ADDR (pid $ANTHROPIC_PID)"

# A throwaway Redis for the governed scenario's redis-mode limits (skipped without redis-server).
REDIS_PORT=
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
    REDIS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
        --logfile "" >"$TMP/redis.out" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 1 200); do
        grep -q 'Ready to accept connections' "$TMP/redis.out" && break
        kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited: $(tail -n 5 "$TMP/redis.out")"
        sleep 0.05
    done
    log "redis at 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"
else
    log "redis-server or redis-benchmark not found: the redis-mode scenario is skipped"
fi

# --- 3. gateway config with $KEYS virtual keys ------------------------------------------------
CONFIG=$TMP/gateway.yaml
python3 - "$CONFIG" "$MOCK_ADDR" "$KEYS" "$ANTHROPIC_ADDR" <<'PY'
import hashlib
import sys

path, mock, n, anthropic = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
# The governed routes: every request checks and charges a request limit and a token limit (a
# prompt estimate and max_tokens reserved, settled with the usage), counted in this process or
# in Redis. The limits are far above what a run sends: the work is measured, not refusals.
limits = "window_seconds: 60, requests: 1000000000, total_tokens: 1000000000000"
with open(path, "w") as f:
    f.write(f"""version: 2
generation: 0
providers:
  - name: upstream
    type: openai
    base_url: http://{mock}/v1
  - name: claude
    type: anthropic
    base_url: http://{anthropic}/v1
    api_key: {{ value: sk-ant-mock-key }}
routes:
  - model: bench-model
    backends:
      - provider: upstream
        model: bench-upstream
  - model: bench-claude
    backends:
      - provider: claude
        model: claude-bench
  - model: bench-local
    backends:
      - provider: upstream
        model: bench-upstream
    policies: [local-limits]
  - model: bench-redis
    backends:
      - provider: upstream
        model: bench-upstream
    policies: [redis-limits]
policies:
  - {{ name: local-limits, scope: key_route, {limits}, mode: local }}
  - {{ name: redis-limits, scope: key_route, {limits}, mode: redis, failure_mode: closed }}
keys:
""")
    for i in range(n):
        digest = hashlib.sha256(f"sk-bench-{i}".encode()).hexdigest()
        f.write(f"  - id: key-{i}\n    hash: sha256:{digest}\n")
PY
(( KEYS > 4242 )) || die "BENCH_KEYS must be > 4242 (the benchmark uses sk-bench-4242)"

# --- 4. gateway ----------------------------------------------------------------------------
REDIS_ARGS=()
[[ -n $REDIS_PORT ]] && REDIS_ARGS=(--redis-url "redis://127.0.0.1:$REDIS_PORT")
# shellcheck disable=SC2086 # BENCH_GATEWAY_ARGS is a list of flags, split on purpose
"$GATEWAY_BIN" --config "$CONFIG" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 "${REDIS_ARGS[@]}" $GATEWAY_ARGS \
    >"$TMP/gateway.out" 2>"$TMP/gateway.err" &
GATEWAY_PID=$!
line=$(wait_listening "$GATEWAY_PID" "$TMP/gateway.out" gateway) || die "gateway did not start"
API_ADDR=$(sed -n 's/.*api=\([^ ]*\).*/\1/p' <<<"$line")
ADMIN_ADDR=$(sed -n 's/.*admin=\([^ ]*\).*/\1/p' <<<"$line")
[[ -n $API_ADDR && -n $ADMIN_ADDR ]] || die "cannot parse gateway line: $line"
ready=0
for _ in $(seq 1 200); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$ADMIN_ADDR/readyz" || true) == 200 ]]; then
        ready=1
        break
    fi
    kill -0 "$GATEWAY_PID" 2>/dev/null || break
    sleep 0.05
done
(( ready )) || { tail -n 30 "$TMP/gateway.err" >&2 || true; die "gateway never became ready"; }
log "gateway api=$API_ADDR admin=$ADMIN_ADDR (pid $GATEWAY_PID)"

# --- 4b. a second gateway with tracing on, exporting to the in-repo OTLP receiver ----------------
# Same binary, config and flags; only --otlp-endpoint differs. The receiver decodes every export
# request (protobuf) and counts the spans; it runs on the same two cores, as a collector agent
# on the node would.
if [[ $TRACES == 1 ]]; then
    "$BIN/switchboard-otlp-receiver" >"$TMP/receiver.out" 2>"$TMP/receiver.err" &
    RECEIVER_PID=$!
    for _ in $(seq 1 200); do
        grep -q '^http ' "$TMP/receiver.out" 2>/dev/null && break
        kill -0 "$RECEIVER_PID" 2>/dev/null || die "the OTLP receiver exited: $(cat "$TMP/receiver.err")"
        sleep 0.05
    done
    case $TRACES_PROTOCOL in
        grpc) OTLP_ENDPOINT=$(sed -n 's/^grpc //p' "$TMP/receiver.out") ;;
        http/protobuf) OTLP_ENDPOINT=$(sed -n 's/^http //p' "$TMP/receiver.out") ;;
        *) die "BENCH_TRACES_PROTOCOL must be grpc or http/protobuf" ;;
    esac
    # shellcheck disable=SC2086 # BENCH_GATEWAY_ARGS is a list of flags, split on purpose
    "$GATEWAY_BIN" --config "$CONFIG" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 "${REDIS_ARGS[@]}" $GATEWAY_ARGS \
        --otlp-endpoint "$OTLP_ENDPOINT" --otlp-protocol "$TRACES_PROTOCOL" \
        >"$TMP/traced.out" 2>"$TMP/traced.err" &
    TRACED_PID=$!
    line=$(wait_listening "$TRACED_PID" "$TMP/traced.out" traced) || die "the traced gateway did not start"
    TRACED_API=$(sed -n 's/.*api=\([^ ]*\).*/\1/p' <<<"$line")
    TRACED_ADMIN=$(sed -n 's/.*admin=\([^ ]*\).*/\1/p' <<<"$line")
    for _ in $(seq 1 200); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$TRACED_ADMIN/readyz" || true) == 200 ]] && break
        sleep 0.05
    done
    log "traced gateway api=$TRACED_API (pid $TRACED_PID) exporting over $TRACES_PROTOCOL to $OTLP_ENDPOINT"
fi

# --- 7a. RSS after loading the keys, before any traffic ----------------------------------------
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
STARTUP_RSS_KB=$(status_kb "$GATEWAY_PID" VmRSS)

# --- 5./6. scenarios -------------------------------------------------------------------------
# Passthrough: the same OpenAI body to the OpenAI mock directly and through the gateway.
BODY_FILE=$TMP/body.json
printf '%s' '{"model":"bench-model","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16}' >"$BODY_FILE"
DIRECT_URL=http://$MOCK_ADDR/v1/chat/completions
DIRECT_BODY=$BODY_FILE
DIRECT_HEADERS=()
UPSTREAM_PID=$MOCK_PID
GATEWAY_BODY=$BODY_FILE
GATEWAY_URL=http://$API_ADDR/v1/chat/completions
AUTH='Authorization: Bearer sk-bench-4242'
CLK_TCK=$(getconf CLK_TCK)

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the command
# name in field 2 may contain spaces, so count from the closing parenthesis).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

warmup_enabled() { [[ ! $WARMUP =~ ^0*(\.0*)?[a-z]*$ ]]; }

# usage: loadgen URL BODY_FILE OUT_JSON DURATION LOADGEN_ARGS...
loadgen() {
    local url=$1 body=$2 out=$3 duration=$4
    shift 4
    "$LOADGEN" --url "$url" --method POST --body-file "$body" \
        -H 'Content-Type: application/json' --threads "$LOADGEN_THREADS" \
        --duration "$duration" --warmup 0s --json "$@" >"$out"
}

# usage: scenario NAME LOAD_ARGS...
# Runs direct then gateway. Warmup is a separate invocation so that the gateway CPU snapshot
# is taken after it.
scenario() {
    local name=$1
    shift
    local before after
    log "scenario $name: direct"
    if warmup_enabled; then loadgen "$DIRECT_URL" "$DIRECT_BODY" /dev/null "$WARMUP" "$@" "${DIRECT_HEADERS[@]}"; fi
    before=$(cpu_ticks "$UPSTREAM_PID")
    loadgen "$DIRECT_URL" "$DIRECT_BODY" "$TMP/$name.direct.json" "$DURATION" "$@" "${DIRECT_HEADERS[@]}"
    after=$(cpu_ticks "$UPSTREAM_PID")
    echo "$((after - before))" >"$TMP/$name.direct.cpu_ticks"

    log "scenario $name: gateway"
    if warmup_enabled; then loadgen "$GATEWAY_URL" "$GATEWAY_BODY" /dev/null "$WARMUP" "$@" -H "$AUTH"; fi
    before=$(cpu_ticks "$GATEWAY_PID")
    loadgen "$GATEWAY_URL" "$GATEWAY_BODY" "$TMP/$name.gateway.json" "$DURATION" "$@" -H "$AUTH"
    after=$(cpu_ticks "$GATEWAY_PID")
    echo "$((after - before))" >"$TMP/$name.gateway.cpu_ticks"
}

scenario closed_c1 --concurrency 1
TRACED=()
if [[ $TRACES == 1 ]]; then
    # Tracing on vs off: the same scenario through the traced gateway, right after the untraced one.
    UNTRACED=("$GATEWAY_URL" "$GATEWAY_PID")
    GATEWAY_URL=http://$TRACED_API/v1/chat/completions
    GATEWAY_PID=$TRACED_PID
    scenario closed_c1_traced --concurrency 1
    GATEWAY_URL=${UNTRACED[0]}
    GATEWAY_PID=${UNTRACED[1]}
    TRACED=(closed_c1_traced)
    # The spans the receiver got (it reports them on SIGTERM), once the last batch is out: the
    # gateway exports at least every second (OTEL_BSP_SCHEDULE_DELAY's default).
    sleep 1.5
    kill -TERM "$RECEIVER_PID" && wait "$RECEIVER_PID" 2>/dev/null || true
    RECEIVER_PID=
    SPANS_RECEIVED=$(sed -n 's/^spans //p' "$TMP/receiver.out")
    log "the OTLP receiver got ${SPANS_RECEIVED:-0} spans"
fi
scenario "rate_${RATE}" --rate "$RATE" --connections "$CONNECTIONS"
# Saturation: per-request CPU once wakeups are amortized over many requests in flight.
scenario closed_c32 --concurrency 32

# Translation: the same question as an Anthropic Messages request to the Anthropic mock
# directly, and as the OpenAI request through the gateway, which translates it both ways.
# Compared with the passthrough rows above, the gateway's CPU per request is what translation
# costs (the mock's own CPU differs: it validates and answers the Messages format).
ANTHROPIC_BODY=$TMP/anthropic-body.json
printf '%s' '{"model":"claude-bench","max_tokens":16,"messages":[{"role":"user","content":"Say hello to the benchmark."}]}' >"$ANTHROPIC_BODY"
GATEWAY_BODY=$TMP/claude-body.json
printf '%s' '{"model":"bench-claude","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16}' >"$GATEWAY_BODY"
DIRECT_URL=http://$ANTHROPIC_ADDR/v1/messages
DIRECT_BODY=$ANTHROPIC_BODY
DIRECT_HEADERS=(-H 'x-api-key: sk-ant-mock-key' -H 'anthropic-version: 2023-06-01')
UPSTREAM_PID=$ANTHROPIC_PID
scenario anthropic_c1 --concurrency 1
scenario anthropic_c32 --concurrency 32

# Governed: the passthrough request on the ungoverned route and on routes whose policies charge
# and settle a request and a token limit, counted in this process or in Redis, each beside the
# same direct call, in interleaved rounds: ungoverned, local, Redis, then a PING to the same
# Redis. Each round is compared within itself, because this VM drifts by tens of µs over minutes
# (bench/governed-3.md) and a baseline measured minutes earlier would fold that drift into the
# difference; the summary takes the median over rounds. The extra CPU of the local route is
# what local limits cost, the extra p50 of the Redis route what a Redis admission adds, against
# one loopback round trip.
DIRECT_URL=http://$MOCK_ADDR/v1/chat/completions
DIRECT_BODY=$BODY_FILE
DIRECT_HEADERS=()
UPSTREAM_PID=$MOCK_PID
DURATION=$GOVERNED_DURATION
sed 's/bench-model/bench-local/' "$BODY_FILE" >"$TMP/local-body.json"
sed 's/bench-model/bench-redis/' "$BODY_FILE" >"$TMP/redis-body.json"
GOVERNED=()
for round in $(seq 1 "$GOVERNED_ROUNDS"); do
    GATEWAY_BODY=$BODY_FILE
    scenario "governed_r${round}_none" --concurrency 1
    GATEWAY_BODY=$TMP/local-body.json
    scenario "governed_r${round}_local" --concurrency 1
    GOVERNED+=("governed_r${round}_none" "governed_r${round}_local")
    if [[ -n $REDIS_PORT ]]; then
        GATEWAY_BODY=$TMP/redis-body.json
        scenario "governed_r${round}_redis" --concurrency 1
        GOVERNED+=("governed_r${round}_redis")
        # One loopback round trip to the same Redis: one client, no pipelining (redis-benchmark's
        # p50, in ms with microsecond precision). Into a file first: read through a pipe, the
        # reader starting up keeps the other vCPU awake and the PING reads ~5x faster
        # (bench/governed-3.md).
        redis-benchmark -p "$REDIS_PORT" -t ping_mbulk -n 20000 -c 1 --csv >"$TMP/ping.csv"
        awk -F'","' 'NR == 2 { print $6 * 1000 }' "$TMP/ping.csv" >"$TMP/governed_r${round}.rtt_us"
        log "round $round: redis loopback round trip p50 $(cat "$TMP/governed_r${round}.rtt_us") us"
    fi
done
DURATION=$MAIN_DURATION

kill -0 "$GATEWAY_PID" 2>/dev/null || die "gateway died during the run"
# --- 7b. peak RSS after all runs -------------------------------------------------------------
PEAK_RSS_KB=$(status_kb "$GATEWAY_PID" VmHWM)

# --- 7c. memory across reloads: the 10,000-key config applied 10 more times --------------------
RELOADS=10
for generation in $(seq 1 $RELOADS); do
    sed -i "s/^generation: .*/generation: $generation/" "$CONFIG"
    for _ in $(seq 1 100); do
        curl -fsS "http://$ADMIN_ADDR/metrics" | grep -qx "switchboard_config_generation $generation" && break
        sleep 0.05
    done
done
curl -fsS "http://$ADMIN_ADDR/metrics" | grep -qx "switchboard_config_generation $RELOADS" \
    || die "the gateway did not apply the reloads"
RELOAD_RSS_KB=$(status_kb "$GATEWAY_PID" VmRSS)
RELOAD_PEAK_KB=$(status_kb "$GATEWAY_PID" VmHWM)

# --- 8. results file and summary -------------------------------------------------------------
mkdir -p "$REPO/bench/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$REPO/bench/results/$STAMP.json
RELOAD_RSS_KB=$RELOAD_RSS_KB RELOAD_PEAK_KB=$RELOAD_PEAK_KB GOVERNED_ROUNDS=$GOVERNED_ROUNDS \
SPANS_RECEIVED=${SPANS_RECEIVED:-} TRACES_PROTOCOL=$TRACES_PROTOCOL GOVERNED_DURATION=$GOVERNED_DURATION \
python3 "$REPO/bench/summarize.py" "$TMP" "$RESULTS" "$STAMP" "$CLK_TCK" "$STARTUP_RSS_KB" "$PEAK_RSS_KB" \
    "$DURATION" "$WARMUP" "$RATE" "$CONNECTIONS" "$KEYS" "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    closed_c1 "${TRACED[@]}" "rate_${RATE}" closed_c32 anthropic_c1 anthropic_c32 "${GOVERNED[@]}"
