/*
 * Allocation hooks for the numeric core.
 *
 * The core never calls malloc directly: inside PostgreSQL the hooks allocate in
 * a memory context, so an ERROR raised while training (a cancel, say) frees
 * everything; in unit tests they are malloc/calloc/free.
 */
#ifndef MTL_MEM_H
#define MTL_MEM_H

#include <stddef.h>

typedef struct MtlAllocator
{
	void	   *(*alloc_zero) (size_t size);	/* zeroed; never returns NULL */
	void	   *(*alloc) (size_t size); /* not zeroed; never returns NULL */
	void	   *(*resize) (void *ptr, size_t size);
	void		(*release) (void *ptr);
} MtlAllocator;

void		mtl_set_allocator(const MtlAllocator *allocator);
void	   *mtl_alloc(size_t size);
/* Not zeroed: for large buffers whose every read is guarded by a marker of its own. */
void	   *mtl_alloc_uninit(size_t size);
void	   *mtl_realloc(void *ptr, size_t size);
void		mtl_free(void *ptr);
char	   *mtl_strdup(const char *s);
/*
 * The calling thread allocates with malloc (aborting when it is exhausted),
 * whatever the hooks: for helper threads, which must not touch the caller's
 * memory contexts. What such a thread allocates it frees itself.
 */
void		mtl_use_malloc_in_thread(void);

#endif
