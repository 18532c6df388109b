#!/bin/sh
# Runs the unit test of the store's postgresql backend in a throwaway
# cluster (tests/pg-cluster): it reads TASKPOOLD_PG_URL, and stops and
# starts the cluster through TASKPOOLD_PG_CLUSTER for its outage test.
# Exit 77 (skipped) when PostgreSQL's server programs are not installed.
exec python3 "$TASKPOOLD_SRCDIR/tests/pg-cluster" run \
	"$TASKPOOLD_BUILDDIR/tests/unit/check_store_pg"
