"""Smoke test of bench/run: it builds its peer, starts the servers, runs one
tiny scenario and prints its table.  It asserts no speed: benchmarks are
run on demand (bench/run), not timed in make check.  It does check that the
table's rows carry figures, in the format bench/run's table() writes them:

| scenario      | server    | req/s (min-max)     | p50 ms | p99 ms | errors | RSS MiB | ratio     |
| zero, 4 conns | taskpoold | 21000 (20000-22000) | 0.2    | 0.9    | 0      | 5.1     | 0.95x mhd |
"""
import os
import re
import subprocess
import sys
import tempfile

HEAD = ["scenario", "server", "req/s (min-max)", "p50 ms", "p99 ms",
        "errors", "RSS MiB", "ratio"]
RPS_RE = re.compile(r"^(\d+) \((\d+)-(\d+)\)$")
# fmt_ms(): "0.3" below 100 ms, "1.234 s" from there on.
MS_RE = re.compile(r"^\d+\.\d$|^\d+\.\d{3} s$")
ERRORS_RE = re.compile(r"^\d+$")
RSS_RE = re.compile(r"^\d+\.\d$")
RATIO_RE = re.compile(r"^\d+\.\d\dx mhd$")


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def table_problems(stdout):
    """What is wrong with the table in stdout: a list, empty if nothing."""
    lines = [l for l in stdout.splitlines() if l.startswith("|")]
    if len(lines) < 2 or cells(lines[0]) != HEAD:
        return ["no table with the header %r" % HEAD]
    rows = {}
    for line in lines[1:]:
        c = cells(line)
        if all(set(x) <= {"-"} for x in c):
            continue                    # the rule under the header
        if len(c) != len(HEAD):
            return ["row %r has %d cells, not %d" % (line, len(c), len(HEAD))]
        rows[c[1]] = c
    problems = []
    if sorted(rows) != ["mhd_hello", "taskpoold"]:
        problems.append("rows for %r, not taskpoold and mhd_hello"
                        % sorted(rows))
    for server, c in sorted(rows.items()):
        m = RPS_RE.match(c[2])
        if not m:
            problems.append("%s: req/s %r is not 'N (MIN-MAX)'" % (server, c[2]))
        elif not (0 < int(m.group(2)) <= int(m.group(1)) <= int(m.group(3))):
            problems.append("%s: req/s %r is not a positive median within "
                            "its spread" % (server, c[2]))
        for name, value in (("p50", c[3]), ("p99", c[4])):
            if not MS_RE.match(value):
                problems.append("%s: %s %r is not a latency" % (server, name,
                                                                value))
        if not ERRORS_RE.match(c[5]):
            problems.append("%s: errors %r is not a count" % (server, c[5]))
        if not RSS_RE.match(c[6]) or float(c[6]) <= 0:
            problems.append("%s: RSS %r is not a size in MiB" % (server, c[6]))
    if "taskpoold" in rows and not RATIO_RE.match(rows["taskpoold"][7]):
        problems.append("taskpoold: ratio %r is not 'N.NNx mhd'"
                        % rows["taskpoold"][7])
    return problems


srcdir = os.environ.get("TASKPOOLD_SRCDIR", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."))
with tempfile.TemporaryDirectory() as tmp:
    env = dict(os.environ, BENCH_BUILDDIR=tmp)
    proc = subprocess.run([sys.executable, os.path.join(srcdir, "bench", "run"),
                           "--quick"], env=env, capture_output=True,
                          text=True, timeout=300)
print(proc.stdout)
print(proc.stderr, file=sys.stderr)
if proc.returncode == 77:
    sys.exit(77)
problems = table_problems(proc.stdout)
if proc.returncode != 0:
    problems.insert(0, "bench/run --quick exited with %d" % proc.returncode)
for p in problems:
    print("FAIL: " + p)
print("0 passed, 1 failed" if problems else "1 passed, 0 failed")
sys.exit(1 if problems else 0)
