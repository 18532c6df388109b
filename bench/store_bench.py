"""bench/store_bench.py - the store's scenarios of bench/run (issue 9):

  * the seed workload (/tasks) at 10,000 clients with [store] backend =
    sqlite against memory: the writer thread must keep its hands off the
    hot path (target: p99 within 2 %, zero errors);
  * queue throughput on one PostgreSQL: N trivial jobs submitted, claimed
    and completed, taskpoold (POST /jobs with wait = none, into the shared
    queue) against graphile-worker (addJob() and its runner) on the same
    cluster, in the same run.

Both run interleaved (A B A B ...), and each ratio is taken within a round
and then the median over the rounds, so that a busy minute of the machine
weighs on both sides alike.

bench/run imports this module; `bench/run --store` runs these scenarios
alone.  The PostgreSQL cluster is tests/system/pg_cluster.py's (a
throwaway one as user postgres, fsync off: the figures are the engines'
CPU cost, not the disk's).  graphile-worker comes from /opt/taskpoold-bench
(tools/install-deps --bench).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRCDIR, "tests", "system"))

QUEUE_JOBS = 5000
QUEUE_PRODUCERS = 16
QUEUE_WORKERS = 4


def conf_with_store(base_conf, tmpdir, name, store_lines):
    """A copy of the bench config with a [store] section added."""
    path = os.path.join(tmpdir, f"{name}.conf")
    with open(base_conf) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text + "\n[store]\n" + "\n".join(store_lines) + "\n"
                "\n[job noop]\nkind = sleep\nduration = 0\nresult = ok\n")
    return path


def seed_sqlite_vs_memory(ctx, rounds, conns=10000, seconds=12):
    """Rows for the seed workload at `conns` clients, memory and sqlite
    interleaved over `rounds` rounds; the sqlite row's ratio is the median
    of the per-round p99 ratios."""
    log, wrk, Server, binary = ctx["log"], ctx["wrk"], ctx["Server"], \
        ctx["binary"]
    tmp = tempfile.mkdtemp(prefix="bench-store.")
    try:
        confs = {
            "memory": conf_with_store(ctx["conf"], tmp, "memory",
                                      ["backend = memory"]),
            "sqlite": conf_with_store(ctx["conf"], tmp, "sqlite", [
                "backend = sqlite",
                f"path = {os.path.join(tmp, 'bench.db')}"]),
        }
        results = {k: [] for k in confs}
        for rnd in range(rounds):
            for name, conf in confs.items():
                log(f"-- seed /tasks, {conns} conns, store {name}, "
                    f"round {rnd + 1}/{rounds}")
                srv = Server(f"taskpoold-{name}",
                             lambda port, c=conf: [binary, "-c", c, "-l",
                                                   f"127.0.0.1:{port}"])
                with srv:
                    wrk(srv, "/tasks", 64, 2)
                    results[name].append(wrk(srv, "/tasks", conns,
                                             seconds))
        ratios = [s["p99_us"] / m["p99_us"]
                  for m, s in zip(results["memory"], results["sqlite"])]
        rows = []
        for name, runs in results.items():
            row = {k: statistics.median(r[k] for r in runs) for k in
                   ("rps", "p50_us", "p99_us", "max_us", "errors",
                    "rss_kib")}
            row["rps_spread"] = (min(r["rps"] for r in runs),
                                 max(r["rps"] for r in runs))
            row["scenario"] = f"seed /tasks, {conns} conns, by store"
            row["server"] = f"taskpoold {name}"
            rows.append(row)
        rows[1]["ratio"] = (f"p99 {100 * (statistics.median(ratios) - 1):+.1f}"
                            f" % vs memory (rounds {', '.join(f'{100 * (r - 1):+.1f}' for r in ratios)})")
        return rows, statistics.median(ratios)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def node_queue(args):
    out = subprocess.run(["node", os.path.join(HERE, "queue.mjs"), *args],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"queue.mjs {args[0]} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def queue_vs_graphile(ctx, rounds):
    """Rows for queue throughput: taskpoold's shared queue and
    graphile-worker on one throwaway PostgreSQL, interleaved."""
    import pg_cluster
    log, Server, binary = ctx["log"], ctx["Server"], ctx["binary"]
    if not os.path.isdir("/opt/taskpoold-bench/node_modules/"
                         "graphile-worker"):
        raise RuntimeError("graphile-worker is not installed "
                           "(tools/install-deps --bench)")
    tmp = tempfile.mkdtemp(prefix="bench-queue.")
    pg = pg_cluster.require()
    try:
        with pg:
            pg.psql("CREATE DATABASE graphile OWNER taskpoold")
            gw_url = pg.url.rsplit("/", 1)[0] + "/graphile"
            conf = conf_with_store(ctx["conf"], tmp, "pg", [
                "backend = postgresql", f"url = {pg.url}"])
            with open(conf) as f:
                text = f.read()
            with open(conf, "w") as f:     # the bench config's [pool]
                f.write(text.replace("\nworkers = 2\n",
                                     f"\nworkers = {QUEUE_WORKERS}\n", 1))
            results = {"taskpoold": [], "graphile-worker": []}
            for rnd in range(rounds):
                log(f"-- queue, {QUEUE_JOBS} jobs: taskpoold, round "
                    f"{rnd + 1}/{rounds}")
                srv = Server("taskpoold-pg",
                             lambda port: [binary, "-c", conf, "-l",
                                           f"127.0.0.1:{port}"])
                with srv:
                    results["taskpoold"].append(node_queue([
                        "taskpoold", f"http://127.0.0.1:{srv.port}",
                        str(QUEUE_JOBS), str(QUEUE_PRODUCERS), "noop"]))
                log(f"-- queue, {QUEUE_JOBS} jobs: graphile-worker, round "
                    f"{rnd + 1}/{rounds}")
                results["graphile-worker"].append(node_queue([
                    "graphile", gw_url, str(QUEUE_JOBS),
                    str(QUEUE_PRODUCERS), str(QUEUE_WORKERS)]))
        ratios = [t["completed_per_s"] / g["completed_per_s"] for t, g in
                  zip(results["taskpoold"], results["graphile-worker"])]
        rows = []
        for name, runs in results.items():
            rows.append({
                "scenario": f"queue {QUEUE_JOBS} jobs, "
                            f"{QUEUE_PRODUCERS} producers, "
                            f"{QUEUE_WORKERS} workers",
                "server": name,
                "na": (f"{statistics.median(r['submitted_per_s'] for r in runs):.0f}"
                       f" submitted/s, "
                       f"{statistics.median(r['completed_per_s'] for r in runs):.0f}"
                       f" completed/s (min "
                       f"{min(r['completed_per_s'] for r in runs):.0f}, max "
                       f"{max(r['completed_per_s'] for r in runs):.0f})"),
            })
        rows[0]["na"] += (f"; {statistics.median(ratios):.2f}x "
                          "graphile-worker")
        return rows, statistics.median(ratios)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
