#!/usr/bin/env bash
# What a Redis admission adds to a request's latency, measured interleaved so the machine's
# drift lands on both sides: one gateway, two routes with the same request and token limits,
# one counted in the gateway (`local`) and one in Redis (`redis`); each round runs a closed
# loop at concurrency 1 through each route, then measures one loopback round trip to the same
# Redis: sampled once per request period while the local route serves the same load
# (`switchboard-redis-rtt`, Redis idle in between as it is between admissions: from a blocking
# socket, and through the gateway's own Redis client and runtime), and back to back
# (`redis-benchmark -t ping_mbulk -c 1`, and the admission transaction replayed). Then the
# same comparison request by request (`switchboard-governed-cycle`: a Redis-route request, a
# local one, a PING, a local one, the admission replayed, a local one, over and over), where the
# machine's drift falls on every kind of step alike. See bench/governed.md.
#
# usage: bench/governed.sh
# Environment:
#   BENCH_ROUNDS    rounds (default 5)
#   BENCH_DURATION  each route's run per round, seconds (default 5)
#   BENCH_GATEWAY_ARGS  extra gateway flags
#   BENCH_GATEWAY_BIN   another gateway binary (a saved build, for an A/B)
#   BENCH_NO_BUILD      set to skip the release build (measuring saved builds in turns)
#   BENCH_LIMITS    both policies' limits (default: a request and a token limit per minute, far
#                   above what a run sends); a request limit alone leaves nothing to settle
#   BENCH_TRACE     seconds: after the rounds, trace one more cycle run with `perf record` (as
#                   root) and print where its time goes, phase by phase (bench/phases.py)
#   CARGO_TARGET_DIR  respected when locating the binaries
set -euo pipefail

NAME=governed
ROUNDS=${BENCH_ROUNDS:-5}
DURATION=${BENCH_DURATION:-5}
GATEWAY_ARGS=${BENCH_GATEWAY_ARGS:-}
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for tool in redis-server redis-benchmark redis-cli python3 curl; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install -y redis-server)"
done

build_release

start_mock
MOCK_PID=${PIDS[-1]}

start_redis
write_config "$TMP/gateway.yaml" sk-governed "routes:
$(governed_routes "${BENCH_LIMITS:-}")"
# shellcheck disable=SC2086 # BENCH_GATEWAY_ARGS is a list of flags, split on purpose
start_gateway gateway "$TMP/gateway.yaml" --redis-url "redis://127.0.0.1:$REDIS_PORT" $GATEWAY_ARGS

# "sum count" of the gateway's own timing of its admission calls.
admission_seconds() {
    curl -fsS "http://$ADMIN/metrics" | awk '
        $1 == "switchboard_redis_admission_duration_seconds_sum" { sum = $2 }
        $1 == "switchboard_redis_admission_duration_seconds_count" { count = $2 }
        END { print sum, count }'
}

governed_bodies
# usage: run ROUTE DURATION OUT
run() { governed_loop "$API" "$1" "$2" >"$3"; }
run local 2s "$TMP/warmup.json"
run redis 2s /dev/null
# One request's period at concurrency 1 through the local route: the paced round trip below
# samples Redis at this interval, so Redis idles between samples as it does between admissions.
INTERVAL_US=$(python3 -c 'import json, sys; print(int(1e6 / json.load(open(sys.argv[1]))["rps"]))' "$TMP/warmup.json")

# The admission call itself, as the gateway sends it, captured with MONITOR to be replayed beside
# the PING (the round trip an admission cannot avoid): the commands one connection sends from an
# MGET (the previous windows, read first) up to its next one, so with the settlements the next
# admission carries ahead of its MGET (one per admission in a closed loop: what a write holds);
# a MULTI … EXEC transaction for a policy that limits requests in flight.
redis-cli -p "$REDIS_PORT" monitor >"$TMP/monitor.txt" &
MONITOR_PID=$!
PIDS+=("$MONITOR_PID")
first_line "$MONITOR_PID" "$TMP/monitor.txt" OK >/dev/null || die "redis-cli monitor did not start"
run redis 1s /dev/null
kill "$MONITOR_PID" 2>/dev/null || true
python3 - "$TMP/monitor.txt" >"$TMP/admission.args" <<'PY'
import shlex
import sys

