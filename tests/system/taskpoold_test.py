"""Shared helpers for the taskpoold system tests (Python standard library
only).

The tests run the real daemon ($TASKPOOLD) on 127.0.0.1 with a kernel-chosen
port (-l 127.0.0.1:0) and talk HTTP to it.  Every daemon started here is
killed by pid when its test ends, when the test program exits, and (through
PR_SET_PDEATHSIG) when the test program dies without cleaning up.

    with Daemon(CONFIG) as d:
        status, headers, body, elapsed = d.request("GET", "/tasks")
        d.stop()                 # SIGTERM, asserts exit status 0

    if __name__ == "__main__":
        run_tests(globals())     # test_* functions, in definition order
"""

import array
import atexit
import ctypes
import ctypes.util
import fcntl
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time
import traceback

HOST = "127.0.0.1"

# automake's test driver: 77 = skipped, 99 = hard error.
EXIT_SKIP = 77
EXIT_HARD_ERROR = 99

EX_USAGE = 64
EX_CONFIG = 78

# TASKPOOLD_VALGRIND=1 runs every Daemon under valgrind's memcheck (.ci/run
# does, for the whole system suite): an error, or a definite leak at a clean
# exit, fails the test with valgrind's report.  valgrind serialises the
# threads and runs code ~20-50x slower, so the waits for the daemon scale by
# VALGRIND_SLOWDOWN, and the load tests shrink their client counts by
# load_scale().  TASKPOOLD_VALGRIND_OPTS adds options (--track-origins=yes
# to find where an uninitialised value came from).
VALGRIND = os.environ.get("TASKPOOLD_VALGRIND", "") not in ("", "0")
# Not 1: the daemon exits 1 on its own (EXIT_FAILURE); this one is valgrind's.
VALGRIND_ERROR_EXIT = 97
VALGRIND_SLOWDOWN = 6.0 if VALGRIND else 1.0
# What a bound on a request's latency gains under valgrind (check_between).
VALGRIND_LATENCY = 3.0
# Load tests under valgrind run a tenth of their clients: enough to queue
# and race, not so many that a serialised daemon takes minutes per round.
VALGRIND_LOAD_SCALE = 0.1

# How long the daemon may take to print its "(port N)" line.
START_TIMEOUT = 10.0 * VALGRIND_SLOWDOWN
# How long a plain stop (nothing running) may take.
STOP_TIMEOUT = 15.0 * VALGRIND_SLOWDOWN

PORT_RE = re.compile(r"\(port (\d+)\)")
# "job NAME done in 1.00 s (id ID)"
JOB_DONE_RE = re.compile(
    r" info: job (\S+) done in ([0-9.]+) s \(id ([^)]+)\)")
# "job NAME STATE after 1.00 s (id ID)[: error]"
JOB_END_RE = re.compile(
    r" info: job (\S+) (done in|failed after|cancelled after|timed_out after)"
    r" ([0-9.]+) s \(id ([^)]+)\)")
# RFC 3339 UTC with milliseconds, as the daemon writes times.
RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# fcntl's F_SETPIPE_SZ and F_GETPIPE_SZ (Linux; named in Python >= 3.10).
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def load_scale(n, floor=1):
    """A load test's count n: all of it, or a tenth under valgrind."""
    if not VALGRIND:
        return n
    return max(floor, int(n * VALGRIND_LOAD_SCALE))


def valgrind_args(log_path):
    """The command-line prefix that runs the daemon under memcheck, its
    report in log_path.  Definite leaks are errors (the daemon frees what
    it owns at a clean exit); indirect ones are shown, as they hang off a
    definite one and name what it held; "possible" and "reachable" are not:
    thread stacks and libraries' once-only allocations, never growth."""
    supp = os.path.join(srcdir(), "tests", "valgrind.supp")
    # By its path: a launcher before it (socket activation's) execs it
    # without a PATH search.
    return [shutil.which("valgrind") or "valgrind", "--tool=memcheck",
            "--child-silent-after-fork=yes",
            "--error-exitcode=%d" % VALGRIND_ERROR_EXIT,
            "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite,indirect",
            "--num-callers=30", "--fair-sched=yes", "--suppressions=" + supp,
            "--log-file=" + log_path] + \
        os.environ.get("TASKPOOLD_VALGRIND_OPTS", "").split()


