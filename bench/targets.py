"""bench/targets.py - issue 11's targets against what the scenarios of
bench/run found (scenarios.Suite.found): one (target, measured, verdict)
per target, the medians of the interleaved rounds with their spread.  A
target whose scenario did not run, or whose server could not, says so.
"""
from benchlib import ratio_stats, stats


def at_most(value, limit, fmt):
    if value <= limit:
        return "met"
    return f"missed by {fmt(value - limit)}"


def at_least(value, limit, fmt):
    if value >= limit:
        return "met"
    return f"missed by {fmt(limit - value)}"


def seed_target(found, conns):
    t = f"seed /tasks at {conns:,} clients: p99 <= 2.05 s, zero errors"
    runs = found.get(("seed", conns), {}).get("taskpoold")
    if not runs:
        return (t, "not measured", "")
    p99 = stats([r["p99_us"] / 1e6 for r in runs])
    err = stats([r["errors"] for r in runs])
    verdict = at_most(p99[0], 2.05, lambda d: f"{d * 1000:.0f} ms")
    if err[2] > 0:
        verdict = ("missed: errors" if verdict == "met"
                   else verdict + "; errors")
    return (t, f"p99 {p99[0]:.3f} s ({p99[1]:.3f}-{p99[2]:.3f}), errors "
               f"{err[0]:.0f} (max {err[2]:.0f})", verdict)


def zero_targets(found, conns):
    res = found.get(("zero", conns), {})
    out = []
    for peer, limit in (("mhd_hello", 0.8), ("go", 2.0)):
        t = f"zero-duration at {conns} conns: >= {limit:g}x {peer}"
        if "taskpoold" not in res or peer not in res:
            out.append((t, f"n/a: no {peer}" if res else "not measured",
                        ""))
            continue
        r = ratio_stats(res["taskpoold"], res[peer], "rps")
        out.append((t, f"{r[0]:.2f}x ({r[1]:.2f}-{r[2]:.2f})",
                    at_least(r[0], limit, lambda d: f"{d:.2f}x")))
    return out


def waiting_targets(found):
    res = found.get("waiting", {})
    t1 = "RSS at 10,000 waiting clients <= 1/3 of Go's"
    t2 = "RSS per waiting client <= 6 KiB"
    if "taskpoold" not in res:
        return [(t1, "not measured", ""), (t2, "not measured", "")]
    out = []
    if "go" in res:
        r = ratio_stats(res["taskpoold"], res["go"], "waiting_kib")
        out.append((t1, f"{r[0]:.2f}x Go's ({r[1]:.2f}-{r[2]:.2f})",
                    at_most(r[0], 1 / 3, lambda d: f"{d:.2f}x")))
    else:
        out.append((t1, "n/a: no Go", ""))
    per = stats([r["per_kib"] for r in res["taskpoold"]])
    out.append((t2, f"{per[0]:.2f} KiB ({per[1]:.2f}-{per[2]:.2f})",
                at_most(per[0], 6, lambda d: f"{d:.2f} KiB")))
    return out


def other_targets(found):
    out = []
    t = "/run-tasks at 1,000 clients: p99 <= 1.02 s"
    runs = found.get("run-tasks", {}).get("taskpoold")
    if runs:
        p99 = stats([r["p99_us"] / 1e6 for r in runs])
        out.append((t, f"p99 {p99[0]:.3f} s ({p99[1]:.3f}-{p99[2]:.3f})",
                    at_most(p99[0], 1.02, lambda d: f"{d * 1000:.0f} ms")))
    else:
        out.append((t, "not measured", ""))
    t = "RSS after the /run-tasks storm within 10 % of before"
    g = found.get("storm")
    out.append((t, f"{g[0]:+.1f} % ({g[1]:+.1f} to {g[2]:+.1f})",
                at_most(g[0], 10, lambda d: f"{d:.1f} points"))
               if g else (t, "not measured", ""))
    t = "CPU, 2 x count_primes, 8 conns: >= 90 % of the cores' capacity"
    runs = found.get("cpu", {}).get("taskpoold")
    if runs:
        pct = stats([r["pct"] for r in runs])
        out.append((t, f"{pct[0]:.0f} % ({pct[1]:.0f}-{pct[2]:.0f})",
                    at_least(pct[0], 90, lambda d: f"{d:.0f} points")))
    elif "cpu" in found:
        out.append((t, "n/a: no count_primes.so", ""))
    else:
        out.append((t, "not measured", ""))
    t = "<= 20,000 instructions per zero-duration request (callgrind)"
    ir = found.get("callgrind")
    out.append((t, f"{ir:,}", at_most(ir, 20000, lambda d: f"{d:,}"))
               if ir else (t, "not measured", ""))
    return out


def targets(suite):
    f = suite.found
    return ([seed_target(f, 5000), seed_target(f, 10000)]
            + zero_targets(f, 64) + zero_targets(f, 256)
            + waiting_targets(f) + other_targets(f))