# 1701.2 [0 127.0.0.1:5] "INCRBY" "key" "1": the client in brackets, then the command's words.
commands = [(line.split("[", 1)[1].split("]", 1)[0], shlex.split(line.split("]", 1)[1]))
            for line in open(sys.argv[1]) if "]" in line]
def admission():
    for i, (client, command) in enumerate(commands):
        name = command[0].upper()
        if name == "MULTI":
            end = next(j for j in range(i, len(commands)) if commands[j][1][0].upper() == "EXEC")
            return [c for who, c in commands[i : end + 1] if who == client]
        if name == "MGET":
            ours = [c for who, c in commands[i:] if who == client]
            end = next((j for j in range(1, len(ours)) if ours[j][0].upper() == "MGET"), None)
            if end is not None:
                return ours[:end]
    sys.exit("no admission seen: is the redis route's policy in redis mode?")
# One argument per line, ';' between commands (switchboard-redis-rtt's pipeline syntax).
print("\n;\n".join("\n".join(c) for c in admission()))
PY
mapfile -t ADMISSION <"$TMP/admission.args"

for round in $(seq 1 "$ROUNDS"); do
    run local "${DURATION}s" "$TMP/local.$round.json"
    redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
    admission_seconds >"$TMP/admission.$round.before"
    run redis "${DURATION}s" "$TMP/redis.$round.json"
    admission_seconds >"$TMP/admission.$round.after"
    redis-cli -p "$REDIS_PORT" info commandstats >"$TMP/stats.$round.txt"
    # A PING every request period, while the local route serves the same load: one round trip
    # to a Redis that is idle in between, on a machine as busy as during the Redis run.
    "$BIN/switchboard-redis-rtt" "127.0.0.1:$REDIS_PORT" "$INTERVAL_US" "$DURATION" >"$TMP/paced.$round.json" &
    PACED_PID=$!
    run local "${DURATION}s" /dev/null
    wait "$PACED_PID" || die "the paced round trip probe failed"
    # The admission itself at the same pace, from a plain socket.
    "$BIN/switchboard-redis-rtt" "127.0.0.1:$REDIS_PORT" "$INTERVAL_US" "$DURATION" "${ADMISSION[@]}" \
        >"$TMP/paced-admission.$round.json" &
    PACED_PID=$!
    run local "${DURATION}s" /dev/null
    wait "$PACED_PID" || die "the paced admission probe failed"
    # The same PING through the gateway's own Redis client and runtime, at the same pace: one
    # round trip as the gateway makes it.
    "$BIN/switchboard-redis-rtt" --gateway-client "127.0.0.1:$REDIS_PORT" "$INTERVAL_US" "$DURATION" \
        >"$TMP/client-ping.$round.json" &
    PACED_PID=$!
    run local "${DURATION}s" /dev/null
    wait "$PACED_PID" || die "the paced round trip probe through the gateway's client failed"
    redis-benchmark -p "$REDIS_PORT" -t ping_mbulk -n 20000 -c 1 --csv >"$TMP/ping.$round.csv"
    "$BIN/switchboard-redis-rtt" "127.0.0.1:$REDIS_PORT" 0 2 "${ADMISSION[@]}" >"$TMP/admission.$round.json"
    "$BIN/switchboard-governed-cycle" "$API" sk-governed "$TMP/local.json" "$TMP/redis.json" \
        "127.0.0.1:$REDIS_PORT" "$DURATION" "${ADMISSION[@]}" >"$TMP/cycle.$round.json"
    log "round $round of $ROUNDS done"