_valgrind_pidfd = None


def need_exec():
    """Skips a test that runs exec jobs where the daemon cannot: under a
    valgrind without pidfd_open (3.19, Debian 12's, answers ENOSYS for
    syscall 434, so every exec job fails "Function not implemented").
    Probed once: perl (Debian's perl-base) calls it under valgrind."""
    global _valgrind_pidfd
    if not VALGRIND:
        return
    if _valgrind_pidfd is None:
        r = subprocess.run(
            ["valgrind", "-q", "--tool=none", "perl", "-e",
             "exit(syscall(434, $$ + 0, 0) < 0)"],	# 434: pidfd_open
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, timeout=120)
        _valgrind_pidfd = r.returncode == 0
    if not _valgrind_pidfd:
        raise Skip("exec jobs under valgrind: this valgrind does not "
                   "implement pidfd_open (valgrind 3.19 answers ENOSYS)")


# What a valgrind error record starts with (after "==PID== "), to find
# errors in the report of a daemon killed before its ERROR SUMMARY.
VALGRIND_ERROR_RE = re.compile(
    r"^==\d+== (Invalid (read|write|free)|Mismatched free|Conditional jump"
    r"|Use of uninitialised|Syscall param|Source and destination overlap"
    r"|Argument '|Process terminating|.* bytes in .* definitely lost)",
    re.M)
VALGRIND_SUMMARY_RE = re.compile(r"ERROR SUMMARY: (\d+) errors")


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "WARNING: ThreadSanitizer", "runtime error:")


class TestFailure(AssertionError):
    pass


class Skip(Exception):
    """Raise from a test to skip it (exit status 77 if every test skips)."""


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def check_eq(got, expected, what):
    if got != expected:
        raise TestFailure("%s: expected %r, got %r" % (what, expected, got))


def latency_bound(seconds):
    """A bound on how long the daemon takes to answer: as it is, or
    VALGRIND_LATENCY more under valgrind (its first pass through a code
    path translates it, and it runs one thread at a time)."""
    return seconds + VALGRIND_LATENCY if VALGRIND else seconds


def check_between(value, low, high, what):
    """low <= value <= high; under valgrind high + VALGRIND_LATENCY: a
    job's duration is the kernel's timer and holds, the daemon's own work
    around it is 20-50x slower."""
    if VALGRIND:
        high += VALGRIND_LATENCY
    if not (low <= value <= high):
        raise TestFailure("%s: %.3f s is outside [%.2f s, %.2f s]"
                          % (what, value, low, high))


def log(msg):
    print(msg, flush=True)


# ---- environment ------------------------------------------------------------

def daemon_path():
    path = os.environ.get("TASKPOOLD")
    if not path:
        log("TASKPOOLD is not set: run these through `make check`, or set "
            "TASKPOOLD to the built daemon and TASKPOOLD_SRCDIR to the "
            "source tree")
        sys.exit(EXIT_HARD_ERROR)
    if not os.access(path, os.X_OK):
        log("TASKPOOLD=%s is not an executable file" % path)
        sys.exit(EXIT_HARD_ERROR)
    return path


def srcdir():
    d = os.environ.get("TASKPOOLD_SRCDIR")
    if d:
        return d
    return os.path.normpath(os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "..", ".."))


def builddir():
    return os.environ.get("TASKPOOLD_BUILDDIR") or srcdir()


def shipped_config_path():
    """The shipped config as the build made it from etc/taskpoold.conf.in
    (its plugin job names the build tree's example plugins)."""
    return os.path.join(builddir(), "etc", "taskpoold.conf")


