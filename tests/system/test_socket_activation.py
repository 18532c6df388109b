"""taskpoold system test: socket activation (the sd_listen_fds(3) protocol).

The test plays the service manager, as systemd-socket-activate(1) does: it
binds and listens itself, and starts the daemon with the socket as fd 3,
LISTEN_FDS=1 and LISTEN_PID set to the daemon's pid.  A launcher
(`python3 -c LAUNCHER`) moves the passed descriptors to 3, 4, ..., sets the
variables with its own pid and execs the daemon, which keeps that pid.

The restart test stops daemon A with SIGTERM while a client loop runs and
the test still holds the socket, then starts daemon B on the same socket:
every request must get its answer, none refused or reset, because the
kernel queues the connections that come while no daemon accepts.
TASKPOOLD_RESTART_ROUNDS sets its rounds (3 by default).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, HOST, SANITIZER_MARKERS,  # noqa: E402
                            check, check_eq, daemon_path, fail, forget, log,
                            read_response, run_tests, spawn)

ROUNDS = int(os.environ.get("TASKPOOLD_RESTART_ROUNDS", "3"))

CONFIG_TEMPLATE = """
[server]
instance = sockettest
threads = 2

[job short]
kind = sleep
duration = 20ms
result = %s

[route /short]
jobs = short
"""
CONFIG = CONFIG_TEMPLATE % "short result"

# Runs in the child: argv[1] is a JSON spec, the rest the daemon's argv.
LAUNCHER = r"""
import fcntl, json, os, sys
spec = json.loads(sys.argv[1])
# Out of the way first: a passed fd may be 3 or 4 already.
moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in spec["fds"]]
for fd in spec["fds"]:
    os.close(fd)
for i, fd in enumerate(moved):
    os.dup2(fd, 3 + i)          # inheritable
    os.close(fd)
env = dict(os.environ)
for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
    env.pop(name, None)
if spec["listen_fds"] is not None:
    env["LISTEN_FDS"] = spec["listen_fds"]
pid = spec["listen_pid"]
env["LISTEN_PID"] = {"self": str(os.getpid()),
                     "parent": str(os.getppid())}.get(pid, pid)
os.execve(sys.argv[2], sys.argv[2:], env)
"""

O_NONBLOCK = 0o4000
O_CLOEXEC = 0o2000000


def listening_socket(family=socket.AF_INET, kind=socket.SOCK_STREAM,
                     listen=True):
    s = socket.socket(family, kind)
    if family == socket.AF_UNIX:
        s.bind("\0taskpoold-test-%d-%d" % (os.getpid(), id(s)))
    else:
        s.bind((HOST, 0))
    if listen:
        s.listen(128)
    return s


def launcher_args(fds, listen_pid, listen_fds):
    spec = {"fds": list(fds), "listen_pid": listen_pid,
            "listen_fds": str(len(fds)) if listen_fds is None
            else listen_fds}
    return [sys.executable, "-c", LAUNCHER, json.dumps(spec)]


def activated(fds, listen_pid="self", listen_fds=None, config=CONFIG):
    """A Daemon (not started) that gets fds as 3, 4, ... with LISTEN_*."""
    d = Daemon(config, pass_fds=fds)
    d.args = launcher_args(fds, listen_pid, listen_fds) + d.args
    return d


def run_activated(fds, listen_pid="self", listen_fds=None, timeout=15.0):
    """Runs an activated daemon expected to exit at once: (status,
    stderr)."""
    with tempfile.TemporaryDirectory(prefix="taskpoold-test-") as tmp:
        path = os.path.join(tmp, "taskpoold.conf")
        with open(path, "w") as f:
            f.write(CONFIG)
        args = launcher_args(fds, listen_pid, listen_fds) + \
            [daemon_path(), "-c", path, "-l", "127.0.0.1:0"]
        p = spawn(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, pass_fds=fds)
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            forget(p)
            fail("the daemon did not exit within %.0f s; stderr:\n%s"
                 % (timeout, err.decode(errors="replace")))
        forget(p)
        err = err.decode(errors="replace")
        check(not any(m in err for m in SANITIZER_MARKERS),
              "sanitizer report:\n%s" % err)
        return p.returncode, err


def fd_flags(pid, fd):
    with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    fail("no flags in /proc/%d/fdinfo/%d" % (pid, fd))


def check_still_listening(sock, what):
    """The test's copy still queues connections (nobody shut it down)."""
    port = sock.getsockname()[1]
    with socket.create_connection((HOST, port), timeout=5.0):
        sock.settimeout(5.0)
        try:
            conn, _ = sock.accept()
        except OSError as e:
            fail("%s: the socket no longer accepts: %r" % (what, e))
        conn.close()


