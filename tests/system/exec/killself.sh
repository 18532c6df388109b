#!/bin/sh
# Dies of SIGKILL, sent by itself.
echo "about to die"
kill -KILL $$
