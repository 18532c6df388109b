"""taskpoold system test: the contract with systemd (Type=notify).

The test plays the service manager: it binds an AF_UNIX datagram socket,
starts the daemon with NOTIFY_SOCKET naming it, and records every datagram
with its arrival time and its sender's pid (SCM_CREDENTIALS, which is how
systemd tells the main process from its children: NotifyAccess=main).
What must come, in this order:

    READY=1               once it listens, with STATUS=serving, ...
    STATUS=serving, ...   when the counts change (at most once a second)
    RELOADING=1           on SIGHUP, with STATUS=reloading FILE
    READY=1               once the reload is done or refused; a refused
                          one says so in STATUS until the next good one
    STOPPING=1            on SIGTERM, with STATUS=draining, ...
    STATUS=stopping: ...  once jobs were cancelled at the drain timeout

MAINPID= is never sent: systemd started the daemon itself, so it knows
the main pid (sd_notify(3): MAINPID is for a manager that did not fork the
process).  Without NOTIFY_SOCKET, or with one that leads nowhere, the
daemon serves as usual.

Reloads under constant load (clients on fresh and keep-alive connections
throughout) lose no request, with good files and with broken ones; SIGTERM
with jobs longer than drain_timeout cancels them, answers every waiting
client and exits 0.
"""

import array
import http.client
import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, HOST, builddir, check,  # noqa: E402
                            check_between, check_eq, check_problem, fail,
                            log, need_exec, run_tests)

SERVING_RE = re.compile(r"^serving, \d+ requests? open, \d+ jobs? live, "
                        r"\d+ queued$")
IDLE = "serving, 0 requests open, 0 jobs live, 0 queued"


def status_line(phase, requests, jobs, queued=0):
    return "%s, %d request%s open, %d job%s live, %d queued" % (
        phase, requests, "" if requests == 1 else "s",
        jobs, "" if jobs == 1 else "s", queued)


class NotifySocket:
    """A service manager's notification socket: every datagram, with its
    arrival time (time.monotonic()) and sender pid, in a list.

    address: a path in a fresh directory, or "@name" for Linux's abstract
    namespace (as $NOTIFY_SOCKET writes it)."""

    def __init__(self, abstract=False):
        self.tmpdir = tempfile.TemporaryDirectory(prefix="taskpoold-notify-")
        if abstract:
            self.address = "@taskpoold-test-%d-%d" % (os.getpid(),
                                                      id(self))
            bind_to = "\0" + self.address[1:]
        else:
            self.address = os.path.join(self.tmpdir.name, "notify")
            bind_to = self.address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(bind_to)
        self._cond = threading.Condition()
        self._messages = []	# (time, pid, text)
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        ucred = array.array("i", [0, 0, 0]).itemsize * 3
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(
                    4096, socket.CMSG_SPACE(ucred))
            except OSError:
                break
            now = time.monotonic()
            pid = None
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and \
                        kind == socket.SCM_CREDENTIALS:
                    pid = array.array("i", value[:ucred])[0]
            with self._cond:
                self._messages.append((now, pid, data.decode(
                    "utf-8", errors="replace")))
                self._cond.notify_all()

    def messages(self):
        with self._cond:
            return list(self._messages)

    def wait_for(self, predicate, start=0, timeout=10.0, what="a datagram"):
        """Waits for a datagram (from index start) whose text satisfies
        predicate; returns its index."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(start, len(self._messages)):
                    if predicate(self._messages[i][2]):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        fail("no datagram for %s within %.1f s; got:\n%s"
             % (what, timeout, self.dump()))

    def dump(self, start=0):
        msgs = self.messages()
        t0 = msgs[0][0] if msgs else 0.0
        return "\n".join("    +%7.3f s pid %s %r" % (t - t0, pid, text)
                         for t, pid, text in msgs[start:])

    def close(self):
        self.sock.close()
        self.tmpdir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def fields(text):
    """{NAME: value} of a notification's lines."""
    out = {}
    for line in text.split("\n"):
        if line:
            name, _, value = line.partition("=")
            out[name] = value
    return out


def is_state(name):
    return lambda text: name in fields(text)


def check_only_status_updates(msgs, what):
    """Between the life-cycle datagrams, only STATUS=serving, ... updates."""
    for _, _, text in msgs:
        f = fields(text)
        check(list(f) == ["STATUS"] and SERVING_RE.match(f["STATUS"]),
              "%s: unexpected datagram %r" % (what, text))


