#!/usr/bin/env bash
# Gateway builds compared on what Redis limits add in a closed loop, in many short interleaved
# turns: one mock upstream and one Redis, every build's gateway up at once (each with its own
# counter prefix), and in each turn, for each build, a closed loop at concurrency 1 through its
# local-limits route and its Redis-limits route (in alternating order), plus one back-to-back
# `PING` (`redis-benchmark -t ping_mbulk -c 1`). On this VM the p50 of one build moves by tens of
# µs from one run to the next, so an A/B needs dozens of turns with the builds side by side; two or
# three runs each in turn (governed.sh) could not tell builds 40 µs apart (bench/governed-3.md).
#
# usage: bench/governed-builds.sh GATEWAY_BIN...
# Environment:
#   BENCH_TURNS     turns (default 30)
#   BENCH_DURATION  each route's run per turn, seconds (default 2)
#   BENCH_LIMITS    both policies' limits, as in governed.sh
#   BENCH_NO_BUILD  set to skip the release build (mock and load generator come from it)
#   CARGO_TARGET_DIR  respected when locating the binaries
set -euo pipefail

NAME=governed-builds
TURNS=${BENCH_TURNS:-30}
DURATION=${BENCH_DURATION:-2}
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ $# -gt 0 ] || die "usage: bench/governed-builds.sh GATEWAY_BIN..."
for tool in redis-server redis-benchmark python3; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install -y redis-server)"
done

build_release
start_mock
start_redis
write_config "$TMP/gateway.yaml" sk-governed "routes:
$(governed_routes "${BENCH_LIMITS:-}")"
APIS=()
build=0
for bin in "$@"; do
    build=$((build + 1))
    BENCH_GATEWAY_BIN=$bin start_gateway "build$build" "$TMP/gateway.yaml" \
        --redis-url "redis://127.0.0.1:$REDIS_PORT" --redis-prefix "build$build"
    APIS+=("$API")
done

governed_bodies
# The p50 in µs of a closed loop through one gateway's route. usage: p50 API ROUTE DURATION
p50() {
    governed_loop "$1" "$2" "$3" >"$TMP/loop.json"
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["p50_us"])' "$TMP/loop.json"
}
for api in "${APIS[@]}"; do
    p50 "$api" local 1s >/dev/null
    p50 "$api" redis 1s >/dev/null
done

log "$(idle_policy)"
# One line per turn and build: turn build ping_us local_p50 redis_p50.
for turn in $(seq 1 "$TURNS"); do
    # Into a file first: with a reader in a pipe (python3 starting up) the PING read 15 µs, not
    # ~80: the other vCPU, kept busy, never halts.
    redis-benchmark -p "$REDIS_PORT" -t ping_mbulk -n 20000 -c 1 --csv >"$TMP/ping.csv"
    ping=$(python3 -c 'import csv, sys; print(float(list(csv.reader(open(sys.argv[1])))[-1][4]) * 1000)' "$TMP/ping.csv")
    build=0
    for api in "${APIS[@]}"; do
        build=$((build + 1))
        if [ $((turn % 2)) = 1 ]; then
            local_p50=$(p50 "$api" local "${DURATION}s")
            redis_p50=$(p50 "$api" redis "${DURATION}s")
        else
            redis_p50=$(p50 "$api" redis "${DURATION}s")
            local_p50=$(p50 "$api" local "${DURATION}s")
        fi
        echo "$turn $build $ping $local_p50 $redis_p50" >>"$TMP/turns.txt"
    done
    log "turn $turn of $TURNS done"
done

python3 - "$TMP/turns.txt" "$@" <<'PY'
import statistics as st
import sys

rows = [line.split() for line in open(sys.argv[1])]
pings = {int(r[0]): float(r[2]) for r in rows}
ping = st.median(pings.values())
print(f"back-to-back PING p50, median of {len(pings)} turns: {ping:.0f} us")
print(f"{'build':>5} {'local p50':>10} {'redis p50':>10} {'added':>6} {'added/PING':>11} {'turns within':>13}  binary")
for build, binary in enumerate(sys.argv[2:], start=1):
    turns = [r for r in rows if int(r[1]) == build]
    added = [float(r[4]) - float(r[3]) for r in turns]
    within = sum(a <= float(r[2]) for a, r in zip(added, turns))
    print(f"{build:>5} {st.median(float(r[3]) for r in turns):>10.0f} {st.median(float(r[4]) for r in turns):>10.0f} "
          f"{st.median(added):>6.0f} {st.median(added) / ping:>11.2f} {within:>8} of {len(turns):<3}  {binary}")
PY
