#!/bin/sh
# Prints its first argument after 1.5 s: long enough for a twin to join.
sleep 1.5
printf '%s\n' "$1"