SMALL = """\
[server]
instance = sdtest

[job j]
kind = sleep
duration = 10ms
result = %(result)s

[job slow]
kind = sleep
duration = 2500ms
result = slow

[route /r]
jobs = j

[route /slow]
jobs = slow
%(more)s"""


def small(result="old", more=""):
    return SMALL % {"result": result, "more": more}


def test_notify_sequence_at_start_reload_refused_reload_and_stop():
    with NotifySocket() as ns, \
            Daemon(small(), env={"NOTIFY_SOCKET": ns.address}) as d:
        t_start = time.monotonic()
        i = ns.wait_for(is_state("READY"), what="READY=1")
        check_eq(i, 0, "index of READY=1 (nothing before it)")
        check_eq(ns.messages()[0][2], "READY=1\nSTATUS=" + IDLE,
                 "the first datagram")
        # It listens: a request goes through at once.
        check_eq(d.request("GET", "/healthz")[0], 200, "GET /healthz")

        # STATUS follows the work, within about a second.
        n = len(ns.messages())
        waiting = threading.Thread(target=d.request, args=("GET", "/slow"))
        waiting.start()
        busy = status_line("serving", 1, 1)
        ns.wait_for(lambda t: t == "STATUS=" + busy, start=n, timeout=5.0,
                    what=busy)
        waiting.join(10)
        ns.wait_for(lambda t: t == "STATUS=" + IDLE, start=n, timeout=5.0,
                    what="back to " + IDLE)

        # SIGHUP, good file: RELOADING=1, then READY=1 (nothing between).
        n = len(ns.messages())
        d.write_config(small(result="new"), d.config_path)
        t_hup = time.monotonic()
        d.send_signal(signal.SIGHUP)
        i = ns.wait_for(is_state("READY"), start=n, what="READY=1 after "
                        "the reload")
        msgs = ns.messages()
        check_only_status_updates(msgs[n:i - 1], "before the reload")
        check_eq([m[2] for m in msgs[i - 1:i + 1]],
                 ["RELOADING=1\nSTATUS=reloading " + d.config_path,
                  "READY=1\nSTATUS=" + IDLE], "the reload's datagrams")
        check_between(msgs[i - 1][0] - t_hup, 0.0, 2.0,
                      "SIGHUP to RELOADING=1")
        # (No request here: STATUS counts those still open, exactly.)

        # SIGHUP, broken file: RELOADING=1 and READY=1 all the same
        # (systemd waits for READY=1 after RELOADING=1, whatever came of
        # it), and STATUS tells the refusal until a good reload.
        n = len(ns.messages())
        broken = small(result="broken").replace(
            "[route /slow]", "[route /slow]\nwait = whenever")
        line = broken.splitlines().index("wait = whenever") + 1
        d.write_config(broken, d.config_path)
        d.send_signal(signal.SIGHUP)
        i = ns.wait_for(is_state("READY"), start=n, what="READY=1 after "
                        "the refused reload")
        msgs = ns.messages()
        check_only_status_updates(msgs[n:i - 1], "before the bad reload")
        why = "%s:%d: bad value 'whenever' for wait (expected all, first, " \
              "any or none)" % (d.config_path, line)
        refused = "%s; reload refused: %s" % (IDLE, why)
        check_eq([m[2] for m in msgs[i - 1:i + 1]],
                 ["RELOADING=1\nSTATUS=reloading " + d.config_path,
                  "READY=1\nSTATUS=" + refused],
                 "the refused reload's datagrams")
        check_eq(d.request("GET", "/r")[2], b'{"results": ["new"]}',
                 "GET /r after the good and the refused reload")
        # The note stays with the periodic updates.
        waiting = threading.Thread(target=d.request, args=("GET", "/slow"))
        waiting.start()
        busy = "%s; reload refused: %s" % (status_line("serving", 1, 1), why)
        ns.wait_for(lambda t: t == "STATUS=" + busy, start=i, timeout=5.0,
                    what=busy)
        waiting.join(10)
        ns.wait_for(lambda t: t == "STATUS=" + refused, start=i + 1,
                    timeout=5.0, what="back to " + refused)

        # A good file again clears the note.
        n = len(ns.messages())
        d.write_config(small(result="fixed"), d.config_path)
        d.send_signal(signal.SIGHUP)
        i = ns.wait_for(is_state("READY"), start=n, what="READY=1 after "
                        "the fixed reload")
        check_eq(ns.messages()[i][2], "READY=1\nSTATUS=" + IDLE,
                 "READY=1 after the fixed reload")

        # SIGTERM: STOPPING=1 first, then nothing but the exit.
        n = len(ns.messages())
        t_term = time.monotonic()
        d.stop()
        msgs = ns.messages()
        i = ns.wait_for(is_state("STOPPING"), start=n, timeout=0.1,
                        what="STOPPING=1")
        check_only_status_updates(msgs[n:i], "before the stop")
        check_eq([m[2] for m in msgs[i:]],
                 ["STOPPING=1\nSTATUS=" + status_line("draining", 0, 0)],
                 "the stop's datagrams")
        check_between(msgs[i][0] - t_term, 0.0, 2.0, "SIGTERM to STOPPING=1")
        for t, pid, text in msgs:
            check_eq(pid, d.proc.pid, "sender of %r (the main process)"
                     % text)
            check("MAINPID" not in fields(text), "MAINPID sent: %r" % text)
        log("  datagrams (times from the daemon's start):\n%s"
            % "\n".join("    +%7.3f s %r" % (t - t_start, text)
                        for t, _, text in msgs))