def shipped_config_text():
    """The shipped config's text, with its [store] path in the daemon's own
    temporary directory (Daemon fills in @TMPDIR@): the file in the build
    tree is `make run`'s, and one daemon at a time may use a database."""
    with open(shipped_config_path()) as f:
        text = f.read()
    text, n = re.subn(r"^path = .*$", "path = @TMPDIR@/taskpoold.db", text,
                      flags=re.M)
    assert n == 1, "the shipped config has one [store] path"
    return text


def raise_nofile_limit():
    """Raises RLIMIT_NOFILE's soft limit to the hard one; returns both."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        target = 1 << 20
    else:
        target = hard
    if soft == resource.RLIM_INFINITY or soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ---- leftovers --------------------------------------------------------------

_live_pids = set()
_live_lock = threading.Lock()


def _kill_leftovers():
    with _live_lock:
        pids = list(_live_pids)
        _live_pids.clear()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass


atexit.register(_kill_leftovers)


def _on_fatal_signal(signum, frame):
    _kill_leftovers()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


for _sig in (signal.SIGTERM, signal.SIGHUP):
    try:
        signal.signal(_sig, _on_fatal_signal)
    except (ValueError, OSError):
        pass

# prctl(PR_SET_PDEATHSIG, SIGKILL) in the child: the daemon dies with us
# even if we are SIGKILLed.  The signal follows the *thread* that forked, so
# spawn() only from the main thread (the tests do).
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                        use_errno=True)
    _prctl = _libc.prctl
except (OSError, AttributeError):
    _prctl = None
_PR_SET_PDEATHSIG = 1


def _child_setup():
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def spawn(args, **kwargs):
    """Popen of the daemon (or anything), remembered for the leftover kill."""
    p = subprocess.Popen(args, preexec_fn=_child_setup, **kwargs)
    with _live_lock:
        _live_pids.add(p.pid)
    return p


def forget(p):
    with _live_lock:
        _live_pids.discard(p.pid)


def run_cli(args, timeout=15.0):
    """Runs the daemon to completion: (exit status, stdout, stderr)."""
    p = spawn([daemon_path()] + list(args), stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        forget(p)
        fail("taskpoold %s did not exit within %.0f s; stderr:\n%s"
             % (" ".join(args), timeout, err.decode(errors="replace")))
    forget(p)
    return p.returncode, out.decode(errors="replace"), \
        err.decode(errors="replace")


# ---- the daemon -------------------------------------------------------------

class Daemon:
    """A running taskpoold on 127.0.0.1, with its log captured."""

    def __init__(self, config_text=None, config_path=None, extra_args=(),
                 listen="127.0.0.1:0", start_timeout=START_TIMEOUT,
                 log_pipe_size=None, env=None, journal=False, pass_fds=()):
        """env: changes to the daemon's environment, {NAME: value, or None
        to unset}.  journal: JOURNAL_STREAM names the stderr pipe, as
        systemd does when stderr is the journal (so lines take the
        journal's form).  pass_fds: descriptors kept open in the daemon
        (a listening socket passed as systemd passes it)."""
        self.tmpdir = tempfile.TemporaryDirectory(prefix="taskpoold-test-")
        if config_path is None:
            config_path = os.path.join(self.tmpdir.name, "taskpoold.conf")
            self.write_config(config_text.replace("@TMPDIR@",
                                                  self.tmpdir.name),
                              config_path)
        self.config_path = config_path
        self.args = [daemon_path(), "-c", config_path, "-l", listen] + \
            list(extra_args)
        # Under valgrind: its report, read when the daemon has exited.
        self.valgrind_log = os.path.join(self.tmpdir.name, "valgrind.log") \
            if VALGRIND else None
        # A test's own start bound, too, is too short under valgrind.
        self.start_timeout = max(start_timeout, START_TIMEOUT) if VALGRIND \
            else start_timeout
        self.proc = None
        self.port = None
        self.returncode = None
        self._lines = []		# (monotonic time, text)
        self._cond = threading.Condition()
        self._eof = False
        self._reader = None
        self._paused = False
        self.log_pipe_size = log_pipe_size	# bytes, or the kernel's
        self._log_fd = None
        self.env = dict(env or {})
        self.journal = journal
        self.pass_fds = tuple(pass_fds)		# kept open in the child

    @staticmethod
    def write_config(text, path):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)	# the daemon never reads half a file

    # -- start and stop --

    def start(self):
        rfd, wfd = os.pipe()
        if self.log_pipe_size is not None:
            fcntl.fcntl(rfd, F_SETPIPE_SZ, self.log_pipe_size)
        self._log_fd = rfd
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)	# the runner's own, if any
        for name, value in self.env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        if self.journal:
            st = os.fstat(wfd)
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        args = list(self.args)
        if self.valgrind_log is not None:
            # Before the daemon itself: a launcher (socket activation's)
            # that precedes it execs valgrind, which keeps the pid.
            i = args.index(daemon_path())
            args[i:i] = valgrind_args(self.valgrind_log)
        try:
            self.proc = spawn(args, stdin=subprocess.DEVNULL,
                              stdout=wfd, stderr=wfd, close_fds=True,
                              env=env, pass_fds=self.pass_fds)
        finally:
            os.close(wfd)
        self._reader = threading.Thread(target=self._read, args=(rfd,),
                                        daemon=True)
        self._reader.start()
        t, line, m = self.wait_for_log(PORT_RE, timeout=self.start_timeout,
                                       what="the '(port N)' start-up line")
        self.port = int(m.group(1))
        check(self.port > 0, "the daemon reports port 0")
        return self

    def pause_log_reading(self):
        """Stops reading the daemon's stderr (after at most one more read),
        so that its pipe fills and the daemon's writes to it block."""
        with self._cond:
            self._paused = True

    def resume_log_reading(self):
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def log_pipe_bytes(self):
        """Bytes written to the daemon's stderr pipe and not yet read."""
        n = array.array("i", [0])
        fcntl.ioctl(self._log_fd, termios.FIONREAD, n)
        return n[0]

    def log_pipe_capacity(self):
        return fcntl.fcntl(self._log_fd, F_GETPIPE_SZ)

    def _read(self, fd):
        with os.fdopen(fd, "rb", buffering=0) as f:
            buf = b""
            while True:
                with self._cond:
                    while self._paused:
                        self._cond.wait()
                chunk = f.read(65536)
                if not chunk:
                    break
                buf += chunk
                now = time.monotonic()
                *lines, buf = buf.split(b"\n")
                if lines:
                    with self._cond:
                        for line in lines:
                            self._lines.append(
                                (now, line.decode(errors="replace")))
                        self._cond.notify_all()
            with self._cond:
                if buf:
                    self._lines.append((time.monotonic(),
                                        buf.decode(errors="replace")))
                self._eof = True
                self._cond.notify_all()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        check(self.running(), "the daemon is not running (exit status %r); "
              "log:\n%s" % (self.proc.poll(), self.log_text()))
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        """Waits for the process to exit: (exit status, seconds waited)."""
        t0 = time.monotonic()
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("the daemon did not exit within %.1f s; log:\n%s"
                 % (timeout, self.log_text()))
        elapsed = time.monotonic() - t0
        self._finish(rc)
        return rc, elapsed

    def _finish(self, rc):
        self.returncode = rc
        forget(self.proc)
        self.resume_log_reading()
        if self._reader is not None:
            self._reader.join(timeout=5)
        self.check_no_sanitizer_report()
        self.check_no_valgrind_report(rc)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT, expect=0):
        """Sends sig (SIGTERM), waits, asserts the exit status; returns it."""
        if not self.running():
            rc = self.proc.wait()
            self._finish(rc)
            fail("the daemon had already exited with status %r; log:\n%s"
                 % (rc, self.log_text()))
        os.kill(self.proc.pid, sig)
        rc, _ = self.wait_exit(timeout)
        if expect is not None and rc != expect:
            fail("the daemon exited with status %r after %s, expected %r; "
                 "log:\n%s" % (rc, signal.Signals(sig).name, expect,
                               self.log_text()))
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        if self.proc is not None:
            forget(self.proc)

    def check_no_valgrind_report(self, rc):
        """Fails with valgrind's report if it found an error: its exit
        status, or (killed: no summary, no leak check) an error record."""
        if self.valgrind_log is None:
            return
        try:
            with open(self.valgrind_log, errors="replace") as f:
                report = f.read()
        except FileNotFoundError:
            return	# the daemon never started (a bad command line)
        m = VALGRIND_SUMMARY_RE.search(report)
        if rc == VALGRIND_ERROR_EXIT or (m and int(m.group(1))) or \
                (not m and VALGRIND_ERROR_RE.search(report)):
            fail("valgrind found errors in the daemon (exit status %r):\n%s"
                 "\ndaemon log:\n%s" % (rc, report, self.log_text()))
        # Killed by a signal (rc < 0), it wrote no summary and checked no
        # leak: only the error records above count.
        if m is None and rc is not None and rc >= 0:
            fail("the daemon exited (status %r) without valgrind's summary:"
                 "\n%s" % (rc, report))

    def check_no_sanitizer_report(self):
        for _, line in self.log_lines():
            for marker in SANITIZER_MARKERS:
                if marker in line:
                    fail("sanitizer report in the daemon's log:\n%s"
                         % self.log_text())

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None and self.running():
                self.stop()
            elif exc_type is None and self.returncode is None and \
                    self.proc is not None:
                rc = self.proc.wait()
                self._finish(rc)
                fail("the daemon died during the test (status %r); log:\n%s"
                     % (rc, self.log_text()))
        finally:
            self.close()
        return False

    def close(self):
        self.kill()
        self.resume_log_reading()
        self.tmpdir.cleanup()

    # -- the log --

    def log_lines(self):
        """[(arrival time.monotonic(), line)] so far."""
        with self._cond:
            return list(self._lines)

    def log_text(self):
        return "\n".join("    " + l for _, l in self.log_lines())

    def wait_for_log(self, pattern, timeout=10.0, start=0, what=None):
        """Waits for a line (from index `start`) matching the regex pattern.

        Returns (arrival time, line, match object).  Fails with the captured
        log on timeout or if the daemon's output ends first.
        """
        if isinstance(pattern, str):
            pattern = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = start
        with self._cond:
            while True:
                while i < len(self._lines):
                    t, line = self._lines[i]
                    m = pattern.search(line)
                    if m:
                        return t, line, m
                    i += 1
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    break
                self._cond.wait(left)
        fail("no log line for %s (/%s/) within %.1f s%s; log:\n%s"
             % (what or "the pattern", pattern.pattern, timeout,
                " (the daemon's output ended)" if self._eof else "",
                self.log_text()))

    def job_done_lines(self):
        """[(arrival time, name, seconds, id)] of the "job NAME done" lines."""
        out = []
        for t, line in self.log_lines():
            m = JOB_DONE_RE.search(line)
            if m:
                out.append((t, m.group(1), float(m.group(2)), m.group(3)))
        return out

    # -- HTTP --

    def request(self, method, path, headers=None, body=None, timeout=30.0):
        """One request on a fresh connection.

        Returns (status, headers, body bytes, elapsed seconds); headers is an
        http.client.HTTPMessage (case-insensitive .get()).
        """
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        t0 = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            elapsed = time.monotonic() - t0
            return resp.status, resp.headers, data, elapsed
        except (OSError, http.client.HTTPException) as e:
            fail("%s %s failed after %.2f s: %r; daemon log:\n%s"
                 % (method, path, time.monotonic() - t0, e, self.log_text()))
        finally:
            conn.close()

    def get_json(self, path, expect_status=200, timeout=30.0):
        """GET path, asserting status and a JSON body; returns the value."""
        status, headers, body, _ = self.request("GET", path, timeout=timeout)
        check_eq(status, expect_status, "GET %s status (body %r)"
                 % (path, body))
        try:
            return json.loads(body)
        except ValueError:
            fail("GET %s: body is not JSON: %r" % (path, body))

    def raw_request(self, data, timeout=10.0):
        """Sends raw bytes; returns (status, {lowercased header: value}, body).

        Reads one response (Content-Length framed, or up to EOF).
        """
        first_line = data.split(b"\r\n", 1)[0].decode("latin-1")
        try:
            with socket.create_connection((HOST, self.port),
                                          timeout=timeout) as s:
                s.sendall(data)
                return read_response(s)
        except socket.timeout:
            fail("%r: no complete answer within %.1f s" % (first_line,
                                                          timeout))
        except OSError as e:
            fail("%r: %r; daemon log:\n%s" % (first_line, e,
                                               self.log_text()))


