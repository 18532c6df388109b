#!/bin/sh
# Ignores SIGTERM (and so does the sleep it becomes): only SIGKILL ends it.
# Its pid goes to $PIDFILE first, so that a test can see it gone.
trap '' TERM
echo $$ > "$PIDFILE"
exec sleep 60
