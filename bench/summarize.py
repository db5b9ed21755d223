"""Summary of a bench/run.sh run: reads the load generator's JSON and the CPU ticks run.sh left in
its temporary directory, writes bench/results/STAMP.json and prints the tables and targets.

usage (from run.sh): summarize.py TMP RESULTS STAMP CLK_TCK STARTUP_KB PEAK_KB DURATION WARMUP
                     RATE CONNECTIONS KEYS REV SCENARIO...
"""
import json
import os
import statistics
import sys

gateway_args = os.environ.get("BENCH_GATEWAY_ARGS", "")
gateway_bin = os.environ.get("BENCH_GATEWAY_BIN", "")

(tmp, results_path, stamp, clk_tck, startup_kb, peak_kb, duration, warmup, rate, connections,
 keys, rev, *names) = sys.argv[1:]
clk_tck = int(clk_tck)
labels = {
    "closed_c1": "closed loop, concurrency 1",
    "closed_c1_traced": "conc. 1, tracing on (OTLP)",
    f"rate_{rate}": f"fixed rate {rate} req/s",
    "closed_c32": "closed loop, concurrency 32",
    "anthropic_c1": "Anthropic translation, conc. 1",
    "anthropic_c32": "Anthropic translation, conc. 32",
}

def load(path):
    with open(path) as f:
        return json.load(f)

out = {
    "timestamp": stamp,
    "git_rev": rev,
    "settings": {"duration": duration, "warmup": warmup, "rate": float(rate),
                 "connections": int(connections), "keys": int(keys), "gateway_bin": gateway_bin or None,
                 "governed_rounds": int(os.environ.get("GOVERNED_ROUNDS") or 0),
                 "governed_duration": os.environ.get("GOVERNED_DURATION")},
    "scenarios": {},
    "gateway_rss": {
        "startup_kb": int(startup_kb),
        "peak_kb": int(peak_kb),
        "after_10_reloads_kb": int(os.environ["RELOAD_RSS_KB"]),
        "peak_with_reloads_kb": int(os.environ["RELOAD_PEAK_KB"]),
    },
}
warnings = []
for name in names:
    direct = load(f"{tmp}/{name}.direct.json")
    gateway = load(f"{tmp}/{name}.gateway.json")
    with open(f"{tmp}/{name}.gateway.cpu_ticks") as f:
        ticks = int(f.read())
    cpu_us = ticks * 1e6 / clk_tck / gateway["requests"] if gateway["requests"] else None
    with open(f"{tmp}/{name}.direct.cpu_ticks") as f:
        mock_ticks = int(f.read().strip())
    mock_cpu_us = mock_ticks * 1e6 / clk_tck / direct["requests"] if direct["requests"] else None
    s = {
        "direct": direct,
        "gateway": gateway,
        "gateway_cpu_ticks": ticks,
        "gateway_cpu_us_per_request": cpu_us,
        # The mock upstream's own CPU per request when hit directly: the floor a process that
        # only parses HTTP and answers pays on this machine (the gateway handles two sockets).
        "mock_cpu_us_per_request": mock_cpu_us,
        "ratio_cpu_gateway_to_mock": cpu_us / mock_cpu_us if cpu_us and mock_cpu_us else None,
        "added_p50_us": gateway["p50_us"] - direct["p50_us"],
        "added_p99_us": gateway["p99_us"] - direct["p99_us"],
        "ratio_p50": gateway["p50_us"] / direct["p50_us"] if direct["p50_us"] else None,
        "ratio_p99": gateway["p99_us"] / direct["p99_us"] if direct["p99_us"] else None,
    }
    out["scenarios"][name] = s
    for side, r in (("direct", direct), ("gateway", gateway)):
        bad = r["errors"] + r["transport_errors"] + r.get("unsent", 0)
        if bad:
            warnings.append(f"{name}/{side}: {r['errors']} non-2xx {r.get('status_counts')}, "
                            f"{r['transport_errors']} transport errors, {r.get('unsent', 0)} unsent")
        if r.get("target_rps") and r["rps"] < 0.98 * r["target_rps"]:
            warnings.append(f"{name}/{side}: achieved {r['rps']:.0f} of {r['target_rps']:.0f} req/s")


def extra_cpu(scenario, baseline):
    """The gateway's extra CPU per request in `scenario` over `baseline` (None if either lacks it)."""
    a, b = scenario["gateway_cpu_us_per_request"], baseline["gateway_cpu_us_per_request"]
    return a - b if a is not None and b is not None else None


