/*
 * Helper threads (core/threads.h) and training split over them (split.h).
 * The sanitizer script runs this suite alone under ThreadSanitizer.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "synthetic.h"
#include "../../src/core/fit.h"
#include "../../src/core/format.h"
#include "../../src/core/mem.h"
#include "../../src/core/evaluate.h"
#include "../../src/core/metrics.h"
#include "../../src/core/predict.h"
#include "../../src/core/threads.h"

static void
CountPart(void *arg, int part)
{
	int		   *hits = arg;

	hits[part]++;
}

/* Every part runs once per call, also past the helpers' limit (on the caller). */
static void
TestParts(void)
{
	for (int n = 1; n <= MTL_MAX_THREADS + 2; n++)
	{
		int			hits[MTL_MAX_THREADS + 2] = {0};
		int			ok = 1;

		for (int call = 0; call < 100; call++)
			mtl_run_parts(n, CountPart, hits);
		for (int k = 0; k < MTL_MAX_THREADS + 2; k++)
			ok &= hits[k] == (k < n && k < MTL_MAX_THREADS ? 100 : 0);
		CHECK(ok, "%d parts: each ran 100 times", n);
	}
	CHECK(mtl_helper_count() == MTL_MAX_THREADS - 1, "%d helpers", mtl_helper_count());
}

/*
 * Training on 2 and 3 threads (each batch split by rows, split.h): a seed
 * gives the same bytes on every run, helper threads did run, and the model
 * learns as well as on one thread.
 */
static void
TestThreadedTraining(void)
{
	MtlSpec		spec;
	MtlTrained	one,
				a,
				b;
	double	   *truth,
				needed,
				oracle,
				auc_one,
				auc;
	MtlRowStore *rows = synthetic_rows(30000, 5, &truth);
	uint8_t    *ba,
			   *bb;
	size_t		na,
				nb;

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.dropout = 0.1f;
	mtl_fit(&spec, rows, NULL, 0, &needed, &one);
	auc_one = HeldOutAuc(&one, &oracle);
	for (int threads = 2; threads <= 3; threads++)
	{
		spec.threads = threads;
		mtl_fit(&spec, rows, NULL, 0, &needed, &a);
		mtl_fit(&spec, rows, NULL, 0, &needed, &b);
		na = mtl_encode(&a, &ba);
		nb = mtl_encode(&b, &bb);
		auc = HeldOutAuc(&a, &oracle);
		printf("  %d threads: held-out ctr AUC %.4f, one thread %.4f, oracle %.4f\n", threads, auc,
			   auc_one, oracle);
		CHECK(mtl_helper_count() >= threads - 1, "%d helper threads ran", mtl_helper_count());
		CHECK(na == nb && memcmp(ba, bb, na) == 0, "%d threads: a seed gives the same bytes", threads);
		CHECK(memcmp(a.model.params, one.model.params, sizeof(float) * a.model.layout.n_params) != 0,
			  "%d threads: the batches were split (other dropout masks, other sums)", threads);
		CHECK(fabs(auc - auc_one) < 0.01, "%d threads: AUC %.4f vs %.4f on one", threads, auc, auc_one);
		mtl_trained_free(&a);
		mtl_trained_free(&b);
		mtl_free(ba);
		mtl_free(bb);
	}
	mtl_trained_free(&one);
	mtl_rows_free(rows);
	mtl_free(truth);
}

void
test_threads(void)
{
	TestParts();
	TestThreadedTraining();
}
