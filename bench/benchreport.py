"""bench/benchreport.py - bench/run's output: the table, the targets, the
versions of everything measured, the latency plot, and the generated block
of docs/benchmarks.md.

A row of the table is a dict: scenario, server, and either `na` (why it
has no figures) or `s`, benchlib.summary() of its rounds, with `n` the
number of rounds; `ratio` is free text.  With more than one round each
cell is the median and, in brackets, the lowest and highest round.
"""
import os
import platform
import subprocess
import tempfile
import time

from benchlib import PYTHON

HEAD = ["scenario", "server", "req/s (min-max)", "p50 ms", "p99 ms",
        "errors", "RSS MiB", "ratio"]


def fmt_ms(us):
    return f"{us / 1000:.1f}" if us < 100000 else f"{us / 1e6:.3f} s"


def cell(st, n, fmt, spread_fmt=None):
    med, lo, hi = st
    text = fmt(med)
    if n > 1 and lo != hi:
        f = spread_fmt(med) if spread_fmt else fmt
        text += f" ({f(lo)}-{f(hi)})"
    return text


def ms_spread(med):
    """The spread of a latency, in the unit of its median (fmt_ms)."""
    if med < 100000:
        return lambda us: f"{us / 1000:.1f}"
    return lambda us: f"{us / 1e6:.3f}"


def row_cells(r):
    if r.get("na"):
        return [r["scenario"], r["server"], "n/a", "", "", "", "", r["na"]]
    s, n = r["s"], r.get("n", 1)
    med, lo, hi = s["rps"]
    return [r["scenario"], r["server"], f"{med:.0f} ({lo:.0f}-{hi:.0f})",
            cell(s["p50_us"], n, fmt_ms, ms_spread),
            cell(s["p99_us"], n, fmt_ms, ms_spread),
            cell(s["errors"], n, lambda v: f"{v:.0f}"),
            cell(s["rss_kib"], n, lambda v: f"{v / 1024:.1f}"),
            r.get("ratio", "")]


def table(rows, head=HEAD, cells=row_cells):
    lines = [head] + [cells(r) for r in rows]
    widths = [max(len(str(l[i])) for l in lines) for i in range(len(head))]
    out = []
    for j, l in enumerate(lines):
        out.append("| " + " | ".join(str(c).ljust(w) for c, w in
                                     zip(l, widths)) + " |")
        if j == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def targets_table(targets):
    """targets: [(target, measured, verdict)]."""
    return table([list(t) for t in targets],
                 ["target (issue 11)", "measured (median, min-max)", ""],
                 lambda r: r)


def versions(binary):
    def cmd(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True,
                                  timeout=20).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    py = subprocess.run([PYTHON, "-c",
                         "import fastapi, uvicorn, uvloop, platform;"
                         "print(platform.python_version(), fastapi.__version__,"
                         " uvicorn.__version__, uvloop.__version__)"],
                        capture_output=True, text=True).stdout.split()
    py += ["?"] * (4 - len(py))
    wrkv = cmd("wrk", "-v").split()
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "machine": f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, "
                   f"Linux {platform.release()}",
        "taskpoold": cmd(binary, "-V"),
        "libmicrohttpd": cmd("pkg-config", "--modversion", "libmicrohttpd"),
        "go": cmd("go", "version"),
        "node": cmd("node", "--version"),
        "python": py[0], "fastapi": py[1], "uvicorn": py[2],
        "uvloop": py[3],
        "wrk": " ".join(wrkv[:2]) if wrkv else "?",
    }


def plot(points, png):
    """Latency (p50, p99) against concurrency for the seed, per server;
    points: {server: [(conns, p50_us, p99_us)]}."""
    with tempfile.TemporaryDirectory() as tmp:
        plots = []
        for i, (name, pts) in enumerate(points.items()):
            if not pts:
                continue
            path = os.path.join(tmp, f"{name}.dat")
            with open(path, "w") as f:
                for c, p50, p99 in sorted(pts):
                    f.write(f"{c} {p50 / 1e6:.4f} {p99 / 1e6:.4f}\n")
            plots.append(f"'{path}' using 1:2 with linespoints "
                         f"linecolor {i + 1} title '{name} p50'")
            plots.append(f"'{path}' using 1:3 with linespoints dashtype 2 "
                         f"linecolor {i + 1} title '{name} p99'")
        script = f"""
set terminal pngcairo size 900,560
set output '{png}'
set title 'GET /tasks (1 s + 2 s jobs, gathered): latency against concurrency (medians of the rounds)'
set xlabel 'concurrent clients'
set ylabel 'latency (s)'
set logscale x
set grid
set key top left
set yrange [1.8:*]
plot {', '.join(plots)}
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)


def write_report(path, command, rounds, v, text, notes, targets):
    """Rewrites the measured part of docs/benchmarks.md, between markers,
    so that hand-written analysis around it survives a new run."""
    begin, end = "<!-- bench/run: begin -->", "<!-- bench/run: end -->"
    body = "\n".join([
        begin,
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
        f"`{command}`: every scenario ran its servers interleaved over "
        f"{rounds} rounds, each server started fresh in each round; each "
        "figure is the median of the rounds and (min-max) the lowest and "
        "highest round; ratios are taken within each round, then the median.",
        "",
        "| | |", "|---|---|",
        *(f"| {k} | {val} |" for k, val in v.items()),
        "",
        text,
        "",
        "```",
        notes,
        "```",
        "",
        "### Targets (issue 11), from the run above",
        "",
        targets,
        "",
        "![latency against concurrency](latency.png)",
        end,
    ])
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if begin in old and end in old:
        new = old[:old.index(begin)] + body + old[old.index(end) + len(end):]
    else:
        new = "# Benchmarks\n\n" + body + "\n"
    with open(path, "w") as f:
        f.write(new)
