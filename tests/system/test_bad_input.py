"""taskpoold system test: the bad-input corpus (tests/bad-input/).

Replays every request of the corpus over a raw socket of its own against
one daemon with the shipped config, and checks each answer: its exact
status, a problem+json body where taskpoold answers (libmicrohttpd's own
answers are HTML), the header named, or a close without an answer.  Then
the daemon must still serve the seed route /tasks exactly and on time,
/metrics must have counted every refusal under its reason, and its
resident memory and open descriptors (sockets too) must be back near where
they were before the corpus.  The file format is in tests/bad-input/README.
And a full pool queue: 503 with Retry-After, counted.
"""

import glob
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, check, check_between, check_eq,  # noqa: E402
                            check_problem, fail, fd_count, header, log,
                            read_response, rss_kib, run_tests,
                            shipped_config_text, srcdir, TestFailure)

CORPUS = os.path.join(srcdir(), "tests", "bad-input")
SEED_BODY = b'{"results": ["Task 1 done", "Task 2 done"]}'
# After about 100 connections, RSS may keep what malloc's arenas grew to:
# a few MiB is allocator slack, a leak per request would be far more.
RSS_MARGIN_KIB = 4096
# AddressSanitizer keeps freed memory in quarantine (256 MiB by default)
# instead of reusing it: there RSS grows by what the corpus allocated.
RSS_MARGIN_ASAN_KIB = 65536
FD_MARGIN = 2
ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}


def decode(text):
    """The request bytes of a corpus file's text after its "--" line.

    The file's own newlines are not part of the request; \\r \\n \\t \\0 \\\\
    and \\xHH stand for their bytes, and \\[N|text] for text (escapes
    allowed, no ']') N times."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            i += 1
        elif ch != "\\":
            out += ch.encode("latin-1")
            i += 1
        elif text[i + 1] in ESCAPES:
            out += ESCAPES[text[i + 1]]
            i += 2
        elif text[i + 1] == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        elif text[i + 1] == "[":
            end = text.index("]", i)
            count, _, inner = text[i + 2:end].partition("|")
            out += decode(inner) * int(count)
            i = end + 1
        else:
            raise ValueError("unknown escape \\%s" % text[i + 1])
    return bytes(out)


def load(path):
    """A corpus file: ({key: value}, request bytes)."""
    with open(path, encoding="latin-1") as f:
        text = f.read()
    head, sep, body = text.partition("\n--\n")
    check(sep, "%s: no '--' line" % path)
    keys = {"why": ""}
    for line in head.split("\n"):
        if line.startswith("#"):
            keys["why"] += line[1:].strip() + " "
        elif line.strip():
            name, _, value = line.partition(":")
            keys[name.strip()] = value.strip()
    check("status" in keys, "%s: no status" % path)
    if keys["status"] != "closed":
        check(keys.get("answer") in ("problem", "mhd", "ok"),
              "%s: answer must be problem, mhd or ok" % path)
        check(("reason" in keys) == (int(keys["status"]) >= 400),
              "%s: a reason for each refusal, and only for one" % path)
    check(keys["why"].strip(), "%s: no comment saying why" % path)
    return keys, decode(body)


def corpus():
    paths = sorted(glob.glob(os.path.join(CORPUS, "*.req")))
    check(len(paths) >= 60, "corpus has only %d files" % len(paths))
    return [(os.path.basename(p),) + load(p) for p in paths]


def replay(port, data):
    """Sends data on a fresh connection: (status, headers, body), or None
    when the daemon closed (or reset) the connection without an answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass	# refused before the client was done: read the answer
        try:
            first = s.recv(65536, socket.MSG_PEEK)
        except ConnectionResetError:
            return None
        if not first:
            return None
        return read_response(s)


def metrics(d):
    """{reason: count} of taskpoold_http_rejections_total."""
    status, _, body, _ = d.request("GET", "/metrics")
    check_eq(status, 200, "GET /metrics")
    out = {}
    for m in re.finditer(rb'^taskpoold_http_rejections_total\{reason="'
                         rb'([^"]*)"\} (\S+)$', body, re.M):
        out[m.group(1).decode()] = int(float(m.group(2)))
    return out


def gauge(d, name):
    """The value of an unlabelled gauge in /metrics, or None."""
    status, _, body, _ = d.request("GET", "/metrics")
    check_eq(status, 200, "GET /metrics")
    m = re.search(rb"^%s (\S+)$" % name.encode(), body, re.M)
    return float(m.group(1)) if m else None


def under_asan(pid):
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def check_seed(d, what):
    status, _, body, elapsed = d.request("GET", "/tasks")
    check_eq(status, 200, "%s: GET /tasks" % what)
    check_eq(body, SEED_BODY, "%s: GET /tasks body" % what)
    check_between(elapsed, 1.9, 2.6, "%s: GET /tasks seconds" % what)