def test_an_abstract_notify_socket_gets_ready():
    with NotifySocket(abstract=True) as ns, \
            Daemon(small(), env={"NOTIFY_SOCKET": ns.address}) as d:
        ns.wait_for(is_state("READY"), what="READY=1 on " + ns.address)
        d.stop()
        ns.wait_for(is_state("STOPPING"), timeout=0.1, what="STOPPING=1")


def serve_reload_stop(d):
    check_eq(d.request("GET", "/r")[0], 200, "GET /r")
    n = len(d.log_lines())
    d.send_signal(signal.SIGHUP)
    d.wait_for_log(r" info: reloaded ", start=n, timeout=5.0,
                   what="the reload")
    check_eq(d.request("GET", "/r")[0], 200, "GET /r after the reload")
    d.stop()


def test_without_notify_socket_nothing_is_sent_and_nothing_logged():
    with Daemon(small(), env={"NOTIFY_SOCKET": None}) as d:
        serve_reload_stop(d)
    check(not re.search(r"notify", d.log_text(), re.I),
          "notify in the log:\n%s" % d.log_text())


def test_a_notify_socket_leading_nowhere_is_one_warning():
    with tempfile.TemporaryDirectory() as tmp:
        nowhere = os.path.join(tmp, "nobody-listens")
        with Daemon(small(), env={"NOTIFY_SOCKET": nowhere}) as d:
            serve_reload_stop(d)
        warnings = [line for _, line in d.log_lines() if "notify" in line]
        check_eq(len(warnings), 1, "notify warnings (log:\n%s)"
                 % d.log_text())
        check(" warning: " in warnings[0] and "READY=1" in warnings[0],
              "the warning: %r" % warnings[0])


# ---- reload under constant load --------------------------------------------

LOADED = """\
[server]
instance = sdload

[log]
jobs = no

[job a]
kind = sleep
duration = 5ms
result = %(result)s

[route /a]
jobs = a
%(old)s"""

OLD_ROUTE = """
[job o]
kind = sleep
result = old route

[route /old]
jobs = o
"""


