"""taskpoold system test: connection limits and slow clients.

A connection over max_connections, or over max_connections_per_ip from its
address, is accepted and its first request answered 503 (problem+json,
Retry-After, Connection: close), while the connections within the limits
are served; 127.0.0.2 is another address on Linux's loopback.  A client
that sends its headers (or its body) one byte every 0.2 s is cut off at
header_timeout (body_timeout) with a 408, however often it sends, while
other clients are served; one that sends nothing is closed without a word.
A request that waits for its jobs is never cut.  Each refusal is counted
in /metrics, and the daemon's memory and descriptors come back.

Every wait is bounded by an event: a socket read with a timeout, an
answer, or the daemon's /proc entries; 0.2 s is the slow clients' pace.
"""

import os
import re
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, HOST, check, check_between,  # noqa: E402
                            check_eq, check_problem, fail, fd_count, log,
                            read_response, rss_kib, run_tests)

SLOW_PACE = 0.2		# seconds between a slow client's bytes
CUT_SLACK = 4.0		# how late past its deadline a cut may come (load)
OTHER_ADDRESS = "127.0.0.2"

CONFIG = """
[server]
threads = 2
%s

[job wait2]
kind = sleep
duration = 2s
result = waited

[route /wait]
jobs = wait2
wait = all
"""

REJECTION_RE = re.compile(
    r'^taskpoold_http_rejections_total\{reason="([a-z_]+)"\} (\d+)$', re.M)


def rejections(d):
    status, _, body, _ = d.request("GET", "/metrics")
    check_eq(status, 200, "GET /metrics")
    return {m.group(1): int(m.group(2))
            for m in REJECTION_RE.finditer(body.decode())}


def connect(d, source=None, timeout=10.0):
    s = socket.create_connection(
        (HOST, d.port), timeout=timeout,
        source_address=(source, 0) if source else None)
    return s


def get(sock, path="/healthz"):
    """One keep-alive GET on an open socket; (status, headers, body)."""
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
    return read_response(sock)


