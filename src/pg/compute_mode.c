/*
 * The thread state the core computes in: denormals flushed to zero (see
 * core/fpmode.h) and, for training, the OpenBLAS thread count of the config.
 *
 * A backend runs other code too (numeric functions, other extensions), so
 * the caller's state comes back when the core is done: at MtlComputeEnd on
 * the normal path, and from the (sub)transaction abort callbacks when an
 * error or a cancel unwinds out of training or scoring. A PL/pgSQL block that
 * catches the error aborts a subtransaction, so it is covered too. That makes
 * the per-row cost two register writes, with no PG_TRY per row.
 */
#include "mtl_pg.h"

#include <cblas.h>

#include "access/xact.h"

#include "../core/fpmode.h"

static int	depth = 0;			/* nested scopes (mtl_fit runs mtl_train inside) */
static MtlFpMode caller_fp;
static int	caller_threads = -1;	/* OpenBLAS threads to restore, -1: unchanged */
static bool callbacks_registered = false;

/*
 * At load: OpenBLAS to one thread. The pthread build starts a pool of one
 * thread per core in every backend that loads mtl, and scoring's small
 * products gain nothing from it; training raises the count for itself
 * (config key threads) and restores it.
 */
void
MtlComputeInit(void)
{
	openblas_set_num_threads(1);
}

static void
RestoreCaller(void)
{
	mtl_fp_flush_end(&caller_fp);
	if (caller_threads > 0)
		openblas_set_num_threads(caller_threads);
	caller_threads = -1;
	depth = 0;
}

static void
RestoreOnAbort(XactEvent event, void *arg)
{
	if (depth > 0 && (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT))
		RestoreCaller();
}

static void
RestoreOnSubAbort(SubXactEvent event, SubTransactionId sub, SubTransactionId parent, void *arg)
{
	if (depth > 0 && event == SUBXACT_EVENT_ABORT_SUB)
		RestoreCaller();
}

/* Enter the core's mode; threads > 0 also sets OpenBLAS's thread count. */
void
MtlComputeBegin(int threads)
{
	if (!callbacks_registered)
	{
		RegisterXactCallback(RestoreOnAbort, NULL);
		RegisterSubXactCallback(RestoreOnSubAbort, NULL);
		callbacks_registered = true;
	}
	if (depth++ == 0)
		mtl_fp_flush_begin(&caller_fp);
	if (threads > 0 && caller_threads < 0)
	{
		caller_threads = openblas_get_num_threads();
		openblas_set_num_threads(threads);
	}
}

/* Leave it: the outermost scope restores the caller's state. */
void
MtlComputeEnd(void)
{
	if (depth > 0 && --depth == 0)
		RestoreCaller();
}
