#!/bin/sh
# Writes 100 MiB of text to stdout, then says so on stderr.
yes 0123456789abcdef | head -c 104857600
echo "flood done" >&2
