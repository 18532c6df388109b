/*
 * sleep.h - what kind `sleep` keeps of its [job] sections.
 *
 * Nothing in the daemon outside sleep.c looks into it; it is here for the
 * tests of the config, which check what a file was read into.
 */
#ifndef TASKPOOLD_KINDS_SLEEP_H
#define TASKPOOLD_KINDS_SLEEP_H

#include <stdint.h>

/* A job definition's kind_data when its kind is sleep. */
struct sleep_def {
	int64_t duration_ns;		/* 0 unless set */
	char *result;			/* "" unless set; owned */
};

#endif
