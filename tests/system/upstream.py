"""A small upstream for the http kind's system tests (standard library
only): an HTTP server on 127.0.0.1 with a kernel-chosen port, run on
threads of the test's own process, so that a test can ask it how many
requests each path got.

    with Upstream() as up:
        url = up.url("/json")
        ...
        up.hits("/flaky/a")   # requests seen for that path

Paths (KEY: anything, so that each test counts its own):
    /json               200, application/json: {"answer": 42, "list": [1, "two"]}
    /problem            200, application/problem+json: {"title": "x"}
    /text               200, text/plain: "hello\\n"
    /bad-utf8           200, text/plain: "caf\\xe9!"  (Latin-1, not UTF-8)
    /not-json           200, application/json: "{oops"
    /empty              204, no body
    /echo               200, JSON: the request's method, path, headers, body
    /hang               never answers (until the upstream stops)
    /reset              resets the connection (RST) without answering
    /garbage            answers bytes that are not HTTP, then closes
    /status/N           N, text/plain: "status N: " and 600 x "y"
    /flaky/KEY          503 for the first two requests of KEY, then 200 JSON
    /retry-after/KEY    503 with Retry-After: 1 the first time, then 200
    /retry-date/KEY     503 with Retry-After: an HTTP-date 2 s ahead, then 200
    /huge               200, 2 MiB of text
    /huge-unsized       200, 2 MiB of text without a Content-Length
"""

import email.utils
import http.server
import json
import socket
import struct
import threading
import time

HOST = "127.0.0.1"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, body=b"", ctype="text/plain", headers=()):
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if status != 204 and self.command != "HEAD":
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass	# the daemon hung up (max_response): expected

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _handle(self):
        up = self.server.upstream
        path = self.path
        body = self._body()
        n = up.count(path)
        if path == "/json":
            return self._send(200, b'{"answer": 42, "list": [1, "two"]}',
                              "application/json")
        if path == "/problem":
            return self._send(200, b'{"title": "x"}',
                              "application/problem+json; charset=utf-8")
        if path == "/text":
            return self._send(200, b"hello\n")
        if path == "/bad-utf8":
            return self._send(200, b"caf\xe9!")
        if path == "/not-json":
            return self._send(200, b"{oops", "application/json")
        if path == "/empty":
            return self._send(204)
        if path.startswith("/echo"):
            echo = {"method": self.command, "path": path,
                    "headers": {k.lower(): v for k, v in
                                self.headers.items()},
                    "body": body.decode("utf-8", "replace")}
            return self._send(200, json.dumps(echo).encode(),
                              "application/json")
        if path == "/hang":
            up.stopping.wait(120)
            return
        if path == "/reset":
            # SO_LINGER 0: close() sends RST, not FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if path == "/garbage":
            self.close_connection = True
            try:
                self.wfile.write(b"\x00\xff\xfeNOT HTTP/1.1 at all\r\n"
                                 b"\x1b[31m;;;\r\n\r\n" + b"\xff" * 300)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            return self._send(code, b"status %d: " % code + b"y" * 600)
        if path.startswith("/flaky/"):
            if n <= 2:
                return self._send(503, b"busy")
            return self._send(200, b'{"attempt": %d}' % n,
                              "application/json")
        if path.startswith("/retry-after/"):
            if n == 1:
                return self._send(503, b"later", headers=[
                    ("Retry-After", "1")])
            return self._send(200, b"ok")
        if path.startswith("/retry-date/"):
            if n == 1:
                date = email.utils.formatdate(time.time() + 2, usegmt=True)
                return self._send(503, b"later", headers=[
                    ("Retry-After", date)])
            return self._send(200, b"ok")
        if path == "/huge":
            return self._send(200, b"z" * (2 << 20))
        if path == "/huge-unsized":
            # No Content-Length: the body ends when the connection does,
            # so only the bytes as they come can tell it is too big.
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for _ in range(32):
                    self.wfile.write(b"z" * (64 << 10))
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        return self._send(404, b"no such path")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class Upstream:
    """The server, its thread, and the requests it saw, by path."""

    def __init__(self):
        self.stopping = threading.Event()
        self._hits = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.server = http.server.ThreadingHTTPServer((HOST, 0), _Handler)
        self.server.daemon_threads = True
        self.server.upstream = self
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def url(self, path):
        return "http://%s:%d%s" % (HOST, self.port, path)

    def count(self, path):
        """Counts one request for path; returns how many it has had."""
        with self._cond:
            self._hits[path] = self._hits.get(path, 0) + 1
            self._cond.notify_all()
            return self._hits[path]

    def hits(self, path):
        with self._lock:
            return self._hits.get(path, 0)

    def wait_hits(self, path, n, timeout):
        """Waits until path had n requests; returns whether it did."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._hits.get(path, 0) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True


class RefusingPort:
    """A loopback port bound but not listening: connecting is refused
    (ECONNREFUSED) for as long as this holds it, and nobody else gets it."""

    def __enter__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def url(self, path):
        return "http://%s:%d%s" % (HOST, self.port, path)
