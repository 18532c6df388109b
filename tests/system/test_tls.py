#!/usr/bin/env python3
"""TLS: `listen = https://...` with [server] cert, key and tls_priorities.

Each test makes a CA and server certificates of its own with certtool
(Debian's gnutls-bin) in a temporary directory; clients verify them
against that CA: curl with --cacert, Python's ssl with the CA file.  The
certificates name 127.0.0.1 and localhost.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (EX_CONFIG, HOST, Daemon, Skip, check,  # noqa: E402
                            check_between, check_eq, fail, log, run_cli,
                            run_tests)

CONFIG_TEMPLATE = """
[server]
instance = tlstest
cert = {dir}/server.pem
key = {dir}/server.key
{extra}

[job task1]
kind = sleep
duration = 1s
result = Task 1 done

[job task2]
kind = sleep
duration = 2s
result = Task 2 done

[route /tasks]
jobs = task1 task2
wait = all

[job short]
kind = sleep
duration = 20ms
result = short result

[route /short]
jobs = short
"""

TASKS_BODY = {"results": ["Task 1 done", "Task 2 done"]}
RELOADED_RE = r" info: reloaded "


class Pki:
    """A CA and the server certificates it signs, in a temporary
    directory; server.pem and server.key are what the config names."""

    def __init__(self):
        if shutil.which("certtool") is None:
            raise Skip("certtool (Debian's gnutls-bin) is not installed")
        self.tmp = tempfile.TemporaryDirectory(prefix="taskpoold-tls-")
        self.dir = self.tmp.name
        self.ca_key = self.path("ca.key")
        self.ca = self.path("ca.pem")
        self.genkey(self.ca_key)
        self.certtool("--generate-self-signed", "--load-privkey",
                      self.ca_key, "--outfile", self.ca, template=(
                          'cn = "taskpoold test CA"\nca\ncert_signing_key\n'
                          'expiration_days = 2\n'))

    def path(self, name):
        return os.path.join(self.dir, name)

    def certtool(self, *args, template=None):
        argv = ["certtool"] + list(args)
        if template is not None:
            tmpl = self.path("template")
            with open(tmpl, "w") as f:
                f.write(template)
            argv += ["--template", tmpl]
        p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=60)
        check_eq(p.returncode, 0, "certtool %s: %s"
                 % (" ".join(args), p.stderr.decode(errors="replace")))

    def genkey(self, path):
        self.certtool("--generate-privkey", "--key-type=ecdsa",
                      "--outfile", path)
        os.chmod(path, 0o600)

    def issue(self, serial, key=None, cert=None):
        """A server certificate with this serial for a new key (or key),
        written over server.pem and server.key (or to key and cert)."""
        key = key or self.path("server.key")
        cert = cert or self.path("server.pem")
        tmp_key, tmp_cert = key + ".new", cert + ".new"
        self.genkey(tmp_key)
        self.certtool("--generate-certificate", "--load-privkey", tmp_key,
                      "--load-ca-certificate", self.ca,
                      "--load-ca-privkey", self.ca_key, "--outfile",
                      tmp_cert, template=(
                          'cn = "localhost"\ndns_name = "localhost"\n'
                          'ip_address = "127.0.0.1"\nserial = %d\n'
                          'tls_www_server\nexpiration_days = 2\n' % serial))
        os.replace(tmp_key, key)
        os.replace(tmp_cert, cert)

    def config(self, extra=""):
        return CONFIG_TEMPLATE.format(dir=self.dir, extra=extra)

    def context(self):
        """A client context that trusts only this CA."""
        return ssl.create_default_context(cafile=self.ca)

    def close(self):
        self.tmp.cleanup()


def tls_daemon(pki, extra="", **kwargs):
    return Daemon(pki.config(extra), listen="https://127.0.0.1:0", **kwargs)


def https(d, pki, method, path, headers=None, timeout=30.0):
    """One request on a fresh verified TLS connection: (status, headers,
    body, elapsed)."""
    conn = http.client.HTTPSConnection(HOST, d.port, timeout=timeout,
                                       context=pki.context())
    t0 = time.monotonic()
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, resp.headers, body, time.monotonic() - t0
    except (OSError, http.client.HTTPException) as e:
        fail("%s %s over TLS failed: %r; log:\n%s"
             % (method, path, e, d.log_text()))
    finally:
        conn.close()


def peer_serial(d, pki):
    """The serial number of the certificate a new connection gets."""
    with socket.create_connection((HOST, d.port), timeout=10) as s:
        with pki.context().wrap_socket(s, server_hostname=HOST) as t:
            return int(t.getpeercert()["serialNumber"], 16)


def reload_and_wait(d):
    """SIGHUP, then the log's verdict: True (reloaded) or False
    (refused)."""
    start = len(d.log_lines())
    d.send_signal(signal.SIGHUP)
    _, line, _ = d.wait_for_log(r" info: reloaded | reload refused",
                                start=start, what="the reload's outcome")
    return "reloaded" in line


def test_tasks_over_https_as_curl_verifies_it():
    pki = Pki()
    try:
        pki.issue(1)
        with tls_daemon(pki) as d:
            d.wait_for_log(r" info: TLS: certificate \S+ \(serial 01\), "
                           r"priorities SECURE128:", what="the TLS line")
            t0 = time.monotonic()
            p = subprocess.run(
                ["curl", "-sS", "--cacert", pki.ca, "-w", "\n%{http_code}",
                 "https://127.0.0.1:%d/tasks" % d.port],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            elapsed = time.monotonic() - t0
            check_eq(p.returncode, 0, "curl's exit status (%s)"
                     % p.stderr.decode(errors="replace"))
            body, status = p.stdout.decode().rsplit("\n", 1)
            check_eq((status, json.loads(body)), ("200", TASKS_BODY),
                     "GET /tasks over https with curl")
            check_between(elapsed, 1.9, 2.6, "GET /tasks over https")
            # By name too: the certificate names localhost.
            p = subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                 "--cacert", pki.ca,
                 "https://localhost:%d/healthz" % d.port],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            check_eq(p.stdout, b"200", "GET https://localhost/healthz (%s)"
                     % p.stderr.decode(errors="replace"))
            # Not trusted without the CA: the check is real.
            p = subprocess.run(
                ["curl", "-sS", "https://127.0.0.1:%d/healthz" % d.port],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            check_eq(p.returncode, 60, "curl without --cacert (peer "
                     "certificate cannot be authenticated)")
            status, _, body, elapsed = https(d, pki, "GET", "/tasks")
            check_eq((status, json.loads(body)), (200, TASKS_BODY),
                     "GET /tasks with Python's ssl")
            check_between(elapsed, 1.9, 2.6, "GET /tasks with Python's ssl")
            d.stop()
    finally:
        pki.close()


def test_ndjson_stream_over_https():
    pki = Pki()
    try:
        pki.issue(1)
        with tls_daemon(pki) as d:
            conn = http.client.HTTPSConnection(HOST, d.port, timeout=30,
                                               context=pki.context())
            t0 = time.monotonic()
            conn.request("GET", "/tasks",
                         headers={"Accept": "application/x-ndjson"})
            resp = conn.getresponse()
            check_eq(resp.status, 200, "status")
            check_eq(resp.headers.get("Transfer-Encoding"), "chunked",
                     "Transfer-Encoding")
            lines = []
            while True:
                line = resp.readline()
                if not line:
                    break
                lines.append((time.monotonic() - t0, json.loads(line)))
            conn.close()
            check_eq(len(lines), 3, "lines: two jobs and the summary")
            (t1, one), (t2, two), (_, summary) = lines
            check_eq((one["job"], one["result"]), ("task1", "Task 1 done"),
                     "the first line")
            check_between(t1, 0.9, 1.6, "task1's line")
            check_eq((two["job"], two["result"]), ("task2", "Task 2 done"),
                     "the second line")
            check_between(t2, 1.9, 2.6, "task2's line")
            check_eq(summary["answer"], TASKS_BODY, "the summary's answer")
            d.stop()
    finally:
        pki.close()


def old_tls_handshake(port, pki):
    """A TLS 1.0/1.1 handshake (Python's client allows it only at
    security level 0): the version agreed, or None if refused."""
    ctx = pki.context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    try:
        with socket.create_connection((HOST, port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=HOST) as t:
                return t.version()
    except (ssl.SSLError, ConnectionError):
        return None


def test_100_waiting_requests_over_tls_are_answered_together():
    """Suspend and resume over TLS, many at once: each connection
    handshakes first, then all send GET /tasks, and all get the seed's
    answer after about 2 s (the handshakes are not timed)."""
    pki = Pki()
    try:
        pki.issue(1)
        with tls_daemon(pki) as d:
            conns = []
            try:
                for _ in range(100):
                    s = socket.create_connection((HOST, d.port), timeout=30)
                    conns.append(pki.context().wrap_socket(
                        s, server_hostname=HOST))
                t0 = time.monotonic()
                for c in conns:
                    c.sendall(b"GET /tasks HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
                sent = time.monotonic() - t0
                answers = []
                for c in conns:
                    data = b""
                    while True:
                        chunk = c.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    answers.append((time.monotonic() - t0, data))
            finally:
                for c in conns:
                    c.close()
            last = max(t for t, _ in answers)
            bad = [a for _, a in answers
                   if not a.startswith(b"HTTP/1.1 200 ") or
                   json.loads(a.split(b"\r\n\r\n", 1)[1]) != TASKS_BODY]
            check(not bad, "%d of 100 not answered 200 with the seed's "
                  "body, e.g. %r" % (len(bad), bad[:1]))
            check_between(min(t for t, _ in answers), 1.9, 2.6 + sent,
                          "the first answer")
            check(last <= 2.6 + sent + 1.0, "the last answer after %.2f s"
                  % last)
            log("  100 requests over TLS, sent in %.3f s: answered in "
                "%.2f to %.2f s" % (sent, min(t for t, _ in answers), last))
            d.stop()
    finally:
        pki.close()


def test_tls_1_1_is_refused_by_default():
    pki = Pki()
    try:
        pki.issue(1)
        with tls_daemon(pki) as d:
            check_eq(old_tls_handshake(d.port, pki), None,
                     "a TLS 1.1 handshake with the default priorities")
            status, _, _, _ = https(d, pki, "GET", "/healthz")
            check_eq(status, 200, "GET /healthz with TLS 1.2+ after it")
            d.stop()
        # The same client gets through where the priorities allow it: so
        # the refusal above is the daemon's, not the client's.
        with tls_daemon(pki, "tls_priorities = NORMAL") as d:
            check_eq(old_tls_handshake(d.port, pki), "TLSv1.1",
                     "a TLS 1.1 handshake with tls_priorities = NORMAL")
            d.stop()
    finally:
        pki.close()


def test_plain_http_to_the_tls_port_gets_no_http_answer():
    pki = Pki()
    try:
        pki.issue(1)
        with tls_daemon(pki) as d:
            with socket.create_connection((HOST, d.port), timeout=10) as s:
                s.sendall(b"GET /tasks HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        got += chunk
                except ConnectionResetError:
                    pass
            check(not got.startswith(b"HTTP/"), "plain HTTP to the TLS "
                  "port was answered in plain HTTP: %r" % got[:80])
            log("  plain HTTP to the TLS port: closed after %d bytes %r"
                % (len(got), got[:16]))
            status, _, _, _ = https(d, pki, "GET", "/healthz")
            check_eq(status, 200, "GET /healthz over TLS after it")
            d.stop()
    finally:
        pki.close()


def test_reload_serves_a_new_certificate_to_new_connections_only():
    pki = Pki()
    try:
        pki.issue(1)
        with tls_daemon(pki) as d:
            check_eq(peer_serial(d, pki), 1, "serial before the reload")
            old = http.client.HTTPSConnection(HOST, d.port, timeout=30,
                                              context=pki.context())
            old.request("GET", "/healthz")
            resp = old.getresponse()
            resp.read()
            check_eq(resp.status, 200, "the old connection's first request")
            pki.issue(2)
            check(reload_and_wait(d), "the reload was refused:\n%s"
                  % d.log_text())
            d.wait_for_log(r" info: reload: TLS certificate \S+ \(serial "
                           r"02\) for new connections", what="the TLS line")
            check_eq(peer_serial(d, pki), 2, "serial after the reload")
            # The connection opened before goes on, with its certificate.
            old.request("GET", "/short")
            resp = old.getresponse()
            check_eq((resp.status, json.loads(resp.read())),
                     (200, {"results": ["short result"]}),
                     "GET /short on the connection opened before")
            der = old.sock.getpeercert(binary_form=True)
            check(der is not None, "the old connection has a certificate")
            check_eq(int(old.sock.getpeercert()["serialNumber"], 16), 1,
                     "the old connection's certificate")
            old.close()
            d.stop()
    finally:
        pki.close()


def test_reloads_racing_handshakes_lose_no_connection():
    """Certificates swapped while clients handshake: every connection
    gets one of the certificates issued, whole, and its answer."""
    pki = Pki()
    try:
        pki.issue(1)
        with tls_daemon(pki) as d:
            done = threading.Event()
            seen, errors = {}, []

            def client():
                while not done.is_set():
                    try:
                        with socket.create_connection((HOST, d.port),
                                                      timeout=10) as s:
                            with pki.context().wrap_socket(
                                    s, server_hostname=HOST) as t:
                                serial = int(
                                    t.getpeercert()["serialNumber"], 16)
                                t.sendall(b"GET /healthz HTTP/1.1\r\n"
                                          b"Host: x\r\nConnection: "
                                          b"close\r\n\r\n")
                                first = t.recv(12)
                        if first != b"HTTP/1.1 200":
                            errors.append(first)
                        seen[serial] = seen.get(serial, 0) + 1
                    except (OSError, ssl.SSLError) as e:
                        errors.append(repr(e))

            threads = [threading.Thread(target=client) for _ in range(4)]
            for t in threads:
                t.start()
            try:
                for serial in range(2, 7):
                    pki.issue(serial)
                    check(reload_and_wait(d), "reload %d refused:\n%s"
                          % (serial, d.log_text()))
                    check_eq(peer_serial(d, pki), serial,
                             "serial after reload %d" % serial)
                # On a loaded machine the four clients may not have
                # finished one more handshake while the five reloads
                # ran: let them go on until one has met a later
                # certificate (the last one, by now).
                deadline = time.monotonic() + 30.0
                while len(seen) < 2 and not errors and \
                        time.monotonic() < deadline:
                    time.sleep(0.01)
            finally:
                done.set()
                for t in threads:
                    t.join(timeout=30)
            check(not errors, "%d connections failed, e.g. %r"
                  % (len(errors), errors[:3]))
            check(set(seen) <= set(range(1, 7)), "serials seen: %r" % seen)
            check(len(seen) >= 2, "the clients saw one certificate only: "
                  "%r" % seen)
            log("  handshakes per certificate serial across 5 reloads: %r"
                % dict(sorted(seen.items())))
            d.stop()
    finally:
        pki.close()


def test_reload_with_a_bad_key_keeps_the_old_certificate():
    pki = Pki()
    try:
        pki.issue(1)
        with tls_daemon(pki) as d:
            # A new certificate, and a key that is not its own.
            pki.issue(3)
            pki.genkey(pki.path("server.key"))
            check(not reload_and_wait(d), "a mismatched key was accepted")
            d.wait_for_log(r"taskpoold\.conf:5: \S+server\.key is not the "
                           r"key of the certificate in \S+server\.pem",
                           what="the reason")
            check_eq(peer_serial(d, pki), 1, "serial after the refused "
                     "reload")
            status, _, body, _ = https(d, pki, "GET", "/short")
            check_eq((status, json.loads(body)),
                     (200, {"results": ["short result"]}),
                     "GET /short after the refused reload")
            # -t says the same, with file and line.
            rc, _, err = run_cli(["-t", "-c", d.config_path])
            check_eq(rc, EX_CONFIG, "taskpoold -t exit status (%s)" % err)
            check(re.search(r"taskpoold\.conf:5: \S+server\.key is not the "
                            r"key of the certificate", err),
                  "taskpoold -t: %r" % err)
            d.stop()
    finally:
        pki.close()


def test_config_refuses_bad_tls_settings_with_file_and_line():
    pki = Pki()
    try:
        pki.issue(1)
        path = pki.path("t.conf")
        cases = [
            # The key readable by others: no secret.
            (0o644, "", 5, r"server\.key is accessible to others "
             r"\(mode 644\): chmod o-rwx it"),
            (0o600, "tls_priorities = NORMAL:+NO-SUCH-THING", 6,
             r"bad tls_priorities: The request is invalid\. at: "
             r"\+NO-SUCH-THING"),
            (0o600, "listen = https://127.0.0.1:0", None, None),
        ]
        for mode, extra, line, reason in cases:
            os.chmod(pki.path("server.key"), mode)
            with open(path, "w") as f:
                f.write(pki.config(extra))
            rc, out, err = run_cli(["-t", "-c", path])
            if reason is None:
                check_eq((rc, out.strip()), (0, "%s: configuration OK"
                                              % path), "taskpoold -t")
                continue
            check_eq(rc, EX_CONFIG, "exit status (%s)" % err)
            check(re.search(r"t\.conf:%d: .*%s" % (line, reason), err),
                  "taskpoold -t: %r" % err)
        # https:// without cert and key; cert without key.
        for text, line, reason in [
                ("[server]\nlisten = https://127.0.0.1:8443\n", 2,
                 r"listen = https://\.\.\. needs cert and key in \[server\]"),
                ("[server]\ncert = %s\n" % pki.path("server.pem"), 2,
                 r"cert and key go together: key is missing")]:
            with open(path, "w") as f:
                f.write(text)
            rc, _, err = run_cli(["-t", "-c", path])
            check_eq(rc, EX_CONFIG, "exit status (%s)" % err)
            check(re.search(r"t\.conf:%d: %s" % (line, reason), err),
                  "taskpoold -t: %r" % err)
    finally:
        pki.close()


def test_socket_activation_takes_tls_from_the_listen_scheme():
    """Under socket activation the listen address is ignored, its scheme
    is not: https:// serves TLS on the passed socket."""
    from test_socket_activation import launcher_args, listening_socket
    pki = Pki()
    sock = listening_socket()
    try:
        pki.issue(1)
        fds = [sock.fileno()]
        d = tls_daemon(pki, pass_fds=fds)
        d.args = launcher_args(fds, "self", None) + d.args
        with d:
            d.wait_for_log(r" info: listening on https://127\.0\.0\.1:%d "
                           % sock.getsockname()[1], what="the listen line")
            check_eq(d.port, sock.getsockname()[1], "the port served")
            status, _, body, _ = https(d, pki, "GET", "/short")
            check_eq((status, json.loads(body)),
                     (200, {"results": ["short result"]}),
                     "GET /short over TLS on the passed socket")
            d.stop()
    finally:
        sock.close()
        pki.close()


def test_sigterm_drains_a_request_waiting_over_tls():
    pki = Pki()
    try:
        pki.issue(1)
        with tls_daemon(pki) as d:
            got = {}

            def client():
                got["answer"] = https(d, pki, "GET", "/tasks")

            t = threading.Thread(target=client)
            t.start()
            d.wait_for_log(r"job task1 done", what="task1 done")
            d.send_signal(signal.SIGTERM)
            t.join(timeout=10)
            check(not t.is_alive(), "no answer within 10 s of SIGTERM")
            status, _, body, elapsed = got["answer"]
            check_eq((status, json.loads(body)), (200, TASKS_BODY),
                     "GET /tasks drained at the stop")
            check_between(elapsed, 1.9, 2.6, "GET /tasks drained")
            rc, _ = d.wait_exit(timeout=15.0)
            check_eq(rc, 0, "exit status")
    finally:
        pki.close()


if __name__ == "__main__":
    run_tests(globals())