def check_answer(name, keys, got):
    what = "%s (%s)" % (name, keys["why"].strip())
    if keys["status"] == "closed":
        check(got is None, "%s: answered %r, must close" % (what, got))
        return
    check(got is not None, "%s: closed without an answer" % what)
    status, headers, body = got
    expect = int(keys["status"])
    if keys.get("answer") == "problem":
        check_problem(status, headers, body, expect, what)
    else:
        check_eq(status, expect, "%s: status (body %r)" % (what, body[:200]))
    if "header" in keys:
        check(keys["header"].lower() in headers,
              "%s: no %s header: %r" % (what, keys["header"], headers))


def test_corpus():
    cases = corpus()
    d = Daemon(config_text=shipped_config_text())
    d.start()
    try:
        check_seed(d, "before the corpus")
        before = metrics(d)
        rss0, fds0 = rss_kib(d.proc.pid), fd_count(d.proc.pid, sockets=True)
        expected, failures = {}, []
        for name, keys, data in cases:
            try:
                check_answer(name, keys, replay(d.port, data))
            except TestFailure as e:
                failures.append(str(e))
            if keys["status"] != "closed" and int(keys["status"]) >= 400:
                reason = keys["reason"]
                expected[reason] = expected.get(reason, 0) + 1
        log("corpus: %d requests, %d wrong" % (len(cases), len(failures)))
        if failures:
            fail("%d of %d wrong:\n  %s" % (len(failures), len(cases),
                                            "\n  ".join(failures)))
        after = metrics(d)
        for reason, n in sorted(expected.items()):
            check_eq(after.get(reason, 0) - before.get(reason, 0), n,
                     "rejections counted as %s" % reason)
        check_eq(sum(after.values()) - sum(before.values()),
                 sum(expected.values()), "rejections counted in all")
        check_seed(d, "after the corpus")
        # A client's malformed request is counted, not warned about: at
        # warning level any client could flood the log.
        warnings = [line for _, line in d.log_lines() if " warning: " in line]
        check_eq(warnings, [], "warnings logged for the corpus")
        # The corpus's sockets are closed on both sides once every answer
        # is read; the daemon's close may trail ours by a loop turn.
        deadline = time.monotonic() + 10
        while fd_count(d.proc.pid, sockets=True) > fds0 + FD_MARGIN and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        rss1, fds1 = rss_kib(d.proc.pid), fd_count(d.proc.pid, sockets=True)
        log("RSS %d -> %d KiB, descriptors %d -> %d" % (rss0, rss1, fds0,
                                                         fds1))
        margin = RSS_MARGIN_ASAN_KIB if under_asan(d.proc.pid) else \
            RSS_MARGIN_KIB
        check(rss1 <= rss0 + margin, "RSS grew from %d to %d KiB (margin "
              "%d)" % (rss0, rss1, margin))
        check(fds1 <= fds0 + FD_MARGIN, "descriptors went from %d to %d"
              % (fds0, fds1))
    finally:
        d.stop()


PLUGINS = os.environ.get("TASKPOOLD_PLUGINDIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "plugins")


def test_full_queue_is_503_with_retry_after():
    """One worker, a queue of one: a third job that needs a worker is
    refused with 503 and Retry-After, and counted as queue_full."""
    d = Daemon("[pool]\nworkers = 1\nqueue = 1\n"
               "[job hold]\nkind = plugin\nlibrary = %s/testjobs.so\n"
               "function = wait_cancel\ntimeout = 1m\n"
               "[route /hold]\nmethod = POST\njobs = hold\nwait = none\n"
               % PLUGINS)
    d.start()
    try:
        before = metrics(d).get("queue_full", 0)
        ids = []
        for i in range(2):
            status, _, body, _ = d.request("POST", "/hold", body=b"")
            check_eq(status, 202, "POST /hold #%d (body %r)" % (i + 1, body))
            ids.append(json.loads(body)["jobs"][0]["id"])
            # The first holds the worker before the second takes the
            # queue's one place (a job's record says running as soon as
            # it is handed to the pool: the pool's gauge says more).
            deadline = time.monotonic() + 10
            while i == 0 and gauge(d, "taskpoold_pool_busy_workers") != 1:
                check(time.monotonic() < deadline, "the worker never "
                      "took the first job")
                time.sleep(0.02)
        status, headers, body, _ = d.request("POST", "/hold", body=b"")
        check_problem(status, headers, body, 503, "a third job")
        check_eq(header(headers, "Retry-After"), "1", "Retry-After")
        check_eq(metrics(d).get("queue_full", 0) - before, 1,
                 "rejections counted as queue_full")
        check_eq(gauge(d, "taskpoold_pool_queue_depth"), 1, "queue depth")
        for job_id in ids:
            d.request("DELETE", "/jobs/" + job_id)
    finally:
        d.stop()


run_tests(globals())
