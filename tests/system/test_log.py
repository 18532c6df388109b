"""taskpoold system test: the log never holds up the jobs.

Every finished job logs a line, and sleep jobs finish on the timer thread.
When stderr stops taking data (a full pipe, a stalled journald), a line
must wait in the log's queue or be dropped; the timer must go on firing.
Here the daemon's stderr is a pipe the test stops reading, made small
(4 KiB) so that a few dozen lines fill it.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, check, check_eq, fail,  # noqa: E402
                            log, run_tests)

NJOBS = 10
JOB_LINE_BYTES = 70		# "...Z info: job jN done in 0.01 s (id ...)"
ANSWER_MAX = 1.5		# seconds, for jobs of 10 ms; the client gives
CLIENT_TIMEOUT = 5.0		# up after this (the old code hung forever)

CONFIG = """
[server]
instance = logtest
threads = 2

[pool]
workers = 2
""" + "".join("""
[job j%d]
kind = sleep
duration = 10ms
result = r%d
""" % (i, i) for i in range(NJOBS)) + """
[route /tasks]
method = GET
jobs = %s
wait = all
timeout = 30s
""" % " ".join("j%d" % i for i in range(NJOBS))

EXPECTED_BODY = json.dumps({"results": ["r%d" % i
                                        for i in range(NJOBS)]}).encode()


def test_sleep_jobs_answer_on_time_while_stderr_is_full():
    with Daemon(CONFIG, log_pipe_size=4096) as d:
        capacity = d.log_pipe_capacity()
        d.pause_log_reading()
        # Three pipes' worth of job lines: the reader may take one more
        # pipeful after the pause, and then at least one is left over to
        # block whoever writes stderr.
        requests = 3 * capacity // (NJOBS * JOB_LINE_BYTES) + 1
        log("  pipe of %d bytes: %d requests of %d jobs each"
            % (capacity, requests, NJOBS))
        slowest = 0.0
        for i in range(requests):
            status, _, body, elapsed = d.request("GET", "/tasks",
                                                 timeout=CLIENT_TIMEOUT)
            check_eq((status, body), (200, EXPECTED_BODY),
                     "GET /tasks #%d with stderr full" % i)
            check(elapsed < ANSWER_MAX, "GET /tasks #%d took %.3f s with "
                  "stderr full (10 ms jobs)" % (i, elapsed))
            slowest = max(slowest, elapsed)
        log("  slowest answer %.3f s; %d bytes wait in the pipe"
            % (slowest, d.log_pipe_bytes()))
        check(d.log_pipe_bytes() > 0, "the test read the pipe after all")

        # Once stderr drains again, the queued lines follow in full.
        d.resume_log_reading()
        expected = requests * NJOBS
        deadline = time.monotonic() + 10.0
        while len(d.job_done_lines()) < expected and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        check_eq(len(d.job_done_lines()), expected,
                 "'job done' lines once stderr drains (none dropped: the "
                 "queue holds %d bytes)" % (expected * JOB_LINE_BYTES))
        for _, line in d.log_lines():
            if "lines dropped" in line:
                fail("lines dropped: %s" % line)


if __name__ == "__main__":
    run_tests(globals())