done

if [[ -n ${BENCH_TRACE:-} ]]; then
    command -v perf >/dev/null || die "BENCH_TRACE needs perf (apt-get install -y linux-perf)"
    "$BIN/switchboard-governed-cycle" "$API" sk-governed "$TMP/local.json" "$TMP/redis.json" \
        "127.0.0.1:$REDIS_PORT" "$((BENCH_TRACE + 2))" "${ADMISSION[@]}" >/dev/null &
    CYCLE_PID=$!
    PIDS+=("$CYCLE_PID")
    # The system calls of the four processes only: tracing the whole machine would trace perf's
    # own writes, and perf would take one of the two vCPUs for itself.
    perf record -q -o "$TMP/perf.data" -e raw_syscalls:sys_enter,raw_syscalls:sys_exit \
        -p "$GATEWAY_PID,$REDIS_PID,$MOCK_PID,$CYCLE_PID" -- sleep "$BENCH_TRACE" >"$TMP/perf.out" 2>&1 \
        || die "perf record failed (root, or kernel.perf_event_paranoid <= -1): $(tail -n 3 "$TMP/perf.out")"
    ss -tnpH >"$TMP/ss.txt" # while the cycle still runs: its sockets, named by their peers
    wait "$CYCLE_PID" || die "the traced cycle run failed"
    perf script -i "$TMP/perf.data" -F comm,pid,tid,cpu,time,event,trace 2>/dev/null >"$TMP/perf.txt"
    log "traced $BENCH_TRACE s of cycles"
fi

echo "machine: $(idle_policy)"
python3 - "$TMP" "$ROUNDS" <<'PY'
import csv
import json
import re
import statistics
import sys

tmp, rounds = sys.argv[1], int(sys.argv[2])
rows = []
cycles = []
for r in range(1, rounds + 1):
    local = json.load(open(f"{tmp}/local.{r}.json"))
    redis = json.load(open(f"{tmp}/redis.{r}.json"))
    for name, report in (("local", local), ("redis", redis)):
        bad = report["errors"] + report["transport_errors"]
        if bad:
            sys.exit(f"round {r}: {bad} failed requests on the {name} route")
    def p50(name):
        with open(f"{tmp}/{name}.{r}.csv") as f:
            header, values = list(csv.reader(f))[:2]
        return float(values[header.index("p50_latency_ms")]) * 1000
    ping_p50 = p50("ping")
    admission_p50 = json.load(open(f"{tmp}/admission.{r}.json"))["p50_us"]
    stats = open(f"{tmp}/stats.{r}.txt").read()
    # Redis's own time per request: every command the route sent (its admission, which reads
    # the previous windows with one MGET, and its settlement), per MGET.
    usec = {m.group(1): (int(m.group(2)), int(m.group(3)))
            for m in re.finditer(r"cmdstat_(\w+):calls=(\d+),usec=(\d+)", stats)
            if m.group(1) not in ("config", "info")}
    admissions = usec.get("mget", (0, 0))[0]
    in_redis = sum(u for _, u in usec.values()) / admissions if admissions else float("nan")
    (sum0, count0), (sum1, count1) = (
        map(float, open(f"{tmp}/admission.{r}.{when}").read().split()) for when in ("before", "after")
    )
    # The mean admission call as the gateway timed it, and the mean latency it added.
    admission_mean = (sum1 - sum0) / max(count1 - count0, 1) * 1e6
    added_mean = redis["mean_us"] - local["mean_us"]
    paced = json.load(open(f"{tmp}/paced.{r}.json"))
    paced_admission = json.load(open(f"{tmp}/paced-admission.{r}.json"))
    client_ping = json.load(open(f"{tmp}/client-ping.{r}.json"))
    cycle = json.load(open(f"{tmp}/cycle.{r}.json"))
    cycles.append((cycle["local"]["p50_us"], cycle["redis"]["p50_us"], cycle["ping"]["p50_us"],
                   cycle["admission"]["p50_us"], cycle["cycles"]))
    rows.append((local["p50_us"], redis["p50_us"], ping_p50, admission_p50, in_redis, added_mean,
                 admission_mean, paced["p50_us"], paced_admission["p50_us"], paced_admission["mean_us"],
                 client_ping["p50_us"], client_ping["mean_us"]))