def test_serves_the_passed_socket():
    sock = listening_socket()
    port = sock.getsockname()[1]
    d = activated([sock.fileno()])
    try:
        d.start()
        check_eq(d.port, port, "the port of the start-up line")
        _, line, _ = d.wait_for_log(r"listening on ", timeout=1.0)
        check(re.search(r" info: listening on 127\.0\.0\.1:%d \(port %d\), "
                        % (port, port), line),
              "start-up line: %r" % line)
        _, line, _ = d.wait_for_log(r"socket activation", timeout=1.0)
        check(re.search(r" info: socket activation: serving fd 3 from the "
                        r"service manager; listen 127\.0\.0\.1:0 \(-l\) is "
                        r"ignored$", line), "activation line: %r" % line)
        health = d.get_json("/healthz")
        check_eq(health.get("status"), "ok", "/healthz status member")
        status, _, body, _ = d.request("GET", "/short")
        check_eq((status, json.loads(body)),
                 (200, {"results": ["short result"]}), "GET /short")
        flags = fd_flags(d.proc.pid, 3)
        check(flags & O_NONBLOCK and flags & O_CLOEXEC,
              "fd 3's flags are %o: not O_NONBLOCK|O_CLOEXEC" % flags)
        # A reload cannot move the socket, and says why.
        d.write_config(CONFIG.replace("[server]", "[server]\nlisten = "
                                      "127.0.0.1:1"), d.config_path)
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" warning: reload: listen is ignored: the socket "
                       r"comes from the service manager$", timeout=10.0)
        status, _, _, _ = d.request("GET", "/healthz")
        check_eq(status, 200, "GET /healthz after the reload")
        d.stop()
        check_still_listening(sock, "after the stop")
    finally:
        d.close()
        sock.close()


def test_listen_pid_of_another_process_is_ignored():
    sock = listening_socket()
    port = sock.getsockname()[1]
    d = activated([sock.fileno()], listen_pid="parent")
    try:
        d.start()
        check(d.port != port, "the daemon serves the passed socket (port "
              "%d) though LISTEN_PID is not its pid" % port)
        health = d.get_json("/healthz")
        check_eq(health.get("status"), "ok", "/healthz on the bound port")
        check(not any("socket activation" in l for _, l in d.log_lines()),
              "an activation line was logged:\n%s" % d.log_text())
        d.stop()
    finally:
        d.close()
        sock.close()


def check_refused(rc, err, reason, what):
    check_eq(rc, 1, "%s: exit status (stderr %r)" % (what, err))
    check(re.search(reason, err), "%s: no /%s/ in stderr:\n%s"
          % (what, reason, err))
    check("listening on" not in err, "%s: it listened:\n%s" % (what, err))


def test_passed_fd_that_is_no_listening_socket_is_refused():
    r, w = os.pipe()
    try:
        rc, err = run_activated([r])
        check_refused(rc, err, r" error: socket activation: fd 3 is not a "
                      r"socket$", "a pipe")
    finally:
        os.close(r)
        os.close(w)
    cases = [
        ("a TCP socket that does not listen", socket.AF_INET,
         socket.SOCK_STREAM, False, r"fd 3 is not listening$"),
        ("a UDP socket", socket.AF_INET, socket.SOCK_DGRAM, False,
         r"fd 3 is not a stream socket$"),
        ("a listening AF_UNIX socket", socket.AF_UNIX, socket.SOCK_STREAM,
         True, r"fd 3 is not an IPv4 or IPv6 socket$"),
    ]
    for what, family, kind, listen, reason in cases:
        s = listening_socket(family, kind, listen)
        try:
            rc, err = run_activated([s.fileno()])
        finally:
            s.close()
        check_refused(rc, err, r" error: socket activation: " + reason,
                      what)


def test_two_passed_sockets_are_refused():
    a, b = listening_socket(), listening_socket()
    try:
        rc, err = run_activated([a.fileno(), b.fileno()])
    finally:
        a.close()
        b.close()
    check_refused(rc, err, r" error: socket activation: 2 sockets passed "
                  r"\(LISTEN_FDS=2\); taskpoold serves one", "two sockets")


def test_bad_listen_fds_values_are_refused():
    for value in ("0", "x", "1x", "", "-1"):
        rc, err = run_activated([], listen_fds=value)
        check_refused(rc, err, r" error: socket activation: bad LISTEN_PID "
                      r"or LISTEN_FDS \(LISTEN_PID=\d+, LISTEN_FDS=%s\)$"
                      % re.escape(value), "LISTEN_FDS=%r" % value)
    rc, err = run_activated([], listen_fds="1")
    check_refused(rc, err, r" error: socket activation: LISTEN_FDS=1 but "
                  r"fd 3 is not open$", "LISTEN_FDS=1 without fd 3")


# ---- restart ------------------------------------------------------------------

REQUESTS = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Connection: close\r\n\r\n",
            b"GET /short HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Connection: close\r\n\r\n")