class Load:
    """Client threads asking without pause until stopped: half on a fresh
    connection per request, half on one keep-alive connection each.  Every
    answer must be 200 with one of the expected bodies."""

    def __init__(self, port, paths, threads=4):
        self.port = port
        self.paths = paths
        self.done = 0
        self.errors = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.loop, args=(i % 2 == 1,))
                        for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        self.wait_more(20)
        return self

    def loop(self, keep_alive):
        conn = None
        i = 0
        while not self.stopping.is_set():
            path = self.paths[i % len(self.paths)]
            i += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, self.port,
                                                      timeout=10)
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                ok = resp.status == 200 and (
                    json.loads(body)["results"][0] in ("gen 0", "gen 1")
                    if path == "/a" else
                    body == b'{"results": ["old route"]}')
                if not ok:
                    self.error("%s: %d %r" % (path, resp.status, body))
            except (OSError, http.client.HTTPException, ValueError) as e:
                self.error("%s: %r (%s connection)" % (
                    path, e, "keep-alive" if keep_alive else "fresh"))
                conn.close()
                conn = None
                continue
            with self.lock:
                self.done += 1
            if not keep_alive:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def error(self, text):
        with self.lock:
            self.errors.append(text)

    def count(self):
        with self.lock:
            return self.done

    def wait_more(self, n, timeout=10.0):
        """Until n more answers came: each reload happens under load."""
        target = self.count() + n
        deadline = time.monotonic() + timeout
        while self.count() < target:
            check(time.monotonic() < deadline, "the clients stalled at %d "
                  "answers (errors: %r)" % (self.count(), self.errors[:3]))
            time.sleep(0.005)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(15)


def test_reloads_under_constant_load_lose_no_request():
    rounds = 20
    good = [LOADED % {"result": "gen %d" % (i % 2), "old": OLD_ROUTE}
            for i in range(2)]
    # Broken, and without /old: had any of it been taken, /old would 404.
    broken = LOADED % {"result": "gen 1", "old": ""} + \
        "[route /b]\njobs = a\nwait = sometimes\n"
    bad_line = broken.splitlines().index("wait = sometimes") + 1
    with NotifySocket() as ns, \
            Daemon(good[0], env={"NOTIFY_SOCKET": ns.address}) as d:
        load = Load(d.port, ["/a", "/old"]).start()
        t0 = time.monotonic()
        try:
            for i in range(rounds):
                n = len(d.log_lines())
                d.write_config(good[(i + 1) % 2], d.config_path)
                d.send_signal(signal.SIGHUP)
                d.wait_for_log(r" info: reloaded .*: 2 jobs, 2 routes$",
                               start=n, timeout=5.0, what="reload %d" % i)
                load.wait_more(20)
            d.write_config(broken, d.config_path)
            for i in range(rounds):
                n = len(d.log_lines())
                d.send_signal(signal.SIGHUP)
                d.wait_for_log(r" error: %s:%d: bad value 'sometimes' for "
                               r"wait " % (re.escape(d.config_path),
                                           bad_line),
                               start=n, timeout=5.0,
                               what="refused reload %d's file:line: reason"
                               % i)
                d.wait_for_log(r" warning: reload refused; the running "
                               r"configuration stays$", start=n,
                               timeout=5.0, what="refused reload %d" % i)
                load.wait_more(20)
        finally:
            load.stop()
        elapsed = time.monotonic() - t0
        check(not load.errors, "%d requests failed, e.g. %r"
              % (len(load.errors), load.errors[:5]))
        check_eq(d.request("GET", "/old")[:3:2],
                 (200, b'{"results": ["old route"]}'),
                 "GET /old (only in the running config)")
        d.stop()
    texts = [m[2] for m in ns.messages()]
    check_eq(len([t for t in texts if "RELOADING" in fields(t)]),
             2 * rounds, "RELOADING=1 datagrams")
    check_eq(len([t for t in texts if "READY" in fields(t)]),
             2 * rounds + 1, "READY=1 datagrams")
    last = [fields(t) for t in texts if "READY" in fields(t)][-1]
    check(last["STATUS"].endswith("; reload refused: %s:%d: bad value "
                                  "'sometimes' for wait (expected all, "
                                  "first, any or none)"
                                  % (d.config_path, bad_line)),
          "STATUS after the broken reloads: %r" % last["STATUS"])
    log("  %d good and %d broken reloads under %d clients: %d answers in "
        "%.1f s, none lost" % (rounds, rounds, len(load.threads),
                               load.count(), elapsed))


# ---- SIGTERM past drain_timeout ----------------------------------------------

DRAIN = """\
[server]
instance = sddrain
drain_timeout = 1s

[job nap]
kind = sleep
duration = 10s
result = nap

[job run]
kind = exec
command = /bin/sleep 10

[route /nap]
jobs = nap
timeout = 1m

[route /run]
jobs = run
timeout = 1m
"""


def children_of(pid):
    kids = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
            kids += [int(k) for k in f.read().split()]
    return kids