def read_response(sock):
    """Reads one HTTP/1.1 response from a socket: (status, headers, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            fail("connection closed before a full response header; got %r"
                 % buf)
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    check(len(parts) >= 2 and parts[0].startswith("HTTP/1."),
          "bad status line %r" % lines[0])
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body = rest[:n]
    else:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body = rest
    return status, headers, body


def dumps(value):
    """The daemon's JSON text for value (jansson's default format, which is
    json.dumps's: ", " and ": " separators, keys in insertion order)."""
    return json.dumps(value).encode()


def header(headers, name):
    """A header's value from an HTTPMessage or a raw_request() dict."""
    if isinstance(headers, dict):
        return headers.get(name.lower())
    return headers.get(name)


# RFC 9110's reason phrases, which a problem's title repeats (RFC 9457
# 4.2.1): the statuses the daemon answers with.
REASON_PHRASES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    409: "Conflict", 413: "Content Too Large", 414: "URI Too Long",
    415: "Unsupported Media Type", 422: "Unprocessable Content",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}


def check_problem(status, headers, body, expect_status, what,
                  detail=None):
    """Asserts an RFC 9457 problem+json answer; returns the parsed body."""
    check_eq(status, expect_status, "%s: status (body %r)" % (what, body))
    check_eq(header(headers, "Content-Type"), "application/problem+json",
             "%s: Content-Type" % what)
    try:
        p = json.loads(body)
    except ValueError:
        fail("%s: problem body is not JSON: %r" % (what, body))
    check(isinstance(p, dict), "%s: problem is not an object: %r"
          % (what, p))
    check_eq(p.get("status"), expect_status, "%s: problem status" % what)
    check_eq(p.get("type"), "about:blank", "%s: problem type" % what)
    check_eq(p.get("title"), REASON_PHRASES.get(expect_status),
             "%s: problem title" % what)
    if detail is not None:
        check_eq(p.get("detail"), detail, "%s: problem detail" % what)
    return p


