"""Smoke test of bench/run: it builds its peer, starts the servers, runs one
tiny scenario and prints its table.  It asserts no speed: benchmarks are
run on demand (bench/run), not timed in make check."""
import os
import subprocess
import sys
import tempfile

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
ok = (proc.returncode == 0 and "| scenario" in proc.stdout
      and "taskpoold" in proc.stdout and "mhd_hello" in proc.stdout)
print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
sys.exit(0 if ok else 1)
