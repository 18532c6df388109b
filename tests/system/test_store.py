"""taskpoold system test: durable records ([store] backend = sqlite).

Records of finished jobs and runs survive a stop (SIGTERM) and a crash
(SIGKILL): after a restart on the same database file, GET /jobs/{id} and
GET /runs/{id} answer exactly what they answered before, GET /jobs lists
them newest first with its filters and paging, and a job that was running
when the daemon died is failed with "daemon restarted".  Secrets are
"***" in the file too.  [store] mistakes are file:line: reason.

Waits are bounded by events: a record changing state, a listing (which
syncs the store first, so that what it shows is committed), a log line.
"""

import json
import os
import signal
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, EX_CONFIG, check, check_eq,  # noqa: E402
                            check_problem, run_cli, run_tests, start_job,
                            wait_job_state)

SECRET = "s3cr3t-token-value"

CONFIG = """
[server]
instance = storetest

[store]
backend = sqlite
path = {db}

[job quick]
kind = sleep
duration = 0
result = quick result
param.name = string max=32 default=none
param.token = string secret default=none

[job long]
kind = sleep
duration = 60s
result = long result

[route /quick]
method = POST
jobs = quick
wait = none

[route /long]
method = POST
jobs = long
wait = none
"""

NJOBS = 50


class Store:
    """A database file in a temporary directory, and lives of the daemon
    on it, one at a time."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="taskpoold-store-")
        self.db = os.path.join(self.dir.name, "taskpoold.db")
        self.conf = os.path.join(self.dir.name, "taskpoold.conf")
        Daemon.write_config(CONFIG.format(db=self.db), self.conf)

    def daemon(self):
        return Daemon(config_path=self.conf)

    def close(self):
        self.dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def sync(d):
    """GET /jobs syncs the store before it reads: once it answers, every
    change made before it is committed (the event a crash test waits
    for)."""
    d.get_json("/jobs?limit=1")


def start_quick(d, n):
    status, headers, body, _ = d.request(
        "POST", "/quick?name=n%d&token=%s" % (n, SECRET), body=b"")
    check_eq(status, 202, "POST /quick (body %r)" % body)
    run = headers.get("Location")
    check(run is not None and run.startswith("/runs/"),
          "POST /quick: Location %r" % run)
    return run[len("/runs/"):], json.loads(body)["jobs"][0]["id"]


def finished_jobs(d):
    """NJOBS quick jobs, finished: {id: record as memory shows it}, and
    their runs' ids in order."""
    runs, ids = [], []
    for n in range(NJOBS):
        run_id, job_id = start_quick(d, n)
        runs.append(run_id)
        ids.append(job_id)
    records = {}
    for job_id in ids:
        records[job_id] = wait_job_state(d, job_id, ("succeeded",))
    return records, ids, runs


def check_records(d, records, what):
    for job_id, before in records.items():
        got = d.get_json("/jobs/" + job_id)
        check_eq(sorted(got), sorted(before), "%s: members of %s"
                 % (what, job_id))
        for k in before:
            check_eq(got[k], before[k], "%s: %s of %s" % (what, k, job_id))


