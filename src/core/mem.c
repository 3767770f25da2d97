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

static const MtlAllocator defaults = {DefaultAllocZero, DefaultAlloc, DefaultResize, free};
static MtlAllocator current = {DefaultAllocZero, DefaultAlloc, DefaultResize, free};

/* set in helper threads (core/threads.h): the hooks are the caller's thread's */
static _Thread_local int malloc_here = 0;

void
mtl_use_malloc_in_thread(void)
{
	malloc_here = 1;
}

static const MtlAllocator *
Hooks(void)
{
	return malloc_here ? &defaults : &current;
}

void
mtl_set_allocator(const MtlAllocator *allocator)
{
	current = *allocator;
}

void *
mtl_alloc(size_t size)
{
	return Hooks()->alloc_zero(size);
}

void *
mtl_alloc_uninit(size_t size)
{
	return Hooks()->alloc(size);
}

void *
mtl_realloc(void *ptr, size_t size)
{
	if (ptr == NULL)
		return Hooks()->alloc_zero(size);
	return Hooks()->resize(ptr, size);
}

void
mtl_free(void *ptr)
{
	if (ptr != NULL)
		Hooks()->release(ptr);
}

char *
mtl_strdup(const char *s)
{
	size_t		n = strlen(s) + 1;
	char	   *copy = mtl_alloc(n);

	memcpy(copy, s, n);
	return copy;
}
