"""taskpoold system test: lines in the journal's form when stderr is the
journal.

systemd sets JOURNAL_STREAM to "DEVICE:INODE" of the stream it gives a
service as stderr.  Here the daemon's stderr is the test's pipe, and
JOURNAL_STREAM names that pipe (the journal's form) or another file (the
plain form, as a child of a service that redirected stderr would see).
"""

import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (RFC3339_RE, Daemon, check,  # noqa: E402
                            check_eq, daemon_path, run_tests)

CONFIG = """
[job j]
kind = sleep
duration = 0
result = r

[route /r]
jobs = j
wait = all
"""

# sd-daemon(3): the priority that each level's lines carry.
PRIORITIES = {"error": "<3>", "warning": "<4>", "info": "<6>",
              "debug": "<7>"}
JOURNAL_LINE_RE = re.compile(r"^(<\d>)(error|warning|info|debug): ")
PLAIN_LINE_RE = re.compile(r"^(\S+) (error|warning|info|debug): ")


def provoke_every_level(d):
    """A request (debug lines with -v), a reload of a broken file (an
    error with file and line, then a warning), and a stop (info)."""
    status, _, _, _ = d.request("GET", "/r")
    check_eq(status, 200, "GET /r")
    n = len(d.log_lines())
    d.write_config(CONFIG + "\n[route /bad]\nwait = whenever\n",
                   d.config_path)
    d.send_signal(signal.SIGHUP)
    d.wait_for_log(r"reload refused; the running configuration stays$",
                   start=n, timeout=5.0, what="the refused reload")
    d.stop()


def levels_seen(d, line_re):
    """{level: [prefix, ...]} over every line; fails on a line of no
    level (each must be one of the daemon's)."""
    seen = {}
    for _, line in d.log_lines():
        m = line_re.match(line)
        check(m is not None, "a line not in the expected form: %r; log:\n%s"
              % (line, d.log_text()))
        seen.setdefault(m.group(2), []).append(m.group(1))
    return seen


def test_journal_lines_start_with_their_priority_and_carry_no_time():
    with Daemon(CONFIG, extra_args=["-v"], journal=True) as d:
        provoke_every_level(d)
    seen = levels_seen(d, JOURNAL_LINE_RE)
    check_eq(sorted(seen), sorted(PRIORITIES), "levels logged")
    for level, prefixes in seen.items():
        check_eq(set(prefixes), {PRIORITIES[level]},
                 "the priority of the %s lines" % level)
    text = "\n".join(line for _, line in d.log_lines())
    check(re.search(r"^<6>info: listening on 127\.0\.0\.1:0 \(port \d+\)",
                    text, re.M), "the start-up line:\n" + text)
    check(re.search(r"^<3>error: %s:\d+: bad value 'whenever' for wait"
                    % re.escape(d.config_path), text, re.M),
          "the reload's error with file and line:\n" + text)
    check(re.search(r"^<6>info: stopped$", text, re.M),
          "the last line:\n" + text)
    check(re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text) is None,
          "no line carries a time (the journal adds its own):\n" + text)


def test_another_journal_stream_keeps_the_plain_form():
    # The device and inode of the daemon's binary: not its stderr.
    st = os.stat(daemon_path())
    other = "%d:%d" % (st.st_dev, st.st_ino)
    with Daemon(CONFIG, extra_args=["-v"],
                env={"JOURNAL_STREAM": other}) as d:
        provoke_every_level(d)
    seen = levels_seen(d, PLAIN_LINE_RE)
    check_eq(sorted(seen), sorted(PRIORITIES), "levels logged")
    for level, stamps in seen.items():
        for stamp in stamps:
            check(RFC3339_RE.match(stamp), "a %s line's time: %r"
                  % (level, stamp))
    for _, line in d.log_lines():
        check(not line.startswith("<"), "a journal prefix in the plain "
              "form: %r" % line)


if __name__ == "__main__":
    run_tests(globals())
