"""bench/benchlib.py - the machinery of bench/run: the servers under test,
building them, the config they run with, one wrk run, and the interleaved
rounds every scenario is measured in.

Interleaving: in each round every server of a scenario is started fresh,
warmed up and measured once; the order rotates by one each round
(A B C, B C A, C A B, ...), so that no server always runs right after the
same peer (whose TIME_WAIT sockets, exiting workers or detached jobs
would otherwise always land on the same neighbour), while the servers of
one round still run within the same minute or two.  Ratios are then taken
within a round and their median reported (ratio_stats), so that a busy
minute of the machine weighs on both sides alike.
"""
import functools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"     # Debian's, where python3-fastapi lives
CONF = os.path.join(HERE, "taskpoold.conf")
# bench/taskpoold.conf's CPU-bound part: from this line to the end; its
# library is the placeholder, filled in by bench_conf().
CPU_BEGIN = "# ---- CPU-bound"
CPU_SO = "@COUNT_PRIMES_SO@"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"nothing listens on port {port}")


def rss_kib(pid):
    """VmRSS of pid and of its children (uvicorn --workers), in KiB."""
    total = 0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def bench_conf(tmpdir, so, extra="", name="taskpoold.conf"):
    """Writes bench/taskpoold.conf into tmpdir with the count_primes
    library `so` filled in (an absolute path), or, with `so` None, without
    its CPU-bound part; `extra` is appended.  Returns the new file's path."""
    with open(CONF) as f:
        text = f.read()
    if so:
        text = text.replace(CPU_SO, so)
    else:
        text = text[:text.index(CPU_BEGIN)]
    path = os.path.join(tmpdir, name)
    with open(path, "w") as f:
        f.write(text + extra)
    return path


# ---- servers -----------------------------------------------------------------

