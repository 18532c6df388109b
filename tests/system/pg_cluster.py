"""A throwaway PostgreSQL cluster for the tests (Python standard library
only).

PostgreSQL refuses to run as root, and the tests run as root: the cluster
lives in a temporary directory owned by the user postgres, and its
programs run as that user (runuser); run by anyone else, they run as the
caller.  It listens on 127.0.0.1 only, on a free port, and on a Unix
socket in its directory; authentication is trust (local and 127.0.0.1
only), fsync is off.

From a Python system test:

    import pg_cluster
    pg = pg_cluster.require()     # skips the test (exit 77) without
                                  # PostgreSQL's server programs
    with pg:                      # or pg.close() in a finally
        url = pg.url              # postgresql://taskpoold@127.0.0.1:PORT/taskpoold
        pg.stop()                 # an outage: the same cluster stops...
        pg.start()                # ...and comes back on the same port
    # gone: stopped and removed (also at exit, and when the test fails)

From a shell or a C test (tests/pg-cluster):

    tests/pg-cluster run CMD ARGS...   CMD in a fresh cluster, with
                                       TASKPOOLD_PG_URL, TASKPOOLD_PG_DIR and
                                       TASKPOOLD_PG_CLUSTER (this script);
                                       exit status CMD's, 77 when skipped
    tests/pg-cluster stop DIR          stop the cluster of DIR
    tests/pg-cluster start DIR         start it again (same port)

With TASKPOOLD_PG_REQUIRED=1 in the environment (CI, .ci/run), missing
server programs are a hard error (99) instead of a skip.
"""

import atexit
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

SKIP = 77
HARD_ERROR = 99
DATABASE = "taskpoold"
USER = "taskpoold"


class Unavailable(Exception):
    """PostgreSQL's server programs are not installed."""


def bindir():
    """The directory of initdb, pg_ctl and postgres: TASKPOOLD_PG_BINDIR,
    else the newest /usr/lib/postgresql/N/bin that has them."""
    given = os.environ.get("TASKPOOLD_PG_BINDIR")
    dirs = [given] if given else sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit()
        else 0, reverse=True)
    for d in dirs:
        if all(os.access(os.path.join(d, p), os.X_OK)
               for p in ("initdb", "pg_ctl", "postgres")):
            return d
    raise Unavailable("PostgreSQL's server programs (initdb, pg_ctl) are "
                      "not installed: apt-get install postgresql-15 "
                      "(tools/install-deps)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One cluster in its own directory.  new() makes and starts one;
    attach(dir) takes one that another process made (its state is in
    dir/cluster.json)."""

    def __init__(self, directory, bin_dir, port):
        self.dir = directory
        self.bindir = bin_dir
        self.port = port
        self.data = os.path.join(directory, "data")
        self.log = os.path.join(directory, "server.log")
        self.url = "postgresql://%s@127.0.0.1:%d/%s" % (USER, port, DATABASE)
        self.owned = False

    def _as_owner(self, argv, **kw):
        """Runs a server program as postgres when we are root."""
        if os.getuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, check=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, **kw)

    def _prog(self, name):
        return os.path.join(self.bindir, name)

    @classmethod
    def new(cls):
        bin_dir = bindir()
        # /tmp: the user postgres must reach it (a root's TMPDIR may be
        # closed to others), and the socket's path must stay short.
        directory = tempfile.mkdtemp(
            prefix="taskpoold-pg.",
            dir=os.environ.get("TASKPOOLD_PG_TMPDIR", "/tmp"))
        c = cls(directory, bin_dir, free_port())
        c.owned = True
        atexit.register(c.close)
        try:
            if os.getuid() == 0:
                pw = pwd.getpwnam("postgres")
                os.chown(directory, pw.pw_uid, pw.pw_gid)
            c._as_owner([c._prog("initdb"), "-D", c.data, "-A", "trust",
                         "-U", "postgres", "-E", "UTF8",
                         "--locale=C.UTF-8"])
            with open(os.path.join(directory, "cluster.json.tmp"), "w") as f:
                json.dump({"bindir": bin_dir, "port": c.port}, f)
            os.rename(os.path.join(directory, "cluster.json.tmp"),
                      os.path.join(directory, "cluster.json"))
            c.start()
            c.psql("CREATE ROLE %s LOGIN" % USER)
            c.psql("CREATE DATABASE %s OWNER %s" % (DATABASE, USER))
        except BaseException:
            c.close()
            raise
        return c

    @classmethod
    def attach(cls, directory):
        with open(os.path.join(directory, "cluster.json")) as f:
            state = json.load(f)
        return cls(directory, state["bindir"], int(state["port"]))

    def start(self):
        """Starts the server (again), waiting until it accepts."""
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=200" % (self.port, self.dir))
        self._as_owner([self._prog("pg_ctl"), "-D", self.data, "-l",
                        self.log, "-w", "-t", "60", "-o", opts, "start"])

    def stop(self):
        """Stops the server (fast: open sessions are ended)."""
        self._as_owner([self._prog("pg_ctl"), "-D", self.data, "-w",
                        "-m", "fast", "stop"])

    def running(self):
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))

    def psql(self, sql, db="postgres"):
        """Runs one statement as the superuser, over the Unix socket."""
        psql = self._prog("psql")
        if not os.access(psql, os.X_OK):
            psql = shutil.which("psql") or psql
        self._as_owner([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                        "-h", self.dir, "-p", str(self.port), "-U",
                        "postgres", "-d", db, "-c", sql])

    def close(self):
        """Stops the server and removes the directory.  Idempotent."""
        if not os.path.isdir(self.dir):
            return
        if self.running():
            try:
                self._as_owner([self._prog("pg_ctl"), "-D", self.data,
                                "-w", "-m", "immediate", "stop"])
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def new():
    """A fresh cluster, started.  Raises Unavailable without the server
    programs."""
    return Cluster.new()


def require():
    """A fresh cluster, started; without the server programs the test is
    skipped (exit 77), or fails (99) under TASKPOOLD_PG_REQUIRED=1."""
    try:
        return Cluster.new()
    except Unavailable as e:
        required = os.environ.get("TASKPOOLD_PG_REQUIRED") == "1"
        print("%s: %s" % ("FAIL" if required else "SKIP", e),
              file=sys.stderr)
        sys.exit(HARD_ERROR if required else SKIP)


def main(argv):
    if len(argv) >= 3 and argv[1] == "run":
        # A test driver's SIGTERM (a timeout) still removes the cluster.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        pg = require()
        env = dict(os.environ, TASKPOOLD_PG_URL=pg.url,
                   TASKPOOLD_PG_DIR=pg.dir,
                   TASKPOOLD_PG_CLUSTER=os.path.abspath(argv[0]))
        try:
            rc = subprocess.call(argv[2:], env=env)
        finally:
            pg.close()
        return rc
    if len(argv) == 3 and argv[1] in ("stop", "start"):
        c = Cluster.attach(argv[2])
        getattr(c, argv[1])()
        return 0
    print("usage: pg-cluster run CMD [ARG...] | stop DIR | start DIR",
          file=sys.stderr)
    return 64
