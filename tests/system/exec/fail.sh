#!/bin/sh
# Writes to both streams, then exits 3: the job fails with stderr's tail.
echo "some output"
echo "first line of stderr" >&2
echo "something broke" >&2
exit 3
