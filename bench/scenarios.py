"""bench/scenarios.py - the scenarios of bench/run (issue 11), each run
interleaved over the suite's rounds (benchlib.interleave).

Each scenario function takes the Suite, appends its rows to suite.rows and
keeps its figures in suite.found for the targets; each has an estimate of
its duration, in seconds, beside it in ESTIMATE.
"""
import asyncio
import os
import re
import shutil
import subprocess
import time

from benchlib import (HERE, Missing, Server, interleave, log,
                      ratio_stats, stats, summary, taskpoold_server, wrk)

SEED_CONNS = (100, 1000, 5000, 10000)
ZERO_CONNS = (64, 256)
WAITING = 10000
WARM_SECS = 1
CPU_CONNS = 8


class Suite:
    """What the scenarios share: the servers' makers, the rounds, the
    durations, and what they found."""

    def __init__(self, rounds, seconds, binary, conf, so, hello, go, tmp):
        self.rounds = rounds
        self.override = seconds      # every measured wrk run, if set
        self.binary, self.conf, self.so = binary, conf, so
        self.hello, self.go, self.tmp = hello, go, tmp
        self.rows, self.found, self.notes = [], {}, []
        self.seed_points = {}

    def secs(self, default):
        return self.override or default


def fmt_ratio(st, digits=2):
    if st is None:
        return "n/a (no figure in any round)"
    med, lo, hi = st
    return f"{med:.{digits}f}x ({lo:.{digits}f}-{hi:.{digits}f})"


def wrk_scenario(suite, name, path, conns, secs, servers, key):
    """Every server of `servers` (makers) on path at conns connections,
    interleaved; rows with, on each peer's, taskpoold's per-round ratio of
    `key` against it.  Returns {server: [runs]}."""
    made = [m() for m in servers]

    def one(srv, rnd):
        with srv:
            # On the scenario's own path: a warm-up on /tasks-zero would
            # leave taskpoold ~100,000 records to keep for `retain`, and
            # that peak in the RSS of every scenario.
            wrk(srv, path, min(conns, 64), WARM_SECS)
            return wrk(srv, path, conns, secs)
    res = interleave(made, suite.rounds, one, name)
    label = {"rps": "tp req/s", "p99_us": "tp p99"}[key]
    for srv in made:
        row = {"scenario": name, "server": srv.name}
        if srv.na:
            row["na"] = srv.na
        else:
            row.update(s=summary(res[srv.name]), n=suite.rounds)
            if srv.name != "taskpoold" and "taskpoold" in res:
                row["ratio"] = (f"{label} " + fmt_ratio(ratio_stats(
                    res["taskpoold"], res[srv.name], key)))
            empty = sum(1 for r in res[srv.name] if r["requests"] == 0)
            if empty:
                row["ratio"] = (row.get("ratio", "") + "; rounds with no "
                                f"answer in the run: {empty}").lstrip("; ")
        suite.rows.append(row)
    return res


def seed(suite, m):
    for conns in SEED_CONNS:
        servers = [m.tp, m.go, m.node, m.uv1] + ([m.uv2] if conns == 5000
                                                 else [])
        # 8 s at 5,000 and 10,000: uvicorn's first answers there take
        # 3-7 s, and wrk counts only the requests answered within the run.
        res = wrk_scenario(suite, f"seed /tasks, {conns} conns", "/tasks",
                           conns, suite.secs(6 if conns < 5000 else 8),
                           servers, "p99_us")
        suite.found[("seed", conns)] = res
        for name, runs in res.items():
            if name == "uvicorn-2w":
                continue            # at one concurrency only: not plotted
            s = summary(runs)
            suite.seed_points.setdefault(name, []).append(
                (conns, s["p50_us"][0], s["p99_us"][0]))


def zero(suite, m):
    for conns in ZERO_CONNS:
        suite.found[("zero", conns)] = wrk_scenario(
            suite, f"zero /tasks-zero, {conns} conns", "/tasks-zero", conns,
            suite.secs(5), [m.tp, m.mhd, m.go, m.node, m.uv1, m.uv2], "rps")


def run_tasks(suite, m):
    suite.found["run-tasks"] = wrk_scenario(
        suite, "first /run-tasks, 1000 conns", "/run-tasks", 1000,
        suite.secs(6), [m.tp, m.go, m.node, m.uv1], "p99_us")