class Load:
    """CLIENTS threads, each sending one request after another, each on a
    fresh connection, until stop(); results are (start, end, outcome).
    The even ones alternate /healthz (answered at once) and /short (a job,
    the connection suspended); the odd ones send /short only, whose answer
    names the daemon, so that each has one queued across a restart."""

    CLIENTS = 6

    def __init__(self, port):
        self.port = port
        self.results = []
        self.cond = threading.Condition()
        self.stopping = False
        self.threads = [threading.Thread(target=self._client, args=(i,),
                                         daemon=True)
                        for i in range(self.CLIENTS)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _one(self, request):
        try:
            with socket.create_connection((HOST, self.port),
                                          timeout=30.0) as s:
                s.sendall(request)
                status, _, body = read_response(s)
                if status != 200:
                    return "status %d" % status
                # The answer of a /short names the daemon that gave it.
                return "ok" if b"from B" not in body else "ok from B"
        except ConnectionRefusedError:
            return "refused"
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
        except socket.timeout:
            return "timeout"
        except AssertionError as e:	# read_response(): closed early
            return "closed: %s" % e
        except OSError as e:
            return repr(e)

    def _client(self, i):
        n = 0
        while True:
            with self.cond:
                if self.stopping:
                    return
            t0 = time.monotonic()
            outcome = self._one(REQUESTS[n % 2 if i % 2 == 0 else 1])
            n += 1
            with self.cond:
                self.results.append((t0, time.monotonic(), outcome))
                self.cond.notify_all()

    def wait_answers_after(self, t, count, timeout=30.0):
        """Waits for count good answers to requests that ended after t."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while sum(1 for _, end, o in self.results
                      if end > t and o.startswith("ok")) < count:
                left = deadline - time.monotonic()
                check(left > 0, "fewer than %d answers within %.0f s: %r"
                      % (count, timeout, self.tally()))
                self.cond.wait(left)

    def stop(self):
        with self.cond:
            self.stopping = True
        for t in self.threads:
            t.join(timeout=60.0)
            check(not t.is_alive(), "a client thread is stuck")

    def tally(self):
        counts = {}
        for _, _, o in self.results:
            counts[o] = counts.get(o, 0) + 1
        return counts


def restart_round(i):
    """One round; returns (sent, answered, refused, crossed the gap)."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    a = activated([sock.fileno()], config=CONFIG_TEMPLATE % "from A")
    b = activated([sock.fileno()], config=CONFIG_TEMPLATE % "from B")
    load = None
    try:
        a.start()
        load = Load(port).start()
        load.wait_answers_after(0.0, 200)
        a.send_signal(signal.SIGTERM)
        rc, _ = a.wait_exit(timeout=15.0)
        a_gone = time.monotonic()
        check_eq(rc, 0, "round %d: A's exit status" % i)
        b.start()
        load.wait_answers_after(time.monotonic(), 200)
        load.stop()
        b.stop()
    finally:
        if load is not None:
            with load.cond:
                load.stopping = True
        a.close()
        b.close()
        sock.close()
    tally = load.tally()
    bad = {o: n for o, n in tally.items() if not o.startswith("ok")}
    check(not bad, "round %d: not every request answered 200: %r"
          % (i, tally))
    # Sent while A was still there, answered by B: queued by the kernel.
    crossed = sum(1 for t0, _, o in load.results
                  if t0 < a_gone and o == "ok from B")
    check(crossed > 0, "round %d: no request waited for B: the test did not "
          "restart under load" % i)
    sent = len(load.results)
    answered = tally.get("ok", 0) + tally.get("ok from B", 0)
    return sent, answered, tally.get("refused", 0), crossed


def test_restart_under_activation_refuses_no_connection():
    totals = [0, 0, 0, 0]
    t0 = time.monotonic()
    for i in range(ROUNDS):
        for k, v in enumerate(restart_round(i)):
            totals[k] += v
    log("  %d restarts in %.1f s: %d requests sent, %d answered 200, %d "
        "refused, %d waited in the queue across a restart"
        % (ROUNDS, time.monotonic() - t0, totals[0], totals[1], totals[2],
           totals[3]))


# ---- the stop ------------------------------------------------------------------

def test_stop_serves_the_first_request_of_a_connection_accepted_before_it():
    """Without activation too: a client that connected before SIGTERM is
    owed its first request's answer, and an idle one holds the stop for
    about a second at most (FRESH_GRACE_NS)."""
    with Daemon(CONFIG) as d:
        late = socket.create_connection((HOST, d.port), timeout=10.0)
        idle = socket.create_connection((HOST, d.port), timeout=10.0)
        try:
            # Accepted in order: once a later connection is answered, the
            # daemon has accepted these two.
            check_eq(d.request("GET", "/healthz")[0], 200, "GET /healthz")
            t0 = time.monotonic()
            d.send_signal(signal.SIGTERM)
            d.wait_for_log(r" info: Terminated: stopping$", timeout=5.0)
            late.sendall(REQUESTS[1])
            status, _, body = read_response(late)
            check_eq((status, json.loads(body)),
                     (200, {"results": ["short result"]}),
                     "GET /short sent after the stop began")
            rc, _ = d.wait_exit(timeout=10.0)
            took = time.monotonic() - t0
            check_eq(rc, 0, "exit status")
            check(0.8 <= took <= 5.0, "SIGTERM to exit with an idle "
                  "connection: %.2f s, not about 1 s" % took)
            check(not any("drain timeout" in l for _, l in d.log_lines()),
                  "an idle connection counted as work left:\n%s"
                  % d.log_text())
        finally:
            late.close()
            idle.close()
    log("  SIGTERM to exit with an idle connection open: %.2f s" % took)


if __name__ == "__main__":
    run_tests(globals())
