/* A minimal test harness: CHECK records a failure and carries on. */
#ifndef MTL_CHECK_H
#define MTL_CHECK_H

#include <stdio.h>

extern int	check_failures;
extern int	check_count;

#define CHECK(cond, ...) \
	do { \
		check_count++; \
		if (!(cond)) { \
			check_failures++; \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fprintf(stderr, "\n"); \
		} \
	} while (0)

#endif
