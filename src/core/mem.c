#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Default hooks for use outside PostgreSQL: abort on exhaustion. */
static void *
DefaultAllocZero(size_t size)
{
	void	   *p = calloc(1, size ? size : 1);

	if (p == NULL)
	{
		fprintf(stderr, "mtl: out of memory (%zu bytes)\n", size);
		abort();
	}
	return p;
}

static void *
DefaultResize(void *ptr, size_t size)
{
	void	   *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
	{
		fprintf(stderr, "mtl: out of memory (%zu bytes)\n", size);
		abort();
	}
	return p;
}

static void *
DefaultAlloc(size_t size)
{
	return DefaultResize(NULL, size);
}

static MtlAllocator current = {DefaultAllocZero, DefaultAlloc, DefaultResize, free};

void
mtl_set_allocator(const MtlAllocator *allocator)
{
	current = *allocator;
}

void *
mtl_alloc(size_t size)
{
	return current.alloc_zero(size);
}

void *
mtl_alloc_uninit(size_t size)
{
	return current.alloc(size);
}

void *
mtl_realloc(void *ptr, size_t size)
{
	if (ptr == NULL)
		return current.alloc_zero(size);
	return current.resize(ptr, size);
}

void
mtl_free(void *ptr)
{
	if (ptr != NULL)
		current.release(ptr);
}

char *
mtl_strdup(const char *s)
{
	size_t		n = strlen(s) + 1;
	char	   *copy = mtl_alloc(n);

	memcpy(copy, s, n);
	return copy;
}
