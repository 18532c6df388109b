"""taskpoold system test: the two seed endpoints of the shipped config, with
their real timings (1 s, 2 s, 3 s, 5 s jobs).

GET /tasks and GET /run-tasks are sent at the same moment, so the file takes
about 6 s rather than 8.
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (  # noqa: E402
    Daemon, check, check_between, check_eq, header, log, run_tests,
    shipped_config_path, JOB_DONE_RE)


def test_seed_endpoints_with_real_timings():
    with Daemon(config_path=shipped_config_path()) as d:
        answers = {}
        go = threading.Barrier(3)

        def call(path):
            go.wait()
            t_sent = time.monotonic()
            answers[path] = (t_sent,) + d.request("GET", path, timeout=20.0)

        threads = [threading.Thread(target=call, args=(p,))
                   for p in ("/tasks", "/run-tasks")]
        for t in threads:
            t.start()
        go.wait()
        for t in threads:
            t.join(20)
        check("/tasks" in answers and "/run-tasks" in answers,
              "a request got no answer; log:\n%s" % d.log_text())

        # GET /tasks: both results, after the longest job (2 s), not the
        # sum (3 s).
        _, status, headers, body, elapsed = answers["/tasks"]
        log("  GET /tasks: %d in %.3f s: %s" % (status, elapsed,
                                               body.decode()))
        check_eq(status, 200, "GET /tasks status")
        check_eq(header(headers, "Content-Type"), "application/json",
                 "GET /tasks Content-Type")
        check_eq(body, b'{"results": ["Task 1 done", "Task 2 done"]}',
                 "GET /tasks body")
        check_between(elapsed, 1.9, 2.6, "GET /tasks (jobs of 1 s and 2 s)")

        # GET /run-tasks: the first job's result after 1 s; the others
        # pending.
        t_sent, status, headers, body, elapsed = answers["/run-tasks"]
        log("  GET /run-tasks: %d in %.3f s: %s" % (status, elapsed,
                                                   body.decode()))
        check_eq(status, 200, "GET /run-tasks status")
        check_eq(header(headers, "Content-Type"), "application/json",
                 "GET /run-tasks Content-Type")
        check_between(elapsed, 0.9, 1.6, "GET /run-tasks (first job 1 s)")
        v = json.loads(body)
        check_eq(v.get("result"), "First result", "result")
        check_eq(v.get("job"), "first", "job")
        pending = v.get("pending")
        check(isinstance(pending, list) and len(pending) == 2,
              "pending: %r" % (pending,))
        ids = {}
        for link, name in zip(pending, ("second", "third")):
            check_eq(link.get("job"), name, "pending job")
            check(isinstance(link.get("id"), str) and link["id"],
                  "pending id: %r" % (link,))
            check_eq(link.get("href"), "/jobs/" + link["id"], "href")
            ids[name] = link["id"]
        check(ids["second"] != ids["third"], "pending jobs share an id")
        check_eq(body, json.dumps({
            "result": "First result", "job": "first",
            "pending": [{"id": ids[n], "job": n, "href": "/jobs/" + ids[n]}
                        for n in ("second", "third")]}).encode(),
            "GET /run-tasks body")

        # Both still running after the answer.
        for name in ("second", "third"):
            rec = d.get_json("/jobs/" + ids[name])
            check_eq((rec["state"], rec["result"], rec["finished"]),
                     ("running", None, None),
                     "/jobs/%s (%s) right after the answer"
                     % (ids[name], name))

        # The log says "third done" ~3 s and "second done" ~5 s after the
        # request.
        for name, low, high in (("third", 2.9, 3.8), ("second", 4.9, 5.8)):
            t, line, m = d.wait_for_log(
                r" info: job %s done in ([0-9.]+) s \(id %s\)$"
                % (name, ids[name]), timeout=t_sent + high + 1.0 -
                time.monotonic(), what="'job %s done'" % name)
            log("  %s: %s (%.3f s after the request)" % (name, line,
                                                        t - t_sent))
            check_between(t - t_sent, low, high,
                          "'job %s done' after the request" % name)

        expected = {"second": "Second result", "third": "Third result"}
        for name, result in expected.items():
            rec = d.get_json("/jobs/" + ids[name])
            check_eq((rec["id"], rec["job"], rec["state"], rec["result"],
                      rec["error"]),
                     (ids[name], name, "succeeded", result, None),
                     "/jobs/%s (%s)" % (ids[name], name))
            check(isinstance(rec["finished"], str) and
                  rec["finished"].endswith("Z"),
                  "finished time %r" % rec["finished"])

        # One "done" line per job, each with the duration of its job.
        done = {}
        for _, line in d.log_lines():
            m = JOB_DONE_RE.search(line)
            if m:
                check(m.group(1) not in done, "two 'job %s done' lines"
                      % m.group(1))
                done[m.group(1)] = float(m.group(2))
        check_eq(sorted(done), ["first", "second", "task1", "task2",
                                "third"], "jobs logged done")
        for name, secs in (("task1", 1), ("task2", 2), ("first", 1),
                           ("second", 5), ("third", 3)):
            check_between(done[name], secs - 0.01, secs + 0.3,
                          "logged run time of %s" % name)
        d.stop()


if __name__ == "__main__":
    run_tests(globals())