# ---- resources --------------------------------------------------------------

def rss_kib(pid):
    """A process's resident set (VmRSS), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    fail("no VmRSS for pid %d" % pid)


def fd_count(pid, sockets=False):
    """A process's open descriptors; without sockets by default: the pipes
    and pidfds a job could leak (connections come and go with clients)."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if sockets or not os.readlink(
                    "/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                n += 1
        except FileNotFoundError:
            pass
    return n


# After a fault, RSS must come back to within this of its level before
# (glibc keeps some freed memory in its arenas); descriptors exactly.
RSS_MARGIN_FRACTION = 0.10
RSS_MARGIN_KIB = 2048


def resources(pid):
    """(RSS in KiB, open descriptors with sockets) of a process."""
    return rss_kib(pid), fd_count(pid, sockets=True)


def open_connections(pid):
    """pid's TCP sockets that are not listening (from /proc/net/tcp*)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except FileNotFoundError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[9] in inodes and cols[3] != "0A":  # LISTEN
                        n += 1
        except FileNotFoundError:
            pass
    return n


def quiet_resources(pid, timeout=15.0):
    """resources(pid) once it has no connection open (the last client's
    close reaches the daemon a moment after the client has its answer)."""
    deadline = time.monotonic() + timeout * VALGRIND_SLOWDOWN
    while open_connections(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    check_eq(open_connections(pid), 0, "connections open in pid %d" % pid)
    return resources(pid)


def rss_unchecked(pid):
    """Why pid's RSS says nothing of the daemon's live memory, or None:
    valgrind's is its own; ASan's and TSan's allocators keep freed memory
    (a quarantine)."""
    if VALGRIND:
        return "valgrind"
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    for lib, name in (("libasan", "AddressSanitizer"),
                      ("libtsan", "ThreadSanitizer")):
        if lib in maps:
            return name
    return None


def check_resources_back(pid, before, what, timeout=15.0):
    """Polls /proc until pid's descriptors are back to before's count and
    its RSS within RSS_MARGIN_* of before's (bounded by timeout, for the
    connections and threads to close); logs both figures; returns after.
    Under valgrind or a sanitizer the RSS is logged, not checked."""
    rss0, fds0 = before
    margin = max(RSS_MARGIN_KIB, int(rss0 * RSS_MARGIN_FRACTION))
    deadline = time.monotonic() + timeout * VALGRIND_SLOWDOWN
    unchecked = rss_unchecked(pid)
    while True:
        rss, fds = resources(pid)
        rss_ok = unchecked is not None or rss <= rss0 + margin
        if (fds == fds0 and rss_ok) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    log("  %s: RSS %d -> %d KiB (%+d, margin %d%s), descriptors %d -> %d"
        % (what, rss0, rss, rss - rss0, margin,
           ", not checked under " + unchecked if unchecked else "", fds0,
           fds))
    check_eq(fds, fds0, "%s: open descriptors after the fault" % what)
    check(rss_ok, "%s: RSS %d KiB is more than %d KiB above the %d KiB "
          "before the fault" % (what, rss, margin, rss0))
    return rss, fds


# ---- job records --------------------------------------------------------------

def start_job(d, path):
    """POSTs a wait = none route; returns its one job's id."""
    status, _, body, _ = d.request("POST", path, body=b"")
    check_eq(status, 202, "POST %s (body %r)" % (path, body))
    return json.loads(body)["jobs"][0]["id"]


