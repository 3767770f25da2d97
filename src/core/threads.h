/*
 * Helper threads for work split over the cores of one process.
 *
 * A PostgreSQL backend is one process and one thread; training with
 * threads > 1 runs parts of each batch on helper threads. They are started on
 * first use and kept, idle on a condition variable, for the life of the
 * process, so that an error unwinding out of training (a cancel between
 * batches) leaves nothing to join. They block every signal (PostgreSQL's
 * handlers belong to the backend's own thread), flush denormals as the
 * caller does (core/fpmode.h), and allocate with malloc, never through the
 * caller's hooks (core/mem.h): a memory context is not thread-safe. What runs
 * on them must not report errors: it is pure arithmetic on buffers made
 * beforehand.
 */
#ifndef MTL_THREADS_H
#define MTL_THREADS_H

#define MTL_MAX_THREADS 8

typedef void (*MtlPartFn) (void *arg, int part);

/*
 * fn(arg, part) for part 0 .. n - 1: part 0 on the caller, the others on
 * helper threads; returns when every part is done. Parts a helper could not
 * be started for run on the caller, after part 0: a result must not depend
 * on which thread ran a part.
 */
void		mtl_run_parts(int n, MtlPartFn fn, void *arg);

/* Helper threads running in this process (for tests). */
int			mtl_helper_count(void);

#endif
