# Shared by bench/instructions.sh, bench/governed.sh and bench/traced.sh: locating the release
# binaries, a temporary directory and the processes to stop on exit, and waiting for a process's
# first line. Source it after `set -euo pipefail`, with NAME set to the script's name for logs.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/release

log() { echo "$NAME: $*" >&2; }
die() { log "error: $*"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-$NAME.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# Prints the first line of a background process's output file that starts with PREFIX (a grep
# pattern), waiting up to 30 s; fails if the process exits first.
# usage: first_line PID OUTFILE PREFIX
first_line() {
    local line
    for _ in $(seq 1 600); do
        line=$(grep -m1 "^$3" "$2" 2>/dev/null || true)
        [[ -n $line ]] && { echo "$line"; return 0; }
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# The release binaries every bench script uses, built with one package set (as bench/run.sh
# does): another set would unify features differently and rebuild the gateway.
build_release() {
    [ -z "${BENCH_NO_BUILD:-}" ] || return 0
    cargo build --release -p switchboard-gateway -p switchboard-mock-upstream -p switchboard-loadgen \
        -p switchboard-mock-providers -p switchboard-otlp-receiver
}

# Starts the mock upstream on an ephemeral port; sets MOCK (host:port).
start_mock() {
    "$BIN/switchboard-mock-upstream" --listen 127.0.0.1:0 --threads 1 >"$TMP/mock.out" 2>"$TMP/mock.err" &
    PIDS+=($!)
    MOCK=$(first_line "${PIDS[-1]}" "$TMP/mock.out" listening) || die "mock upstream did not start"
    MOCK=${MOCK#listening }
}

# Starts the in-repo OTLP receiver; sets RECEIVER_PID and OTLP, its endpoint for PROTOCOL
# (grpc or http/protobuf).
# usage: start_receiver PROTOCOL
start_receiver() {
    "$BIN/switchboard-otlp-receiver" >"$TMP/receiver.out" 2>"$TMP/receiver.err" &
    RECEIVER_PID=$!
    PIDS+=("$RECEIVER_PID")
    first_line "$RECEIVER_PID" "$TMP/receiver.out" http >/dev/null || die "the OTLP receiver did not start"
    case $1 in
        grpc) OTLP=$(sed -n 's/^grpc //p' "$TMP/receiver.out") ;;
        http/protobuf) OTLP=$(sed -n 's/^http //p' "$TMP/receiver.out") ;;
        *) die "BENCH_TRACES_PROTOCOL must be grpc or http/protobuf" ;;
    esac
}

# Starts redis-server on an ephemeral loopback port, saving nothing; sets REDIS_PORT and REDIS_PID.
start_redis() {
    REDIS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
        >"$TMP/redis.out" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    first_line "$REDIS_PID" "$TMP/redis.out" '.*Ready to accept' >/dev/null || die "redis-server did not start"
}

# The governed benchmarks' routes, for write_config after `routes:`: `local` and `redis`, the
# same limits (LIMITS; default a request and a token limit per minute, far above what a run
# sends) counted in the gateway and in Redis.
# usage: governed_routes [LIMITS]
governed_routes() {
    local limits=${1:-"window_seconds: 60, requests: 1000000000, total_tokens: 1000000000000"}
    printf '%s\n' "  - model: local
    backends: [{ provider: upstream, model: bench-upstream }]
    policies: [local-limits]
  - model: redis
    backends: [{ provider: upstream, model: bench-upstream }]
    policies: [redis-limits]
policies:
  - { name: local-limits, scope: key_route, $limits, mode: local }
  - { name: redis-limits, scope: key_route, $limits, mode: redis, failure_mode: closed }"
}

# Writes the governed benchmarks' request bodies, one per route of governed_routes
# ($TMP/local.json, $TMP/redis.json).
governed_bodies() {
    local route
    for route in local redis; do
        printf '{"model":"%s","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16}' \
            "$route" >"$TMP/$route.json"
    done
}

# A closed loop at concurrency 1 through one governed route (key sk-governed); prints loadgen's JSON.
# usage: governed_loop API ROUTE DURATION
governed_loop() {
    "$BIN/switchboard-loadgen" --url "http://$1/v1/chat/completions" --method POST \
        --body-file "$TMP/$2.json" -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-governed' \
        --concurrency 1 --threads 1 --warmup 0s --duration "$3" --json
}

# Writes a gateway config: the mock upstream as provider `upstream`, ROUTES (the routes: and
# policies: sections), and one key with id `bench` whose secret is KEY.
# usage: write_config FILE KEY ROUTES
write_config() {
    local hash
    hash=$(printf '%s' "$2" | sha256sum | cut -d' ' -f1)
    {
        printf 'version: 2\nproviders:\n  - name: upstream\n    type: openai\n    base_url: http://%s/v1\n' "$MOCK"
        printf '%s\n' "$3"
        printf 'keys:\n  - id: bench\n    hash: sha256:%s\n' "$hash"
    } >"$1"
}

# Starts a gateway; sets API and ADMIN (host:port) and GATEWAY_PID. Extra arguments are gateway flags.
# usage: start_gateway LABEL CONFIG FLAGS...
start_gateway() {
    local label=$1 config=$2 line
    shift 2
    "${BENCH_GATEWAY_BIN:-$BIN/switchboard-gateway}" --config "$config" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 "$@" \
        >"$TMP/$label.out" 2>"$TMP/$label.err" &
    GATEWAY_PID=$!
    PIDS+=("$GATEWAY_PID")
    line=$(first_line "$GATEWAY_PID" "$TMP/$label.out" listening) \
        || die "gateway $label did not start: $(tail -n 5 "$TMP/$label.err")"
    API=$(sed -n 's/.*api=\([^ ]*\).*/\1/p' <<<"$line")
    ADMIN=$(sed -n 's/.*admin=\([^ ]*\).*/\1/p' <<<"$line")
}

# The guest's idle policy. Under cpuidle-haltpoll with its polling off (guest_halt_poll_ns 0), an
# idle vCPU halts at once, and waking a thread on it costs a VM exit: a loopback round trip to a
# process on the other vCPU then takes ~105 us at p50 instead of ~25 (bench/governed-2.md).
idle_policy() {
    local driver poll
    driver=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo unknown)
    poll=$(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns 2>/dev/null || echo absent)
    echo "cpuidle driver $driver, guest_halt_poll_ns $poll"
}

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the command
# name in field 2 may contain spaces, so count from the closing parenthesis).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# The same, user and system time apart: "utime stime".
cpu_ticks_split() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'; }