print(f"{'round':>5} {'local p50':>10} {'redis p50':>10} {'added':>8} {'paced PING p50':>15} "
      f"{'paced admission p50/mean':>25} {'client PING p50/mean':>21} {'PING p50':>9} {'admission p50':>14} {'in Redis':>9} "
      f"{'added mean':>11} {'call mean':>10}   (us)")
for i, (local, redis, ping, admission, in_redis, added_mean, call_mean, paced, pa50, pamean, cp50, cpmean) in enumerate(rows, 1):
    print(f"{i:>5} {local:>10.0f} {redis:>10.0f} {redis - local:>8.0f} {paced:>15.0f} {pa50:>17.0f}/{pamean:<7.0f} "
          f"{cp50:>13.0f}/{cpmean:<7.0f} "
          f"{ping:>9.0f} {admission:>14.0f} {in_redis:>9.1f} {added_mean:>11.0f} {call_mean:>10.0f}")
added = statistics.median(r[1] - r[0] for r in rows)
ping = statistics.median(r[2] for r in rows)
admission = statistics.median(r[3] for r in rows)
paced = statistics.median(r[7] for r in rows)
paced_admission = statistics.median(r[8] for r in rows)
client_ping = statistics.median(r[10] for r in rows)
def verdict(rtt):
    return f"{'within' if added <= rtt else 'over'} it by {abs(added - rtt):.0f} us"
print(f"median: Redis limits add {added:.0f} us at p50 over local limits; a PING round trip at the request "
      f"rate is {paced:.0f} us ({verdict(paced)}), the admission transaction at that rate {paced_admission:.0f} us "
      f"({verdict(paced_admission)}); a PING through the gateway's own client and runtime at that rate {client_ping:.0f} us "
      f"({verdict(client_ping)}); back to back a PING is {ping:.0f} us ({verdict(ping)}), the admission "
      f"transaction {admission:.0f} us ({verdict(admission)}). "
      f"Means: {statistics.median(r[5] for r in rows):.0f} us added, of which the admission call as the gateway "
      f"timed it: {statistics.median(r[6] for r in rows):.0f} us")
print()
print("request by request (switchboard-governed-cycle), p50 in us:")
print(f"{'round':>5} {'cycles':>7} {'local':>7} {'redis':>7} {'added':>7} {'PING':>7} {'admission':>10}")
for i, (local, redis, ping, admission, n) in enumerate(cycles, 1):
    print(f"{i:>5} {n:>7} {local:>7.0f} {redis:>7.0f} {redis - local:>7.0f} {ping:>7.0f} {admission:>10.0f}")
added = statistics.median(c[1] - c[0] for c in cycles)
ping = statistics.median(c[2] for c in cycles)
admission = statistics.median(c[3] for c in cycles)
print(f"median: request by request, Redis limits add {added:.0f} us at p50 over local limits; in the same "
      f"cycles a PING round trip is {ping:.0f} us ({verdict(ping)}), the admission transaction from a plain "
      f"socket {admission:.0f} us ({verdict(admission)})")
PY

if [[ -n ${BENCH_TRACE:-} ]]; then
    echo
    python3 "$(dirname "${BASH_SOURCE[0]}")/phases.py" "$TMP/ss.txt" "$GATEWAY_PID" "$REDIS_PID" "$MOCK_PID" \
        "$CYCLE_PID" "$REDIS_PORT" "${MOCK##*:}" "${API##*:}" <"$TMP/perf.txt"
fi
