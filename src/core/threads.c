#include "threads.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "fpmode.h"
#include "mem.h"

/*
 * A job is posted by bumping posted, and is done when finished equals it.
 * Both sides spin a little before sleeping: a batch's parts are a
 * millisecond or less apart, and waking a sleeping thread costs tens of
 * microseconds on a virtual machine, several times per batch.
 */
#define SPINS 4000

typedef struct Helper
{
	pthread_t	thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_cond_t done_cond;
	MtlPartFn	fn;
	void	   *arg;
	int			part;
	atomic_uint posted;
	atomic_uint finished;
	int			helper_sleeps;	/* under lock */
	int			caller_sleeps;	/* under lock */
} Helper;

/* malloc'd, never freed: a helper outlives every memory context */
static Helper *helpers[MTL_MAX_THREADS - 1];
static int	n_helpers = 0;

static void
Pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Spin, then sleep on cond, until *value equals want (sleeps: the flag saying so). */
static void
AwaitValue(Helper *h, atomic_uint *value, unsigned want, pthread_cond_t *cond, int *sleeps)
{
	for (int i = 0; i < SPINS && atomic_load_explicit(value, memory_order_acquire) != want; i++)
		Pause();
	if (atomic_load_explicit(value, memory_order_acquire) == want)
		return;
	pthread_mutex_lock(&h->lock);
	while (atomic_load_explicit(value, memory_order_acquire) != want)
	{
		*sleeps = 1;
		pthread_cond_wait(cond, &h->lock);
	}
	*sleeps = 0;
	pthread_mutex_unlock(&h->lock);
}

/* Store v into *value and wake the other side if it sleeps on cond. */
static void
Publish(Helper *h, atomic_uint *value, unsigned v, pthread_cond_t *cond, const int *sleeps)
{
	atomic_store_explicit(value, v, memory_order_release);
	pthread_mutex_lock(&h->lock);
	if (*sleeps)
		pthread_cond_signal(cond);
	pthread_mutex_unlock(&h->lock);
}

static void *
HelperMain(void *arg)
{
	Helper	   *h = arg;
	MtlFpMode	unused;
	unsigned	seen = 0;

	mtl_fp_flush_begin(&unused);
	mtl_use_malloc_in_thread();
	for (;;)
	{
		AwaitValue(h, &h->posted, seen + 1, &h->wake, &h->helper_sleeps);
		seen++;
		h->fn(h->arg, h->part);
		Publish(h, &h->finished, seen, &h->done_cond, &h->caller_sleeps);
	}
	return NULL;
}

/* One more helper; 0 when the system refuses a thread. */
static int
StartHelper(void)
{
	Helper	   *h = calloc(1, sizeof(Helper));
	sigset_t	all,
				caller;
	int			failed;

	if (h == NULL)
		return 0;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);
	pthread_cond_init(&h->done_cond, NULL);
	/* a new thread inherits the mask: signals stay with the backend's thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &caller);
	failed = pthread_create(&h->thread, NULL, HelperMain, h);
	pthread_sigmask(SIG_SETMASK, &caller, NULL);
	if (failed)
	{
		pthread_cond_destroy(&h->done_cond);
		pthread_cond_destroy(&h->wake);
		pthread_mutex_destroy(&h->lock);
		free(h);
		return 0;
	}
	pthread_detach(h->thread);
	helpers[n_helpers++] = h;
	return 1;
}

void
mtl_run_parts(int n, MtlPartFn fn, void *arg)
{
	int			started = 0;

	if (n > MTL_MAX_THREADS)
		n = MTL_MAX_THREADS;
	while (n_helpers < n - 1 && StartHelper())
		;
	for (int k = 1; k < n && k - 1 < n_helpers; k++)
	{
		Helper	   *h = helpers[k - 1];

		h->fn = fn;
		h->arg = arg;
		h->part = k;
		Publish(h, &h->posted, atomic_load(&h->posted) + 1, &h->wake, &h->helper_sleeps);
		started++;
	}
	fn(arg, 0);
	for (int k = started + 1; k < n; k++)
		fn(arg, k);
	for (int k = 1; k <= started; k++)
	{
		Helper	   *h = helpers[k - 1];

		AwaitValue(h, &h->finished, atomic_load(&h->posted), &h->done_cond, &h->caller_sleeps);
	}
}

int
mtl_helper_count(void)
{
	return n_helpers;
}