def job_record(d, job_id):
    return d.get_json("/jobs/" + job_id)


def wait_job_state(d, job_id, states, timeout=10.0):
    """Polls the record until its state is one of states; returns it.
    Bounded by the record changing, not by a sleep: 10 ms between reads."""
    deadline = time.monotonic() + timeout
    while True:
        r = job_record(d, job_id)
        if r["state"] in states:
            return r
        check(time.monotonic() < deadline, "job %s still %s after %.1f s"
              % (job_id, r["state"], timeout))
        time.sleep(0.01)


def cancel_job(d, job_id):
    """DELETE /jobs/ID, asserting 202; returns the record it answers."""
    status, _, body, _ = d.request("DELETE", "/jobs/" + job_id)
    check_eq(status, 202, "DELETE /jobs/%s (body %r)" % (job_id, body))
    return json.loads(body)


# ---- the runner -------------------------------------------------------------

def run_tests(namespace):
    """Runs namespace's test_* functions in definition order and exits.

    TASKPOOLD_TESTS=name,... runs only those (to loop one test by hand)."""
    only = [n for n in os.environ.get("TASKPOOLD_TESTS", "").split(",") if n]
    tests = [(name, fn) for name, fn in namespace.items()
             if name.startswith("test_") and callable(fn)
             and (not only or name in only)]
    passed = failed = skipped = 0
    for name, fn in tests:
        try:
            fn()
        except Skip as e:
            skipped += 1
            log("SKIP %s: %s" % (name, e))
        except Exception as e:	# noqa: BLE001 - report and go on
            failed += 1
            reason = str(e) if isinstance(e, AssertionError) and str(e) \
                else "%s: %s" % (type(e).__name__, e)
            log("FAIL %s: %s" % (name, reason))
            if not isinstance(e, TestFailure):
                log(traceback.format_exc().rstrip())
        else:
            passed += 1
            log("PASS %s" % name)
        _kill_leftovers()
    log("%d passed, %d failed" % (passed, failed))
    if failed:
        sys.exit(1)
    if skipped and not passed:
        sys.exit(EXIT_SKIP)
    sys.exit(0)
