#!/usr/bin/python3
# Prints its arguments (argv[1:]) as one JSON array: what the program got.
import json
import sys

print(json.dumps(sys.argv[1:]))