# Targets (see bench/README.md).
closed = out["scenarios"]["closed_c1"]
fixed = out["scenarios"][f"rate_{rate}"]
# The CPU target is judged where it is hardest: the light-load passthrough scenarios, where every
# request pays for waking the process up. The saturated and translated ones are reported alongside.
cpu = [s["gateway_cpu_us_per_request"] for n, s in out["scenarios"].items()
       if n in ("closed_c1", f"rate_{rate}")]
# What translation costs: the gateway's CPU per request translating, minus passthrough at the
# same concurrency in the same run.
translation = {}
for translated, passthrough in (("anthropic_c1", "closed_c1"), ("anthropic_c32", "closed_c32")):
    translation[translated] = extra_cpu(out["scenarios"][translated], out["scenarios"][passthrough])
out["translation_extra_cpu_us_per_request"] = translation
# What governance costs: in each interleaved round (run.sh), the local and Redis routes against
# the ungoverned route measured just before them; the figures are the medians over rounds.
rounds = []
for r in range(1, int(os.environ.get("GOVERNED_ROUNDS") or 0) + 1):
    sc = out["scenarios"]
    none, local, redis = (sc.get(f"governed_r{r}_{route}") for route in ("none", "local", "redis"))
    if not none or not local:
        continue
    row = {"round": r, "direct_p50_us": none["direct"]["p50_us"],
           "none_p50_us": none["gateway"]["p50_us"], "local_p50_us": local["gateway"]["p50_us"],
           "local_extra_cpu_us_per_request": extra_cpu(local, none)}
    if redis:
        row["redis_p50_us"] = redis["gateway"]["p50_us"]
        row["redis_extra_p50_us"] = redis["gateway"]["p50_us"] - none["gateway"]["p50_us"]
        row["redis_extra_cpu_us_per_request"] = extra_cpu(redis, none)
        try:
            with open(f"{tmp}/governed_r{r}.rtt_us") as f:
                rtt = float(f.read())
        except (OSError, ValueError):
            rtt = None
        row["redis_round_trip_p50_us"] = rtt
        row["redis_extra_beyond_round_trip_us"] = row["redis_extra_p50_us"] - rtt if rtt else None
        row["redis_extra_round_trips"] = row["redis_extra_p50_us"] / rtt if rtt else None
    rounds.append(row)


def median_of(key):
    values = [row[key] for row in rounds if row.get(key) is not None]
    return statistics.median(values) if values else None


governed = {key: median_of(key) for key in (
    "local_extra_cpu_us_per_request", "redis_extra_p50_us", "redis_extra_cpu_us_per_request",
    "redis_round_trip_p50_us", "redis_extra_beyond_round_trip_us", "redis_extra_round_trips")}
governed = {key: value for key, value in governed.items() if value is not None}
governed["rounds"] = rounds
out["governance"] = governed
# What tracing costs: the traced gateway's CPU per request (every request a SERVER and a CLIENT
# span, exported in batches) minus the untraced one's, same scenario, same run.
tracing = {}
base = out["scenarios"]["closed_c1"]
traced = out["scenarios"].get("closed_c1_traced")
if traced and extra_cpu(traced, base) is not None:
    tracing = {
        "protocol": os.environ.get("TRACES_PROTOCOL"),
        "extra_cpu_us_per_request": extra_cpu(traced, base),
        "extra_p50_us": traced["gateway"]["p50_us"] - base["gateway"]["p50_us"],
        "extra_p99_us": traced["gateway"]["p99_us"] - base["gateway"]["p99_us"],
        "spans_received": int(os.environ["SPANS_RECEIVED"]) if os.environ.get("SPANS_RECEIVED") else None,
    }
out["tracing"] = tracing
peak_mib = int(peak_kb) / 1024
targets = [
    ("added p99 @ concurrency 1 <= 100 us", closed["added_p99_us"], 100),
    (f"added p50 @ {rate} req/s <= 100 us", fixed["added_p50_us"], 100),
    (f"added p99 @ {rate} req/s <= 300 us", fixed["added_p99_us"], 300),
    ("gateway CPU per request <= 40 us", max(c for c in cpu if c is not None) if any(c is not None for c in cpu) else None, 40),
    ("local limits add <= 10 us CPU per request (median of rounds)", governed.get("local_extra_cpu_us_per_request"), 10),
    ("tracing on adds <= 10 us CPU per request", tracing.get("extra_cpu_us_per_request"), 10),
    ("Redis limits add <= one Redis round trip at p50 (us beyond it, median of rounds)",
     governed.get("redis_extra_beyond_round_trip_us"), 0),
    (f"peak RSS with {keys} keys, reloads included <= 30 MiB",
     max(int(peak_kb), int(os.environ["RELOAD_PEAK_KB"])) / 1024, 30),
]
out["targets"] = [{"target": t, "value": v, "limit": lim, "pass": v is not None and v <= lim}
                  for t, v, lim in targets]