class Server:
    """One server under test; each `with` starts a fresh process."""

    def __init__(self, name, argv_for_port, env=None, settle=0.0):
        self.name = name
        self.argv_for_port = argv_for_port
        self.env = env
        self.settle = settle
        self.proc = None
        self.port = None
        self.na = None

    def start(self):
        self.port = free_port()
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(self.argv_for_port(self.port),
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        wait_listening(self.port, self.proc)
        time.sleep(self.settle)     # uvicorn's workers come up after the socket
        return self

    def rss(self):
        return rss_kib(self.proc.pid)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Missing:
    """A peer that cannot run here: its rows say why."""

    def __init__(self, name, why):
        self.name = name
        self.na = why


def taskpoold_server(binary, conf):
    return Server("taskpoold",
                  lambda port: [binary, "-c", conf,
                                "-l", f"127.0.0.1:{port}"])


@functools.lru_cache(maxsize=None)
def have_fastapi():
    return subprocess.run(
        [PYTHON, "-c", "import fastapi, uvicorn, uvloop, httptools"],
        capture_output=True).returncode == 0


def uvicorn_server(workers):
    name = f"uvicorn-{workers}w"
    if not have_fastapi():
        return Missing(name, "n/a: not installed")

    def argv(port):
        a = [PYTHON, "-m", "uvicorn", "--app-dir", HERE, "fastapi_app:app",
             "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
             "--http", "httptools", "--no-access-log",
             "--log-level", "warning", "--backlog", "16384"]
        if workers > 1:
            a += ["--workers", str(workers)]
        return a
    return Server(name, argv, settle=0.3)


def mhd_hello_server(binary):
    return Server("mhd_hello", lambda port: [binary, str(port), "2"])


def go_server(binary):
    if isinstance(binary, Missing):
        return binary
    return Server("go", lambda port: [binary, str(port)])


def node_server():
    node = shutil.which("node")
    if node is None:
        return Missing("node", "n/a: not installed")
    script = os.path.join(HERE, "peers", "node", "server.mjs")
    return Server("node", lambda port: [node, script, str(port)])


# ---- building --------------------------------------------------------------------

def bench_builddir():
    # Under make check (distcheck's source tree is read-only) build aside.
    bdir = os.environ.get("BENCH_BUILDDIR") or os.path.join(HERE, "build")
    os.makedirs(bdir, exist_ok=True)
    return bdir


def build_taskpoold(bdir):
    """The taskpoold binary and the build tree it is in (None if given
    through $TASKPOOLD and not in one)."""
    binary = os.environ.get("TASKPOOLD")
    if binary:
        tree = os.path.dirname(os.path.dirname(os.path.abspath(binary)))
        return binary, (tree if os.path.exists(
            os.path.join(tree, "Makefile")) else None)
    if os.path.exists(os.path.join(SRCDIR, "config.status")):
        # Configured in the source tree: build there (it is -O2).
        subprocess.run(["make", "-C", SRCDIR, "src/taskpoold"],
                       check=True, stdout=subprocess.DEVNULL)
        return os.path.join(SRCDIR, "src", "taskpoold"), SRCDIR
    tdir = os.path.join(bdir, "taskpoold")
    os.makedirs(tdir, exist_ok=True)
    if not os.path.exists(os.path.join(tdir, "Makefile")):
        if not os.path.exists(os.path.join(SRCDIR, "configure")):
            subprocess.run([os.path.join(SRCDIR, "bootstrap")],
                           check=True, stdout=subprocess.DEVNULL)
        subprocess.run([os.path.join(SRCDIR, "configure"), "-q",
                        "CFLAGS=-O2 -g -DNDEBUG"], cwd=tdir,
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["make", "-j", str(os.cpu_count() or 2),
                    "src/taskpoold"], cwd=tdir, check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(tdir, "src", "taskpoold"), tdir


def build_mhd_hello(bdir):
    hello = os.path.join(bdir, "mhd_hello")
    cflags = subprocess.run(["pkg-config", "--cflags", "--libs",
                             "libmicrohttpd"], check=True,
                            capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-O2", "-o", hello,
                    os.path.join(HERE, "mhd_hello.c")] + cflags +
                   ["-pthread"], check=True)
    return hello


def find_count_primes(tree):
    """The absolute path of count_primes.so (examples/plugins/count_primes.c
    as the tests build it), built in the build tree if need be; None if
    there is none.  $COUNT_PRIMES_SO, then make check's plugin dir."""
    for path in (os.environ.get("COUNT_PRIMES_SO"),
                 os.path.join(os.environ.get("TASKPOOLD_PLUGINDIR", "/-"),
                              "count_primes.so")):
        if path and os.path.exists(path):
            return os.path.abspath(path)
    if tree is None:
        return None
    target = "tests/plugins/count_primes.so"
    r = subprocess.run(["make", "-C", tree, target],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = os.path.join(tree, target)
    return os.path.abspath(path) if r.returncode == 0 else None


def build_go_peer(bdir):
    """bench/peers/go built into bdir/peer_go with no download (the
    standard library only), or a Missing."""
    go = shutil.which("go")
    if go is None:
        return Missing("go", "n/a: not installed")
    out = os.path.join(bdir, "peer_go")
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off",
               GOCACHE=os.path.join(bdir, "go-cache"))
    r = subprocess.run([go, "build", "-o", out, "."],
                       cwd=os.path.join(HERE, "peers", "go"), env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        log(f"bench/run: the Go peer did not build:\n{r.stderr}")
        return Missing("go", "n/a: build failed")
    return out


# ---- load ---------------------------------------------------------------------------

def wrk(server, path, connections, seconds, timeout="10s"):
    """One bounded wrk run; returns a dict of figures."""
    threads = min(2, connections)
    url = f"http://127.0.0.1:{server.port}{path}"
    cmd = ["wrk", "-t", str(threads), "-c", str(connections),
           "-d", f"{seconds}s", "--timeout", timeout,
           "-s", os.path.join(HERE, "report.lua"), url]
    peak = 0
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    while proc.poll() is None:
        peak = max(peak, server.rss())
        time.sleep(0.25)
    out = proc.stdout.read()
    m = re.search(r"^BENCHJSON (.*)$", out, re.M)
    if proc.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed: {' '.join(cmd)}\n{out}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = sum(r[k] for k in
                      ("connect", "read", "write", "status", "timeout"))
    r["rss_kib"] = peak
    return r


# ---- rounds -------------------------------------------------------------------------

def interleave(servers, rounds, one, label):
    """Calls one(server, round) for every server that can run, in `rounds`
    rounds, the order rotating by one each round; returns
    {name: [result of each round]}."""
    live = [s for s in servers if s.na is None]
    results = {s.name: [] for s in live}
    for rnd in range(rounds):
        k = rnd % len(live) if live else 0
        for srv in live[k:] + live[:k]:
            log(f"-- {label}: {srv.name}, round {rnd + 1}/{rounds}")
            results[srv.name].append(one(srv, rnd))
    return results


def stats(values):
    """(median, min, max) of a list of numbers."""
    return statistics.median(values), min(values), max(values)


LATENCIES = ("p50_us", "p99_us", "max_us")


def answered(runs):
    """The runs in which wrk saw an answer: a run without one has no
    latency (wrk says 0), so it counts in requests/s only."""
    return [r for r in runs if r.get("requests", 1)] or runs


def summary(runs, keys=("rps", "p50_us", "p99_us", "max_us", "errors",
                        "rss_kib")):
    """Median and (min, max) of each figure over the rounds' runs:
    {key: (median, min, max)}."""
    return {k: stats([r[k] for r in (answered(runs) if k in LATENCIES
                                     else runs)]) for k in keys}


def ratio_stats(a_runs, b_runs, key):
    """a/b of `key` taken within each round, then (median, min, max);
    rounds where either side saw no answer are left out."""
    vals = [a[key] / b[key] for a, b in zip(a_runs, b_runs)
            if b[key] and a.get("requests", 1) and b.get("requests", 1)]
    return stats(vals) if vals else None