def test_sigterm_past_drain_timeout_cancels_and_answers_every_client():
    need_exec()	# the /run jobs are programs
    naps, runs = 6, 4
    with NotifySocket() as ns, \
            Daemon(DRAIN, env={"NOTIFY_SOCKET": ns.address}) as d:
        answers = {}

        def client(i, path):
            answers[i] = d.request("GET", path, timeout=20.0)[:3]

        clients = [threading.Thread(target=client, args=(
            i, "/nap" if i < naps else "/run")) for i in range(naps + runs)]
        for t in clients:
            t.start()
        deadline = time.monotonic() + 10
        while d.get_json("/healthz")["jobs_live"] < naps + runs or \
                len(children_of(d.proc.pid)) < runs:
            check(time.monotonic() < deadline, "the clients never all came "
                  "in: %r" % d.get_json("/healthz"))
            time.sleep(0.02)
        programs = children_of(d.proc.pid)
        # Every client counted (and the test's /healthz polls no more):
        # the periodic STATUS says so.
        ns.wait_for(lambda t: t == "STATUS=" + status_line(
            "serving", naps + runs, naps + runs), timeout=5.0,
            what="every client in the status")
        n = len(ns.messages())
        t_term = time.monotonic()
        d.send_signal(signal.SIGTERM)
        rc, _ = d.wait_exit(timeout=15.0)
        elapsed = time.monotonic() - t_term
        for t in clients:
            t.join(10)
        log("  SIGTERM with %d clients on 10 s jobs, drain_timeout 1 s: "
            "exit %d after %.2f s" % (naps + runs, rc, elapsed))
        check_eq(rc, 0, "exit status")
        check_between(elapsed, 0.9, 6.0, "SIGTERM to exit")
        check_eq(sorted(answers), list(range(naps + runs)),
                 "clients answered")
        for i, (status, headers, body) in answers.items():
            p = check_problem(status, headers, body, 503,
                              "client %d's answer" % i)
            check_eq(headers.get("Retry-After"), "1", "Retry-After")
            check_eq([j["state"] for j in p["jobs"]], ["cancelled"],
                     "client %d's job" % i)
        d.wait_for_log(r" info: stopping: drain timeout passed; cancelled "
                       r"%d jobs$" % (naps + runs), timeout=0.1,
                       what="the cancel at the drain timeout")
        ends = [line for _, line in d.log_lines()
                if re.search(r" info: job (nap|run) cancelled after ", line)]
        check_eq(len(ends), naps + runs, "'cancelled' job lines")
        for pid in programs:
            check(not os.path.exists("/proc/%d" % pid),
                  "program %d outlived the daemon" % pid)
        msgs = ns.messages()
        check_eq([m[2] for m in msgs[n:]], [
            "STOPPING=1\nSTATUS=" + status_line("draining", naps + runs,
                                                naps + runs),
            "STATUS=stopping: drain timeout passed; cancelled %d jobs"
            % (naps + runs)], "the stop's datagrams")
        check_between(msgs[n + 1][0] - msgs[n][0], 0.9, 3.0,
                      "STOPPING=1 to the cancel")
        log("  datagrams (times from SIGTERM):\n%s"
            % "\n".join("    +%7.3f s %r" % (t - t_term, text)
                        for t, _, text in msgs[n:]))



def unit_settings():
    """{key: [values]} of the [Service] section of the built unit."""
    out = {}
    section = None
    with open(os.path.join(builddir(), "systemd", "taskpoold.service")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and \
                    not line.startswith("#"):
                key, _, value = line.partition("=")
                out.setdefault(key, []).append(value)
    return out


def test_the_unit_lets_the_daemon_drain_and_end_its_programs():
    # systemd's default KillMode=control-group sends SIGTERM to every
    # process of the unit at once: exec jobs' programs died at the start
    # of the stop, their jobs failed (502) instead of draining and being
    # cancelled (503), as a real systemd 252 showed.  The daemon must be
    # the only one to get SIGTERM, and the main process the only sender.
    unit = unit_settings()
    check_eq(unit.get("Type"), ["notify"], "Type=")
    check_eq(unit.get("KillMode"), ["mixed"], "KillMode=")
    check("NotifyAccess" not in unit, "NotifyAccess= %r (the default, "
          "main, is what the daemon needs)" % unit.get("NotifyAccess"))


if __name__ == "__main__":
    run_tests(globals())
