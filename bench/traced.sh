#!/usr/bin/env bash
# Tracing's cost in gateway CPU per request, measured interleaved: two gateways, same binary and
# config, one exporting OTLP traces to the in-repo receiver; each round runs a closed loop at
# concurrency 1 through each, the order alternating, and reads each gateway's CPU ticks. With
# BENCH_TOGETHER=1 each round loads both gateways at once instead (two loops, one each), so both
# run on the same machine at the same moment: the VM's drift from one run to the next (tens of
# us per request here) cancels, at the price of a busier machine for both. See
# bench/results.md "Tracing on vs off"; bench/instructions.sh counts the same in instructions.
#
# usage: bench/traced.sh
# Environment:
#   BENCH_ROUNDS    rounds (default 6)
#   BENCH_DURATION  each gateway's run per round, seconds (default 5)
#   BENCH_TRACES_PROTOCOL  grpc (default) or http/protobuf
#   BENCH_TOGETHER  1: load both gateways at once in each round (default: one after the other)
#   BENCH_GATEWAY_ARGS  extra flags for both gateways (e.g. --threads 1)
set -euo pipefail

NAME=traced
ROUNDS=${BENCH_ROUNDS:-6}
DURATION=${BENCH_DURATION:-5}
PROTOCOL=${BENCH_TRACES_PROTOCOL:-grpc}
TOGETHER=${BENCH_TOGETHER:-0}
GATEWAY_ARGS=${BENCH_GATEWAY_ARGS:-}
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_release

start_mock
start_receiver "$PROTOCOL"

write_config "$TMP/gateway.yaml" sk-traced "routes:
  - model: plain
    backends: [{ provider: upstream, model: bench-upstream }]"
# shellcheck disable=SC2086 # BENCH_GATEWAY_ARGS is a list of flags, split on purpose
start_gateway off "$TMP/gateway.yaml" $GATEWAY_ARGS
OFF_API=$API OFF_PID=$GATEWAY_PID
# shellcheck disable=SC2086
start_gateway on "$TMP/gateway.yaml" --otlp-endpoint "$OTLP" --otlp-protocol "$PROTOCOL" $GATEWAY_ARGS
ON_API=$API ON_PID=$GATEWAY_PID

printf '%s' '{"model":"plain","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16}' \
    >"$TMP/body.json"
# usage: run API DURATION OUT
run() {
    "$BIN/switchboard-loadgen" --url "http://$1/v1/chat/completions" --method POST \
        --body-file "$TMP/body.json" -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-traced' \
        --concurrency 1 --threads 1 --warmup 0s --duration "$2" --json >"$3"
}
# usage: measure LABEL API PID ROUND  -> writes "ticks" beside the load report
measure() {
    local before after
    before=$(cpu_ticks_split "$3")
    run "$2" "${DURATION}s" "$TMP/$1.$4.json"
    after=$(cpu_ticks_split "$3")
    echo "$before $after" >"$TMP/$1.$4.ticks"
}
run "$OFF_API" 2s /dev/null
run "$ON_API" 2s /dev/null
# usage: measure_together ROUND  -> both gateways at once, each writing its "ticks"
measure_together() {
    local off_before on_before off_load on_load
    off_before=$(cpu_ticks_split "$OFF_PID")
    on_before=$(cpu_ticks_split "$ON_PID")
    run "$OFF_API" "${DURATION}s" "$TMP/off.$1.json" &
    off_load=$!
    run "$ON_API" "${DURATION}s" "$TMP/on.$1.json" &
    on_load=$!
    wait "$off_load" "$on_load"
    echo "$off_before $(cpu_ticks_split "$OFF_PID")" >"$TMP/off.$1.ticks"
    echo "$on_before $(cpu_ticks_split "$ON_PID")" >"$TMP/on.$1.ticks"
}
for round in $(seq 1 "$ROUNDS"); do
    if [[ $TOGETHER == 1 ]]; then
        measure_together "$round"
    elif (( round % 2 )); then
        measure off "$OFF_API" "$OFF_PID" "$round"
        measure on "$ON_API" "$ON_PID" "$round"
    else
        measure on "$ON_API" "$ON_PID" "$round"
        measure off "$OFF_API" "$OFF_PID" "$round"
    fi
    log "round $round of $ROUNDS done"
done
# The receiver's own CPU, to show it is not what the gateways compete with.
RECEIVER_TICKS=$(cpu_ticks "$RECEIVER_PID")
kill -TERM "$RECEIVER_PID" && wait "$RECEIVER_PID" 2>/dev/null || true
SPANS=$(sed -n 's/^spans //p' "$TMP/receiver.out")

python3 - "$TMP" "$ROUNDS" "$(getconf CLK_TCK)" "${SPANS:-0}" "$PROTOCOL" "$TOGETHER" "$RECEIVER_TICKS" <<'PY'
import json
import statistics
import sys

tmp, rounds, clk_tck, spans, protocol = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
how = "both gateways loaded at once" if sys.argv[6] == "1" else "one gateway after the other"
receiver_ticks = int(sys.argv[7])

def cpu_us(label, r):
    """(CPU, user, system) in us per request, and the p50."""
    report = json.load(open(f"{tmp}/{label}.{r}.json"))
    if report["errors"] + report["transport_errors"]:
        sys.exit(f"round {r}: failed requests through the {label} gateway")
    user0, sys0, user1, sys1 = map(int, open(f"{tmp}/{label}.{r}.ticks").read().split())
    per = lambda ticks: ticks / clk_tck * 1e6 / report["requests"]
    return per(user1 - user0 + sys1 - sys0), per(user1 - user0), per(sys1 - sys0), report["p50_us"]

print(f"{'round':>5} {'off CPU/req':>12} {'on CPU/req':>11} {'extra':>7} {'extra user':>11} {'extra sys':>10} "
      f"{'off p50':>8} {'on p50':>7}   (us)")
extras, users, systems = [], [], []
for r in range(1, rounds + 1):
    (off, off_user, off_sys, off_p50), (on, on_user, on_sys, on_p50) = cpu_us("off", r), cpu_us("on", r)
    extras.append(on - off)
    users.append(on_user - off_user)
    systems.append(on_sys - off_sys)
    print(f"{r:>5} {off:>12.1f} {on:>11.1f} {on - off:>7.1f} {on_user - off_user:>11.1f} {on_sys - off_sys:>10.1f} "
          f"{off_p50:>8} {on_p50:>7}")
print(f"median ({how}): tracing on (OTLP {protocol}, {spans} spans received) adds {statistics.median(extras):.1f} us "
      f"of gateway CPU per request (user {statistics.median(users):.1f}, system {statistics.median(systems):.1f}; "
      f"target <= 10)")
if int(spans):
    print(f"the receiver beside them took {receiver_ticks / clk_tck * 1e6 / int(spans):.1f} us of CPU per span")
PY