def cpu(suite, m):
    """Two count_primes jobs a request at 8 connections, against each
    server's capacity cores / (2 t1), t1 its single-job time at one
    connection on /cpu-one, calibrated in the same round."""
    name = f"cpu 2 x count_primes, {CPU_CONNS} conns"
    made = [m.tp_cpu(), m.go(), m.node(), m.uv1()]
    cores = os.cpu_count() or 1

    def one(srv, rnd):
        with srv:
            t1 = wrk(srv, "/cpu-one", 1, suite.secs(2))["p50_us"] / 1e6
            r = wrk(srv, "/tasks-cpu", CPU_CONNS, suite.secs(6))
        r["t1_ms"] = t1 * 1000
        r["capacity"] = cores / (2 * t1)
        r["pct"] = 100 * r["rps"] / r["capacity"]
        return r
    res = interleave(made, suite.rounds, one, name)
    for srv in made:
        row = {"scenario": name, "server": srv.name}
        if srv.na:
            row["na"] = srv.na
        else:
            runs = res[srv.name]
            row.update(s=summary(runs), n=suite.rounds)
            t1, pct = stats([r["t1_ms"] for r in runs]), \
                stats([r["pct"] for r in runs])
            row["ratio"] = (f"t1 {t1[0]:.1f} ms; {pct[0]:.0f} % of "
                            f"capacity ({pct[1]:.0f}-{pct[2]:.0f})")
            if srv.name != "taskpoold" and "taskpoold" in res:
                row["ratio"] += "; tp req/s " + fmt_ratio(ratio_stats(
                    res["taskpoold"], runs, "rps"))
        suite.rows.append(row)
    suite.found["cpu"] = res


# ---- memory ----------------------------------------------------------------------

async def hold_waiting(port, path, n, server):
    """Opens n connections, then sends one request on each at once; returns
    the peak RSS while they wait (sampled for 1 s after the last request:
    /tasks answers after 2 s) and how many were answered with 200."""
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    sem = asyncio.Semaphore(500)
    conns = []

    async def connect():
        async with sem:
            conns.append(await asyncio.open_connection("127.0.0.1", port))
    await asyncio.gather(*(connect() for _ in range(n)))
    t0 = time.monotonic()
    for _, w in conns:
        w.write(req)
    await asyncio.gather(*(w.drain() for _, w in conns))
    sent = time.monotonic() - t0
    peak = 0
    for _ in range(10):
        await asyncio.sleep(0.1)
        peak = max(peak, server.rss())

    async def answer(r):
        try:
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
            return head.startswith(b"HTTP/1.1 200")
        except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
            return False
    ok = sum(await asyncio.gather(*(answer(r) for r, _ in conns)))
    for _, w in conns:
        w.close()
    return peak, ok, sent


def waiting(suite, m):
    """RSS at WAITING clients waiting on /tasks, against the idle RSS."""
    made = [m.tp(), m.go(), m.node()]

    def one(srv, rnd):
        with srv:
            time.sleep(0.3)
            idle = srv.rss()
            peak, ok, sent = asyncio.run(
                hold_waiting(srv.port, "/tasks", WAITING, srv))
        return {"idle_kib": idle, "waiting_kib": peak, "ok": ok,
                "sent_s": sent, "per_kib": (peak - idle) / WAITING}
    res = interleave(made, suite.rounds, one, f"{WAITING} waiting clients")
    for srv in made:
        if srv.na:
            suite.notes.append(f"RSS at {WAITING} waiting clients, "
                               f"{srv.name}: {srv.na}")
            continue
        runs = res[srv.name]
        idle, wait, per = (stats([r[k] / (1 if k == "per_kib" else 1024)
                                  for r in runs])
                           for k in ("idle_kib", "waiting_kib", "per_kib"))
        bad = sum(WAITING - r["ok"] for r in runs)
        suite.notes.append(
            f"RSS at {WAITING} waiting clients, {srv.name}: idle "
            f"{idle[0]:.1f} MiB, waiting {wait[0]:.1f} MiB "
            f"({wait[1]:.1f}-{wait[2]:.1f}), {per[0]:.2f} KiB per waiting "
            f"client ({per[1]:.2f}-{per[2]:.2f})"
            + (f"; {bad} requests not answered 200" if bad else ""))
    suite.found["waiting"] = res


