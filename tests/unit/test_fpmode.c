/*
 * Flushing denormals: on inside a scope, the caller's mode back after it, and
 * nested scopes restore what each found.
 */
#include <float.h>

#include "check.h"
#include "../../src/core/fpmode.h"

/* volatile: computed at run time under the current mode, not folded */
static volatile float tiny = FLT_MIN;

void		test_fpmode(void);

void
test_fpmode(void)
{
	MtlFpMode outer,
				inner;
	float		quarter;

	CHECK(!mtl_fp_flushing(), "the process starts without flushing");
	quarter = tiny / 4.0f;
	CHECK(quarter > 0.0f, "a denormal result is kept outside a scope: %g", quarter);

	mtl_fp_flush_begin(&outer);
#if defined(__x86_64__) || defined(__aarch64__)
	CHECK(mtl_fp_flushing(), "flushing inside the scope");
	quarter = tiny / 4.0f;
	CHECK(quarter == 0.0f, "a denormal result is flushed to zero: %g", quarter);
#endif
	mtl_fp_flush_begin(&inner);
	mtl_fp_flush_end(&inner);
#if defined(__x86_64__) || defined(__aarch64__)
	CHECK(mtl_fp_flushing(), "a nested scope leaves the outer one flushing");
#endif
	mtl_fp_flush_end(&outer);
	CHECK(!mtl_fp_flushing(), "the caller's mode is back");
	quarter = tiny / 4.0f;
	CHECK(quarter > 0.0f, "denormals again after the scope: %g", quarter);
}