out["warnings"] = warnings
with open(results_path, "w") as f:
    json.dump(out, f, indent=2)
    f.write("\n")

def fmt(v, spec=".0f"):
    return "-" if v is None else format(v, spec)

print()
print(f"Switchboard benchmark {stamp} (rev {rev}): duration {duration}, warmup {warmup}, {keys} keys, "
      f"gateway flags: {gateway_args or '(defaults)'}"
      + (f", gateway binary: {gateway_bin}" if gateway_bin else ""))
print()
hdr = (f"{'scenario':<30} {'target':<8} {'rps':>9} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9}"
       f" {'errors':>7}")
print(hdr)
print("-" * len(hdr))
main_scenarios = {name: s for name, s in out["scenarios"].items() if not name.startswith("governed_r")}
for name, s in main_scenarios.items():
    for side in ("direct", "gateway"):
        r = s[side]
        print(f"{labels.get(name, name):<30} {side:<8} {r['rps']:>9.1f} {r['p50_us']:>8} {r['p99_us']:>8}"
              f" {r['p999_us']:>9} {r['errors'] + r['transport_errors']:>7}")
print()
hdr = (f"{'scenario':<30} {'added p50':>10} {'added p99':>10} {'p50 x':>7} {'p99 x':>7}"
       f" {'gw CPU us/req':>14} {'mock CPU us/req':>16} {'CPU x':>6}")
print(hdr)
print("-" * len(hdr))
for name, s in main_scenarios.items():
    print(f"{labels.get(name, name):<30} {s['added_p50_us']:>10} {s['added_p99_us']:>10}"
          f" {fmt(s['ratio_p50'], '.2f'):>7} {fmt(s['ratio_p99'], '.2f'):>7}"
          f" {fmt(s['gateway_cpu_us_per_request'], '.1f'):>14} {fmt(s['mock_cpu_us_per_request'], '.1f'):>16}"
          f" {fmt(s['ratio_cpu_gateway_to_mock'], '.2f'):>6}")
print()
for name, extra in translation.items():
    print(f"translation costs {fmt(extra, '.1f')} us of gateway CPU per request over passthrough "
          f"({labels[name]})")
if rounds:
    print()
    print(f"governed, concurrency 1, {len(rounds)} interleaved rounds of {os.environ.get('GOVERNED_DURATION')}"
          " (p50 us: the direct call beside the ungoverned route, then each route through the gateway;"
          " extras against the ungoverned route of the same round)")
    hdr = (f"{'round':<7} {'direct':>7} {'ungoverned':>10} {'local':>7} {'Redis':>7} {'PING':>7} {'local +CPU':>11}"
           f" {'Redis +p50':>11} {'round trips':>12}")
    print(hdr)
    print("-" * len(hdr))
    for row in rounds + [dict(governed, round="median")]:
        print(f"{row['round']:<7} {fmt(row.get('direct_p50_us')):>7} {fmt(row.get('none_p50_us')):>10}"
              f" {fmt(row.get('local_p50_us')):>7}"
              f" {fmt(row.get('redis_p50_us')):>7} {fmt(row.get('redis_round_trip_p50_us')):>7}"
              f" {fmt(row.get('local_extra_cpu_us_per_request'), '.1f'):>11}"
              f" {fmt(row.get('redis_extra_p50_us'), '.1f'):>11} {fmt(row.get('redis_extra_round_trips'), '.2f'):>12}")
    print()
if tracing:
    print(f"tracing (OTLP {tracing['protocol']}) costs {fmt(tracing['extra_cpu_us_per_request'], '.1f')} us of gateway"
          f" CPU per request, p50 {tracing['extra_p50_us']:+} us, p99 {tracing['extra_p99_us']:+} us"
          f" (concurrency 1; {fmt(tracing['spans_received'])} spans received)")
print()
print(f"gateway RSS at startup ({keys} keys, no traffic): {int(startup_kb) / 1024:.1f} MiB")
print(f"gateway peak RSS (VmHWM, after all runs):      {peak_mib:.1f} MiB")
print(f"gateway RSS after 10 reloads of the config:     {int(os.environ['RELOAD_RSS_KB']) / 1024:.1f} MiB"
      f" (peak {int(os.environ['RELOAD_PEAK_KB']) / 1024:.1f} MiB)")
print()
for t in out["targets"]:
    print(f"  [{'PASS' if t['pass'] else 'FAIL'}] {t['target']}: {fmt(t['value'], '.1f')}")
for w in warnings:
    print(f"  warning: {w}")
print()
print(f"raw results: {results_path}")