def storm(suite, m, connections=1000):
    """taskpoold's RSS before a /run-tasks storm and after it settles, in
    half the rounds (each takes some 35 s, mostly waiting for expiry)."""
    rounds = max(1, (suite.rounds + 1) // 2)
    secs = suite.secs(8)

    def one(srv, rnd):
        with srv:
            wrk(srv, "/run-tasks", 50, 1)      # touch the paths once
            time.sleep(12)                     # its detached jobs expire
            before = srv.rss()
            r = wrk(srv, "/run-tasks", connections, secs)
            # Detached jobs end 5 s after the last request; records expire
            # `retain` (5 s) later; expiry runs every second.
            time.sleep(5 + 5 + 3)
            after = srv.rss()
        return {"before": before, "peak": r["rss_kib"], "after": after,
                "ratio": after / before}
    res = interleave([m.tp()], rounds, one, "run-tasks storm memory")
    runs = res["taskpoold"]
    b, p, a = (stats([r[k] / 1024 for r in runs])
               for k in ("before", "peak", "after"))
    g = stats([100 * (r["ratio"] - 1) for r in runs])
    suite.notes.append(
        f"run-tasks storm ({connections} clients, {secs} s, {rounds} rounds):"
        f" taskpoold RSS {b[0]:.1f} MiB before, {p[0]:.1f} peak, "
        f"{a[0]:.1f} after: {g[0]:+.1f} % ({g[1]:+.1f} to {g[2]:+.1f})")
    suite.found["storm"] = g


def startup(suite, m):
    """Time from exec to accepting a connection, 4 starts a round."""
    made = [m.tp(), m.go(), m.node(), m.uv1()]

    def one(srv, rnd):
        times = []
        for _ in range(4):
            t0 = time.perf_counter()
            srv.start()
            times.append((time.perf_counter() - t0 - srv.settle) * 1000)
            srv.stop()
        return times
    res = interleave(made, suite.rounds, one, "start-up")
    for srv in made:
        if srv.na:
            continue
        t = stats(sum(res[srv.name], []))
        suite.notes.append(
            f"start-up to accepting, {srv.name}: median {t[0]:.1f} ms "
            f"(min {t[1]:.1f}, max {t[2]:.1f}, {4 * suite.rounds} starts)")
        suite.found[("startup", srv.name)] = t


def callgrind(suite, m):
    """bench/callgrind's instructions per zero-duration request (they do
    not depend on the load, so one measurement)."""
    if shutil.which("valgrind") is None:
        suite.notes.append("instructions per /tasks-zero: n/a, valgrind "
                           "is not installed")
        return
    out = subprocess.run([os.path.join(HERE, "callgrind"), suite.binary],
                         capture_output=True, text=True, timeout=900)
    hit = re.search(r"instructions per GET /tasks-zero: (\d+)", out.stdout)
    if hit is None:
        raise RuntimeError(f"bench/callgrind failed:\n{out.stderr}")
    suite.found["callgrind"] = int(hit.group(1))
    suite.notes.append(f"instructions per GET /tasks-zero (bench/callgrind):"
                       f" {int(hit.group(1)):,}")


def store(suite, m):
    """bench/store_bench.py's scenarios, interleaved over the rounds."""
    import store_bench
    ctx = {"log": log, "wrk": wrk, "Server": Server, "binary": suite.binary,
           "conf": suite.conf}
    queue_rows, queue_ratio = store_bench.queue_vs_graphile(ctx,
                                                            suite.rounds)
    seed_rows, sqlite_ratio = store_bench.seed_sqlite_vs_memory(
        ctx, suite.rounds)
    for r in seed_rows:
        keys = ("rps", "p50_us", "p99_us", "errors", "rss_kib")
        r.update(s={k: (r[k], r["rps_spread"][0] if k == "rps" else r[k],
                        r["rps_spread"][1] if k == "rps" else r[k])
                    for k in keys}, n=1)
    suite.rows.extend(seed_rows + queue_rows)
    suite.notes.append(
        f"store: seed p99 with sqlite {100 * (sqlite_ratio - 1):+.1f} % "
        f"against memory; queue throughput {queue_ratio:.2f}x "
        "graphile-worker (medians of per-round ratios)")


class Makers:
    """The servers' makers, each returning a fresh Server (or Missing)."""

    def __init__(self, suite, uvicorn_server, mhd_hello_server, go_server,
                 node_server):
        self.suite = suite
        self.tp = lambda: taskpoold_server(suite.binary, suite.conf)
        self.uv1 = lambda: uvicorn_server(1)
        self.uv2 = lambda: uvicorn_server(2)
        self.mhd = lambda: mhd_hello_server(suite.hello)
        self.go = lambda: go_server(suite.go)
        self.node = node_server

    def tp_cpu(self):
        if self.suite.so is None:
            return Missing("taskpoold", "n/a: no count_primes.so (configure "
                           "a build tree, or set COUNT_PRIMES_SO)")
        return self.tp()


# name: (function, estimated seconds for one round, fixed seconds).  A
# server run costs its wrk time, a 1 s warm-up and about 1 s to start and
# stop (uvicorn about 2 s).
SCENARIOS = {
    "seed": (seed, 2 * 4 * (6 + 2.6) + 2 * 4 * (8 + 3.2) + 8 + 3.5, 0),
    "zero": (zero, 2 * (6 * (5 + 2.3)), 0),
    "cpu": (cpu, 4 * (2 + 6 + 1.5), 0),
    "run-tasks": (run_tasks, 4 * (6 + 3), 0),
    "waiting": (waiting, 3 * 4.5, 0),
    "storm": (storm, 18, 0),
    "startup": (startup, 4 * 0.3 + 4 * 1.5, 0),
    "callgrind": (callgrind, 0, 5),
    "store": (store, 2 * 14 + 2 * 5, 10),
}


def estimate(names, rounds, seconds):
    """Seconds the scenarios should take: the table above, scaled when
    --seconds shortens the wrk runs."""
    total = 0
    for n in names:
        _, per_round, fixed = SCENARIOS[n]
        if seconds and n in ("seed", "zero", "cpu", "run-tasks"):
            per_round *= min(1.0, (seconds + 2.5) / 8)
        total += per_round * rounds + fixed
    return total
