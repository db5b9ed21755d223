"""Where the time of a governed request goes, from a `perf record` of the processes' system calls
while switchboard-governed-cycle runs (bench/governed.sh with BENCH_TRACE).

Reads `perf script -F comm,pid,tid,cpu,time,event,trace` on stdin. The cycle's steps are split
at the client's sends: a request to the gateway (its Redis route when the gateway writes to Redis
between reading the request and writing to the upstream, else its local route), a PING, or the
admission replayed from a plain socket (any other write to Redis). Every time is the p50 over the
steps, in microseconds, and includes the tracing's own cost (a few microseconds a system call), so
compare rows with each other, not with untraced runs.

usage: perf script ... | python3 bench/phases.py SS_FILE GATEWAY_PID REDIS_PID MOCK_PID CLIENT_PID
       REDIS_PORT MOCK_PORT API_PORT
SS_FILE: `ss -tnpH` taken while the processes ran, to name each socket by its peer.
"""

import collections
import re
import statistics
import sys

ss_file, gateway, redis, mock, client, redis_port, mock_port, api_port = sys.argv[1:9]
gateway, redis, mock, client = int(gateway), int(redis), int(mock), int(client)
ROLE = {gateway: "gateway", redis: "redis", mock: "mock", client: "client"}

# (pid, fd) -> what is at the other end.
peers = {}
for line in open(ss_file):
    fields = line.split()
    if len(fields) < 5:
        continue
    local, peer = fields[3].rsplit(":", 1)[1], fields[4].rsplit(":", 1)[1]
    kind = {redis_port: "redis", mock_port: "mock", api_port: "gateway"}.get(peer)
    if kind is None and local == api_port:
        kind = "client"
    # A socket can be open as several descriptors (the cycle reads and writes through two).
    for pid, fd in re.findall(r"pid=(\d+),fd=(\d+)", line):
        if kind:
            peers[(int(pid), int(fd))] = kind

WRITES, READS = {1, 20, 44, 46}, {0, 17, 45, 47}  # write writev sendto sendmsg / read pread recvfrom recvmsg
EVENT = re.compile(r"^\s*(.*?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$")
ENTER = re.compile(r"NR (\d+) \(([0-9a-f]+), [0-9a-f]+, ([0-9a-f]+)")
EXIT = re.compile(r"NR (\d+) = (-?\d+)")

# Marks: (time µs, role, what, peer, cpu). A step starts at each client send.
steps, step = [], None
calls = {}  # tid -> (nr, fd, length) of the system call it is in
for line in sys.stdin:
    event = EVENT.match(line)
    if not event:
        continue
    _, pid, tid, cpu, when, name, rest = event.groups()
    pid, tid, cpu, when = int(pid), int(tid), int(cpu), float(when) * 1e6
    role = ROLE.get(pid)
    if name == "raw_syscalls:sys_enter":
        call = ENTER.match(rest)
        if not call:
            continue
        nr, fd, length = int(call.group(1)), int(call.group(2), 16), int(call.group(3), 16)
        calls[tid] = (nr, fd, length)
        peer = peers.get((pid, fd))
        if role == "client" and nr in WRITES:
            if step is not None:
                steps.append(step)
            # To Redis: a PING is 14 bytes of RESP (`*1\r\n$4\r\nPING\r\n`), the admission more.
            kind = "http" if peer == "gateway" else ("PING" if length <= 14 else "admission replayed")
            step = {"start": when, "cpu": cpu, "kind": kind, "marks": []}
        elif step is not None and nr in WRITES and role:
            step["marks"].append((when, role, "write", peer, cpu))
    elif name == "raw_syscalls:sys_exit":
        done = EXIT.match(rest)
        if not done or tid not in calls:
            continue
        nr, fd, _ = calls.pop(tid)
        if step is not None and role and nr in READS and int(done.group(2)) > 0:
            step["marks"].append((when, role, "read", peers.get((pid, fd)), cpu))
if step is not None:
    steps.append(step)


def first(marks, role, what, peer=None, after=0.0):
    return next((m for m in marks if m[0] >= after and m[1] == role and m[2] == what
                 and (peer is None or m[3] == peer)), None)


phases = collections.defaultdict(lambda: collections.defaultdict(list))
placement = collections.defaultdict(list)


def round_trip(table, marks, who, sent, peer):
    """The legs of one round trip to Redis that `who` began with the write `sent`."""
    got = first(marks, "redis", "read", after=sent[0])
    answered = first(marks, "redis", "write", after=sent[0])
    back = first(marks, who, "read", peer, answered[0]) if answered else None
    if not (got and answered and back):
        return None
    table["  sent -> Redis has read it"].append(got[0] - sent[0])
    table["  Redis read -> Redis writes"].append(answered[0] - got[0])
    table["  Redis writes -> reply read"].append(back[0] - answered[0])
    return got, back


for step in steps:
    marks, start = step["marks"], step["start"]
    if step["kind"] != "http":
        table = phases[step["kind"]]
        legs = round_trip(table, marks, "client", (start, "client", "write", "redis", step["cpu"]), "redis")
        if legs:
            table["round trip"].append(legs[1][0] - start)
            same = "same vCPU" if legs[0][4] == step["cpu"] else "other vCPU"
            placement[(step["kind"], same)].append(legs[1][0] - start)
        continue
    request = first(marks, "gateway", "read", "client")
    upstream = first(marks, "gateway", "write", "mock")
    answered = first(marks, "gateway", "write", "client")
    received = [m for m in marks if m[1] == "client" and m[2] == "read"]
    if not (request and upstream and answered and received):
        continue
    admission = next((m for m in marks if request[0] <= m[0] < upstream[0] and m[1] == "gateway"
                      and m[2] == "write" and m[3] == "redis"), None)
    table = phases["redis route" if admission else "local route"]
    table["total"].append(received[-1][0] - start)
    table["client sends -> gateway reads it"].append(request[0] - start)
    if admission:
        table["gateway reads -> admission sent"].append(admission[0] - request[0])
        legs = round_trip(table, marks, "gateway", admission, "redis")
        if legs is None:
            continue
        table["admission round trip"].append(legs[1][0] - admission[0])
        table["admission reply -> upstream write"].append(upstream[0] - legs[1][0])
        same = "same vCPU" if legs[0][4] == admission[4] else "other vCPU"
        placement[("admission", same)].append(legs[1][0] - admission[0])
    table["gateway reads -> upstream write"].append(upstream[0] - request[0])
    reply = first(marks, "gateway", "read", "mock", upstream[0])
    if reply:
        table["upstream write -> its reply read"].append(reply[0] - upstream[0])
        table["upstream reply -> answer written"].append(answered[0] - reply[0])
    table["answer written -> client has it"].append(received[-1][0] - answered[0])

print("p50 of each phase, us (traced: compare rows, not untraced runs)")
for kind in ("local route", "redis route", "PING", "admission replayed"):
    table = phases.get(kind)
    if not table:
        continue
    print(f"{kind} ({len(next(iter(table.values())))} steps)")
    for phase, values in table.items():
        print(f"  {phase:<40} {statistics.median(values):>7.1f}")
print("round trips to Redis by where Redis ran (same vCPU as the sender or the other):")
for (kind, where), values in sorted(placement.items()):
    print(f"  {kind:<20} {where:<11} {len(values):>6} steps  p50 {statistics.median(values):>7.1f}")
