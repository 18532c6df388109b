#!/bin/sh
# Writes its pid to $PIDFILE, then sleeps; SIGTERM ends it.
echo $$ > "$PIDFILE"
exec sleep 60