def check_closed(sock, what, timeout=10.0):
    """The daemon closes sock: a read sees its end within timeout."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        fail("%s: the connection is still open after %.1f s"
             % (what, timeout))
    check_eq(data, b"", "%s: bytes after the answer" % what)


def check_refused(sock, reason_detail, what):
    """A 503 for a connection over a limit, then the connection closed."""
    status, headers, body = get(sock)
    check_problem(status, headers, body, 503, what, detail=reason_detail)
    check_eq(headers.get("retry-after"), "1", "%s: Retry-After" % what)
    check_eq(headers.get("connection", "").lower(), "close",
             "%s: Connection" % what)
    check_closed(sock, what)


def wait_fds(d, base_fds, what, timeout=10.0):
    """Waits until the daemon holds base_fds descriptors (sockets too) or
    fewer: every connection closed by a client is closed by the daemon
    too, and out of its counts (it leaves them just before its close).
    Read from /proc every 10 ms, as the daemon closes them."""
    deadline = time.monotonic() + timeout
    while fd_count(d.proc.pid, sockets=True) > base_fds:
        check(time.monotonic() < deadline, "%s: %d descriptors, %d before"
              % (what, fd_count(d.proc.pid, sockets=True), base_fds))
        time.sleep(0.01)


def under_sanitizer(pid):
    """True if the process runs with ASan or TSan, whose allocators keep
    freed memory (a quarantine) and so make RSS say nothing of ours (as
    test_concurrency.py)."""
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    return "libasan" in maps or "libtsan" in maps


def settle(d, base_fds, base_rss, what):
    """Descriptors (sockets too) back to base within 10 s, and RSS
    within 8 MiB (not under a sanitizer, whose RSS is its own)."""
    wait_fds(d, base_fds, what)
    rss = rss_kib(d.proc.pid)
    log("%s: descriptors %d -> %d, RSS %d -> %d KiB" % (
        what, base_fds, fd_count(d.proc.pid, sockets=True), base_rss, rss))
    if not under_sanitizer(d.proc.pid):
        check(rss <= base_rss + 8192, "%s: RSS %d KiB, %d KiB before"
              % (what, rss, base_rss))


def connections(d):
    """How many accepted TCP connections the daemon holds open: its socket
    descriptors whose local port is d.port and that do not listen
    (/proc/net/tcp, state 0A)."""
    inodes = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == d.port and \
                    fields[3] != "0A":
                inodes.add(fields[9])
    n = 0
    for fd in os.listdir("/proc/%d/fd" % d.proc.pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (d.proc.pid, fd))
        except FileNotFoundError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            n += 1
    return n


def wait_no_connections(d, what, timeout=10.0):
    """Waits until the daemon holds no client connection: every one its
    client closed is closed by the daemon too, and so out of the per-IP
    count (it leaves the count just before its close)."""
    deadline = time.monotonic() + timeout
    while connections(d) > 0:
        check(time.monotonic() < deadline, "%s: %d connections still open"
              % (what, connections(d)))
        time.sleep(0.01)


def rejections_before(d):
    """rejections(d) before a test opens its connections: once the daemon
    has closed the connection that asked, which would otherwise still
    count against 127.0.0.1's limit when the test's first connections
    come (seen under ASan: an idle flood found one place for its address,
    not two)."""
    counts = rejections(d)
    wait_no_connections(d, "after GET /metrics")
    return counts


def baseline(d):
    """(descriptors with sockets, RSS) once the daemon has served a few,
    their connections all closed: the descriptors it holds with no client,
    and its memory once warm."""
    for _ in range(20):
        # One at a time: a connection its client has closed counts until
        # the daemon has closed it too, and the limits here are small.
        d.request("GET", "/healthz")
        wait_no_connections(d, "baseline")
    rejections(d)
    wait_no_connections(d, "baseline")
    return fd_count(d.proc.pid, sockets=True), rss_kib(d.proc.pid)


def test_per_ip_limit():
    with Daemon(CONFIG % "max_connections_per_ip = 2") as d:
        base_fds, base_rss = baseline(d)
        before = rejections_before(d).get("connection_limit_per_ip", 0)
        wait_fds(d, base_fds, "per-IP limit")
        # Served (so counted) before the next one comes.
        a = [connect(d), connect(d)]
        for i, s in enumerate(a):
            check_eq(get(s)[0], 200, "connection %d from 127.0.0.1" % i)
        over = connect(d)
        check_refused(over, "too many connections from this address",
                      "third connection from 127.0.0.1")
        other = connect(d, OTHER_ADDRESS)
        check_eq(get(other)[0], 200, "a connection from 127.0.0.2")
        for i, s in enumerate(a):
            check_eq(get(s)[0], 200, "connection %d again" % i)
        # One goes: another from the same address is served.  Its close
        # is seen by the daemon at some point: ask until it is.
        a[0].close()
        deadline = time.monotonic() + 10.0
        while True:
            s = connect(d)
            status = get(s)[0]
            s.close()
            if status == 200:
                break
            check_eq(status, 503, "a new connection after one closed")
            check(time.monotonic() < deadline, "no room after a close")
        a[1].close()
        other.close()
        over.close()
        wait_fds(d, base_fds, "per-IP limit")
        check(rejections(d)["connection_limit_per_ip"] > before,
              "connection_limit_per_ip counted")
        settle(d, base_fds, base_rss, "per-IP limit")


def test_global_limit():
    with Daemon(CONFIG % "max_connections = 3") as d:
        # Each request of the baseline closes before the next: one at a
        # time, so well within 3.
        base_fds, base_rss = baseline(d)
        before = rejections_before(d).get("connection_limit", 0)
        wait_fds(d, base_fds, "global limit")
        a = [connect(d), connect(d), connect(d, OTHER_ADDRESS)]
        for i, s in enumerate(a):
            check_eq(get(s)[0], 200, "connection %d" % i)
        check_refused(connect(d), "too many connections",
                      "fourth connection")
        # The limit is global: another address is refused as well.
        check_refused(connect(d, OTHER_ADDRESS), "too many connections",
                      "fourth connection, from 127.0.0.2")
        for i, s in enumerate(a):
            check_eq(get(s)[0], 200, "connection %d again" % i)
            s.close()
        wait_fds(d, base_fds, "global limit")
        check_eq(rejections(d)["connection_limit"] - before, 2,
                 "connection_limit counted")
        settle(d, base_fds, base_rss, "global limit")


def slow_send(sock, data, t0, deadline):
    """Sends data one byte per SLOW_PACE until the daemon answers or
    closes; returns (seconds from t0 to the daemon's first byte or end,
    the answer's bytes, bytes sent)."""
    sent = 0
    got = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], SLOW_PACE)
        if r:
            cut_at = time.monotonic() - t0
            sock.settimeout(5.0)
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except ConnectionResetError:
                pass
            return cut_at, got, sent
        if sent < len(data):
            try:
                sock.sendall(data[sent:sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                pass
            sent += 1
    fail("a slow client was not cut off within %.1f s (sent %d bytes)"
         % (deadline - t0, sent))


class Meanwhile(threading.Thread):
    """A normal client's GET /healthz on a thread of its own, while a slow
    client trickles on the test's: its status and when it was answered."""

    def __init__(self, d, t0):
        super().__init__(daemon=True)
        self.d, self.t0 = d, t0
        self.status = self.served_at = self.error = None
        self.start()

    def run(self):
        try:
            self.status = self.d.request("GET", "/healthz")[0]
            self.served_at = time.monotonic() - self.t0
        except Exception as e:  # noqa: BLE001 - reported by check()
            self.error = e

    def check(self, cut_at, what):
        self.join(30.0)
        check(self.error is None and self.status == 200,
              "%s: the normal client got %r (%r)" % (what, self.status,
                                                     self.error))
        check(self.served_at < cut_at, "%s: the normal client was served "
              "at %.2f s, after the cut at %.2f s" % (what, self.served_at,
                                                       cut_at))


def check_408(got, what):
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    check(lines[0].startswith("HTTP/1.1 408 "), "%s: status line %r (all "
          "%r)" % (what, lines[0], got))
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    check_eq(headers.get("connection"), "close", "%s: Connection" % what)
    check_problem(408, headers, body, 408, what)


SLOW_HEADERS = (b"GET /healthz HTTP/1.1\r\nHost: t\r\n" +
                b"X-Slow: " + b"a" * 200 + b"\r\n\r\n")


def test_slow_headers():
    with Daemon(CONFIG % "header_timeout = 1s") as d:
        base_fds, base_rss = baseline(d)
        before = rejections_before(d).get("header_timeout", 0)
        silent = connect(d)
        slow = connect(d)
        t0 = time.monotonic()
        slow.sendall(SLOW_HEADERS[:20])	# some of a request came
        # Another client is served while the slow one trickles.
        normal = Meanwhile(d, t0)
        cut_at, got, sent = slow_send(slow, SLOW_HEADERS[20:], t0,
                                      t0 + 1.0 + CUT_SLACK + 5.0)
        normal.check(cut_at, "slow headers")
        check(sent >= 1, "the slow client sent nothing more")
        log("slow headers: %d bytes sent, cut at %.3f s" % (sent, cut_at))
        check_between(cut_at, 0.95, 1.0 + CUT_SLACK, "cut after (s)")
        check_408(got, "slow headers")
        # Nothing of a request: closed, no answer, at about the same time.
        check_closed(silent, "a connection that sent nothing", 1.0 + 5.0)
        slow.close()
        silent.close()
        check_eq(rejections(d)["header_timeout"] - before, 2,
                 "header_timeout counted")
        settle(d, base_fds, base_rss, "slow headers")


def test_slow_keep_alive():
    """The clock starts again at the end of a request kept alive."""
    with Daemon(CONFIG % "header_timeout = 1s") as d:
        s = connect(d)
        check_eq(get(s)[0], 200, "first request")
        t0 = time.monotonic()
        cut_at, got, _ = slow_send(s, SLOW_HEADERS, t0,
                                   t0 + 1.0 + CUT_SLACK + 5.0)
        check_between(cut_at, 0.95, 1.0 + CUT_SLACK, "cut after (s)")
        check_408(got, "slow second request")
        s.close()


def test_slow_body():
    with Daemon(CONFIG % "body_timeout = 1s") as d:
        base_fds, base_rss = baseline(d)
        before = rejections_before(d).get("body_timeout", 0)
        body = b'{"jobs": [{"job": "wait2"}]}' + b" " * 100
        slow = connect(d)
        slow.sendall(b"POST /jobs HTTP/1.1\r\nHost: t\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        t0 = time.monotonic()
        normal = Meanwhile(d, t0)
        cut_at, got, sent = slow_send(slow, body, t0,
                                      t0 + 1.0 + CUT_SLACK + 5.0)
        normal.check(cut_at, "slow body")
        check(sent >= 1, "the slow client sent nothing")
        check(sent < len(body), "the whole body went (%d bytes)" % sent)
        log("slow body: %d bytes sent, cut at %.3f s" % (sent, cut_at))
        check_between(cut_at, 0.9, 1.0 + CUT_SLACK, "cut after (s)")
        check_408(got, "slow body")
        slow.close()
        check_eq(rejections(d)["body_timeout"] - before, 1,
                 "body_timeout counted")
        # No job ran for the request cut off.
        status, _, listing, _ = d.request("GET", "/jobs")
        check_eq(status, 200, "GET /jobs")
        check(b"wait2" not in listing, "a job ran for a cut request: %r"
              % listing)
        settle(d, base_fds, base_rss, "slow body")


def test_waiting_is_not_cut():
    """A request waiting 2 s for its job outlasts 1 s timeouts: its
    connection is suspended, and on neither clock."""
    with Daemon(CONFIG % "header_timeout = 1s\nbody_timeout = 1s") as d:
        s = connect(d)
        t0 = time.monotonic()
        s.sendall(b"GET /wait HTTP/1.1\r\nHost: t\r\n\r\n")
        s.settimeout(10.0)
        status, _, body = read_response(s)
        check_eq(status, 200, "GET /wait (body %r)" % body)
        check_between(time.monotonic() - t0, 1.9, 6.0, "GET /wait (s)")
        # And the same for a request with a body, kept alive.
        t0 = time.monotonic()
        payload = b'{"jobs": [{"job": "wait2"}], "wait": "all"}'
        s.sendall(b"POST /jobs HTTP/1.1\r\nHost: t\r\n"
                  b"Content-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
        status, _, body = read_response(s)
        check_eq(status, 200, "POST /jobs (body %r)" % body)
        check_between(time.monotonic() - t0, 1.9, 6.0, "POST /jobs (s)")
        s.close()
        check_eq(rejections(d).get("header_timeout", 0) +
                 rejections(d).get("body_timeout", 0), 0,
                 "timeouts counted")


def test_many_slow_clients_leave_nothing():
    """100 slow clients at once, all cut; memory and descriptors back."""
    with Daemon(CONFIG % "header_timeout = 1s") as d:
        base_fds, base_rss = baseline(d)
        socks = [connect(d) for _ in range(100)]
        for s in socks:
            s.sendall(SLOW_HEADERS[:30])
        deadline = time.monotonic() + 1.0 + CUT_SLACK + 5.0
        pending = list(socks)
        answered = 0
        while pending:
            left = deadline - time.monotonic()
            check(left > 0, "%d slow clients not cut" % len(pending))
            ready, _, _ = select.select(pending, [], [], left)
            for s in ready:
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    data = b""
                if data.startswith(b"HTTP/1.1 408 "):
                    answered += 1
                if not data or b"\r\n\r\n" in data:
                    pending.remove(s)
        check_eq(answered, 100, "408 answers")
        for s in socks:
            s.close()
        settle(d, base_fds, base_rss, "100 slow clients")


def test_idle_connections_over_the_per_ip_limit_do_not_lock_others_out():
    """One address that opens many connections and sends nothing holds
    at most its own share: past max_connections_per_ip, its connections
    are closed at once, so that libmicrohttpd's own limit (a margin above
    max_connections) never fills with them and another address is served
    at once, not after header_timeout."""
    with Daemon(CONFIG % "max_connections = 20\nmax_connections_per_ip = 2"
                ) as d:
        base_fds, base_rss = baseline(d)
        before = rejections_before(d).get("connection_limit_per_ip", 0)
        # Far past libmicrohttpd's limit (20 + 2 + 16 = 38), all idle.
        idle = [connect(d) for _ in range(60)]
        other = connect(d, OTHER_ADDRESS, timeout=5.0)
        try:
            status = get(other)[0]
        except socket.timeout:
            fail("127.0.0.2 got no answer in 5 s while 127.0.0.1 held "
                 "60 idle connections")
        check_eq(status, 200, "a connection from 127.0.0.2")
        other.close()
        # 56 are closed without a word; which ones depends on the order
        # the two threads took them in, so wait for the ends to come.
        deadline = time.monotonic() + 10.0
        open_ = list(idle)
        while len(open_) > 4:
            left = deadline - time.monotonic()
            check(left > 0, "%d idle connections still open, 4 expected"
                  % len(open_))
            ready, _, _ = select.select(open_, [], [], left)
            for s in ready:
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                check_eq(data, b"", "bytes on a dropped connection")
                open_.remove(s)
        # The address's own two are served; two more wait for their 503.
        statuses = sorted(get(s)[0] for s in open_)
        check_eq(statuses, [200, 200, 503, 503], "the 4 left open")
        for s in idle:
            s.close()
        # Its closes seen, so that /metrics is asked within the limit.
        wait_fds(d, base_fds, "idle flood")
        check(rejections(d)["connection_limit_per_ip"] - before >= 56,
              "connections closed over the limit counted")
        settle(d, base_fds, base_rss, "idle flood")


if __name__ == "__main__":
    run_tests(globals())