def metric(d, name):
    status, _, body, _ = d.request("GET", "/metrics")
    check_eq(status, 200, "GET /metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_finished_records_survive_stop_and_kill():
    with Store() as st:
        with st.daemon() as d:
            records, ids, runs = finished_jobs(d)
            check_eq(records[ids[0]]["params"],
                     {"name": "n0", "token": "***"}, "params in memory")
            sync(d)
            check(metric(d, "taskpoold_store_changes_total") >= 2 * NJOBS,
                  "taskpoold_store_changes_total counts the changes")
            check_eq(metric(d, "taskpoold_store_up"), 1.0,
                     "taskpoold_store_up")
            check_eq(metric(d, "taskpoold_store_lost_total"), 0.0,
                     "taskpoold_store_lost_total")
        with st.daemon() as d:		# after SIGTERM
            check_records(d, records, "after a stop")
            # A finished job the store alone knows cannot be cancelled.
            status, headers, body, _ = d.request("DELETE", "/jobs/" + ids[0])
            check_problem(status, headers, body, 409, "DELETE of a stored "
                          "finished job", "the job has already finished "
                          "(succeeded)")
            status, headers, body, _ = d.request("GET", "/jobs/storetest-"
                                                 "0-1")
            check_problem(status, headers, body, 404, "an id nobody knows")
            sync(d)
            d.send_signal(signal.SIGKILL)
            d.wait_exit(10)
        with st.daemon() as d:		# after SIGKILL
            check_records(d, records, "after a kill -9")
            status, _, body, _ = d.request("HEAD", "/jobs/" + ids[1])
            check_eq((status, body), (200, b""), "HEAD of a stored job")


def test_running_job_fails_with_daemon_restarted():
    with Store() as st:
        with st.daemon() as d:
            job_id = start_job(d, "/long")
            running = wait_job_state(d, job_id, ("running",))
            sync(d)
            d.send_signal(signal.SIGKILL)
            d.wait_exit(10)
        with st.daemon() as d:
            r = d.get_json("/jobs/" + job_id)
            check_eq(r["state"], "failed", "state after the restart")
            check_eq(r["error"], "daemon restarted", "error")
            check_eq(r["result"], None, "result")
            check_eq((r["id"], r["job"], r["created"], r["started"]),
                     (job_id, "long", running["created"],
                      running["started"]), "id, job and times")
            check(r["finished"] is not None, "finished is set")
            # Not live anywhere: nothing to cancel.
            status, headers, body, _ = d.request("DELETE", "/jobs/" + job_id)
            check_problem(status, headers, body, 409, "DELETE of a job "
                          "the restart failed")


def list_all(d, query, limit):
    """Every page of GET /jobs?QUERY&limit=LIMIT: the ids, in order."""
    ids, cursor, pages = [], None, 0
    while True:
        path = "/jobs?%slimit=%d" % (query, limit)
        if cursor is not None:
            path += "&cursor=" + cursor
        page = d.get_json(path)
        check(len(page["jobs"]) <= limit, "a page holds at most limit")
        ids += [j["id"] for j in page["jobs"]]
        cursor = page["next"]
        pages += 1
        check(pages <= 100, "paging does not end")
        if cursor is None:
            return ids


def test_listing_after_restart_newest_first_with_filters():
    with Store() as st:
        with st.daemon() as d:
            records, ids, _ = finished_jobs(d)
            long_id = start_job(d, "/long")
            wait_job_state(d, long_id, ("running",))
            sync(d)
            d.send_signal(signal.SIGKILL)
            d.wait_exit(10)
        with st.daemon() as d:
            newest_first = [long_id] + ids[::-1]
            check_eq(list_all(d, "", 7), newest_first, "all, 7 a page")
            check_eq(list_all(d, "job=quick&", 10), ids[::-1],
                     "job=quick, 10 a page")
            check_eq(list_all(d, "state=failed&", 5), [long_id],
                     "state=failed")
            check_eq(list_all(d, "state=succeeded,cancelled&job=quick&", 50),
                     ids[::-1], "state=succeeded,cancelled&job=quick")
            check_eq(list_all(d, "job=long&state=succeeded&", 3), [],
                     "a filter nothing matches")
            page = d.get_json("/jobs?limit=3")
            check_eq(page["jobs"][1], records[ids[-1]],
                     "a listed record is the record")
            # A job of this life comes first, from memory.
            new_id = start_job(d, "/long")
            page = d.get_json("/jobs?limit=2")
            check_eq([j["id"] for j in page["jobs"]], [new_id, long_id],
                     "this life's job, then the last life's")
            check(page["jobs"][0]["state"] in ("queued", "running"),
                  "the live job's state")
            status, headers, body, _ = d.request("GET", "/jobs?cursor=zz")
            check_problem(status, headers, body, 400, "a bad cursor")


def test_done_run_after_restart():
    with Store() as st:
        with st.daemon() as d:
            run_id, job_id = start_quick(d, 1)
            wait_job_state(d, job_id, ("succeeded",))
            before = d.get_json("/runs/" + run_id)
            check_eq(before["state"], "done", "the run is done")
            sync(d)
        with st.daemon() as d:
            got = d.get_json("/runs/" + run_id)
            check_eq(got, before, "GET /runs/%s after a restart" % run_id)
            status, headers, body, _ = d.request("GET", "/runs/" + run_id +
                                                 "9")
            check_problem(status, headers, body, 404, "an unknown run")


def test_secrets_are_stars_in_the_file():
    with Store() as st:
        with st.daemon() as d:
            _, job_id = start_quick(d, 7)
            wait_job_state(d, job_id, ("succeeded",))
        # Stopped: every change is committed; read every table's text.
        con = sqlite3.connect("file:%s?mode=ro" % st.db, uri=True)
        try:
            tables = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            text = []
            for t in tables:
                for row in con.execute('SELECT * FROM "%s"' % t):
                    text += [str(v) for v in row if v is not None]
        finally:
            con.close()
        blob = "\n".join(text)
        check(job_id in blob, "the job's record is in the file")
        check(SECRET not in blob, "the secret is in the file")
        check('"token":"***"' in blob.replace(" ", ""),
              "the secret is stored as ***")


BAD_STORE = [
    ("[store]\nbackend = mysql\n", 2,
     "bad value 'mysql' for backend (expected memory, sqlite or "
     "postgresql)"),
    ("[store]\nbackend = sqlite\npath = taskpoold.db\n", 3,
     "path must be the absolute path of the database file"),
    ("[store]\nbackend = postgresql\n", 2,
     "backend = postgresql needs url in [store] (a libpq connection string "
     "or URI)"),
    ("[store]\nlease = 0\n", 2,
     "bad value '0' for lease (expected a duration above 0 and up to 7d, "
     "e.g. 30s)"),
    ("[store]\nmax_attempts = 0\n", 2,
     "bad value '0' for max_attempts (expected 1 to 1000)"),
    ("[store]\nmax_attempts = 1001\n", 2,
     "bad value '1001' for max_attempts (expected 1 to 1000)"),
    ("[store]\nurl = postgresql://u:hunter2@db/x\nretain = 1h\n", 3,
     "unknown key 'retain' in [store]"),
    ("[store]\nurl = \n", 2, "url must not be empty"),
    ("[store]\n[store]\n", 2, "section [store] appears twice"),
]


def test_config_errors_are_file_line_reason():
    with tempfile.TemporaryDirectory(prefix="taskpoold-store-") as tmp:
        for n, (text, line, reason) in enumerate(BAD_STORE):
            path = os.path.join(tmp, "bad%d.conf" % n)
            Daemon.write_config(text, path)
            rc, out, err = run_cli(["-t", "-c", path])
            what = "taskpoold -t on %r" % text
            check_eq(rc, EX_CONFIG, what + ": exit status (stderr %r)" % err)
            expected = "%s:%d: %s" % (path, line, reason)
            check(err.rstrip("\n").endswith(" error: " + expected),
                  "%s:\n  expected '... error: %s'\n  got      %r"
                  % (what, expected, err))
            check("hunter2" not in err, what + ": the url's password echoed")
        good = os.path.join(tmp, "good.conf")
        Daemon.write_config("[store]\nbackend = postgresql\nurl = "
                            "postgresql://u:hunter2@db/x\nlease = 1m\n"
                            "max_attempts = 5\n", good)
        rc, out, err = run_cli(["-t", "-c", good])
        check_eq((rc, err), (0, ""), "a good [store] passes -t")
        # A database in a directory that does not exist: no start.
        db = os.path.join(tmp, "missing", "taskpoold.db")
        conf = os.path.join(tmp, "missing.conf")
        Daemon.write_config(CONFIG.format(db=db), conf)
        rc, out, err = run_cli(["-c", conf, "-l", "127.0.0.1:0"])
        check(rc != 0, "the daemon started without its database")
        check(("store: " + db) in err, "the reason names the store and "
              "its file: %r" % err)
        check("listening on" not in err, "it served anyway: %r" % err)


def test_reload_keeps_the_running_store():
    with Store() as st:
        with st.daemon() as d:
            _, job_id = start_quick(d, 3)
            wait_job_state(d, job_id, ("succeeded",))
            other = os.path.join(st.dir.name, "other.db")
            Daemon.write_config(CONFIG.format(db=other), st.conf)
            n = len(d.log_lines())
            d.send_signal(signal.SIGHUP)
            d.wait_for_log(r"reload: \[store\] changes only on restart: "
                           r"the running store \(sqlite\) is kept",
                           start=n, what="the reload's warning")
            d.wait_for_log(r"reloaded ", start=n, what="the reload")
            _, job_id2 = start_quick(d, 4)
            wait_job_state(d, job_id2, ("succeeded",))
            sync(d)
            check(not os.path.exists(other), "a reload opened another "
                  "database")
        Daemon.write_config(CONFIG.format(db=st.db), st.conf)
        with st.daemon() as d:
            for j in (job_id, job_id2):
                check_eq(d.get_json("/jobs/" + j)["state"], "succeeded",
                         "%s in the first database" % j)


if __name__ == "__main__":
    run_tests(globals())
